"""Import reasoning paths people already have, graded and filtered like sampled ones.

Three input formats:

- ``lm-eval``: the per-sample files that ``lm_eval --log_samples`` writes
  (``samples_<task>_<time>.jsonl``: ``doc`` holds the question, ``resps`` the generations; one
  line per doc and filter, so repeated doc ids are read once). The model label defaults to the
  folder the file sits in, which is where lm-eval puts the model's name.
- ``jsonl``: any JSONL with a question and a solution text per line (field names as options; the
  text may be a list of samples; a model field is optional). Dotted names reach nested fields.
- ``gsm8k-solutions``: GSM8K's model-solution files (``question``, ``ground_truth``, and one
  object per model with ``solution`` and ``is_correct``; the file's verdict is kept as
  ``reported_correct``, the one grader decides ``correct``).

The gold answer comes from the file when a line carries one (lm-eval's ``target``, the
``answer`` of every record lema-plugin writes, or ``gold_field``: "#### 72" and "A: 72"
rationales, a final ``\\boxed{}`` and bare answers all work); otherwise the question must match a
known problem (by its text, whitespace aside), which supplies the gold answer and the problem id;
a line that matches none is left out, counted and named in the summary (`unmatched`), and the
rest is imported. Known problems are loaded only when a line needs them. A gold answer is read as
a problem file's is (`problems.normalize`, the one gold reader), so `3/8` stays `3/8`.

A path record lema-plugin wrote keeps what its stage decided: its `finish_reason` comes along, so
a path cut at max_tokens is `truncated` again (not a mistake unless `--keep-unfinished`), and the
records of failed requests (`kind: failed`) are counted, not imported.
Questions found in the dataset's test split are counted (`test_questions`): training on their
mistakes would leak the test set into the fine-tune.

Paths go to ``OUT/paths.jsonl`` through the run store, then the folder is finalized exactly as
after `lema sample` (mistakes, de-duplication, caps), with the figures in `import_summary.json`
(the stage: `spec`).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Sequence

from ..fields import GOLD_FIELDS, TEXT_FIELDS, first_field, get as _get
from ..problems import Problem, normalize
from ..records import RecordError, make_id, numbered_jsonl
from ..settings import DATASETS

FORMATS = ("auto", "lm-eval", "jsonl", "gsm8k-solutions")


@dataclass
class RawPath:
    """One solution text as read from a file, before it is matched and graded."""

    line: int
    question: str
    text: str
    model: str
    gold: str | None = None
    level: object = None
    subject: str | None = None
    extra: dict | None = None
    dataset: str | None = None  # the line's own `dataset` field, if any
    gold_field: str | None = None  # the field the gold answer was read from
    finish_reason: str | None = None  # a path record's own: "length" keeps a truncated path truncated


@dataclass
class Unmatched:
    """Lines whose question matched no known problem (and that carry no gold answer): left out,
    counted, and the first few named, so one stray question does not stop a whole file."""

    count: int = 0
    examples: list[str] = field(default_factory=list)
    failed: int = 0  # records of requests that failed (`kind: failed`): no path to import
    SHOWN = 5

    def add(self, source: Path, raw: "RawPath") -> None:
        self.count += 1
        if len(self.examples) < self.SHOWN:
            snippet = _question_key(raw.question)
            self.examples.append(f"{source}:{raw.line}: {snippet[:70]}{'...' if len(snippet) > 70 else ''}")


def matched_paths(sources: Sequence[str | Path], options, known: "Known",
                  unmatched: Unmatched | None = None) -> Iterator[tuple]:
    """(problem, raw path, sample index, record id, source) for every solution text in
    `sources`, matched to its problem (its own gold answer, else a known problem by question);
    a line that matches none is added to `unmatched` and left out. The id depends on the
    problem, the model, the file's name and the index, so a rerun of the same import finds every
    path it stored."""
    unmatched = unmatched if unmatched is not None else Unmatched()
    for source in sources:
        source = Path(source)
        if not source.exists():
            raise RecordError(source, None, "file not found")
        counts: dict[tuple[str, str], int] = {}
        for raw in read_raw_paths(source, options, unmatched):
            problem = _problem_for(raw, source, options, known)
            if problem is None:
                unmatched.add(source, raw)
                continue
            key = (problem.id, raw.model)
            sample_index = counts.get(key, 0)
            counts[key] = sample_index + 1
            yield problem, raw, sample_index, make_id(problem.id, raw.model, "import", source.name, sample_index), source


class Known:
    """Questions (or problems) by their text, loaded on first use."""

    def __init__(self, source):
        self.source, self._index = source, None

    def keys(self) -> dict:
        if self._index is None:
            items = self.source() if callable(self.source) else (self.source or ())
            self._index = {_question_key(getattr(item, "question", item)): item for item in items}
        return self._index

    def get(self, key: str):
        return self.keys().get(key) if self.source is not None else None


# -- reading ---------------------------------------------------------------------------------


def read_raw_paths(path: Path, options, unmatched: Unmatched | None = None) -> Iterator[RawPath]:
    """Yield the solution texts of one file, whatever its format. The records of failed
    requests that a lema path file holds (`kind: failed`, no text) are counted in `unmatched`."""
    records = _read_objects(path)
    if unmatched is not None:
        failed = sum(1 for _, r in records if r.get("kind") == "failed")
        unmatched.failed += failed
        if failed:
            records = [(line, r) for line, r in records if r.get("kind") != "failed"]
    fmt = options.format
    if fmt == "auto":
        first = next((r for _, r in records), None)
        fmt = detect_format(first) if first is not None else "jsonl"
    reader = {"lm-eval": _read_lm_eval, "jsonl": _read_generic, "gsm8k-solutions": _read_gsm8k_solutions}[fmt]
    yield from reader(path, records, options)


def detect_format(record: dict) -> str:
    if "doc" in record and "resps" in record:
        return "lm-eval"
    if "ground_truth" in record and any(isinstance(v, dict) and "solution" in v for v in record.values()):
        return "gsm8k-solutions"
    return "jsonl"


def _read_objects(path: Path) -> list[tuple[int, dict]]:
    return list(numbered_jsonl(path))


def _need_text(path: Path, line: int, record: dict, name: str) -> str:
    value = _get(record, name)
    if not isinstance(value, str) or not value.strip():
        raise RecordError(path, line, "missing or empty" if value in (None, "") else "expected text", field=name)
    return value


def _question_field(record: dict, options) -> str:
    if options.question_field:
        return options.question_field
    return "problem" if "problem" in record and "question" not in record else "question"


def _gold(record: dict, options, skip: tuple[str, ...] = ()) -> tuple[object, str | None]:
    """The gold answer a line carries and its field: `gold_field`, else the first of
    `fields.GOLD_FIELDS`."""
    if options.gold_field is not None:
        return _get(record, options.gold_field), options.gold_field
    name = first_field(record, GOLD_FIELDS, skip=skip)
    return (record.get(name), name) if name else (None, None)


def _dataset(record: dict) -> str | None:
    value = record.get("dataset")
    return value if value in DATASETS else None


def _skip_for_text(record: dict) -> tuple[str, ...]:
    """A MATH problem's `solution` is its gold rationale: never read it as the text to grade when
    the record also has a model's text."""
    return ("solution",) if any(record.get(name) for name in TEXT_FIELDS if name != "solution") else ()


def _read_lm_eval(path: Path, records, options) -> Iterator[RawPath]:
    model = options.model_name or path.resolve().parent.name or path.stem
    seen_docs: set = set()
    for line, record in records:
        if "doc" not in record or "resps" not in record:
            raise RecordError(path, line, "not an lm-eval sample (needs 'doc' and 'resps')", field="doc" if "doc" not in record else "resps")
        doc_id = record.get("doc_id", line)
        if doc_id in seen_docs:  # the same doc again under another filter
            continue
        seen_docs.add(doc_id)
        doc = record["doc"] if isinstance(record["doc"], dict) else {}
        field = _question_field(doc, options)
        question = _need_text(path, line, doc, field) if _get(doc, field) is not None else _need_text(path, line, record, field)
        if options.gold_field is not None:
            gold, gold_field = _get(doc, options.gold_field), options.gold_field
            if gold is None:
                gold = _get(record, options.gold_field)
        elif record.get("target") not in (None, ""):  # lm-eval logs the task's target with every sample
            gold, gold_field = record["target"], "target"
        else:
            gold, gold_field = _gold(doc, options)
        texts = []
        for response in record["resps"] or []:
            for text in response if isinstance(response, list) else [response]:
                if not isinstance(text, str):
                    raise RecordError(path, line, "expected generated text", field="resps")
                texts.append(text)
        if not texts:
            raise RecordError(path, line, "no generations", field="resps")
        for text in texts:
            yield RawPath(line, question, text, model, gold, doc.get("level"), doc.get("type") or doc.get("subject"), {"doc_id": doc_id},
                          _dataset(doc) or _dataset(record), gold_field)


def _read_generic(path: Path, records, options) -> Iterator[RawPath]:
    for line, record in records:
        question = _need_text(path, line, record, _question_field(record, options))
        text_field = first_field(record, TEXT_FIELDS, options.text_field, skip=_skip_for_text(record))
        texts = _get(record, text_field) if text_field else None
        if isinstance(texts, str):
            texts = [texts]
        if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
            raise RecordError(path, line, "missing, or not text / a list of texts", field=text_field or TEXT_FIELDS[0])
        if options.model_field:
            model = _need_text(path, line, record, options.model_field)
        elif options.model_name:
            model = options.model_name
        else:  # a path record names its model; a correction or CoT record its writer
            model = next((record[name] for name in ("model", "corrector", "source_model")
                          if isinstance(record.get(name), str) and record[name]), path.stem)
        gold, gold_field = _gold(record, options, skip=(text_field,))
        # a lema path record keeps what its stage found: a reply cut at max_tokens stays truncated
        finish = record.get("finish_reason") if isinstance(record.get("finish_reason"), str) else None
        for text in texts:
            yield RawPath(line, question, text, model, gold, record.get("level"), record.get("type") or record.get("subject"),
                          dataset=_dataset(record), gold_field=gold_field, finish_reason=finish)


def _read_gsm8k_solutions(path: Path, records, options) -> Iterator[RawPath]:
    for line, record in records:
        question = _need_text(path, line, record, options.question_field or "question")
        found = False
        for key, value in record.items():
            if not (isinstance(value, dict) and "solution" in value):
                continue
            found = True
            if options.model_name and key != options.model_name:
                continue
            text = value["solution"]
            if not isinstance(text, str):
                raise RecordError(path, line, "expected text", field=f"{key}.solution")
            extra = {"reported_correct": value["is_correct"]} if isinstance(value.get("is_correct"), bool) else {}
            gold, gold_field = _gold(record, options)
            yield RawPath(line, question, text, key, gold, extra=extra, gold_field=gold_field)
        if not found:
            raise RecordError(path, line, "no model objects with a 'solution'")


# -- matching -------------------------------------------------------------------------------


def _question_key(question: str) -> str:
    return " ".join(question.split())


def _problem_for(raw: RawPath, source: Path, options, index: "Known") -> Problem:
    dataset = options.dataset or raw.dataset or "gsm8k"
    if options.gold_field is not None or raw.gold not in (None, ""):
        # the line's own gold, read as a problem file's line is (the one gold reader)
        field = "solution" if raw.gold_field == "solution" else "answer"
        line = {"question": raw.question, field: raw.gold, "dataset": dataset, "level": _level(raw.level),
                "subject": raw.subject if isinstance(raw.subject, str) else None}
        try:
            return normalize(line, dataset, (str(source), raw.line))
        except RecordError as exc:
            if exc.field not in ("answer", "solution"):
                raise
            raise RecordError(source, raw.line, "no gold answer found (a bare answer, or a solution ending '#### X', "
                              "'The answer is X' or \\boxed{X})", field=options.gold_field or raw.gold_field or "answer") from None
    return index.get(_question_key(raw.question))


def _level(value) -> int | None:
    match = re.search(r"\d+", str(value)) if value is not None else None
    return int(match.group()) if match else None

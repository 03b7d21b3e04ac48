"""Grade a JSONL file of predictions (the work behind `lema grade`).

Three layouts are recognised line by line from their fields, so no flag is needed:

* plain records, including every record file lema-plugin writes (paths, mistakes, corrections,
  rejected corrections, CoT, graded output): the text and the gold answer are found by field
  name (`lema_plugin.fields`: `text`, `corrected_solution`, `rationale`, `completion`, ... and
  `answer`, `target`, `gold`, ...), or read from the fields the caller names;
* lm-eval `--log_samples` output: `resps` / `filtered_resps`, `doc`, `target` (the raw
  generation `resps[0][0]` is graded, so lm-eval's own filters do not decide the verdict; lm-eval
  writes one row per document and filter, and a repeated document counts once);
* the official LeMa inference output: `{"samples": [text, ...]}`, gold from the record or, since
  that file carries none, from the matching line of a separate gold file.

A bad line (not UTF-8, not JSON, a field missing) is counted and reported with its line number;
the other lines are still graded. Each graded record gains `extracted`, `correct` and `decided_by`
(`rule`, `symbolic`, or `judge` when an LLM judge settled what the rules could not).
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from . import Graded, gold_answer, grade
from ..fields import GOLD_FIELDS, QUESTION_FIELDS, TEXT_FIELDS, first_field
from ..records import RecordError, numbered_jsonl, parse_line

if TYPE_CHECKING:
    from ..llm.types import Endpoint


@dataclass
class GradeReport:
    """Counts for the summary: overall and per level / subject."""

    graded: int = 0
    correct: int = 0
    extracted: int = 0
    bad_lines: list[tuple[int, str]] = field(default_factory=list)
    repeated: int = 0  # lm-eval rows repeating a document (one row per filter), counted once
    formats: Counter = field(default_factory=Counter)
    datasets: Counter = field(default_factory=Counter)  # grading rules used -> records
    decided_by: Counter = field(default_factory=Counter)  # rule / symbolic / judge
    unsettled: int = 0  # graded not correct because nothing could decide (no judge, or it did not answer)
    by_level: dict[str, list[int]] = field(default_factory=dict)  # name -> [correct, graded]
    by_subject: dict[str, list[int]] = field(default_factory=dict)
    judge_failures: Counter = field(default_factory=Counter)  # why judge requests finally failed: reason -> requests

    @property
    def accuracy(self) -> float:
        return self.correct / self.graded if self.graded else 0.0

    def to_dict(self) -> dict:
        """The figures of `grade_summary.json`."""
        return {"graded": self.graded, "correct": self.correct, "accuracy": round(self.accuracy, 6),
                "answer_found": self.extracted, "layouts": dict(self.formats), "datasets": dict(self.datasets),
                "decided_by": dict(self.decided_by), "undecided": self.unsettled, "repeated_lm_eval_rows": self.repeated,
                "bad_lines": len(self.bad_lines), "by_level": self.by_level, "by_subject": self.by_subject,
                "judge_failures": self.judge_failures.most_common(5)}

    def add(self, correct: bool, extracted: bool, level: object, subject: object) -> None:
        self.graded += 1
        self.correct += bool(correct)
        self.extracted += bool(extracted)
        for table, key in ((self.by_level, level), (self.by_subject, subject)):
            if key not in (None, ""):
                counts = table.setdefault(str(key), [0, 0])
                counts[0] += bool(correct)
                counts[1] += 1


def _first_text(value: object) -> str | None:
    """The first string in a (possibly nested) list, as lm-eval stores responses."""
    while isinstance(value, (list, tuple)):
        if not value:
            return None
        value = value[0]
    return value if isinstance(value, str) else None


def _gold_from(record: dict, gold_field: str | None, skip: tuple[str, ...] = ()) -> object:
    name = first_field(record, GOLD_FIELDS, gold_field, skip=skip)
    value = record.get(name) if name else None
    if name == "solution" and not gold_field:  # a gold rationale: only one that states its answer, as a problem file reads it
        from .gold import stated_answer

        return value if stated_answer(value, "math") else None
    return None if value in (None, "") else value


def _named(given: str | None, names: tuple[str, ...]) -> str:
    """The field to name in an error: the one asked for, else the first looked for."""
    return given or names[0]


def read_item(record: dict, prediction_field: str | None, gold_field: str | None,
              gold_record: dict | None) -> tuple[str, str, object, dict]:
    """(layout, prediction text, gold, the dict holding level/subject) for one input record.

    Raises KeyError naming the missing field.
    """
    if "doc" in record and ("resps" in record or "filtered_resps" in record):
        text = _first_text(record.get("resps")) or _first_text(record.get("filtered_resps"))
        if text is None:
            raise KeyError("resps")
        doc = record.get("doc") if isinstance(record.get("doc"), dict) else {}
        gold = record.get("target")
        if gold in (None, ""):
            gold = _gold_from(doc, gold_field)
        if gold in (None, ""):
            raise KeyError("target")
        return "lm-eval", text, gold, doc
    text_field = first_field(record, TEXT_FIELDS, prediction_field)
    if "samples" in record and (text_field is None or text_field not in record):
        text = _first_text(record.get("samples"))
        if text is None:
            raise KeyError("samples")
        gold = _gold_from(record, gold_field)
        if gold is None and gold_record is not None:
            gold = _gold_from(gold_record, gold_field)
        if gold is None:
            raise KeyError(_named(gold_field, GOLD_FIELDS))
        return "lema", text, gold, gold_record or record
    text = record.get(text_field) if text_field else None
    if isinstance(text, list):  # several samples of one question: the first is graded
        text = _first_text(text)
    if not isinstance(text, str):
        raise KeyError(_named(prediction_field, TEXT_FIELDS))
    gold = _gold_from(record, gold_field, skip=(text_field,))
    if gold is None:
        raise KeyError(_named(gold_field, GOLD_FIELDS))
    return "plain", text, gold, record


def _gold_lines(path: Path | None) -> list[dict | None]:
    if path is None:
        return []
    return [row for _, row in numbered_jsonl(path)]


def record_dataset(record: dict, doc: dict, predictions: str | Path) -> str:
    """The grading rules for a record when the caller names none: its own `dataset` field (every
    record lema-plugin writes has one), else a MATH task's file name, else GSM8K."""
    from .datasets import dataset_kind

    for value in (record.get("dataset"), doc.get("dataset")):
        if isinstance(value, str):
            try:
                return dataset_kind(value)
            except ValueError:
                pass
    return "math" if "math" in Path(predictions).name.lower() else "gsm8k"


def grade_file(
    predictions: str | Path,
    dataset: str | None = None,
    text_field: str | None = None,
    gold_field: str | None = None,
    out: str | Path | None = None,
    gold_file: str | Path | None = None,
    judge: "Endpoint | None" = None,
    client=None,
) -> GradeReport:
    """Grade every line of `predictions`; write each record plus `extracted`/`correct`/`decided_by`
    to `out`. `text_field` and `gold_field` name the fields to read (default: found by name);
    `dataset` picks the grading rules (default: each record's own, see `record_dataset`).

    With a `judge` endpoint (and the `LLMClient` to reach it), what the rules cannot decide is
    asked of the judge once all lines are graded (see `judge.judge_graded`).
    """
    report = GradeReport()
    golds = _gold_lines(Path(gold_file) if gold_file else None)
    rows: list[tuple[dict, Graded, object, str, dict, str, str]] = []  # record, grade, gold, layout, doc, text, dataset
    index = 0  # position among non-blank lines, to pair with the gold file
    with open(predictions, "rb") as handle:
        for lineno, line in enumerate(handle, 1):
            if not line.strip():
                continue
            gold_record = golds[index] if index < len(golds) else None
            index += 1
            try:
                record = parse_line(line, predictions, lineno)  # lone surrogates repaired here
            except RecordError as exc:
                report.bad_lines.append((lineno, exc.reason))
                continue
            try:
                layout, text, gold, doc = read_item(record, text_field, gold_field, gold_record)
            except KeyError as exc:
                report.bad_lines.append((lineno, f"field {exc.args[0]!r}: missing or empty"))
                continue
            rules = dataset or record_dataset(record, doc, predictions)
            rows.append((record, grade(text, gold, rules, _question(record, doc)), gold, layout, doc, text, rules))
    if judge is not None and rows:
        grades = _judged(rows, judge, client, report.judge_failures)
        rows = [(record, graded, *rest) for (record, _, *rest), graded in zip(rows, grades)]
    graded_records: list[dict] = []
    seen_docs: set[tuple] = set()
    for record, graded, gold, layout, doc, text, rules in rows:
        graded_records.append({**record, "gold_answer": gold_answer(gold, rules), **graded.as_fields()})
        if layout == "lm-eval":
            key = (record.get("doc_id"), record.get("prompt_hash"), text)
            if key in seen_docs:
                report.repeated += 1
                continue
            seen_docs.add(key)
        report.formats[layout] += 1
        report.datasets[rules] += 1
        report.decided_by[graded.decided_by] += 1
        report.unsettled += not graded.settled
        report.add(graded.correct, graded.extracted is not None, doc.get("level"), doc.get("subject") or doc.get("type"))
    if out is not None:
        from ..store import write_jsonl_atomic

        write_jsonl_atomic(out, graded_records)
    return report


def _question(record: dict, doc: dict) -> str | None:
    """The question a line answers (its own field, or its lm-eval doc's), if it carries one."""
    return next((source[name] for source in (record, doc) for name in QUESTION_FIELDS
                 if isinstance(source.get(name), str)), None)


def _judged(rows, judge, client, failures: Counter) -> list[Graded]:
    import asyncio

    from .judge import JudgeItem, judge_graded

    items = []
    for record, graded, gold, _layout, doc, text, dataset in rows:
        items.append((graded, JudgeItem(solution=text, gold=gold_answer(gold, dataset) or str(gold),
                                        question=_question(record, doc))))

    async def run():
        try:
            return await judge_graded(items, judge, client, failures=failures)
        finally:
            await client.aclose()

    return asyncio.run(run())

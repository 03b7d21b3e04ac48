"""Path records: one graded reasoning path each, and the run folder derived from them.

`lema sample` stores a path record per reply, `lema import` per line it reads; both finalize the
folder here, from the store alone, so imported paths are graded and filtered exactly like sampled
ones:

- `paths.jsonl` is rewritten in a fixed order (problem, generator, sample index), so a resumed run
  and an uninterrupted one give the same file;
- `mistakes.jsonl` holds the wrong paths, de-duplicated per question by normalized text and
  capped per question (taking generators in turn, so every model's mistakes are represented);
  paths with no extractable answer and truncated ones are kept out unless `keep_unfinished`;
- `sample_summary.json`: per generator accuracy, mistakes kept, unextractable and truncated shares and
  tokens (and, for MATH, accuracy per level).

Every path records `decided_by` (rule, symbolic or judge). Failed requests are recorded too
(kind "failed", with the error) but never count as done: a re-run asks again, and once a path
succeeds its failure records are dropped on finalize.
"""
from __future__ import annotations

import time
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field

from pathlib import Path
from typing import Iterable, Sequence

from ..grading import Graded, grade
from ..problems import Problem, grader_dataset
from ..records import make_id
from ..steps import split_steps
from ..store import RunStore, write_jsonl_atomic
from ..summaries import write_summary as write_summary_file
from ..text import dedupe_key

PATHS_FILE = "paths.jsonl"
MISTAKES_FILE = "mistakes.jsonl"
SUMMARY_FILE = "sample_summary.json"
KINDS = ("correct", "wrong", "unextractable", "truncated", "failed")
_OPTIONAL_TEXT = (str, type(None))
# The shape of a stored path: a record that lacks it is set aside on load and asked again
PATH_FIELDS = {"id": (str,), "problem_id": (str,), "dataset": (str,), "question": (str,), "answer": (str,),
               "model": (str,), "sample_index": (int,), "text": (str,), "kind": (str,), "correct": (bool,),
               "prediction": _OPTIONAL_TEXT, "level": (int, type(None)), "subject": _OPTIONAL_TEXT}


@dataclass
class SampleSummary:
    """What a run folder holds after finalizing: counts per generator and overall."""

    out_dir: str
    generators: dict[str, dict]
    total: dict
    questions: int
    questions_with_mistakes: int
    elapsed_s: float = 0.0
    requests: int = 0  # requests sent by this run (not answered from the store)
    usage: dict = field(default_factory=dict)  # the client's counts over this stage (see summaries.usage_since)
    usage_lines: list[str] = field(default_factory=list)
    test_questions: int = 0  # `lema import`: questions found in the dataset's test split (contamination)
    test_split: str = ""  # ... of which dataset
    unmatched: int = 0  # `lema import`: lines left out, their question matching no known problem
    unmatched_lines: list[str] = field(default_factory=list)  # ... the first few, "FILE:LINE: question"
    failed_records: int = 0  # `lema import`: records of failed requests in the files, not paths

    def to_dict(self) -> dict:
        return asdict(self)

    def table(self) -> str:
        """A text table for the terminal: one row per generator, then per MATH level."""
        from ..tables import format_table

        headers = ["generator", "paths", "accuracy", "mistakes", "dupes", "unextr.", "trunc.", "failed", "tokens in", "tokens out"]

        def row(label: str, s: dict) -> list:
            return [
                label, s["paths"], s["accuracy"], s["mistakes"], s["duplicates"], s["unextractable_share"],
                s["truncated_share"], s["failed"], s["prompt_tokens"], s["completion_tokens"],
            ]

        rows = [row(name, stats) for name, stats in self.generators.items()]
        if len(self.generators) > 1:
            rows.append(row("all", self.total))
        parts = [format_table(headers, rows)]
        level_rows = [
            [name, level, s["paths"], s["accuracy"], s["mistakes"]]
            for name, stats in self.generators.items()
            for level, s in sorted(stats.get("by_level", {}).items(), key=lambda kv: int(kv[0]))
        ]
        if level_rows:
            parts.append(format_table(["generator", "level", "paths", "accuracy", "mistakes"], level_rows))
        parts.append(
            f"{self.questions} questions, {self.questions_with_mistakes} with at least one mistake kept; "
            f"{self.total['mistakes']} mistakes in {Path(self.out_dir) / MISTAKES_FILE}"
        )
        return "\n\n".join(parts)

    def lines(self) -> list[str]:
        """The table, the client's usage lines and how many requests this run sent."""
        return [self.table(), *self.usage_lines, f"{self.requests} new requests in {self.elapsed_s:.1f} s"]

    def warnings(self) -> list[str]:
        """What the user must know about the data (shown on stderr)."""
        out = []
        if self.unmatched:
            out.append(f"warning: {self.unmatched} line{'s' if self.unmatched != 1 else ''} left out: no gold answer in the "
                       "line and the question matches no known problem (check --dataset/--split/--data-file, or name the "
                       "gold answer's field with --gold-field):")
            out += [f"  {line}" for line in self.unmatched_lines]
            if self.unmatched > len(self.unmatched_lines):
                out.append(f"  ... and {self.unmatched - len(self.unmatched_lines)} more")
        if self.failed_records:
            out.append(f"note: {self.failed_records} record{'s' if self.failed_records != 1 else ''} of failed requests "
                       "(kind: failed) skipped: they hold no path")
        if self.test_questions:
            out.append(f"warning: {self.test_questions} of {self.questions} questions are from the {self.test_split} test "
                       "split: training on their mistakes contaminates any test-set score (collect mistakes on the train split)")
        return out

    @property
    def produced(self) -> int:
        return self.total["mistakes"]

    @property
    def failed(self) -> int:
        return self.total["failed"]

    def headline(self) -> list[tuple[str, str]]:
        """The run summary's rows."""
        t = self.total
        return [("paths", f"{t['paths']} (accuracy {t['accuracy']}, {t['failed']} failed)"), ("mistakes kept", str(t["mistakes"]))]


# -- grading one path ----------------------------------------------------------------------


def path_record(
    problem: Problem,
    model: str,
    sample_index: int,
    text: str,
    finish_reason: str | None,
    record_id: str,
    graded: Graded | None = None,
    **extra,
) -> dict:
    """Grade and split one reasoning path into a path record.

    kind: "correct" when the grader accepts it; otherwise "truncated" when generation hit the
    token limit, "unextractable" when no final answer can be found, else "wrong". `graded` is a
    grade already in hand (one a judge settled); by default the rules grade `text` here.
    `decided_by` says which path decided (rule, symbolic or judge).
    """
    graded = graded or path_grade(problem, text)
    prediction, correct = graded.extracted, graded.correct
    if correct:
        kind = "correct"
    elif finish_reason == "length":
        kind = "truncated"
    elif prediction is None:
        kind = "unextractable"
    else:
        kind = "wrong"
    record = {
        "id": record_id,
        **_whose(problem, model, sample_index),
        "text": text,
        "steps": split_steps(text),
        "prediction": prediction,
        "correct": correct,
        "decided_by": graded.decided_by,
        "finish_reason": finish_reason,
        "kind": kind,
        **problem.tags(),
    }
    record.update(extra)
    return record


def _whose(problem: Problem, model: str, sample_index: int) -> dict:
    """The fields that say whose path a record is: its problem (with its gold), model and sample."""
    return {
        "problem_id": problem.id,
        "dataset": grader_dataset(problem.dataset),
        "question": problem.question,
        "answer": problem.answer,
        "model": model,
        "sample_index": sample_index,
    }


def path_grade(problem: Problem, text: str) -> Graded:
    """The rules' grade of one path; an empty reply is wrong and settled (nothing to judge)."""
    if not text.strip():
        return Graded(None, False)
    return grade(text, problem.answer, grader_dataset(problem.dataset), problem.question)


def failed_record(problem: Problem, model: str, sample_index: int, sample_id: str, error: str) -> dict:
    """A request that finally failed. Its id is fresh each time, so it never marks the path done."""
    record = {
        "id": make_id(sample_id, "failed", time.time_ns()),
        "sample_id": sample_id,
        **_whose(problem, model, sample_index),
        "text": "",
        "steps": [],
        "prediction": None,
        "correct": False,
        "finish_reason": None,
        "kind": "failed",
        "error": error,
        **problem.tags(),
    }
    return record


def drop_unasked_failures(out_dir: str | Path, labels: set[str], asked: set[str]) -> None:
    """Take out of `paths.jsonl` the failure records of these generators for requests this run
    does not ask (a misspelt model name fixed, fewer samples): they are no pending work, and
    would keep the folder "failed" for good."""
    path = Path(out_dir) / PATHS_FILE
    if not path.exists():
        return
    with RunStore(path, PATH_FIELDS) as store:
        records = list(store)
    kept = [r for r in records if not (r.get("kind") == "failed" and r.get("model") in labels
                                       and r.get("sample_id") not in asked)]
    if len(kept) < len(records):
        write_jsonl_atomic(path, kept)


# -- finalizing a run folder ---------------------------------------------------------------


def current_paths(records: Iterable[dict]) -> list[dict]:
    """The store's records with failures dropped once the same path succeeded (or failed
    again later: the last failure is kept)."""
    records = list(records)
    done = {r["id"] for r in records if r.get("kind") != "failed"}
    last_failure: dict[str, dict] = {}
    for r in records:
        if r.get("kind") == "failed" and r.get("sample_id") not in done:
            last_failure[r.get("sample_id") or r["id"]] = r
    keep_failures = {id(r) for r in last_failure.values()}
    return [r for r in records if r.get("kind") != "failed" or id(r) in keep_failures]


def select_mistakes(
    paths: Sequence[dict],
    max_per_question: int | None = None,
    keep_unfinished: bool = False,
) -> tuple[list[dict], Counter]:
    """Mistakes from ordered paths: per question, distinct texts only, at most `max_per_question`
    taken from the generators in turn. Returns (mistakes, duplicates dropped per model)."""
    allowed = {"wrong"} | ({"unextractable", "truncated"} if keep_unfinished else set())
    duplicates: Counter = Counter()
    by_question: dict[str, list[dict]] = defaultdict(list)
    seen: dict[str, set[str]] = defaultdict(set)
    for path in paths:
        if path.get("kind") not in allowed:
            continue
        key = dedupe_key(path.get("text", ""))
        if key in seen[path["problem_id"]]:
            duplicates[path["model"]] += 1
            continue
        seen[path["problem_id"]].add(key)
        by_question[path["problem_id"]].append(path)
    mistakes: list[dict] = []
    for candidates in by_question.values():
        mistakes.extend(_round_robin(candidates, max_per_question))
    return mistakes, duplicates


def _round_robin(candidates: list[dict], limit: int | None) -> list[dict]:
    if limit is None or len(candidates) <= limit:
        return candidates
    queues: dict[str, list[dict]] = defaultdict(list)
    for c in candidates:
        queues[c["model"]].append(c)
    chosen: list[dict] = []
    while len(chosen) < limit:
        for queue in queues.values():
            if queue and len(chosen) < limit:
                chosen.append(queue.pop(0))
    order = {id(c): i for i, c in enumerate(candidates)}
    return sorted(chosen, key=lambda c: order[id(c)])


def finalize_run(
    out_dir: str | Path,
    problem_order: Sequence[str] = (),
    model_order: Sequence[str] = (),
    max_mistakes_per_question: int | None = None,
    keep_unfinished: bool = False,
) -> SampleSummary:
    """Rewrite `paths.jsonl` in a fixed order, derive `mistakes.jsonl` and `sample_summary.json`.

    Works on everything in the folder's store, so paths sampled earlier, or imported, count too.
    """
    out_dir = Path(out_dir)
    with RunStore(out_dir / PATHS_FILE, PATH_FIELDS) as store:
        records = list(store)
    problem_rank = {pid: i for i, pid in enumerate(problem_order)}
    model_rank = {m: i for i, m in enumerate(model_order)}
    unknown = float("inf")  # records from earlier runs or imports go after this run's, by id

    def order(r: dict):
        return (
            problem_rank.get(r["problem_id"], unknown), r["problem_id"],
            model_rank.get(r["model"], unknown), r["model"], r.get("sample_index", 0), r["id"],
        )

    paths = sorted(current_paths(records), key=order)
    write_jsonl_atomic(out_dir / PATHS_FILE, paths)
    mistakes, duplicates = select_mistakes(paths, max_mistakes_per_question, keep_unfinished)
    write_jsonl_atomic(out_dir / MISTAKES_FILE, mistakes)
    summary = summarize(out_dir, paths, mistakes, duplicates)
    write_summary(out_dir, summary)
    return summary


def summarize(out_dir: Path, paths: Sequence[dict], mistakes: Sequence[dict], duplicates: Counter) -> SampleSummary:
    kept = Counter(m["model"] for m in mistakes)
    groups: dict[str, list[dict]] = defaultdict(list)
    for p in paths:
        groups[p["model"]].append(p)
    generators = {}
    for model, items in groups.items():
        stats = _stats(items, kept[model], duplicates[model])
        levels = sorted({p["level"] for p in items if p.get("dataset") == "math" and p.get("level") is not None})
        if levels:
            kept_by_level = Counter(m.get("level") for m in mistakes if m["model"] == model)
            stats["by_level"] = {
                str(level): _level_stats([p for p in items if p.get("level") == level], kept_by_level[level])
                for level in levels
            }
        generators[model] = stats
    total = _stats(list(paths), len(mistakes), sum(duplicates.values()))
    return SampleSummary(
        out_dir=str(out_dir),
        generators=generators,
        total=total,
        questions=len({p["problem_id"] for p in paths}),
        questions_with_mistakes=len({m["problem_id"] for m in mistakes}),
    )


def _stats(items: Sequence[dict], mistakes: int, duplicates: int) -> dict:
    kinds = Counter(p.get("kind") for p in items)
    answered = len(items) - kinds["failed"]
    share = (lambda n: round(n / answered, 4)) if answered else (lambda n: None)
    return {
        "paths": answered,
        "failed": kinds["failed"],
        "correct": kinds["correct"],
        "wrong": kinds["wrong"],
        "unextractable": kinds["unextractable"],
        "truncated": kinds["truncated"],
        "accuracy": share(kinds["correct"]),
        "unextractable_share": share(kinds["unextractable"]),
        "truncated_share": share(kinds["truncated"]),
        "duplicates": duplicates,
        "mistakes": mistakes,
        "judged": sum(p.get("decided_by") == "judge" for p in items),
        "prompt_tokens": sum(p.get("prompt_tokens") or 0 for p in items),
        "completion_tokens": sum(p.get("completion_tokens") or 0 for p in items),
    }


def _level_stats(items: Sequence[dict], mistakes: int) -> dict:
    answered = [p for p in items if p.get("kind") != "failed"]
    correct = sum(p.get("kind") == "correct" for p in answered)
    return {
        "paths": len(answered),
        "correct": correct,
        "accuracy": round(correct / len(answered), 4) if answered else None,
        "mistakes": mistakes,
    }


def write_summary(out_dir: Path, summary: SampleSummary, name: str = SUMMARY_FILE) -> None:
    write_summary_file(Path(out_dir) / name, summary)

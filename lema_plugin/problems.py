"""Problem records and the loaders that make them.

GSM8K and MATH come from the hub by default (`openai/gsm8k`, the seven subject configs of
`EleutherAI/hendrycks_math`, `HuggingFaceH4/MATH-500`), or from local JSONL/Parquet files with
the same field names: an explicit `data_file`, or `$LEMA_DATA_DIR/<dataset>/<split>*.jsonl`.
Files already in the Problem format (what `lema evolve` writes) load too.

Every source is normalized to one `Problem` shape with a content-hash id, the gold final answer
and the gold rationale, so later stages never care where a question came from.
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .errors import ConfigError
from .records import RecordError, check_fields, make_id, numbered_jsonl
from pydantic import Field

from .settings import DATASETS, MAX_COUNT, Dataset, Settings
from .text import gsm8k_gold

MATH_SUBJECTS = (
    "algebra",
    "counting_and_probability",
    "geometry",
    "intermediate_algebra",
    "number_theory",
    "prealgebra",
    "precalculus",
)
_LEVEL = re.compile(r"^\s*(?:level\s*)?(\d+|\?)\s*$", re.IGNORECASE)  # 3, "3", "Level 3", "Level ?"
_NUMBER = (int, float)
# Field types of a record already in the Problem format (checked before any request is paid for)
PROBLEM_FIELDS = {"id": (str,), "dataset": (str,), "question": (str,), "answer": (str, *_NUMBER),
                  "solution": (str, type(None)), "subject": (str, type(None))}


@dataclass
class Problem:
    id: str
    dataset: str  # "gsm8k" or "math" (MATH-500 problems are MATH problems)
    question: str
    answer: str  # gold final answer
    solution: str  # gold rationale
    level: int | None = None
    subject: str | None = None
    extra: dict = field(default_factory=dict)  # provenance (evolved questions), source ids

    def tags(self) -> dict:
        """`level` and `subject` when known: derived records carry them for per-level summaries."""
        return {k: v for k, v in (("level", self.level), ("subject", self.subject)) if v is not None}

    def to_dict(self) -> dict:
        record = asdict(self)
        extra = record.pop("extra")
        return {**record, **extra}

    @classmethod
    def from_dict(cls, record: dict) -> "Problem":
        known = {f for f in cls.__dataclass_fields__ if f != "extra"}
        extra = {k: v for k, v in record.items() if k not in known}
        return cls(**{k: record.get(k) for k in known}, extra=extra)


def grader_dataset(dataset: str) -> str:
    """The grading rules a dataset uses (`lema_plugin.grading.dataset_kind`); a name the grader
    does not know is passed through for the caller to report."""
    from .grading.datasets import dataset_kind

    try:
        return dataset_kind(dataset)
    except ValueError:
        return dataset


def parse_level(value, path: str = "<input>", line: int | None = None) -> int | None:
    """A MATH level as a number (`3`, `"3"`, `"Level 3"`; `"Level ?"` and null are unknown);
    anything else is bad input naming the field, never a crash in a later summary."""
    if value is None or value == "":
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    match = _LEVEL.match(value) if isinstance(value, str) else None
    if match is None:
        raise RecordError(path, line, f"expected a whole number or 'Level N', got {json.dumps(value, default=str)[:40]}",
                          field="level")
    return None if match.group(1) == "?" else int(match.group(1))


def _normalize_subject(value, path: str, line: int | None) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise RecordError(path, line, f"expected text, got {json.dumps(value, default=str)[:40]}", field="subject")
    return value.strip().lower().replace(" & ", "_and_").replace(" ", "_")


def normalize(record: dict, dataset: str, where: tuple[str, int | None] = ("<hub>", None)) -> Problem:
    """Turn one raw record (hub or local, any supported shape) into a Problem."""
    path, line = where

    def need(name: str, numbers: bool = False) -> str:
        value = record.get(name)
        if value is None or (isinstance(value, str) and not value.strip()):
            raise RecordError(path, line, "missing or empty", field=name)
        check_fields(record, {name: (str, *_NUMBER) if numbers else (str,)}, path, line)
        return str(value)

    if {"id", "dataset", "question", "answer"} <= record.keys():  # already a Problem
        for name in ("id", "dataset", "question", "answer"):
            need(name, numbers=name == "answer")
        check_fields(record, PROBLEM_FIELDS, path, line)
        if record["dataset"] not in DATASETS:
            raise RecordError(path, line, f"unknown dataset {record['dataset']!r} (expected {', '.join(DATASETS)})",
                              field="dataset")
        problem = Problem.from_dict(record)
        problem.answer = str(problem.answer)
        problem.solution = problem.solution or ""
        problem.level = parse_level(record.get("level"), path, line)
        problem.subject = _normalize_subject(record.get("subject"), path, line)
        return problem

    if dataset == "gsm8k":
        question, rationale = need("question"), need("answer")
        gold = gsm8k_gold(rationale)
        if gold is None:
            raise RecordError(path, line, "no '#### <answer>' line", field="answer")
        return Problem(make_id("gsm8k", question), "gsm8k", question, gold, rationale)

    from .grading import gold_answer, last_boxed

    question, solution = need("problem"), need("solution")
    # the grader's gold reader: every value when a solution boxes several, not just the last box
    given = need("answer", numbers=True) if record.get("answer") not in (None, "") else None
    gold = given or (last_boxed(solution) and gold_answer(solution, "math"))
    if not gold:
        raise RecordError(path, line, "no \\boxed{} answer in the solution", field="solution")
    return Problem(
        make_id("math", question),
        "math",
        question,
        str(gold),
        solution,
        level=parse_level(record.get("level"), path, line),
        subject=_normalize_subject(record.get("type") or record.get("subject"), path, line),
    )


def _read_local(path: Path) -> list[tuple[dict, int | None]]:
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        return [(row, i + 1) for i, row in enumerate(pq.read_table(path).to_pylist())]
    if path.suffix in (".jsonl", ".json"):
        return [(record, lineno) for lineno, record in numbered_jsonl(path)]
    raise RecordError(path, None, "unsupported file type (use .jsonl or .parquet)")


def read_problems_file(path: str | Path, dataset: str | None = None) -> list[Problem]:
    """Load problems from one local file: raw GSM8K/MATH fields or the Problem format."""
    path = Path(path)
    if not path.exists():
        raise RecordError(path, None, "file not found")
    problems = []
    for record, line in _read_local(path):
        if not isinstance(record, dict):
            raise RecordError(path, line, "expected a JSON object")
        guess = dataset or ("gsm8k" if "question" in record and "problem" not in record else "math")
        problems.append(normalize(record, grader_dataset(guess), (str(path), line)))
    return problems


def local_split_file(data_dir: str | Path, dataset: str, split: str) -> Path:
    """Find `<data_dir>/<dataset>/<split>.jsonl` (or `<split>*.jsonl|parquet`, e.g. test_sample1000)."""
    folder = Path(data_dir) / dataset
    for pattern in (f"{split}.jsonl", f"{split}.parquet", f"{split}*.jsonl", f"{split}*.parquet"):
        matches = sorted(folder.glob(pattern))
        if matches:
            return matches[0]
    if dataset == "math500":  # a MATH test sample stands in when no MATH-500 copy is present
        return local_split_file(data_dir, "math", split)
    raise RecordError(folder, None, f"no local file for split {split!r} (looked for {split}*.jsonl|parquet)")


def _load_hub(dataset: str, split: str) -> list[tuple[dict, None]]:
    import datasets

    if dataset == "gsm8k":
        sources = [("openai/gsm8k", "main")]
    elif dataset == "math500":
        sources = [("HuggingFaceH4/MATH-500", None)]
    else:
        sources = [("EleutherAI/hendrycks_math", subject) for subject in MATH_SUBJECTS]
    rows = []
    for name, config in sources:
        try:
            part = datasets.load_dataset(name, config, split=split)
        except Exception as exc:  # offline, unknown split, hub down: one line, and what to do instead
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise RecordError(
                f"hub:{name}" + (f"/{config}" if config else ""), None,
                f"could not load split {split!r} ({reason}); use --data-file or set LEMA_DATA_DIR to local files",
            ) from None
        rows += [(row, None) for row in part]
    return rows


def load_problems(
    dataset: str,
    split: str = "train",
    data_file: str | Path | None = None,
    limit: int | None = None,
) -> list[Problem]:
    """Load and normalize a dataset split.

    Order of sources: `data_file` if given, else `$LEMA_DATA_DIR` if set, else the hub.
    `limit` keeps the first N problems (in file order, so runs are reproducible).
    """
    if dataset not in DATASETS:
        raise ConfigError(f"unknown dataset {dataset!r}; choose one of {', '.join(DATASETS)}")
    if data_file is not None:
        problems = read_problems_file(data_file, dataset)
    elif os.environ.get("LEMA_DATA_DIR"):
        problems = read_problems_file(local_split_file(os.environ["LEMA_DATA_DIR"], dataset, split), dataset)
    else:
        kind = "gsm8k" if dataset == "gsm8k" else "math"
        where = f"hub:{dataset}/{split}"
        problems = [normalize(row, kind, (where, i + 1)) for i, (row, _) in enumerate(_load_hub(dataset, split))]
    return problems[:limit] if limit is not None else problems


class ProblemSource(Settings):
    """Which problems a stage reads: the same four options for every command and a recipe."""

    dataset: Dataset = Field("gsm8k", description="Which problems.")
    split: str = Field("train", description="Dataset split (mistakes are collected on training questions).")
    data_file: str | None = Field(None, description="Problems from this JSONL/Parquet file.",
                                  json_schema_extra={"default_text": "$LEMA_DATA_DIR, else the hub"})
    limit: int | None = Field(None, ge=1, le=MAX_COUNT, description="Use only the first N problems.",
                              json_schema_extra={"default_text": "all"})

    def load(self) -> list["Problem"]:
        return load_problems(self.dataset, self.split, self.data_file, self.limit)

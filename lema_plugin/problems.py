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
_OPTIONAL = (str, type(None))
PROBLEM_FIELDS = {"id": (str,), "dataset": (str,), "question": (str,), "problem": (str,), "answer": (str, *_NUMBER),
                  "solution": _OPTIONAL, "subject": _OPTIONAL, "type": _OPTIONAL}  # checked when present and not null


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


# One accepted problem line, shown in the error a line that cannot be read gets
EXAMPLE_LINE = '{"question": "Natalia sold 48 clips in April and half as many in May. How many in all?", "answer": "72"}'
_SHAPES = f"a problem line looks like {EXAMPLE_LINE} (see docs/records.md, Problems)"
_OWN_FIELDS = ("id", "dataset", "question", "problem", "answer", "solution", "level", "subject", "type")


def normalize(record: dict, dataset: str, where: tuple[str, int | None] = ("<hub>", None)) -> Problem:
    """Turn one raw record (hub or local, any supported shape) into a Problem.

    The question is `question` (or `problem`, MATH's name); the gold answer is read from
    `answer` by the one gold reader (a bare answer or a rationale that states it), else from
    `solution`; the gold rationale is `solution`, else an `answer` that is a worked rationale.
    The grading rules are the line's own `dataset` when it has one, else `dataset`. The id is the
    line's own `id` when it has one, else a hash of the grading rules and the question, so the
    same question gets the same id from the hub, LEMA_DATA_DIR or your own file.
    """
    from .grading.gold import gold_answer, stated_answer

    path, line = where
    check_fields(record, {k: kinds for k, kinds in PROBLEM_FIELDS.items() if record.get(k) is not None}, path, line)
    own = record.get("dataset")
    if own is not None and own not in DATASETS:
        raise RecordError(path, line, f"unknown dataset {own!r} (expected {', '.join(DATASETS)})", field="dataset")
    kind = grader_dataset(own or dataset)
    name = "question" if _given(record.get("question")) or not _given(record.get("problem")) else "problem"
    if not _given(record.get(name)):
        raise RecordError(path, line, f"missing or empty; {_SHAPES}", field="problem" if kind == "math" else "question")
    question = record[name]
    answer, solution = record.get("answer"), record.get("solution")
    gold = gold_answer(answer, kind) or stated_answer(solution, kind)
    if not gold:
        what = "missing or empty" if not _given(answer) and not _given(solution) else \
            "states no final answer (end it with '#### X', 'The answer is X' or \\boxed{X})"
        raise RecordError(path, line, f"{what}; {_SHAPES}", field="answer" if _given(answer) or not _given(solution) else "solution")
    rationale = solution if _given(solution) else (answer if isinstance(answer, str) and _worked(answer) else "")
    extra = {k: v for k, v in record.items() if k not in _OWN_FIELDS} if _given(record.get("id")) else {}
    return Problem(
        id=record["id"] if _given(record.get("id")) else make_id(kind, question),
        dataset=own or kind,
        question=question,
        answer=gold,
        solution=rationale,
        level=parse_level(record.get("level"), path, line),
        subject=_normalize_subject(record.get("subject") or record.get("type"), path, line),
        extra=extra,
    )


def _given(value) -> bool:
    return value is not None and not (isinstance(value, str) and not value.strip())


def _worked(answer: str) -> bool:
    """Whether an `answer` field is a worked rationale rather than a bare answer (GSM8K's own
    `answer` is "...reasoning...\\n#### 72")."""
    text = answer.strip()
    return "\n" in text or bool(text.split("####", 1)[0].strip()) and "####" in text


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
        problems.append(normalize(record, guess, (str(path), line)))
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
    data_file: str | None = Field(None, description="Problems from this JSONL/Parquet file: a `question` and its "
                                  "`answer` a line, or GSM8K's / MATH's own fields (docs/records.md).",
                                  json_schema_extra={"default_text": "$LEMA_DATA_DIR, else the hub"})
    limit: int | None = Field(None, ge=1, le=MAX_COUNT, description="Use only the first N problems.",
                              json_schema_extra={"default_text": "all"})

    def load(self) -> list["Problem"]:
        return load_problems(self.dataset, self.split, self.data_file, self.limit)

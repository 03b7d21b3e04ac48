"""What evolution starts from: the problems behind verified corrections, how many new questions
each gets, and the test questions to keep out; all read before any model is asked."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from lema_plugin.errors import ConfigError
from lema_plugin.problems import DATASETS, grader_dataset, load_problems, parse_level, read_problems_file
from lema_plugin.records import RecordError, check_fields, numbered_jsonl, read_jsonl

# Field types of a correction read as a seed, checked line by line before anything is asked
SEED_FIELDS = {"problem_id": (str,), "question": (str,), "answer": (str, int, float), "dataset": (str,),
               "subject": (str, type(None)), "generation": (int, type(None)), "correct": (bool, type(None))}


@dataclass
class Seed:
    """A problem whose mistake got a verified correction."""

    problem_id: str
    dataset: str
    question: str
    answer: str
    level: int | None = None
    subject: str | None = None
    generation: int = 0  # 0 for dataset problems; evolved problems carry theirs
    corrections: int = 0


def load_seeds(corrections: str | Path | Iterable[dict]) -> list[Seed]:
    """Seeds from correction records (a path or records), in first-seen order."""
    if isinstance(corrections, (str, Path)):
        corrections = read_jsonl(corrections, required=("problem_id", "question", "answer", "dataset"))
    seeds: dict[str, Seed] = {}
    for record in corrections:
        if record.get("correct") is False:
            continue
        seed = seeds.get(record["problem_id"])
        if seed is None:
            seed = seeds[record["problem_id"]] = Seed(
                problem_id=record["problem_id"],
                dataset=grader_dataset(record["dataset"]),
                question=record["question"],
                answer=str(record["answer"]),
                level=record.get("level"),
                subject=record.get("subject"),
                generation=int(record.get("generation") or 0),
            )
        seed.corrections += 1
    return list(seeds.values())


def level_success(corrections: Iterable[dict], rejected: Iterable[dict]) -> dict:
    """Correction success rate per level: verified / (verified + rejected) attempts."""
    good, bad = Counter(), Counter()
    for record in corrections:
        if record.get("correct") is not False:
            good[record.get("level")] += 1
    for record in rejected:
        bad[record.get("level")] += 1
    return {level: good[level] / (good[level] + bad[level]) for level in set(good) | set(bad)}


def questions_per_seed(seeds: list[Seed], per_seed: int, success: dict | None = None) -> dict[str, int]:
    """How many new questions each seed gets (styles are taken in turn).

    Without success rates every seed gets `per_seed`. With them, a seed's share follows its
    level's failure rate (1 - success, floored at 0.1 so no level is left out), scaled so the
    average over the seeds stays `per_seed`; every seed gets at least one.
    """
    if not success:
        return {s.problem_id: per_seed for s in seeds}
    weights = {s.problem_id: max(1.0 - success.get(s.level, 0.0), 0.1) for s in seeds}
    mean = sum(weights.values()) / len(weights)
    return {pid: max(1, round(per_seed * w / mean)) for pid, w in weights.items()}


def load_test_questions(datasets: Iterable[str], files: Iterable[str | Path] = ()) -> list[tuple[str, str]]:
    """(key, question) pairs of the GSM8K / MATH test sets the seeds' datasets need, plus `files`.

    The test splits load like any split (`$LEMA_DATA_DIR` or the hub, see `load_problems`).
    """
    pairs = []
    for dataset in sorted(set(datasets)):
        pairs += [(f"{dataset}-test:{p.id}", p.question) for p in load_problems(dataset, split="test")]
    for path in files:
        pairs += [(f"{Path(path).name}:{p.id}", p.question) for p in read_problems_file(path)]
    return pairs


@dataclass
class EvolveInputs:
    """What the stage reads before asking anything: seeds, level weights, the test questions."""

    seeds: list[Seed]
    level_success_rates: dict | None = None
    contamination_questions: list[tuple[str, str]] | None = None


def read_inputs(
    corrections_path: "str | Path | list[dict]",
    *,
    weight_by_level: bool = False,
    rejected_path: str | Path | None = None,
    contamination_check: bool = True,
    test_files: Iterable[str | Path] = (),
) -> EvolveInputs:
    """Read `lema correct`'s files (and the test splits) up front, so bad input fails before any
    model is started or paid.

    Seeds come from `corrections_path`; with `weight_by_level`, success rates per level from it
    and `rejected_path` (default: rejected.jsonl next to it). The contamination check loads the
    test splits of the seeds' datasets (and `test_files`). Problems are ValueError/RecordError.
    `corrections_path` may also be a list of correction records (a plan made before correcting).
    """
    planned = isinstance(corrections_path, list)
    corrections = list(_checked_corrections(corrections_path))
    corrections_path = Path("<planned corrections>" if planned else corrections_path)
    seeds = load_seeds(corrections)
    if not seeds:
        raise ConfigError(f"{corrections_path}: no verified corrections, so no seeds")
    inputs = EvolveInputs(seeds)
    if weight_by_level:
        rejected_path = Path(rejected_path or corrections_path.with_name("rejected.jsonl"))
        if not rejected_path.exists():
            raise ConfigError(f"weighting by level needs rejected.jsonl: {rejected_path} not found")
        inputs.level_success_rates = level_success(corrections, read_jsonl(rejected_path))
    if contamination_check:
        try:
            inputs.contamination_questions = load_test_questions({s.dataset for s in seeds}, test_files)
        except Exception as exc:  # offline without $LEMA_DATA_DIR, or a bad file
            raise ConfigError(
                f"could not load the test splits for the contamination check ({exc}); set LEMA_DATA_DIR "
                "to a folder with <dataset>/test*.jsonl, or turn the check off"
            ) from None
    return inputs


def _checked_corrections(path) -> Iterable[dict]:
    """The records of a corrections file (or list), each field checked for type (one line naming
    file, line and field otherwise), the level read as a number."""
    lines = enumerate(path, 1) if isinstance(path, list) else numbered_jsonl(path)
    path = "<planned corrections>" if isinstance(path, list) else Path(path)
    for line, record in lines:
        for name in ("problem_id", "question", "answer", "dataset"):
            if record.get(name) is None or (isinstance(record[name], str) and not record[name].strip()):
                raise RecordError(path, line, "missing or empty", field=name)
        check_fields(record, SEED_FIELDS, path, line)
        if record["dataset"] not in DATASETS:
            raise RecordError(path, line, f"unknown dataset {record['dataset']!r} (expected {', '.join(DATASETS)})",
                              field="dataset")
        yield {**record, "level": parse_level(record.get("level"), str(path), line)}

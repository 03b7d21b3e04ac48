"""Read corrections and gold CoT as *steps*: the shared input of the step-level export kinds.

A verified correction holds three pieces that step-level methods train on: the wrong path as a
list of steps, the first wrong step (1-based, as the corrector saw it), and a corrected
continuation that replaces that step and goes on to the right answer. This module turns records
into `StepCorrection` / `GoldSolution` objects and counts, by reason, the records it cannot use,
so a bad correction costs one count in `dataset_info.json`, never the build.

Skip reasons (corrections): `duplicate_id`, `not_verified` (a `correct: false` record),
`single_step_path` (a one-step path has no step before or after its error: nothing step-level
to learn), `step_outside_path` (the named step is not in the path), `no_corrected_steps`
(nothing left after splitting the corrected solution), `not_confirmed` (when the build is
restricted to corrections whose first error a check confirmed). CoT: `duplicate_id`, `not_gold`
(only gold rationales are labelled all-positive; a model rationale that reached the right answer
may still hold a wrong step).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from lema_plugin.cot import has_worked_steps
from lema_plugin.records import RecordError, numbered_jsonl, read_jsonl
from lema_plugin.steps import split_steps

from .examples import COT_FIELDS, CORRECTION_FIELDS, _with_answer_line

CORRECTION_SKIPS = (
    "duplicate_id", "not_verified", "single_step_path", "step_outside_path", "no_corrected_steps", "not_confirmed",
)
COT_SKIPS = ("duplicate_id", "not_gold", "no_worked_solution")


@dataclass(frozen=True)
class StepCorrection:
    """A verified correction, step by step. `incorrect_step` is 1-based; `corrected_steps`
    replace `steps[incorrect_step - 1:]` and end with "The answer is X."."""

    id: str
    problem_id: str
    dataset: str
    question: str
    answer: str
    steps: tuple[str, ...]
    incorrect_step: int
    corrected_steps: tuple[str, ...]
    corrector: str
    mistake_model: str
    level: object = None

    @property
    def prefix(self) -> tuple[str, ...]:
        """The steps before the first wrong one (shared by the wrong and the corrected path)."""
        return self.steps[: self.incorrect_step - 1]

    @property
    def through_error(self) -> tuple[str, ...]:
        """The steps up to and including the first wrong one."""
        return self.steps[: self.incorrect_step]

    @property
    def wrong_continuation(self) -> tuple[str, ...]:
        """The first wrong step and everything the wrong path wrote after it."""
        return self.steps[self.incorrect_step - 1 :]


@dataclass(frozen=True)
class GoldSolution:
    id: str
    problem_id: str
    dataset: str
    question: str
    steps: tuple[str, ...]


@dataclass
class Loaded:
    """What a loader kept, what it skipped (by reason), and the problems of every usable record.

    `problem_ids` counts every verified record before the step-level skips, exactly the problems
    the SFT mixes split on, so step kinds built from the same inputs and seed hold out the same
    validation problems as the mixes.
    """

    records: list
    skipped: dict[str, int]
    problem_ids: set[str]


def _require(record: dict, fields: tuple[str, ...], path: Path, line: int) -> None:
    for name in fields:
        if record.get(name) in (None, ""):
            raise RecordError(path, line, "missing or empty", field=name)


def step_correction(record: dict, path: Path, line: int) -> StepCorrection | str:
    """The record as a StepCorrection, or the reason it is skipped.

    Malformed fields (a step list that is not strings, a step number that is not an integer)
    are bad files and raise RecordError naming the line; a well-formed correction that carries
    nothing step-level to learn is skipped with a reason.
    """
    steps = record["steps"]
    if not isinstance(steps, list) or not steps or not all(isinstance(s, str) for s in steps):
        raise RecordError(path, line, "must be a non-empty list of strings", field="steps")
    step = record["incorrect_step"]
    if isinstance(step, bool) or not isinstance(step, int):
        raise RecordError(path, line, "must be an integer step number", field="incorrect_step")
    if len(steps) == 1:
        return "single_step_path"
    if not 1 <= step <= len(steps):
        return "step_outside_path"
    solution = _with_answer_line(record["corrected_solution"], record.get("answer"), (path, line), "corrected_solution")
    corrected = split_steps(solution)
    if not corrected:
        return "no_corrected_steps"
    return StepCorrection(
        id=str(record["id"]),
        problem_id=str(record["problem_id"]),
        dataset=str(record.get("dataset") or "unknown"),
        question=str(record["question"]).strip(),
        answer=str(record.get("answer") or ""),
        steps=tuple(" ".join(s.split()) for s in steps),
        incorrect_step=step,
        corrected_steps=tuple(corrected),
        corrector=str(record.get("corrector") or "unknown"),
        mistake_model=str(record.get("source_model") or "unknown"),
        level=record.get("level"),
    )


def load_step_corrections(path, confirmed: set[str] | None = None) -> Loaded:
    """Read corrections.jsonl (or a list of correction records: a plan made before correcting);
    with `confirmed`, keep only the correction ids in it."""
    lines = enumerate(path, 1) if isinstance(path, list) else numbered_jsonl(path)
    path = Path("<planned corrections>" if isinstance(path, list) else path)
    kept: list[StepCorrection] = []
    skipped = dict.fromkeys(CORRECTION_SKIPS, 0)
    seen: set[str] = set()
    problems: set[str] = set()
    for line, record in lines:
        _require(record, CORRECTION_FIELDS, path, line)
        if record.get("correct") is False:
            skipped["not_verified"] += 1
            continue
        record_id = str(record["id"])
        if record_id in seen:
            skipped["duplicate_id"] += 1
            continue
        seen.add(record_id)
        problems.add(str(record["problem_id"]))
        result = step_correction(record, path, line)
        if isinstance(result, str):
            skipped[result] += 1
        elif confirmed is not None and result.id not in confirmed:
            skipped["not_confirmed"] += 1
        else:
            kept.append(result)
    return Loaded(kept, skipped, problems)


def load_gold_solutions(path: str | Path) -> Loaded:
    """Read cot.jsonl; keep the gold rationales, split into steps."""
    path = Path(path)
    kept: list[GoldSolution] = []
    skipped = dict.fromkeys(COT_SKIPS, 0)
    seen: set[str] = set()
    problems: set[str] = set()
    for line, record in numbered_jsonl(path):
        _require(record, COT_FIELDS, path, line)
        record_id = str(record["id"])
        if record_id in seen:
            skipped["duplicate_id"] += 1
            continue
        seen.add(record_id)
        problems.add(str(record["problem_id"]))
        if record.get("source") != "gold":
            skipped["not_gold"] += 1
            continue
        if isinstance(record["rationale"], str) and not has_worked_steps(record["rationale"]):
            skipped["no_worked_solution"] += 1  # "The answer is 24." alone vouches for no step
            continue
        rationale = _with_answer_line(record["rationale"], record.get("answer"), (path, line), "rationale")
        kept.append(GoldSolution(
            id=record_id,
            problem_id=str(record["problem_id"]),
            dataset=str(record.get("dataset") or "unknown"),
            question=str(record["question"]).strip(),
            steps=tuple(split_steps(rationale)),
        ))
    return Loaded(kept, skipped, problems)


def confirmed_ids(checks_path: str | Path) -> set[str]:
    """The corrections whose named first error a first-error check confirmed (its checks.jsonl)."""
    return {str(r["correction_id"]) for r in read_jsonl(checks_path, required=("correction_id",)) if r.get("confirmed") is True}

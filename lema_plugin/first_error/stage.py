"""The first-error check's records: what decides a continuation, and the verdict of a correction.

For each correction the generator writes `samples` continuations from the steps before the
named step and as many from the steps including it. Each continuation is stored in
`continuations.jsonl` the moment it arrives, under an id made of the generator, the prompt and
the sampling settings (so two corrections that share a prefix share its continuations, and a
rerun asks only for what is missing). The verdicts are derived from the stored continuations
and the thresholds, so changing a threshold re-judges without a single request:

- `confirmed`: success from the steps before >= `min_before` and from the steps including the
  named step <= `max_after`;
- `before_fails`: the steps before it already rarely reach the answer (the error may be earlier,
  or the problem is too hard for this generator);
- `step_recovers`: the steps including it still often reach the answer (the step may not be
  wrong, or it is easy to recover from);
- `incomplete`: some continuations failed to arrive; the next run asks for them again.
"""
from __future__ import annotations

from lema_plugin.export.steps import StepCorrection
from lema_plugin.llm.types import Endpoint
from lema_plugin.records import make_id

CONTINUATIONS = "continuations.jsonl"
CHECKS = "checks.jsonl"
SUMMARY = "first_error_summary.json"


def continuation_id(decisive: dict, prompt: str, index: int) -> str:
    """Everything that decides a continuation (not the thresholds, which only judge it)."""
    return make_id("continuation", decisive, prompt, index)


def sides(correction: StepCorrection) -> tuple[tuple[str, tuple[str, ...]], ...]:
    return (("before", correction.prefix), ("including", correction.through_error))


def judge(correction: StepCorrection, outcomes: dict[str, list[bool | None]], generator: Endpoint,
          settings) -> dict:
    """The check record of one correction from its continuations' outcomes (None: not arrived)."""
    sides = {}
    for side, results in outcomes.items():
        arrived = [r for r in results if r is not None]
        sides[side] = {"correct": sum(arrived), "samples": len(arrived),
                       "rate": sum(arrived) / len(arrived) if arrived else None}
    if any(side["samples"] < settings.samples for side in sides.values()):
        confirmed, reason = None, "incomplete"
    elif sides["before"]["rate"] < settings.min_before:
        confirmed, reason = False, "before_fails"
    elif sides["including"]["rate"] > settings.max_after:
        confirmed, reason = False, "step_recovers"
    else:
        confirmed, reason = True, "confirmed"
    record = {
        "id": make_id("first-error-check", correction.id, generator.model, settings.model_dump()),
        "correction_id": correction.id,
        "problem_id": correction.problem_id,
        "dataset": correction.dataset,
        "mistake_model": correction.mistake_model,
        "corrector": correction.corrector,
        "generator": generator.label,
        "incorrect_step": correction.incorrect_step,
        "path_steps": len(correction.steps),
        "before": sides["before"],
        "including": sides["including"],
        "confirmed": confirmed,
        "reason": reason,
    }
    if correction.level is not None:
        record["level"] = correction.level
    return record

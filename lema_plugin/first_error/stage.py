"""The first-error check stage: verified corrections in, one check record per correction out.

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

from pathlib import Path
from typing import Sequence

from pydantic import Field, model_validator

from lema_plugin.asking import Ask, ask_missing, one_endpoint
from lema_plugin.export.steps import StepCorrection
from lema_plugin.llm.types import Endpoint
from lema_plugin.records import make_id
from lema_plugin.settings import Settings
from lema_plugin.store import RunStore, write_jsonl_atomic
from lema_plugin.summaries import usage_since, usage_snapshot, write_summary

from .request import continuation_prompt, continuation_request, grade_continuation
from .summary import FirstErrorSummary, summarize

CONTINUATIONS = "continuations.jsonl"
CHECKS = "checks.jsonl"
SUMMARY = "first_error_summary.json"


class FirstErrorSettings(Settings):
    """How continuations are sampled and when a named first error counts as confirmed."""

    samples: int = Field(8, ge=1, description="Continuations sampled from each of the two prefixes.")
    temperature: float = Field(0.7, ge=0, description="Sampling temperature of the continuations.")
    top_p: float = Field(1.0, gt=0, le=1, description="Nucleus sampling.")
    max_tokens: int = Field(512, ge=1, description="Longest continuation.")
    min_before: float = Field(
        0.5, ge=0, le=1, description="Confirmed needs at least this success rate from the steps before the named step.")
    max_after: float = Field(
        0.25, ge=0, le=1, description="Confirmed needs at most this success rate from the steps including the named step.")

    @model_validator(mode="after")
    def _thresholds_apart(self):
        if self.max_after >= self.min_before:
            raise ValueError(f"max_after ({self.max_after}) must be below min_before ({self.min_before})")
        return self


def continuation_id(generator: Endpoint, prompt: str, settings: FirstErrorSettings, index: int) -> str:
    """Everything that decides a continuation (not the thresholds, which only judge it)."""
    return make_id("continuation", generator.model, generator.mode, prompt, settings.temperature, settings.top_p,
                   settings.max_tokens, index)


def _sides(correction: StepCorrection) -> tuple[tuple[str, tuple[str, ...]], ...]:
    return (("before", correction.prefix), ("including", correction.through_error))


def judge(correction: StepCorrection, outcomes: dict[str, list[bool | None]], generator: Endpoint,
          settings: FirstErrorSettings) -> dict:
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


async def check_first_errors(
    corrections: list[StepCorrection],
    endpoints: Sequence[Endpoint],
    client,
    out_dir: str | Path,
    settings: FirstErrorSettings | None = None,
    skipped: dict[str, int] | None = None,
) -> FirstErrorSummary:
    """Check each correction's named first error with the one generator in `endpoints`; write
    continuations.jsonl, checks.jsonl and first_error_summary.json in `out_dir`.

    `corrections` come from `lema_plugin.export.steps.load_step_corrections` (its skip counts go
    in `skipped`, so the summary says which corrections could not be checked and why).
    """
    generator = one_endpoint(endpoints, "the first-error check")
    settings = settings or FirstErrorSettings()
    out_dir = Path(out_dir)
    before = usage_snapshot(client)

    plan: dict[str, dict[str, list[str]]] = {}  # correction id -> side -> continuation ids
    asks: dict[str, Ask] = {}
    for correction in corrections:
        plan[correction.id] = {}
        for side, prefix in _sides(correction):
            prompt = continuation_prompt(generator, correction.question, prefix)
            ids = []
            for index in range(settings.samples):
                ask_id = continuation_id(generator, prompt, settings, index)
                ids.append(ask_id)
                request = continuation_request(prompt, generator, index, settings.temperature, settings.top_p,
                                               settings.max_tokens)
                asks.setdefault(ask_id, Ask(ask_id, generator, request, (prefix, correction.answer, correction.dataset)))
            plan[correction.id][side] = ids

    failures: list[str] = []
    with RunStore(out_dir / CONTINUATIONS) as store:

        def on_reply(ask, completion) -> None:
            if not completion.ok:
                failures.append(completion.error or "unknown error")
                return  # not stored: asked again on the next run
            prefix, gold, dataset = ask.owner
            prediction, correct = grade_continuation(prefix, completion.text, gold, dataset)
            store.append({
                "id": ask.id, "model": generator.model, "prefix_steps": len(prefix),
                "sample_index": ask.request.sample_index, "text": completion.text,
                "finish_reason": completion.finish_reason, "prediction": prediction, "correct": correct,
            })

        requests = await ask_missing(client, asks.values(), lambda i: i in store, on_reply, desc="first-error check",
                                     role="generator")

        def outcome(continuation_id: str) -> bool | None:
            record = store.get(continuation_id)
            return None if record is None else bool(record["correct"])

        checks = [
            judge(c, {side: [outcome(i) for i in ids] for side, ids in plan[c.id].items()}, generator, settings)
            for c in corrections
        ]
    write_jsonl_atomic(out_dir / CHECKS, checks)

    summary = summarize(checks, generator.label, settings.model_dump(), skipped or {})
    summary.requests = requests
    summary.failed_requests = len(failures)
    summary.failure_example = failures[0] if failures else None
    summary.usage = usage_since(client, before)
    write_summary(out_dir / SUMMARY, summary)
    return summary


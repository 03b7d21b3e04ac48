"""The first-error check as registered: verified corrections in, one check record per
correction out (see `stage` for the verdicts)."""
from __future__ import annotations

from pydantic import Field, model_validator

from ..llm.types import Ask
from ..settings import MAX_SAMPLES, MAX_TOKENS, Settings, decisive
from ..stage import Funnel, Input, Role, Stage
from .request import continuation_prompt, continuation_request
from .stage import CHECKS, CONTINUATIONS, SUMMARY, continuation_id, sides


class FirstErrorSettings(Settings):
    """How continuations are sampled and when a named first error counts as confirmed."""

    samples: int = Field(8, ge=1, le=MAX_SAMPLES, description="Continuations sampled from each of the two prefixes.")
    temperature: float = decisive(0.7, ge=0, description="Sampling temperature of the continuations.")
    top_p: float = decisive(1.0, gt=0, le=1, description="Nucleus sampling.")
    max_tokens: int = decisive(512, ge=1, le=MAX_TOKENS, description="Longest continuation.")
    min_before: float = Field(
        0.5, ge=0, le=1, description="Confirmed needs at least this success rate from the steps before the named step.")
    max_after: float = Field(
        0.25, ge=0, le=1, description="Confirmed needs at most this success rate from the steps including the named step.")

    @model_validator(mode="after")
    def _thresholds_apart(self):
        if self.max_after >= self.min_before:
            raise ValueError(f"max_after ({self.max_after}) must be below min_before ({self.min_before})")
        return self


def _load(source, limit=None, options=None):
    from ..export.steps import load_step_corrections

    loaded = load_step_corrections(source)
    if limit:
        loaded.records = loaded.records[:limit]
    return loaded


class FirstErrorStage(Stage):
    name = "first-error"
    verb = "check"
    help = """Check each correction's claimed first wrong step by sampled continuations.

    Sample continuations from the steps before it and from the steps including it, grade them,
    and call the claim confirmed when the first prefix still reaches the right answer often and
    the second rarely does. Writes OUT/checks.jsonl (one verdict per correction, with both success
    rates) and OUT/first_error_summary.json (confirmation rate by generator and MATH level);
    restrict `lema build` step kinds to confirmed corrections with `--confirmed OUT/checks.jsonl`.
    Run again with the same OUT to resume; changed thresholds re-judge without new requests."""
    recipe_help = "Check each correction's named first wrong step."
    settings = FirstErrorSettings
    roles = (Role("generator", "--generator", "The model that continues the partial solutions (SPEC below). A "
                  "completion endpoint continues the prefix as its own answer (the faithful rollout); a chat endpoint "
                  "gets the partial solution in the user turn and is asked to continue it.", default=None,
                  recipe_key="generator", recipe_default="generators"),)
    input = Input("corrections", "--corrections", "Verified corrections (corrections.jsonl from `lema correct`, or a "
                  "run's data/corrections.jsonl).", load=_load, limit_help="Check only the first N usable corrections.")
    outputs = (CONTINUATIONS, CHECKS, SUMMARY)
    produces = "checks"
    product_file = CHECKS
    product_name = "checked corrections"
    recipe_extra = {"confirmed_only": (bool, Field(False, description="Build the step-level kinds from confirmed "
                                                                      "corrections only."))}

    def check_section(self, section) -> None:
        if section.confirmed_only and not section.enabled:
            raise ValueError("confirmed_only needs the check: set enabled: true")

    def _asks(self, corrections, generator, settings) -> tuple[dict, dict[str, Ask]]:
        """(correction id -> side -> continuation ids, the distinct asks): corrections that share
        a prefix share its continuations."""
        key = self.decisive(generator, settings)
        plan: dict[str, dict[str, list[str]]] = {}
        asks: dict[str, Ask] = {}
        for correction in corrections:
            plan[correction.id] = {}
            for side, prefix in sides(correction):
                prompt = continuation_prompt(generator, correction.question, prefix)
                ids = []
                for index in range(settings.samples):
                    ask_id = continuation_id(key, prompt, index)
                    ids.append(ask_id)
                    request = continuation_request(prompt, generator, index, settings.temperature, settings.top_p,
                                                   settings.max_tokens)
                    asks.setdefault(ask_id, Ask(ask_id, generator, request,
                                                (prefix, correction.answer, correction.dataset)))
                plan[correction.id][side] = ids
        return plan, asks

    def plan(self, items, endpoints, settings) -> list[Ask]:
        return list(self._asks(items.records, endpoints["generator"][0], settings)[1].values())

    def to_record(self, run, ask: Ask, completion) -> None:
        from .request import grade_continuation

        if not completion.ok:
            return  # not stored: asked again on the next run (the loop keeps the reason: run.failures)
        prefix, gold, dataset = ask.owner
        prediction, correct = grade_continuation(prefix, completion.text, gold, dataset)
        run.store(CONTINUATIONS).append({
            "id": ask.id, "model": ask.endpoint.model, "prefix_steps": len(prefix),
            "sample_index": ask.request.sample_index, "text": completion.text,
            "finish_reason": completion.finish_reason, "prediction": prediction, "correct": correct,
        })

    def finish(self, run) -> None:
        from ..store import write_jsonl_atomic
        from .stage import judge
        from .summary import summarize

        generator, settings, corrections = run.endpoints["generator"][0], run.settings, run.items.records
        plan, _ = self._asks(corrections, generator, settings)
        store = run.store(CONTINUATIONS)

        def outcome(continuation: str) -> bool | None:
            record = store.get(continuation)
            return None if record is None else bool(record["correct"])

        checks = [judge(c, {side: [outcome(i) for i in ids] for side, ids in plan[c.id].items()}, generator, settings)
                  for c in corrections]
        write_jsonl_atomic(run.out_dir / CHECKS, checks)
        summary = summarize(checks, generator.label, settings.model_dump(), run.items.skipped or {})
        failures = run.failed("generator")
        summary.failed_requests = len(failures)
        summary.failure_example = failures[0] if failures else None
        run.result = summary

    def summarize(self, run):
        return run.result

    def project(self, items, settings) -> list:
        return []

    def funnel(self, summary: dict) -> Funnel:
        reasons = summary.get("reasons") or {}
        return Funnel(self.name, [("corrections", summary.get("corrections", 0)), ("checked", summary.get("checked", 0)),
                                  ("confirmed", summary.get("confirmed", 0))],
                      {k: v for k, v in reasons.items() if v and k != "confirmed"})


FIRST_ERROR = FirstErrorStage()


def register_stages(register) -> None:
    register(FIRST_ERROR)


async def check_first_errors(corrections, endpoints, client, out_dir, settings: FirstErrorSettings | None = None,
                             skipped: dict[str, int] | None = None):
    """The first-error check as a library call (`run_stage(FIRST_ERROR, ...)`): returns its summary.
    `corrections` come from `export.steps.load_step_corrections` (its skip counts go in `skipped`)."""
    from ..export.steps import Loaded
    from ..stage_run import run_stage

    items = Loaded(list(corrections), dict(skipped or {}), set())
    return await run_stage(FIRST_ERROR, items, endpoints, client, out_dir, settings or FirstErrorSettings())

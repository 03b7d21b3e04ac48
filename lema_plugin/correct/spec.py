"""The correction stage: mistakes in, verified corrections and counted rejections out.

Attempts are asked in rounds: round i asks for attempt i of every mistake that has fewer than
`keep` verified corrections among all of its attempts stored so far. The rule depends only on
records already written, so an interrupted run, run again, asks for what an uninterrupted run
would have asked for, and nothing it already has; and a rerun never asks again for an early
attempt that failed once a later one was verified, so `keep` is never exceeded. Every judged
reply goes, the moment it arrives, to `corrections.jsonl` (verified) or `rejected.jsonl` (with a
reason); a request that failed is recorded too and asked again on the next run. The plan (what
`--check` counts and `--estimate` prices) is every attempt of every mistake: the most a run asks.
"""
from __future__ import annotations

from typing import Literal

from pydantic import Field

from ..grading.judge import JudgeItem
from ..llm.types import Ask
from ..problems import grader_dataset
from ..records import make_id
from ..settings import MAX_SAMPLES, MAX_TOKENS, JudgeSettings, decisive
from ..stage import Funnel, Input, Role, Stage
from .prompt import build_request
from .stage import CORRECTIONS, REJECTED, STORED_FIELDS, SUMMARY, corrector_spec, load_mistakes


class CorrectSettings(JudgeSettings):
    """How the corrector is asked."""

    samples: int = Field(1, ge=1, le=MAX_SAMPLES, description="Corrector replies sampled per mistake, at most.")
    keep: int = Field(1, ge=1, le=MAX_SAMPLES, description="Stop sampling a mistake once this many corrections are verified.")
    temperature: float | None = decisive(
        None, ge=0, description="Sampling temperature.", json_schema_extra={"default_text": "0 for one sample, 0.7 for several"})
    top_p: float = decisive(1.0, gt=0, le=1, description="Nucleus sampling.")
    max_tokens: int = decisive(1024, ge=1, le=MAX_TOKENS, description="Longest corrector reply.")
    style: Literal["fewshot", "zeroshot"] = decisive(
        "fewshot", description="Few-shot corrector prompt (any model), or zero-shot (strong chat models, fewer tokens).")

    @property
    def sampling_temperature(self) -> float:
        """Greedy for one attempt; several attempts of the same question need variety."""
        if self.temperature is not None:
            return self.temperature
        return 0.0 if self.samples == 1 else 0.7

    def decisive_values(self) -> dict:
        """The temperature as sent (None resolves by the number of samples)."""
        return {**super().decisive_values(), "temperature": self.sampling_temperature}


def _load(source, limit=None, options=None):
    return load_mistakes(source, limit=limit)


class CorrectStage(Stage):
    name = "correct"
    help = """Correct mistakes with a corrector LLM; keep the corrections whose final answer checks out.

    The corrector names the first wrong step, explains it and finishes a corrected solution;
    corrections whose final answer is right go to OUT/corrections.jsonl, the others to
    OUT/rejected.jsonl with a reason, the figures to OUT/correct_summary.json. Run again with the
    same OUT to resume."""
    recipe_help = "The model that corrects the mistakes."
    settings = CorrectSettings
    roles = (Role("corrector", "--corrector", "Corrector endpoint (SPEC below).", default=lambda: corrector_spec(),
                  default_text="$LEMA_CORRECTOR; else gpt-4o on the OpenAI API when OPENAI_API_KEY is set; else embedded"),)
    input = Input("mistakes", "--mistakes", "mistakes.jsonl from `lema sample` or `lema import` (a paths.jsonl works too: "
                  "its correct paths are skipped).", load=_load, limit_help="Correct only the first N mistakes.")
    outputs = (CORRECTIONS, REJECTED, SUMMARY)
    store_fields = {CORRECTIONS: STORED_FIELDS, REJECTED: STORED_FIELDS}
    produces = "corrections"
    product_file = CORRECTIONS
    failures_file = REJECTED
    projection = ("projected before correcting: every mistake gets `keep` verified corrections")
    product_name = "verified corrections"
    optional = False
    recipe_key = "corrector"
    old_spellings = {"samples": ("--attempts",), "style": ("--prompt",)}

    def attempt_id(self, mistake: dict, corrector, settings: CorrectSettings, attempt: int) -> str:
        return make_id("correction", mistake["id"], self.decisive(corrector, settings), attempt)

    def ask(self, mistake: dict, corrector, settings: CorrectSettings, attempt: int) -> Ask:
        request = build_request(mistake, corrector, settings.style, attempt, settings.sampling_temperature,
                                settings.top_p, settings.max_tokens)
        # item: the Batch API caps failed submissions per mistake across its attempts
        return Ask(self.attempt_id(mistake, corrector, settings, attempt), corrector, request, (mistake, attempt),
                   item=mistake["id"])

    def plan(self, items, endpoints, settings) -> list[Ask]:
        corrector = endpoints["corrector"][0]
        return [self.ask(m, corrector, settings, attempt) for attempt in range(settings.samples) for m in items]

    def judge_item(self, ask: Ask) -> JudgeItem | None:
        mistake, _ = ask.owner
        return JudgeItem.of("", mistake["answer"], grader_dataset(mistake["dataset"]), mistake["question"])

    def done(self, run, record_id: str) -> bool:
        return record_id in run.store(CORRECTIONS) or record_id in run.store(REJECTED)

    def answered(self, record: dict) -> bool:
        return record.get("reason") != "request_failed"

    async def run(self, run) -> None:
        from .stage import drop_failures

        settings, corrector, mistakes = run.settings, run.endpoints["corrector"][0], run.items
        ids = {m["id"]: [self.attempt_id(m, corrector, settings, i) for i in range(settings.samples)] for m in mistakes}
        drop_failures(run.out_dir / REJECTED, {i for attempt_ids in ids.values() for i in attempt_ids})
        kept = run.store(CORRECTIONS)
        for attempt in range(settings.samples):
            asks = [self.ask(m, corrector, settings, attempt) for m in mistakes
                    if sum(i in kept for i in ids[m["id"]]) < settings.keep]
            desc = f"correct {attempt + 1}/{settings.samples}" if settings.samples > 1 else "correct"
            await run.ask(asks, lambda ask, completion: self.to_record(run, ask, completion), desc=desc)
            await run.settle()  # before the next round, which counts what this one verified

    def to_record(self, run, ask: Ask, completion) -> None:
        """Judge one reply into a correction or a rejection; a wrong answer the rules may not
        have settled waits for the judge (after this round)."""
        from .stage import judge
        from .verify import grade_solution

        mistake, attempt = ask.owner
        corrector, settings = ask.endpoint, run.settings

        def keep(record: dict) -> None:
            run.store(CORRECTIONS if record["correct"] else REJECTED).append(record)

        record = judge(mistake, corrector, settings, attempt, completion, ask.id)
        if record.get("reason") != "wrong_answer" or run.judge.judge is None:
            keep(record)
            return
        solution = record["corrected_solution"]
        graded = grade_solution(solution, mistake["answer"], mistake["dataset"], mistake["question"])
        item = JudgeItem.of(solution, mistake["answer"], grader_dataset(mistake["dataset"]), mistake["question"])
        run.judge.put(graded, item, lambda settled: keep(judge(mistake, corrector, settings, attempt, completion, ask.id,
                                                                settled)))

    def summarize(self, run):
        from .summary import summarize

        corrector = run.endpoints["corrector"][0]
        mine = {self.attempt_id(m, corrector, run.settings, i) for m in run.items for i in range(run.settings.samples)}
        records = [r for name in (CORRECTIONS, REJECTED) for r in run.store(name) if r["id"] in mine]
        return summarize(run.items, records, corrector)

    def project(self, items, settings: CorrectSettings) -> list[dict]:
        """Before correcting: every mistake gets `keep` verified corrections (at most), naming
        its middle step and finishing with its gold answer."""
        corrections = []
        for mistake in items:
            steps = list(mistake.get("steps") or [mistake.get("text") or ""])
            for k in range(min(settings.keep, settings.samples)):
                step = len(steps) // 2 + 1
                corrections.append({
                    "id": f"projected-{mistake['id']}-{k}", "path_id": mistake["id"],
                    "problem_id": mistake.get("problem_id") or mistake["id"], "dataset": mistake["dataset"],
                    "question": mistake["question"], "answer": str(mistake["answer"]), "steps": steps,
                    "incorrect_step": step, "explanation": "(projected)", "corrector": "projected",
                    "corrected_solution": f"Step {step}: The answer is {mistake['answer']}.",
                    "source_model": mistake.get("model") or "projected", "correct": True, "attempt": k,
                    **{key: mistake[key] for key in ("level", "subject") if mistake.get(key) is not None},
                })
        return corrections

    def funnel(self, summary: dict) -> Funnel:
        rejected = summary.get("rejected") or {}
        replies = summary.get("attempts", 0) - rejected.get("request_failed", 0)
        return Funnel(self.name, [("mistakes", summary.get("mistakes", 0)), ("correction replies", replies),
                                  ("parsed", replies - rejected.get("unparseable", 0)),
                                  ("verified", summary.get("verified", 0))],
                      {k: v for k, v in rejected.items() if v})


CORRECT = CorrectStage()


def register_stages(register) -> None:
    register(CORRECT)


async def correct_mistakes(mistakes: list[dict], endpoints, client, out_dir, settings: CorrectSettings | None = None):
    """The correction stage as a library call (`run_stage(CORRECT, ...)`): returns its summary."""
    from ..stage_run import run_stage

    return await run_stage(CORRECT, mistakes, endpoints, client, out_dir, settings or CorrectSettings())

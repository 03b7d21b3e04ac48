"""The CoT stage: the CoT examples LeMa trains on next to the corrections.

Three sources (`--source`): `gold`, the datasets' own rationales in the one target style (no
request); `model`, rejection sampling from a strong model (K rationales per question with the
`solve` prompt, graded by the one grader; every graded sample goes to `cot_samples.jsonl` the
moment it arrives, so an interrupted run resumes without asking again; the correct ones are
finished, de-duplicated and capped into `cot.jsonl`); `none`, no CoT (an empty `cot.jsonl`).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Literal

from pydantic import Field

from ..grading.judge import JudgeItem
from ..llm.types import Ask
from ..problems import Problem, grader_dataset
from ..records import make_id
from ..settings import MAX_SAMPLES, MAX_TOKENS, JudgeSettings, decisive
from ..solving import solve_request
from ..stage import Funnel, Role, Stage
from .rationales import strong_model_spec

SAMPLES = "cot_samples.jsonl"
COT = "cot.jsonl"
SUMMARY = "cot_summary.json"


class CotSettings(JudgeSettings):
    """Where CoT rationales come from; with `source: model`, how they are rejection-sampled."""

    source: Literal["gold", "model", "none"] = decisive(
        "gold", description="gold: the dataset's rationales, rewritten to end 'The answer is X.'; model: sample "
        "rationales from the strong model and keep the correct ones; none: no CoT.")
    samples: int = Field(4, ge=1, le=MAX_SAMPLES, description="Rationales sampled per question.")
    keep: int = Field(2, ge=1, le=MAX_SAMPLES, description="Distinct correct rationales kept per question.")
    temperature: float = decisive(0.8, ge=0, description="Sampling temperature.")
    max_tokens: int = decisive(512, ge=1, le=MAX_TOKENS, description="Token limit per rationale (truncated ones are never kept).")


@dataclass
class CotSummary:
    """What the CoT stage wrote: examples kept, and for sampled rationales how they were graded."""

    source: str = "gold"
    questions: int = 0
    without_rationale: int = 0  # gold: problems whose rationale could not be used
    samples: int = 0
    failed: int = 0
    correct: int = 0
    duplicates: int = 0
    capped: int = 0
    kept: int = 0
    questions_covered: int = 0
    model: str | None = None
    by_dataset: dict = field(default_factory=dict)
    requests: int = 0
    usage: dict = field(default_factory=dict)  # the client's counts over this run (summaries.usage_since)
    usage_lines: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def produced(self) -> int:
        return self.kept

    @property
    def requested(self) -> int:
        """Requests this run sent (the name the summary used before)."""
        return self.requests

    def lines(self) -> list[str]:
        if self.source != "model":
            lines = [f"problems: {self.questions}; {self.source} rationales written: {self.kept} "
                     f"({self.without_rationale} without a usable rationale)"]
            if self.without_rationale:
                lines.append(f"{self.without_rationale} problem{'s have' if self.without_rationale != 1 else ' has'} no worked "
                             "solution (only an answer): no CoT example; --source model samples rationales for them")
            return lines
        graded = self.samples
        rate = f"{self.correct / graded:.1%}" if graded else "n/a"
        lines = [
            f"questions: {self.questions} ({self.questions_covered} with at least one kept rationale)",
            f"samples graded: {graded} (requested this run: {self.requests}, failed: {self.failed})",
            f"correct: {self.correct} ({rate})",
            f"kept: {self.kept} (duplicates dropped: {self.duplicates}, over the cap: {self.capped})",
        ]
        return lines + self.usage_lines + [f"{self.requests} new requests"]

    def headline(self) -> list[tuple[str, str]]:
        how = {"gold": "gold rationales", "none": "no CoT"}.get(self.source, f"rejection-sampled from {self.model}")
        if self.source == "gold" and self.without_rationale:
            how += f"; {self.without_rationale} problems without a worked solution"
        return [("cot examples", f"{self.kept} ({how})" if self.source != "none" else "0")]


class CotStage(Stage):
    name = "cot"
    help = """Write CoT targets: the datasets' rationales, or correct ones sampled from a strong model.

    OUT/cot.jsonl holds question -> a correct step-by-step rationale ending "The answer is X.",
    OUT/cot_summary.json the figures. With --source model every graded sample is kept in
    OUT/cot_samples.jsonl as it arrives, so running the same command again resumes without asking
    the model twice."""
    settings = CotSettings
    roles = (Role("cot model", "--model", "--source model: the strong model's endpoint (SPEC below).",
                  default=lambda: strong_model_spec(), recipe_key="model",
                  default_text="$LEMA_STRONG_MODEL; else the corrector's default: $LEMA_CORRECTOR; gpt-4o when "
                  "OPENAI_API_KEY is set; else embedded",
                  needed=lambda settings: settings.source == "model",
                  needed_text="source 'model' needs a 'model' endpoint",
                  recipe_help="The strong model for `source: model` (endpoint keys)."),)
    recipe_help = "Where the CoT examples come from."
    outputs = (SAMPLES, COT, SUMMARY)
    produces = "cot"
    product_file = COT
    product_name = "CoT examples"
    optional = False

    def sample_id(self, problem: Problem, endpoint, settings: CotSettings, index: int) -> str:
        return make_id("cot-sample", problem.id, self.decisive(endpoint, settings), index)

    def plan(self, items, endpoints, settings) -> list[Ask]:
        if settings.source != "model":
            return []
        endpoint = endpoints["cot model"][0]
        return [
            Ask(self.sample_id(problem, endpoint, settings, index), endpoint,
                solve_request(problem, endpoint, index, temperature=settings.temperature, max_tokens=settings.max_tokens),
                (problem, index))
            for problem in items
            for index in range(settings.samples)
        ]

    def judge_item(self, ask: Ask) -> JudgeItem | None:
        problem, _ = ask.owner
        return JudgeItem.of("", problem.answer, problem.dataset, problem.question)

    def to_record(self, run, ask: Ask, completion) -> None:
        store = run.store(SAMPLES)
        if not completion.ok:
            return  # not stored: asked again on the next run (the loop keeps the reason: run.failures)
        if completion.finish_reason == "length":  # a truncated rationale is no training target: not judged
            store.append(_graded_sample(ask, completion))
            return
        problem = ask.owner[0]
        run.judge.put(_rule_grade(problem, completion.text),
                      JudgeItem.of(completion.text, problem.answer, problem.dataset, problem.question),
                      lambda graded: store.append(_graded_sample(ask, completion, graded)))

    def done(self, run, record_id: str) -> bool:
        return record_id in run.store(SAMPLES)

    def finish(self, run) -> None:
        from ..store import write_jsonl_atomic
        from .rationales import gold_cot, select_rationales

        settings, problems = run.settings, run.items
        summary = CotSummary(source=settings.source, questions=len(problems), failed=len(run.failed("cot model")))
        if settings.source == "model":
            endpoint = run.endpoints["cot model"][0]
            wanted = {ask.id for ask in self.plan(problems, run.endpoints, settings)}
            graded = [r for r in run.store(SAMPLES) if r["id"] in wanted]
            summary.samples = len(graded)
            summary.correct = sum(bool(r.get("correct")) for r in graded)
            summary.model = endpoint.label
            records = select_rationales(problems, graded, settings.keep, summary, endpoint.label)
        else:
            records = gold_cot(problems) if settings.source == "gold" else []
            summary.kept = len(records)
            summary.without_rationale = len(problems) - len(records) if settings.source == "gold" else 0
        summary.by_dataset = dict(sorted(_count(r["dataset"] for r in records).items()))
        write_jsonl_atomic(run.out_dir / COT, records)
        run.result = summary

    def summarize(self, run) -> CotSummary:
        return run.result

    def funnel(self, summary: dict) -> Funnel:
        return Funnel(self.name, [("problems", summary.get("questions", 0)), ("cot examples", summary.get("kept", 0))])


def _count(values) -> dict:
    from collections import Counter

    return Counter(values)


def _rule_grade(problem: Problem, text: str):
    from ..grading import grade

    return grade(text, problem.answer, grader_dataset(problem.dataset), problem.question)


def _graded_sample(ask: Ask, completion, graded=None) -> dict:
    """A sample record; `graded` is a grade in hand (one the judge settled), else the rules grade."""
    problem, index = ask.owner
    graded = graded or _rule_grade(problem, completion.text)
    prediction, correct = graded.extracted, graded.correct
    if completion.finish_reason == "length":
        correct = False  # a truncated rationale is no training target
    return {
        "id": ask.id,
        "problem_id": problem.id,
        "model": ask.endpoint.label,
        "sample_index": index,
        "text": completion.text,
        "prediction": prediction,
        "correct": correct,
        "decided_by": graded.decided_by,
        "finish_reason": completion.finish_reason,
    }


COT_STAGE = CotStage()


def register_stages(register) -> None:
    register(COT_STAGE)


async def sample_cot(problems: list[Problem], endpoints, client, out_dir, settings: CotSettings = CotSettings(source="model")):
    """The CoT stage as a library call (`run_stage(COT_STAGE, ...)`): returns its summary."""
    from ..stage_run import run_stage

    if settings.source != "model":
        settings = settings.model_copy(update={"source": "model"})
    return await run_stage(COT_STAGE, problems, endpoints, client, out_dir, settings)

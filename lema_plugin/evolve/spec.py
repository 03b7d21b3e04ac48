"""The evolution stage as registered: corrections in, new problems out (see `stage` for the
procedure). In a `lema run` its new problems go back through sampling and correction, in
`evolve/sample/` and `evolve/correct/`, and the corrections they give join the run's."""
from __future__ import annotations

from typing import Literal

from pydantic import Field

from ..cot.rationales import strong_model_spec
from ..llm.types import Ask
from ..settings import MAX_COUNT, MAX_SAMPLES, MAX_TOKENS, JudgeSettings, Settings, decisive
from ..stage import Funnel, Input, Role, Stage
from .prompt import STYLES, generation_request
from .seeds import questions_per_seed, read_inputs
from .stage import ANSWERS, DROPPED, PROBLEMS, QUESTIONS, SUMMARY, answer_id, answer_request, question_id


class EvolveSettings(JudgeSettings):
    """How new questions are written, filtered and answered."""

    per_seed: int = Field(2, ge=1, le=MAX_SAMPLES, description="New questions asked per seed; the styles are taken in turn.")
    styles: tuple[Literal["similar", "harder"], ...] = Field(
        STYLES, min_length=1,
        description="Question styles, taken in turn: similar (same skill and difficulty), harder (one more step or condition).")
    samples: int = Field(5, ge=1, le=MAX_SAMPLES, description="Answers sampled per new question.")
    min_agreement: float = Field(0.6, gt=0, le=1, description="Share of the answers that must agree (and more than "
                                 "any other answer) to keep a question.")
    generate_temperature: float = decisive(1.0, ge=0, description="Sampling temperature for writing new questions "
                                           "(high: varied questions).")
    temperature: float = decisive(0.7, ge=0, description="Sampling temperature for the answers (above 0, so the "
                                  "vote means something).")
    generate_max_tokens: int = decisive(512, ge=1, le=MAX_TOKENS, description="Per new question.")
    max_tokens: int = decisive(1024, ge=1, le=MAX_TOKENS, description="Per answer.")
    ngram: int = Field(6, ge=1, le=MAX_COUNT, description="Word n-gram size for near-duplicate and contamination checks.")
    max_overlap: float = Field(0.5, gt=0, le=1, description="Share of shared n-grams (of the shorter text) that "
                               "makes two questions near-duplicates.")


class EvolveReading(Settings):
    """How `lema evolve` reads its corrections: level weights, the contamination check."""

    weight_by_level: bool = Field(False, description="Give seeds from levels where corrections succeeded least more new "
                                  "questions (success rates from --corrections and --rejected).")
    rejected: str | None = Field(None, description="rejected.jsonl from `lema correct`.",
                                 json_schema_extra={"default_text": "the one next to --corrections"})
    test_file: tuple[str, ...] = Field((), description="More questions to keep out; the GSM8K/MATH test splits are "
                                       "always checked.", json_schema_extra={"default_text": "none"})
    no_contamination_check: bool = Field(False, description="Skip the test-set check (only when the test splits cannot "
                                         "be loaded).")


def _load(source, limit=None, options: EvolveReading | None = None):
    """Seeds from a corrections file (or the records of a plan, which need no contamination check:
    nothing is written from them)."""
    options = options or EvolveReading()
    return read_inputs(source, weight_by_level=options.weight_by_level, rejected_path=options.rejected,
                       contamination_check=not (options.no_contamination_check or isinstance(source, list)),
                       test_files=options.test_file)


class EvolveStage(Stage):
    name = "evolve"
    help = """Write new questions seeded by the corrected ones, kept when the strong model's answers agree.

    OUT/problems.jsonl holds each new question whose strong-model answers agree by a clear
    majority (that answer becomes the gold one); OUT/evolve_summary.json the figures.

    New questions that nearly repeat a seed, each other, or a GSM8K/MATH test question are
    dropped (listed with the reason in OUT/evolve_dropped.jsonl). The output feeds
    `lema sample --data-file OUT/problems.jsonl` and then `lema correct`."""
    recipe_help = "Correction-centric evolution of the question set."
    settings = EvolveSettings
    roles = (Role("evolver", "--model", "The strong model that writes and answers the new questions (SPEC below).",
                  default=lambda: strong_model_spec(), recipe_key="model", recipe_default="corrector",
                  default_text="$LEMA_STRONG_MODEL; else the corrector's default: $LEMA_CORRECTOR; gpt-4o when "
                  "OPENAI_API_KEY is set; else embedded"),)
    input = Input("corrections", "--corrections", "corrections.jsonl from `lema correct`: its problems are the seeds.",
                  load=_load, limit_help=None, options=EvolveReading)
    outputs = (QUESTIONS, ANSWERS, PROBLEMS, DROPPED, SUMMARY)
    produces = "problems"
    product_file = PROBLEMS
    projection = ("projected before evolving: every new question asked is kept")
    product_name = "new questions"
    old_spellings = {"samples": ("--answers",)}
    chain_label = "evolved"

    def plan(self, items, endpoints, settings) -> list[Ask]:
        """Every new question asked, and every answer to each (a question not written yet stands in
        as its seed's, which is what it will resemble)."""
        endpoint = endpoints["evolver"][0]
        key = self.decisive(endpoint, settings)
        counts = questions_per_seed(items.seeds, settings.per_seed, items.level_success_rates)
        asks = []
        for seed in items.seeds:
            for index in range(counts[seed.problem_id]):
                style = settings.styles[index % len(settings.styles)]
                qid = question_id(seed, style, index, key)
                asks.append(Ask(qid, endpoint, generation_request(seed, style, endpoint, settings, index)))
                asks += [Ask(answer_id(qid, k, key), endpoint,
                             answer_request(qid, seed.question, seed.dataset, endpoint, settings, k))
                         for k in range(settings.samples)]
        return asks

    def done(self, run, record_id: str) -> bool:
        return record_id in run.store(QUESTIONS) or record_id in run.store(ANSWERS)

    async def run(self, run) -> None:
        from ..store import write_jsonl_atomic
        from .dedupe import NearDuplicateIndex
        from .stage import Evolution
        from .summary import EvolveSummary

        inputs, settings = run.items, run.settings
        summary = EvolveSummary(seeds=len(inputs.seeds))
        counts = questions_per_seed(inputs.seeds, settings.per_seed, inputs.level_success_rates)
        contamination = None
        if inputs.contamination_questions is not None:
            contamination = NearDuplicateIndex(settings.ngram, settings.max_overlap)
            for key, question in inputs.contamination_questions:
                contamination.add(question, key)
            summary.test_questions = len(contamination)
        dropped: list[dict] = []
        evolution = Evolution(run.endpoints["evolver"][0], settings, run, summary)
        plan = evolution.plan(inputs.seeds, counts)
        await evolution.generate(plan)
        candidates = evolution.filter(plan, inputs.seeds, contamination, dropped)
        await evolution.answer(candidates)
        problems = await evolution.vote(candidates, dropped)
        write_jsonl_atomic(run.out_dir / PROBLEMS, [p.to_dict() for p in problems])
        write_jsonl_atomic(run.out_dir / DROPPED, dropped)
        run.result = summary

    def summarize(self, run):
        return run.result

    def project(self, items, settings: EvolveSettings) -> list:
        """Before evolving: every question asked is kept, as its seed's problem again."""
        from ..problems import Problem

        counts = questions_per_seed(items.seeds, settings.per_seed, items.level_success_rates)
        return [Problem(f"projected-{seed.problem_id}-{k}", seed.dataset, seed.question, seed.answer, "",
                        seed.level, seed.subject)
                for seed in items.seeds for k in range(counts[seed.problem_id])]

    def funnel(self, summary: dict) -> Funnel:
        dropped = {k: summary.get(k, 0) for k in ("unparseable", "truncated", "duplicates", "contaminated", "no_majority")}
        return Funnel(self.name, [("seeds", summary.get("seeds", 0)), ("new questions", summary.get("generated", 0)),
                                  ("kept", summary.get("kept", 0))], {k: v for k, v in dropped.items() if v})


EVOLVE = EvolveStage()


def register_stages(register) -> None:
    register(EVOLVE)


async def evolve_questions(inputs, endpoints, client, out_dir, settings: EvolveSettings = EvolveSettings()):
    """The evolution stage as a library call (`run_stage(EVOLVE, ...)`): returns its summary."""
    from ..stage_run import run_stage

    return await run_stage(EVOLVE, inputs, endpoints, client, out_dir, settings)

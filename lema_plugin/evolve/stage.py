"""The evolution stage: grow the question set from the questions that produced corrections.

LeMa's observation is that the questions a model gets wrong, and a strong model can correct, are
the useful ones; so they seed new questions of the same kind. The pipeline, in order:

1. Seeds: the problems behind verified corrections (`corrections.jsonl`). Optionally each seed
   gets more new questions when its level's correction success rate was low (needs
   `rejected.jsonl` to know the failures).
2. Generate: the strong model writes new questions in the style of each seed, taking the styles
   in turn (`similar`: same skill and difficulty; `harder`: one more step or condition), from the
   `evolve_<dataset>` prompt template.
3. Filter before paying for answers: unparseable or truncated replies; near-duplicates of a seed or of an
   earlier new question (normalized text or word n-gram overlap); near-duplicates of a GSM8K or
   MATH *test* question (contamination).
4. Answer each survivor K times with the `solve` prompt; keep it only when a clear majority of
   the K answers agree (the one grader's `answers_match` decides agreement; with a judge, an answer
   the rules cannot compare with the majority answer is asked about). The majority answer
   becomes the gold answer and one of its rationales the gold solution.
5. Write `problems.jsonl` in the Problem format with provenance (seed id, generation, style,
   agreement), ready for `lema sample --data-file` and `lema correct`.

Generations and answers go to run stores (`evolve_questions.jsonl`, `evolve_answers.jsonl`) as
they arrive, so an interrupted run resumes without asking again. Every dropped question is listed
with its reason in `evolve_dropped.jsonl`.
"""
from __future__ import annotations

from pathlib import Path
from typing import Literal, Sequence

from pydantic import Field

from lema_plugin import manifest
from lema_plugin.asking import Ask, ask_missing, one_endpoint
from lema_plugin.cot import finish_rationale
from lema_plugin.llm.types import Endpoint
from lema_plugin.problems import Problem
from lema_plugin.records import make_id
from lema_plugin.settings import JudgeSettings
from lema_plugin.solving import solve_request
from lema_plugin.store import RunStore, write_jsonl_atomic
from lema_plugin.summaries import usage_since, usage_snapshot, write_summary

from .dedupe import NearDuplicateIndex
from .prompt import STYLES, generation_request
from .reply import majority, parse_new_question
from .seeds import EvolveInputs, Seed, questions_per_seed
from .summary import EvolveSummary

PROBLEMS = "problems.jsonl"


class EvolveSettings(JudgeSettings):
    """How new questions are written, filtered and answered."""

    per_seed: int = Field(2, ge=1, description="New questions asked per seed; the styles are taken in turn.")
    styles: tuple[Literal["similar", "harder"], ...] = Field(
        STYLES, min_length=1,
        description="Question styles, taken in turn: similar (same skill and difficulty), harder (one more step or condition).")
    samples: int = Field(5, ge=1, description="Answers sampled per new question.")
    min_agreement: float = Field(0.6, gt=0, le=1, description="Share of the answers that must agree (and more than "
                                 "any other answer) to keep a question.")
    generate_temperature: float = Field(1.0, ge=0, description="Sampling temperature for writing new questions "
                                        "(high: varied questions).")
    temperature: float = Field(0.7, ge=0, description="Sampling temperature for the answers (above 0, so the "
                                      "vote means something).")
    generate_max_tokens: int = Field(512, ge=1, description="Per new question.")
    max_tokens: int = Field(1024, ge=1, description="Per answer.")
    ngram: int = Field(6, ge=1, description="Word n-gram size for near-duplicate and contamination checks.")
    max_overlap: float = Field(0.5, gt=0, le=1, description="Share of shared n-grams (of the shorter text) that "
                               "makes two questions near-duplicates.")


class _Evolution:
    """One run of the stage: the model, the settings, the two run stores and the counts."""

    def __init__(self, endpoint: Endpoint, config: EvolveSettings, client, questions: RunStore, answers: RunStore,
                 summary: EvolveSummary):
        self.endpoint, self.config, self.client = endpoint, config, client
        self.questions, self.answers, self.summary = questions, answers, summary

    def plan(self, seeds: list[Seed], counts: dict[str, int]) -> list[tuple[str, Seed, str, int]]:
        """(question id, seed, style, index) for every new question wanted, in a fixed order."""
        plan = []
        for seed in seeds:
            for index in range(counts[seed.problem_id]):
                style = self.config.styles[index % len(self.config.styles)]  # similar, harder, similar, ...
                qid = make_id("evolve-question", seed.problem_id, style, index, self.endpoint.model,
                              self.config.generate_temperature, self.config.generate_max_tokens)
                plan.append((qid, seed, style, index))
        return plan

    async def _ask(self, asks: list[Ask], store, what: str) -> int:
        """Ask what `store` does not hold; keep each good reply. Failures are counted, not stored,
        so the next run asks again."""

        def keep(ask: Ask, completion) -> None:
            if completion.ok:
                store.append(ask.owner(completion))
            else:
                self.summary.failed += 1

        return await ask_missing(self.client, asks, store.__contains__, keep,
                                 desc=f"evolve: {what} ({self.endpoint.label})", role="evolver")

    async def generate(self, plan) -> None:
        def record(qid, seed, style, index):
            return lambda completion: {
                "id": qid, "seed_id": seed.problem_id, "style": style, "sample_index": index,
                "generation": seed.generation + 1, "model": self.endpoint.label, "raw": completion.text,
                "question": parse_new_question(completion.text), "finish_reason": completion.finish_reason,
            }

        asks = [Ask(qid, self.endpoint, generation_request(seed, style, self.endpoint, self.config, index),
                    record(qid, seed, style, index))
                for qid, seed, style, index in plan]
        self.summary.asked = await self._ask(asks, self.questions, "new questions")
        self.summary.new_requests += self.summary.asked

    def filter(self, plan, seeds: list[Seed], contamination: NearDuplicateIndex | None, dropped: list):
        """Drop unparseable or truncated replies, near-duplicates (of a seed or an earlier new question) and
        test-set near-duplicates, in plan order so the result does not depend on reply order."""
        seen = NearDuplicateIndex(self.config.ngram, self.config.max_overlap)
        for seed in seeds:
            seen.add(seed.question, f"seed:{seed.problem_id}")
        candidates = []
        for qid, seed, _, _ in plan:
            record = self.questions.get(qid)
            if record is None:
                continue
            self.summary.generated += 1
            question, reason, detail = record["question"], None, None
            if question is None:
                reason = "unparseable"
                self.summary.unparseable += 1
            elif record["finish_reason"] == "length":
                reason = "truncated"
                self.summary.truncated += 1
            elif (detail := seen.find(question)) is not None:
                reason = "duplicate"
                self.summary.duplicates += 1
            elif contamination is not None and (detail := contamination.find(question)) is not None:
                reason = "contaminated"
                self.summary.contaminated += 1
            if reason:
                dropped.append({**record, "reason": reason, "detail": detail})
                continue
            seen.add(question, qid)
            candidates.append((record, seed))
        return candidates

    def answer_id(self, question_id: str, index: int) -> str:
        return make_id("evolve-answer", question_id, self.endpoint.model, self.config.temperature,
                       self.config.max_tokens, index)

    async def answer(self, candidates) -> None:
        """K answers per surviving question with the `solve` prompt (what `lema sample` asks)."""
        from lema_plugin.grading import extract_answer

        def record(aid, question_id, seed, index):
            return lambda completion: {
                "id": aid, "question_id": question_id, "sample_index": index, "model": self.endpoint.label,
                "text": completion.text, "finish_reason": completion.finish_reason,
                "prediction": None if completion.finish_reason == "length" else extract_answer(completion.text, seed.dataset),
            }

        asks = []
        for candidate, seed in candidates:
            new = Problem(candidate["id"], seed.dataset, candidate["question"], answer="", solution="")
            for index in range(self.config.samples):
                aid = self.answer_id(candidate["id"], index)
                request = solve_request(new, self.endpoint, index, temperature=self.config.temperature,
                                        max_tokens=self.config.max_tokens)
                asks.append(Ask(aid, self.endpoint, request, record(aid, candidate["id"], seed, index)))
        self.summary.new_requests += await self._ask(asks, self.answers, "answers")

    async def vote(self, candidates, dropped: list) -> list[Problem]:
        """Keep the questions whose answers agree clearly; the majority answer becomes the gold.

        With a judge, an answer the rules cannot compare with the majority answer (no answer
        they can read, an equation written another way) is asked about; one the judge finds
        equal counts as a vote, and a question whose majority then holds more than half of its
        answers is clear."""
        from lema_plugin.grading import answers_match

        config, summary, problems = self.config, self.summary, []
        tallies = []
        for record, seed in candidates:
            got = [self.answers.get(self.answer_id(record["id"], i)) for i in range(config.samples)]
            if any(a is None for a in got):
                summary.unanswered += 1
                continue
            summary.answered += 1
            predictions = [a["prediction"] for a in got]
            tallies.append((record, seed, got, predictions, *majority(predictions, seed.dataset, answers_match)))
        judged = await self._judged_votes(tallies)
        for index, (record, seed, got, predictions, answer, votes, clear) in enumerate(tallies):
            if judged[index]:
                votes += judged[index]
                clear = clear or votes > config.samples / 2
            agreement = votes / config.samples
            if answer is None or not clear or agreement < config.min_agreement:
                summary.no_majority += 1
                dropped.append({**record, "reason": "no_majority", "detail": f"{votes}/{config.samples} agree",
                                "predictions": predictions})
                continue
            rationale = next(a["text"] for a in got
                             if a["prediction"] is not None and answers_match(a["prediction"], answer, seed.dataset))
            problems.append(Problem(
                id=make_id(seed.dataset, record["question"]),  # the id `load_problems` would give it
                dataset=seed.dataset,
                question=record["question"],
                answer=answer,
                solution=finish_rationale(rationale, answer),
                level=seed.level,  # inherited from the seed
                subject=seed.subject,
                extra={
                    "seed_id": seed.problem_id,
                    "generation": record["generation"],
                    "style": record["style"],
                    "agreement": round(agreement, 4),
                    "votes": votes,
                    "answers": config.samples,
                    "evolved_by": self.endpoint.label,
                },
            ))
            summary.kept_by_style[record["style"]] += 1
            summary.agreement[votes] += 1
        summary.kept = len(problems)
        return problems

    async def _judged_votes(self, tallies) -> list[int]:
        """Per tally, how many answers outside the rules' majority the judge finds equal to it."""
        from lema_plugin.grading import grade
        from lema_plugin.grading.judge import JudgeItem, judge_graded

        added = [0] * len(tallies)
        if self.config.judge is None:
            return added
        asked = []  # (tally index, grade, item)
        for index, (record, seed, got, predictions, answer, votes, clear) in enumerate(tallies):
            if answer is None:
                continue
            for reply in got:
                if reply.get("finish_reason") == "length":
                    continue
                graded = grade(reply["text"], answer, seed.dataset)
                if not graded.settled:
                    asked.append((index, graded, JudgeItem(reply["text"], answer, record["question"])))
        if asked:
            results = await judge_graded([(graded, item) for _, graded, item in asked], self.config.judge, self.client,
                                         desc="judge answers")
            for (index, _, _), result in zip(asked, results):
                added[index] += result.correct and result.decided_by == "judge"
        self.summary.judge_votes = sum(added)
        return added


async def evolve_questions(
    inputs: EvolveInputs,
    endpoints: Sequence[Endpoint],
    client,
    out_dir: str | Path,
    settings: EvolveSettings = EvolveSettings(),
) -> EvolveSummary:
    """The evolution stage: write `problems.jsonl`, `evolve_dropped.jsonl` and
    `evolve_summary.json` in `out_dir` (see `read_inputs` for what `inputs` holds; the one
    endpoint in `endpoints` writes and answers the new questions)."""
    endpoint = one_endpoint(endpoints, "evolution")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    before = usage_snapshot(client)
    seeds = inputs.seeds
    summary = EvolveSummary(seeds=len(seeds))
    counts = questions_per_seed(seeds, settings.per_seed, inputs.level_success_rates)
    contamination = None
    if inputs.contamination_questions is not None:
        contamination = NearDuplicateIndex(settings.ngram, settings.max_overlap)
        for key, question in inputs.contamination_questions:
            contamination.add(question, key)
        summary.test_questions = len(contamination)
    dropped: list[dict] = []
    with RunStore(out_dir / "evolve_questions.jsonl") as questions, RunStore(out_dir / "evolve_answers.jsonl") as answers:
        manifest.remember(
            out_dir, "evolve",
            {"evolver": {"model": endpoint.model, "mode": endpoint.mode,
                         **settings.model_dump(include={"generate_temperature", "answer_temperature",
                                                        "generate_max_tokens", "answer_max_tokens"})}},
            {"evolver": {**manifest.endpoint_info(endpoint), **settings.model_dump()}},
            ["evolve_questions.jsonl", "evolve_answers.jsonl", PROBLEMS, "evolve_dropped.jsonl", "evolve_summary.json"],
        )
        run = _Evolution(endpoint, settings, client, questions, answers, summary)
        plan = run.plan(seeds, counts)
        await run.generate(plan)
        candidates = run.filter(plan, seeds, contamination, dropped)
        await run.answer(candidates)
        problems = await run.vote(candidates, dropped)
    write_jsonl_atomic(out_dir / PROBLEMS, [p.to_dict() for p in problems])
    write_jsonl_atomic(out_dir / "evolve_dropped.jsonl", dropped)
    summary.usage = usage_since(client, before)
    summary.usage_lines = list(client.usage_lines())
    write_summary(out_dir / "evolve_summary.json", summary)
    return summary

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
with its reason in `evolve_dropped.jsonl`. `Evolution` does each step for one run of the stage
(`spec.EvolveStage`), asking through the stage's request loop and judge.
"""
from __future__ import annotations

from lema_plugin.cot.rationales import finish_rationale
from lema_plugin.llm.types import Ask, Endpoint
from lema_plugin.problems import Problem
from lema_plugin.records import make_id
from lema_plugin.solving import solve_request

from .dedupe import NearDuplicateIndex
from .prompt import generation_request
from .reply import majority, parse_new_question
from .seeds import Seed
from .summary import EvolveSummary

PROBLEMS = "problems.jsonl"
QUESTIONS = "evolve_questions.jsonl"
ANSWERS = "evolve_answers.jsonl"
DROPPED = "evolve_dropped.jsonl"
SUMMARY = "evolve_summary.json"


def question_id(seed: Seed, style: str, index: int, decisive: dict) -> str:
    return make_id("evolve-question", seed.problem_id, style, index, decisive)


def answer_id(question: str, index: int, decisive: dict) -> str:
    return make_id("evolve-answer", question, decisive, index)


def answer_request(question_id: str, question: str, dataset: str, endpoint: Endpoint, config, index: int):
    """The `solve` request for answer `index` of a new question."""
    new = Problem(question_id, dataset, question, answer="", solution="")
    return solve_request(new, endpoint, index, temperature=config.temperature, max_tokens=config.max_tokens)


class Evolution:
    """One run of the stage: the model, the settings, the two run stores and the counts."""

    def __init__(self, endpoint: Endpoint, config, run, summary: EvolveSummary):
        self.endpoint, self.config, self.run = endpoint, config, run
        self.questions, self.answers, self.summary = run.store(QUESTIONS), run.store(ANSWERS), summary
        self.decisive = run.stage.decisive(endpoint, config)

    def plan(self, seeds: list[Seed], counts: dict[str, int]) -> list[tuple[str, Seed, str, int]]:
        """(question id, seed, style, index) for every new question wanted, in a fixed order."""
        plan = []
        for seed in seeds:
            for index in range(counts[seed.problem_id]):
                style = self.config.styles[index % len(self.config.styles)]  # similar, harder, similar, ...
                qid = question_id(seed, style, index, self.decisive)
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

        return await self.run.ask(asks, keep, desc=f"evolve: {what} ({self.endpoint.label})", done=store.__contains__)

    def generation_asks(self, plan) -> list[Ask]:
        def record(qid, seed, style, index):
            return lambda completion: {
                "id": qid, "seed_id": seed.problem_id, "style": style, "sample_index": index,
                "generation": seed.generation + 1, "model": self.endpoint.label, "raw": completion.text,
                "question": parse_new_question(completion.text), "finish_reason": completion.finish_reason,
            }

        return [Ask(qid, self.endpoint, generation_request(seed, style, self.endpoint, self.config, index),
                    record(qid, seed, style, index))
                for qid, seed, style, index in plan]

    async def generate(self, plan) -> None:
        self.summary.asked = await self._ask(self.generation_asks(plan), self.questions, "new questions")
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

    def answer_id(self, question: str, index: int) -> str:
        return answer_id(question, index, self.decisive)

    def answer_asks(self, candidates) -> list[Ask]:
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
            for index in range(self.config.samples):
                aid = self.answer_id(candidate["id"], index)
                request = answer_request(candidate["id"], candidate["question"], seed.dataset, self.endpoint, self.config,
                                         index)
                asks.append(Ask(aid, self.endpoint, request, record(aid, candidate["id"], seed, index)))
        return asks

    async def answer(self, candidates) -> None:
        self.summary.new_requests += await self._ask(self.answer_asks(candidates), self.answers, "answers")

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
        """Per tally, how many answers outside the rules' majority the judge finds equal to it
        (asked through the stage's judge queue: an answer whose judge request failed adds no
        vote this run and is asked again on the next)."""
        from lema_plugin.grading import grade
        from lema_plugin.grading.judge import JudgeItem

        added = [0] * len(tallies)
        if self.config.judge is None:
            return added
        for index, (record, seed, got, predictions, answer, votes, clear) in enumerate(tallies):
            if answer is None:
                continue
            for reply in got:
                if reply.get("finish_reason") == "length":
                    continue
                graded = grade(reply["text"], answer, seed.dataset, record["question"])
                if graded.settled:
                    continue

                def vote(result, index=index) -> None:
                    added[index] += result.correct and result.decided_by == "judge"

                self.run.judge.put(graded, JudgeItem(reply["text"], answer, record["question"]), vote)
        await self.run.settle()
        self.summary.judge_votes = sum(added)
        return added

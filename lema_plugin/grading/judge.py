"""An LLM judge for what the rules cannot decide.

The rules settle almost every answer (see `compare.Verdict`). What is left (no extractable
answer, a free-form text answer, an equation written another way, a symbolic check that could
not finish) can be settled by asking a judge model whether the final answer means the same as
the reference answer. Only those items are sent, through the one client, so replies are
cached (a re-run pays for nothing it already has), failures are retried and usage is counted.

A stage that grades calls `await grade_with_judge(items, dataset, judge, client)` with
(text, gold, question) triples: it grades them all by the rules and, when `judge` is an endpoint,
settles the undecided ones with it. `judge_graded` is the second half alone, for grades already
in hand: settled items come back untouched, unsettled ones with the judge's verdict and
`decided_by="judge"`. A reply the judge did not end with a verdict, or a request that failed,
leaves the rule verdict (not correct) in place and the item unsettled. A stage that stores each
record as its reply arrives holds the undecided ones in a `JudgeQueue` until the judge has
settled them.
"""
from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Callable, Sequence

from ..llm.types import Endpoint, Request
from ..prompts import render
from . import Graded, gold_answer, grade

JUDGE_MAX_TOKENS = 256
SOLUTION_TAIL_CHARS = 3000  # the end of a long solution is where its final answer is
_VERDICT = re.compile(r"verdict\s*[:\-]?\s*\**\s*(correct|incorrect|wrong|right)\b", re.I)


@dataclass(frozen=True)
class JudgeItem:
    """What the judge sees about one graded completion."""

    solution: str  # the model's text
    gold: str  # the reference final answer
    question: str | None = None

    @classmethod
    def of(cls, solution: str, gold: object, dataset: str, question: str | None = None) -> "JudgeItem":
        """The item for a solution and a gold answer as a record holds it (a bare answer or a
        whole gold rationale: the judge sees the final answer only)."""
        return cls(solution, gold_answer(gold, dataset) or str(gold), question)


def judge_request(item: JudgeItem) -> Request:
    solution = item.solution.strip()
    if len(solution) > SOLUTION_TAIL_CHARS:
        solution = "..." + solution[-SOLUTION_TAIL_CHARS:]
    prompt = render("judge", question=(item.question or "(not given)").strip(), gold=item.gold.strip(), solution=solution)
    return Request(prompt=prompt, temperature=0.0, max_tokens=JUDGE_MAX_TOKENS)


def parse_verdict(reply: str) -> bool | None:
    """The judge's last `Verdict: correct|incorrect`, or None when the reply has none."""
    found = _VERDICT.findall(reply or "")
    if not found:
        return None
    return found[-1].lower() in ("correct", "right")


async def judge_graded(
    items: Sequence[tuple[Graded, JudgeItem]], endpoint: Endpoint, client, desc: str = "judge"
) -> list[Graded]:
    """Settle the unsettled grades of `items` with the judge at `endpoint` (an `LLMClient`).

    Returns one `Graded` per item, in order. Only unsettled items cost a request.
    """
    results = [graded for graded, _ in items]
    asked = [index for index, (graded, _) in enumerate(items) if not graded.settled]
    jobs = [(endpoint, judge_request(items[index][1])) for index in asked]
    async for position, completion in client.stream(jobs, desc=desc):
        verdict = parse_verdict(completion.text) if completion.ok else None
        if verdict is not None:
            index = asked[position]
            results[index] = dataclasses.replace(results[index], correct=verdict, decided_by="judge", settled=True)
    return results


async def grade_with_judge(
    items: Sequence[tuple[object, object, str | None]], dataset: str, judge: Endpoint | None = None, client=None
) -> list[Graded]:
    """Grade (text, gold, question) triples by the rules; with a `judge` endpoint (and the
    `LLMClient` to reach it), let the judge settle what the rules could not."""
    graded = [grade(text, gold, dataset, question) for text, gold, question in items]
    if judge is None or all(item.settled for item in graded):
        return graded
    asked = [
        (result, JudgeItem(solution="" if text is None else str(text), gold=gold_answer(gold, dataset) or str(gold), question=question))
        for result, (text, gold, question) in zip(graded, items)
    ]
    return await judge_graded(asked, judge, client)


class JudgeQueue:
    """Where a stage's undecided grades wait for the judge before their records are stored.

    A stage grades each reply by the rules as it arrives and hands the grade to `put` with a
    `done(graded)` callback that stores its record. A settled grade (or any grade, with no judge)
    goes to `done` at once; an unsettled one waits until `settle()` asks the judge about every
    waiting item in one stream. A run interrupted before `settle` loses no paid work: the
    replies and verdicts are in the client's response cache, so the next run gets them free.
    """

    def __init__(self, judge: Endpoint | None, client, desc: str = "judge"):
        self.judge, self.client, self.desc = judge, client, desc
        self._waiting: list[tuple[Graded, JudgeItem, Callable[[Graded], None]]] = []

    def put(self, graded: Graded, item: JudgeItem, done: Callable[[Graded], None]) -> None:
        if self.judge is None or graded.settled:
            done(graded)
        else:
            self._waiting.append((graded, item, done))

    async def settle(self) -> int:
        """Ask the judge about every waiting item, hand each on; returns how many were asked."""
        waiting, self._waiting = self._waiting, []
        if waiting:
            results = await judge_graded([(graded, item) for graded, item, _ in waiting], self.judge, self.client, self.desc)
            for result, (_, _, done) in zip(results, waiting):
                done(result)
        return len(waiting)

"""An LLM judge for what the rules cannot decide.

The rules settle almost every answer (see `compare.Verdict`). What is left (no extractable
answer, a free-form text answer, an equation written another way, a symbolic check that could
not finish) can be settled by asking a judge model whether the final answer means the same as
the reference answer. Only those items are sent, through the one client, so replies are
cached (a re-run pays for nothing it already has), failures are retried and usage is counted.

Judge requests go through the one request loop like every other request (ids, cache, endpoint
check and start line, first-failures stop, budget, estimate, batch mode). A stage that stores
each record as its reply arrives holds the undecided ones in a `JudgeQueue` until the judge has
settled them; what the judge could not settle stays pending and is never stored as a verdict.
`judge_graded` and `grade_with_judge` serve callers that only report grades (`lema grade`).
"""
from __future__ import annotations

import dataclasses
import re
from collections import Counter
from dataclasses import dataclass
from typing import Callable, Sequence

from ..llm.types import Ask, Endpoint, Request
from ..records import make_id
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


def judge_id(endpoint: Endpoint, item: JudgeItem) -> str:
    """The id of one judge question: the judge model and what it is shown."""
    return make_id("judge", endpoint.model, endpoint.mode, item.question, item.gold, item.solution)


def _asker(ask_or_client):
    """The request loop to judge through: a stage's `run.ask`, or the one loop around a bare
    client (`asking.loop`), so a judge request gets what every request gets (cache, endpoint
    check, start line, first-failures stop, budget, estimate, batch mode)."""
    if hasattr(ask_or_client, "stream"):
        from ..asking import loop

        return loop(ask_or_client)
    return ask_or_client


async def judge_graded(
    items: Sequence[tuple[Graded, JudgeItem]], endpoint: Endpoint, ask, desc: str = "judge",
    failures: Counter | None = None,
) -> list[Graded]:
    """Settle the unsettled grades of `items` with the judge at `endpoint`; `ask` is the request
    loop (`run.ask`) or an `LLMClient`.

    Returns one `Graded` per item, in order. Only unsettled items cost a request; an item whose
    request failed, or whose reply holds no verdict, keeps its rule grade (unsettled). The
    reasons of the judge requests that finally failed are added to `failures`."""
    results = [graded for graded, _ in items]
    queue = JudgeQueue(endpoint, ask, desc)
    for index, (graded, item) in enumerate(items):
        def done(settled: Graded, index=index) -> None:
            results[index] = settled

        queue.put(graded, item, done)
    try:
        await queue.settle()
    finally:
        if failures is not None:
            failures.update(queue.failures)
    return results


async def grade_with_judge(
    items: Sequence[tuple[object, object, str | None]], dataset: str, judge: Endpoint | None = None, client=None
) -> list[Graded]:
    """Grade (text, gold, question) triples by the rules; with a `judge` endpoint (and the
    request loop or `LLMClient` to reach it), let the judge settle what the rules could not."""
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
    waiting item, through the stage's request loop (`ask`), with role "judge".

    What the judge could not settle is never passed off as a verdict: an item whose judge request
    failed, or was not sent (the budget, pending batches, a stop after the first failures), is
    not handed to `done` at all; it stays pending (`pending` counts them) and the stage's next run
    grades its cached reply and asks the judge again. Only a reply that came back without a verdict
    leaves the rule grade in place (unsettled, `decided_by` as the rules said): asking again would
    get the same cached reply.
    """

    def __init__(self, judge: Endpoint | None, ask=None, desc: str = "judge"):
        self.judge, self.desc = judge, desc
        self.ask = _asker(ask) if ask is not None else None
        self.pending = 0  # items left unsettled this run because their judge request failed or was not sent
        self.failures: Counter = Counter()  # why judge requests finally failed: reason -> requests
        self._waiting: list[tuple[Graded, JudgeItem, Callable[[Graded], None]]] = []

    def put(self, graded: Graded, item: JudgeItem, done: Callable[[Graded], None]) -> None:
        if self.judge is None or graded.settled:
            done(graded)
        else:
            self._waiting.append((graded, item, done))

    def plan(self, items: Sequence[JudgeItem]) -> list[Ask]:
        """The judge requests for `items` (what `--estimate` counts as a bound)."""
        return [Ask(judge_id(self.judge, item), self.judge, judge_request(item)) for item in items]

    async def settle(self) -> int:
        """Ask the judge about every waiting item and hand each settled one on; returns how
        many were asked. Raises what the loop raises (budget, pending batches) after handing on
        every answer that arrived."""
        waiting, self._waiting = self._waiting, []
        if not waiting:
            return 0
        asks = [Ask(judge_id(self.judge, item), self.judge, judge_request(item), (graded, item, done))
                for graded, item, done in waiting]
        answered = 0

        def on_reply(ask: Ask, completion) -> None:
            nonlocal answered
            graded, _, done = ask.owner
            if not completion.ok:
                self.failures[" ".join((completion.error or "request failed").split())[:160]] += 1
                return  # stays pending: counted below, asked again on the next run
            answered += 1
            verdict = parse_verdict(completion.text)
            if verdict is None:
                done(graded)
            else:
                done(dataclasses.replace(graded, correct=verdict, decided_by="judge", settled=True))

        try:
            await self.ask(asks, on_reply, desc=self.desc, role="judge", done=lambda _: False)
        finally:
            self.pending += len(asks) - answered
        return len(asks)

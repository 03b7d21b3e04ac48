"""Ask only what is missing: the one request loop every stage goes through.

A stage lists the work it wants as `Ask`s, each under the id its record will be stored under.
`ask_missing` drops the ones the run store already holds, sends the rest through the one client,
and hands every completion to the stage as it arrives, so the stage can store it at once.

This is the single place between the stages and the client, so every stage (sample, correct,
cot, evolve) gets at once:

- **the cost preview**: with `client.estimate` set, nothing is sent; the requests that neither
  the store nor the cache can answer are counted into it (`llm.costs.Estimate`);
- **the budget**: a request the client would not send because it could cross `--max-cost` is not
  handed to the stage; once the rest are stored, the stage stops with `BudgetStop`;
- **batch mode**: asks for a batch-mode endpoint go through the Batch API (`llm.batch`); their
  answers, collected on a later run, reach `on_reply` exactly as online ones do, and while any
  are pending the stage stops with `BatchPending` ("run the same command again to collect").
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterable

from .llm.batch import BatchPending, run_batches
from .llm.client import cache_key, request_body
from .llm.costs import BudgetStop
from .llm.types import Completion, Endpoint, Request


@dataclass(frozen=True)
class Ask:
    """One request a stage wants answered: its record id, where to ask, what to ask, and
    whatever the stage needs to turn the answer into a record (`owner`)."""

    id: str
    endpoint: Endpoint
    request: Request
    owner: Any = None


async def ask_missing(
    client,
    asks: Iterable[Ask],
    done: Callable[[str], bool],
    on_reply: Callable[[Ask, Completion], None],
    desc: str | None = None,
) -> int:
    """Send the asks whose id is not `done` yet; call `on_reply(ask, completion)` for each as it
    arrives (failed ones too: `completion.ok` is False). Returns how many requests were new.

    Raises `BudgetStop` or `BatchPending` after storing every answer that did arrive."""
    todo = [ask for ask in asks if not done(ask.id)]
    estimate = getattr(client, "estimate", None)
    if estimate is not None:
        for ask in todo:
            if client.cached(ask.endpoint, ask.request) is None:
                estimate.add(ask.endpoint, ask.request)
        return 0
    online = [ask for ask in todo if not ask.endpoint.batch]
    over_budget = 0
    if online:
        async for index, completion in client.stream([(a.endpoint, a.request) for a in online], desc=desc):
            if completion.extra.get("over_budget"):
                over_budget += 1
                continue
            on_reply(online[index], completion)
    outcome = None
    batched = []
    for ask in todo:
        if ask.endpoint.batch:
            hit = client.cached(ask.endpoint, ask.request)  # asked online before: already paid
            if hit is not None:
                on_reply(ask, hit)
            else:
                batched.append(ask)
    if batched:
        outcome = await run_batches(client, batched, on_reply, request_body, cache_key, client.parse_reply)
    if over_budget or (outcome is not None and outcome.budget_stopped):
        pending = f"; {outcome.message()}" if outcome is not None and outcome.pending else ""
        raise BudgetStop(client.budget.stop_line() + pending)
    if outcome is not None and outcome.pending:
        raise BatchPending(outcome.message())
    return len(todo) - over_budget

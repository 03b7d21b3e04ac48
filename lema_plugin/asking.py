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
- **a start line per endpoint** (`generator llama2-7b -> http://gpu1:8000/v1 (completion)`) and
  **a check of each endpoint before its first paid request** (`llm.probe`): an unset key
  variable (every one named at once, `keys.require`), a dead server, a refused key or a model the
  server does not list stops the stage before anything is spent; asks the response cache
  answers need no check;
- **a stop when the first `FIRST_FAILURES` requests all fail**, with the top failure reasons and
  their counts (what failed is stored, so a rerun asks for it again);
- **the count of new requests**, which the stages report (`0 new requests` on a resumed run that
  the store answered).
"""
from __future__ import annotations

import sys
from collections import Counter
from typing import Callable, Iterable

from . import keys
from .errors import RequestsFailed
from .llm import probe
from .llm.batch import BatchPending, run_batches
from .llm.wire import cache_key, request_body
from .llm.costs import BudgetStop
from .llm.types import Ask, Completion, Endpoint
from .summaries import timeout_hint

FIRST_FAILURES = 10  # a stage whose first this-many requests all fail stops
_announced: set[tuple] = set()


def loop(client) -> Callable:
    """The request loop around `client` for requests no run store keeps (the judge of `lema
    grade`): `await ask(asks, on_reply, desc=..., role=..., done=...)`, nothing counted as done."""

    async def ask(asks: Iterable[Ask], on_reply, desc: str | None = None, role: str = "model",
                  done: Callable[[str], bool] | None = None) -> int:
        return await ask_missing(client, asks, done or (lambda _: False), on_reply, desc=desc, role=role)

    return ask


async def ask_missing(
    client,
    asks: Iterable[Ask],
    done: Callable[[str], bool],
    on_reply: Callable[[Ask, Completion], None],
    desc: str | None = None,
    role: str = "model",
) -> int:
    """Send the asks whose id is not `done` yet; call `on_reply(ask, completion)` for each as it
    arrives (failed ones too: `completion.ok` is False). Returns how many requests were new.

    `role` names the endpoints in the start line and in errors ("generator", "corrector").
    Raises EndpointError before any request when an endpoint fails its check; `RequestsFailed`
    when the first `FIRST_FAILURES` requests all failed, and `BudgetStop` or `BatchPending`,
    after storing every answer that did arrive."""
    todo = [ask for ask in asks if not done(ask.id)]
    estimate = getattr(client, "estimate", None)
    if estimate is not None:
        for ask in todo:
            if client.cached(ask.endpoint, ask.request) is None:
                estimate.add(ask.endpoint, ask.request)
        return 0
    if todo:
        await _announce_and_check(client, todo, role)
    online = [ask for ask in todo if not ask.endpoint.batch]
    over_budget = 0
    failures: Counter = Counter()
    answered = 0
    if online:
        async for index, completion in client.stream([(a.endpoint, a.request) for a in online], desc=desc):
            if completion.extra.get("over_budget"):
                over_budget += 1
                continue
            on_reply(online[index], completion)
            if completion.ok:
                answered += 1
            elif not answered:
                failures[completion.error or "request failed"] += 1
                if sum(failures.values()) >= FIRST_FAILURES and len(online) > FIRST_FAILURES:
                    break
    if not answered and sum(failures.values()) >= FIRST_FAILURES and len(online) > FIRST_FAILURES:
        top = "; ".join(f"{count}x {_short(reason)}" for reason, count in failures.most_common(3))
        names = ", ".join(dict.fromkeys(ask.endpoint.label for ask in online))
        raise RequestsFailed(f"{role} {names}: the first {FIRST_FAILURES} requests all failed, so the stage stopped "
                             f"before the other {len(online) - FIRST_FAILURES}; top reasons: {top}{timeout_hint(failures)}")
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


async def _announce_and_check(client, todo: list[Ask], role: str) -> None:
    """Print each endpoint's start line (once per process) and check, before its first paid
    request, each endpoint that has an ask the response cache cannot answer."""
    endpoints = list(dict.fromkeys(ask.endpoint for ask in todo))
    for endpoint in endpoints:
        if (role, endpoint) not in _announced:
            _announced.add((role, endpoint))
            print(probe.start_line(endpoint, role), file=sys.stderr, flush=True)
    paid: set[Endpoint] = set()
    cache = getattr(client, "cache", None)
    for ask in todo:  # stops looking at an endpoint once one of its asks is not cached
        if ask.endpoint not in paid and (cache is None or not cache.path(cache_key(ask.endpoint, ask.request)).exists()):
            paid.add(ask.endpoint)
    keys.require([endpoint for endpoint in endpoints if endpoint in paid], f"{role}: ")
    for endpoint in endpoints:
        if endpoint in paid and not probe.is_checked(endpoint):
            await probe.check_endpoint(endpoint, role)


def _short(reason: str, limit: int = 160) -> str:
    reason = " ".join(reason.split())
    return reason if len(reason) <= limit else reason[: limit - 3] + "..."

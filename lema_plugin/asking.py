"""Ask only what is missing: the one request loop every stage goes through.

A stage lists the work it wants as `Ask`s, each under the id its record will be stored under.
`ask_missing` drops the ones the run store already holds, sends the rest through the one client,
and hands every completion to the stage as it arrives, so the stage can store it at once.

This is the single place between the stages and the client: a check of each endpoint before
the first paid request, a stop when a stage's first requests all fail, a count of new requests,
or a batch mode with a budget belong here, and every stage (sample, correct, cot, evolve) gets
them at once.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterable

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
    arrives (failed ones too: `completion.ok` is False). Returns how many requests were new."""
    todo = [ask for ask in asks if not done(ask.id)]
    if todo:
        async for index, completion in client.stream([(a.endpoint, a.request) for a in todo], desc=desc):
            on_reply(todo[index], completion)
    return len(todo)

"""Pacing one endpoint under its rate limits, so a long run is not a string of 429 retries.

Two sources: the spec's own caps (`;rpm=`, `;tpm=`: requests and tokens per rolling minute,
tokens counted as the request's worst case, prompt bound plus max_tokens, as the API does when
it admits a request), and what the server says on each answer: `x-ratelimit-remaining-requests`
or `-tokens` at 0 means wait for `x-ratelimit-reset-requests` / `-tokens` (e.g. `1s`, `6m0s`,
`20ms`) before the next request. A 429's `retry-after` is handled by the client's retries.

A third, for a server on this machine (the embedded model, a local llama.cpp): a request that
timed out there means the server has more at once than it can finish in time, and sending the
retry at once only adds to its queue. `overloaded()` halves the requests in flight it may get
(`slot()`); each answer that comes back in time lets one more in again.
"""
from __future__ import annotations

import asyncio
import collections
import contextlib
import re
import time

WINDOW = 60.0
MAX_WAIT = 120.0  # never sleep longer than this on a header's say-so
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def reset_seconds(value: str | None) -> float | None:
    """`6m0s` -> 360.0, `20ms` -> 0.02, `1.5` -> 1.5; None when unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        return float(value)
    except ValueError:
        pass
    parts = _DURATION.findall(value)
    if not parts or "".join(n + u for n, u in parts) != value:
        return None
    return sum(float(number) * _UNIT[unit] for number, unit in parts)


class Pacer:
    """Requests and tokens sent to one endpoint in the last minute, and a time not to send before."""

    def __init__(self, rpm: int | None = None, tpm: int | None = None, clock=time.monotonic):
        self.rpm, self.tpm, self.clock = rpm, tpm, clock
        self.sent: collections.deque[tuple[float, int]] = collections.deque()
        self.not_before = 0.0
        self.waited = 0.0  # seconds spent waiting, for the benchmark and the curious
        self._lock = asyncio.Lock()
        self.limit: int | None = None  # requests in flight allowed after an overload; None: no cap of its own
        self.in_flight = 0
        self._freed: asyncio.Condition | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def delay(self, tokens: int) -> float:
        """Seconds to wait before sending a request of `tokens` (0 when it may go now)."""
        now = self.clock()
        while self.sent and self.sent[0][0] <= now - WINDOW:
            self.sent.popleft()
        wait = max(0.0, self.not_before - now)
        if self.rpm and len(self.sent) >= self.rpm:
            wait = max(wait, self.sent[len(self.sent) - self.rpm][0] + WINDOW - now)
        if self.tpm and self.sent:
            used = sum(t for _, t in self.sent)
            tokens = min(tokens, self.tpm)  # a request larger than the cap goes alone
            if used + tokens > self.tpm:
                freed = 0
                for when, spent in self.sent:
                    freed += spent
                    if used - freed + tokens <= self.tpm:
                        wait = max(wait, when + WINDOW - now)
                        break
        return wait

    async def wait(self, tokens: int) -> None:
        async with self._lock:  # one at a time, so two requests never take the same last slot
            while (pause := self.delay(tokens)) > 0:
                self.waited += pause
                await asyncio.sleep(pause)
            self.sent.append((self.clock(), tokens))

    def note(self, headers) -> None:
        """Read the server's rate-limit headers after an answer."""
        if headers is None:
            return
        for kind in ("requests", "tokens"):
            remaining = headers.get(f"x-ratelimit-remaining-{kind}")
            if remaining is None or remaining.strip() not in ("0", "0.0"):
                continue
            seconds = reset_seconds(headers.get(f"x-ratelimit-reset-{kind}"))
            if seconds:
                self.not_before = max(self.not_before, self.clock() + min(seconds, MAX_WAIT))

    # -- an overloaded server on this machine ----------------------------------------------------

    def overloaded(self) -> None:
        """A request timed out on a local server: halve what it may have in flight (at least 1)."""
        now = self.in_flight + 1  # the request that timed out has left already
        self.limit = max(1, min(self.limit or now, now) // 2)

    def answered(self) -> None:
        """An answer came back in time: one more request may be in flight again."""
        if self.limit is not None:
            self.limit += 1

    @contextlib.asynccontextmanager
    async def slot(self):
        """Hold one of the requests in flight this endpoint may have (any number while no
        overload was seen)."""
        loop = asyncio.get_running_loop()
        if self._freed is None or self._loop is not loop:  # asyncio primitives belong to one loop
            self._freed, self._loop, self.in_flight = asyncio.Condition(), loop, 0
        async with self._freed:
            await self._freed.wait_for(lambda: self.limit is None or self.in_flight < self.limit)
            self.in_flight += 1
        try:
            yield
        finally:
            async with self._freed:
                self.in_flight -= 1
                self._freed.notify_all()

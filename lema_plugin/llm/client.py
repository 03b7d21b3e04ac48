"""The one LLM client: every model call of every stage goes through `LLMClient`.

It talks to any OpenAI-compatible server (vLLM, TGI, llama.cpp, `transformers serve`, OpenAI)
through the official `openai` package and adds what long data-generation runs need:

- bounded concurrency shared by all endpoints (one semaphore around each HTTP attempt);
- its own retries (the package's are turned off so there is one policy): exponential backoff
  with jitter on 429, 408/409, 5xx, timeouts, connection errors and malformed bodies, honouring
  Retry-After; a request that still fails comes back as `Completion(error=...)`, never raised,
  so a stage can record it instead of losing it;
- an on-disk cache keyed by the request hash, so a re-run pays for nothing it already has;
- usage per endpoint label and a progress bar;
- a hard budget (`costs.Budget`, the run folder's): the worst case of each HTTP attempt, retries
  included, is reserved in the folder's spend ledger before it is sent and settled to what it
  cost when it ends (a 200 with a broken body, a timeout or a dropped connection may have been
  billed, so it keeps its worst case; an error status or a refused connection costs nothing); an
  attempt that would cross the cap is not sent (`Completion.extra["over_budget"]`);
- online rate limits: an endpoint's `rpm` / `tpm` caps, and the server's
  `x-ratelimit-remaining-*` / `x-ratelimit-reset-*` headers, pace the next request to it; a
  timeout from a server on this machine halves what it gets in flight (`pacing.Pacer.overloaded`);
- for batch-mode endpoints, the folder of the Batch API ledger (`batch_dir`, see `llm.batch`),
  and a cost preview (`estimate`) that makes the asking helper count instead of send.

Text arriving from a server is made safe once, here, before anything stores it: a lone UTF-16
surrogate (half an emoji, cut by a server) becomes U+FFFD, since it cannot be written as UTF-8
and would otherwise fail the cache and the store on every rerun of the same request; and every
API key (`keys.scrub`), in any letter case, becomes `***` in replies and in failure reasons alike.
Keys come from `keys.key_for`, the one reader of the environment.

Requests go through `AsyncOpenAI.post(..., cast_to=bytes)` and the JSON is read here: that keeps
the package's transport, auth and error types while skipping its per-request model validation,
which would otherwise cost more CPU than everything else together at hundreds of requests per
second, and it lets a malformed body be retried instead of raised. One `AsyncOpenAI` per base URL
is reused; an endpoint with several base URLs gets its requests spread round-robin (a retry moves
on to the next URL).
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import re
import time
from typing import AsyncIterator, Iterable

import httpx
import openai
from tqdm.auto import tqdm

from ..keys import key_for, scrub
from ..records import repair_text
from .batch import MAX_BYTES, MAX_REQUESTS
from .cache import ResponseCache, default_cache_dir
from .costs import Budget, Estimate, dollars, prompt_token_bound, worst_case
from .pacing import Pacer
from .types import Completion, Endpoint, Request
from .usage import Usage, usage_line
from .wire import MalformedResponse, cache_key, parse_completion, request_body, retry_after_seconds

try:  # aiohttp transport: far less CPU per request than the default one
    from openai import DefaultAioHttpClient as _HttpClient
except ImportError:  # older openai without the aiohttp extra
    _HttpClient = None

log = logging.getLogger(__name__)

RETRIABLE_STATUS = {408, 409, 429}
# The package's telemetry headers (OS, arch, runtime...): no server needs them, and every
# header costs CPU on each of hundreds of requests a second.
_NO_PLATFORM_HEADERS = {
    name: openai.omit
    for name in ("X-Stainless-Lang", "X-Stainless-Package-Version", "X-Stainless-OS", "X-Stainless-Arch",
                 "X-Stainless-Runtime", "X-Stainless-Runtime-Version")
} if hasattr(openai, "omit") else None
MAX_RETRY_AFTER = 120.0  # never sleep longer than this on a server's say-so


class LLMClient:
    """Async client for OpenAI-compatible endpoints with concurrency, retries, cache and usage.

    cache_dir: where responses are cached; None means `$LEMA_CACHE_DIR/responses` (else
    `~/.cache/lema/responses`); False turns the cache off.
    concurrency: the most HTTP requests in flight at once, over all endpoints.
    timeout: seconds per HTTP attempt. max_retries: extra attempts after a retriable fault.
    backoff_base / backoff_max: the exponential backoff schedule in seconds (the n-th retry
    waits between half and all of min(backoff_max, backoff_base * 2**n)).

    Connections belong to the event loop that opened them: call `aclose()` (or use `async with`)
    before that loop ends. The same client may then serve a later loop; it opens new connections
    and keeps its usage counts.
    """

    def __init__(
        self,
        cache_dir: str | os.PathLike | None | bool = None,
        concurrency: int = 32,
        timeout: float = 120.0,
        max_retries: int = 5,
        progress: bool = True,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
        budget: "Budget | None" = None,
        batch_dir: str | os.PathLike | None = None,
        estimate: "Estimate | None" = None,
    ):
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        if cache_dir is False:
            self.cache = None
        else:
            self.cache = ResponseCache(default_cache_dir() if cache_dir in (None, True) else cache_dir)
        self.concurrency = concurrency
        self.timeout = timeout
        self.max_retries = max_retries
        self.progress = progress
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.usage: dict[str, Usage] = {}
        self.budget = budget
        self.batch_dir = batch_dir
        self.estimate = estimate
        self.batch_max_requests = MAX_REQUESTS
        self.batch_max_bytes = MAX_BYTES
        self._pacers: dict[tuple, Pacer] = {}
        self._clients: dict[tuple[str, str], openai.AsyncOpenAI] = {}
        self._turns: dict[tuple[str, ...], int] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._semaphore: asyncio.Semaphore | None = None
        self._endpoint_slots: dict[tuple, asyncio.Semaphore] = {}

    # -- public API ---------------------------------------------------------------------

    async def complete(self, endpoint: Endpoint, request: Request) -> Completion:
        """One completion, from the cache or the server. Never raises for a failed request:
        the returned Completion carries `error` instead. Raises ValueError for a request the
        endpoint cannot express (a caller bug)."""
        self._bind_loop()
        body = request_body(endpoint, request)
        usage = self.usage.setdefault(endpoint.label, Usage())
        usage.requests += 1
        key = cache_key(endpoint, request)
        hit = self.cached(endpoint, request)
        if hit is not None:
            usage.cached += 1
            return hit
        worst = worst_case(endpoint, request, batch=False) if self.budget is not None else 0.0
        completion = await self._fetch(endpoint, body, usage, prompt_token_bound(endpoint, request) + request.max_tokens,
                                       worst)
        if completion.extra.get("over_budget"):
            usage.requests -= 1  # not asked (or not asked again): the stage stops before it
            return completion
        if not completion.ok:
            usage.failures += 1
            return completion
        usage.add_tokens(completion.prompt_tokens, completion.completion_tokens, endpoint.price_prompt, endpoint.price_completion)
        if self.cache is not None:
            entry = {
                "model": endpoint.model,
                "text": completion.text,
                "finish_reason": completion.finish_reason,
                "prompt_tokens": completion.prompt_tokens,
                "completion_tokens": completion.completion_tokens,
            }
            try:
                self.cache.put(key, entry)
            except OSError as exc:  # a full or read-only disk must not lose the answer in hand
                log.warning("could not cache a response under %s: %s", self.cache.root, exc)
        return completion

    def cached(self, endpoint: Endpoint, request: Request) -> Completion | None:
        """The cached answer to this request, or None (never asks a server)."""
        if self.cache is None:
            return None
        entry = self.cache.get(cache_key(endpoint, request))
        if entry is None or not isinstance(entry.get("text"), str):
            return None
        return Completion(
            text=entry["text"],
            finish_reason=entry.get("finish_reason"),
            prompt_tokens=entry.get("prompt_tokens", 0),
            completion_tokens=entry.get("completion_tokens", 0),
            cached=True,
        )

    def usage_for(self, endpoint: Endpoint) -> Usage:
        return self.usage.setdefault(endpoint.label, Usage())

    def parse_reply(self, raw: bytes, endpoint: Endpoint) -> Completion:
        """A completion body as `complete` reads it: first choice, repaired text, no key."""
        completion = parse_completion(raw, endpoint.mode == "chat")
        completion.text = scrub(repair_text(completion.text))
        return completion

    async def stream(
        self, jobs: Iterable[tuple[Endpoint, Request]], desc: str | None = None
    ) -> AsyncIterator[tuple[int, Completion]]:
        """Run all jobs concurrently; yield `(index into jobs, Completion)` as each finishes.

        Every job yields exactly once (failures included). Breaking out of the loop cancels the
        requests still in flight.
        """
        jobs = list(jobs)
        if not jobs:
            return
        self._bind_loop()
        results: asyncio.Queue = asyncio.Queue()
        feed = iter(enumerate(jobs))

        async def worker() -> None:
            for index, (endpoint, request) in feed:
                try:
                    results.put_nowait((index, await self.complete(endpoint, request)))
                except Exception as exc:  # a caller bug: hand it to the consumer to raise
                    results.put_nowait((index, exc))
                    return

        # More workers than HTTP slots, so requests sleeping in backoff do not idle the slots.
        workers = [asyncio.ensure_future(worker()) for _ in range(min(len(jobs), 2 * self.concurrency))]
        bar = tqdm(total=len(jobs), desc=desc or "requests", unit="req", disable=not self.progress, mininterval=0.5)
        failures = fresh_tokens = 0
        start = last_note = time.monotonic()
        try:
            for _ in range(len(jobs)):
                index, completion = await results.get()
                if isinstance(completion, Exception):
                    raise completion
                if not completion.ok:
                    failures += 1
                elif not completion.cached:
                    fresh_tokens += completion.completion_tokens
                bar.update(1)
                now = time.monotonic()
                if self.progress and now - last_note >= 0.5:
                    last_note = now
                    bar.set_postfix(failed=failures, tok_s=f"{fresh_tokens / max(now - start, 1e-9):.0f}", refresh=False)
                yield index, completion
        finally:
            for task in workers:
                task.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
            if self.progress:
                elapsed = max(time.monotonic() - start, 1e-9)
                bar.set_postfix(failed=failures, tok_s=f"{fresh_tokens / elapsed:.0f}", refresh=False)
            bar.close()

    async def complete_all(self, jobs: Iterable[tuple[Endpoint, Request]], desc: str | None = None) -> list[Completion]:
        """All completions in job order (a convenience over `stream`)."""
        jobs = list(jobs)
        out: list[Completion | None] = [None] * len(jobs)
        async for index, completion in self.stream(jobs, desc=desc):
            out[index] = completion
        return out  # type: ignore[return-value]

    def usage_lines(self) -> list[str]:
        """One summary line per endpoint label, in first-use order."""
        return [usage_line(label, usage) for label, usage in self.usage.items()]

    async def aclose(self) -> None:
        if self.budget is not None:
            self.budget.close()  # the spend ledger's file (reopened if the client is used again)
        clients, self._clients = self._clients, {}
        for client in clients.values():
            try:
                await client.close()
            except Exception:
                pass

    async def __aenter__(self) -> "LLMClient":
        return self

    async def __aexit__(self, *exc) -> None:
        await self.aclose()

    # -- internals ----------------------------------------------------------------------

    def _bind_loop(self) -> None:
        """Connections and the semaphore belong to one event loop; start fresh on a new one."""
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            self._loop = loop
            self._semaphore = asyncio.Semaphore(self.concurrency)
            self._endpoint_slots = {}
            self._clients = {}

    def _slots(self, endpoint: Endpoint) -> asyncio.Semaphore | contextlib.nullcontext:
        """The endpoint's own cap on requests in flight, when it has one (taken before a
        client-wide slot, so a request waiting on a slow endpoint holds no slot of the others)."""
        if not endpoint.max_concurrency:
            return contextlib.nullcontext()
        key = (endpoint.base_urls, endpoint.model)
        slots = self._endpoint_slots.get(key)
        if slots is None:
            slots = self._endpoint_slots[key] = asyncio.Semaphore(endpoint.max_concurrency)
        return slots

    def _client(self, base_url: str, api_key: str, timeout: float) -> openai.AsyncOpenAI:
        client = self._clients.get((base_url, api_key, timeout))
        if client is None:
            http_client = _HttpClient(timeout=timeout) if _HttpClient is not None else None
            client = openai.AsyncOpenAI(
                base_url=base_url,
                api_key=api_key,
                max_retries=0,
                timeout=timeout,
                http_client=http_client,
                default_headers=_NO_PLATFORM_HEADERS,
            )
            self._clients[(base_url, api_key, timeout)] = client
        return client

    def _first_turn(self, endpoint: Endpoint) -> int:
        """Round-robin start for one request; its retries then walk on through the URLs."""
        if not endpoint.base_urls:
            raise ValueError(f"endpoint {endpoint.label!r} has no base URL")
        turn = self._turns.get(endpoint.base_urls, 0)
        self._turns[endpoint.base_urls] = turn + 1
        return turn

    def _backoff(self, retry: int) -> float:
        ceiling = min(self.backoff_max, self.backoff_base * 2**retry)
        return ceiling / 2 + random.uniform(0, ceiling / 2)

    def _pacer(self, endpoint: Endpoint) -> Pacer:
        key = (endpoint.base_urls, endpoint.model)
        pacer = self._pacers.get(key)
        if pacer is None:
            pacer = self._pacers[key] = Pacer(endpoint.rpm, endpoint.tpm)
        return pacer

    async def _fetch(self, endpoint: Endpoint, body: dict, usage: Usage, tokens: int = 0, worst: float = 0.0) -> Completion:
        """Send `body`, retrying what may pass; each HTTP attempt reserves `worst` USD first and
        settles what it may have cost (see the module docstring). Over the budget before an
        attempt: `Completion.extra["over_budget"]`."""
        chat = endpoint.mode == "chat"
        path = "/chat/completions" if chat else "/completions"
        api_key = key_for(endpoint)
        urls = endpoint.base_urls
        first = self._first_turn(endpoint)
        reason = "no attempt made"
        attempts = 0
        for retry in range(self.max_retries + 1):
            token = self.budget.reserve(worst) if self.budget is not None else ""
            if token is None:
                return Completion(error="not sent: over the budget", extra={"over_budget": True})
            attempts += 1
            client = self._client(urls[(first + retry) % len(urls)], api_key, endpoint.timeout or self.timeout)
            wait: float | None = None
            pacer = self._pacer(endpoint)
            billed: float | None = worst  # what this attempt may have cost until known better
            try:
                if pacer.rpm or pacer.tpm or pacer.not_before:
                    await pacer.wait(tokens)
                async with self._slots(endpoint), pacer.slot(), self._semaphore:
                    response = await client.post(path, body=body, cast_to=httpx.Response)
                    pacer.answered()
                pacer.note(response.headers)
                completion = parse_completion(response.content, chat)
                completion.text = scrub(repair_text(completion.text))
                billed = dollars(endpoint, completion.prompt_tokens, completion.completion_tokens)
                return completion
            except MalformedResponse as exc:  # a 200: the server may have billed it (worst case kept)
                reason = str(exc)
            except openai.APIStatusError as exc:
                billed = None  # an error status: nothing generated, nothing billed
                status = exc.status_code
                message = re.sub(r"^Error code: \d+ - ", "", exc.message or "")
                reason = f"HTTP {status}: {message}"
                if status not in RETRIABLE_STATUS and status < 500:
                    break
                wait = retry_after_seconds(getattr(exc.response, "headers", None))
                pacer.note(getattr(exc.response, "headers", None))
            except openai.APIConnectionError as exc:  # timeouts included: the server may still bill
                reason = _connection_failure(exc, endpoint.timeout or self.timeout)
                if _never_sent(exc):
                    billed = None
                if isinstance(exc, openai.APITimeoutError) and _on_this_machine(urls[(first + retry) % len(urls)]):
                    pacer.overloaded()  # the retry waits for room instead of queueing behind what timed out
            finally:
                if self.budget is not None:
                    self.budget.settle(token, billed)
            if retry == self.max_retries:
                break
            usage.retries += 1
            if wait is not None:
                delay = min(wait, MAX_RETRY_AFTER) * random.uniform(1.0, 1.1)
            else:
                delay = self._backoff(retry)
            await asyncio.sleep(delay)
        reason = scrub(repair_text(reason))
        return Completion(error=f"{reason} (gave up after {attempts} attempt{'s' if attempts > 1 else ''})")


def _connection_failure(exc: openai.APIConnectionError, timeout: float) -> str:
    """Say what went wrong below the HTTP layer. Transports do not always label a refused or
    dropped connection correctly (one maps both to a connect timeout), so look at the root cause:
    only a root cause that is itself a timeout is reported as one."""
    root: BaseException = exc
    for _ in range(10):
        deeper = root.__cause__ or root.__context__
        if deeper is None:
            break
        root = deeper
    timed_out = root is exc or isinstance(root, TimeoutError) or "Timeout" in type(root).__name__
    if isinstance(exc, openai.APITimeoutError) and timed_out:
        return f"timed out after {timeout:g} s"
    return f"connection error: {type(root).__name__}: {root}"


def _never_sent(exc: openai.APIConnectionError) -> bool:
    """A connection the server refused: the request never reached it, so nothing was billed."""
    root: BaseException = exc
    for _ in range(10):
        if isinstance(root, ConnectionRefusedError):
            return True
        deeper = root.__cause__ or root.__context__
        if deeper is None:
            break
        root = deeper
    return isinstance(root, ConnectionRefusedError) or "Connection refused" in str(root)


def _on_this_machine(url: str) -> bool:
    """A server on this machine (the embedded model, a local llama.cpp): its timeouts mean load."""
    host = httpx.URL(url).host
    return host in ("localhost", "::1") or host.startswith("127.")

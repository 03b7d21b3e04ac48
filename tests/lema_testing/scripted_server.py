"""A scripted OpenAI-compatible HTTP server for tests and benchmarks.

Stage tests need exact control over what "the model" says to each prompt, and the client tests
need faults on demand (429, 500, hangs, broken JSON, a reset connection, a reply holding a lone
surrogate, a server that echoes the API key). A real HTTP server on 127.0.0.1 lets the
real `openai` client run unchanged against it, so the tests exercise the same code paths as a
production run against vLLM or OpenAI.

Usage::

    def responder(body: dict, attempt: int) -> str | Reply:
        if attempt == 0:
            return Reply(status=500)          # only the first try fails
        return "The answer is 4."

    with ScriptedServer(responder, latency=0.01) as server:
        endpoint = server.endpoint(model="m")  # an Endpoint pointing at server.base_url
        ...
        assert server.request_count == 2

`body` is the parsed JSON request (`messages` or `prompt`, `model`, `temperature`, ...).
`attempt` is 0 the first time this exact request body arrives, 1 on its first repeat, and so on,
so a fault can be made to hit only the first try. The server runs aiohttp on its own event loop
in a background thread; it handles hundreds of concurrent requests without threads per request.

It also fakes the OpenAI Batch API (`/v1/files`, `/v1/batches`): uploaded batch input files are
kept, a created batch stays `in_progress` until the test calls `finish_batches(...)`, which
answers each line with the same responder (a `Reply` with status != 200 becomes an error-file
line, like a request the real API failed) or ends the batch `expired` (some lines answered) or
`failed` (none). `batch_lines` counts the lines answered that way; `limit_headers` adds
`x-ratelimit-*` headers to online answers.

Money: with `prices=(IN, OUT)` (USD per 1M tokens) the server bills every answer it produces, as a
hosted API does: online answers at full price, batch lines at half, a 200 with a broken body too,
and an answer whose client went away before it arrived as well; `billed` is the running total, the
figure a budget must never let past its cap. `on_hit(n)` is called as the n-th HTTP request of
any kind arrives (`hits` counts them: completions, model lists, the Batch API), before it is
answered: a test kills its client there. `finish_batches(damage={i: b"..."})` writes the
given bytes in place of output line i, as a damaged download would; a batch error line echoes the
key the batch was created with when the reply asks for it (`echo_key`).
"""
from __future__ import annotations

import asyncio
import json
import socket
import struct
import threading
import time
from collections import Counter
from dataclasses import dataclass
from typing import Callable, Union

from aiohttp import web

from lema_plugin.llm.types import Endpoint

HANG_SECONDS = 3600.0  # "forever" for a hung request; cut short when the server stops


@dataclass(frozen=True)
class Reply:
    """A scripted answer, or a scripted fault.

    status != 200 sends an OpenAI-style error body (with a Retry-After header when `retry_after`
    is set, in seconds, fractions allowed); `hang` never answers; `malformed` sends a 200 whose
    body is not valid JSON; `reset` drops the connection with a TCP reset instead of answering,
    `disconnect` closes it without a word;
    `lone_surrogate` ends the content with `\\ud83d`, half of an emoji, as a server that cuts a
    UTF-16 pair apart does; `echo_key` writes the request's API key into the answer (the content,
    or the error message when `status` != 200) as sent and upper-cased, like a careless proxy.
    """

    content: str = ""
    finish_reason: str = "stop"
    status: int = 200
    retry_after: float | None = None
    hang: bool = False
    malformed: bool = False
    reset: bool = False
    disconnect: bool = False
    lone_surrogate: bool = False
    echo_key: bool = False


Responder = Callable[[dict, int], Union[str, Reply]]


def count_tokens(text: str) -> int:
    """Whitespace tokens: a stand-in for a tokenizer so usage numbers are predictable."""
    return len(text.split())


def prompt_text(body: dict) -> str:
    """The text of a chat or completion request body, for token counts and scripting."""
    if "messages" in body:
        return "\n".join(str(m.get("content") or "") for m in body["messages"])
    prompt = body.get("prompt", "")
    return prompt if isinstance(prompt, str) else "\n".join(map(str, prompt))


class ScriptedServer:
    """A real HTTP server speaking /v1/chat/completions, /v1/completions and /v1/models.

    `request_count` counts completion requests (faults included); `max_in_flight` is the most
    completion requests that were being handled at the same moment; `errors` holds exceptions
    raised by the responder (each also answered with a 500); `authorizations` counts the
    Authorization headers received, so a test can check which key was sent.

    `models` is what `/v1/models` lists (default: nothing, i.e. the server does not say, and
    every model name is answered); `api_key`, when set, is the only key accepted: any other gets
    401 on every route, as a hosted API answers a wrong key.
    """

    def __init__(self, responder: Responder, latency: float = 0.0, host: str = "127.0.0.1", port: int = 0,
                 models: tuple[str, ...] = (), api_key: str | None = None, prices: tuple[float, float] | None = None):
        self.responder = responder
        self.models = tuple(models)
        self.api_key = api_key
        self.model_listings = 0
        self.latency = latency
        self.host = host
        self.port = port
        self.request_count = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self.errors: list[BaseException] = []
        self.authorizations: Counter[str] = Counter()
        self._attempts: Counter[str] = Counter()
        self.files: dict[str, dict] = {}  # Batch API: id -> {"purpose", "filename", "data"}
        self.batches: dict[str, dict] = {}  # id -> the batch object as the API returns it
        self.batch_lines = 0
        self._batch_keys: dict[str, str] = {}  # batch id -> the key it was created with
        self.max_batch_requests = 50_000  # the API's per-batch limits
        self.max_batch_bytes = 200 * 1024 * 1024
        self.limit_headers: Callable[[int], dict] | None = None  # request number -> extra headers
        self.prices = prices
        self.billed = 0.0  # USD for every answer produced (see the module docstring)
        self.hits = 0
        self.on_hit: Callable[[int], None] | None = None
        self._bill_lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._stopped: asyncio.Event | None = None

    # -- life cycle -----------------------------------------------------------------------

    def start(self) -> "ScriptedServer":
        ready = threading.Event()
        failure: list[BaseException] = []
        self._thread = threading.Thread(target=self._serve, args=(ready, failure), daemon=True, name="scripted-server")
        self._thread.start()
        ready.wait()
        if failure:
            raise failure[0]
        return self

    def stop(self) -> None:
        if self._loop is None or self._thread is None:
            return
        self._loop.call_soon_threadsafe(self._stopped.set)
        self._thread.join(timeout=10)
        self._loop = self._thread = None

    def __enter__(self) -> "ScriptedServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    def endpoint(self, model: str = "m", mode: str = "chat", **fields) -> Endpoint:
        """An Endpoint for this server; extra fields (name, prices, api_key_env) pass through."""
        return Endpoint(model=model, base_urls=(self.base_url,), mode=mode, **fields)

    def reset_counts(self) -> None:
        """Zero the request counters (not the per-body attempt counts)."""
        self.request_count = 0
        self.max_in_flight = 0

    # -- the server thread ------------------------------------------------------------------

    def _serve(self, ready: threading.Event, failure: list) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._main(ready))
        except BaseException as exc:  # startup failure: hand it to start()
            failure.append(exc)
            ready.set()
        finally:
            loop.close()

    async def _main(self, ready: threading.Event) -> None:
        self._stopped = asyncio.Event()
        @web.middleware
        async def count_hits(request: web.Request, handler):
            self.hits += 1
            if self.on_hit is not None:
                self.on_hit(self.hits)
            return await handler(request)

        app = web.Application(client_max_size=64 * 1024 * 1024, middlewares=[count_hits])
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_post("/v1/completions", self._completion)
        app.router.add_get("/v1/models", self._models)
        app.router.add_post("/v1/files", self._upload)
        app.router.add_get("/v1/files/{id}/content", self._download)
        app.router.add_post("/v1/batches", self._create_batch)
        app.router.add_get("/v1/batches", self._list_batches)
        app.router.add_get("/v1/batches/{id}", self._get_batch)
        app.router.add_post("/v1/batches/{id}/cancel", self._cancel_batch)
        # handler_cancellation: a request the client gave up on (a timed-out hang) stops
        # counting as in flight once its connection closes.
        self._runner = web.AppRunner(
            app, access_log=None, handle_signals=False, shutdown_timeout=0.5, handler_cancellation=True
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, backlog=1024, reuse_address=True)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]
        ready.set()
        await self._stopped.wait()
        await self._runner.cleanup()
        pending = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    # -- handlers ---------------------------------------------------------------------------

    def _refused(self, request: web.Request) -> web.Response | None:
        if self.api_key is not None and request.headers.get("Authorization", "") != f"Bearer {self.api_key}":
            return _error(401, "invalid api key")
        return None

    async def _models(self, request: web.Request) -> web.Response:
        self.model_listings += 1
        refused = self._refused(request)
        if refused is not None:
            return refused
        data = [{"id": name, "object": "model", "owned_by": "test"} for name in self.models]
        return web.json_response({"object": "list", "data": data})

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        return await self._complete(request, chat=True)

    async def _completion(self, request: web.Request) -> web.StreamResponse:
        return await self._complete(request, chat=False)

    async def _complete(self, request: web.Request, chat: bool) -> web.StreamResponse:
        self.request_count += 1
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        self.authorizations[request.headers.get("Authorization", "")] += 1
        try:
            refused = self._refused(request)
            if refused is not None:
                return refused
            raw = await request.read()
            try:
                body = json.loads(raw)
            except ValueError:
                return _error(400, "request body is not JSON")
            attempt_key = raw.decode("utf-8", "replace")
            attempt = self._attempts[attempt_key]
            self._attempts[attempt_key] += 1
            if self.latency:
                await asyncio.sleep(self.latency)
            try:
                reply = self.responder(body, attempt)
            except Exception as exc:  # a broken responder is a test bug: answer 500, keep it
                self.errors.append(exc)
                return _error(500, f"responder failed: {exc!r}")
            if isinstance(reply, str):
                reply = Reply(content=reply)
            return await self._answer(request, body, reply, chat)
        finally:
            self.in_flight -= 1

    async def _answer(self, request: web.Request, body: dict, reply: Reply, chat: bool) -> web.StreamResponse:
        if reply.reset or reply.disconnect:
            if reply.reset:  # SO_LINGER 0: closing sends RST, the client sees "connection reset"
                sock = request.transport.get_extra_info("socket")
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            request.transport.abort()
            return web.Response(status=500)  # never sent: the connection is gone
        content = reply.content
        if reply.echo_key:
            key = request.headers.get("Authorization", "").removeprefix("Bearer ")
            content = f"{content} (your key {key}, {key.upper()})"
        if reply.lone_surrogate:
            content += "\ud83d"
        if reply.hang:  # answer nothing until the server stops (or an hour passes)
            try:
                await asyncio.wait_for(self._stopped.wait(), HANG_SECONDS)
            except asyncio.TimeoutError:
                pass
            return _error(503, "hung request released")
        if reply.status != 200:
            headers = {} if reply.retry_after is None else {"Retry-After": f"{reply.retry_after:g}"}
            message = f"scripted status {reply.status}" + (content if reply.echo_key else "")
            return _error(reply.status, message, headers)
        self.bill(body, content)
        if reply.malformed:
            return web.Response(text='{"id": "cmpl-broken", "choices": [', content_type="application/json")
        headers = self.limit_headers(self.request_count) if self.limit_headers else None
        return web.json_response(completion_payload(body, content, reply.finish_reason, chat, self.request_count),
                                 headers=headers)


    def bill(self, body: dict, content: str, share: float = 1.0) -> None:
        """Charge one answer at the server's prices (a batch line at `share` 0.5)."""
        if self.prices is None:
            return
        cost = (count_tokens(prompt_text(body)) * self.prices[0] + count_tokens(content) * self.prices[1]) / 1e6
        with self._bill_lock:
            self.billed += cost * share

    # -- the fake Batch API ------------------------------------------------------------------

    async def _upload(self, request: web.Request) -> web.Response:
        form = await request.post()
        upload = form.get("file")
        if upload is None or form.get("purpose") != "batch":
            return _error(400, "expected a file and purpose=batch")
        data = upload.file.read()
        file_id = f"file-{len(self.files) + 1}"
        self.files[file_id] = {"purpose": "batch", "filename": upload.filename, "data": data}
        return web.json_response(_file_object(file_id, self.files[file_id]))

    async def _download(self, request: web.Request) -> web.Response:
        entry = self.files.get(request.match_info["id"])
        if entry is None:
            return _error(404, "no such file")
        return web.Response(body=entry["data"], content_type="application/octet-stream")

    async def _create_batch(self, request: web.Request) -> web.Response:
        body = await request.json()
        entry = self.files.get(body.get("input_file_id"))
        if entry is None:
            return _error(400, "no such input file")
        lines = entry["data"].splitlines()
        if len(lines) > self.max_batch_requests or len(entry["data"]) > self.max_batch_bytes:
            return _error(400, f"batch input over the limits ({len(lines)} requests, {len(entry['data'])} bytes)")
        if body.get("endpoint") not in ("/v1/chat/completions", "/v1/completions") or body.get("completion_window") != "24h":
            return _error(400, "unsupported endpoint or completion window")
        batch_id = f"batch_{len(self.batches) + 1}"
        self._batch_keys[batch_id] = request.headers.get("Authorization", "").removeprefix("Bearer ")
        self.batches[batch_id] = {
            "id": batch_id, "object": "batch", "endpoint": body["endpoint"], "input_file_id": body["input_file_id"],
            "completion_window": "24h", "status": "in_progress", "created_at": int(time.time()),
            "output_file_id": None, "error_file_id": None, "metadata": body.get("metadata"),
            "request_counts": {"total": len(lines), "completed": 0, "failed": 0},
        }
        return web.json_response(self.batches[batch_id])

    async def _list_batches(self, request: web.Request) -> web.Response:
        data = list(reversed(self.batches.values()))
        return web.json_response({"object": "list", "data": data, "has_more": False,
                                  "first_id": data[0]["id"] if data else None, "last_id": data[-1]["id"] if data else None})

    async def _get_batch(self, request: web.Request) -> web.Response:
        batch = self.batches.get(request.match_info["id"])
        return web.json_response(batch) if batch else _error(404, "no such batch")

    async def _cancel_batch(self, request: web.Request) -> web.Response:
        batch = self.batches.get(request.match_info["id"])
        if batch is None:
            return _error(404, "no such batch")
        if batch["status"] == "in_progress":
            self._finish(batch, "cancelled", answered=0)
        return web.json_response(batch)

    def finish_batches(self, status: str = "completed", answered: int | None = None,
                       damage: dict[int, bytes] | None = None) -> int:
        """End every batch still in progress with `status` (`completed`, `expired`, `failed` or
        `cancelled`); with `expired`, the first `answered` lines get answers (default none);
        `damage` puts the given bytes in place of output lines (0-based). Returns how many
        batches it ended."""
        pending = [b for b in self.batches.values() if b["status"] == "in_progress"]
        for batch in pending:
            self._finish(batch, status, answered, damage or {})
        return len(pending)

    def _finish(self, batch: dict, status: str, answered: int | None, damage: dict[int, bytes] | None = None) -> None:
        lines = [json.loads(line) for line in self.files[batch["input_file_id"]]["data"].splitlines()]
        if status == "failed":
            batch.update(status="failed", errors={"object": "list", "data": [{"code": "invalid_request", "message": "scripted failure"}]})
            return
        take = len(lines) if status == "completed" else (answered or 0)
        output, errors = [], []
        chat = batch["endpoint"] == "/v1/chat/completions"
        for number, line in enumerate(lines):
            if number >= take:
                errors.append({"id": f"batch_req_{number}", "custom_id": line["custom_id"], "response": None,
                               "error": {"code": f"batch_{status}", "message": f"this request was not run: batch {status}"}})
                continue
            self.batch_lines += 1
            body = line["body"]
            attempt_key = json.dumps(body, ensure_ascii=False)
            attempt = self._attempts[attempt_key]
            self._attempts[attempt_key] += 1
            try:
                reply = self.responder(body, attempt)
            except Exception as exc:
                self.errors.append(exc)
                reply = Reply(status=500, content=repr(exc))
            if isinstance(reply, str):
                reply = Reply(content=reply)
            key = self._batch_keys.get(batch["id"], "")
            content = f"{reply.content} (your key {key}, {key.upper()})" if reply.echo_key else reply.content
            if reply.status != 200:
                message = f"scripted status {reply.status}" + (content if reply.echo_key else "")
                errors.append({"id": f"batch_req_{number}", "custom_id": line["custom_id"],
                               "response": {"status_code": reply.status, "request_id": f"req_{number}",
                                            "body": {"error": {"message": message, "type": "scripted_error"}}},
                               "error": None})
                continue
            self.bill(body, content, share=0.5)
            output.append({"id": f"batch_req_{number}", "custom_id": line["custom_id"],
                           "response": {"status_code": 200, "request_id": f"req_{number}",
                                        "body": completion_payload(body, content, reply.finish_reason, chat, number)},
                           "error": None})
        for name, rows in (("output_file_id", output), ("error_file_id", errors)):
            if rows:
                file_id = f"file-{len(self.files) + 1}"
                encoded = [json.dumps(row, ensure_ascii=False).encode("utf-8") for row in rows]
                if name == "output_file_id":
                    encoded = [(damage or {}).get(i, line) for i, line in enumerate(encoded)]
                data = b"".join(line + b"\n" for line in encoded)
                self.files[file_id] = {"purpose": "batch_output", "filename": f"{batch['id']}_{name}.jsonl", "data": data}
                batch[name] = file_id
        batch["status"] = status
        batch["request_counts"] = {"total": len(lines), "completed": len(output), "failed": len(errors)}


def completion_payload(body: dict, content: str, finish_reason: str, chat: bool, number: int) -> dict:
    """A chat or text completion body as an OpenAI-compatible server sends it (whitespace tokens)."""
    prompt_tokens = count_tokens(prompt_text(body))
    completion_tokens = count_tokens(content)
    if chat:
        choice = {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": finish_reason}
    else:
        choice = {"index": 0, "text": content, "finish_reason": finish_reason, "logprobs": None}
    return {
        "id": f"cmpl-{number}",
        "object": "chat.completion" if chat else "text_completion",
        "created": int(time.time()),
        "model": body.get("model", "scripted"),
        "choices": [choice],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                  "total_tokens": prompt_tokens + completion_tokens},
    }


def _file_object(file_id: str, entry: dict) -> dict:
    return {"id": file_id, "object": "file", "bytes": len(entry["data"]), "created_at": int(time.time()),
            "filename": entry["filename"], "purpose": entry["purpose"], "status": "processed"}


def _error(status: int, message: str, headers: dict | None = None) -> web.Response:
    body = {"error": {"message": message, "type": "scripted_error", "code": status}}
    return web.json_response(body, status=status, headers=headers)


def echo_responder(body: dict, attempt: int) -> str:
    """Answer every prompt with its own last line: handy for load tests and smoke runs."""
    lines = prompt_text(body).strip().splitlines()
    return f"Echo: {lines[-1] if lines else ''}"

"""`transformers serve` for the embedded model, with generation cancelled when the client goes away.

`transformers serve` stops a *streamed* generation when its client disconnects, but not a plain
one: a request the client gave up on (its timeout passed) kept the CPU busy until it finished, and
the client's retry queued behind it, so on a loaded machine timeouts piled work onto the server
(20 requests once took 732 s, the server still computing abandoned ones 10 minutes after the
client stopped). Two small additions, made here before the server starts, close that:

- an ASGI wrapper that, once a POST's body is read, watches the connection and cancels the
  request's handler when the client disconnects;
- the continuous-batching manager's non-streamed generation, on that cancellation, removes the
  request from the batch (`cancel_request`), as the streamed path already does.

`GET /lema/cancelled` counts the generations cancelled so (for the tests). Run as
`python -m lema_plugin.llm.embedded.serving serve MODEL ...`, the `transformers serve` command
line; `server.embedded_server` does. The patches target the pinned transformers version
(setup.cfg); a version without these parts serves as before, with a warning in the log.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import sys

log = logging.getLogger(__name__)
CANCELLED = {"generations": 0}


class CancelOnDisconnect:
    """ASGI middleware: a POST whose client disconnects before the answer has its handler cancelled."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope.get("method") != "POST":
            return await self.app(scope, receive, send)
        body = []
        while True:  # read the whole body first: after it, the next message can only be the disconnect
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body.append(message)
            if not message.get("more_body"):
                break
        gone = asyncio.Event()

        async def replay():
            if body:
                return body.pop(0)
            await gone.wait()
            return {"type": "http.disconnect"}

        handler = asyncio.ensure_future(self.app(scope, replay, send))
        watcher = asyncio.ensure_future(receive())
        await asyncio.wait({handler, watcher}, return_when=asyncio.FIRST_COMPLETED)
        if not handler.done():  # the client went away first
            gone.set()
            handler.cancel()
        else:
            watcher.cancel()
        await asyncio.gather(watcher, return_exceptions=True)
        with contextlib.suppress(asyncio.CancelledError):
            await handler
        if not handler.cancelled() and handler.exception() is not None:
            raise handler.exception()


def patch() -> bool:
    """Apply both additions to transformers' serving code; False (and a log line) when this
    transformers version lacks the parts they wrap."""
    try:
        from transformers.cli.serving import server, utils
    except ImportError as exc:
        log.warning("serving without cancel-on-disconnect: %s", exc)
        return False
    manager = getattr(utils, "CBGenerateManager", None)
    build = getattr(server, "build_server", None)
    if manager is None or build is None or not hasattr(manager, "generate_non_streaming"):
        log.warning("serving without cancel-on-disconnect: this transformers version lacks the parts it wraps")
        return False
    generate = manager.generate_non_streaming

    async def generate_non_streaming(self, model, processor, inputs, gen_config, request_id):
        try:
            return await generate(self, model, processor, inputs, gen_config, request_id=request_id)
        except asyncio.CancelledError:
            if self._cb is not None:
                self._cb.cancel_request(request_id)
                CANCELLED["generations"] += 1
            raise

    def build_server(*args, **kwargs):
        app = build(*args, **kwargs)
        app.add_api_route("/lema/cancelled", lambda: dict(CANCELLED), methods=["GET"])
        return CancelOnDisconnect(app)

    manager.generate_non_streaming = generate_non_streaming
    server.build_server = build_server
    return True


def main() -> None:
    patch()
    from transformers.cli.transformers import main as transformers_main

    sys.argv[0] = "transformers"
    transformers_main()


if __name__ == "__main__":
    main()

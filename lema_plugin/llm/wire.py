"""What goes on the wire to an OpenAI-compatible server and comes back: the request body, the
cache key of a request, the reading of a completion body and of a Retry-After header.

Plain functions of the request and the bytes, with no client and no `openai` import, so the
asking helper and the Batch API can build the same bodies and keys the client sends."""
from __future__ import annotations

import email.utils
import hashlib
import json
import time

from .types import Completion, Endpoint, Request


class MalformedResponse(ValueError):
    """A 200 answer whose body is not a usable completion (broken JSON, no choices)."""


def request_body(endpoint: Endpoint, request: Request) -> dict:
    """The JSON body for /chat/completions or /completions.

    A prompt-only request to a chat endpoint becomes one user message; messages sent to a
    completion endpoint are a caller bug (there is no template to render them) and raise.
    """
    body: dict = {"model": endpoint.model}
    if endpoint.mode == "chat":
        messages = request.messages if request.messages is not None else (("user", request.prompt or ""),)
        body["messages"] = [{"role": role, "content": content} for role, content in messages]
    elif endpoint.mode == "completion":
        if request.prompt is None:
            raise ValueError(f"endpoint {endpoint.label!r} is in completion mode but the request has no prompt")
        body["prompt"] = request.prompt
    else:
        raise ValueError(f"endpoint {endpoint.label!r}: unknown mode {endpoint.mode!r}")
    body["temperature"] = request.temperature
    body["top_p"] = request.top_p
    body["max_tokens"] = request.max_tokens
    if request.stop:
        body["stop"] = list(request.stop)
    if request.seed is not None:
        body["seed"] = request.seed
    return body


def cache_key(endpoint: Endpoint, request: Request) -> str:
    """`Request.cache_key(model)`, told apart by mode: the same prompt in chat and completion
    mode gets different answers."""
    key = request.cache_key(endpoint.model)
    if endpoint.mode == "chat":
        return key
    return hashlib.sha256(f"{endpoint.mode}:{key}".encode()).hexdigest()


def parse_completion(raw: bytes, chat: bool) -> Completion:
    """Read the first choice of a completion body; raise MalformedResponse if it has none.

    Empty or null content is a valid (empty) answer; finish_reason is kept as sent.
    """
    try:
        payload = json.loads(raw)
        choice = payload["choices"][0]
        if chat:
            text = (choice.get("message") or {}).get("content")
        else:
            text = choice.get("text")
    except (ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
        snippet = raw[:80].decode("utf-8", "replace")
        raise MalformedResponse(f"malformed response body ({type(exc).__name__}): {snippet!r}") from None
    usage = payload.get("usage") or {}
    return Completion(
        text=text if isinstance(text, str) else "",
        finish_reason=choice.get("finish_reason"),
        prompt_tokens=int(usage.get("prompt_tokens") or 0),
        completion_tokens=int(usage.get("completion_tokens") or 0),
    )


def retry_after_seconds(headers) -> float | None:
    """Seconds the server asked us to wait (retry-after-ms, retry-after as seconds or a date)."""
    if headers is None:
        return None
    value = headers.get("retry-after-ms")
    if value:
        try:
            return float(value) / 1000.0
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())

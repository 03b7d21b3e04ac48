"""Plain data types shared by the client, the embedded server and every stage.

An `Endpoint` says where a model lives; a `Request` says what to ask it; an `Ask` is a request a
stage wants answered under a record id; a `Completion` is what came back (or why nothing did). Keeping them free of behaviour lets stages build requests and
store completions without importing the client.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, fields
from typing import Any, Literal

# The endpoint spec grammar on one line (parsed by `llm.endpoints`), as every command's help shows it
SPEC_GRAMMAR = ("[NAME=]MODEL[@URL[,URL2...]][;mode=chat|completion|batch|completion+batch][;key_env=VAR]"
               "[;price=IN/OUT][;concurrency=N][;timeout=S][;rpm=N][;tpm=N]")


@dataclass(frozen=True)
class Endpoint:
    """One model behind one or more OpenAI-compatible base URLs.

    `api_key_env` names the environment variable that holds the key; the key itself is never
    stored here, so an Endpoint can be logged or written to a summary safely.
    """

    model: str
    base_urls: tuple[str, ...]
    name: str | None = None  # a short label, e.g. the generator's name in a summary
    mode: Literal["chat", "completion"] = "chat"
    api_key_env: str | None = None
    price_prompt: float | None = None  # USD per 1M prompt tokens
    price_completion: float | None = None  # USD per 1M completion tokens
    # Per-endpoint limits on top of the client's: a small local server (the embedded model)
    # answers best with few requests at once, and slowly, while a hosted API takes many.
    max_concurrency: int | None = None
    timeout: float | None = None  # seconds per HTTP attempt
    # Paid hosted APIs: send through the OpenAI Batch API (half price, answers within 24 h),
    # and stay under the account's requests / tokens per minute when asking online.
    batch: bool = False
    rpm: int | None = None
    tpm: int | None = None

    @property
    def label(self) -> str:
        return self.name or self.model


@dataclass(frozen=True)
class Request:
    """One sampling request. Exactly one of `messages` (chat) or `prompt` (completion) is set.

    `sample_index` tells apart the k-th sample of the same prompt so that each sample has its
    own cache entry and id, and servers without `n>1` support work the same way.
    """

    messages: tuple[tuple[str, str], ...] | None = None  # ((role, content), ...)
    prompt: str | None = None
    temperature: float = 0.0
    top_p: float = 1.0
    max_tokens: int = 512
    stop: tuple[str, ...] = ()
    seed: int | None = None
    sample_index: int = 0

    def cache_key(self, model: str) -> str:
        """A hash of everything that determines the answer (never the key or the URL)."""
        # Same payload as dataclasses.asdict (tuples become JSON lists) without its deep copy,
        # which cost more than the rest of the key on every request.
        payload = {"model": model, **{f.name: getattr(self, f.name) for f in fields(self)}}
        blob = json.dumps(payload, sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()


@dataclass
class Completion:
    """What one request produced. `error` is set (and `text` empty) when it finally failed."""

    text: str = ""
    finish_reason: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached: bool = False
    error: str | None = None
    extra: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True)
class Ask:
    """One request a stage wants answered: the id its record is stored under, where to ask,
    what to ask, and whatever the stage needs to turn the answer into a record (`owner`).

    `item` names the input several asks serve (a mistake's attempts): the Batch API caps the
    failed submissions per item across all of its asks, not per ask (None: each ask alone)."""

    id: str
    endpoint: Endpoint
    request: Request
    owner: Any = None
    item: str | None = None

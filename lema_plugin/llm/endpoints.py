"""Endpoint specs: one short string per model, as typed on the command line.

Grammar::

    [NAME=]MODEL[@URL[,URL2...]][;mode=chat|completion|batch|completion+batch][;key_env=VAR]
        [;price=IN/OUT][;concurrency=N][;timeout=SECONDS][;rpm=N][;tpm=N]

- ``NAME`` is the label used in records and summaries (default: ``default_name``, else MODEL).
- ``MODEL`` is what the server calls the model. ``embedded`` means the embedded
  SmolLM2-135M-Instruct default, started on demand by `open_endpoints`; ``embedded@URL`` points
  at one already running (``lema serve``). An empty MODEL is refused rather than guessed (a spec
  like ``;;;`` is a typo, not a choice), and so is a MODEL that looks like a URL (a forgotten
  ``MODEL@``, which would otherwise send the OpenAI key to the OpenAI API).
- Several URLs spread the load over several servers that serve the same model.
- Keys (`lema_plugin.keys`): ``key_env=VAR`` sends the key in ``$VAR``, which must be set. A
  MODEL with a URL and no ``key_env`` is a keyless server (vLLM, llama.cpp, the embedded model):
  no key is sent. A MODEL without URL goes to ``$OPENAI_BASE_URL`` if set, else the OpenAI API,
  with the key in ``$OPENAI_API_KEY`` (or the variable named by ``key_env``), which must be set.
  An error never shows a key: a value that looks like one is shown as ``***``.
- ``price`` is USD per million prompt / completion tokens (finite, at least 0): the cost figures,
  the budget (``--max-cost``) and ``--estimate`` use it.
- ``concurrency`` caps this endpoint's requests in flight (below the client's overall limit);
  ``timeout`` is its seconds per request. Both suit slow or rate-limited servers.
- ``mode=batch`` (chat) or ``mode=completion+batch`` sends this endpoint's requests through the
  OpenAI Batch API (`lema_plugin.llm.batch`): half the price, answers within 24 hours.
- ``rpm`` / ``tpm`` cap requests and tokens per minute sent online to this endpoint.

Examples: ``embedded``, ``gpt4=gpt-4o;price=2.5/10``,
``llama=meta-llama/Llama-3.1-8B-Instruct@http://gpu1:8000/v1,http://gpu2:8000/v1``.

An endpoint of the embedded model that is not running yet has no base URL; `open_endpoints`
fills it in once the server is up. Errors are one-line `EndpointError`s that name the spec, so a
CLI can pass them on as they are.
"""
from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import re
from collections.abc import Iterator, Sequence

from lema_plugin.bounds import MAX_CONCURRENCY, MAX_COUNT, MAX_SECONDS
from lema_plugin.errors import EndpointError
from lema_plugin.keys import HIDDEN, looks_like_key, remember
from lema_plugin.llm.embedded import ENDPOINT_NAME, embedded_server, served_model_name
from lema_plugin.llm.types import Endpoint

EMBEDDED = "embedded"
OPENAI_URL = "https://api.openai.com/v1"
OPENAI_KEY_ENV = "OPENAI_API_KEY"
MODES = ("chat", "completion")
OPTIONS = ("mode", "key_env", "price", "concurrency", "timeout", "rpm", "tpm")
# gpu1:8000/v1, localhost:8000, 10.0.0.2:8000 (but not an Ollama-style tag such as llama3:8b)
_HOST_PORT = re.compile(r"^([\w.-]+:\d+/|(localhost|[\d.]+):\d+$)")


def parse_endpoint(spec: str, default_name: str | None = None) -> Endpoint:
    """Turn one endpoint spec into an `Endpoint` (see the module docstring for the grammar)."""

    shown = shown_spec(spec)

    def fail(why: str) -> EndpointError:
        return EndpointError(f"endpoint spec {shown!r}: {why}")

    head, *options = (spec or "").strip().split(";")
    name_model, _, urls = head.partition("@")
    name, eq, model = name_model.partition("=")
    if not eq:
        name, model = "", name_model
    name, model = name.strip(), model.strip()
    if eq and not name:
        raise fail("empty NAME before '='")
    if "@" in head and not urls.strip():
        raise fail("no URL after '@'")

    base_urls = tuple(u.strip() for u in urls.split(",")) if urls.strip() else ()
    settings: dict[str, str] = {}
    for option in options:
        if not option.strip():
            continue
        key, eq, value = option.partition("=")
        key, value = key.strip(), value.strip()
        if not eq or not value:
            raise fail(f"option {_shown_option(option.strip())!r} must look like key=value")
        if key not in OPTIONS:
            raise fail(f"unknown option {key!r} (expected {', '.join(OPTIONS)})")
        if key in settings:
            raise fail(f"option {key!r} given twice")
        settings[key] = value

    mode = settings.get("mode", "chat")
    parts = mode.split("+")
    batch = "batch" in parts
    mode = next((part for part in parts if part != "batch"), "chat")
    if mode not in MODES or len(parts) > 2 or parts.count("batch") > 1 or (len(parts) == 2 and not batch):
        raise fail(f"mode must be chat, completion, batch or completion+batch, not {settings['mode']!r}")

    price_prompt = price_completion = None
    if "price" in settings:
        parts = settings["price"].split("/")
        try:
            price_prompt, price_completion = (float(p) for p in parts)
        except ValueError:
            raise fail(f"price must be IN/OUT in USD per 1M tokens, e.g. 2.5/10, not {settings['price']!r}") from None

    try:
        concurrency = int(settings["concurrency"]) if "concurrency" in settings else None
        timeout = float(settings["timeout"]) if "timeout" in settings else None
        rpm = int(settings["rpm"]) if "rpm" in settings else None
        tpm = int(settings["tpm"]) if "tpm" in settings else None
    except ValueError:
        raise fail("concurrency, rpm and tpm must be whole numbers and timeout a number of seconds") from None
    if any(v is not None and v <= 0 for v in (concurrency, timeout, rpm, tpm)):
        raise fail("concurrency, timeout, rpm and tpm must be positive")
    if (concurrency or 0) > MAX_CONCURRENCY or max(rpm or 0, tpm or 0) > MAX_COUNT or \
            (timeout is not None and not (math.isfinite(timeout) and timeout <= MAX_SECONDS)):
        raise fail(f"concurrency at most {MAX_CONCURRENCY:,}, rpm and tpm at most {MAX_COUNT:,}, timeout at most "
                   f"{MAX_SECONDS:g} s")

    return make_endpoint(
        model, base_urls, name=name or default_name or None, mode=mode, api_key_env=settings.get("key_env"),
        price_prompt=price_prompt, price_completion=price_completion, max_concurrency=concurrency, timeout=timeout,
        batch=batch, rpm=rpm, tpm=tpm, where=f"endpoint spec {shown!r}",
    )


def make_endpoint(
    model: str,
    base_urls: Sequence[str] = (),
    *,
    name: str | None = None,
    mode: str = "chat",
    api_key_env: str | None = None,
    price_prompt: float | None = None,
    price_completion: float | None = None,
    max_concurrency: int | None = None,
    timeout: float | None = None,
    batch: bool = False,
    rpm: int | None = None,
    tpm: int | None = None,
    where: str = "endpoint",
) -> Endpoint:
    """An `Endpoint` from its parts, with the defaults of the module docstring (the embedded
    model; `$OPENAI_BASE_URL` or the OpenAI API with `$OPENAI_API_KEY` when there is no URL).

    Specs and recipes both come here, field by field: a value is never written back to spec
    syntax and parsed again, so a `;` inside a recipe's URL stays part of that URL.
    """
    model = (model or "").strip()
    if not model:
        raise EndpointError(f"{where}: no MODEL (write {EMBEDDED!r} for the embedded model)")
    if "://" in model or _HOST_PORT.match(model):
        raise EndpointError(f"{where}: MODEL looks like a URL; write MODEL@URL")
    base_urls = tuple(u.strip().rstrip("/") for u in base_urls)
    for url in base_urls:
        if not url.startswith(("http://", "https://")) or len(url.split("://", 1)[1]) == 0:
            raise EndpointError(f"{where}: URL {url!r} must start with http:// or https://")
    if mode not in MODES:
        raise EndpointError(f"{where}: mode must be chat or completion, not {mode!r}")
    if api_key_env is not None and looks_like_key(api_key_env):
        raise EndpointError(f"{where}: key_env holds what looks like an API key (not shown), not the name of the "
                            "variable that holds it: export KEY_VAR=... and write key_env=KEY_VAR")
    if api_key_env is not None and not _variable_name(api_key_env):
        raise EndpointError(f"{where}: key_env is not an environment variable name (letters, digits and _; "
                            "the value is not shown, in case it is a key)")
    for price in (price_prompt, price_completion):
        if price is not None and not (math.isfinite(price) and price >= 0):
            raise EndpointError(f"{where}: price must be two finite numbers of at least 0 (USD per 1M tokens), "
                                f"not {price!r}")
    if batch and model == EMBEDDED:
        raise EndpointError(f"{where}: the embedded model has no Batch API; drop batch mode")
    if model == EMBEDDED:
        name = name or ENDPOINT_NAME
        # with URLs: a `lema serve` already running, which knows the model by its own name
        model = served_model_name() if base_urls else EMBEDDED
    elif not base_urls:
        base_urls = (os.environ.get("OPENAI_BASE_URL", "").strip().rstrip("/") or OPENAI_URL,)
        api_key_env = api_key_env or OPENAI_KEY_ENV
    return Endpoint(
        model=model,
        base_urls=base_urls,
        name=name or None,
        mode=mode,
        api_key_env=api_key_env,
        price_prompt=price_prompt,
        price_completion=price_completion,
        max_concurrency=max_concurrency,
        timeout=timeout,
        batch=batch,
        rpm=rpm,
        tpm=tpm,
    )


_SECRET_WORDS = ("key", "token", "secret", "password", "auth", "bearer")


def shown_spec(spec: str) -> str:
    """`spec` as an error may show it: the value of an option named like a secret (a stray
    `;api_key=...`), a value that looks like a pasted key, or a key_env that is no variable name,
    becomes `***`."""
    head, *options = (spec or "").split(";")
    return ";".join([head, *(_shown_option(option) for option in options)])


def _shown_option(option: str) -> str:
    key, eq, value = option.partition("=")
    if not eq:
        return HIDDEN if looks_like_key(option.strip()) or len(option.strip()) >= 16 else option
    name, value = key.strip().lower(), value.strip()
    secret = name != "key_env" and any(word in name for word in _SECRET_WORDS)
    if not secret and not looks_like_key(value) and (name != "key_env" or _variable_name(value)):
        return option
    remember(value)  # scrubbed wherever it might turn up again
    return f"{key}={HIDDEN}"


def _variable_name(name: str) -> bool:
    return bool(name) and name.replace("_", "a").isalnum() and name.isascii() and not name[0].isdigit()


def needs_embedded(endpoint: Endpoint) -> bool:
    """True for an endpoint of the embedded model that still waits for its server."""
    return endpoint.model == EMBEDDED and not endpoint.base_urls


@contextlib.contextmanager
def open_endpoints(specs: Sequence[str | Endpoint], **server_options) -> Iterator[list[Endpoint]]:
    """Parse `specs` and make every endpoint reachable for the duration of the block.

    The embedded server is started at most once, only if some spec asks for it, and stopped on
    exit (also on error or Ctrl-C). `server_options` go to `embedded_server`.
    """
    endpoints = [s if isinstance(s, Endpoint) else parse_endpoint(s) for s in specs]
    if not any(needs_embedded(e) for e in endpoints):
        yield endpoints
        return

    with embedded_server(**server_options) as served:
        yield [
            dataclasses.replace(
                e,
                model=served.model,
                base_urls=served.base_urls,
                name=e.name or served.name,
                max_concurrency=e.max_concurrency or served.max_concurrency,
                timeout=e.timeout or served.timeout,
            )
            if needs_embedded(e)
            else e
            for e in endpoints
        ]

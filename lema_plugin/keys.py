"""API keys: read from the environment in one place, and scrubbed from every text that is written.

Every part that sends a request (the client, the Batch API, the endpoint check) asks `key_for`
for its endpoint's key; nothing else reads a key. The rule for which key an endpoint sends:

- `key_env=VAR` (a spec's `;key_env=VAR`, a recipe's `key_env:`): VAR must be set, else the
  request is refused with one line naming VAR (`MissingKey`), never sent with a placeholder;
- a URL and no `key_env`: a keyless server (vLLM, llama.cpp, the embedded model): no key is sent
  (the `openai` package needs a string, so it gets "EMPTY", which such servers ignore);
- no URL: the OpenAI API (or `$OPENAI_BASE_URL`) with `$OPENAI_API_KEY`, which must then be set
  (`llm.endpoints` fills in `key_env=OPENAI_API_KEY`).

Every key value read is remembered, and `scrub` replaces each of them, in any letter case, by
`***`. The store (record lines, atomic writes, damaged lines set aside), the response cache, the
Batch API ledger, the client's replies and failure reasons, error messages and log lines all pass
their text through it, so a server, a proxy or a Batch API error file that echoes the key cannot
put it on disk or on screen. Values shorter than `MIN_SECRET` are not treated as secrets
(scrubbing "abc" would mangle every text that holds those letters).
"""
from __future__ import annotations

import logging
import os
import re

from .errors import EndpointError

KEYLESS = "EMPTY"  # what the openai package is given for a server that takes no key
MIN_SECRET = 8
HIDDEN = "***"
# How API keys of common providers begin: a `key_env` value like these is a pasted key
_KEY_PREFIXES = ("sk-", "sk_", "gsk_", "xai-", "hf_", "pk-", "pk_", "rk_", "AIza", "nvapi-", "pplx-")

_secrets: set[str] = set()
_pattern: re.Pattern | None = None
_bytes_pattern: re.Pattern | None = None


class MissingKey(EndpointError):
    """An endpoint names a key variable (`key_env`) that is not set."""


def remember(value: str | None) -> None:
    """Treat `value` as a secret from now on (every key read is; a spec's stray `api_key=` too)."""
    global _pattern, _bytes_pattern
    if not value or len(value) < MIN_SECRET or value == KEYLESS or value in _secrets:
        return
    _secrets.add(value)
    alternatives = "|".join(re.escape(s) for s in sorted(_secrets, key=len, reverse=True))
    _pattern = re.compile(alternatives, re.IGNORECASE)
    _bytes_pattern = re.compile(alternatives.encode("utf-8"), re.IGNORECASE)


def scrub(text: str) -> str:
    """`text` with every known key replaced by `***`, matched in any letter case."""
    if _pattern is None or not text:
        return text
    return _pattern.sub(HIDDEN, text)


def scrub_bytes(data: bytes) -> bytes:
    """`scrub` for raw bytes (a damaged line set aside as it was)."""
    if _bytes_pattern is None or not data:
        return data
    return _bytes_pattern.sub(HIDDEN.encode(), data)


def key_for(endpoint) -> str:
    """The key to send to `endpoint` (see the module docstring); raises MissingKey when its
    `key_env` variable is not set."""
    name = getattr(endpoint, "api_key_env", None)
    if not name:
        return KEYLESS
    value = os.environ.get(name, "").strip()
    if not value:
        raise MissingKey(missing_line([endpoint]))
    remember(value)
    return value


def missing(endpoints) -> list:
    """The endpoints whose `key_env` variable is not set, once each."""
    seen, out = set(), []
    for endpoint in endpoints:
        name = getattr(endpoint, "api_key_env", None)
        if name and not os.environ.get(name, "").strip() and endpoint not in seen:
            seen.add(endpoint)
            out.append(endpoint)
    return out


def missing_line(endpoints, what: str = "") -> str:
    """One line naming every unset key variable and who needs it."""
    needs: dict[str, list[str]] = {}
    for endpoint in endpoints:
        needs.setdefault(endpoint.api_key_env, []).append(endpoint.label)
    names = "; ".join(f"${name} (for {', '.join(dict.fromkeys(labels))})" for name, labels in needs.items())
    return (f"{what}API key variable{'s' if len(needs) > 1 else ''} not set: {names}. Export "
            f"{'them' if len(needs) > 1 else 'it'}; a server that takes no key needs a URL and no key_env")


def require(endpoints, what: str = "") -> None:
    """Refuse, in one line naming every unset variable at once, endpoints whose key is missing."""
    lacking = missing(endpoints)
    if lacking:
        raise MissingKey(missing_line(lacking, what))
    for endpoint in endpoints:  # known from now on, so scrubbed even before its first request
        if getattr(endpoint, "api_key_env", None):
            remember(os.environ.get(endpoint.api_key_env, "").strip())


def looks_like_key(value: str) -> bool:
    """Whether `value` (given where a variable name belongs) looks like a pasted API key: a known
    key prefix, or 24+ characters mixing lower case with digits (variable names are upper case)."""
    if len(value) >= 16 and value.startswith(_KEY_PREFIXES):
        return True
    return (len(value) >= 24 and any(c.islower() for c in value) and sum(c.isdigit() for c in value) >= 3)


class ScrubFilter(logging.Filter):
    """A log filter that scrubs every message (installed on the CLI's log handlers)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if _pattern is not None:
            message = record.getMessage()
            clean = scrub(message)
            if clean != message:
                record.msg, record.args = clean, None
        return True


def guard_logging() -> None:
    """Scrub every log line the root logger's handlers print."""
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, ScrubFilter) for f in handler.filters):
            handler.addFilter(ScrubFilter())

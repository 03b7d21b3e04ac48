"""What a request may cost: token counts, prices, the budget and the cost preview.

Two prompt-token figures are kept apart on purpose:

- the **bound**, used to reserve money before a request is sent and for the dollars `--estimate`
  promises: the prompt's UTF-8 bytes plus a few tokens per chat message for the template. Every
  byte-level BPE tokenizer (GPT-4's cl100k/o200k, LLaMA's, SmolLM2's) spends at least one byte
  per token, so no such tokenizer counts more tokens than that. Completions are bounded by the
  request's `max_tokens`.
- the **likely** count, shown next to it: the text counted with the SmolLM2 tokenizer when the
  embedded model is on disk (tiktoken's encodings cannot be fetched offline), else bytes / 4,
  the usual average for English and math text. It is an expectation, not a promise.

Prices are the endpoint's USD per million tokens (`;price=IN/OUT`); the Batch API bills half.
An endpoint without a price counts as free (a local vLLM server), so a budget never stops it.
"""
from __future__ import annotations

import functools
import math
import threading
from dataclasses import dataclass, field

from ..errors import EXIT_BUDGET, ConfigError, LemaError
from .types import Endpoint, Request

BATCH_DISCOUNT = 0.5  # the OpenAI Batch API bills half the online price
MESSAGE_OVERHEAD = 4  # template tokens around one chat message (role, separators), at most
REPLY_PRIMING = 3  # tokens that open the assistant's reply


def prompt_texts(endpoint: Endpoint, request: Request) -> list[str]:
    """The texts a request sends: one per chat message, or the one completion prompt."""
    if endpoint.mode == "chat":
        messages = request.messages if request.messages is not None else (("user", request.prompt or ""),)
        return [role + "\n" + content for role, content in messages]
    return [request.prompt or ""]


def prompt_token_bound(endpoint: Endpoint, request: Request) -> int:
    """At most this many prompt tokens, for any byte-level BPE tokenizer (see the module doc)."""
    texts = prompt_texts(endpoint, request)
    overhead = MESSAGE_OVERHEAD * len(texts) + REPLY_PRIMING if endpoint.mode == "chat" else 1
    return sum(len(text.encode("utf-8")) for text in texts) + overhead


@functools.lru_cache(maxsize=1)
def _tokenizer():
    """The embedded model's tokenizer when it is on disk (no download, no transformers import)."""
    try:
        from tokenizers import Tokenizer

        from .embedded import model_dir

        path = model_dir() / "tokenizer.json"
        return Tokenizer.from_file(str(path)) if path.exists() else None
    except Exception:  # no tokenizers package, no model folder: fall back to bytes / 4
        return None


_tokenizer_lock = threading.Lock()


@functools.lru_cache(maxsize=1 << 16)
def _paragraph_tokens(paragraph: str) -> int:
    with _tokenizer_lock:
        return len(_tokenizer().encode(paragraph, add_special_tokens=False).ids)


def likely_prompt_tokens(endpoint: Endpoint, request: Request) -> int:
    """The expected prompt tokens (see the module doc): a tokenizer count where one is at hand.

    Counted paragraph by paragraph (plus one token per paragraph break) with the counts kept:
    a paper-scale preview has hundreds of thousands of prompts that share their few-shot
    exemplars and questions, and the count is an expectation, not the bound."""
    texts = prompt_texts(endpoint, request)
    overhead = MESSAGE_OVERHEAD * len(texts) + REPLY_PRIMING if endpoint.mode == "chat" else 1
    if _tokenizer() is None:
        return sum(len(text.encode("utf-8")) for text in texts) // 4 + overhead
    paragraphs = [p for text in texts for p in text.split("\n\n")]
    return sum(_paragraph_tokens(p) for p in paragraphs) + len(paragraphs) - len(texts) + overhead


def tokenizer_name() -> str:
    return "SmolLM2 tokenizer" if _tokenizer() is not None else "UTF-8 bytes / 4"


def dollars(endpoint: Endpoint, prompt_tokens: int, completion_tokens: int, batch: bool = False) -> float | None:
    """USD for these tokens at the endpoint's prices (None when it has none)."""
    if endpoint.price_prompt is None and endpoint.price_completion is None:
        return None
    cost = (prompt_tokens * (endpoint.price_prompt or 0.0) + completion_tokens * (endpoint.price_completion or 0.0)) / 1e6
    return cost * BATCH_DISCOUNT if batch else cost


def worst_case(endpoint: Endpoint, request: Request, batch: bool | None = None) -> float:
    """The most one request can cost: bounded prompt tokens and `max_tokens` of completion."""
    batch = endpoint.batch if batch is None else batch
    return dollars(endpoint, prompt_token_bound(endpoint, request), request.max_tokens, batch) or 0.0


class BudgetStop(LemaError):
    """The next request would cross `--max-cost`: the stage stops cleanly, with what was
    answered stored (exit status 3; a later run with a larger budget continues)."""

    exit_code = EXIT_BUDGET


class Budget:
    """The run folder's budget: `cap` USD at most over everything its spend ledger (`spend`)
    holds, this command and every earlier one (`cap` None: no cap, spending still recorded).

    Money is reserved (the worst case) before each HTTP attempt or batch is sent, in the ledger,
    and settled to the real cost when the answer is in (`reserve` / `settle`). Once a reservation
    is refused the budget stays closed, so a stage stops at one place instead of skipping the
    large requests and sending the small ones that still fit.
    """

    def __init__(self, cap: float | None = None, spend=None):
        from .spend import SpendLedger

        if cap is not None and not (math.isfinite(cap) and cap >= 0):
            raise ConfigError(f"--max-cost must be a number of USD of at least 0, not {cap!r}")
        self.cap = None if cap is None else float(cap)
        self.spend = spend if spend is not None else SpendLedger()
        self.before = self.spend.spent  # what earlier commands spent in this folder
        self.closed = False

    @property
    def spent(self) -> float:
        """USD spent or reserved in the folder, earlier commands included."""
        return self.spend.spent

    @property
    def left(self) -> float | None:
        return None if self.cap is None else max(0.0, self.cap - self.spent)

    def fits(self, amount: float) -> bool:
        """Whether `amount` more fits under the cap now (the budget is not changed)."""
        if self.closed:
            return False
        return amount <= 0 or self.cap is None or self.spent + amount <= self.cap + 1e-12

    def allows(self, amount: float) -> bool:
        """Whether `amount` more fits under the cap (refusing closes the budget)."""
        if not self.fits(amount):
            self.closed = True
            return False
        return True

    def reserve(self, amount: float) -> str | None:
        """Reserve `amount` USD in the ledger before sending; the token to settle, "" for a free
        request, None when it does not fit (nothing may be sent)."""
        if not self.allows(amount):
            return None
        return self.spend.reserve(amount) if amount > 0 else ""

    def settle(self, token: str | None, actual: float | None) -> None:
        """What the reserved attempt or batch really cost (None: nothing)."""
        if token:
            self.spend.settle(token, actual or 0.0)

    def close(self) -> None:
        self.spend.close()

    def stop_line(self) -> str:
        cap = f"${self.cap:.2f}" if self.cap is not None else "no cap"
        return (f"budget: stopped before this run folder's --max-cost {cap} would be crossed: "
                f"${self.spent:.4f} spent or reserved here so far (this command ${self.spent - self.before:.4f}), "
                f"${self.left or 0.0:.4f} left; nothing paid for is lost: run again with a larger --max-cost to continue")


@dataclass
class Line:
    requests: int = 0
    prompt_bound: int = 0
    prompt_likely: int = 0
    completion_max: int = 0
    priced: bool = False
    online: float = 0.0  # USD, bound
    batch: float = 0.0  # USD, bound
    online_likely: float = 0.0  # USD: likely prompt tokens, completions at max_tokens
    batch_mode: bool = False


@dataclass
class Estimate:
    """The cost preview: what the requests not answered yet would cost, per endpoint label."""

    lines: dict[str, Line] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def add(self, endpoint: Endpoint, request: Request, count: int = 1) -> None:
        line = self.lines.setdefault(endpoint.label, Line())
        bound, likely = prompt_token_bound(endpoint, request), likely_prompt_tokens(endpoint, request)
        line.requests += count
        line.prompt_bound += bound * count
        line.prompt_likely += likely * count
        line.completion_max += request.max_tokens * count
        line.batch_mode = line.batch_mode or endpoint.batch
        cost = dollars(endpoint, bound, request.max_tokens)
        if cost is not None:
            line.priced = True
            line.online += cost * count
            line.batch += cost * BATCH_DISCOUNT * count
            line.online_likely += (dollars(endpoint, likely, request.max_tokens) or 0.0) * count

    def total(self) -> Line:
        total = Line()
        for line in self.lines.values():
            for name in ("requests", "prompt_bound", "prompt_likely", "completion_max", "online", "batch", "online_likely"):
                setattr(total, name, getattr(total, name) + getattr(line, name))
            total.priced = total.priced or line.priced
        return total

    def table(self) -> str:
        from ..tables import format_table

        def money(value: float, priced: bool) -> str:
            return f"${value:,.2f}" if priced else "-"

        rows = [
            (label, f"{l.requests:,}", f"{l.prompt_likely:,}", f"{l.prompt_bound:,}", f"{l.completion_max:,}",
             money(l.online_likely, l.priced), money(l.online, l.priced),
             money(l.online_likely * BATCH_DISCOUNT, l.priced), money(l.batch, l.priced))
            for label, l in [*self.lines.items(), ("total", self.total())]
        ]
        header = ("endpoint", "requests", "prompt tokens (likely)", "prompt tokens (bound)", "completion tokens (max)",
                  "USD online (likely)", "USD online (bound)", "USD batch (likely)", "USD batch (bound)")
        text = format_table(header, rows)
        text += (f"\nBound: prompt = UTF-8 bytes + {MESSAGE_OVERHEAD} per message (no byte-level BPE tokenizer "
                 f"counts more), completion = max_tokens; the budget reserves this. Likely: prompt tokens by the "
                 f"{tokenizer_name()}, completion still max_tokens. Nothing was sent; answers already stored "
                 "or cached are not counted.")
        for note in self.notes:
            text += f"\n{note}"
        return text

    def to_dict(self) -> dict:
        from dataclasses import asdict

        return {"by_endpoint": {k: asdict(v) for k, v in self.lines.items()}, "total": asdict(self.total()),
                "notes": self.notes}

"""Per-endpoint usage accounting: what was asked, what failed, what it cost.

Stages end with a summary line per model; keeping the counters here lets every stage print the
same numbers without adding them up itself. Tokens and cost count only fresh answers: a cache
hit costs nothing on this run.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass
class Usage:
    requests: int = 0  # completions handed back (fresh, cached and failed)
    cached: int = 0  # answered from the on-disk cache
    failures: int = 0  # still failing after all retries
    retries: int = 0  # extra HTTP attempts after a retriable fault
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float | None = None  # USD, only when the endpoint has prices

    def __getitem__(self, name: str):
        """Dict-style access (`usage["prompt_tokens"]`) for callers that treat it as a record."""
        return getattr(self, name)

    def as_dict(self) -> dict:
        return asdict(self)

    def add_tokens(self, prompt: int, completion: int, price_prompt: float | None, price_completion: float | None) -> None:
        self.prompt_tokens += prompt
        self.completion_tokens += completion
        if price_prompt is not None or price_completion is not None:
            dollars = (prompt * (price_prompt or 0.0) + completion * (price_completion or 0.0)) / 1e6
            self.cost = (self.cost or 0.0) + dollars


def usage_line(label: str, usage: Usage) -> str:
    """One human line, e.g. `gpt-4o: 120 requests (20 cached, 1 failed, 3 retries), 35,000 + 12,000 tokens, $0.4200`."""
    notes = [f"{usage.cached} cached", f"{usage.failures} failed"]
    if usage.retries:
        notes.append(f"{usage.retries} retries")
    line = (
        f"{label}: {usage.requests} requests ({', '.join(notes)}), "
        f"{usage.prompt_tokens:,} prompt + {usage.completion_tokens:,} completion tokens"
    )
    if usage.cost is not None:
        line += f", ${usage.cost:.4f}"
    return line

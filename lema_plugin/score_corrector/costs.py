"""Dollars: per split of a score run, and per verified correction of a run folder.

A folder's usage ledger (`usage.jsonl`: the client's own counts over every run) is the only
source of dollars. Where a finer breakdown is wanted (a score run's splits; a run's MATH
levels), the ledger's dollars are shared out in proportion to each part's tokens as its stored
replies record them, prompt and completion tokens weighted by the endpoint's prices (counted
alike when no price is known), so the parts add up to what was paid.

`run_cost` reads a run folder you made with a corrector (`lema run`, or `lema correct` and
`lema build`) through the report's reader: the dollars its correction stage paid, per verified
correction and per exported correction, overall and by MATH level.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from lema_plugin.errors import ConfigError
from lema_plugin.llm.types import Endpoint

ALL = "all"


def weight(prompt_tokens: int, completion_tokens: int, endpoint: Endpoint | None) -> float:
    """What a reply's tokens cost relative to another's of the same endpoint."""
    if endpoint is None or (endpoint.price_prompt is None and endpoint.price_completion is None):
        return float(prompt_tokens + completion_tokens)
    return prompt_tokens * (endpoint.price_prompt or 0.0) + completion_tokens * (endpoint.price_completion or 0.0)


def share(total: float | None, weights: dict[str, float]) -> dict[str, float | None]:
    """`total` shared out in proportion to `weights` (None stays None; no weight at all: equal parts)."""
    if total is None:
        return dict.fromkeys(weights)
    whole = sum(weights.values())
    if not whole:
        return {key: total / len(weights) for key in weights} if weights else {}
    return {key: total * w / whole for key, w in weights.items()}


@dataclass
class LevelCost:
    replies: int = 0
    verified: int = 0
    exported: int | None = None  # None: the folder holds no export
    dollars: float | None = None

    @property
    def per_verified(self) -> float | None:
        return self.dollars / self.verified if self.dollars is not None and self.verified else None

    @property
    def per_exported(self) -> float | None:
        return self.dollars / self.exported if self.dollars is not None and self.exported else None

    def to_dict(self) -> dict:
        return {**asdict(self), "per_verified": self.per_verified, "per_exported": self.per_exported}


@dataclass
class RunCost:
    """What a run folder's corrections cost: overall (`levels["all"]`) and by MATH level."""

    folder: str
    corrector: str
    mistakes: int = 0
    levels: dict[str, LevelCost] = field(default_factory=dict)

    @property
    def total(self) -> LevelCost:
        return self.levels[ALL]

    def to_dict(self) -> dict:
        return {"folder": self.folder, "corrector": self.corrector, "mistakes": self.mistakes,
                "levels": {key: level.to_dict() for key, level in self.levels.items()}}


def run_cost(folder: str | Path, endpoints: dict[str, Endpoint]) -> RunCost:
    """The correction cost of `folder`; `endpoints` (label -> endpoint) give the prices that weigh
    its replies' tokens when its corrector is one of them."""
    from lema_plugin.report.gather import read_run

    data = read_run(folder)
    replies = list(data.replies.values())
    if not replies:
        raise ConfigError(f"{folder}: no correction replies (corrections.jsonl, rejected.jsonl) to cost")
    labels = sorted({str(r.get("corrector") or "?") for r in replies})
    endpoint = endpoints.get(labels[0]) if len(labels) == 1 else None
    paid = [counts.get("cost") for (origin, stage), counts in data.usage.items() if stage == "correct"]
    dollars = sum(c for c in paid if c is not None) if any(c is not None for c in paid) else None
    exported_ids = set().union(*data.exported.values()) if data.exported else None
    cost = RunCost(str(folder), ", ".join(labels), mistakes=len({r.get("path_id") for r in replies}))
    weights: dict[str, float] = {}
    for reply in replies:
        keys = [ALL] + ([f"level {reply['level']}"] if reply.get("level") is not None else [])
        usage = reply.get("usage") or {}
        for key in keys:
            level = cost.levels.setdefault(key, LevelCost(exported=None if exported_ids is None else 0))
            level.replies += 1
            if reply.get("correct"):
                level.verified += 1
                if exported_ids is not None and reply["id"] in exported_ids:
                    level.exported += 1
            weights[key] = weights.get(key, 0.0) + weight(int(usage.get("prompt_tokens") or 0),
                                                          int(usage.get("completion_tokens") or 0), endpoint)
    levels_only = {k: w for k, w in weights.items() if k != ALL}
    cost.levels[ALL].dollars = dollars
    for key, value in share(dollars, levels_only).items():
        cost.levels[key].dollars = value
    cost.levels = {ALL: cost.levels[ALL], **dict(sorted((k, v) for k, v in cost.levels.items() if k != ALL))}
    return cost

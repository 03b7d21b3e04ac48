"""The closing table of `lema run`: what each stage produced, its time, tokens and dollars.

Rows are added by the run as stages finish; `table()` is what the terminal shows after "LeMa run
summary", `to_dict()` what `run_summary.json` keeps (the report reads it back).
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class RunReport:
    """What the run produced, stage by stage, for the closing table and `run_summary.json`."""

    out: str
    rows: list[tuple[str, str]] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    next_commands: list[str] = field(default_factory=list)
    tokens: dict[str, int] = field(default_factory=dict)  # per data stage, as the client counted them
    costs: dict[str, float] = field(default_factory=dict)  # USD per data stage, from the endpoints' prices
    usage: dict = field(default_factory=dict)  # the client's totals over the whole run
    html: str | None = None  # the HTML report, written last
    by_endpoint: dict = field(default_factory=dict)  # the client's counts per endpoint over the run
    estimate: object = None  # the cost preview (`lema run --estimate`), when that is all that ran
    alerts: list[str] = field(default_factory=list)  # what the reader must see first ("0 verified corrections: ...")

    def add(self, label: str, value: object) -> None:
        self.rows.append((label, str(value)))

    def table(self) -> str:
        """The alerts first, then a row per figure."""
        rows = list(self.rows)
        if self.timings:
            rows.append(("time", ", ".join(f"{stage} {seconds:.0f}s" for stage, seconds in self.timings.items())))
        width = max(len(label) for label, _ in rows) if rows else 0
        return "\n".join([*self.alerts, *(f"{label.ljust(width)}  {value}" for label, value in rows)])

    def to_dict(self) -> dict:
        return {"out": self.out, "alerts": self.alerts, "rows": dict(self.rows), "timings": self.timings, "tokens": self.tokens,
                "costs": self.costs, "usage": self.usage, "by_endpoint": self.by_endpoint,
                "next_commands": self.next_commands}

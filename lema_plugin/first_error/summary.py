"""What a first-error check found: how often the corrector's named step is confirmed, overall,
by the generator that wrote the wrong path, and by MATH level.

Computed from the check records (so a resumed run reports the whole run); tokens and requests
come from the client.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

from lema_plugin.summaries import request_lines
from lema_plugin.tables import format_table

REASONS = ("confirmed", "before_fails", "step_recovers", "incomplete")


@dataclass
class Group:
    checked: int = 0
    confirmed: int = 0

    @property
    def rate(self) -> float | None:
        return self.confirmed / self.checked if self.checked else None


@dataclass
class FirstErrorSummary:
    generator: str  # the model that wrote the continuations
    settings: dict
    corrections: int = 0  # usable corrections given to the check
    skipped: dict[str, int] = field(default_factory=dict)  # corrections that could not be checked, by reason
    checked: int = 0  # corrections with every continuation in
    confirmed: int = 0
    reasons: dict[str, int] = field(default_factory=lambda: dict.fromkeys(REASONS, 0))
    mean_rate_before: float | None = None  # success rate from the steps before the named step
    mean_rate_including: float | None = None  # ... and from the steps including it
    by_generator: dict[str, Group] = field(default_factory=dict)  # the model that made the mistake
    by_level: dict[str, Group] = field(default_factory=dict)  # MATH only
    requests: int = 0  # new requests this run (the rest came from the run store)
    failed_requests: int = 0  # of those, still failing after the client's retries: asked again next run
    failure_example: str | None = None
    usage: dict = field(default_factory=dict)

    @property
    def confirmation_rate(self) -> float | None:
        return self.confirmed / self.checked if self.checked else None

    @property
    def produced(self) -> int:
        return self.checked

    @property
    def failed(self) -> int:
        return self.failed_requests

    def headline(self) -> list[tuple[str, str]]:
        incomplete = self.reasons.get("incomplete", 0)
        return [("first error confirmed", f"{self.confirmed}/{self.checked} ({_pct(self.confirmation_rate)})"
                 + (f", {incomplete} incomplete" if incomplete else ""))]

    def to_dict(self) -> dict:
        data = asdict(self)
        data["confirmation_rate"] = self.confirmation_rate
        for group in ("by_generator", "by_level"):
            for key, value in getattr(self, group).items():
                data[group][key]["rate"] = value.rate
        return data

    def lines(self) -> list[str]:
        s = self.settings
        out = [
            f"continuations by {self.generator}: {s['samples']} per prefix; confirmed when the steps before the "
            f"named step reach the answer >= {s['min_before']:.0%} and the steps including it <= {s['max_after']:.0%}",
            f"confirmation rate: {self.confirmed}/{self.checked} ({_pct(self.confirmation_rate)})",
            "checked: " + ", ".join(f"{reason.replace('_', ' ')} {n}" for reason, n in self.reasons.items()),
            f"mean success rate: before the step {_pct(self.mean_rate_before)}, including it {_pct(self.mean_rate_including)}",
        ]
        skipped = {k: v for k, v in self.skipped.items() if v}
        if skipped:
            out.append("skipped: " + ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in skipped.items()))
        out += request_lines(self)
        for title, group in (("generator", self.by_generator), ("MATH level", self.by_level)):
            if group:
                rows = [(key, g.checked, g.confirmed, _pct(g.rate)) for key, g in group.items()]
                out += ["", format_table((title, "checked", "confirmed", "rate"), rows)]
        return out


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def summarize(checks: list[dict], generator: str, settings: dict, skipped: dict[str, int]) -> FirstErrorSummary:
    summary = FirstErrorSummary(generator=generator, settings=settings, corrections=len(checks), skipped=dict(skipped))
    before, including = [], []
    for check in checks:
        summary.reasons[check["reason"]] += 1
        if check["confirmed"] is None:
            continue
        summary.checked += 1
        summary.confirmed += check["confirmed"]
        before.append(check["before"]["rate"])
        including.append(check["including"]["rate"])
        groups = [(summary.by_generator, check["mistake_model"])]
        if check.get("level") is not None:
            groups.append((summary.by_level, str(check["level"])))
        for group, key in groups:
            entry = group.setdefault(key, Group())
            entry.checked += 1
            entry.confirmed += check["confirmed"]
    summary.mean_rate_before = sum(before) / len(before) if before else None
    summary.mean_rate_including = sum(including) / len(including) if including else None
    summary.by_generator = dict(sorted(summary.by_generator.items()))
    summary.by_level = dict(sorted(summary.by_level.items()))
    return summary

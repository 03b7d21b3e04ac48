"""What a correction run achieved: success rates by generator, MATH level and subject; tokens.

The paper reads correction success by difficulty, so the summary counts, per group, the
mistakes that got at least one verified correction. It is computed from the records on disk,
so a resumed run reports the whole run, not only its last part.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

from lema_plugin.llm.types import Endpoint
from lema_plugin.problems import grader_dataset

REASONS = ("unparseable", "bad_step", "wrong_answer", "request_failed")


@dataclass
class Rate:
    mistakes: int = 0
    corrected: int = 0

    @property
    def rate(self) -> float | None:
        return self.corrected / self.mistakes if self.mistakes else None


@dataclass
class CorrectSummary:
    corrector: str
    mistakes: int = 0
    corrected_mistakes: int = 0  # mistakes with at least one verified correction
    attempts: int = 0  # corrector replies judged (verified + rejected)
    verified: int = 0
    judge_decided: int = 0  # corrected answers the rules could not grade, settled by the judge
    rejected: dict[str, int] = field(default_factory=lambda: dict.fromkeys(REASONS, 0))
    by_model: dict[str, Rate] = field(default_factory=dict)
    by_level: dict[str, Rate] = field(default_factory=dict)  # MATH only
    by_subject: dict[str, Rate] = field(default_factory=dict)  # MATH only
    prompt_tokens: int = 0  # the stored replies' tokens (this run's and earlier runs')
    completion_tokens: int = 0
    requests: int = 0  # requests this run sent (not answered from the store)
    usage: dict = field(default_factory=dict)  # the client's counts over this run (summaries.usage_since)

    @property
    def success_rate(self) -> float | None:
        return self.corrected_mistakes / self.mistakes if self.mistakes else None

    @property
    def cost(self) -> float | None:
        """USD this run paid, as the client counted it (batch answers at the batch price)."""
        return (self.usage.get("total") or {}).get("cost")

    @property
    def produced(self) -> int:
        return self.verified

    @property
    def failed(self) -> int:
        return self.rejected.get("request_failed", 0)

    def headline(self) -> list[tuple[str, str]]:
        """The run summary's rows (a run with none verified says so first: `pipeline._check_corrections`)."""
        return [("corrections verified", f"{self.verified} of {self.attempts} replies, corrector {self.corrector}"),
                ("correction success", f"{self.corrected_mistakes}/{self.mistakes} ({_pct(self.success_rate)})")]

    def to_dict(self) -> dict:
        data = asdict(self)
        for this_run_only in ("requests", "usage"):  # the file describes the records, resumed or not;
            data.pop(this_run_only)                  # what each run spent is in the folder's usage.jsonl

        data["success_rate"] = self.success_rate
        for group in ("by_model", "by_level", "by_subject"):
            for key, rate in getattr(self, group).items():
                data[group][key]["rate"] = rate.rate
        return data

    def lines(self) -> list[str]:
        from lema_plugin.tables import format_table

        out = [
            f"corrector: {self.corrector}",
            f"mistakes: {self.mistakes}, corrected: {self.corrected_mistakes} ({_pct(self.success_rate)})",
            f"corrections: {self.attempts} judged, {self.verified} verified; rejected: "
            + ", ".join(f"{reason} {count}" for reason, count in self.rejected.items())
            + (f"; {self.judge_decided} graded by the judge" if self.judge_decided else ""),
            f"tokens: {self.prompt_tokens} prompt, {self.completion_tokens} completion"
            + (f"; cost ${self.cost:.4f}" if self.cost is not None else ""),
            f"{self.requests} new requests",
        ]
        for title, group in (("generator", self.by_model), ("MATH level", self.by_level), ("MATH subject", self.by_subject)):
            if group:
                rows = [(key, rate.mistakes, rate.corrected, _pct(rate.rate)) for key, rate in group.items()]
                out += ["", format_table((title, "mistakes", "corrected", "success"), rows)]
        return out


def summarize(mistakes: list[dict], records: list[dict], corrector: Endpoint) -> CorrectSummary:
    """Count `records` (this run's corrections and rejections) against `mistakes`."""
    summary = CorrectSummary(corrector=corrector.label if corrector.label == corrector.model else f"{corrector.label} ({corrector.model})")
    verified_paths = {r["path_id"] for r in records if r.get("correct")}
    for record in records:
        summary.attempts += 1
        summary.judge_decided += record.get("decided_by") == "judge"
        if record.get("correct"):
            summary.verified += 1
        else:
            summary.rejected[record["reason"]] = summary.rejected.get(record["reason"], 0) + 1
        usage = record.get("usage") or {}
        summary.prompt_tokens += usage.get("prompt_tokens", 0)
        summary.completion_tokens += usage.get("completion_tokens", 0)

    groups: dict[str, dict[str, Rate]] = {"model": {}, "level": {}, "subject": {}}
    for mistake in mistakes:
        corrected = mistake["id"] in verified_paths
        summary.mistakes += 1
        summary.corrected_mistakes += corrected
        keys = {"model": str(mistake.get("model") or "unknown")}
        if grader_dataset(mistake["dataset"]) == "math":
            if mistake.get("level") is not None:
                keys["level"] = f"level {mistake['level']}"
            if mistake.get("subject"):
                keys["subject"] = str(mistake["subject"])
        for group, key in keys.items():
            rate = groups[group].setdefault(key, Rate())
            rate.mistakes += 1
            rate.corrected += corrected
    summary.by_model, summary.by_level, summary.by_subject = (dict(sorted(groups[g].items())) for g in ("model", "level", "subject"))
    return summary


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


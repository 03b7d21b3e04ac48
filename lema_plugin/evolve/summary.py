"""What an evolution run kept and dropped, and why."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass
class EvolveSummary:
    """Counts for the end-of-run summary."""

    seeds: int = 0
    test_questions: int | None = None  # size of the contamination check (None: not checked)
    asked: int = 0  # generation requests this run (not cached in the store)
    generated: int = 0  # generation replies stored (this run and earlier)
    failed: int = 0  # requests that failed this run (retried next run)
    new_requests: int = 0  # requests this run sent, questions and answers (not answered from the stores)
    unparseable: int = 0
    truncated: int = 0  # the question hit the token limit: cut off mid-sentence
    duplicates: int = 0
    contaminated: int = 0
    answered: int = 0  # candidates with all K answers
    unanswered: int = 0  # candidates still missing answers (failed requests)
    no_majority: int = 0
    judge_votes: int = 0  # answers the rules could not compare that the judge found equal to the majority
    kept: int = 0
    kept_by_style: Counter = field(default_factory=Counter)
    agreement: Counter = field(default_factory=Counter)  # votes -> kept questions
    usage: dict = field(default_factory=dict)  # the client's counts over this run (summaries.usage_since)
    usage_lines: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {k: dict(v) if isinstance(v, Counter) else v for k, v in vars(self).items()}

    @property
    def produced(self) -> int:
        return self.kept

    def headline(self) -> list[tuple[str, str]]:
        return [("evolved questions", str(self.kept))]

    def lines(self) -> list[str]:
        agreement = ", ".join(f"{votes} votes: {n}" for votes, n in sorted(self.agreement.items(), reverse=True))
        styles = ", ".join(f"{style}: {n}" for style, n in sorted(self.kept_by_style.items()))
        checked = ("contamination check: off" if self.test_questions is None
                   else f"contamination check against {self.test_questions} test questions")
        return [
            f"seeds: {self.seeds}; {checked}",
            f"new questions generated: {self.generated} (requested this run: {self.asked}, failed: {self.failed})",
            f"dropped: unparseable {self.unparseable}, truncated {self.truncated}, duplicates {self.duplicates}, "
            f"contaminated (test-set near-duplicates) {self.contaminated}, no clear majority {self.no_majority}",
            f"answered: {self.answered} (still missing answers: {self.unanswered})",
            f"kept: {self.kept}" + (f" ({styles})" if styles else ""),
            f"agreement of kept questions: {agreement or 'n/a'}",
        ] + self.usage_lines + [f"{self.new_requests} new requests"]

"""The two scores, counted from (item, reading) pairs; nothing here asks or reads anything.

ProcessBench protocol, per split: the accuracy on the erroneous items (the index named equals
the label), the accuracy on the correct items (-1 named, "no error"), and F1, their harmonic
mean (0 when both are 0; none when the split lacks one of the two kinds). The average F1 is the
mean of the splits' F1, as ProcessBench's "Avg." column. An unreadable reply, or an index
outside the item (below -1, or past its last paragraph), is a wrong answer, counted apart too.

LeMa protocol, on the erroneous items whose final answer is wrong (exactly a LeMa mistake's
situation): each reading names the labelled paragraph ("exact"), an earlier one ("early": it
blames a right step), a later one ("late": it missed the first error), one the item does not
have ("outside"), or could not be read ("unparsed", as `lema correct` would reject it).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Iterable

from .items import Item
from .parse import Reading

OUTCOMES = ("exact", "early", "late", "outside", "unparsed")


def lema_items(items: Iterable[Item]) -> list[Item]:
    """The items the LeMa protocol asks about: an error in the steps and a wrong final answer."""
    return [item for item in items if item.erroneous and not item.final_answer_correct]


def outcome(item: Item, reading: Reading, allow_none: bool) -> str:
    """How a reading compares with the item's label (`allow_none`: -1 is an answer)."""
    if reading.index is None:
        return "unparsed"
    if not (-1 if allow_none else 0) <= reading.index < len(item.steps):
        return "outside"
    if reading.index == item.label:
        return "exact"
    return "early" if reading.index < item.label or item.label == -1 else "late"


@dataclass
class BenchSplit:
    """One split under the ProcessBench protocol."""

    erroneous: int = 0
    erroneous_right: int = 0
    correct: int = 0
    correct_right: int = 0
    unparsed: int = 0
    outside: int = 0

    @property
    def erroneous_accuracy(self) -> float | None:
        return self.erroneous_right / self.erroneous if self.erroneous else None

    @property
    def correct_accuracy(self) -> float | None:
        return self.correct_right / self.correct if self.correct else None

    @property
    def f1(self) -> float | None:
        a, b = self.erroneous_accuracy, self.correct_accuracy
        if a is None or b is None:
            return None
        return 2 * a * b / (a + b) if a + b else 0.0

    @property
    def items(self) -> int:
        return self.erroneous + self.correct

    def to_dict(self) -> dict:
        return {**asdict(self), "erroneous_accuracy": self.erroneous_accuracy, "correct_accuracy": self.correct_accuracy,
                "f1": self.f1}


@dataclass
class LemaSplit:
    """One split under the LeMa protocol."""

    items: int = 0
    exact: int = 0
    early: int = 0
    late: int = 0
    outside: int = 0
    unparsed: int = 0

    @property
    def exact_rate(self) -> float | None:
        return self.exact / self.items if self.items else None

    @property
    def unparsed_rate(self) -> float | None:
        return self.unparsed / self.items if self.items else None

    def add(self, other: "LemaSplit") -> None:
        for name in ("items", *OUTCOMES):
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def to_dict(self) -> dict:
        return {**asdict(self), "exact_rate": self.exact_rate, "unparsed_rate": self.unparsed_rate}


def score_processbench(pairs: Iterable[tuple[Item, Reading]]) -> dict[str, BenchSplit]:
    splits: dict[str, BenchSplit] = {}
    for item, reading in pairs:
        split = splits.setdefault(item.split, BenchSplit())
        result = outcome(item, reading, allow_none=True)
        if item.erroneous:
            split.erroneous += 1
            split.erroneous_right += result == "exact"
        else:
            split.correct += 1
            split.correct_right += result == "exact"
        split.unparsed += result == "unparsed"
        split.outside += result == "outside"
    return splits


def average_f1(splits: dict[str, BenchSplit]) -> float | None:
    """The mean F1 over the splits that have one."""
    scores = [s.f1 for s in splits.values() if s.f1 is not None]
    return sum(scores) / len(scores) if scores else None


def score_lema(pairs: Iterable[tuple[Item, Reading]]) -> dict[str, LemaSplit]:
    splits: dict[str, LemaSplit] = {}
    for item, reading in pairs:
        split = splits.setdefault(item.split, LemaSplit())
        split.items += 1
        result = outcome(item, reading, allow_none=False)
        setattr(split, result, getattr(split, result) + 1)
    return splits


def overall(splits: dict[str, LemaSplit]) -> LemaSplit:
    total = LemaSplit()
    for split in splits.values():
        total.add(split)
    return total

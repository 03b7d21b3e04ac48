"""Decide whether a parsed correction is usable training data.

A correction is kept only if it names a step that exists in the wrong path (step numbers are
the ones the corrector saw, 1-based) and its corrected solution reaches the gold answer by the
one grader. Anything else is rejected with a reason the summary can count.
"""
from __future__ import annotations

from dataclasses import dataclass

from lema_plugin.grading import answers_match, extract_answer
from lema_plugin.problems import grader_dataset

from .parse import ParsedCorrection


@dataclass(frozen=True)
class Verdict:
    ok: bool
    reason: str | None  # None when ok; else "bad_step" or "wrong_answer"
    detail: str
    prediction: str | None


def verify(parsed: ParsedCorrection, steps: list[str], gold: str, dataset: str) -> Verdict:
    """Check the named step and grade the corrected solution's final answer."""
    dataset = grader_dataset(dataset)
    prediction = extract_answer(parsed.corrected_solution, dataset)
    if not 1 <= parsed.incorrect_step <= len(steps):
        return Verdict(False, "bad_step", f"names step {parsed.incorrect_step}; the path has {len(steps)} steps", prediction)
    if prediction is None:
        return Verdict(False, "wrong_answer", "no final answer in the corrected solution", None)
    if not answers_match(prediction, gold, dataset):
        return Verdict(False, "wrong_answer", f"answer {prediction!r}, gold {gold!r}", prediction)
    return Verdict(True, None, "", prediction)

"""Decide whether a parsed correction is usable training data.

A correction is kept only if it names a step that exists in the wrong path (step numbers are
the ones the corrector saw, 1-based) and its corrected solution reaches the gold answer by the
one grader. Anything else is rejected with a reason the summary can count. A final answer the
rules cannot decide is rejected as a wrong answer unless a judge settles it (`grade` in hand).
"""
from __future__ import annotations

from dataclasses import dataclass

from lema_plugin.grading import Graded, grade
from lema_plugin.problems import grader_dataset

from .parse import ParsedCorrection


@dataclass(frozen=True)
class Verdict:
    ok: bool
    reason: str | None  # None when ok; else "bad_step" or "wrong_answer"
    detail: str
    prediction: str | None
    decided_by: str | None = None  # rule, symbolic or judge; None when the answer was not graded


def grade_solution(solution: str, gold: str, dataset: str, question: str | None = None) -> Graded:
    """The rules' grade of a corrected solution's final answer (the question says which
    sub-problem counts when the solution answers several)."""
    return grade(solution, gold, grader_dataset(dataset), question)


def verify(parsed: ParsedCorrection, steps: list[str], gold: str, dataset: str, graded: Graded | None = None,
           question: str | None = None) -> Verdict:
    """Check the named step and grade the corrected solution's final answer (or take `graded`,
    a grade a judge settled)."""
    if not 1 <= parsed.incorrect_step <= len(steps):
        prediction = (graded or grade_solution(parsed.corrected_solution, gold, dataset, question)).extracted
        return Verdict(False, "bad_step", f"names step {parsed.incorrect_step}; the path has {len(steps)} steps", prediction)
    graded = graded or grade_solution(parsed.corrected_solution, gold, dataset, question)
    if not graded.correct:
        detail = f"answer {graded.extracted!r}, gold {gold!r}" if graded.extracted is not None else "no final answer in the corrected solution"
        return Verdict(False, "wrong_answer", detail, graded.extracted, graded.decided_by)
    return Verdict(True, None, "", graded.extracted, graded.decided_by)

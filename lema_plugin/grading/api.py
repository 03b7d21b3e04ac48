"""The grader's public calls: grade a text against a gold answer, and compare two answers.

`grade` extracts the final answer a text states and decides it against the gold answer (by the
rules, or symbolically under a time bound), saying which path decided and whether anything
could; `answers_match` compares two answers already extracted. See the package docstring for the
answer forms recognised.
"""
from __future__ import annotations

from dataclasses import dataclass

from .compare import Verdict, gsm8k_verdict, math_verdict, single_value
from .datasets import dataset_kind
from .extract import find_answer, joined_answers
from .gold import gold_answer
from .subproblems import asked_section


def answer_verdict(pred: object, gold: object, dataset: str) -> Verdict:
    """`answers_match` with how it was decided (see `compare.Verdict`)."""
    dataset = dataset_kind(dataset)
    gold = None if gold is None else gold_answer(gold, dataset)
    if not gold:  # nothing to compare with, for the rules or a judge
        return Verdict(False)
    pred = "" if pred is None else str(pred).strip()
    if not pred:  # no answer found: a judge may still read one in the text
        return Verdict(False, settled=False)
    if dataset == "gsm8k":
        return gsm8k_verdict(pred, gold)
    return math_verdict(pred, gold)


def answers_match(pred: object, gold: object, dataset: str) -> bool:
    """Whether an extracted answer `pred` equals the gold answer (a `####` rationale is fine too)."""
    return answer_verdict(pred, gold, dataset).correct


@dataclass(frozen=True)
class Graded:
    """One graded completion.

    decided_by: "rule" or "symbolic" here ("judge" once an LLM judge has settled it);
    settled: False when the rules could not decide (no answer found, free-form text, equations
    written differently, a symbolic check that could not finish), the items a judge may settle.
    """

    extracted: str | None
    correct: bool
    decided_by: str = "rule"
    settled: bool = True

    def as_fields(self) -> dict:
        return {"extracted": self.extracted, "correct": self.correct, "decided_by": self.decided_by}


def grade(text: object, gold: object, dataset: str, question: str | None = None) -> Graded:
    """Extract the final answer of `text` and compare it with `gold`.

    A solution that boxes several different answers when the gold is one value gets no credit
    (`the maximum is \\boxed{1}` ... `\\boxed{\\frac12}`): a grader cannot know which one it meant.
    Given the `question`, a reply that solves several sub-problems is graded on its section for
    the sub-problem the question asks (see `subproblems`), where the other boxes do not compete.
    """
    dataset = dataset_kind(dataset)
    answer = None
    if question and isinstance(text, str):
        section = asked_section(text, question)
        answer = find_answer(section, dataset) if section else None
    if answer is None or answer.value is None:
        answer = find_answer(text, dataset)
    if answer.value is None:  # a judge may still read an answer in the text, given a gold one
        return Graded(None, False, "rule", settled=not gold_answer(gold, dataset))
    verdict = answer_verdict(answer.value, gold, dataset)
    if answer.others:
        reference = gold_answer(gold, dataset)
        if reference and single_value(reference, dataset):
            others = dict.fromkeys(answer.others)  # each distinct text once
            if verdict.correct and any(not answer_verdict(other, reference, dataset).correct for other in others):
                return Graded(answer.value, False, verdict.decided_by)
        elif reference and not verdict.correct:  # the gold lists several values: all boxed values together
            every = joined_answers((*answer.others, answer.value))
            combined = answer_verdict(every, reference, dataset)
            if combined.correct:
                return Graded(every, True, combined.decided_by)
    return Graded(answer.value, verdict.correct, verdict.decided_by, verdict.settled)


def is_correct(text: object, gold: object, dataset: str, question: str | None = None) -> bool:
    """Whether the final answer stated in `text` equals `gold` (`question`: see `grade`)."""
    return grade(text, gold, dataset, question).correct

"""The one grader: final-answer extraction and answer equivalence for GSM8K and MATH.

Every stage (sampling, correction filtering, CoT rejection sampling) and the lm-eval tasks
import these functions, so a path is judged the same way everywhere.

    grade(text, gold, dataset, question=None)   a `Graded`: extracted answer, verdict, which path decided
    is_correct(text, gold, dataset, question=None)   grade(...).correct
    extract_answer(text, dataset)   the final answer a completion states (None if none)
    extract_strict(text, dataset)   only "The answer is X" or a final \\boxed{X}
    answers_match(pred, gold, dataset)  equivalence of an extracted answer and the gold answer
    last_boxed(text)                content of the last \\boxed{}/\\fbox{}
    gold_answer(gold, dataset)      the one gold reader: a bare answer or a rationale's stated one
    dataset_kind(dataset)           which rules a dataset is graded by ("gsm8k" or "math")

`dataset` is "gsm8k", "math" or "math500" (graded as "math"). Nothing here raises on model
text or evaluates it; symbolic checks run under a time bound (see `symbolic`). What the rules
cannot decide is marked `settled=False`; `judge.judge_graded` asks an LLM about exactly those.
Pass the `question` where it is at hand: a reply that solves several sub-problems is then graded
on the one the question asks (see `subproblems`).

Answer forms recognised beyond plain equality, each with a near miss it rejects
(tests/test_grading_families.py, tests/test_grading_forms.py):
    numbers       fractions, decimals standing for exact values, scientific notation, percent,
                  units (`\\text{ cm}`, unit words, unit symbols `m/s`, `\\mu m` after a number),
                  locale forms (`3,5`, `12 500`, `12\\,500`) where the gold is one number
    science       a reply as fine as a rounded gold or finer (`4.46` for `4.5`, `\\frac{1}{3000}`
                  for `3.3 \\times 10^{-4}`)
    relations     equations up to rearrangement or a non-zero factor (`3x-6y+9=0`, `y=x/2+3/2`);
                  inequalities up to flipping or negating both sides, against intervals and
                  unions, chains (`1 \\le t \\le 5`, `t \\in [1,5]`); `\\neq`, `\\ne`, `!=`
    several       lists, sets and tuples in any order, braces, semicolons, `or`, labelled groups
                  (`a=3,b=1;a=5,b=1` for `(3,1),(5,1)`), several boxes stated together
    labels        `x = `, `(p,q) = `, `A:B = `, `\\frac{PQ}{QR} = `, `\\frac{dx}{dt} = `, `y' = `,
                  `f(2) = `, a leading `Yes.` on the gold
    sub-problems  the box in the reply's section for the sub-problem the question asks
    expressions   numeric identity at sample points (`\\cosh x`, `\\sin^2 x + \\cos^2 x`),
                  arbitrary constants renamed (`C_1`/`C_2`, `c_1`, `A`, `B`), matrices in any
                  environment (`array`, `pmatrix`, `bmatrix`), then sympy under the time bound
"""
from __future__ import annotations

from dataclasses import dataclass

from .compare import Verdict, gsm8k_verdict, math_verdict, single_value
from .datasets import dataset_kind
from .extract import extract_answer, extract_strict, find_answer, joined_answers
from .gold import gold_answer
from .latex import last_boxed
from .subproblems import asked_section

__all__ = ["grade", "Graded", "extract_answer", "extract_strict", "answers_match", "is_correct", "last_boxed",
           "gold_answer", "dataset_kind"]


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

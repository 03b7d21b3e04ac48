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
from .api import Graded, answers_match, grade, is_correct
from .datasets import dataset_kind
from .extract import extract_answer, extract_strict
from .gold import gold_answer
from .latex import last_boxed

__all__ = ["grade", "Graded", "extract_answer", "extract_strict", "answers_match", "is_correct", "last_boxed",
           "gold_answer", "dataset_kind"]

"""Answer-form families of issue 28, each accepted and, next to it, a near miss rejected.

Every table row is (family, reply's answer, gold answer, verdict). Rows are graded in the
direction written (several rules are one-sided: a reply may be finer than the gold, not coarser;
a decimal comma is read in a reply, never in a gold that may list two values), both as an
extracted answer (`answers_match`) and as a boxed reply (`is_correct`).
"""
from __future__ import annotations

import pytest

from lema_plugin.grading import answers_match, is_correct

MATH = [
    # locale numbers: a decimal comma where the gold is one number; thousands grouped by spaces
    ("locale", "3,5", "3.5", True),
    ("locale", "0,125", "\\frac18", True),
    ("locale", "12500,5", "12500.5", True),
    ("locale", "12\\,500", "12500", True),
    ("locale", "12 500", "12500", True),
    ("locale", "1.234,5", "1234.5", True),
    ("locale", "12\u2009500", "12500", True),  # a thin space
    ("locale", "12\u202f500", "12500", True),  # a narrow no-break space
    ("locale", "-2,75", "-\\frac{11}{4}", True),
    ("locale", "3,5", "35", False),
    ("locale", "3, 5", "3.5", False),  # a list
    ("locale", "(3,5)", "3.5", False),  # a point
    ("locale", "3,5", "3, 5", True),  # a gold list: the reply lists the same values
    ("locale", "3.5", "3,5", False),  # a gold `3,5` lists two values
    ("locale", "12,500", "12.5", False),  # English thousands
    ("locale", "0,111", "111", False),
    ("locale", "0,111", "0.111", True),
    ("locale", "3,6", "3.5", False),
    ("locale", "3,5,7", "3.5", False),
    # science-style numbers: a reply as fine as the gold states or finer, scientific notation, units
    ("science", "4.46", "4.5", True),
    ("science", "4.549", "4.5", True),
    ("science", "4.4", "4.5", False),
    ("science", "4.56", "4.5", False),
    ("science", "4.5", "4.46", False),  # coarser than the gold
    ("science", "1.0734 \\times 10^{16}", "1.07e16", True),
    ("science", "1.1 \\times 10^{16}", "1.07e16", False),
    ("science", "1.0784 \\times 10^{16}", "1.07e16", False),
    ("science", "\\frac{1}{3000}", "3.3 \\times 10^{-4}", True),
    ("science", "\\frac{1}{300}", "3.3 \\times 10^{-4}", False),
    ("science", "\\frac{1}{3000}", "3.3e-4", True),
    ("science", "3.33 \\times 10^{-4}", "\\frac{1}{3000}", False),  # too few digits for an exact value
    ("science", "3.333 \\times 10^{-4}", "\\frac{1}{3000}", True),
    ("science", "299792458", "3 \\times 10^{8}", True),
    ("science", "199792458", "3 \\times 10^{8}", False),
    ("science", "0.3333", "0.333", True),
    ("science", "0.333", "0.3333", False),
    ("science", "0.53", "0.5", False),  # a one-digit decimal gold is an exact value
    ("science", "\\frac13", "0.33", False),
    ("science", "2,36", "2.3", False),  # a decimal comma, then the same precision rule
    ("science", "2,34", "2.3", True),
    # a unit after the number: symbols (`m/s`, `J`, `\mu m`), in `\text{}`, or words
    ("unit", "4.5 m/s", "4.5", True),
    ("unit", "4.5 \\text{ m/s}", "4.5", True),
    ("unit", "4.5 meters per second", "4.5", True),
    ("unit", "6.1 \\times 10^{-19} \\mathrm{~J}", "6.1 \\times 10^{-19}", True),
    ("unit", "3 \\times 10^{8}\\,\\mathrm{m\\,s^{-1}}", "3e8", True),
    ("unit", "2.2 \\mu m", "2.2", True),
    ("unit", "12 kg m^2 s^{-2}", "12", True),
    ("unit", "300 K", "300", True),
    ("unit", "4.5 m/s", "4.5 m/s", True),
    ("unit", "4.5", "4.5 m/s", True),
    ("unit", "4.5 m/s", "5.4", False),
    ("unit", "4.5 km/s", "4.5 m/s", False),  # both carry a unit: it must be the same
    ("unit", "300 K", "30", False),
    ("unit", "4.5 x", "4.5", False),  # a variable, not a unit
    ("unit", "4.5 m", "4.5 s", False),
    # equations equal up to rearrangement or a non-zero factor: lines, planes, conics
    ("equation", "3x-6y+9=0", "y=\\frac{x}{2}+\\frac{3}{2}", True),
    ("equation", "y=\\frac{x}{2}+\\frac{3}{2}", "3x-6y+9=0", True),
    ("equation", "2x + 4y - 2z = 8", "x + 2y - z - 4 = 0", True),
    ("equation", "9x^2 + 4y^2 = 36", "\\frac{x^2}{4} + \\frac{y^2}{9} = 1", True),
    ("equation", "x^2 + y^2 - 4 = 0", "x^2 + y^2 = 4", True),
    ("equation", "3x-6y-9=0", "y=\\frac{x}{2}+\\frac{3}{2}", False),
    ("equation", "2x + 4y - 2z = 8", "x + 2y + z = 4", False),
    ("equation", "4x^2 + 9y^2 = 36", "\\frac{x^2}{4} + \\frac{y^2}{9} = 1", False),
    ("equation", "x^2 = 4", "x = 2", False),  # not a factor: x^2 = 4 also holds at x = -2
    ("equation", "y^2 = x", "y = \\sqrt{x}", False),
    ("equation", "x = 2x + 3", "y = 2x + 3", False),  # an equation in x, not a labelled value
    # inequalities equal up to flipping or negating both sides; chains and intervals; not-equal
    ("inequality", "-y \\ge -4", "y \\le 4", True),
    ("inequality", "4 \\geq y", "y \\le 4", True),
    ("inequality", "2x - 6 > 0", "x > 3", True),
    ("inequality", "x + y \\le 3", "3 - x \\ge y", True),
    ("inequality", "-2x + 1 \\ge 5", "(-\\infty, -2]", True),
    ("inequality", "1 \\le t \\le 5", "t \\in [1,5]", True),
    ("inequality", "x \\neq 3", "x != 3", True),
    ("inequality", "x \\ne 3", "(-\\infty,3)\\cup(3,\\infty)", True),
    ("inequality", "-y \\ge -4", "y \\ge 4", False),  # negating one side only
    ("inequality", "-y > -4", "y \\le 4", False),  # strict against not strict
    ("inequality", "2x - 6 > 0", "x < 3", False),
    ("inequality", "-2x + 1 \\ge 5", "(-\\infty, -2)", False),
    ("inequality", "1 < t \\le 5", "t \\in [1,5]", False),
    ("inequality", "x \\neq 3", "x = 3", False),
    ("inequality", "x \\ne 3", "(-\\infty,3)\\cup(3,\\infty)\\cup(4,5)", False),
    # expressions equal under identities; arbitrary constants renamed; matrices in any environment
    ("identity", "\\frac{e^{x}+e^{-x}}{2}", "\\cosh x", True),
    ("identity", "\\sin^2 x + \\cos^2 x", "1", True),
    ("identity", "2\\sin x\\cos x", "\\sin 2x", True),
    ("identity", "\\ln(x^2)", "2\\ln x", True),
    ("identity", "\\frac{e^{x}-e^{-x}}{2}", "\\cosh x", False),
    ("identity", "\\sin^2 x - \\cos^2 x", "1", False),
    ("identity", "2\\sin x", "\\sin 2x", False),
    ("constants", "C_2 e^{x} + C_1 e^{-x}", "C_1 e^{x} + C_2 e^{-x}", True),
    ("constants", "y = c_1 e^{2x} + c_2 e^{-x}", "y = C_1 e^{2x} + C_2 e^{-x}", True),
    ("constants", "A e^{2x} + B e^{-x}", "C_1 e^{2x} + C_2 e^{-x}", True),
    ("constants", "C_1 e^{x} + C_2 e^{2x}", "C_1 e^{x} + C_2 e^{-x}", False),
    ("constants", "C_1 e^{x}", "C_1 e^{x} + C_2", False),
    ("constants", "B x + A", "A x + B", False),  # letters both answers use are given, not arbitrary
    ("matrix", "\\begin{array}{cc}1&2\\\\3&4\\end{array}", "\\begin{pmatrix}1&2\\\\3&4\\end{pmatrix}", True),
    ("matrix", "[\\begin{array}{cc}1&2\\\\3&4\\end{array}]", "\\begin{pmatrix}1&2\\\\3&4\\end{pmatrix}", True),
    ("matrix", "\\begin{bmatrix}\\frac12&0\\\\0&1\\end{bmatrix}", "\\begin{pmatrix}0.5&0\\\\0&1\\end{pmatrix}", True),
    ("matrix", "[\\begin{array}{cc}1&2\\\\3&4\\end{array}]", "\\begin{pmatrix}1&2\\\\4&3\\end{pmatrix}", False),
    ("matrix", "\\begin{array}{cc}1&2\\end{array}", "\\begin{pmatrix}1\\\\2\\end{pmatrix}", False),
    # several answers as an unordered set: tuples in any order, braces, semicolons, "or", labels
    ("several", "(5,1),(3,1)", "(3,1),(5,1)", True),
    ("several", "\\{(3,1),(5,1)\\}", "(3,1),(5,1)", True),
    ("several", "3; 5", "3, 5", True),
    ("several", "(3,1); (5,1)", "(5,1),(3,1)", True),
    ("several", "3 \\text{ or } 5", "5, 3", True),
    ("several", "a=3,b=1;a=5,b=1", "(3,1),(5,1)", True),
    ("several", "a=3, b=1 \\text{ or } a=5, b=1", "(5,1),(3,1)", True),
    ("several", "a = 3, b = 1", "(3,1)", True),
    ("several", "(1,3),(5,1)", "(3,1),(5,1)", False),  # a tuple's own order counts
    ("several", "\\{(3,1)\\}", "(3,1),(5,1)", False),
    ("several", "3; 6", "3, 5", False),
    ("several", "a=3,b=1;a=5,b=2", "(3,1),(5,1)", False),
    ("several", "a=1,b=3;a=1,b=5", "(3,1),(5,1)", False),
    ("several", "a = 1, b = 3", "(3,1)", False),
    ("several", "a = 3, a = 1", "(3,1)", False),  # one label twice: two values of a, not a pair
    # labelled answers: a gold label that names the quantity, a reply that names its variable
    ("label", "2:7", "A:B=2:7", True),
    ("label", "AB:BC = 2:7", "2:7", True),
    ("label", "\\frac{3}{4}", "\\frac{PQ}{QR}=\\frac{3}{4}", True),
    ("label", "PQ/QR = 0.75", "\\frac34", True),
    ("label", "g(x)=x^2+1", "Yes. g(x)=x^2+1", True),
    ("label", "x^2+1", "\\text{Yes}, g(x)=x^2+1", True),
    ("label", "Yes, g(x) = 1 + x^2", "Yes. g(x)=x^2+1", True),
    ("label", "y = 2x+1", "2x+1", True),
    ("label", "\\frac{dx}{dt} = 3t^2", "3t^2", True),
    ("label", "\\frac{d^2y}{dx^2} = 6x", "6x", True),
    ("label", "y' = 2x", "2x", True),
    ("label", "f(2) = 5", "5", True),
    ("label", "7:2", "A:B=2:7", False),
    ("label", "2:9", "A:B=2:7", False),
    ("label", "\\frac{4}{3}", "\\frac{PQ}{QR}=\\frac{3}{4}", False),
    ("label", "No. g(x)=x^2+1", "Yes. g(x)=x^2+1", False),
    ("label", "\\text{Yes}", "Yes. g(x)=x^2+1", False),
    ("label", "g(x)=x^2-1", "Yes. g(x)=x^2+1", False),
    ("label", "\\frac{dx}{dt} = 3t", "3t^2", False),
    ("label", "5", "x + y = 5", False),  # a sum is no label: the gold is an equation
]


@pytest.mark.parametrize("family, pred, gold, same", MATH)
def test_math_families(family, pred, gold, same):
    assert answers_match(pred, gold, "math") is same
    assert is_correct(f"So the final answer is $\\boxed{{{pred}}}$.", gold, "math") is same


def test_every_family_accepts_and_rejects():
    for family in {row[0] for row in MATH}:
        assert {same for name, *_, same in MATH if name == family} == {True, False}, family


GSM8K = [
    ("The answer is 3,5 hours.", "3.5", True),
    ("The answer is 3,5 hours.", "3", False),
    ("The answer is 0,75.", "0.75", True),
    ("The answer is 12 500 dollars.", "12500", True),
    ("The answer is 12 500 dollars.", "12", False),
    ("The answer is $12\\,500$.", "12500", True),
    ("The answer is 12\u202f500.", "12500", True),
    ("The answer is 1.234,50 euros.", "1234.5", True),
    ("The answer is 1,234.", "1234", True),
    ("The answer is 1,234.", "1.234", False),
    ("The answer is 0,111.", "111", False),
    ("The point is (3,5).", "3.5", False),
    ("The answer is 2 100-dollar bills.", "2100", False),
]


@pytest.mark.parametrize("text, gold, same", GSM8K)
def test_gsm8k_locale_numbers(text, gold, same):
    assert is_correct(text, gold, "gsm8k") is same


MINERVA_QUESTION = (
    "Preamble: A star radiates as a black body of radius $R$ at temperature $T$.\n\n"
    "Subproblem 0: What is its luminosity, in erg/s?\n\n"
    "Solution: $L = 4 \\pi R^2 \\sigma T^4$ ... Final answer: The final answer is 4.5e33. I hope it is correct.\n\n"
    "Subproblem 1: What is the flux at a distance of 1 pc, in erg/s/cm^2?"
)
TWO_BOXES = (
    "**Subproblem 0:** The luminosity is $\\boxed{4.5 \\times 10^{33}}$ erg/s.\n\n"
    "**Subproblem 1:** The flux is $F = L / (4 \\pi d^2) = \\boxed{3.8 \\times 10^{-5}}$ erg/s/cm^2."
)
PARTS_QUESTION = (
    "A ball is thrown up at 20 m/s.\n(a) How long does it rise? Solution: t = v/g, so the answer is 2.04 s.\n"
    "(b) How high does it rise, in m?"
)
PARTS_REPLY = "(a) $t = \\boxed{2.04}$ s.\n\n(b) $h = v^2 / 2g = \\boxed{20.4}$ m."

# (reply, gold, question, correct?): the box for the sub-problem asked counts
SUBPROBLEMS = [
    (TWO_BOXES, "3.8 \\times 10^{-5}", MINERVA_QUESTION, True),
    (TWO_BOXES, "3.8e-5", MINERVA_QUESTION, True),
    (TWO_BOXES, "4.5e33", MINERVA_QUESTION, False),  # that box answers the other sub-problem
    (TWO_BOXES.replace("3.8 \\times 10^{-5}", "4.1 \\times 10^{-5}"), "3.8e-5", MINERVA_QUESTION, False),
    (TWO_BOXES, "3.8e-5", None, False),  # no question: two different boxes, no credit
    (TWO_BOXES, "3.8e-5", "What is the flux at 1 pc?", False),  # the question names no sub-problem
    ("### Subproblem 1\nThe flux is $\\boxed{3.8e-5}$.\n\n### Subproblem 0\nRecall $L = \\boxed{4.5e33}$.",
     "3.8e-5", MINERVA_QUESTION, True),
    (PARTS_REPLY, "20.4", PARTS_QUESTION, True),
    (PARTS_REPLY, "2.04", PARTS_QUESTION, False),
    (PARTS_REPLY, "20.4", "(a) How long does it rise? (b) How high?", False),  # earlier parts unsolved: not known
]


@pytest.mark.parametrize("text, gold, question, same", SUBPROBLEMS)
def test_the_box_of_the_subproblem_asked_counts(text, gold, question, same):
    assert is_correct(text, gold, "math", question) is same


def test_a_question_changes_nothing_for_a_reply_with_one_answer():
    text = "The flux is $\\boxed{3.8 \\times 10^{-5}}$."
    assert is_correct(text, "3.8e-5", "math", MINERVA_QUESTION)
    assert is_correct(text, "3.8e-5", "math")
    assert not is_correct(text, "4.5e33", "math", MINERVA_QUESTION)


def test_lm_eval_tasks_grade_the_subproblem_their_doc_asks():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "lm_eval_tasks" / "lema" / "utils.py"
    spec = importlib.util.spec_from_file_location("lema_task_utils_families", path)
    utils = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(utils)
    doc = {"dataset": "math", "answer": "3.8e-5", "question": MINERVA_QUESTION}
    scores = utils.process_results(doc, [TWO_BOXES])
    assert (scores["exact_match"], scores["strict_match"]) == (1.0, 1.0)  # official_match takes the last box, as the paper did
    other = utils.process_results({**doc, "answer": "4.5e33"}, [TWO_BOXES])
    assert (other["exact_match"], other["strict_match"]) == (0.0, 0.0)


def test_lema_grade_reads_the_question_of_each_record(tmp_path):
    import json

    from lema_plugin.grading.files import grade_file

    path = tmp_path / "paths.jsonl"
    rows = [{"question": MINERVA_QUESTION, "text": TWO_BOXES, "answer": gold} for gold in ("3.8e-5", "4.5e33")]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    report = grade_file(path, "math", out=tmp_path / "graded.jsonl")
    assert (report.graded, report.correct) == (2, 1)


# (model text, gold, correct?): the families where the answer sits in a reply
TEXTS = [
    ("The solutions are $(3,1)$ and $(5,1)$.", "(5,1),(3,1)", True),
    ("The solutions are $(3,1)$ and $(5,2)$.", "(5,1),(3,1)", False),
    ("So $a=3, b=1$ or $a=5, b=1$.", "(3,1),(5,1)", True),
    ("So $a=3, b=1$ or $a=5, b=2$.", "(3,1),(5,1)", False),
    ("The answer is $y \\le 4$.", "-y \\ge -4", True),
    ("The answer is $y < 4$.", "-y \\ge -4", False),
    ("Final Answer: $3x - 6y + 9 = 0$", "y = x/2 + 3/2", True),
    ("Final Answer: $3x - 6y - 9 = 0$", "y = x/2 + 3/2", False),
    ("The answer is 3,5.", "3.5", True),
    ("The answer is 3, 5.", "3.5", False),
    ("Thus the flux is $3.8\\times10^{-5}$ erg/s/cm^2.", "3.8e-5", True),
    ("Thus the flux is $3.8\\times10^{-5}$ and 7 more.", "3.8e-5", False),  # a number follows: no closing formula
    ("The final answer is $4.46$ m/s.", "4.5", True),
    ("The final answer is $4.56$ m/s.", "4.5", False),
    ("Hence the ratio is $A:B = 2:7$.", "2:7", True),
    ("Hence the ratio is $A:B = 7:2$.", "2:7", False),
    ("So $\\frac{dy}{dx} = 3x^2$.", "3x^2", True),
    ("So $\\frac{dy}{dx} = 3x$.", "3x^2", False),
]


@pytest.mark.parametrize("text, gold, same", TEXTS)
def test_families_in_replies(text, gold, same):
    assert is_correct(text, gold, "math") is same


def test_numbered_steps_are_not_taken_for_subproblems():
    text = ("**Subproblem 0:**\n1) $L = 4\\pi R^2 \\sigma T^4$\n2) $L = \\boxed{4.5e33}$\n\n"
            "**Subproblem 1:**\n1) $F = L / 4\\pi d^2$\n2) so $F = \\boxed{3.8e-5}$")
    assert is_correct(text, "3.8e-5", "math", MINERVA_QUESTION)
    assert not is_correct(text, "4.5e33", "math", MINERVA_QUESTION)

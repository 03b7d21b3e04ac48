"""Answer forms that strong models write for competition and science problems (issue 15).

Every rule has cases it accepts and cases it rejects, and every pair is graded both ways: the
first form as the prediction and the second as the gold, then the other way round.
"""
from __future__ import annotations

import pytest

from lema_plugin.grading import answers_match, extract_answer, grade, is_correct

# (rule, one form, another form, same answer?)
PAIRS = [
    # scientific notation, with units after the number ignored
    ("scientific", "1.07e16", "1.07 \\times 10^{16}", True),
    ("scientific", "3e8", "3 \\cdot 10^8", True),
    ("scientific", "1e-3", "0.001", True),
    ("scientific", "2.5E-4", "2.5\\times10^{-4}", True),
    ("scientific", "6.02 \\times 10^{23}", "602000000000000000000000", True),
    ("scientific", "1.07 \\times 10^{16}\\text{ erg/s}", "1.07e16", True),
    ("scientific", "3 \\times 10^{8}\\,\\mathrm{m}", "3e8", True),
    ("scientific", "1.07 \\times 10^{16} \\text{ erg s}^{-1}", "1.07e16", True),
    ("scientific", "4.2\\times 10^{3} \\text{ J}", "4200", True),
    ("scientific", "3e8", "3 \\cdot 10^9", False),
    ("scientific", "1.07e16", "1.7 \\times 10^{16}", False),
    ("scientific", "1e-3", "0.01", False),
    ("scientific", "2.5E-4", "2.5\\times10^{4}", False),
    # a unit is dropped only after a number: a variable or the imaginary unit stays
    ("units", "5\\,\\mathrm{kg}", "5", True),
    ("units", "12 \\text{ m/s}^2", "12", True),
    ("units", "5\\,\\mathrm{kg}", "6", False),
    ("units", "3+4\\mathrm{i}", "3+4", False),
    # rounded decimals of exact values: >= 4 significant digits, rounded or truncated at the last one
    ("rounded", "0.0833333333", "\\frac{1}{12}", True),
    ("rounded", "0.6667", "\\frac{2}{3}", True),
    ("rounded", "0.6666", "\\frac{2}{3}", True),
    ("rounded", "1.4142", "\\sqrt{2}", True),
    ("rounded", "3.1416", "\\pi", True),
    ("rounded", "-0.7071", "-\\frac{\\sqrt{2}}{2}", True),
    ("rounded", "0.33", "\\frac13", False),  # too few digits to stand for 1/3
    ("rounded", "0.333", "\\frac13", False),
    ("rounded", "0.0834", "\\frac{1}{12}", False),  # neither rounded nor truncated 1/12
    ("rounded", "0.6668", "\\frac{2}{3}", False),
    ("rounded", "3.14", "\\pi", False),
    ("rounded", "0.7071", "-\\frac{\\sqrt{2}}{2}", False),
    ("rounded", "0.3336", "0.333", False),  # two decimals agree only within the coarser one's precision
    # labelled answers
    ("label", "(p,q)=(3,2)", "(3,2)", True),
    ("label", "|AB| = 1", "1", True),
    ("label", "k = 45, n = 2", "45, 2", True),
    ("label", "AB = 7", "7", True),
    ("label", "\\angle ABC = 30^\\circ", "30", True),
    ("label", "f(x) = x^2+1", "x^2+1", True),
    ("label", "x \\approx 11", "11", True),
    ("label", "(p,q)=(3,2)", "(2,3)", False),
    ("label", "|AB| = 1", "2", False),
    ("label", "k = 45, n = 2", "45, 3", False),
    # an equation answer compares as an equation
    ("equation", "y = 2x + 3", "y=2x+3", True),
    ("equation", "x^2 + y^2 = 4", "y^2 + x^2 = 4", True),
    ("equation", "x + y = 5", "5 = y + x", True),
    ("equation", "y = 2x + 3", "y = 2x + 4", False),
    ("equation", "x^2 + y^2 = 4", "x^2 + y^2 = 2", False),
    # several answers
    ("several", "\\{1,3\\}", "1, 3", True),
    ("several", "{1,3}", "1, 3", True),
    ("several", "3, 1", "1, 3", True),
    ("several", "x = 1 \\text{ or } x = 3", "1, 3", True),
    ("several", "\\{1,3\\}", "1, 2", False),
    ("several", "1, 3", "1, 3, 5", False),
    ("several", "1", "1, 3", False),
    # intervals and inequalities
    ("interval", "x \\in [-2,7]", "-2 \\le x \\le 7", True),
    ("interval", "(-793, 10)", "-793 < a < 10", True),
    ("interval", "[3, \\infty)", "x \\geq 3", True),
    ("interval", "(-\\infty, 5)", "5 > t", True),
    ("interval", "(-\\infty,1)\\cup(2,\\infty)", "x < 1 \\text{ or } x > 2", True),
    ("interval", "[-2, 7]", "7 \\geq x \\geq -2", True),
    ("interval", "[-2, 7]", "-2 \\leqslant x \\leqslant 7", True),
    ("interval", "x \\in [-2,7]", "-2 < x \\le 7", False),
    ("interval", "(-793, 10)", "-793 \\le a < 10", False),
    ("interval", "[3, \\infty)", "x > 3", False),
    ("interval", "(-\\infty,1)\\cup(2,\\infty)", "x < 1 \\text{ or } x \\ge 2", False),
    # matrices and vectors
    ("matrix", "\\left[\\begin{array}{cc} 1 & 2 \\\\ 3 & 4 \\end{array}\\right]", "\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}", True),
    ("matrix", "\\begin{bmatrix} 0.5 \\\\ -2 \\end{bmatrix}", "\\begin{pmatrix} \\frac12 \\\\ -2 \\end{pmatrix}", True),
    ("matrix", "\\left(\\begin{matrix} 1 & 0 \\\\ 0 & 1 \\end{matrix}\\right)", "\\begin{pmatrix} 1 & 0 \\\\ 0 & 1 \\end{pmatrix}", True),
    ("matrix", "\\left[\\begin{array}{cc} 1 & 2 \\\\ 3 & 4 \\end{array}\\right]", "\\begin{pmatrix} 1 & 2 \\\\ 4 & 3 \\end{pmatrix}", False),
    ("matrix", "\\begin{bmatrix} 0.5 \\\\ -2 \\end{bmatrix}", "\\begin{pmatrix} \\frac13 \\\\ -2 \\end{pmatrix}", False),
    ("matrix", "\\begin{pmatrix} 1 & 2 \\end{pmatrix}", "\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}", False),
]


@pytest.mark.parametrize("rule, first, second, same", PAIRS)
def test_both_directions(rule, first, second, same):
    assert answers_match(first, second, "math") is same
    assert answers_match(second, first, "math") is same
    assert is_correct(f"So the final answer is $\\boxed{{{first}}}$.", second, "math") is same
    assert is_correct(f"So the final answer is $\\boxed{{{second}}}$.", first, "math") is same


def test_every_rule_accepts_and_rejects():
    rules = {rule for rule, *_ in PAIRS}
    for rule in rules:
        verdicts = {same for name, _, _, same in PAIRS if name == rule}
        assert verdicts == {True, False}, rule


# (model text, gold, correct?): where the answer sits in the text matters
TEXTS = [
    # answers stated in a sentence
    ("Final Answer: The largest $n$ is 34.", "34", True),
    ("Final Answer: The largest $n$ is 34.", "35", False),
    ("Hence $x \\approx 11$.", "11", True),
    ("Hence $x \\approx 11$.", "12", False),
    ("so $x = 11$", "11", True),
    ("so $x = 11$", "1", False),
    ("The answer is: the number of ways is $\\frac{5}{2}$.", "\\frac52", True),
    ("**Final answer:** the perimeter equals 24 cm.", "24", True),
    ("**Final answer:** the perimeter equals 24 cm.", "42", False),
    # several boxed answers
    ("The roots are \\boxed{1}\\boxed{2}.", "1, 2", True),
    ("The roots are $\\boxed{1}, \\boxed{2}$.", "2, 1", True),
    ("The roots are $\\boxed{1}$ and $\\boxed{2}$.", "1,2", True),
    ("The roots are \\boxed{1, 2}.", "\\{1, 2\\}", True),
    ("The roots are $\\boxed{1}, \\boxed{2}$.", "1, 3", False),
    ("The roots are \\boxed{1}\\boxed{2}.", "1", False),
    ("The answers are $x = 1$ and $x = 3$.", "1, 3", True),
    ("So the solutions are $x = 2$ and $x = -3$.", "-3, 2", True),
    ("So the solutions are $x = 2$ and $x = -3$.", "2", False),
    ("Checking both, we get $x = 2$ and $x = -3$.", "-3, 2", True),
    ("Checking both, we get $x = 2$ and $x = -3$.", "-3", False),
    ("The final answer is $\\boxed{\\text{the answer is } 5}$.", "7", False),
    ("The answer is $x < 1$ or $x > 2$.", "(-\\infty,1)\\cup(2,\\infty)", True),
    ("The answer is $x < 1$ or $x > 2$.", "(-\\infty,1)", False),
    # a boxed value restated as an equal form next to it counts once
    ("so $d = \\boxed{15\\frac{39}{40}}$, or $\\boxed{\\frac{639}{40}}$ inches.", "\\frac{639}{40}", True),
    ("so $AF = \\boxed{\\frac{25}{13}} = \\boxed{1\\frac{12}{13}}$.", "\\frac{25}{13}", True),
    # several boxed values anywhere in the text, when the gold lists several values
    ("$a = \\boxed{2}$, and later, much later in the text, $b = \\boxed{5}$.", "2, 5", True),
    ("$a = \\boxed{2}$, and later, much later in the text, $b = \\boxed{5}$.", "2, 6", False),
    # no false credit
    ("The code on the box is AZYUK2A", "2", False),
    ("The maximum is \\boxed{1}.\n\nLet me reconsider the constraint.\n\nThe final answer is \\boxed{\\frac12}.", "\\frac12", False),
    ("The maximum is \\boxed{1}.\n\nLet me reconsider the constraint.\n\nThe final answer is \\boxed{\\frac12}.", "1", False),
    ("The maximum is \\boxed{1}.\n\nDouble-checking gives the same.\n\nThe final answer is \\boxed{1}.", "1", True),
    ("The answer is $\\boxed{\\frac12}$, that is \\boxed{0.5}.", "\\frac12", True),
]


@pytest.mark.parametrize("text, gold, expected", TEXTS)
def test_answer_in_text(text, gold, expected):
    assert is_correct(text, gold, "math") is expected


@pytest.mark.parametrize("text, gold, expected", [
    ("So the answer is 3e8.", "300000000", True),
    ("So the answer is 3e8.", "30000000", False),
    ("The code on the box is AZYUK2A", "2", False),
    ("She has \\boxed{12} apples, then buys more: \\boxed{15}.", "15", False),
    ("She has 12 apples, so the answer is \\boxed{15}.", "15", True),
])
def test_gsm8k_forms(text, gold, expected):
    assert is_correct(text, gold, "gsm8k") is expected


def test_sentence_answers_are_reduced_to_the_value():
    assert extract_answer("Final Answer: The largest $n$ is 34.", "math") == "34"
    assert extract_answer("The answer is $x < 1$ or $x > 2$.", "math") == "x < 1 or x > 2"


# identical but huge answers are right; different ones are not, and none takes long
_DIGITS = "1" + "2" * 20_000
_MATRIX = "\\begin{pmatrix}" + " \\\\ ".join(" & ".join(str(60 * i + j) for j in range(60)) for i in range(60)) + "\\end{pmatrix}"


@pytest.mark.timeout(30)
@pytest.mark.parametrize("answer, other", [
    (_DIGITS, _DIGITS[:-1] + "3"),
    (_DIGITS + ".5", _DIGITS + ".25"),
    (_MATRIX, _MATRIX.replace("3599", "3598")),
    (_MATRIX, _MATRIX.replace(" 7 ", " \\frac{14}{2} ")),
])
def test_huge_answers(answer, other):
    same = other.replace("\\frac{14}{2}", "7") == answer
    for dataset in (("gsm8k", "math") if answer[0].isdigit() else ("math",)):
        assert answers_match(answer, answer, dataset)
        assert is_correct(f"The answer is $\\boxed{{{answer}}}$.", answer, dataset)
        assert is_correct(f"The answer is $\\boxed{{{other}}}$.", answer, dataset) is same
        assert answers_match(other, answer, dataset) is same
    if answer[0].isdigit():
        assert is_correct(f"The answer is {answer}.", answer, "gsm8k")


def test_graded_says_which_path_decided():
    assert grade("The answer is $\\frac{2}{4}$.", "\\frac12", "math").decided_by == "rule"
    assert grade("The answer is $\\sin(\\pi/6)$.", "\\frac12", "math").decided_by == "rule"  # read numerically
    assert grade("The answer is $\\binom{5}{2}$.", "10", "math").decided_by == "symbolic"
    rearranged = grade("The answer is $x + y = 5$.", "y = 5 - x", "math")
    assert (rearranged.correct, rearranged.decided_by) == (True, "rule")
    undecided = grade("The answer is $10^{y} - x = 0$.", "y = \\log_{10} x", "math")
    assert (undecided.correct, undecided.settled) == (False, False)

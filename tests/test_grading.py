"""Table-driven grader cases: (model text, gold answer, expected verdict), both verdicts."""
from __future__ import annotations

import pytest

from lema_plugin.grading import answers_match, extract_answer, extract_strict, gold_answer, is_correct, last_boxed

GSM8K = [
    # explicit statements
    ("So she makes 18 dollars.\nThe answer is 18.", "18", True),
    ("The answer is 18", "18", True),
    ("The answer is: 18.", "18", True),
    ("The answer is 17.", "18", False),
    ("The final answer is 42.", "42", True),
    ("Final Answer: 42", "42", True),
    ("#### 72", "72", True),
    ("Natalia sold 48/2 = 24 clips in May.\n#### 72", "72", True),
    ("Natalia sold 48/2 = 24 clips in May.\n#### 24", "72", False),
    ("She earns 10 per hour.\nA: 10", "10", True),
    ("The answer is \\boxed{18}.", "18", True),
    ("Therefore the total is $\\boxed{1,200}$.", "1200", True),
    ("**Answer:** 35", "35", True),
    ("**The answer is 35.**", "35", True),
    # commas, currency, units, percent, decimals
    ("The answer is 1,200.", "1200", True),
    ("The answer is $1,200.", "1200", True),
    ("The answer is \\$1,200.00.", "1200", True),
    ("The answer is 1,234,567.", "1234567", True),
    ("The answer is 1,200.", "120", False),
    ("The answer is £5.", "5", True),
    ("The answer is €12.50.", "12.5", True),
    ("The answer is 18 dollars.", "18", True),
    ("The answer is 3.5 hours.", "3.5", True),
    ("The answer is 3.5 hours.", "35", False),
    ("The answer is 25%.", "25", True),
    ("The answer is 25 percent.", "25", True),
    ("The answer is 0.5.", "0.5", True),
    ("The answer is .5", "0.5", True),
    ("The answer is 1/2.", "0.5", True),
    ("The answer is 5.00", "5", True),
    ("The answer is -4.", "-4", True),
    ("The answer is 4.", "-4", False),
    ("The answer is \u22124.", "-4", True),
    ("The answer is 5 + 3 = 8.", "8", True),
    ("The answer is 5 + 3 = 8.", "5", False),
    ("The answer is twelve.", "12", True),
    ("The answer is 12 apples and 3 pears.", "12", True),
    ("The answer is $\\frac{1}{2}$.", "0.5", True),
    # the final statement wins; hallucinated follow-up questions are ignored
    ("The answer is 5.\nWait, I made an error. The answer is 6.", "6", True),
    ("The answer is 5.\nWait, I made an error. The answer is 6.", "5", False),
    ("The answer is 18.\n\nQuestion: Tom has 3 apples. How many?\nAnswer: The answer is 3.", "18", True),
    ("The answer is 18.\n\nQuestion: Tom has 3 apples. How many?\nAnswer: The answer is 3.", "3", False),
    ("The answer is 18.\n\nQ: What is 2+2?\nA: The answer is 4.", "18", True),
    ("She has 9 eggs.\n\nQ: next one\nA: 4", "9", True),
    ("The answer is 7.\nProblem: another one. The answer is 2.", "7", True),
    ("The answer is 5.\n\nQuestion 2: Tom has 9 pens. The answer is 9.", "5", True),
    ("Question 1: yes.\nQuestion 2: no, 4 of them.\nSo the total is 7.\nThe answer is 7.", "7", True),
    ("The answer is: **5**", "5", True),
    ("The answer is:\n\n18", "18", True),
    ("The answer is $18 per day.", "18", True),
    ("The answer is (9 x 2) = 18", "18", True),
    # fallbacks when nothing is stated explicitly
    ("She has 9 eggs and sells them for 2 each, making 18", "18", True),
    ("She has 9 eggs and sells them for 2 each, making 18 in total.", "9", False),
    ("The total cost is **$45**.", "45", True),
    ("No number here at all.", "3", False),
    ("", "3", False),
    ("The answer is unclear.", "0", False),
    # the gold may be a full rationale
    ("The answer is 18.", "She makes 9 * 2 = $<<9*2=18>>18.\n#### 18", True),
    ("The answer is 19.", "She makes 9 * 2 = $<<9*2=18>>18.\n#### 18", False),
    ("The answer is 1500.", "#### 1,500", True),
    ("The answer is 10 = 2 * 5 hours", "10", False),
    ("The answer is 2 * 5 = 10 hours", "10", True),
    ("Step 1: 4 + 4 = 8.\nStep 2: 8 * 3 = 24.\nThe answer is 24.", "24", True),
    ("Step 1: 4 + 4 = 8.\nStep 2: 8 * 3 = 24.\nThe answer is 24.", "8", False),
]

MATH = [
    # a closing formula followed by sign-off chatter (no further number or math)
    ("so the probability is $\\frac{1}{48}$. Hope this helps!", "\\frac{1}{48}", True),
    ("So $\\frac{1}{48}$. Then we add 3.", "\\frac{1}{48}", False),
    # boxes and answer statements
    ("So $x = \\boxed{5}$.", "5", True),
    ("So $x = \\boxed{5}$.", "6", False),
    ("Thus the answer is $\\boxed{\\frac{1}{2}}$.", "\\frac{1}{2}", True),
    ("We get \\fbox{7}.", "7", True),
    ("nested: \\boxed{\\frac{\\sqrt{3}}{2}}", "\\frac{\\sqrt{3}}{2}", True),
    ("nested: \\boxed{\\frac{\\sqrt{3}}{2}}", "\\frac{\\sqrt{2}}{2}", False),
    ("first \\boxed{1} then \\boxed{2}", "2", False),  # two different boxed answers: no credit
    ("first \\boxed{1} then \\boxed{2}", "1", False),
    ("The answer is \\boxed 5", "5", True),
    ("Final Answer: The final answer is $\\frac{3}{4}$. I hope it is correct.", "\\frac34", True),
    ("Final Answer: The final answer is $\\frac{3}{4}$. I hope it is correct.", "\\frac43", False),
    ("The answer is $\\frac{1}{2}$.", "\\frac{1}{2}", True),
    ("The answer is: $-3$", "-3", True),
    ("The answer is \\(2\\sqrt{2}\\).", "2\\sqrt{2}", True),
    ("The answer is \\[\\frac{\\pi}{4}\\]", "\\frac{\\pi}{4}", True),
    ("**Final Answer**\n\\[\n\\boxed{12}\n\\]", "12", True),
    ("**Final Answer**\n\n$\\boxed{13}$", "12", False),
    ("### Final Answer\n$$\\boxed{9}$$", "9", True),
    ("The answer is **42**.", "42", True),
    ("The answer is 42.\n\nProblem: Compute 1+1.\nThe answer is 2.", "42", True),
    ("The answer is 42.\n\nQuestion: Compute 1+1.\nThe answer is 2.", "2", False),
    # fractions and decimals
    ("The answer is $\\dfrac{1}{2}$.", "\\frac{1}{2}", True),
    ("The answer is $\\tfrac{1}{2}$.", "\\frac12", True),
    ("The answer is $0.5$.", "\\frac{1}{2}", True),
    ("The answer is 1/2.", "\\frac{1}{2}", True),
    ("The answer is $.5$.", "\\frac12", True),
    ("The answer is $0.50$.", "\\frac{1}{2}", True),
    ("The answer is $0.51$.", "\\frac{1}{2}", False),
    ("The answer is $0.33$.", "\\frac{1}{3}", False),
    ("The answer is $0.\\overline{3}$.", "\\frac{1}{3}", True),
    ("The answer is $\\frac{2}{4}$.", "\\frac{1}{2}", True),
    ("The answer is $-\\frac{3}{4}$.", "\\frac{-3}{4}", True),
    ("The answer is $-\\frac{3}{4}$.", "\\frac{3}{4}", False),
    ("The answer is $2\\frac{1}{4}$.", "\\frac{9}{4}", True),
    ("The answer is $2.25$.", "2\\frac{1}{4}", True),
    ("The answer is $\\frac94$.", "\\frac{9}{4}", True),
    # normalization: text, units, degrees, percent, thousands, variables, spacing
    ("The answer is $5\\text{ cm}$.", "5", True),
    ("The answer is 5 cm.", "5", True),
    ("The answer is $12\\text{ square units}$.", "12", True),
    ("The answer is $16 \\text{ cm}^2$.", "16", True),
    ("The answer is $30^\\circ$.", "30", True),
    ("The answer is $30^{\\circ}$.", "30", True),
    ("The answer is 30 degrees.", "30", True),
    ("The answer is $30^\\circ$.", "60", False),
    ("The answer is $50\\%$.", "50", True),
    ("The answer is 50%.", "50\\%", True),
    ("The answer is $\\$18.90$.", "18.90", True),
    ("The answer is $1,\\!000$.", "1000", True),
    ("The answer is $10{,}000$.", "10000", True),
    ("The answer is 1,000,000.", "1000000", True),
    ("The answer is $x = 3$.", "3", True),
    ("The answer is $x = 3$.", "4", False),
    ("The answer is $k=-2$.", "-2", True),
    ("The answer is $\\text{(C)}$.", "\\text{(C)}", True),
    ("The answer is (C).", "\\text{(C)}", True),
    ("The answer is (B).", "\\text{(C)}", False),
    ("The answer is $\\text{Tuesday}$.", "\\text{Tuesday}", True),
    ("The answer is Tuesday.", "\\text{Tuesday}", True),
    ("The answer is Monday.", "\\text{Tuesday}", False),
    ("The answer is $\\left( 1, 2 \\right)$.", "(1,2)", True),
    ("The answer is $3\\sqrt{2}$.", "3 \\sqrt 2", True),
    ("The answer is $\\sqrt3$.", "\\sqrt{3}", True),
    ("The answer is $\\frac{\\sqrt{3}}{2}$.", "\\dfrac{\\sqrt3}{2}", True),
    ("The answer is $1001_2$.", "9", True),
    ("The answer is $1001_{2}$.", "1001_2", True),
    ("The answer is $1011_2$.", "9", False),
    ("The answer is $\\displaystyle \\frac{1}{2}$.", "\\frac{1}{2}", True),
    ("The answer is $\\$1.50$.", "1.5", True),
    ("The answer is $x \\in [2, 5]$.", "[2,5]", True),
    ("The answer is $y = 2x + 3$.", "2x+3", True),
    ("The answer is $y = 2x + 3$.", "2x-3", False),
    ("Therefore, the answer is $\\frac{a+b}{2}$, as required.", "\\frac{b+a}{2}", True),
    ("The answer is $\\frac{1}{2}\\pi$.", "\\frac{\\pi}{2}", True),
    ("The answer is 3, 4.", "4,3", True),
    ("The answer is 3.", "3,4", False),
    # tuples, intervals, sets, lists, matrices
    ("The answer is $(1, 2)$.", "(1,2)", True),
    ("The answer is $(2, 1)$.", "(1,2)", False),
    ("The answer is $(1, \\frac{1}{2})$.", "(1, 0.5)", True),
    ("The answer is $(1, 2, 3)$.", "(1,2)", False),
    ("The answer is $[0, 1)$.", "[0,1)", True),
    ("The answer is $[0, 1]$.", "[0,1)", False),
    ("The answer is $(0, 1]$.", "[0,1]", False),
    ("The answer is $(-\\infty, 3]$.", "(-\\infty,3]", True),
    ("The answer is $(-\\infty, 3)$.", "(-\\infty,3]", False),
    ("The answer is $(-\\infty, 1) \\cup (2, \\infty)$.", "(-\\infty,1)\\cup(2,\\infty)", True),
    ("The answer is $(2, \\infty) \\cup (-\\infty, 1)$.", "(-\\infty,1)\\cup(2,\\infty)", True),
    ("The answer is $(-\\infty, 1] \\cup (2, \\infty)$.", "(-\\infty,1)\\cup(2,\\infty)", False),
    ("The answer is $\\{1, 2, 3\\}$.", "\\{3,2,1\\}", True),
    ("The answer is $\\{1, 2\\}$.", "\\{1,2,3\\}", False),
    ("The solutions are $\\boxed{1, -2}$.", "-2, 1", True),
    ("The solutions are $\\boxed{1, -2}$.", "-2, 2", False),
    ("The answer is $x = 1, x = -2$.", "1,-2", True),
    ("The answer is 2 and 3.", "2, 3", True),
    ("The answer is $\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}$.", "\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}", True),
    ("The answer is $\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}$.", "\\begin{pmatrix} 2 \\\\ 1 \\end{pmatrix}", False),
    ("The answer is $\\begin{pmatrix} 1/2 \\\\ -3 \\end{pmatrix}$.", "\\begin{pmatrix} \\frac{1}{2} \\\\ -3 \\end{pmatrix}", True),
    ("The answer is $\\begin{bmatrix} 1 & 0 \\\\ 0 & 1 \\end{bmatrix}$.", "\\begin{pmatrix} 1 & 0 \\\\ 0 & 1 \\end{pmatrix}", True),
    ("The answer is $\\begin{pmatrix} 1 & 0 \\\\ 0 & 1 \\end{pmatrix}$.", "\\begin{pmatrix} 1 & 0 \\\\ 1 & 1 \\end{pmatrix}", False),
    ("The answer is $\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}$.", "(1, 2)", False),
    # symbolic equivalence
    ("The answer is $\\frac{1}{\\sqrt{2}}$.", "\\frac{\\sqrt{2}}{2}", True),
    ("The answer is $\\sqrt{50}$.", "5\\sqrt{2}", True),
    ("The answer is $\\sqrt{48}$.", "5\\sqrt{2}", False),
    ("The answer is $2\\pi$.", "\\pi \\cdot 2", True),
    ("The answer is $\\frac{\\pi}{2}$.", "\\frac{\\pi}{3}", False),
    ("The answer is $(x+1)^2$.", "x^2+2x+1", True),
    ("The answer is $(x+1)^2$.", "x^2+1", False),
    ("The answer is $x^2 - 1$.", "(x-1)(x+1)", True),
    ("The answer is $2y + 1$.", "2x+1", False),
    ("The answer is $\\frac{x}{2}$.", "0.5x", True),
    ("The answer is $10^{3}$.", "1000", True),
    ("The answer is $2^{10}$.", "1024", True),
    ("The answer is $2^{10}$.", "1000", False),
    ("The answer is $\\sqrt[3]{27}$.", "3", True),
    ("The answer is $1+2i$.", "1+2i", True),
    ("The answer is $1-2i$.", "1+2i", False),
    ("The answer is $\\infty$.", "\\infty", True),
    ("The answer is $-\\infty$.", "\\infty", False),
    ("The answer is $3.14$.", "\\pi", False),
    ("The answer is $10^{20}+1$.", "10^{20}", False),
    ("The answer is $\\frac{x^2-1}{x-1}$.", "x+1", True),
    ("The answer is $3xy^2$.", "3y^2x", True),
    ("The answer is $3xy^2$.", "3x^2y", False),
    ("The answer is $x^23$.", "3x^2", True),
    ("The answer is $\\frac{e^2}{2}$.", "0.5e^2", True),
    ("The answer is $2+3i$.", "3i+2", True),
    ("The answer is $2+3i$.", "2-3i", False),
    # no answer
    ("I could not solve this problem.", "5", False),
    ("The answer is the sum of the two roots of the quadratic.", "5", False),
    ("", "5", False),
]


@pytest.mark.parametrize("text, gold, expected", GSM8K)
def test_gsm8k(text, gold, expected):
    assert is_correct(text, gold, "gsm8k") is expected


@pytest.mark.parametrize("text, gold, expected", MATH)
def test_math(text, gold, expected):
    assert is_correct(text, gold, "math") is expected


def test_tables_are_large_and_balanced():
    cases = GSM8K + MATH
    assert len(cases) >= 150
    assert sum(1 for *_, expected in cases if not expected) >= 50


@pytest.mark.parametrize(
    "text, expected",
    [
        ("The answer is $1,200.", "1200"),
        ("The answer is 0.50", "0.5"),
        ("The answer is 1/3", "1/3"),
        ("The answer is -7.", "-7"),
        ("#### 5", "5"),
        ("nothing", None),
    ],
)
def test_gsm8k_extraction_is_a_canonical_number(text, expected):
    assert extract_answer(text, "gsm8k") == expected


@pytest.mark.parametrize(
    "text, expected",
    [
        ("So $x = \\boxed{\\frac{1}{2}}$.", "\\frac{1}{2}"),
        ("The answer is $(1, 2)$.", "(1, 2)"),
        ("Final Answer: The final answer is $7$. I hope it is correct.", "7"),
        ("The answer is 3.5 hours.", "3.5 hours"),
        ("nothing to see", None),
    ],
)
def test_math_extraction_keeps_the_latex(text, expected):
    assert extract_answer(text, "math") == expected


@pytest.mark.parametrize(
    "text, dataset, expected",
    [
        ("The answer is 18.", "gsm8k", "18"),
        ("The final answer is 18.", "gsm8k", "18"),
        ("She makes 18 dollars.", "gsm8k", None),
        ("#### 18", "gsm8k", None),
        ("**18**", "gsm8k", None),
        ("so it is \\boxed{18}", "gsm8k", "18"),
        ("The answer is twelve", "gsm8k", None),
        ("The answer is $\\frac{1}{2}$.", "math", "\\frac{1}{2}"),
        ("Thus $x = \\boxed{3}$.", "math", "3"),
        ("Thus $x = 3$.", "math", None),
        ("The answer is 7.\nQuestion: more?\nThe answer is 8.", "gsm8k", "7"),
    ],
)
def test_extract_strict_only_credits_the_required_format(text, dataset, expected):
    assert extract_strict(text, dataset) == expected


@pytest.mark.parametrize(
    "text, expected",
    [
        ("\\boxed{5}", "5"),
        ("a \\boxed{1} b \\boxed{\\frac{a}{b}} c", "\\frac{a}{b}"),
        ("\\boxed{\\{1, 2\\}}", "\\{1, 2\\}"),
        ("\\fbox{x^{2}}", "x^{2}"),
        ("\\boxed{1} and later \\fbox{2}", "2"),
        ("\\boxed {7}", "7"),
        ("\\boxed 7.", "7"),
        ("unclosed \\boxed{12", None),
        ("no box", None),
        ("", None),
    ],
)
def test_last_boxed(text, expected):
    assert last_boxed(text) == expected


def test_gold_answer_reads_rationales():
    assert gold_answer("She has 3.\n#### 1,234", "gsm8k") == "1234"
    assert gold_answer("so it is $\\boxed{\\frac{1}{2}}$.", "math") == "\\frac{1}{2}"
    assert gold_answer("7", "math500") == "7"


def test_answers_match_takes_extracted_answers():
    assert answers_match("1200", "1,200", "gsm8k")
    assert answers_match("\\dfrac{1}{2}", "0.5", "math")
    assert not answers_match(None, "3", "math")
    assert not answers_match("3", None, "gsm8k")
    assert not answers_match("", "", "math")


def test_unknown_dataset_is_an_error():
    with pytest.raises(ValueError, match="unknown dataset"):
        is_correct("The answer is 1", "1", "mmlu")

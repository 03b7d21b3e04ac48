"""official_match, the official LeMa scoring (the paper-comparable metric), against the robust
views beside it: each case where they part, and the protocol's reading rules one by one."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from lema_plugin.grading.official import _arithmetic, gsm8k_value, math_answer, normalize, official_match

TASKS = Path(__file__).resolve().parent.parent / "lm_eval_tasks" / "lema"


def _task_utils():
    spec = importlib.util.spec_from_file_location("lema_task_utils_official", TASKS / "utils.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# (completion, gold, (official_match, strict_match, exact_match), why they part)
GSM8K = [
    ("9 * 2 = 18 dollars.\nthe answer is 18.", "18", (0, 1, 1),
     "the official reading looks for 'The answer is ' with a capital T"),
    ("She makes $\\boxed{18}$ dollars.", "18", (0, 1, 1),
     "no 'The answer is' sentence: the official GSM8K reading finds no answer; a final box is enough for strict"),
    ("The final answer is 18.", "18", (0, 1, 1),
     "'final answer is' does not contain 'The answer is '"),
    ("9 * 2 = 18.\nThe answer is 18.\nQuestion: What is 2 + 3?\nAnswer: The answer is 5.", "18", (0, 1, 1),
     "the official cut needs a blank line before 'Question: ': it reads the invented follow-up's answer"),
    ("9 * 2 = 18.\nThe answer is 18.\n\nQuestion: What is 2 + 3?\nAnswer: The answer is 5.", "18", (1, 1, 1),
     "after a blank line the follow-up is cut off, as the robust grader cuts it"),
    ("She makes 9 * 2 dollars.\nThe answer is 2 + 16.", "18", (1, 0, 0),
     "the official reading evaluates an arithmetic expression; the robust grader compares it as written"),
    ("The answer is 9 * 2 = 18.", "18", (1, 1, 1), "both keep the value after '='"),
    ("The answer is: $1,800.00", "1800", (1, 1, 1), "'The answer is: ', dollars, commas, cents"),
    ("The answer is 18 dollars per day.", "18", (1, 1, 1), "letters dropped"),
    ("The answer is 18.5.", "18", (0, 0, 0), "a different value"),
]

MATH = [
    ("The answer is $\\frac{2}{4}$.", "\\frac12", (0, 1, 1),
     "string equality after normalization: 2/4 is not written 1/2"),
    ("The answer is $\\sqrt8$.", "2\\sqrt2", (0, 1, 1), "\\sqrt{8} and 2\\sqrt{2} differ as strings"),
    ("The ratio $PQ:QR$ is $1:2$, so we get $\\boxed{\\frac12}$.", "\\frac12", (0, 1, 1),
     "the official MATH reading cuts the completion at the first 'Q:' wherever it is"),
    ("So $x = \\fbox{5}$.", "5", (0, 1, 1), "only \\boxed{...} is unwrapped, not \\fbox"),
    ("The answer is $\\frac{1}{2}$, since 1/2 of the area is shaded.", "\\frac12", (0, 1, 1),
     "the official reading takes the whole rest of the text after 'The answer is '"),
    ("The answer is 0.5.", "\\frac12", (1, 1, 1), "0.5 is rewritten as \\frac{1}{2}"),
    ("The answer is 3/4.", "\\frac{3}{4}", (1, 1, 1), "a/b is rewritten as \\frac{a}{b}"),
    ("The answer is $x = 5$.", "5", (1, 1, 1), "a short 'x =' prefix is dropped"),
    ("The answer is $10\\text{ cm}$.", "10", (1, 1, 1), "a unit after '\\text{ ' is dropped"),
    ("The answer is $\\left(1, 2\\right)$.", "(1,2)", (1, 1, 1), "\\left, \\right and spaces dropped"),
    ("The answer is $\\dfrac{1}{2}$.", "\\frac12", (1, 1, 1), "dfrac is frac; \\frac12 is \\frac{1}{2}"),
]


@pytest.mark.parametrize("dataset, text, gold, expected, why",
                         [("gsm8k", *case) for case in GSM8K] + [("math", *case) for case in MATH],
                         ids=[f"gsm8k-{i}" for i in range(len(GSM8K))] + [f"math-{i}" for i in range(len(MATH))])
def test_the_tasks_score_official_strict_and_exact(dataset, text, gold, expected, why):
    """The three metrics as the lm-eval tasks log them, on the same completion."""
    doc = {"id": "x", "dataset": dataset, "question": "q", "answer": gold, "solution": "", "level": None, "subject": None}
    scores = _task_utils().process_results(doc, [text])
    assert (scores["official_match"], scores["strict_match"], scores["exact_match"]) == expected, why


def test_the_math_gold_is_read_from_the_gold_solution_as_the_official_labels_are():
    solution = "The shaded part is half the square, so the answer is $\\boxed{\\dfrac{1}{2}}$."
    assert official_match("The answer is $\\frac12$.", "\\frac{1}{2}", "math", solution)
    # the gold is the solution's box, normalized: 2/4 still does not match it
    assert not official_match("The answer is $\\frac{2}{4}$.", "\\frac{1}{2}", "math", solution)
    # MATH-500 is scored as MATH
    assert official_match("The answer is 0.5.", "\\frac12", "math500")


@pytest.mark.parametrize("text, value", [
    ("The answer is 1,234.", 1234.0),
    ("The answer is $1,234.50.", 1234.5),
    ("The answer is £5.", 5.0),
    ("The answer is 5 - 2 = 3", 3.0),
    ("The answer is <<4*5=20>>20.", 20.0),
    ("The answer is 3:30 pm.", 3.0),
    ("The answer is 25%.", 25.0),
    ("The answer is 25% more.", 25.0),
    ("The answer is 5/.", 5.0),
    ("The answer is 7/2.", 3.5),
    ("The answer is (3+4)*2.", 14.0),
    ("The answer is -5.", -5.0),
    ("The answer is \"12\".", 12.0),
    ("The answer is 2**3.", 8.0),
    ("The answer is 25% of 40.", None),   # letters dropped, '%' not last: no answer
    ("The answer is 08+1.", None),        # not a Python number
    ("The answer is 1/0.", None),
    ("The answer is 9**9**9**9.", None),  # too large to compute: no answer
    ("The answer is .", None),
    ("the answer is 5.", None),
    ("I do not know.", None),
    ("The answer is 4.\n\nQ: what next?\nThe answer is 9.", 4.0),
])
def test_gsm8k_reading(text, value):
    assert gsm8k_value(text) == value


def test_gsm8k_expressions_are_evaluated_never_executed():
    assert _arithmetic("3*(2+1)-4/2") == 7.0
    for text in ("().__class__", "[1][0]+1", "f(1)+1", "a+1"):
        with pytest.raises(ValueError):
            _arithmetic(text)


@pytest.mark.parametrize("raw, normalized", [
    ("\\frac12", "\\frac{1}{2}"),
    ("\\frac1{72}", "\\frac{1}{72}"),
    ("\\tfrac{3}{4}", "\\frac{3}{4}"),
    ("\\sqrt3+1", "\\sqrt{3}+1"),
    ("\\left( 1, 2 \\right)", "(1,2)"),
    ("45^\\circ", "45"),
    ("\\$5", "5"),
    ("50\\%", "50"),
    (".5", "\\frac{1}{2}"),
    ("k = 3", "3"),
    ("x+y = 3", "x+y=3"),   # a long left side is kept
    ("7/8", "\\frac{7}{8}"),
    ("7/8/9", "7/8/9"),
    ("5\\text{ inches}", "5"),
])
def test_hendrycks_normalization(raw, normalized):
    assert normalize(raw) == normalized


def test_what_the_original_code_cannot_read_is_no_answer():
    for raw in ("\\frac", "3\\sqrt", "5\\text{ m}\\text{ s}"):
        with pytest.raises((IndexError, ValueError)):
            normalize(raw)
    assert math_answer("The answer is $\\frac$.") == ""
    assert math_answer("So the answer is \\boxed 5.") == ""
    assert math_answer("The answer is $\\boxed{\\frac{1}{3}}$.") == "\\frac{1}{3}"


def test_the_run_summary_names_official_match_as_the_paper_comparable_score():
    from lema_plugin.train_eval import score_line

    metrics = {"alias": "lema_gsm8k", "exact_match,none": 0.5, "strict_match,none": 0.25, "official_match,none": 0.125,
               "official_match_stderr,none": 0.01}
    assert score_line(metrics) == ("official_match 0.125 (paper-comparable: the official LeMa scoring), strict_match "
                                   "0.250, exact_match 0.500; strict_match and exact_match are the robust views")
    # results written before official_match existed still show, without claiming to be comparable
    assert score_line({"exact_match,none": 0.5, "strict_match,none": 0.25}) == "strict_match 0.250, exact_match 0.500"

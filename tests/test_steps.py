"""Step splitting: table-driven cases for each shape of model output."""
from __future__ import annotations

import json

import pytest

from lema_plugin.steps import render_steps, split_steps

CASES = [
    pytest.param(
        "Natalia sold 48/2 = 24 clips in May.\nNatalia sold 48+24 = 72 clips in all.\nThe answer is 72.",
        ["Natalia sold 48/2 = 24 clips in May.", "Natalia sold 48+24 = 72 clips in all.", "The answer is 72."],
        id="one-step-per-line",
    ),
    pytest.param(
        "Weng earns 12/60 = $0.2 per minute. Working 50 minutes, she earned 0.2 x 50 = $10. The answer is 10.",
        ["Weng earns 12/60 = $0.2 per minute.", "Working 50 minutes, she earned 0.2 x 50 = $10.", "The answer is 10."],
        id="one-paragraph-numbers-whole",
    ),
    pytest.param(
        "Step 1: Half of 48 is 48/2 = 24.\nThat is May.\nStep 2: Add 48 + 24 = 72.",
        ["Half of 48 is 48/2 = 24. That is May.", "Add 48 + 24 = 72."],
        id="existing-labels-span-lines",
    ),
    pytest.param(
        "Let's solve it.\n**Step 1:** x = 3.5.\n### Step 2. Then 2x = 7.",
        ["Let's solve it.", "x = 3.5.", "Then 2x = 7."],
        id="markdown-labels-and-preamble",
    ),
    pytest.param(
        "Step 1: a = 2. Step 2: b = 3. Step 3: a + b = 5.",
        ["a = 2.", "b = 3.", "a + b = 5."],
        id="inline-labels",
    ),
    pytest.param(
        "- First, 3 apples.\n* Then 4.5 pears.\n1. Third item. More here.\n2) last one",
        ["First, 3 apples.", "Then 4.5 pears.", "Third item.", "More here.", "last one"],
        id="bullets-and-numbered-lists",
    ),
    pytest.param(
        "We expand:\n$$\n(a+b)^2 = a^2 + 2ab + b^2. Then\n$$\nSo the sum is 9.",
        ["We expand: $$ (a+b)^2 = a^2 + 2ab + b^2. Then $$", "So the sum is 9."],
        id="display-math-joins-colon-line",
    ),
    pytest.param(
        "First part.\n\\[ x = 1. Y = 2 \\]\n\\begin{align}\na &= 1 \\\\\nb &= 2\n\\end{align}\nDone.",
        ["First part.", "\\[ x = 1. Y = 2 \\]", "\\begin{align} a &= 1 \\\\ b &= 2 \\end{align}", "Done."],
        id="display-math-blocks-whole",
    ),
    pytest.param(
        "Since $x = 2. Y$ holds, we stop. It costs approx. 5 dollars, e.g. Cheap! Is it? Yes.",
        ["Since $x = 2. Y$ holds, we stop.", "It costs approx. 5 dollars, e.g. Cheap!", "Is it?", "Yes."],
        id="no-cut-in-inline-math-or-abbreviation",
    ),
    pytest.param(
        "He pays $1,000.50 in total (i.e. 2 x 500.25). So he has 3.14 left.",
        ["He pays $1,000.50 in total (i.e. 2 x 500.25).", "So he has 3.14 left."],
        id="money-and-parentheses",
    ),
    pytest.param("   \n\n", [], id="blank"),
]


@pytest.mark.parametrize("text, expected", CASES)
def test_split_steps(text, expected):
    assert split_steps(text) == expected


@pytest.mark.parametrize("text, expected", CASES)
def test_render_then_split_round_trips(text, expected):
    steps = split_steps(text)
    rendered = render_steps(steps)
    assert rendered.count("\n") == max(len(steps) - 1, 0)
    assert split_steps(rendered) == steps


def test_render_numbers_from_one():
    assert render_steps(["a = 1.", "b = 2."]) == "Step 1: a = 1.\nStep 2: b = 2."
    assert render_steps([]) == ""


def test_real_gsm8k_rationales_keep_every_line(shared_data):
    """Each gold GSM8K line is one step (the lines hold no sentence breaks in these rows)."""
    with open(shared_data / "gsm8k" / "train.jsonl", encoding="utf-8") as handle:
        rows = [json.loads(next(handle)) for _ in range(20)]
    for row in rows:
        lines = [line for line in row["answer"].split("\n") if line.strip()]
        steps = split_steps(row["answer"])
        assert len(steps) >= len(lines)
        assert " ".join(steps).split() == " ".join(lines).split()

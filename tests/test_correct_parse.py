"""Reading corrector replies: the canonical format, the ways real replies drift, and rejects."""
from __future__ import annotations

import pytest

from lema_plugin.correct.parse import UnparseableReply, parse_correction

CANONICAL = """Incorrect Step: Step 2.
Explanation: She has three books fewer than Lamont, not three more.
Correct Solution:
Step 2: Loris has 40 - 3 = 37 books.
Step 3: Together they have 20 + 40 + 37 = 97 books. The answer is 97."""

SOLUTION_2_3 = "Step 2: Loris has 40 - 3 = 37 books.\nStep 3: Together they have 20 + 40 + 37 = 97 books. The answer is 97."
WHY = "She has three books fewer than Lamont, not three more."

# (case name, reply, incorrect_step, explanation, corrected_solution)
WELL_FORMED = [
    ("canonical", CANONICAL, 2, WHY, SOLUTION_2_3),
    (
        "markdown bold labels",
        f"**Incorrect Step:** Step 2\n\n**Explanation:** {WHY}\n\n**Correct Solution:**\n{SOLUTION_2_3}",
        2, WHY, SOLUTION_2_3,
    ),
    (
        "bold around the whole line, headings",
        f"**Incorrect Step: Step 2.**\n### Explanation: {WHY}\n### Correct Solution\n{SOLUTION_2_3}",
        2, WHY, SOLUTION_2_3,
    ),
    ("lower case step", f"Incorrect step: step 2\nExplanation: {WHY}\nCorrect solution:\n{SOLUTION_2_3}", 2, WHY, SOLUTION_2_3),
    ("bare number", f"Incorrect Step: 2\nExplanation: {WHY}\nCorrect Solution:\n{SOLUTION_2_3}", 2, WHY, SOLUTION_2_3),
    ("hash number", f"Incorrect Step: #2\nExplanation: {WHY}\nCorrect Solution:\n{SOLUTION_2_3}", 2, WHY, SOLUTION_2_3),
    ("number word", f"Incorrect Step: Step two.\nExplanation: {WHY}\nCorrect Solution:\n{SOLUTION_2_3}", 2, WHY, SOLUTION_2_3),
    ("ordinal", f"Incorrect step: the second step.\nExplanation: {WHY}\nCorrect Solution:\n{SOLUTION_2_3}", 2, WHY, SOLUTION_2_3),
    (
        "prose label",
        f"The first incorrect step is Step 2.\nExplanation: {WHY}\nCorrected Solution:\n{SOLUTION_2_3}",
        2, WHY, SOLUTION_2_3,
    ),
    (
        "prose without label",
        f"Step 2 is the first incorrect step.\nExplanation: {WHY}\nCorrect Solution:\n{SOLUTION_2_3}",
        2, WHY, SOLUTION_2_3,
    ),
    (
        "chatter before and after",
        f"Sure! Let me check the solution carefully.\n\n{CANONICAL}\n\nI hope this helps. Let me know if you have questions.",
        2, WHY, SOLUTION_2_3,
    ),
    (
        "missing Explanation label",
        f"Incorrect Step: Step 2. {WHY}\nCorrect Solution:\n{SOLUTION_2_3}",
        2, WHY, SOLUTION_2_3,
    ),
    (
        "missing Correct Solution label",
        f"Incorrect Step: Step 2.\nExplanation: {WHY}\n{SOLUTION_2_3}",
        2, WHY, SOLUTION_2_3,
    ),
    (
        "all on one line",
        f"Incorrect Step: Step 2. Explanation: {WHY} Correct Solution: {SOLUTION_2_3.replace(chr(10), ' ')}",
        2, WHY, SOLUTION_2_3.replace("\n", " "),
    ),
    (
        "explanation over several lines",
        "Incorrect Step: Step 2.\nExplanation: She has three books fewer\nthan Lamont, not three more.\nCorrect Solution:\n" + SOLUTION_2_3,
        2, WHY, SOLUTION_2_3,
    ),
    (
        "base model runs on into the next example",
        f"{CANONICAL}\n\nQuestion: A farmer has 51 cows.\nOriginal Solution:\nStep 1: 51 + 5 = 56.",
        2, WHY, SOLUTION_2_3,
    ),
    (
        "repeats the format after the answer",
        f"{CANONICAL}\nIncorrect Step: Step 3.\nExplanation: nothing.",
        2, WHY, SOLUTION_2_3,
    ),
    (
        "dash separator and bullets",
        f"- **Wrong step** - Step 2\n- **Reason:** {WHY}\n- **Correction:** {SOLUTION_2_3}",
        2, WHY, SOLUTION_2_3,
    ),
    (
        "math solution with boxed answer",
        "Incorrect Step: Step 1.\nExplanation: Completing the square subtracts 16, not 8.\nCorrect Solution:\n"
        "Step 1: $x^2 + 8x + 21 = (x + 4)^2 + 5$.\nStep 2: The minimum is 5. The answer is $\\boxed{5}$.\n\nAll done!",
        1, "Completing the square subtracts 16, not 8.",
        "Step 1: $x^2 + 8x + 21 = (x + 4)^2 + 5$.\nStep 2: The minimum is 5. The answer is $\\boxed{5}$.",
    ),
    (
        "no answer sentence: the solution is kept whole",
        "Incorrect Step: Step 3.\nExplanation: 16 = 2*7 + 2.\nCorrect Solution:\nStep 3: 16 = 2*7 + 2, so the remainder is $\\boxed{2}$.",
        3, "16 = 2*7 + 2.", "Step 3: 16 = 2*7 + 2, so the remainder is $\\boxed{2}$.",
    ),
    (
        "step number beyond the path is still read (verification rejects it)",
        f"Incorrect Step: Step 12.\nExplanation: {WHY}\nCorrect Solution:\n{SOLUTION_2_3}",
        12, WHY, SOLUTION_2_3,
    ),
    ("windows line ends", CANONICAL.replace("\n", "\r\n"), 2, WHY, SOLUTION_2_3),
]


@pytest.mark.parametrize("name, reply, step, explanation, solution", WELL_FORMED, ids=[c[0] for c in WELL_FORMED])
def test_reads_well_formed_and_drifted_replies(name, reply, step, explanation, solution):
    parsed = parse_correction(reply)
    assert parsed.incorrect_step == step
    assert parsed.explanation == explanation
    assert parsed.corrected_solution == solution


# (case name, reply, words the rejection reason must contain)
MALFORMED = [
    ("empty", "", "empty reply"),
    ("whitespace", "  \n\t ", "empty reply"),
    ("no step named", "The solution looks fine to me. The answer is 97.", "Incorrect Step"),
    ("label without a number", "Incorrect Step: the one with the subtraction.\nExplanation: x\nCorrect Solution:\nStep 2: y", "Incorrect Step"),
    ("a step number that is an equation", "Incorrect Step: 2 + 2 = 5\nCorrect Solution:\nStep 1: 4", "Incorrect Step"),
    ("no corrected solution", f"Incorrect Step: Step 2.\nExplanation: {WHY}", "Correct Solution"),
    ("no explanation at all", f"Incorrect Step: Step 2.\nCorrect Solution:\n{SOLUTION_2_3}", "no explanation"),
    ("empty corrected solution", f"Incorrect Step: Step 2.\nExplanation: {WHY}\nCorrect Solution:\n\n", "empty corrected solution"),
    (
        "corrected solution is only the next example",
        f"Incorrect Step: Step 2.\nExplanation: {WHY}\nCorrect Solution:\nQuestion: another one?",
        "empty corrected solution",
    ),
]


@pytest.mark.parametrize("name, reply, reason", MALFORMED, ids=[c[0] for c in MALFORMED])
def test_rejects_malformed_replies_with_a_reason(name, reply, reason):
    with pytest.raises(UnparseableReply) as info:
        parse_correction(reply)
    assert reason in str(info.value)

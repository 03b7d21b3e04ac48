"""One gold reader: every command reads a file's gold answers the same way and grades it alike.

The bug this guards: `lema import` read a gold `3/8` as `8`, so on one file `lema grade` scored
0.83 and `lema import` 0.67, right paths became mistakes and their corrections were checked
against the wrong gold.
"""
from __future__ import annotations


from click.testing import CliRunner

from lema_plugin.cli import main
from lema_plugin.correct.parse import ParsedCorrection
from lema_plugin.correct.verify import verify
from lema_plugin.grading import grade
from lema_plugin.problems import load_problems
from lema_plugin.report.figures import compute
from lema_plugin.report.gather import read_run
from lema_testing.files import write_jsonl, read_jsonl as read

# (question, gold as the file writes it, a solution text); every gold is read to the value in GOLD
LINES = [
    ("What part of the pie is left after eating 5 of 8 slices?", "3/8", "8 - 5 = 3 slices of 8. The answer is 3/8."),
    ("What share of 16 marbles is 6 marbles?", "Reasoning here.\n#### 3/8", "6/16 = 0.375. The answer is 0.375."),
    ("A jar is 3/8 full. What fraction is full?", "The answer is 3/8.", "It says so. The answer is 3/8."),
    ("What is 5 + 3?", "8", "5 + 3 = 8. The answer is 8."),  # the `8` a misread 3/8 used to equal
    ("How much is 1000 + 234?", "1,234", "1000 + 234 = 1234. The answer is 1234."),
    ("How many apples are 9 apples doubled?", "Double 9.\nA: 18", "9 * 2 = 18. The answer is 18."),
    ("How many legs do 3 birds have?", 6, "3 * 2 = 6. The answer is 6."),
    ("What share of the cake did Ann eat, 1 of 8 pieces?", "1/8", "She ate 1 of 8. The answer is 8."),  # wrong
]
GOLD = ["3/8", "3/8", "3/8", "8", "1234", "18", "6", "1/8"]
RIGHT = [True, True, True, True, True, True, True, False]


def test_every_command_reads_and_grades_the_same_file_alike(tmp_path):
    predictions = write_jsonl(tmp_path / "predictions.jsonl", [
        {"question": q, "answer": gold, "text": text, "dataset": "gsm8k"} for q, gold, text in LINES])

    # lema grade
    graded = CliRunner().invoke(main, ["grade", "--predictions", str(predictions), "--out", str(tmp_path / "grade")])
    assert graded.exit_code == 0, graded.output
    rows = read(tmp_path / "grade" / "graded.jsonl")
    assert [r["correct"] for r in rows] == RIGHT
    assert [r["gold_answer"] for r in rows] == GOLD

    # lema import: the same verdicts, the same gold stored
    imported = CliRunner().invoke(main, ["import", str(predictions), "--out", str(tmp_path / "import")])
    assert imported.exit_code == 0, imported.output
    paths = {p["question"]: p for p in read(tmp_path / "import" / "paths.jsonl")}
    assert [paths[q]["correct"] for q, _, _ in LINES] == RIGHT
    assert [paths[q]["answer"] for q, _, _ in LINES] == GOLD

    # problems from the same file (question + answer lines): the same gold
    problems = load_problems("gsm8k", data_file=predictions)
    assert [p.answer for p in problems] == GOLD
    assert [grade(text, p.answer, "gsm8k").correct for p, (_, _, text) in zip(problems, LINES)] == RIGHT

    # the correction check: a corrected solution is verified against the same gold
    verdicts = [verify(ParsedCorrection(1, "", text), ["a step"], p.answer, "gsm8k").ok
                for p, (_, _, text) in zip(problems, LINES)]
    assert verdicts == RIGHT

    # the tool's own outputs read back: paths regraded, corrections imported
    regraded = CliRunner().invoke(main, ["grade", "--predictions", str(tmp_path / "import" / "paths.jsonl"),
                                         "--out", str(tmp_path / "regrade")])
    assert regraded.exit_code == 0, regraded.output
    assert {r["question"]: r["correct"] for r in read(tmp_path / "regrade" / "graded.jsonl")} == \
        {q: right for (q, _, _), right in zip(LINES, RIGHT)}
    corrections = write_jsonl(tmp_path / "corrections.jsonl", [
        {"id": f"c{i}", "path_id": f"p{i}", "problem_id": paths[q]["problem_id"], "dataset": "gsm8k", "question": q,
         "answer": paths[q]["answer"], "corrector": "gpt4", "corrected_solution": text, "correct": True}
        for i, (q, _, text) in enumerate(LINES) if paths[q]["correct"]])
    again = CliRunner().invoke(main, ["import", str(corrections), "--out", str(tmp_path / "corrections")])
    assert again.exit_code == 4  # every correction is right again: no mistake among them
    assert all(p["correct"] for p in read(tmp_path / "corrections" / "paths.jsonl"))

    # the report shows the gold as the file wrote it
    figures = compute(read_run(tmp_path / "import"))
    shown = {question: gold for question, gold in figures.items["questions"]}
    assert shown[LINES[7][0]] == "1/8"  # the one mistake's question, its gold as written


def test_a_gold_solution_that_states_no_answer_is_no_gold_anywhere(tmp_path):
    """A `solution` field is a gold rationale: one that states no answer gives no gold, to a problem
    file and to `lema grade` alike (never its text taken for the answer)."""
    import pytest

    from lema_plugin.grading.files import grade_file
    from lema_plugin.records import RecordError

    line = {"question": "How many?", "solution": "Count them one by one", "text": "The answer is 3."}
    path = write_jsonl(tmp_path / "lines.jsonl", [line])
    with pytest.raises(RecordError, match="field 'solution'"):
        load_problems("math", data_file=path)
    report = grade_file(path, "math")
    assert report.graded == 0 and report.bad_lines == [(1, "field 'answer': missing or empty")]

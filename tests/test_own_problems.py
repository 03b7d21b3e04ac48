"""Bringing your own problems: plain question/answer and question/solution lines, their ids, the
error that shows an accepted line, and answer-only gold rationales that never become CoT."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from lema_plugin.cli import main
from lema_plugin.export import build_dataset, build_step_dataset
from lema_plugin.problems import EXAMPLE_LINE, load_problems
from lema_plugin.records import RecordError, make_id
from lema_testing.files import write_jsonl, read_jsonl as read

CLIPS = "Natalia sold clips to 48 of her friends in April, and then half as many in May. How many in all?"
WORKED = "Natalia sold 48/2 = <<48/2=24>>24 clips in May.\nNatalia sold 48+24 = <<48+24=72>>72 clips.\n#### 72"
FIXTURES = Path(__file__).parent / "fixtures"


def test_plain_lines_load_with_the_stated_id_rule(tmp_path):
    rows = [
        {"question": CLIPS, "answer": "72"},
        {"question": "What is 2 + 2?", "answer": "4", "dataset": "gsm8k"},
        {"question": "What is 3 + 3?", "solution": "3 + 3 = 6.\nThe answer is 6."},
        {"problem": "Simplify $\\frac{2}{4}$.", "solution": "Halve both: $\\boxed{\\frac12}$.", "dataset": "math"},
        {"id": "mine-7", "question": "What is 7 - 1?", "answer": 6},
    ]
    problems = load_problems("gsm8k", data_file=write_jsonl(tmp_path / "mine.jsonl", rows))
    assert [p.answer for p in problems] == ["72", "4", "6", "\\frac12", "6"]
    # no id: a hash of the grading rules and the question, the id the same question has from GSM8K's own file
    gsm8k_format = load_problems("gsm8k", data_file=write_jsonl(tmp_path / "g.jsonl", [{"question": CLIPS, "answer": WORKED}]))
    assert problems[0].id == gsm8k_format[0].id == make_id("gsm8k", CLIPS)
    assert problems[3].id == make_id("math", rows[3]["problem"]) and problems[3].dataset == "math"
    assert problems[4].id == "mine-7"  # a line's own id is kept
    # the gold rationale: `solution`, else an `answer` that is worked; a bare answer has none
    assert [bool(p.solution) for p in problems] == [False, False, True, True, False]
    assert gsm8k_format[0].solution == WORKED


@pytest.mark.parametrize("row, field", [
    ({"text": "What is 2 + 2?", "answer": "4"}, "question"),
    ({"question": "What is 2 + 2?"}, "answer"),
    ({"question": "What is 2 + 2?", "answer": "Two and two.\nMakes some number."}, "answer"),
])
def test_a_line_that_cannot_be_read_shows_an_accepted_one(tmp_path, row, field):
    path = write_jsonl(tmp_path / "mine.jsonl", [{"question": "q", "answer": "1"}, row])
    with pytest.raises(RecordError) as error:
        load_problems("gsm8k", data_file=path)
    message = str(error.value)
    assert message.startswith(f"{path}:2: field {field!r}")
    assert EXAMPLE_LINE in message and "docs/records.md" in message
    assert "\n" not in message
    json.loads(EXAMPLE_LINE)  # the line shown is itself a valid problem line


def test_answer_only_problems_give_no_gold_cot(tmp_path):
    data = write_jsonl(tmp_path / "mine.jsonl", [{"question": CLIPS, "answer": WORKED},
                                                 {"question": "What is 2 + 2?", "answer": "4"},
                                                 {"question": "What is 3 + 3?", "solution": "The answer is 6."}])
    out = tmp_path / "cot"
    result = CliRunner().invoke(main, ["cot", "--source", "gold", "--data-file", str(data), "--out", str(out)])
    assert result.exit_code == 0, result.output
    records = read(out / "cot.jsonl")
    assert [r["question"] for r in records] == [CLIPS]
    assert "2 problems have no worked solution" in result.output
    summary = json.loads((out / "cot_summary.json").read_text())
    assert summary["without_rationale"] == 2

    only = write_jsonl(tmp_path / "only.jsonl", [{"question": "What is 2 + 2?", "answer": "4"}])
    nothing = CliRunner().invoke(main, ["cot", "--data-file", str(only), "--out", str(tmp_path / "none")])
    assert nothing.exit_code == 4  # no CoT example, never "The answer is 4." as one


def test_an_answer_only_rationale_is_never_exported(tmp_path):
    """A cot.jsonl written before this rule (or by hand) with "The answer is 24." as a rationale:
    skipped and counted by every export kind, never trained on, never labelled positive."""
    gold = json.loads((FIXTURES / "cot.jsonl").read_text().splitlines()[0])
    bare = {**gold, "id": "bare", "problem_id": "p-bare", "question": "What is 4 * 6?", "answer": "24",
            "rationale": "The answer is 24."}
    cot = write_jsonl(tmp_path / "cot.jsonl", [gold, bare])
    for mix in ("cot-only", "lema"):
        info = build_dataset(tmp_path / mix, cot, FIXTURES / "corrections.jsonl", mix=mix)
        assert info["inputs"]["cot"]["skipped"]["no_worked_solution"] == 1
        assert "bare" not in {r["id"] for r in read(tmp_path / mix / "train.jsonl")}
    info = build_step_dataset(tmp_path / "prm", "prm", cot, FIXTURES / "corrections.jsonl")
    assert info["inputs"]["cot"]["skipped"]["no_worked_solution"] == 1
    assert "bare" not in {r["id"] for r in read(tmp_path / "prm" / "train.jsonl")}

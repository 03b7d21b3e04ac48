"""Wrong types (issue 12, items 4, 6 and 7): every input field is checked before any request is
paid for, with one line naming file, line and field; a stored record of the wrong shape is set
aside and asked again instead of poisoning the folder."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from lema_plugin.cli import main
from lema_testing.scripted_server import ScriptedServer

from test_reliability import DEAD_URL, one_line_error, sample_args

GOOD = {"id": "p1", "dataset": "math", "question": "What is $1+1$?", "answer": "2", "solution": "$\\boxed{2}$",
        "level": 2, "subject": "algebra"}


def write_lines(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


@pytest.mark.parametrize("change, field, message", [
    ({"level": "hard"}, "level", "expected a whole number or 'Level N', got \"hard\""),
    ({"dataset": "mmlu"}, "dataset", "unknown dataset 'mmlu'"),
    ({"question": 7}, "question", "expected text, got 7"),
    ({"question": {"text": "hi"}}, "question", "expected text"),
    ({"answer": ["5"]}, "answer", "expected text or a whole number or a number, got [\"5\"]"),
    ({"subject": ["algebra"]}, "subject", "expected text or null"),
], ids=["level", "dataset", "int-question", "dict-question", "list-answer", "list-subject"])
def test_a_wrongly_typed_problem_is_refused_before_any_request(tmp_path, change, field, message):
    data = write_lines(tmp_path / "problems.jsonl", [{**GOOD, "id": "p0"}, {**GOOD, **change}])
    error = one_line_error(CliRunner().invoke(main, sample_args(data, tmp_path / "out", DEAD_URL)))
    assert f"{data}:2: field '{field}': {message}" in error
    assert not (tmp_path / "out" / "paths.jsonl").exists()


@pytest.mark.parametrize("record, field", [  # ({"question": ..., "answer": 42} is a plain problem line: test_own_problems)
    ({"question": ["What is 6 times 7?"], "answer": "6*7=42\n#### 42"}, "question"),
    ({"question": "What is 6 times 7?", "answer": {"value": 42}}, "answer"),
], ids=["gsm8k-list-question", "gsm8k-dict-answer"])
def test_raw_gsm8k_fields_must_be_text(tmp_path, record, field):
    data = write_lines(tmp_path / "problems.jsonl", [record])
    error = one_line_error(CliRunner().invoke(main, sample_args(data, tmp_path / "out", DEAD_URL)))
    assert f"{data}:1: field '{field}': expected text" in error


MISTAKE = {"id": "m1", "question": "What is 1 plus 1?", "answer": "2", "dataset": "gsm8k", "text": "1 plus 1 is 3.\nThe answer is 3."}


@pytest.mark.parametrize("change, field", [
    ({"question": 12}, "question"),
    ({"text": 3}, "text"),
    ({"id": ["m1"]}, "id"),
    ({"level": "hard"}, "level"),
    ({"dataset": "mmlu"}, "dataset"),
], ids=["int-question", "int-text", "list-id", "level", "dataset"])
def test_a_wrongly_typed_mistake_is_one_line_before_any_request(tmp_path, change, field):
    mistakes = write_lines(tmp_path / "mistakes.jsonl", [{**MISTAKE, "id": "m0"}, {**MISTAKE, **change}])
    result = CliRunner().invoke(main, ["correct", "--mistakes", str(mistakes), "--corrector", f"c=m@{DEAD_URL}",
                                       "--quiet", "--out", str(tmp_path / "corr")])
    error = one_line_error(result)
    assert f"{mistakes}:2: field '{field}': " in error


def test_a_mistake_answer_given_as_a_number_is_read_as_text(tmp_path):
    from lema_plugin.correct import load_mistakes

    mistakes = write_lines(tmp_path / "mistakes.jsonl", [{**MISTAKE, "answer": 2}])
    assert load_mistakes(mistakes)[0]["answer"] == "2"


def test_a_stored_path_of_the_wrong_shape_is_set_aside_and_asked_again(tmp_path):
    """A folder written before the checks: a path whose level is "hard" counted as done and broke
    the summary on every rerun. Now the store sets it aside and the rerun asks again."""
    data = write_lines(tmp_path / "problems.jsonl", [GOOD])
    out = tmp_path / "out"
    with ScriptedServer(lambda body, attempt: "1+1 = 3. The answer is $\\boxed{3}$.") as server:
        first = CliRunner().invoke(main, sample_args(data, out, server.base_url, "--no-cache"))
        assert first.exit_code == 0, first.output
        paths = [json.loads(line) for line in (out / "paths.jsonl").read_text().splitlines()]
        poisoned = {**paths[0], "level": "hard"}
        write_lines(out / "paths.jsonl", [poisoned, paths[1]])
        again = CliRunner().invoke(main, sample_args(data, out, server.base_url, "--no-cache"))
        assert again.exit_code == 0, again.output
        assert server.request_count == 3, "only the set-aside path was asked again"
    stored = [json.loads(line) for line in (out / "paths.jsonl").read_text().splitlines()]
    assert sorted(p["id"] for p in stored) == sorted(p["id"] for p in paths)
    assert all(p["level"] == 2 for p in stored)
    assert json.loads((out / "paths.jsonl.damaged").read_text()) == poisoned
    summary = json.loads((out / "sample_summary.json").read_text())
    assert summary["generators"]["g"]["by_level"]["2"]["paths"] == 2


def test_a_stage_that_builds_a_bad_record_is_a_bug_not_bad_input(tmp_path):
    from lema_plugin.sample import PATH_FIELDS
    from lema_plugin.store import RunStore

    with RunStore(tmp_path / "paths.jsonl", PATH_FIELDS) as store, pytest.raises(TypeError, match="field 'problem_id'"):
        store.append({"id": "x", "problem_id": 3})


@pytest.mark.parametrize("change, field", [
    ({"level": "hard"}, "level"), ({"question": 5}, "question"), ({"dataset": "mmlu"}, "dataset"),
    ({"problem_id": ["p"]}, "problem_id"),
], ids=["level", "int-question", "dataset", "list-problem-id"])
def test_a_wrongly_typed_correction_is_one_line_before_evolve_asks(tmp_path, change, field):
    good = {"id": "c1", "problem_id": "p1", "question": "What is 1 plus 1?", "answer": "2", "dataset": "gsm8k",
            "correct": True}
    corrections = write_lines(tmp_path / "corrections.jsonl", [good, {**good, "id": "c2", **change}])
    result = CliRunner().invoke(main, ["evolve", "--corrections", str(corrections), "--model", f"e=m@{DEAD_URL}",
                                       "--no-contamination-check", "--quiet", "--out", str(tmp_path / "evolve")])
    assert f"{corrections}:2: field '{field}': " in one_line_error(result)

"""Problem loading from local files and $LEMA_DATA_DIR, and its error messages."""

import pytest

from lema_plugin.problems import Problem, load_problems, read_problems_file
from lema_plugin.grading.gold import gold_answer, stated_answer
from lema_plugin.records import RecordError
from lema_testing.files import write_jsonl


def test_gsm8k_gold_strips_commas_and_takes_last_marker():
    assert gold_answer("a\n#### 1,234", "gsm8k") == "1234"
    assert gold_answer("x #### 3\n#### -5", "gsm8k") == "-5"
    assert stated_answer("no marker", "gsm8k") is None  # a rationale that states nothing
    assert gold_answer("no marker", "gsm8k") == "no marker"  # ... but a one-line gold field is the answer itself


def test_real_gsm8k_train_from_data_dir(shared_data, monkeypatch):
    monkeypatch.setenv("LEMA_DATA_DIR", str(shared_data))
    problems = load_problems("gsm8k", "train", limit=5)
    assert len(problems) == 5
    first = problems[0]
    assert first.dataset == "gsm8k" and first.answer == "72" and "####" in first.solution
    assert len({p.id for p in problems}) == 5
    # ids are content hashes: the same question always gets the same id
    assert load_problems("gsm8k", "train", limit=1)[0].id == first.id


def test_real_math_sample_has_levels_subjects_and_gold(shared_data, monkeypatch):
    monkeypatch.setenv("LEMA_DATA_DIR", str(shared_data))
    problems = load_problems("math", "test")
    assert len(problems) == 1000
    assert all(p.answer for p in problems)
    assert {p.level for p in problems} <= {1, 2, 3, 4, 5, None}
    assert "intermediate_algebra" in {p.subject for p in problems}
    assert all(p.dataset == "math" for p in load_problems("math500", "test", limit=3))


def test_nested_boxed_gold(tmp_path):
    f = write_jsonl(tmp_path / "m.jsonl", [{"problem": "p", "solution": r"so $\boxed{\frac{1}{2}}$.", "level": "Level 2", "type": "Algebra"}])
    (problem,) = load_problems("math", data_file=f)
    assert problem.answer == r"\frac{1}{2}" and problem.level == 2 and problem.subject == "algebra"


def test_problem_format_round_trips_with_provenance(tmp_path):
    p = Problem("abc", "gsm8k", "q?", "4", "", extra={"seed_id": "s1", "agreement": 0.8})
    f = write_jsonl(tmp_path / "problems.jsonl", [p.to_dict()])
    (back,) = read_problems_file(f)
    assert back == p


@pytest.mark.parametrize(
    "rows, dataset, line, field",
    [
        ([{"question": "q", "answer": "r\n#### 1"}, {"question": "q2"}], "gsm8k", 2, "answer"),
        ([{"question": "q", "answer": "reasoning\nthat states no answer"}], "gsm8k", 1, "answer"),
        ([{"problem": "p", "solution": "no box"}], "math", 1, "solution"),
        ([{"solution": r"\boxed{1}"}], "math", 1, "problem"),
    ],
)
def test_bad_record_names_file_line_field(tmp_path, rows, dataset, line, field):
    f = write_jsonl(tmp_path / "bad.jsonl", rows)
    with pytest.raises(RecordError) as err:
        load_problems(dataset, data_file=f)
    assert str(err.value).startswith(f"{f}:{line}: field {field!r}")


def test_not_json_names_line(tmp_path):
    f = tmp_path / "bad.jsonl"
    f.write_text('{"question": "q", "answer": "#### 1"}\n{oops\n')
    with pytest.raises(RecordError, match=rf"{f}:2: not valid JSON"):
        load_problems("gsm8k", data_file=f)


def test_offline_hub_failure_is_one_line(monkeypatch):
    monkeypatch.delenv("LEMA_DATA_DIR", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    with pytest.raises(RecordError) as err:
        load_problems("gsm8k", "train")
    message = str(err.value)
    assert message.startswith("hub:openai/gsm8k/main: could not load split 'train'")
    assert "LEMA_DATA_DIR" in message and "\n" not in message


def test_real_math_gold_keeps_every_boxed_value(shared_data, monkeypatch):
    """Two sample problems box several values; the gold is all of them, not just the last box,
    so a path that states every value is graded right and one that states only the last is not."""
    from lema_plugin.grading import is_correct

    monkeypatch.setenv("LEMA_DATA_DIR", str(shared_data))
    problems = load_problems("math", "test")
    several = [p for p in problems if r"\boxed{5 - 10i}" in p.solution or r"\boxed{\left(\tfrac32" in p.solution]
    assert len(several) == 2, "the two real problems that box several values"
    values = {p.answer for p in several}
    assert "5 - 10i, 11, -3 + 6i" in values
    assert r"\left(\tfrac32, -\tfrac52\right), \left(-\tfrac52, -\tfrac52\right)" in values
    complex_problem = next(p for p in several if "10i" in p.answer)
    assert is_correct(r"The answer is $\boxed{11, -3+6i, 5-10i}$.", complex_problem.answer, "math")
    assert not is_correct(r"The answer is $\boxed{-3+6i}$.", complex_problem.answer, "math")


def test_math_gold_from_a_file_field_takes_every_boxed_value():
    assert gold_answer(r"so $\boxed{1}$ and $\boxed{2}$ work.", "math") == "1, 2"
    assert gold_answer(r"so $x = \boxed{3}$.", "math") == "3"

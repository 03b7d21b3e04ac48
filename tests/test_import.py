"""`lema import`: lm-eval sample logs, generic JSONL and GSM8K model-solution files."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from lema_plugin.cli import main
from lema_plugin.grading import is_correct
from lema_plugin.import_paths import ImportOptions, import_paths
from lema_plugin.grading import gold_answer
from lema_plugin.problems import read_problems_file
from lema_plugin.records import RecordError
from lema_testing.files import write_jsonl, read_jsonl as read

QUESTIONS = {
    "clips": ("Natalia sold 48 clips in April and half as many in May. How many clips did she sell in all?", "72"),
    "weng": ("Weng earns $12 an hour. She worked 50 minutes. How much did she earn?", "10"),
    "pages": ("James writes 12 pages a week. How many pages does he write in 52 weeks?", "624"),
}


@pytest.fixture
def problems_file(tmp_path) -> Path:
    """Known problems in GSM8K's own format (rationale ending in '#### N')."""
    rows = [{"question": q, "answer": f"Some reasoning.\n#### {a}"} for q, a in QUESTIONS.values()]
    return write_jsonl(tmp_path / "known" / "train.jsonl", rows)


def lm_eval_sample(doc_id: int, key: str, texts: list[str], filter_key: str) -> dict:
    """One line as lm-eval's evaluator logs it (generate_until with repeats)."""
    question, answer = QUESTIONS[key]
    doc = {"question": question, "answer": f"Reasoning.\n#### {answer}"}
    return {
        "doc_id": doc_id,
        "doc": doc,
        "target": doc["answer"],
        "arguments": [[f"Question: {question}\nAnswer:", {"until": ["Question:"], "do_sample": True}]],
        "resps": [texts],
        "filtered_resps": [texts[0]],
        "filter": filter_key,
        "metrics": ["exact_match"],
        "doc_hash": "x",
        "prompt_hash": "y",
        "target_hash": "z",
        "exact_match": 0.0,
    }


def test_lm_eval_log_samples(tmp_path, problems_file):
    clips_texts = ["48/2 = 24. 48 + 24 = 72. The answer is 72.", "48 + 48 = 96. The answer is 96."]
    weng_texts = ["12 * 50 = 600. The answer is 600.", "12 * 50 = 600.  the answer is 600."]
    rows = []
    for filter_key in ("strict-match", "flexible-extract"):  # lm-eval logs each doc once per filter
        rows.append(lm_eval_sample(0, "clips", clips_texts, filter_key))
        rows.append(lm_eval_sample(1, "weng", weng_texts, filter_key))
    source = write_jsonl(tmp_path / "results" / "my-org__my-model" / "samples_gsm8k_2026-01-01T00-00-00.jsonl", rows)
    out = tmp_path / "out"

    result = CliRunner().invoke(main, ["import", str(source), "--data-file", str(problems_file), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "my-org__my-model" in result.output

    paths = read(out / "paths.jsonl")
    assert len(paths) == 4  # 2 docs x 2 repeats, the second filter's copies skipped
    assert {p["model"] for p in paths} == {"my-org__my-model"}
    assert [p["kind"] for p in paths] == ["correct", "wrong", "wrong", "wrong"]
    for p in paths:
        assert p["correct"] == is_correct(p["text"], p["answer"], "gsm8k")
        assert p["steps"] and p["finish_reason"] is None
    known = {p.question: p.id for p in read_problems_file(problems_file)}
    assert {p["problem_id"] for p in paths} == {known[QUESTIONS["clips"][0]], known[QUESTIONS["weng"][0]]}

    mistakes = read(out / "mistakes.jsonl")
    # the two Weng paths differ only in case and spacing: one mistake, one duplicate
    assert [m["text"] for m in mistakes] == [clips_texts[1], weng_texts[0]]
    summary = json.loads((out / "import_summary.json").read_text())
    stats = summary["generators"]["my-org__my-model"]
    assert (stats["paths"], stats["correct"], stats["mistakes"], stats["duplicates"]) == (4, 1, 2, 1)
    assert stats["accuracy"] == 0.25

    # importing the same file again adds nothing
    again = CliRunner().invoke(main, ["import", str(source), "--data-file", str(problems_file), "--out", str(out)])
    assert again.exit_code == 0, again.output
    assert read(out / "paths.jsonl") == paths


def test_generic_jsonl_with_field_names_and_gold_from_file(tmp_path):
    rows = [
        {"prompt": QUESTIONS["pages"][0], "outputs": ["12 * 52 = 624. The answer is 624.", "12 * 50 = 600. The answer is 600."], "gold": 624, "who": "m1"},
        {"prompt": QUESTIONS["clips"][0], "outputs": "I am not sure how to do this.", "gold": "#### 72", "who": "m2"},
        {"prompt": QUESTIONS["clips"][0], "outputs": ["48 - 24 = 24. The answer is 24."], "gold": "72", "who": "m2"},
    ]
    source = write_jsonl(tmp_path / "mine.jsonl", rows)
    out = tmp_path / "out"
    options = ImportOptions(question_field="prompt", text_field="outputs", gold_field="gold", model_field="who")
    summary = import_paths([source], out, options)

    paths = read(out / "paths.jsonl")
    assert [(p["model"], p["kind"]) for p in paths] == [("m1", "correct"), ("m1", "wrong"), ("m2", "unextractable"), ("m2", "wrong")]
    assert [p["answer"] for p in paths] == ["624", "624", "72", "72"]
    assert [p["sample_index"] for p in paths] == [0, 1, 0, 1]
    assert len(read(out / "mistakes.jsonl")) == 2  # the unextractable one is left out...
    assert summary.generators["m2"]["unextractable_share"] == 0.5

    out2 = tmp_path / "out2"
    import_paths([source], out2, ImportOptions(**{**options.__dict__, "keep_unfinished": True}))
    assert len(read(out2 / "mistakes.jsonl")) == 3  # ...unless unfinished paths are kept


def test_gsm8k_model_solutions_format(tmp_path):
    question, _ = QUESTIONS["clips"]
    rows = [
        {
            "question": question,
            "ground_truth": "Natalia sold 48/2 = <<48/2=24>>24 clips in May.\nAltogether 48+24 = <<48+24=72>>72.\nA: 72",
            "6b_finetuning": {"is_correct": False, "solution": "She sold 48*2 = <<48*2=96>>96 in May.\nA: 96"},
            "6b_verification": {"is_correct": False, "solution": "48 + 2 = <<48+2=50>>50 clips\nA: 50"},
            "175b_finetuning": {"is_correct": True, "solution": "48/2 = <<48/2=24>>24 in May\n48 + 24 = <<48+24=72>>72\nA: 72"},
            "175b_verification": {"is_correct": True, "solution": "Half of 48 is 24, so 48+24 = 72 clips\nA: 72"},
        }
    ]
    source = write_jsonl(tmp_path / "example_model_solutions.jsonl", rows)
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["import", str(source), "--gold-field", "ground_truth", "--out", str(out)])
    assert result.exit_code == 0, result.output

    paths = read(out / "paths.jsonl")
    assert [p["model"] for p in paths] == ["6b_finetuning", "6b_verification", "175b_finetuning", "175b_verification"]
    assert all(p["answer"] == "72" for p in paths)
    assert [p["correct"] for p in paths] == [p["reported_correct"] for p in paths]  # the grader agrees with the file
    assert [m["model"] for m in read(out / "mistakes.jsonl")] == ["6b_finetuning", "6b_verification"]
    assert json.loads((out / "import_summary.json").read_text())["total"]["mistakes"] == 2


def test_unmatched_questions_are_left_out_counted_and_named(tmp_path, problems_file):
    rows = [{"question": QUESTIONS["clips"][0], "solution": "48 + 48 = 96. The answer is 96."},
            {"question": "What is 1 + 1?", "solution": "The answer is 3."},
            {"question": QUESTIONS["weng"][0], "solution": "12 * 50 = 600. The answer is 600."}]
    source = write_jsonl(tmp_path / "mine.jsonl", rows)
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["import", str(source), "--data-file", str(problems_file), "--out", str(out)])
    assert result.exit_code == 0, result.output + result.stderr
    assert [p["question"] for p in read(out / "paths.jsonl")] == [QUESTIONS["clips"][0], QUESTIONS["weng"][0]]
    assert "1 line left out" in result.stderr and f"{source}:2: What is 1 + 1?" in result.stderr
    assert "--gold-field" in result.stderr
    summary = json.loads((out / "import_summary.json").read_text())
    assert summary["unmatched"] == 1 and summary["unmatched_lines"] == [f"{source}:2: What is 1 + 1?"]


def test_bad_lines_name_file_line_and_field(tmp_path, problems_file):
    source = tmp_path / "broken.jsonl"
    source.write_text(json.dumps({"question": QUESTIONS["clips"][0], "solution": "x"}) + "\n{not json\n", encoding="utf-8")
    with pytest.raises(RecordError, match=r"broken.jsonl:2: not valid JSON"):
        import_paths([source], tmp_path / "out", ImportOptions(), read_problems_file(problems_file))

    source.write_text(json.dumps({"question": QUESTIONS["clips"][0], "answer": "x"}) + "\n", encoding="utf-8")
    with pytest.raises(RecordError, match=r"broken.jsonl:1: field 'text'"):
        import_paths([source], tmp_path / "out", ImportOptions(), read_problems_file(problems_file))

    source.write_text(json.dumps({"question": QUESTIONS["clips"][0], "solution": "The answer is 7.", "gold": ""}) + "\n", encoding="utf-8")
    with pytest.raises(RecordError, match=r"broken.jsonl:1: field 'gold': no gold answer"):
        import_paths([source], tmp_path / "out", ImportOptions(gold_field="gold"))


@pytest.mark.parametrize(
    "value, dataset, gold",
    [
        ("Reasoning\n#### 1,234", "gsm8k", "1234"),
        ("Reasoning\nA: 18", "gsm8k", "18"),
        ("72", "gsm8k", "72"),
        (72, "gsm8k", "72"),
        (["5"], "gsm8k", "5"),
        ("3/8", "gsm8k", "3/8"),  # not 8: a bare fraction is the answer as written
        ("Half of it is left.\nThe answer is 3/8.", "gsm8k", "3/8"),
        ("So the area is $\\boxed{\\frac{1}{2}}$.", "math", "\\frac{1}{2}"),
        ("\\frac{1}{2}", "math", "\\frac{1}{2}"),
        ("Two lines of reasoning\nthat state no answer, only 5 and 8", "gsm8k", None),  # never a guess
        ("", "gsm8k", None),
        (None, "math", None),
    ],
)
def test_the_one_gold_reader(value, dataset, gold):
    assert gold_answer(value, dataset) == gold


def test_own_paths_file_keeps_what_sampling_decided(tmp_path):
    """Importing the tool's own paths.jsonl applies sampling's rules: a path cut at max_tokens
    stays truncated (no mistake), a failed request's record is skipped, not imported."""
    question, gold = QUESTIONS["clips"]
    base = {"dataset": "gsm8k", "question": question, "answer": gold, "model": "gen", "problem_id": "p"}
    rows = [
        {**base, "id": "a", "text": "48 * 2 = 96. The answer is 96.", "finish_reason": "stop", "kind": "wrong"},
        {**base, "id": "b", "text": "48 * 3 = 144 and then 144 +", "finish_reason": "length", "kind": "truncated"},
        {**base, "id": "c", "text": "", "finish_reason": None, "kind": "failed", "error": "HTTP 500"},
    ]
    source = write_jsonl(tmp_path / "paths.jsonl", rows)
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["import", str(source), "--out", str(out)])
    assert result.exit_code == 0, result.output + result.stderr
    paths = read(out / "paths.jsonl")
    assert [(p["kind"], p["finish_reason"]) for p in paths] == [("wrong", "stop"), ("truncated", "length")]
    assert [m["text"] for m in read(out / "mistakes.jsonl")] == [rows[0]["text"]]
    assert "1 record of failed requests" in result.stderr

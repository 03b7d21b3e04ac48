"""`lema grade` on plain records, lm-eval --log_samples output and LeMa inference output."""
from __future__ import annotations

import json

from click.testing import CliRunner

from lema_plugin.cli import main


def _write(path, lines):
    path.write_text("".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines))
    return path


def _read(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_plain_gsm8k_file_with_bad_lines(tmp_path):
    predictions = _write(tmp_path / "preds.jsonl", [
        {"id": "a", "completion": "She makes 9 * 2 = 18.\nThe answer is 18.", "answer": "9 * 2 = <<9*2=18>>18\n#### 18"},
        {"id": "b", "completion": "The answer is $1,200.", "answer": "1200"},
        "{not json",
        {"id": "c", "completion": "The answer is 5."},
        {"id": "d", "completion": "I think 7.", "answer": "8"},
    ])
    out = tmp_path / "graded.jsonl"
    result = CliRunner().invoke(main, ["grade", "--dataset", "gsm8k", "--predictions", str(predictions), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "accuracy 0.6667 (2/3)" in result.output
    assert f"{predictions}:3: not valid JSON" in result.output
    assert f"{predictions}:4: field 'answer': missing or empty" in result.output
    rows = _read(out)
    assert [row["id"] for row in rows] == ["a", "b", "d"]
    assert [row["correct"] for row in rows] == [True, True, False]
    assert [row["extracted"] for row in rows] == ["18", "1200", "7"]
    assert rows[0]["completion"].endswith("The answer is 18.")  # original fields are kept


def test_custom_fields(tmp_path):
    predictions = _write(tmp_path / "preds.jsonl", [{"text": "The answer is 4.", "gold": "4"}])
    result = CliRunner().invoke(main, [
        "grade", "--dataset", "gsm8k", "--predictions", str(predictions),
        "--prediction-field", "text", "--gold-field", "gold",
    ])
    assert result.exit_code == 0, result.output
    assert "accuracy 1.0000 (1/1)" in result.output


def test_lm_eval_log_samples_with_level_and_subject(tmp_path):
    def sample(doc_id, response, target, level, subject):
        return {
            "doc_id": doc_id,
            "doc": {"problem": "...", "solution": f"... $\\boxed{{{target}}}$", "level": level, "type": subject},
            "target": target,
            "arguments": {"gen_args_0": {"arg_0": "Problem: ...", "arg_1": {"until": ["Problem:"]}}},
            "resps": [[response]],
            "filtered_resps": ["[invalid]"],
            "filter": "none",
            "metrics": ["exact_match"],
            "doc_hash": "0", "prompt_hash": "0", "target_hash": "0",
            "exact_match": 0.0,
        }

    repeated = sample(0, "So $x=\\boxed{\\dfrac{1}{2}}$.", "\\frac{1}{2}", "Level 1", "Algebra")
    repeated["filter"] = "flexible-extract"  # lm-eval writes one row per document and filter
    predictions = _write(tmp_path / "samples_math.jsonl", [
        sample(0, "So $x=\\boxed{\\dfrac{1}{2}}$.", "\\frac{1}{2}", "Level 1", "Algebra"),
        repeated,
        sample(1, "Final Answer: The final answer is $(1, 2)$. I hope it is correct.", "(1,2)", "Level 2", "Algebra"),
        sample(2, "The answer is $3$.", "4", "Level 2", "Geometry"),
    ])
    out = tmp_path / "graded.jsonl"
    result = CliRunner().invoke(main, ["grade", "--dataset", "math", "--predictions", str(predictions), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "lm-eval 3" in result.output
    assert "1 repeated lm-eval row(s)" in result.output
    assert "accuracy 0.6667 (2/3)" in result.output
    lines = result.output.splitlines()
    assert any(line.split()[:4] == ["Level", "1", "1", "1"] for line in lines)
    assert any(line.split()[:4] == ["Level", "2", "2", "1"] for line in lines)
    assert any(line.split()[:3] == ["Geometry", "1", "0"] for line in lines)
    assert [row["correct"] for row in _read(out)] == [True, True, True, False]


def test_lema_inference_output_with_a_gold_file(tmp_path):
    predictions = _write(tmp_path / "sample.jsonl", [
        {"samples": ["16 - 3 - 4 = 9 eggs. 9 * 2 = 18.\nThe answer is 18."]},
        {"samples": ["2 + 1 = 3.\nThe answer is 3.\n\nQuestion: what next?\nThe answer is 4."]},
    ])
    gold = _write(tmp_path / "gsm8k_test.jsonl", [
        {"prompt": "...", "completion": "9 * 2 = 18\nThe answer is 18."},
        {"prompt": "...", "completion": "The answer is 4."},
    ])
    result = CliRunner().invoke(main, [
        "grade", "--dataset", "gsm8k", "--predictions", str(predictions), "--gold-file", str(gold),
        "--gold-field", "completion",
    ])
    assert result.exit_code == 0, result.output
    assert "lema 2" in result.output
    assert "accuracy 0.5000 (1/2)" in result.output


def test_lema_output_without_gold_is_reported(tmp_path):
    predictions = _write(tmp_path / "sample.jsonl", [{"samples": ["The answer is 18."]}])
    result = CliRunner().invoke(main, ["grade", "--dataset", "gsm8k", "--predictions", str(predictions)])
    assert result.exit_code != 0
    assert f"{predictions}:1: field 'answer': missing or empty" in result.output
    assert "no line could be graded" in result.output

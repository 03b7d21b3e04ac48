"""The tool reads its own outputs: every record file a real run writes is accepted by `lema grade`
and `lema import` with no flags, and importing test-split lm-eval samples warns about contamination."""
from __future__ import annotations

import json
import os

import pytest
from click.testing import CliRunner

from lema_plugin.cli import main
from lema_testing.scripted_server import ScriptedServer
from lema_plugin.problems import load_problems

from test_pipeline import make_responder, write_recipe

# record files of a run folder -> (records graded, expected accuracy): generators answer 1 (wrong),
# the corrector and the gold CoT reach the right answer
GRADED = {
    "sample/paths.jsonl": (6, 0.0),
    "sample/mistakes.jsonl": (3, 0.0),
    "correct/corrections.jsonl": (3, 1.0),
    "cot/cot.jsonl": (3, 1.0),
    "data/corrections.jsonl": (3, 1.0),
}


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory, shared_data):
    """A real run folder: `lema run` against the scripted server (3 questions, 2 samples each)."""
    os.environ["LEMA_DATA_DIR"] = str(shared_data)
    problems = load_problems("gsm8k", "train", limit=3)
    tmp = tmp_path_factory.mktemp("own")
    with ScriptedServer(make_responder(problems)) as server:
        recipe = write_recipe(tmp / "r.yaml", server, tmp / "run")
        result = CliRunner().invoke(main, ["run", str(recipe), "--no-train"])
    assert result.exit_code == 0, result.output
    return tmp / "run"


@pytest.mark.parametrize("name", sorted(GRADED))
def test_grade_reads_every_record_file_with_no_flags(run_folder, tmp_path, name):
    count, accuracy = GRADED[name]
    result = CliRunner().invoke(main, ["grade", "--predictions", str(run_folder / name),
                                                       "--out", str(tmp_path / "g")])
    assert result.exit_code == 0, result.output + result.stderr
    assert result.stderr == ""  # no bad line
    assert f"accuracy {accuracy:.4f} ({int(accuracy * count)}/{count})" in result.output
    graded = [json.loads(line) for line in (tmp_path / "g" / "graded.jsonl").read_text().splitlines()]
    assert len(graded) == count and all(row["gold_answer"] == row["answer"] for row in graded)
    summary = json.loads((tmp_path / "g" / "grade_summary.json").read_text())
    assert (summary["graded"], summary["datasets"]) == (count, {"gsm8k": count})


@pytest.mark.parametrize("name", ["sample/paths.jsonl", "sample/mistakes.jsonl", "correct/corrections.jsonl",
                                  "cot/cot.jsonl"])
def test_import_reads_every_record_file_with_no_flags(run_folder, tmp_path, name):
    count, accuracy = GRADED[name]
    out = tmp_path / "imported"
    result = CliRunner().invoke(main, ["import", str(run_folder / name), "--out", str(out)])
    # a file of right answers holds no mistake: read and stored all the same, exit 4 (nothing produced)
    assert result.exit_code == (0 if accuracy < 1 else 4), result.output + result.stderr
    assert "test split" not in result.stderr
    source = [json.loads(line) for line in (run_folder / name).read_text().splitlines()]
    paths = [json.loads(line) for line in (out / "paths.jsonl").read_text().splitlines()]
    assert len(paths) == count
    assert sum(p["correct"] for p in paths) == int(accuracy * count)
    # the problem ids and the model labels are the run's own
    assert {p["problem_id"] for p in paths} == {r["problem_id"] for r in source}
    assert {p["model"] for p in paths} == {r.get("model") or r.get("corrector") or "cot" for r in source}


def test_importing_test_split_lm_eval_samples_uses_their_target_and_warns(tmp_path, shared_data, monkeypatch):
    """`lema run`'s eval step logs lm-eval samples of the test split; their `target` is the gold answer."""
    monkeypatch.setenv("LEMA_DATA_DIR", str(shared_data))
    test = load_problems("gsm8k", "test", limit=2)
    rows = []
    for doc_id, problem in enumerate(test):
        doc = {"question": problem.question, "answer": problem.solution + f"\n#### {problem.answer}"}
        for filter_key in ("strict-match", "flexible-extract"):
            rows.append({"doc_id": doc_id, "doc": doc, "target": doc["answer"], "filter": filter_key,
                         "resps": [["So the answer is 1. The answer is 1."]], "filtered_resps": ["1"]})
    source = tmp_path / "eval" / "embedded" / "samples_lema_gsm8k_2026-01-01T00-00-00.jsonl"
    source.parent.mkdir(parents=True)
    source.write_text("".join(json.dumps(row) + "\n" for row in rows))
    result = CliRunner().invoke(main, ["import", str(source), "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output + result.stderr
    assert "warning: 2 of 2 questions are from the GSM8K/MATH test split" in result.stderr
    paths = [json.loads(line) for line in (tmp_path / "out" / "paths.jsonl").read_text().splitlines()]
    assert [p["answer"] for p in paths] == [p.answer for p in test]
    assert [p["kind"] for p in paths] == ["wrong", "wrong"]
    summary = json.loads((tmp_path / "out" / "import_summary.json").read_text())
    assert summary["test_questions"] == 2


def test_old_option_spellings_still_work_with_a_note(run_folder, tmp_path):
    result = CliRunner().invoke(main, [
        "grade", "--dataset", "gsm8k", "--predictions", str(run_folder / "sample/paths.jsonl"),
        "--prediction-field", "text", "--out", str(tmp_path / "g.jsonl")])
    assert result.exit_code == 0, result.output + result.stderr
    assert "--prediction-field is now --text-field" in result.stderr
    assert len((tmp_path / "g.jsonl").read_text().splitlines()) == 6
    both = CliRunner().invoke(main, ["grade", "--predictions", str(run_folder / "sample/paths.jsonl"),
                                     "--prediction-field", "text", "--text-field", "text"])
    assert both.exit_code == 2 and "--prediction-field is the old name of --text-field" in both.output


def test_old_stage_option_spellings_still_work(run_folder, tmp_path, shared_data):
    """`--samples-per-question` (sample) and `--attempts` / `--prompt STYLE` (correct) still run,
    each with a note naming the new option."""
    problems = load_problems("gsm8k", "train", limit=1)
    data = tmp_path / "p.jsonl"
    data.write_text(json.dumps({"question": problems[0].question, "answer": f"#### {problems[0].answer}"}) + "\n")
    with ScriptedServer(make_responder(problems)) as server:
        sampled = CliRunner().invoke(main, ["sample", "--data-file", str(data), "--generator", f"g=m@{server.base_url}",
                                            "--samples-per-question", "2", "-q", "--out", str(tmp_path / "s")])
        assert sampled.exit_code == 0, sampled.output
        assert "--samples-per-question is now --samples" in sampled.stderr
        assert len((tmp_path / "s" / "paths.jsonl").read_text().splitlines()) == 2

        corrected = CliRunner().invoke(main, [
            "correct", "--mistakes", str(run_folder / "sample/mistakes.jsonl"), "--corrector", f"fix=c@{server.base_url}",
            "--attempts", "2", "--keep", "2", "--prompt", "zeroshot", "-q", "--out", str(tmp_path / "c")])
        assert corrected.exit_code == 0, corrected.output
    assert "--attempts is now --samples" in corrected.stderr and "--prompt is now --style" in corrected.stderr
    records = [json.loads(line) for name in ("corrections.jsonl", "rejected.jsonl")
               for line in (tmp_path / "c" / name).read_text().splitlines()]
    assert len(records) == 3 * 2 and {r["prompt"] for r in records} == {"correct_zeroshot"}

"""Honest exits (issue 12, item 5): a command exits 0 only when everything asked for is done;
5 when some requests finally failed, 4 when it produced nothing, so `lema sample ... && lema
correct ...` stops on an empty result. Run through the real commands against the scripted server."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from lema_plugin.cli import main
from lema_plugin.errors import EXIT_EMPTY, EXIT_FAILED
from lema_testing.scripted_server import Reply, ScriptedServer

from test_reliability import problem_file, sample_args


def invoke(args):
    return CliRunner().invoke(main, args)


def right(body, attempt):
    """Every problem of `problem_file` answered right: sampling finds no mistake."""
    n = int(body["messages"][0]["content"].split("What is ")[1].split(" ")[0])
    return f"The answer is {2 * n}."


def test_every_request_failing_exits_5_and_names_the_retry(tmp_path):
    data = problem_file(tmp_path / "problems.jsonl")
    with ScriptedServer(lambda body, attempt: Reply(status=500)) as server:
        result = invoke(sample_args(data, tmp_path / "out", server.base_url))
    assert result.exit_code == EXIT_FAILED, result.output
    assert "6 requests finally failed" in result.output
    assert "run the same command again" in result.output


def test_some_requests_failing_exits_5_and_a_clean_rerun_exits_0(tmp_path):
    data = problem_file(tmp_path / "problems.jsonl")

    def flaky(body, attempt):
        if "1 plus 1" in body["messages"][0]["content"] and attempt == 0:
            return Reply(status=500)
        return "Let me guess. The answer is 5."

    with ScriptedServer(flaky) as server:
        first = invoke(sample_args(data, tmp_path / "out", server.base_url))
        assert first.exit_code == EXIT_FAILED, first.output
        assert "1 request finally failed" in first.output
        again = invoke(sample_args(data, tmp_path / "out", server.base_url))
    assert again.exit_code == 0, again.output


def test_sample_with_no_mistakes_exits_4(tmp_path):
    data = problem_file(tmp_path / "problems.jsonl")

    with ScriptedServer(right) as server:
        result = invoke(sample_args(data, tmp_path / "out", server.base_url))
    assert result.exit_code == EXIT_EMPTY, result.output
    assert "no mistakes produced" in result.output
    assert (tmp_path / "out" / "mistakes.jsonl").read_text() == ""


def test_correct_on_an_empty_mistakes_file_exits_4_before_any_request(tmp_path):
    mistakes = tmp_path / "mistakes.jsonl"
    mistakes.write_text("")
    with ScriptedServer(lambda body, attempt: "x") as server:
        result = invoke(["correct", "--mistakes", str(mistakes), "--corrector", f"c=m@{server.base_url}",
                         "--quiet", "--out", str(tmp_path / "corr")])
        assert server.request_count == 0
    assert result.exit_code == EXIT_EMPTY, result.output
    assert f"{mistakes}: no mistakes to correct" in result.output


def test_correct_with_no_verified_correction_exits_4(tmp_path):
    mistakes = tmp_path / "mistakes.jsonl"
    mistakes.write_text(json.dumps({"id": "p1", "question": "What is 1 plus 1?", "answer": "2", "dataset": "gsm8k",
                                    "text": "1 plus 1 is 3.\nThe answer is 3."}) + "\n")
    with ScriptedServer(lambda body, attempt: "no idea") as server:
        result = invoke(["correct", "--mistakes", str(mistakes), "--corrector", f"c=m@{server.base_url}",
                         "--quiet", "--out", str(tmp_path / "corr")])
    assert result.exit_code == EXIT_EMPTY, result.output
    assert "no verified corrections produced" in result.output


def test_grade_and_build_on_empty_inputs_exit_4(tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    graded = invoke(["grade", "--dataset", "gsm8k", "--predictions", str(empty)])
    assert graded.exit_code == EXIT_EMPTY, graded.output
    built = invoke(["build", "--cot", str(empty), "--mix", "cot-only", "--out", str(tmp_path / "data")])
    assert built.exit_code == EXIT_EMPTY, built.output
    assert "no training examples produced" in built.output


def test_sample_and_correct_chained_in_a_shell_stop_on_an_empty_result(tmp_path):
    data = problem_file(tmp_path / "problems.jsonl")
    out = tmp_path / "out"
    lema = [sys.executable, "-m", "lema_plugin.cli"]

    with ScriptedServer(right) as server:
        sample = " ".join(map(str, [*lema, *sample_args(data, out, server.base_url)]))
        correct = " ".join(map(str, [*lema, "correct", "--mistakes", out / "mistakes.jsonl", "--corrector",
                                     f"c=m@{server.base_url}", "--quiet", "--out", tmp_path / "corr"]))
        done = subprocess.run(f"{sample} && {correct} && echo CARRIED-ON", shell=True, capture_output=True, text=True,
                              env={**os.environ, "PYTHONPATH": str(Path.cwd())})
    assert done.returncode == EXIT_EMPTY, done.stderr
    assert "CARRIED-ON" not in done.stdout
    assert not (tmp_path / "corr").exists()
    assert server.request_count == 6


def test_help_lists_the_exit_statuses():
    result = invoke(["--help"])
    for line in ("0    everything asked for is done", "3    --max-cost reached", "4    nothing produced",
                 "5    some requests finally failed", "75   requests wait in Batch API batches"):
        assert line in result.output


def test_lema_run_with_no_mistakes_stops_before_correcting_and_building(tmp_path):
    data = problem_file(tmp_path / "problems.jsonl")

    with ScriptedServer(right) as server:
        recipe = tmp_path / "r.yaml"
        recipe.write_text(f"data_file: {data}\ngenerators: [{{name: g, model: m, base_url: '{server.base_url}'}}]\n"
                          f"corrector: {{name: c, model: m, base_url: '{server.base_url}'}}\n")
        result = invoke(["run", str(recipe), "--no-train", "--out", str(tmp_path / "run")])
        assert server.request_count == 12  # 3 questions x 4 samples, no corrector request
    assert result.exit_code == EXIT_EMPTY, result.output
    assert "sample: no mistakes in" in result.output and "axolotl train" not in result.output
    assert not (tmp_path / "run" / "data").exists()

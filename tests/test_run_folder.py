"""A run folder remembers what made it (issue 12): the resolved settings are saved in it, a rerun
with other sampling settings is refused in one line naming what changed, and `--fresh` starts
the folder over without deleting paid records."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from lema_plugin.cli import main
from lema_plugin.errors import EXIT_ERROR
from lema_testing.scripted_server import ScriptedServer

from test_reliability import problem_file, sample_args


def wrong(body, attempt):
    return f"I think it is 5 (t={body['temperature']}). The answer is 5."


def test_the_folder_saves_its_settings_and_refuses_another_temperature(tmp_path):
    data = problem_file(tmp_path / "problems.jsonl")
    out = tmp_path / "out"
    with ScriptedServer(wrong) as server:
        first = CliRunner().invoke(main, sample_args(data, out, server.base_url, "--temperature", "0.7"))
        assert first.exit_code == 0, first.output
        saved = json.loads((out / "lema_run.json").read_text())["sample"]
        assert saved["fixed"]["generator g"]["temperature"] == 0.7
        assert saved["settings"]["generator g"]["base_urls"] == [server.base_url]
        before = (out / "paths.jsonl").read_text()
        changed = CliRunner().invoke(main, sample_args(data, out, server.base_url, "--temperature", "0.9"))
        assert server.request_count == 6
    assert changed.exit_code == EXIT_ERROR, changed.output
    line = changed.output.strip().splitlines()[-1]
    assert line.startswith(f"Error: {out}: generator g was run here with temperature 0.7, now 0.9;")
    assert "--fresh" in line and "new --out" in line
    assert (out / "paths.jsonl").read_text() == before


def test_more_samples_into_the_same_folder_are_fine(tmp_path):
    data = problem_file(tmp_path / "problems.jsonl")
    out = tmp_path / "out"
    with ScriptedServer(wrong) as server:
        CliRunner().invoke(main, sample_args(data, out, server.base_url))
        more = CliRunner().invoke(main, [*sample_args(data, out, server.base_url), "-k", "3"])
        assert more.exit_code == 0, more.output
        assert server.request_count == 9
    assert "3 new requests" in more.output


def test_fresh_moves_the_old_outputs_aside_and_keeps_the_cache(tmp_path):
    data = problem_file(tmp_path / "problems.jsonl")
    out = tmp_path / "out"
    with ScriptedServer(wrong) as server:
        CliRunner().invoke(main, sample_args(data, out, server.base_url, "--temperature", "0.7"))
        old = (out / "paths.jsonl").read_text()
        fresh = CliRunner().invoke(main, sample_args(data, out, server.base_url, "--temperature", "0.9", "--fresh"))
        assert fresh.exit_code == 0, fresh.output
        assert server.request_count == 12
        back = CliRunner().invoke(main, sample_args(data, out, server.base_url, "--temperature", "0.9"))
        assert back.exit_code == 0 and "0 new requests" in back.output, back.output
    replaced = [p for p in out.iterdir() if p.name.startswith("replaced-")]
    assert len(replaced) == 1 and (replaced[0] / "paths.jsonl").read_text() == old
    assert json.loads((replaced[0] / "lema_run.json").read_text())["sample"]["fixed"]["generator g"]["temperature"] == 0.7
    assert all("t=0.9" in json.loads(line)["text"] for line in (out / "paths.jsonl").read_text().splitlines())
    assert (out / ".cache").is_dir()


def test_correct_refuses_another_corrector_model(tmp_path):
    mistakes = tmp_path / "mistakes.jsonl"
    mistakes.write_text(json.dumps({"id": "p1", "question": "What is 1 plus 1?", "answer": "2", "dataset": "gsm8k",
                                    "text": "1 plus 1 is 3.\nThe answer is 3."}) + "\n")
    with ScriptedServer(lambda body, attempt: "no idea") as server:
        def args(model):
            return ["correct", "--mistakes", str(mistakes), "--corrector", f"c={model}@{server.base_url}", "--quiet",
                    "--out", str(tmp_path / "corr")]

        CliRunner().invoke(main, args("gpt-a"))
        changed = CliRunner().invoke(main, args("gpt-b"))
        assert server.request_count == 1
    assert changed.exit_code == EXIT_ERROR
    assert "corrector was run here with model 'gpt-a', now 'gpt-b'" in changed.output


@pytest.mark.parametrize("fresh", [False, True])
def test_lema_run_saves_the_recipe_and_refuses_changed_sampling(tmp_path, fresh):
    data = problem_file(tmp_path / "problems.jsonl")
    out = tmp_path / "run"
    with ScriptedServer(wrong) as server:
        def recipe(temperature):
            path = tmp_path / "r.yaml"
            path.write_text(f"data_file: {data}\ngenerators: [{{name: g, model: m, base_url: '{server.base_url}', "
                            f"temperature: {temperature}}}]\ncorrector: {{name: c, model: m, base_url: '{server.base_url}'}}\n"
                            "export: {allow_no_corrections: true}\n")  # this corrector verifies none
            return str(path)

        first = CliRunner().invoke(main, ["run", recipe(0.7), "--no-train", "--out", str(out)])
        assert json.loads((out / "recipe.json").read_text())["generators"][0]["temperature"] == 0.7
        again = CliRunner().invoke(main, ["run", recipe(0.9), "--no-train", "--out", str(out), *(["--fresh"] if fresh else [])])
    assert first.exit_code == 0, first.output
    if fresh:
        assert again.exit_code == 0, again.output
        assert json.loads((out / "recipe.json").read_text())["generators"][0]["temperature"] == 0.9
    else:
        assert again.exit_code == EXIT_ERROR
        assert "generator g was run here with temperature 0.7, now 0.9" in again.output
        assert "axolotl train" not in again.output

"""`lema run`: a whole recipe end to end against the scripted server, its resume after a kill,
validation before any request, and the demo recipe on the real embedded model."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from lema_plugin.cli import main
from lema_testing.scripted_server import ScriptedServer, count_tokens, prompt_text
from lema_plugin.problems import load_problems

LIMIT = 3
OUTPUTS = ("sample/paths.jsonl", "sample/mistakes.jsonl", "correct/corrections.jsonl", "cot/cot.jsonl",
           "data/lema/train.jsonl", "data/cot-only/train.jsonl")


@pytest.fixture(scope="module")
def problems(shared_data):
    os.environ["LEMA_DATA_DIR"] = str(shared_data)
    return load_problems("gsm8k", "train", limit=LIMIT)


def make_responder(problems):
    """Generators always answer 1 (wrong for these questions); the corrector fixes step 1."""

    def responder(body: dict, attempt: int) -> str:
        text = prompt_text(body)
        # few-shot corrector prompts hold other questions too: the one asked is the last one in the text
        target = max(problems, key=lambda p: text.rfind(p.question))
        if "Incorrect Step" in text:
            return (f"Incorrect Step: Step 1.\nExplanation: the total is computed wrongly.\n"
                    f"Correct Solution:\nStep 1: Redo the sum. The answer is {target.answer}.")
        return "Step 1: Add the numbers.\nStep 2: So the total is 1. The answer is 1."

    return responder


def write_recipe(path: Path, server: ScriptedServer, out: Path, **changes) -> Path:
    recipe = {
        "dataset": "gsm8k",
        "split": "train",
        "limit": LIMIT,
        "out": str(out),
        "concurrency": 2,
        "generators": [{"name": "gen", "model": "m", "base_url": server.base_url, "samples": 2, "temperature": 0.7}],
        "corrector": {"name": "fixer", "model": "c", "base_url": server.base_url, "samples": 2, "keep": 1},
        "cot": {"source": "gold"},
        "export": {"format": "chat_template", "mixes": ["lema", "cot-only"]},
        **changes,
    }
    path.write_text(yaml.safe_dump(recipe))
    return path


def read_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_recipe_runs_every_stage_and_reruns_for_free(tmp_path, problems, monkeypatch):
    # axolotl's schema check of the ready configs is slow to import; test_ready_config runs it
    monkeypatch.setattr("lema_plugin.export.axolotl_config.validate", lambda config, n_gpu=1: "checked")
    with ScriptedServer(make_responder(problems)) as server:
        export = {"format": "chat_template", "mixes": ["lema", "cot-only"], "axolotl_config": "smollm2-135m-cpu-smoke"}
        recipe = write_recipe(tmp_path / "r.yaml", server, tmp_path / "run", export=export)
        result = CliRunner().invoke(main, ["run", str(recipe)])
        assert result.exit_code == 0, result.output
        first_requests = server.request_count
        # 3 questions x 2 samples, then one correction each (the first attempt is verified)
        assert first_requests == LIMIT * 2 + LIMIT

        out = tmp_path / "run"
        assert len(read_lines(out / "sample/paths.jsonl")) == LIMIT * 2
        mistakes = read_lines(out / "sample/mistakes.jsonl")
        assert len(mistakes) == LIMIT  # the two identical samples of a question count once
        corrections = read_lines(out / "correct/corrections.jsonl")
        assert len(corrections) == LIMIT and all(c["correct"] for c in corrections)
        lema = read_lines(out / "data/lema/train.jsonl")
        cot_only = read_lines(out / "data/cot-only/train.jsonl")
        assert len(lema) == 2 * LIMIT and len(cot_only) == LIMIT
        summary = json.loads((out / "run_summary.json").read_text())["rows"]
        assert summary["mistakes kept"] == str(LIMIT)
        assert summary["correction success"].startswith(f"{LIMIT}/{LIMIT}")
        assert "LeMa run summary" in result.output
        # Next: the train and eval commands of both twins, as printed, for this run's folders
        next_lines = result.output.split("Next:\n", 1)[1].splitlines()
        for mix in ("lema", "cot-only"):
            config = out / "data" / mix / "axolotl.yml"
            assert f"  axolotl train {config} --launcher python" in next_lines  # a CPU config: one CPU process
            [evaluate] = [line for line in next_lines if line.startswith("  lm_eval") and f"data/{mix}/adapter" in line]
            assert "--apply_chat_template" in evaluate and "--tasks lema_gsm8k" in evaluate
            assert yaml.safe_load(config.read_text())["datasets"][0]["path"] == str(out / "data" / mix / "train.jsonl")
        assert any("official_match is the paper-comparable score" in line for line in next_lines)
        assert next_lines[0] == f"  export AXOLOTL_DO_NOT_TRACK=1 LEMA_DATA_DIR={Path(os.environ['LEMA_DATA_DIR']).resolve()}"

        again = CliRunner().invoke(main, ["run", str(recipe)])
        assert again.exit_code == 0, again.output
        assert server.request_count == first_requests  # everything came from the store and the cache

    # the train and eval steps get this run's data, model and folders (running them is make demo's job)
    from lema_plugin.export.recipe_mixes import build_mixes
    from lema_plugin.run_summary import RunReport
    from lema_plugin.train_eval import eval_command, train_config
    from lema_plugin.recipe import load_recipe

    full = type(load_recipe(str(recipe))).model_validate({
        **load_recipe(str(recipe)).model_dump(),
        "train": {"config": "axolotl_configs/smollm2-135m-cpu-smoke.yml", "base_model": "/models/small", "max_steps": 2},
        "eval": {"tasks": ["lema_gsm8k"], "limit": 5},
    })
    build_mixes(full, out, out / "data" / "corrections.jsonl", RunReport(str(out)))
    config = yaml.safe_load(train_config(full, out).read_text())
    info = json.loads((out / "data/lema/dataset_info.json").read_text())
    assert config["datasets"] == info["axolotl"]["datasets"]
    assert config["datasets"][0]["path"].endswith("data/lema/train.jsonl")
    assert (config["base_model"], config["max_steps"]) == ("/models/small", 2)
    assert Path(config["output_dir"]).parent == out / "data/lema/adapter"  # keyed by the data and config
    # the cot-only twin's ready config is the same but for its data and folders
    twin = yaml.safe_load((out / "data/cot-only/axolotl.yml").read_text())
    different = {k for k in config.keys() | twin.keys() if config.get(k) != twin.get(k)}
    assert different == {"datasets", "output_dir", "dataset_prepared_path"}
    command = eval_command(full, out)
    assert command[command.index("--tasks") + 1] == "lema_gsm8k" and "--limit" in command
    assert "--apply_chat_template" in command  # the data was exported as chat_template
    assert "--metadata" not in command  # the tasks read LEMA_DATA_DIR, as every lema command


NEW_QUESTIONS = [  # what the "strong model" invents, one per seed: (question, answer)
    ("A baker fills 6 trays with 12 rolls each and sells 20 rolls before noon. How many rolls are left?", "52"),
    ("Priya reads 15 pages every evening for 9 evenings, then skips 2 of those pages. How many pages did she keep?", "133"),
    ("A parking garage has 4 floors with 35 spaces on each floor, and 58 cars are parked. How many spaces are empty?", "82"),
]


def evolving_responder(problems):
    """Generators ("m") answer 1; the strong model ("c") corrects, invents and answers questions."""
    known = [(p.question, p.answer) for p in problems] + NEW_QUESTIONS

    def responder(body: dict, attempt: int) -> str:
        text = prompt_text(body)
        question, answer = max(known, key=lambda qa: text.rfind(qa[0]))
        if body["model"] == "m":
            return "Step 1: Add the numbers.\nStep 2: So the total is 1. The answer is 1."
        if "Incorrect Step" in text:
            return (f"Incorrect Step: Step 1.\nExplanation: the total is computed wrongly.\n"
                    f"Correct Solution:\nStep 1: Redo the sum. The answer is {answer}.")
        if "New problem:" in text:  # one new question per seed, in seed order
            seed = next(i for i, p in enumerate(problems) if p.question in text)
            return f"New problem: {NEW_QUESTIONS[seed][0]}"
        return f"Step 1: Work it out. The answer is {answer}."

    return responder


def test_recipe_with_evolution_corrects_the_new_questions_too(tmp_path, problems):
    with ScriptedServer(evolving_responder(problems)) as server:
        recipe = write_recipe(tmp_path / "r.yaml", server, tmp_path / "run",
                              evolve={"enabled": True, "per_seed": 1, "samples": 3, "min_agreement": 0.6})
        result = CliRunner().invoke(main, ["run", str(recipe)])
        assert result.exit_code == 0, result.output
    out = tmp_path / "run"
    evolved = read_lines(out / "evolve/problems.jsonl")
    assert sorted((p["question"], p["answer"]) for p in evolved) == sorted(NEW_QUESTIONS)
    assert len(read_lines(out / "evolve/correct/corrections.jsonl")) == len(NEW_QUESTIONS)
    merged = read_lines(out / "data/corrections.jsonl")
    assert len(merged) == LIMIT + len(NEW_QUESTIONS)
    assert len(read_lines(out / "data/lema/train.jsonl")) == LIMIT + len(merged)  # gold CoT for the original questions + every correction
    summary = json.loads((out / "run_summary.json").read_text())["rows"]
    assert summary["evolved questions"] == str(len(NEW_QUESTIONS))
    assert summary["evolved corrections verified"].startswith(f"{len(NEW_QUESTIONS)} of ")


def test_bad_recipe_key_fails_before_any_request(tmp_path, problems):
    with ScriptedServer(make_responder(problems)) as server:
        recipe = write_recipe(tmp_path / "r.yaml", server, tmp_path / "run", corector={"model": "x"})
        result = CliRunner().invoke(main, ["run", str(recipe)])
        assert result.exit_code != 0
        assert "corector: unknown key; did you mean 'corrector'?" in result.output
        assert server.request_count == 0 and not (tmp_path / "run").exists()


def test_missing_axolotl_config_fails_before_any_request(tmp_path, problems):
    with ScriptedServer(make_responder(problems)) as server:
        recipe = write_recipe(tmp_path / "r.yaml", server, tmp_path / "run", train={"config": "no/such.yml"})
        result = CliRunner().invoke(main, ["run", str(recipe)])
        assert result.exit_code != 0 and "train.config no/such.yml: no such axolotl config" in result.output
        assert server.request_count == 0


def test_axolotl_config_that_cannot_read_the_export_fails_before_any_request(tmp_path, problems):
    with ScriptedServer(make_responder(problems)) as server:
        export = {"format": "input_output", "axolotl_config": "smollm2-135m-cpu-smoke"}
        recipe = write_recipe(tmp_path / "r.yaml", server, tmp_path / "run", export=export)
        result = CliRunner().invoke(main, ["run", str(recipe)])
        assert result.exit_code != 0
        assert "the config reads chat_template rows but the data is built as input_output" in result.output
        assert server.request_count == 0


def test_killed_run_resumes_to_the_same_outputs(tmp_path, problems):
    with ScriptedServer(make_responder(problems), latency=0.3) as server:
        whole = write_recipe(tmp_path / "whole.yaml", server, tmp_path / "whole")
        assert CliRunner().invoke(main, ["run", str(whole)]).exit_code == 0
        server.reset_counts()

        # a fresh run folder (its own cache), killed once some paths are stored
        cut = write_recipe(tmp_path / "cut.yaml", server, tmp_path / "cut", concurrency=1)
        env = {**os.environ, "LEMA_DATA_DIR": os.environ["LEMA_DATA_DIR"]}
        process = subprocess.Popen([sys.executable, "-m", "lema_plugin.cli", "run", str(cut)], env=env,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        paths = tmp_path / "cut/sample/paths.jsonl"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and (not paths.exists() or len(paths.read_text().splitlines()) < 2):
            time.sleep(0.05)
        process.send_signal(signal.SIGKILL)
        process.wait()
        done_before = len(paths.read_text().splitlines())
        assert 2 <= done_before < LIMIT * 2  # really interrupted mid-stage

        sent_before = server.request_count
        result = CliRunner().invoke(main, ["run", str(cut)])
        assert result.exit_code == 0, result.output
        # the rerun asks only for what was missing (a request in flight at the kill may be asked again)
        assert server.request_count - sent_before <= (LIMIT * 2 - done_before) + 1 + LIMIT
        for name in OUTPUTS:
            assert (tmp_path / "cut" / name).read_text() == (tmp_path / "whole" / name).read_text(), name


@pytest.mark.slow
def test_demo_recipe_on_the_embedded_model(tmp_path, shared_data, embedded_endpoint):
    """The shipped demo recipe, fewer questions, no training: sample -> correct -> build for real."""
    base = embedded_endpoint.base_urls[0]
    os.environ["LEMA_DATA_DIR"] = str(shared_data)
    from lema_plugin.recipe import load_recipe

    demo = load_recipe("demo").model_dump(exclude_none=True)
    demo.update(limit=2, out=str(tmp_path / "demo"), train=None, eval=None)
    demo.pop("train"), demo.pop("eval")
    demo["generators"][0].update(base_url=base, model=embedded_endpoint.model, max_tokens=96)
    demo["corrector"].update(base_url=base, model=embedded_endpoint.model, max_tokens=96, samples=1)
    recipe = tmp_path / "demo.yaml"
    recipe.write_text(yaml.safe_dump(demo))
    result = CliRunner().invoke(main, ["run", str(recipe)])
    out = tmp_path / "demo"
    if any(p["kind"] == "failed" for p in read_lines(out / "sample/paths.jsonl")):  # a CPU too busy to answer in time
        assert result.exit_code == 5 and "finally failed" in result.output, result.output
        assert not (out / "data").exists()  # stopped before building a mix from half the data
        return
    if not read_lines(out / "sample/mistakes.jsonl"):  # 96-token paths may all be truncated or right
        assert result.exit_code == 4 and "sample: no mistakes" in result.output, result.output
        assert not (out / "data").exists()
        return
    assert result.exit_code == 0, result.output
    paths = read_lines(out / "sample/paths.jsonl")
    assert len(paths) == 2 * demo["generators"][0]["samples"]
    from lema_plugin.grading import is_correct

    assert all(p["correct"] == is_correct(p["text"], p["answer"], "gsm8k") for p in paths if p["kind"] != "failed")
    judged = len(read_lines(out / "correct/corrections.jsonl")) + len(read_lines(out / "correct/rejected.jsonl"))
    assert judged == len(read_lines(out / "sample/mistakes.jsonl"))
    assert len(read_lines(out / "data/lema/train.jsonl")) >= 2
    assert re.search(r"correction success\s+\d+/\d+", result.output)


def test_run_summary_tokens_are_what_the_client_paid_for_in_every_stage(tmp_path, problems):
    """Tokens and dollars per stage in run_summary.json equal what the server billed for that
    stage's requests (the server counts whitespace tokens), every stage included: CoT,
    evolution (with its own sampling and correction) and the first-error check."""
    answer = evolving_responder(problems)
    originals = [p.question for p in problems]
    billed: dict[str, int] = {}

    def billing(body: dict, attempt: int) -> str:
        reply = answer(body, attempt)
        text = prompt_text(body)
        about_original = max(originals + [q for q, _ in NEW_QUESTIONS], key=text.rfind) in originals
        if "is started but not finished" in text:
            stage = "first-error"
        elif "New problem:" in text or not about_original:
            stage = "evolve"
        elif body["model"] == "m":
            stage = "sample"
        elif "Incorrect Step" in text:
            stage = "correct"
        else:
            stage = "cot"
        billed[stage] = billed.get(stage, 0) + count_tokens(text) + count_tokens(reply)
        return reply

    with ScriptedServer(billing) as server:
        strong = {"name": "strong", "model": "c", "base_url": server.base_url}
        recipe = write_recipe(tmp_path / "r.yaml", server, tmp_path / "run",
                              evolve={"enabled": True, "per_seed": 1, "samples": 3, "min_agreement": 0.6},
                              cot={"source": "model", "model": strong, "samples": 2},
                              first_error={"enabled": True, "samples": 2, "generator": {**strong, "name": "checker",
                                                                                        "price": "1/2"}})
        result = CliRunner().invoke(main, ["run", str(recipe)])
        assert result.exit_code == 0, result.output
        assert not server.errors
    summary = json.loads((tmp_path / "run" / "run_summary.json").read_text())
    assert set(billed) == {"sample", "correct", "evolve", "cot", "first-error"}
    assert summary["tokens"] == billed
    checker = summary["by_endpoint"]["checker"]  # the one priced endpoint: dollars are the client's tokens x price
    assert summary["costs"] == {"first-error": pytest.approx((checker["prompt_tokens"] * 1 + checker["completion_tokens"] * 2) / 1e6)}
    assert summary["rows"]["tokens (prompt + completion)"] == f"{sum(billed.values()):,}"
    assert summary["usage"]["prompt_tokens"] + summary["usage"]["completion_tokens"] == sum(billed.values())


def test_recipe_exports_the_step_level_kinds(tmp_path, problems, monkeypatch):
    monkeypatch.setattr("lema_plugin.export.axolotl_config.validate", lambda config, n_gpu=1: "checked")
    with ScriptedServer(make_responder(problems)) as server:
        recipe = write_recipe(tmp_path / "r.yaml", server, tmp_path / "run",
                              export={"mixes": ["lema", "step-dpo", "solution-dpo", "prm"], "val_fraction": 0.0,
                                      "axolotl_config": "smollm2-135m-cpu-smoke"})
        result = CliRunner().invoke(main, ["run", str(recipe)])
        assert result.exit_code == 0, result.output
    out = tmp_path / "run"
    corrections = read_lines(out / "data/corrections.jsonl")
    step_pairs = read_lines(out / "data/step-dpo/train.jsonl")
    labels = read_lines(out / "data/prm/train.jsonl")
    # each wrong path has two steps and its first is named wrong: one pair and two label rows per correction
    assert {r["id"] for r in step_pairs} == {c["id"] for c in corrections}
    assert all(r["rejected"]["content"] == "Add the numbers.\nSo the total is 1. The answer is 1." for r in step_pairs)
    assert len(read_lines(out / "data/solution-dpo/train.jsonl")) == LIMIT
    assert sorted(r["kind"] for r in labels) == sorted(["first-error"] * LIMIT + ["corrected"] * LIMIT + ["gold"] * LIMIT)
    summary = json.loads((out / "run_summary.json").read_text())["rows"]
    assert summary["examples step-dpo"] == f"{LIMIT} train (step-pair {LIMIT})"
    # each kind gets its ready config from the same writer, and its commands after Next:
    next_lines = result.output.split("Next:\n", 1)[1].splitlines()
    for kind in ("step-dpo", "solution-dpo", "prm"):
        ready = yaml.safe_load((out / "data" / kind / "axolotl.yml").read_text())
        assert Path(ready["datasets"][0]["path"]) == out / "data" / kind / "train.jsonl"
        assert f"  # {kind}" in next_lines
        assert any(f"axolotl train {out / 'data' / kind / 'axolotl.yml'}" in line for line in next_lines)


def test_recipe_checks_first_errors_and_builds_from_confirmed_corrections(tmp_path, problems):
    corrector = make_responder(problems)

    def responder(body: dict, attempt: int) -> str:
        text = prompt_text(body)
        if "The solution below is started" not in text:
            return corrector(body, attempt)
        target = max(problems, key=lambda p: text.rfind(p.question))
        # from the wrong first step nothing recovers; from scratch, all but the first question are solved
        if text.rstrip().endswith("Add the numbers.") or target is problems[0]:
            return "So the total is 1. The answer is 1."
        return f"The answer is {target.answer}."

    with ScriptedServer(responder) as server:
        recipe = write_recipe(tmp_path / "r.yaml", server, tmp_path / "run",
                              first_error={"enabled": True, "samples": 2, "confirmed_only": True},
                              export={"mixes": ["lema", "step-dpo"]})
        result = CliRunner().invoke(main, ["run", str(recipe)])
        assert result.exit_code == 0, result.output
        # 3 questions x 2 samples, 3 corrections, then 2 prefixes x 2 continuations; the empty
        # prefix before step 1 is one prompt per question, so nothing is asked twice
        assert server.request_count == LIMIT * 2 + LIMIT + LIMIT * 2 * 2
    out = tmp_path / "run"
    checks = read_lines(out / "first-error/checks.jsonl")
    assert sorted(c["reason"] for c in checks) == ["before_fails", "confirmed", "confirmed"]
    confirmed = {c["correction_id"] for c in checks if c["confirmed"]}
    assert {r["id"] for r in read_lines(out / "data/step-dpo/train.jsonl")} == confirmed
    assert len(read_lines(out / "data/lema/train.jsonl")) == 2 * LIMIT  # the SFT mix keeps every correction
    summary = json.loads((out / "run_summary.json").read_text())
    assert summary["rows"]["first error confirmed"] == "2/3 (66.7%)"
    assert summary["tokens"]["first-error"] > 0 and "first-error" in summary["timings"]


def test_recipe_refuses_a_restriction_without_the_check(tmp_path):
    from lema_plugin.recipe import RecipeError, load_recipe

    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump({"generators": [{"model": "m"}], "first_error": {"confirmed_only": True}}))
    with pytest.raises(RecipeError, match="first_error: .*confirmed_only needs the check"):
        load_recipe(str(path))


def test_a_run_without_verified_corrections_says_so_first_and_exits_4(tmp_path, problems):
    """The corrector gets every answer wrong: the LeMa mix would be the CoT-only mix. The summary
    says so on its first line and the run stops before building (exit 4); a recipe that allows it
    (the demo) builds anyway, saying why."""

    def responder(body: dict, attempt: int) -> str:
        if "Incorrect Step" in prompt_text(body):
            return "Incorrect Step: Step 1.\nExplanation: wrong sum.\nCorrect Solution:\nStep 1: The answer is 2."
        return "Step 1: Add the numbers.\nStep 2: So the total is 1. The answer is 1."

    with ScriptedServer(responder) as server:
        recipe = write_recipe(tmp_path / "r.yaml", server, tmp_path / "run")
        result = CliRunner().invoke(main, ["run", str(recipe)])
        assert result.exit_code == 4, result.output
        summary = result.output.split("LeMa run summary", 1)[1].splitlines()
        assert summary[1].startswith("stopped: no verified corrections")
        assert "export.allow_no_corrections" in summary[1]
        assert not (tmp_path / "run" / "data" / "lema").exists()
        assert json.loads((tmp_path / "run" / "run_summary.json").read_text())["alerts"] == [summary[1]]

        allowed = write_recipe(tmp_path / "a.yaml", server, tmp_path / "run",
                               export={"mixes": ["lema", "cot-only"], "allow_no_corrections": True})
        result = CliRunner().invoke(main, ["run", str(allowed)])
        assert result.exit_code == 0, result.output
        summary = result.output.split("LeMa run summary", 1)[1].splitlines()
        assert summary[1].startswith("note: no verified corrections") and "the lema mix is the CoT-only mix" in summary[1]
    out = tmp_path / "run" / "data"
    assert read_lines(out / "lema" / "train.jsonl") == read_lines(out / "cot-only" / "train.jsonl")


def test_only_the_demo_recipe_builds_without_corrections(monkeypatch):
    from lema_plugin.recipe import load_recipe

    for name in ("LEMA_GEN_URL_7B", "LEMA_GEN_URL_13B", "LEMA_GEN_URL_70B"):
        monkeypatch.setenv(name, "http://gpu:8000/v1")
    assert load_recipe("demo").export.allow_no_corrections is True
    assert load_recipe("gsm8k-paper").export.allow_no_corrections is False
    assert load_recipe("math-paper").export.allow_no_corrections is False

"""Fix-and-rerun: whatever stopped a run before it stored an answer (a failed endpoint check, a
cost preview, requests that all failed) leaves nothing behind that refuses the fixed rerun; a URL
missing its /v1 is caught by the endpoint check with the /v1 form to use. All through the real
commands against the scripted server."""
from __future__ import annotations

import json
import re
from pathlib import Path

import yaml
from click.testing import CliRunner

from lema_plugin.cli import main
from lema_plugin.errors import EXIT_ERROR, EXIT_FAILED
from lema_testing.scripted_server import Reply, ScriptedServer

from test_reliability import problem_file, sample_args


FIXTURES = Path(__file__).parent / "fixtures"


def wrong(body, attempt):
    return "I think it is 5. The answer is 5."


def spec_args(args: list[str], spec: str) -> list[str]:
    args = list(args)
    args[args.index("--generator") + 1] = spec
    return args


def test_a_failed_endpoint_check_leaves_nothing_that_refuses_the_fixed_rerun(tmp_path):
    data = problem_file(tmp_path / "problems.jsonl")
    out = tmp_path / "out"
    with ScriptedServer(wrong, models=("llama-7b",)) as server:
        typo = CliRunner().invoke(main, spec_args(sample_args(data, out, server.base_url), f"g=llama-7c@{server.base_url}"))
        assert typo.exit_code == EXIT_ERROR and "'llama-7c' is not served there" in typo.output, typo.output
        assert not (out / "lema_run.json").exists()
        fixed = CliRunner().invoke(main, spec_args(sample_args(data, out, server.base_url), f"g=llama-7b@{server.base_url}"))
    assert fixed.exit_code == 0, fixed.output
    assert json.loads((out / "lema_run.json").read_text())["sample"]["fixed"]["generator g"]["model"] == "llama-7b"


def test_an_estimate_leaves_nothing_that_refuses_the_run(tmp_path):
    data = problem_file(tmp_path / "problems.jsonl")
    out = tmp_path / "out"
    with ScriptedServer(wrong) as server:
        preview = CliRunner().invoke(main, [*sample_args(data, out, server.base_url, "--temperature", "0.9"), "--estimate"])
        assert preview.exit_code == 0, preview.output
        assert server.request_count == 0 and not (out / "lema_run.json").exists()
        run = CliRunner().invoke(main, sample_args(data, out, server.base_url, "--temperature", "0.7"))
    assert run.exit_code == 0, run.output


def test_requests_that_all_failed_leave_nothing_that_refuses_the_fixed_rerun(tmp_path):
    """A server that lists no models and answers 404 to a misspelt one: every request fails and
    is stored as failed; the rerun with the right name is not refused, and the old failures are
    no pending work."""

    def served(body, attempt):
        return wrong(body, attempt) if body["model"] == "m" else Reply(status=404, content="model not found")

    data = problem_file(tmp_path / "problems.jsonl")
    out = tmp_path / "out"
    with ScriptedServer(served) as server:
        typo = CliRunner().invoke(main, spec_args(sample_args(data, out, server.base_url), f"g=mm@{server.base_url}"))
        assert typo.exit_code == EXIT_FAILED, typo.output
        assert "top reasons: 6x HTTP 404" in typo.output  # the reasons, with their counts
        assert not (out / "lema_run.json").exists()
        fixed = CliRunner().invoke(main, sample_args(data, out, server.base_url))
    assert fixed.exit_code == 0, fixed.output
    paths = [json.loads(line) for line in (out / "paths.jsonl").read_text().splitlines()]
    assert len(paths) == 6 and not any(p["kind"] == "failed" for p in paths)


def test_a_url_without_v1_is_caught_by_the_check_with_the_v1_form(tmp_path):
    data = problem_file(tmp_path / "problems.jsonl")
    out = tmp_path / "out"
    with ScriptedServer(wrong) as server:
        root = server.base_url.removesuffix("/v1")
        bare = CliRunner().invoke(main, sample_args(data, out, root))
        assert server.request_count == 0
        assert bare.exit_code == EXIT_ERROR, bare.output
        error = bare.output.strip().splitlines()[-1]
        assert f"GET {root}/models: HTTP 404" in error and f"use m@{root}/v1" in error and "nothing was requested" in error
        fixed = CliRunner().invoke(main, sample_args(data, out, server.base_url))
    assert fixed.exit_code == 0, fixed.output


def test_lema_run_reruns_after_a_fixed_model_name(tmp_path):
    data = problem_file(tmp_path / "problems.jsonl")

    def recipe(model: str, url: str) -> Path:
        path = tmp_path / "r.yaml"
        path.write_text(yaml.safe_dump({
            "data_file": str(data), "out": str(tmp_path / "run"),
            "generators": [{"name": "g", "model": model, "base_url": url, "samples": 1}],
            "corrector": {"name": "c", "model": "m", "base_url": url}, "export": {"mixes": ["cot-only"]}}))
        return path

    with ScriptedServer(wrong, models=("m",)) as server:
        typo = CliRunner().invoke(main, ["run", str(recipe("n", server.base_url))])
        assert typo.exit_code == EXIT_ERROR and "'n' is not served there" in typo.output, typo.output
        preview = CliRunner().invoke(main, ["run", str(recipe("m", server.base_url)), "--estimate"])
        assert preview.exit_code == 0, preview.output
        fixed = CliRunner().invoke(main, ["run", str(recipe("m", server.base_url))])
    assert fixed.exit_code in (0, 4), fixed.output  # 4: these paths may hold no mistake; never a refusal
    assert "records of both would mix" not in fixed.output


# -- the reasons, whenever requests finally failed -----------------------------------------------

def test_every_command_prints_the_top_failure_reasons_with_counts(tmp_path):
    """sample, correct, cot, evolve and first-error (generated commands), import and grade with a
    judge, and `lema run`: when requests finally failed, the reasons and their counts are printed
    and the exit status is 5."""
    from test_stage_judge import PROBLEMS, Scripted, _write

    script = Scripted()

    def responder(body, attempt):
        if body["model"] in ("judge-model", "down"):
            return Reply(status=503)
        return script(body, attempt)

    def run(*args):
        result = CliRunner().invoke(main, [*args, "--max-retries", "0", "--quiet"] if args[0] != "grade" else list(args))
        assert result.exit_code == EXIT_FAILED, result.output
        error = result.output.strip().splitlines()[-1]
        assert any(said in error for said in ("finally failed", "wait for the judge", "all failed")), error
        assert re.search(r"top reasons: \d+x HTTP 503", error), error
        return error

    data = _write(tmp_path / "math.jsonl", PROBLEMS)
    with ScriptedServer(responder) as server:
        url = server.base_url
        judge = f"judge=judge-model@{url}"
        run("sample", "--dataset", "math", "--data-file", str(data), "--generator", f"gen@{url}", "-k", "2", "--seed", "0",
            "--out", str(tmp_path / "s"), "--judge", judge)
        run("sample", "--dataset", "math", "--data-file", str(data), "--generator", f"down@{url}", "--out", str(tmp_path / "d"))
        mistakes = _write(tmp_path / "mistakes.jsonl", [
            {"id": "m1", "question": PROBLEMS[0]["problem"], "answer": "4", "dataset": "math", "text": "1+1=3. The answer is 3."}])
        run("correct", "--mistakes", str(mistakes), "--corrector", f"down@{url}", "--out", str(tmp_path / "c"))
        run("cot", "--source", "model", "--dataset", "math", "--data-file", str(data), "--model", f"down@{url}",
            "--out", str(tmp_path / "cot"))
        paths = _write(tmp_path / "paths.jsonl", [
            {"question": p["problem"], "answer": p["solution"], "dataset": "math", "text": "I am not sure."} for p in PROBLEMS])
        run("import", str(paths), "--out", str(tmp_path / "i"), "--judge", judge)
        run("grade", "--predictions", str(paths), "--out", str(tmp_path / "g"), "--judge", judge, "--quiet")
        corrections = str(FIXTURES / "corrections.jsonl")
        run("evolve", "--corrections", corrections, "--model", f"down@{url}", "--no-contamination-check",
            "--out", str(tmp_path / "e"))
        run("first-error", "--corrections", corrections, "--generator", f"down@{url}", "--samples", "1",
            "--out", str(tmp_path / "f"))
        recipe = tmp_path / "r.yaml"
        recipe.write_text(yaml.safe_dump({"data_file": str(data), "dataset": "math", "out": str(tmp_path / "run"),
                                          "generators": [{"name": "g", "model": "down", "base_url": url, "samples": 1}],
                                          "corrector": {"model": "down", "base_url": url}, "max_retries": 0}))
        result = CliRunner().invoke(main, ["run", str(recipe), "--quiet"])
        assert result.exit_code == EXIT_FAILED, result.output
        assert re.search(r"top reasons: 3x HTTP 503", result.output.strip().splitlines()[-1]), result.output


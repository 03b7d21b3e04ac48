"""A run never spends its way through a dead or wrong endpoint (issue 12): each endpoint is named
in a start line and checked before its first paid request; a stage whose first requests all
fail stops with the top reasons; `lema run` stops before building; a resumed run says how many
requests were new. All through the real commands against the scripted server."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from lema_plugin import asking
from lema_plugin.cli import main
from lema_plugin.errors import EXIT_ERROR, EXIT_FAILED
from lema_testing.scripted_server import Reply, ScriptedServer

from test_reliability import DEAD_URL, problem_file, sample_args


def wrong(body, attempt):
    return "I think it is 5. The answer is 5."


def many_problems(path, count):
    path.write_text("".join(json.dumps({"question": f"What is {n} plus {n}?", "answer": f"#### {2 * n}"}) + "\n"
                            for n in range(1, count + 1)))
    return path


def test_a_dead_endpoint_is_one_line_before_any_request_with_a_start_line(tmp_path):
    data = problem_file(tmp_path / "problems.jsonl")
    result = CliRunner().invoke(main, sample_args(data, tmp_path / "out", DEAD_URL))
    assert result.exit_code == EXIT_ERROR, result.output
    lines = result.output.strip().splitlines()
    assert lines[0] == f"generator g (m) -> {DEAD_URL} (chat)"
    assert lines[-1].startswith(f"Error: generator g at {DEAD_URL} does not answer") and "nothing was requested" in lines[-1]
    assert not (tmp_path / "out" / "paths.jsonl").read_text()


def test_a_model_the_server_does_not_list_is_refused_before_any_request(tmp_path):
    data = problem_file(tmp_path / "problems.jsonl")
    with ScriptedServer(wrong, models=("llama-7b", "llama-13b")) as server:
        result = CliRunner().invoke(main, sample_args(data, tmp_path / "out", server.base_url))
        assert server.request_count == 0 and server.model_listings == 1
    assert result.exit_code == EXIT_ERROR, result.output
    assert "model 'm' is not served there (it serves: llama-7b, llama-13b)" in result.output


def test_a_refused_key_stops_before_any_request_and_is_never_shown(tmp_path, monkeypatch):
    monkeypatch.setenv("MY_KEY", "sk-wrong-secret")
    data = problem_file(tmp_path / "problems.jsonl")
    with ScriptedServer(wrong, api_key="sk-right") as server:
        args = sample_args(data, tmp_path / "out", server.base_url)
        args[args.index("--generator") + 1] += ";key_env=MY_KEY"
        result = CliRunner().invoke(main, args)
        assert server.request_count == 0
    assert result.exit_code == EXIT_ERROR, result.output
    assert "the key was refused (from $MY_KEY): HTTP 401" in result.output
    assert "sk-wrong-secret" not in result.output


def test_asks_the_cache_answers_need_no_check(tmp_path):
    data = problem_file(tmp_path / "problems.jsonl")
    cache = tmp_path / "cache"
    with ScriptedServer(wrong) as server:
        first = CliRunner().invoke(main, [*sample_args(data, tmp_path / "a", server.base_url), "--cache-dir", str(cache)])
        assert first.exit_code == 0, first.output
        url = server.base_url
    again = CliRunner().invoke(main, [*sample_args(data, tmp_path / "b", url), "--cache-dir", str(cache)])
    assert again.exit_code == 0, again.output  # the server is gone, and nothing needed it
    assert "6 new requests" in again.output  # new to this folder's store, answered by the cache


def test_a_stage_whose_first_requests_all_fail_stops_with_the_top_reasons(tmp_path):
    data = many_problems(tmp_path / "problems.jsonl", 20)

    def down(body, attempt):
        return Reply(status=503, content="") if "1 plus" in prompt(body) else Reply(status=500)

    with ScriptedServer(down) as server:
        result = CliRunner().invoke(main, [*sample_args(data, tmp_path / "out", server.base_url), "--concurrency", "1"])
        sent = server.request_count
    assert result.exit_code == EXIT_FAILED, result.output
    error = result.output.strip().splitlines()[-1]
    stopped = (f"the first {asking.FIRST_FAILURES} requests all failed, so the stage stopped before the other "
               f"{40 - asking.FIRST_FAILURES};")
    assert stopped in error
    assert "top reasons: 8x HTTP 500: scripted status 500 (gave up after 1 attempt); 2x HTTP 503" in error
    assert sent < 40
    stored = [json.loads(line) for line in (tmp_path / "out" / "paths.jsonl").read_text().splitlines()]
    assert len(stored) >= asking.FIRST_FAILURES and all(p["kind"] == "failed" for p in stored)


def prompt(body):
    return body["messages"][0]["content"]


def test_a_resumed_run_says_0_new_requests(tmp_path):
    data = problem_file(tmp_path / "problems.jsonl")
    with ScriptedServer(wrong) as server:
        first = CliRunner().invoke(main, sample_args(data, tmp_path / "out", server.base_url))
        again = CliRunner().invoke(main, sample_args(data, tmp_path / "out", server.base_url))
    assert "6 new requests" in first.output
    assert again.exit_code == 0 and "0 new requests" in again.output, again.output
    assert "generator g (m) ->" not in again.output, "nothing was asked, so no endpoint was announced"


def recipe(path, url, data):
    path.write_text(f"data_file: {data}\ngenerators: [{{name: g, model: m, base_url: '{url}'}}]\n"
                    f"corrector: {{name: c, model: m, base_url: '{url}'}}\n")
    return path


@pytest.mark.parametrize("server_state", ["dead", "failing", "one-question-failing"])
def test_lema_run_stops_before_building_when_requests_fail(tmp_path, server_state, monkeypatch):
    from lema_plugin.llm.client import LLMClient

    monkeypatch.setattr(LLMClient, "_backoff", lambda self, retry: 0.0)  # a recipe keeps the default retries
    data = problem_file(tmp_path / "problems.jsonl")
    out = tmp_path / "run"
    if server_state == "dead":
        result = CliRunner().invoke(main, ["run", str(recipe(tmp_path / "r.yaml", DEAD_URL, data)), "--no-train", "--out", str(out)])
        assert result.exit_code == EXIT_ERROR, result.output
        assert "does not answer" in result.output
    elif server_state == "failing":
        with ScriptedServer(lambda body, attempt: Reply(status=500)) as server:
            result = CliRunner().invoke(main, ["run", str(recipe(tmp_path / "r.yaml", server.base_url, data)),
                                               "--no-train", "--out", str(out)])
        assert result.exit_code == EXIT_FAILED, result.output
        assert "generator g: the first 10 requests all failed" in result.output  # 3 questions x 4 samples
    else:
        def one_fails(body, attempt):
            return Reply(status=500) if "What is 1 plus 1" in prompt(body) else wrong(body, attempt)

        with ScriptedServer(one_fails) as server:
            result = CliRunner().invoke(main, ["run", str(recipe(tmp_path / "r.yaml", server.base_url, data)),
                                               "--no-train", "--out", str(out)])
        assert result.exit_code == EXIT_FAILED, result.output
        assert f"sample: 4 requests finally failed (reasons in {out / 'sample' / 'paths.jsonl'})" in result.output
    assert "axolotl train" not in result.output
    assert not (out / "data").exists()


def test_a_model_served_from_a_folder_need_not_be_listed(tmp_path):
    """`transformers serve` (behind `lema serve`) lists the hub cache, not the embedded model it
    loaded from a folder: that model is not refused for being unlisted."""
    from lema_plugin.llm.embedded import served_model_name

    data = problem_file(tmp_path / "problems.jsonl")
    with ScriptedServer(wrong, models=("HuggingFaceTB/SmolLM2-360M",)) as server:
        args = sample_args(data, tmp_path / "out", server.base_url)
        args[args.index("--generator") + 1] = f"g={served_model_name()}@{server.base_url}"
        result = CliRunner().invoke(main, args)
        assert server.request_count == 6
    assert result.exit_code == 0, result.output

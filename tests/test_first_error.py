"""The first-error check against the scripted server: continuations from the two prefixes, the
verdicts and their thresholds, resume, and the build restricted to confirmed corrections."""
from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from lema_plugin.cli import main
from lema_plugin.export import build_step_dataset
from lema_plugin.export.steps import confirmed_ids, load_step_corrections
from lema_plugin.first_error import CHECKS, CONTINUATIONS, SUMMARY, FirstErrorSettings, check_first_errors
from lema_plugin.llm import LLMClient
from lema_testing.scripted_server import Reply, ScriptedServer, prompt_text
from lema_plugin.prompts import render
from lema_testing.files import read_jsonl as read

FIXTURES = Path(__file__).parent / "fixtures"
COT = FIXTURES / "cot.jsonl"


def fixture_corrections() -> list[dict]:
    return [json.loads(line) for line in (FIXTURES / "corrections.jsonl").read_text().splitlines()]


def write_corrections(tmp_path: Path, extra: list[dict] = ()) -> Path:
    records = fixture_corrections()
    records[3] = {**records[3], "level": "Level 2", "subject": "Algebra"}  # the MATH one
    path = tmp_path / "corrections.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in [*records, *extra]))
    return path


# How many of 8 continuations reach the right answer, by correction and prefix: clips and cube
# are confirmed, weng recovers from its wrong step, wallet fails even before it.
RIGHT_OF_8 = {"corr-clips-1": (6, 0), "corr-weng-1": (8, 5), "corr-wallet-1": (3, 0), "corr-cube-1": (4, 2)}


class Generator:
    """Continues a prefix: right for the first n identical requests, wrong after (the scripted
    server numbers identical request bodies 0, 1, 2, ...)."""

    def __init__(self, records: list[dict]):
        self.records = records
        self.prompts: list[str] = []

    def __call__(self, body: dict, attempt: int) -> str | Reply:
        text = prompt_text(body)
        self.prompts.append(text)
        record = max(self.records, key=lambda r: text.rfind(r["question"]))
        k = record["incorrect_step"]
        includes_error = text.rstrip().endswith(record["steps"][k - 1])
        right_before, right_including = RIGHT_OF_8[record["id"]]
        right = attempt < (right_including if includes_error else right_before)
        return f"So we finish the sum. The answer is {record['answer'] if right else '-7'}."


def run_check(server, out: Path, corrections: Path, mode: str = "chat", **settings):
    loaded = load_step_corrections(corrections)
    client = LLMClient(cache_dir=out / ".cache", concurrency=4, timeout=10, max_retries=1, progress=False,
                       backoff_base=0.05)

    async def go():
        async with client:
            return await check_first_errors(loaded.records, [server.endpoint(model="gen", mode=mode)], client, out,
                                            FirstErrorSettings(**settings), skipped=loaded.skipped)

    return asyncio.run(go())


def test_check_confirms_by_the_two_success_rates_and_reports_by_generator_and_level(tmp_path):
    corrections = write_corrections(tmp_path)
    generator = Generator(fixture_corrections())
    with ScriptedServer(generator) as server:
        summary = run_check(server, tmp_path / "check", corrections)
        assert server.request_count == 4 * 2 * 8
    checks = {c["correction_id"]: c for c in read(tmp_path / "check" / CHECKS)}
    assert {k: c["reason"] for k, c in checks.items()} == {
        "corr-clips-1": "confirmed", "corr-weng-1": "step_recovers", "corr-wallet-1": "before_fails",
        "corr-cube-1": "confirmed",
    }
    for cid, (right_before, right_including) in RIGHT_OF_8.items():
        assert checks[cid]["before"] == {"correct": right_before, "samples": 8, "rate": right_before / 8}
        assert checks[cid]["including"] == {"correct": right_including, "samples": 8, "rate": right_including / 8}
    assert checks["corr-cube-1"]["level"] == "Level 2" and checks["corr-clips-1"]["mistake_model"] == "llama-2-7b"

    assert (summary.checked, summary.confirmed, summary.confirmation_rate) == (4, 2, 0.5)
    assert {k: (g.checked, g.confirmed) for k, g in summary.by_generator.items()} == {
        "llama-2-7b": (3, 2), "mistral-7b": (1, 0)}
    assert {k: (g.checked, g.confirmed) for k, g in summary.by_level.items()} == {"Level 2": (1, 1)}
    assert summary.mean_rate_before == pytest.approx((6 + 8 + 3 + 4) / 32)
    assert summary.usage["total"]["completion_tokens"] > 0 and summary.requests == 64
    written = json.loads((tmp_path / "check" / SUMMARY).read_text())
    assert written["confirmation_rate"] == 0.5 and written["by_generator"]["llama-2-7b"]["rate"] == pytest.approx(2 / 3)
    assert "confirmation rate: 2/4 (50.0%)" in "\n".join(summary.lines())


def test_prefixes_are_the_steps_before_and_through_the_named_step(tmp_path):
    corrections = write_corrections(tmp_path)
    records = fixture_corrections()
    generator = Generator(records)
    with ScriptedServer(generator) as server:
        run_check(server, tmp_path / "chat", corrections, samples=1, min_before=1.0, max_after=0.0)
        run_check(server, tmp_path / "completion", corrections, mode="completion", samples=1, min_before=1.0, max_after=0.0)
    weng = next(r for r in records if r["id"] == "corr-weng-1")
    solve = render("solve", question=weng["question"])
    # completion mode: the solve prompt with the steps where the model's own answer goes
    assert solve + "She earns $12 an hour.\n" in generator.prompts
    assert solve + "She earns $12 an hour.\nShe worked 50 minutes, so she earned 12 * 50 = $600.\n" in generator.prompts
    # chat mode: the same question and prefix in the user turn, asked to continue
    chat = [p for p in generator.prompts if p.startswith("Please solve the following math problem. The solution below")]
    assert any(p.endswith("step by step.\nShe earns $12 an hour.") and weng["question"] in p for p in chat)
    clips = next(r for r in records if r["id"] == "corr-clips-1")  # step 1 wrong: nothing before it
    assert render("solve", question=clips["question"]) in generator.prompts


def test_rerun_asks_nothing_and_new_thresholds_rejudge_for_free(tmp_path):
    corrections = write_corrections(tmp_path)
    with ScriptedServer(Generator(fixture_corrections())) as server:
        run_check(server, tmp_path / "check", corrections)
        first = server.request_count
        again = run_check(server, tmp_path / "check", corrections)
        assert server.request_count == first and again.requests == 0 and again.confirmed == 2
        (tmp_path / "check" / ".cache").rename(tmp_path / "old-cache")  # the run store alone answers
        looser = run_check(server, tmp_path / "check", corrections, min_before=0.375, max_after=0.25)
        assert server.request_count == first
    assert looser.confirmed == 3  # wallet (3/8 before) now passes; weng (5/8 including) still recovers
    assert len(read(tmp_path / "check" / CONTINUATIONS)) == 64


def test_failed_continuations_leave_the_check_incomplete_and_are_asked_again(tmp_path):
    corrections = write_corrections(tmp_path)
    records = fixture_corrections()
    healthy = Generator(records)
    down = {"on": True}

    def flaky(body, attempt):
        # the correction asked last: a stage whose first requests all fail stops as a dead endpoint
        if down["on"] and records[3]["question"] in prompt_text(body):
            return Reply(status=500)
        return healthy(body, attempt)

    with ScriptedServer(flaky) as server:
        summary = run_check(server, tmp_path / "check", corrections)
        assert summary.reasons["incomplete"] == 1 and summary.checked == 3
        assert summary.failed_requests == 16 and "500" in summary.failure_example
        assert "failed requests: 16, asked again on the next run" in "\n".join(summary.lines())
        stored = len(read(tmp_path / "check" / CONTINUATIONS))
        assert stored == 3 * 16
        down["on"] = False
        server.reset_counts()
        summary = run_check(server, tmp_path / "check", corrections)
        assert server.request_count == 16  # only the cube continuations, nothing paid twice
    assert summary.checked == 4 and summary.reasons["incomplete"] == 0


def test_corrections_that_share_a_prefix_share_its_continuations(tmp_path):
    clips = fixture_corrections()[0]
    twin = {**clips, "id": "corr-clips-2", "attempt": 1, "explanation": "worded differently"}
    single = {**clips, "id": "corr-single", "steps": ["48 + 96 = 144. The answer is 144."]}
    corrections = write_corrections(tmp_path, [twin, single])
    with ScriptedServer(Generator(fixture_corrections() + [twin])) as server:
        summary = run_check(server, tmp_path / "check", corrections)
        assert server.request_count == 4 * 2 * 8  # the twin costs nothing
    assert summary.corrections == 5 and summary.skipped["single_step_path"] == 1
    assert "skipped: 1 single step path" in "\n".join(summary.lines())


def test_build_restricted_to_confirmed_corrections(tmp_path):
    corrections = write_corrections(tmp_path)
    with ScriptedServer(Generator(fixture_corrections())) as server:
        run_check(server, tmp_path / "check", corrections)
    confirmed = confirmed_ids(tmp_path / "check" / CHECKS)
    assert confirmed == {"corr-clips-1", "corr-cube-1"}
    info = build_step_dataset(tmp_path / "pairs", "step-dpo", COT, corrections, checks_path=tmp_path / "check" / CHECKS)
    assert {r["id"] for r in read(tmp_path / "pairs" / "train.jsonl")} == confirmed
    assert info["inputs"]["corrections"]["skipped"]["not_confirmed"] == 2
    assert info["restricted_to_confirmed"]["path"].endswith(CHECKS) and info["restricted_to_confirmed"]["examples"] == 2

    result = CliRunner().invoke(main, ["build", "--cot", str(COT), "--corrections", str(corrections), "--mix", "prm",
                                       "--confirmed", str(tmp_path / "check" / CHECKS), "--out", str(tmp_path / "labels")])
    assert result.exit_code == 0, result.output
    assert "2 not confirmed" in result.output
    assert {r["id"].split(":")[0] for r in read(tmp_path / "labels" / "train.jsonl") if r["kind"] != "gold"} == confirmed
    refused = CliRunner().invoke(main, ["build", "--cot", str(COT), "--corrections", str(corrections), "--mix", "lema",
                                        "--confirmed", str(tmp_path / "check" / CHECKS), "--out", str(tmp_path / "sft")])
    assert refused.exit_code != 0 and "--confirmed applies to the step-level kinds" in refused.output


def test_thresholds_must_leave_room_between_them():
    from lema_plugin.errors import LemaError
    from lema_plugin.first_error import FirstErrorSettings as Settings

    with pytest.raises(LemaError, match="max_after"):
        Settings(min_before=0.3, max_after=0.5)
    assert (Settings().samples, Settings().min_before, Settings().max_after) == (8, 0.5, 0.25)


def test_cli_checks_and_prints_the_confirmation_rate(tmp_path):
    corrections = write_corrections(tmp_path)
    with ScriptedServer(Generator(fixture_corrections())) as server:
        result = CliRunner().invoke(main, [
            "first-error", "--corrections", str(corrections), "--generator", f"gen=gen@{server.base_url}",
            "--out", str(tmp_path / "check"), "--samples", "8",
        ])
        assert result.exit_code == 0, result.output
        bad = CliRunner().invoke(main, [
            "first-error", "--corrections", str(corrections), "--generator", f"gen=gen@{server.base_url}",
            "--out", str(tmp_path / "check"), "--min-before", "0.2", "--max-after", "0.4",
        ])
    assert "confirmation rate: 2/4 (50.0%)" in result.output
    assert "llama-2-7b" in result.output and "Level 2" in result.output
    assert bad.exit_code == 2
    assert bad.output.strip().splitlines()[-1] == "Error: FirstErrorSettings: max_after (0.4) must be below min_before (0.2)"


def test_cli_exit_status_says_when_requests_failed_or_nothing_was_checked(tmp_path):
    """5 while some continuations finally failed (a rerun asks only for those), 0 once all are in,
    and 4 when no correction in the file could be checked at all."""
    corrections = write_corrections(tmp_path)
    records = fixture_corrections()
    healthy = Generator(records)
    down = {"on": True}

    def flaky(body, attempt):
        if down["on"] and records[3]["question"] in prompt_text(body):  # asked last: not a dead endpoint
            return Reply(status=500)
        return healthy(body, attempt)

    with ScriptedServer(flaky) as server:
        args = ["first-error", "--corrections", str(corrections), "--generator", f"gen=gen@{server.base_url}",
                "--out", str(tmp_path / "check"), "--max-retries", "0"]
        failed = CliRunner().invoke(main, args)
        down["on"] = False
        done = CliRunner().invoke(main, args)
        single = tmp_path / "single.jsonl"
        single.write_text(json.dumps({**records[0], "id": "one-step", "steps": ["The answer is 3."],
                                      "incorrect_step": 1}) + "\n")
        empty = CliRunner().invoke(main, [*args[:2], str(single), *args[3:6], str(tmp_path / "none"), *args[7:]])
    assert failed.exit_code == 5, failed.output
    assert "finally failed" in failed.output
    assert done.exit_code == 0, done.output
    assert empty.exit_code == 4, empty.output
    assert "no checked corrections produced" in empty.output


@pytest.mark.slow
def test_real_check_with_the_embedded_model(tmp_path, embedded_endpoint):
    """SmolLM2-135M as the generator: this checks files, verdicts and accounting, not quality.
    One request at a time: a CPU server asked twice at once only gets slower."""
    path = tmp_path / "corrections.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in fixture_corrections()[:2]))
    loaded = load_step_corrections(path)
    client = LLMClient(cache_dir=tmp_path / ".cache", concurrency=1, timeout=600, max_retries=1, progress=False)
    settings = FirstErrorSettings(samples=1, max_tokens=40)

    async def go():
        async with client:
            return await check_first_errors(loaded.records, [embedded_endpoint], client, tmp_path, settings)

    summary = asyncio.run(go())
    continuations = read(tmp_path / CONTINUATIONS)
    checks = read(tmp_path / CHECKS)
    assert summary.failed_requests == 0, summary.failure_example
    assert len(continuations) == 2 * 2, "two corrections, two prefixes, one sample each"
    assert all(c["text"].strip() and c["finish_reason"] in ("stop", "length") for c in continuations)
    assert [c["correction_id"] for c in checks] == ["corr-clips-1", "corr-weng-1"]
    for check in checks:
        assert check["generator"] == embedded_endpoint.label and check["reason"] != "incomplete"
        assert check["before"]["samples"] == check["including"]["samples"] == 1
        assert check["confirmed"] == (check["reason"] == "confirmed")
    assert summary.checked == 2 and summary.confirmed == sum(c["confirmed"] for c in checks)
    usage = client.usage[embedded_endpoint.label]
    assert summary.usage["total"]["completion_tokens"] == usage.completion_tokens > 0
    assert json.loads((tmp_path / SUMMARY).read_text())["confirmation_rate"] == summary.confirmation_rate
    assert "confirmation rate:" in "\n".join(summary.lines())


def test_defaults_are_defined_once_in_the_settings():
    import click

    from lema_plugin.recipe import Recipe

    command = main.get_command(click.Context(main), "first-error")
    options = {p.name: p.default for p in command.params}
    recipe = Recipe.model_validate({"generators": [{"model": "m"}]})
    for name, info in FirstErrorSettings.model_fields.items():
        assert options[name] == info.default == getattr(recipe.first_error, name), name
    assert recipe.first_error.settings() == FirstErrorSettings()

"""Paid correctors at scale: the Batch API flow, the hard budget, the cost preview and rate
limits, all against the scripted server's fake Batch API on 127.0.0.1 and the real openai client."""
from __future__ import annotations

import asyncio
import json
import re

import pytest
from click.testing import CliRunner

from lema_plugin.cli import main
from lema_plugin.correct import CORRECTIONS, REJECTED, CorrectSettings, correct_mistakes
from lema_plugin.llm import LLMClient
from lema_plugin.llm.batch import MAX_TRIES, BatchPending, Ledger
from lema_plugin.llm.costs import Budget, BudgetStop, Estimate, prompt_token_bound, worst_case
from lema_plugin.llm.endpoints import parse_endpoint
from lema_plugin.llm.pacing import Pacer, reset_seconds
from lema_testing.scripted_server import Reply, ScriptedServer, prompt_text
from lema_plugin.correct.prompt import build_request
from lema_plugin.records import make_id

PRICE = {"price_prompt": 10.0, "price_completion": 30.0}
GOOD = "Incorrect Step: Step 2.\nExplanation: 3 + 4 is 7, not 8.\nCorrect Solution:\nStep 2: He buys 4 more, so 3 + 4 = 7. The answer is 7."
REPLIES = {
    "good": GOOD,
    "fine": GOOD.replace("3 + 4 is 7", "three plus four is 7"),
    "wrong": GOOD.replace("The answer is 7.", "The answer is 9."),
    "unparseable": "The solution looks right to me.",
    "broken": Reply(status=500),
}


def mistake(name: str) -> dict:
    question = f"{name}: Tom has 3 apples and buys 4 more. How many apples does he have?"
    steps = ["Tom has 3 apples.", "He buys 4 more, so 3 + 4 = 8. The answer is 8."]
    return {"id": make_id("path", question), "problem_id": make_id("gsm8k", question), "dataset": "gsm8k",
            "question": question, "answer": "7", "model": "gen", "sample_index": 0, "text": "\n".join(steps),
            "steps": steps, "prediction": "8", "correct": False, "kind": "wrong"}


def responder(body: dict, attempt: int):
    question = re.findall(r"^Question: (.*)$", prompt_text(body), re.M)[-1]
    return REPLIES[question.split(":")[0]]


def records(path) -> list[dict]:
    if not path.exists():
        return []
    return sorted((json.loads(line) for line in path.read_text().splitlines() if line.strip()), key=lambda r: r["id"])


def run(mistakes, endpoint, out, **client_options):
    client = LLMClient(cache_dir=out / ".cache", progress=False, max_retries=0, batch_dir=out / ".batches", **client_options)

    async def go():
        async with client:
            return await correct_mistakes(mistakes, [endpoint], client, out, CorrectSettings())

    return client, asyncio.run(go())


def test_batch_run_collects_the_same_corrections_as_online(tmp_path):
    mistakes = [mistake(name) for name in REPLIES]
    with ScriptedServer(responder) as server:
        online_client, online = run(mistakes, server.endpoint(name="c", **PRICE), tmp_path / "online")
        online_requests = server.request_count
        server.reset_counts()

        batched = server.endpoint(name="c", batch=True, **PRICE)
        out = tmp_path / "batch"
        with pytest.raises(BatchPending, match=r"submitted 5 requests in 1 batch; run the same command again"):
            run(mistakes, batched, out)
        assert server.request_count == 0 and len(server.batches) == 1
        assert records(out / CORRECTIONS) == []

        with pytest.raises(BatchPending, match=r"5 requests still pending in 1 batch; run"):  # not done yet: nothing new
            run(mistakes, batched, out)
        assert len(server.batches) == 1 and server.batch_lines == 0

        summary = None
        for _ in range(MAX_TRIES + 2):  # the broken request is submitted again, MAX_TRIES times in all
            server.finish_batches()
            try:
                client, summary = run(mistakes, batched, out)
                break
            except BatchPending as pending:
                assert "submitted 1 requests in 1 batch" in str(pending)
        assert summary is not None
        assert len(server.batches) == MAX_TRIES and server.request_count == 0
        assert server.batch_lines == len(REPLIES) - 1 + MAX_TRIES

    online_kept = records(tmp_path / "online" / CORRECTIONS)
    assert sorted(r["question"].split(":")[0] for r in online_kept) == ["fine", "good"]
    assert records(out / CORRECTIONS) == online_kept  # the same records, field for field
    strip = lambda rs: [{k: v for k, v in r.items() if k != "detail"} for r in rs]  # noqa: E731
    assert strip(records(out / REJECTED)) == strip(records(tmp_path / "online" / REJECTED))
    assert summary.verified == online.verified == 2
    assert online_requests == len(REPLIES)


def test_batch_cost_is_half_the_online_cost_for_the_same_tokens(tmp_path):
    mistakes = [mistake("good"), mistake("wrong")]
    with ScriptedServer(responder) as server:
        online_client, _ = run(mistakes, server.endpoint(name="c", **PRICE), tmp_path / "online")
        out = tmp_path / "batch"
        with pytest.raises(BatchPending):
            run(mistakes, server.endpoint(name="c", batch=True, **PRICE), out)
        server.finish_batches()
        batch_client, summary = run(mistakes, server.endpoint(name="c", batch=True, **PRICE), out)
    online, batch = online_client.usage["c"], batch_client.usage["c"]
    assert (batch.prompt_tokens, batch.completion_tokens) == (online.prompt_tokens, online.completion_tokens) != (0, 0)
    assert batch.cost == pytest.approx(online.cost / 2)
    assert summary.usage["total"]["cost"] == pytest.approx(online.cost / 2, abs=1e-6)


def test_large_jobs_are_split_under_the_per_batch_limits(tmp_path):
    mistakes = [mistake(f"good{i}") for i in range(5)]
    REPLIES.update({f"good{i}": GOOD for i in range(5)})
    with ScriptedServer(responder) as server:
        server.max_batch_requests = 2  # the fake API refuses a bigger file, as the real one does over 50,000
        client = LLMClient(cache_dir=False, progress=False, batch_dir=tmp_path / ".batches")
        client.batch_max_requests = 2

        async def go():
            async with client:
                return await correct_mistakes(mistakes, [server.endpoint(batch=True)], client, tmp_path, CorrectSettings())

        with pytest.raises(BatchPending, match="submitted 5 requests in 3 batches"):
            asyncio.run(go())
        assert [b["request_counts"]["total"] for b in server.batches.values()] == [2, 2, 1]
        client.batch_max_requests, client.batch_max_bytes = 50_000, 1500  # now the bytes limit splits
        server.finish_batches()
        asyncio.run(go())
    assert len(records(tmp_path / CORRECTIONS)) == 5


def test_expired_and_failed_batches_are_resubmitted_and_only_missing_items_asked(tmp_path):
    mistakes = [mistake("good"), mistake("fine"), mistake("wrong")]
    with ScriptedServer(responder) as server:
        endpoint = server.endpoint(batch=True)
        with pytest.raises(BatchPending):
            run(mistakes, endpoint, tmp_path)
        server.finish_batches("expired", answered=1)  # one answer came back before the window closed
        with pytest.raises(BatchPending, match="submitted 2 requests in 1 batch; collected 1"):
            run(mistakes, endpoint, tmp_path)
        server.finish_batches("failed")
        with pytest.raises(BatchPending, match="submitted 2 requests"):
            run(mistakes, endpoint, tmp_path)
        server.finish_batches()
        _, summary = run(mistakes, endpoint, tmp_path)
    assert server.batch_lines == 3  # each request answered once: nothing paid twice
    assert summary.attempts == 3 and summary.verified == 2


def test_a_batch_created_but_not_recorded_is_found_again_not_paid_twice(tmp_path):
    """A run killed between creating a batch and recording it: the ledger names the uploaded
    file, and the next run finds the batch by that file instead of submitting again."""
    mistakes = [mistake("good")]
    with ScriptedServer(responder) as server:
        endpoint = server.endpoint(batch=True)
        with pytest.raises(BatchPending):
            run(mistakes, endpoint, tmp_path)
        ledger = Ledger(tmp_path / ".batches")
        (name, entry), = ledger.batches.items()
        entry.update(batch_id=None, status="uploaded")  # what the kill leaves behind
        ledger.save()
        with pytest.raises(BatchPending, match="still pending"):
            run(mistakes, endpoint, tmp_path)
        assert len(server.batches) == 1
        server.finish_batches()
        run(mistakes, endpoint, tmp_path)
    assert server.batch_lines == 1 and len(records(tmp_path / CORRECTIONS)) == 1


def test_budget_stops_before_the_cap_and_a_larger_cap_continues_without_repaying(tmp_path):
    mistakes = [mistake(f"good{i}") for i in range(6)]
    REPLIES.update({f"good{i}": GOOD for i in range(6)})
    with ScriptedServer(responder) as server:
        endpoint = server.endpoint(name="c", **PRICE)
        each = worst_case(endpoint, build_request(mistakes[0], endpoint, "fewshot", 0, 0.0, 1.0, 1024))
        cap = 1.2 * each  # room for one worst case, and a little of what answers really cost
        budget = Budget(cap)
        with pytest.raises(BudgetStop, match=r"budget: stopped before this run folder's --max-cost"):
            run(mistakes, endpoint, tmp_path, budget=budget, concurrency=1)
        first = server.request_count
        stored = len(records(tmp_path / CORRECTIONS))
        assert 1 <= first < len(mistakes) and stored == first  # stopped early; what was paid for is stored
        assert budget.spent <= cap
        client, summary = run(mistakes, endpoint, tmp_path, budget=Budget(100 * each))
    assert server.request_count == len(mistakes)  # the second run asked only the rest
    assert len(records(tmp_path / CORRECTIONS)) == len(mistakes)
    assert client.budget.spent <= 100 * each


def test_budget_caps_what_a_batch_submission_commits(tmp_path):
    mistakes = [mistake(f"good{i}") for i in range(4)]
    REPLIES.update({f"good{i}": GOOD for i in range(4)})
    with ScriptedServer(responder) as server:
        endpoint = server.endpoint(name="c", batch=True, **PRICE)
        each = worst_case(endpoint, build_request(mistakes[0], endpoint, "fewshot", 0, 0.0, 1.0, 1024))
        with pytest.raises(BudgetStop, match="submitted 2 requests in 1 batch"):
            run(mistakes, endpoint, tmp_path, budget=Budget(2.2 * each))
        with pytest.raises(BatchPending, match="submitted 2 requests in 1 batch; 2 requests still pending"):
            run(mistakes, endpoint, tmp_path, budget=Budget(10 * each))
        server.finish_batches()
        run(mistakes, endpoint, tmp_path)
    assert server.batch_lines == 4


def test_estimate_sends_nothing_and_bounds_what_the_run_spends(tmp_path):
    mistakes = [mistake(name) for name in ("good", "fine", "wrong", "unparseable")]
    with ScriptedServer(responder) as server:
        endpoint = server.endpoint(name="c", **PRICE)
        estimate = Estimate()
        run(mistakes, endpoint, tmp_path / "preview", estimate=estimate)
        assert server.request_count == 0
        line = estimate.lines["c"]
        assert line.requests == 4 and line.completion_max == 4 * 1024
        client, _ = run(mistakes, endpoint, tmp_path / "real")
    usage = client.usage["c"]
    assert usage.prompt_tokens <= line.prompt_bound and usage.completion_tokens <= line.completion_max
    assert usage.cost <= line.online and line.batch == pytest.approx(line.online / 2)
    assert "USD online (bound)" in estimate.table()


def test_prompt_bound_holds_for_a_real_tokenizer_on_real_prompts(shared_data):
    from lema_plugin.llm.costs import _tokenizer

    tokenizer = _tokenizer()
    if tokenizer is None:
        pytest.skip("the embedded model's tokenizer is not on disk")
    endpoint = parse_endpoint("gpt-4o@http://127.0.0.1:1/v1")
    rows = [json.loads(line) for line in (shared_data / "gsm8k" / "train.jsonl").read_text().splitlines()[:50]]
    for row in rows:
        steps = row["answer"].split("\n")[:-1] or ["x"]
        request = build_request({"question": row["question"], "steps": steps, "dataset": "gsm8k", "answer": "0"},
                                endpoint, "fewshot", 0, 0.0, 1.0, 1024)
        text = "\n".join(content for _, content in request.messages)
        assert len(tokenizer.encode(text).ids) <= prompt_token_bound(endpoint, request)


def test_cli_batch_exit_status_and_estimate(tmp_path):
    mistakes_file = tmp_path / "mistakes.jsonl"
    mistakes_file.write_text("".join(json.dumps(mistake(n)) + "\n" for n in ("good", "wrong")))
    with ScriptedServer(responder) as server:
        spec = f"c=m@{server.base_url};mode=batch;price=10/30"
        args = ["correct", "--mistakes", str(mistakes_file), "--corrector", spec, "--out", str(tmp_path / "out"), "-q"]
        preview = CliRunner().invoke(main, [*args, "--estimate"])
        assert preview.exit_code == 0, preview.output
        assert "USD batch (bound)" in preview.output and server.batches == {}
        submitted = CliRunner().invoke(main, args)
        assert submitted.exit_code == 75, submitted.output
        assert "submitted 2 requests in 1 batch; run the same command again to collect" in submitted.output
        server.finish_batches()
        collected = CliRunner().invoke(main, args)
    assert collected.exit_code == 0, collected.output
    assert "corrections: 2 judged, 1 verified" in collected.output and "$" in collected.output


def test_spec_batch_mode_and_rate_caps():
    endpoint = parse_endpoint("c=gpt-4o@http://h:1/v1;mode=batch;price=2.5/10;rpm=500;tpm=30000")
    assert (endpoint.batch, endpoint.mode, endpoint.rpm, endpoint.tpm) == (True, "chat", 500, 30000)
    assert parse_endpoint("m@http://h:1/v1;mode=completion+batch").mode == "completion"
    for bad in ("m;mode=chat+completion", "m;rpm=0", "m;tpm=x", "embedded;mode=batch"):
        with pytest.raises(ValueError):
            parse_endpoint(bad)


def test_pacer_keeps_under_rpm_tpm_and_the_servers_headers():
    now = [0.0]
    pacer = Pacer(rpm=2, tpm=100, clock=lambda: now[0])
    pacer.sent.extend([(0.0, 10), (1.0, 10)])
    assert pacer.delay(10) == pytest.approx(60.0)  # a third request in the same minute waits
    now[0] = 60.5
    assert pacer.delay(10) == 0.0
    pacer = Pacer(tpm=100, clock=lambda: now[0])
    pacer.sent.extend([(60.0, 70)])
    assert pacer.delay(40) == pytest.approx(59.5)  # 70 + 40 tokens is over 100 a minute
    pacer.note({"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "1m30s"})
    assert pacer.not_before == pytest.approx(60.5 + 90)
    assert [reset_seconds(v) for v in ("20ms", "6m0s", "1.5", "soon")] == [0.02, 360.0, 1.5, None]


def test_client_waits_when_the_server_says_no_requests_remain(tmp_path):
    with ScriptedServer(lambda body, attempt: "ok") as server:
        server.limit_headers = lambda n: {"x-ratelimit-remaining-requests": "0" if n == 1 else "5",
                                          "x-ratelimit-reset-requests": "50ms"}
        client = LLMClient(cache_dir=False, progress=False, concurrency=1)
        endpoint = server.endpoint()

        async def go():
            async with client:
                from lema_plugin.llm.types import Request
                return await client.complete_all([(endpoint, Request(prompt=f"q{i}")) for i in range(3)])

        answers = asyncio.run(go())
    assert all(a.ok for a in answers)
    assert client._pacers[(endpoint.base_urls, endpoint.model)].waited > 0


def test_lema_run_with_a_batch_corrector_comes_back_later_and_shows_dollars(tmp_path, shared_data, monkeypatch):
    """`lema run`: sampling online, the corrector in batch mode: the run stops at `correct` with
    exit status 75, resumes there, and its summary shows dollars per stage and per endpoint."""
    import yaml

    from lema_plugin.problems import load_problems

    monkeypatch.setenv("LEMA_DATA_DIR", str(shared_data))
    problems = load_problems("gsm8k", "train", limit=2)

    def pipeline_responder(body: dict, attempt: int) -> str:
        text = prompt_text(body)
        target = max(problems, key=lambda p: text.rfind(p.question))
        if "Incorrect Step" in text:
            return (f"Incorrect Step: Step 1.\nExplanation: the total is wrong.\n"
                    f"Correct Solution:\nStep 1: Redo the sum. The answer is {target.answer}.")
        return "Step 1: Add the numbers.\nStep 2: So the total is 1. The answer is 1."

    with ScriptedServer(pipeline_responder) as server:
        recipe = {
            "dataset": "gsm8k", "limit": 2, "out": str(tmp_path / "run"), "concurrency": 2,
            "generators": [{"name": "gen", "model": "m", "base_url": server.base_url, "samples": 1}],
            "corrector": {"name": "fixer", "model": "c", "base_url": server.base_url, "batch": True,
                          "price_prompt": 10.0, "price_completion": 30.0},
            "export": {"mixes": ["lema"]},
        }
        path = tmp_path / "r.yaml"
        path.write_text(yaml.safe_dump(recipe))
        preview = CliRunner().invoke(main, ["run", str(path), "--estimate"])
        assert preview.exit_code == 0, preview.output
        assert server.request_count == 0 and "fixer" in preview.output and "projected before sampling" in preview.output
        first = CliRunner().invoke(main, ["run", str(path)])
        assert first.exit_code == 75, first.output
        assert "submitted 2 requests in 1 batch; run the same command again to collect" in first.output
        sampled = server.request_count
        server.finish_batches()
        second = CliRunner().invoke(main, ["run", str(path)])
    assert second.exit_code == 0, second.output
    assert server.request_count == sampled  # sampling came from the store; corrections from the batch
    rows = json.loads((tmp_path / "run" / "run_summary.json").read_text())["rows"]
    assert rows["correction success"].startswith("2/2")
    assert rows["cost (USD)"].startswith("correct $") and "endpoint fixer" in rows


def test_cli_budget_stop_is_one_line_with_exit_status_3_and_a_larger_cap_continues(tmp_path):
    mistakes_file = tmp_path / "mistakes.jsonl"
    mistakes_file.write_text("".join(json.dumps(mistake(n)) + "\n" for n in ("good", "wrong")))
    with ScriptedServer(responder) as server:
        args = ["correct", "--mistakes", str(mistakes_file), "--corrector", f"c=m@{server.base_url};price=10/30",
                "--out", str(tmp_path / "out"), "-q"]
        stopped = CliRunner().invoke(main, [*args, "--max-cost", "0.001"])
        assert stopped.exit_code == 3, stopped.output
        assert stopped.output.strip().splitlines()[-1].startswith("budget: stopped before this run folder's --max-cost $0.00")  # after the start line
        assert server.request_count == 0  # one worst case alone is over the cap: nothing was sent
        done = CliRunner().invoke(main, [*args, "--max-cost", "5"])
    assert done.exit_code == 0, done.output
    assert server.request_count == 2 and "corrections: 2 judged" in done.output


def test_a_batch_cancelled_outside_lema_is_submitted_again(tmp_path):
    import openai

    mistakes = [mistake("good"), mistake("wrong")]
    with ScriptedServer(responder) as server:
        endpoint = server.endpoint(batch=True)
        with pytest.raises(BatchPending):
            run(mistakes, endpoint, tmp_path)
        api = openai.OpenAI(base_url=server.base_url, api_key="EMPTY", max_retries=0)
        (batch_id,) = server.batches
        assert api.batches.cancel(batch_id).status == "cancelled"  # e.g. from the provider's dashboard
        with pytest.raises(BatchPending, match="submitted 2 requests in 1 batch"):
            run(mistakes, endpoint, tmp_path)
        server.finish_batches()
        _, summary = run(mistakes, endpoint, tmp_path)
    assert summary.attempts == 2 and server.batch_lines == 2

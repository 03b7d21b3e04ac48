"""The real LLM client (official openai package inside) against the real scripted HTTP server.

Each fault the server can inject is either retried until it succeeds or recorded as a failed
Completion; no job is ever lost or answered twice; the cache makes a re-run free.
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
from collections import Counter

import openai
import pytest

from lema_plugin.llm import Completion, Endpoint, LLMClient, Request
from lema_plugin.llm.cache import ResponseCache
from lema_plugin.llm.wire import cache_key, request_body, retry_after_seconds
from lema_testing.scripted_server import Reply, ScriptedServer, count_tokens, prompt_text


def question(body: dict) -> str:
    return prompt_text(body).strip()


def answer(body: dict, attempt: int) -> str:
    return f"answer to {question(body)}"


def make_client(tmp_path=None, **kwargs) -> LLMClient:
    settings = dict(concurrency=8, timeout=5.0, max_retries=3, progress=False, backoff_base=0.001, backoff_max=0.01)
    settings.update(kwargs)
    cache_dir = tmp_path / "cache" if tmp_path is not None else False
    return LLMClient(cache_dir=cache_dir, **settings)


def chat(text: str, **fields) -> Request:
    return Request(messages=(("user", text),), **fields)


def run_all(client: LLMClient, jobs: list) -> list[tuple[int, Completion]]:
    """Stream every job, closing the client's connections on the same loop."""

    async def go():
        async with client:
            return [item async for item in client.stream(jobs, desc="test")]

    return asyncio.run(go())


def ask(client: LLMClient, endpoint: Endpoint, request: Request) -> Completion:
    async def go():
        async with client:
            return await client.complete(endpoint, request)

    return asyncio.run(go())


# -- concurrency and completeness ---------------------------------------------------------


def test_concurrency_never_exceeds_the_limit_and_every_job_comes_back_once():
    with ScriptedServer(answer, latency=0.05) as server:
        endpoint = server.endpoint()
        jobs = [(endpoint, chat(f"q{i}")) for i in range(40)]
        results = run_all(make_client(concurrency=5), jobs)
        assert server.max_in_flight == 5
        assert server.request_count == 40
    assert sorted(index for index, _ in results) == list(range(40))
    for index, completion in results:
        assert completion.ok and completion.text == f"answer to q{index}"
        assert completion.finish_reason == "stop"


def test_an_endpoint_cap_holds_below_the_client_limit_and_frees_other_endpoints():
    with ScriptedServer(answer, latency=0.05) as slow, ScriptedServer(answer, latency=0.05) as fast:
        capped = slow.endpoint(model="small", max_concurrency=2, timeout=3.0)
        free = fast.endpoint(model="big")
        jobs = [(capped, chat(f"s{i}")) for i in range(12)] + [(free, chat(f"f{i}")) for i in range(12)]
        results = run_all(make_client(concurrency=8), jobs)
        assert slow.max_in_flight == 2  # the endpoint's own cap
        assert fast.max_in_flight >= 5  # waiting on the capped endpoint held no client-wide slot
        assert slow.request_count == fast.request_count == 12
    assert all(c.ok for _, c in results) and len(results) == 24


def test_an_endpoint_timeout_overrides_the_client_timeout():
    def hang_once(body, attempt):
        return Reply(hang=True) if attempt == 0 else "late"

    with ScriptedServer(hang_once) as server:
        endpoint = server.endpoint(timeout=0.3)
        failed = ask(make_client(timeout=30.0, max_retries=0), endpoint, chat("q"))
        assert not failed.ok and "timed out after 0.3 s" in failed.error  # the endpoint's, not the client's 30 s
        retried = ask(make_client(timeout=30.0, max_retries=1), endpoint, chat("q2"))
        assert retried.ok and retried.text == "late"


def test_timeouts_on_a_local_server_shrink_what_it_gets_at_once(monkeypatch):
    """Eight requests time out together on a server on this machine: the retries are not all sent
    again at once onto its queue; they go out within a halved cap, which each answer widens again."""
    from lema_plugin.llm import pacing

    seen: list[int] = []  # requests in flight to the endpoint whenever one is let in under the cap
    slot = pacing.Pacer.slot

    @contextlib.asynccontextmanager
    async def watched(self):
        async with slot(self):  # counted once admitted: a retry that waits for room is not in flight
            if self.limit is not None:
                seen.append(self.in_flight)
            yield

    monkeypatch.setattr(pacing.Pacer, "slot", watched)

    def hang_first(body, attempt):
        return Reply(hang=True) if attempt == 0 else "ok"

    with ScriptedServer(hang_first) as server:
        endpoint = server.endpoint(timeout=0.3)
        client = make_client(concurrency=8, max_retries=2, backoff_base=0.01)
        results = run_all(client, [(endpoint, chat(f"q{i}")) for i in range(8)])
    assert all(c.ok for _, c in results)
    pacer = next(iter(client._pacers.values()))
    assert seen and max(seen) <= 4  # after the first timeout: never all eight again
    assert pacer.limit >= 1


def test_a_remote_server_keeps_its_concurrency_after_a_timeout():
    from lema_plugin.llm.client import _on_this_machine

    assert _on_this_machine("http://127.0.0.1:8000/v1") and _on_this_machine("http://localhost:8000/v1")
    assert not _on_this_machine("http://gpu1:8000/v1") and not _on_this_machine("https://api.openai.com/v1")


def test_when_timeouts_dominate_the_message_names_the_setting():
    from lema_plugin.summaries import timeout_hint

    hint = timeout_hint([("timed out after 120 s (gave up after 6 attempts)", 7), ("HTTP 500: x", 2)])
    assert "--timeout" in hint and ";timeout=" in hint and "--concurrency" in hint
    assert timeout_hint([("timed out after 120 s", 1), ("HTTP 500: x", 3)]) == ""


def test_stream_of_nothing_yields_nothing():
    assert run_all(make_client(), []) == []


# -- one fault on the first try: retried, then answered -----------------------------------

FIRST_TRY_FAULTS = {
    "rate_limited": Reply(status=429, retry_after=0.01),
    "server_error": Reply(status=500),
    "unavailable": Reply(status=503),
    "hang": Reply(hang=True),
    "malformed": Reply(malformed=True),
}


@pytest.mark.parametrize("fault", sorted(FIRST_TRY_FAULTS))
def test_a_fault_on_the_first_try_is_retried(fault):
    def responder(body, attempt):
        return FIRST_TRY_FAULTS[fault] if attempt == 0 else answer(body, attempt)

    with ScriptedServer(responder) as server:
        client = make_client(timeout=0.3)
        completion = ask(client, server.endpoint(name="gen"), chat("two plus two"))
        assert server.request_count == 2
    assert completion.ok, completion.error
    assert completion.text == "answer to two plus two"
    usage = client.usage["gen"]
    assert (usage.requests, usage.retries, usage.failures) == (1, 1, 0)


def test_retry_after_is_honoured():
    """The client waits at least as long as the server asked, though its own backoff is ~1 ms."""
    arrivals = []

    def responder(body, attempt):
        arrivals.append(time.monotonic())
        return Reply(status=429, retry_after=0.4) if attempt == 0 else "ok"

    with ScriptedServer(responder) as server:
        completion = ask(make_client(), server.endpoint(), chat("x"))
    assert completion.text == "ok"
    assert arrivals[1] - arrivals[0] >= 0.4


def test_retry_after_header_forms():
    assert retry_after_seconds({"retry-after": "2"}) == 2.0
    assert retry_after_seconds({"retry-after": "0.25"}) == 0.25
    assert retry_after_seconds({"retry-after-ms": "1500", "retry-after": "9"}) == 1.5
    assert retry_after_seconds({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 0.0  # in the past
    assert retry_after_seconds({"retry-after": "soon"}) is None
    assert retry_after_seconds({}) is None


# -- faults that never clear: recorded as failed, with the reason -------------------------

LASTING_FAULTS = {
    "server_error": (Reply(status=500), "HTTP 500", 3),
    "rate_limited": (Reply(status=429, retry_after=0.01), "HTTP 429", 3),
    "hang": (Reply(hang=True), "timed out", 3),
    "malformed": (Reply(malformed=True), "malformed", 3),
    "bad_request": (Reply(status=400), "HTTP 400", 1),  # not retriable: one try only
}


@pytest.mark.parametrize("fault", sorted(LASTING_FAULTS))
def test_a_lasting_fault_is_recorded_as_failed(fault, tmp_path):
    reply, reason, tries = LASTING_FAULTS[fault]
    with ScriptedServer(lambda body, attempt: reply) as server:
        client = make_client(tmp_path, timeout=0.3, max_retries=2)
        completion = ask(client, server.endpoint(name="gen"), chat("q"))
        assert server.request_count == tries
    assert not completion.ok and completion.text == ""
    assert reason in completion.error and f"after {tries} attempt" in completion.error
    assert client.usage["gen"].failures == 1
    assert not list((tmp_path / "cache").rglob("*.json")), "failures must not be cached"


def test_a_dead_server_is_a_connection_error_not_an_exception():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    endpoint = Endpoint(model="m", base_urls=(f"http://127.0.0.1:{port}/v1",))
    completion = ask(make_client(max_retries=1), endpoint, chat("q"))
    assert not completion.ok and "connection error" in completion.error


# -- valid but unusual answers: kept as they are, not retried ---------------------------------


def test_empty_content_and_length_are_answers_not_faults(tmp_path):
    replies = {"empty": Reply(content=""), "long": Reply(content="one two three", finish_reason="length")}

    def responder(body, attempt):
        return replies[question(body)]

    with ScriptedServer(responder) as server:
        jobs = [(server.endpoint(), chat("empty")), (server.endpoint(), chat("long"))]
        results = dict(run_all(make_client(tmp_path), jobs))
        assert server.request_count == 2
    assert results[0].ok and results[0].text == "" and results[0].finish_reason == "stop"
    assert results[1].ok and results[1].text == "one two three" and results[1].finish_reason == "length"
    assert results[1].completion_tokens == 3

    with ScriptedServer(responder) as server:  # both were cached like any other answer
        again = dict(run_all(make_client(tmp_path), jobs))
        assert server.request_count == 0
    assert (again[0].text, again[1].finish_reason) == ("", "length") and again[1].cached


# -- a mixed run: nothing lost, nothing duplicated ----------------------------------------------


def test_mixed_faults_lose_and_duplicate_nothing(tmp_path):
    def responder(body, attempt):
        number = int(question(body)[1:])
        if number % 10 == 3:
            return Reply(status=500)  # never clears
        if number % 5 == 1 and attempt == 0:
            return Reply(status=429, retry_after=0.01)
        if number % 7 == 2 and attempt == 0:
            return Reply(malformed=True)
        if number % 11 == 4 and attempt == 0:
            return Reply(hang=True)
        return answer(body, attempt)

    with ScriptedServer(responder, latency=0.005) as server:
        endpoint = server.endpoint(name="gen")
        jobs = [(endpoint, chat(f"q{i}")) for i in range(60)]
        client = make_client(tmp_path, concurrency=6, timeout=0.3, max_retries=2)
        results = run_all(client, jobs)
    indexes = Counter(index for index, _ in results)
    assert sorted(indexes) == list(range(60)) and set(indexes.values()) == {1}
    failed = sorted(index for index, completion in results if not completion.ok)
    assert failed == [i for i in range(60) if i % 10 == 3]
    for index, completion in results:
        if completion.ok:
            assert completion.text == f"answer to q{index}"
    usage = client.usage["gen"]
    assert (usage.requests, usage.failures, usage.cached) == (60, 6, 0)

    with ScriptedServer(responder) as server:  # a re-run asks again only for the failures
        jobs = [(server.endpoint(name="gen"), request) for _, request in jobs]
        rerun = dict(run_all(make_client(tmp_path, max_retries=0), jobs))
        assert server.request_count == 6
    assert sum(completion.cached for completion in rerun.values()) == 54


# -- the cache ----------------------------------------------------------------------------------


def test_a_second_identical_run_makes_zero_requests(tmp_path):
    jobs_for = lambda endpoint: [(endpoint, chat(f"q{i}", temperature=0.7, sample_index=k)) for i in range(10) for k in range(2)]
    with ScriptedServer(answer) as server:
        first = dict(run_all(make_client(tmp_path), jobs_for(server.endpoint())))
        assert server.request_count == 20  # each sample is its own request
    with ScriptedServer(answer) as server:
        client = make_client(tmp_path)
        second = dict(run_all(client, jobs_for(server.endpoint())))
        assert server.request_count == 0
    assert {i: c.text for i, c in first.items()} == {i: c.text for i, c in second.items()}
    assert all(c.cached for c in second.values()) and not any(c.cached for c in first.values())
    assert client.usage["m"].cached == 20 and client.usage["m"].prompt_tokens == 0


def test_cache_key_covers_the_request_and_the_mode():
    chat_endpoint = Endpoint(model="m", base_urls=("http://a/v1",))
    other_url = Endpoint(model="m", base_urls=("http://b/v1",), api_key_env="X")
    completion_endpoint = Endpoint(model="m", base_urls=("http://a/v1",), mode="completion")
    request = Request(prompt="p")
    assert cache_key(chat_endpoint, request) == cache_key(other_url, request)  # not the URL or key
    assert cache_key(chat_endpoint, request) != cache_key(completion_endpoint, request)
    assert cache_key(chat_endpoint, request) != cache_key(chat_endpoint, Request(prompt="p", sample_index=1))
    assert cache_key(chat_endpoint, request) != cache_key(chat_endpoint, Request(prompt="p", temperature=0.5))


def test_concurrent_writers_share_one_cache_safely(tmp_path):
    """Two clients (as two processes would) write the same keys at once: every entry is whole."""
    with ScriptedServer(answer, latency=0.01) as server:
        jobs = [(server.endpoint(), chat(f"q{i}")) for i in range(30)]

        async def both():
            first, second = make_client(tmp_path), make_client(tmp_path)
            async with first, second:
                return await asyncio.gather(first.complete_all(jobs), second.complete_all(jobs))

        first, second = asyncio.run(both())
    assert [c.text for c in first] == [c.text for c in second]
    files = list((tmp_path / "cache").rglob("*"))
    entries = [f for f in files if f.is_file()]
    assert len(entries) == 30 and all(f.suffix == ".json" for f in entries)  # no temp files left
    assert all(json.loads(f.read_text())["text"].startswith("answer to q") for f in entries)


def test_a_damaged_cache_entry_is_a_miss_and_gets_rewritten(tmp_path):
    cache = ResponseCache(tmp_path / "cache")
    with ScriptedServer(answer) as server:
        endpoint = server.endpoint()
        ask(make_client(tmp_path), endpoint, chat("q"))
        key = cache_key(endpoint, chat("q"))
        cache.path(key).write_text('{"text": "answ')  # as if a crash cut the file short
        (cache.path(key).parent / f".{key[:16]}.junk.tmp").write_text("{")  # an orphaned temp file
        assert cache.get(key) is None
        completion = ask(make_client(tmp_path), endpoint, chat("q"))
        assert server.request_count == 2
    assert completion.text == "answer to q" and not completion.cached
    assert cache.get(key)["text"] == "answer to q"


def test_an_unwritable_cache_does_not_lose_the_answer(tmp_path):
    blocker = tmp_path / "cache"
    blocker.write_text("a file where the cache folder should be")
    with ScriptedServer(answer) as server:
        completion = ask(make_client(tmp_path), server.endpoint(), chat("q"))
    assert completion.ok and completion.text == "answer to q"


# -- API keys --------------------------------------------------------------------------------


def test_the_api_key_is_sent_but_never_stored(tmp_path, monkeypatch):
    secret = "sk-test-0123456789abcdef"
    monkeypatch.setenv("LEMA_TEST_API_KEY", secret)
    with ScriptedServer(answer) as server:
        endpoint = server.endpoint(api_key_env="LEMA_TEST_API_KEY")
        results = run_all(make_client(tmp_path), [(endpoint, chat(f"q{i}")) for i in range(3)])
        assert server.authorizations == Counter({f"Bearer {secret}": 3})
    assert all(c.ok for _, c in results)
    stored = [f.read_bytes() for f in (tmp_path / "cache").rglob("*") if f.is_file()]
    assert len(stored) == 3 and not any(secret.encode() in blob for blob in stored)


def test_an_unset_key_variable_is_refused_and_a_keyless_server_gets_no_key(monkeypatch):
    from lema_plugin.keys import MissingKey

    monkeypatch.delenv("LEMA_TEST_API_KEY", raising=False)
    with ScriptedServer(answer) as server:
        with pytest.raises(MissingKey, match=r"not set: \$LEMA_TEST_API_KEY \(for m\)"):
            ask(make_client(), server.endpoint(api_key_env="LEMA_TEST_API_KEY"), chat("q"))
        assert server.request_count == 0  # no placeholder key sent in its stead
        ask(make_client(), server.endpoint(), chat("q"))  # a URL and no key_env: a keyless local server
        assert server.authorizations == Counter({"Bearer EMPTY": 1})


# -- request shape, modes, base URLs ------------------------------------------------------------


def test_sampling_settings_reach_the_server_and_sample_index_does_not():
    bodies = []

    def responder(body, attempt):
        bodies.append(body)
        return "ok"

    with ScriptedServer(responder) as server:
        endpoint = server.endpoint(model="gen-7b")
        request = Request(
            messages=(("system", "be brief"), ("user", "hi")),
            temperature=0.8, top_p=0.9, max_tokens=64, stop=("\n\n",), seed=3, sample_index=2,
        )
        ask(make_client(), endpoint, request)
        ask(make_client(), endpoint, chat("plain"))
    assert bodies[0] == {
        "model": "gen-7b",
        "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}],
        "temperature": 0.8, "top_p": 0.9, "max_tokens": 64, "stop": ["\n\n"], "seed": 3,
    }
    assert "seed" not in bodies[1] and "stop" not in bodies[1]


def test_completion_mode_uses_the_completions_route():
    bodies = []

    def responder(body, attempt):
        bodies.append(body)
        return " 4. The answer is 4."

    with ScriptedServer(responder) as server:
        endpoint = server.endpoint(mode="completion")
        completion = ask(make_client(), endpoint, Request(prompt="Question: 2+2?\nAnswer:"))
        with pytest.raises(ValueError, match="completion mode"):
            ask(make_client(), endpoint, chat("no template for messages"))
    assert completion.text == " 4. The answer is 4."
    assert bodies == [{"model": "m", "prompt": "Question: 2+2?\nAnswer:", "temperature": 0.0, "top_p": 1.0, "max_tokens": 512}]
    # a prompt sent to a chat endpoint becomes one user message
    assert request_body(Endpoint(model="m", base_urls=("u",)), Request(prompt="p"))["messages"] == [{"role": "user", "content": "p"}]


def test_requests_are_spread_round_robin_over_base_urls():
    with ScriptedServer(answer) as one, ScriptedServer(answer) as two:
        endpoint = Endpoint(model="m", base_urls=(one.base_url, two.base_url))
        results = run_all(make_client(), [(endpoint, chat(f"q{i}")) for i in range(20)])
        assert (one.request_count, two.request_count) == (10, 10)
    assert all(c.ok for _, c in results)


def test_a_retry_moves_on_to_the_next_base_url():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}/v1"
    with ScriptedServer(answer) as alive:
        endpoint = Endpoint(model="m", base_urls=(dead, alive.base_url))
        results = run_all(make_client(max_retries=1), [(endpoint, chat(f"q{i}")) for i in range(10)])
        assert alive.request_count == 10
    assert all(c.ok and c.text == f"answer to q{i}" for i, c in results)


# -- usage and progress -------------------------------------------------------------------------


def test_usage_counts_tokens_and_cost_per_endpoint_label():
    with ScriptedServer(lambda body, attempt: "five words in this reply") as server:
        priced = server.endpoint(model="big", name="corrector", price_prompt=2.0, price_completion=10.0)
        free = server.endpoint(model="small")
        jobs = [(priced, chat("three word prompt"))] * 2 + [(free, chat("hi"))]
        client = make_client()
        run_all(client, jobs)
    corrector, small = client.usage["corrector"], client.usage["small"]
    assert (corrector.requests, corrector.prompt_tokens, corrector.completion_tokens) == (2, 6, 10)
    assert corrector.cost == pytest.approx((6 * 2.0 + 10 * 10.0) / 1e6)
    assert (small.requests, small.prompt_tokens, small.cost) == (1, 1, None)
    assert small["completion_tokens"] == count_tokens("five words in this reply")
    lines = client.usage_lines()
    assert lines[0].startswith("corrector: 2 requests") and "$0.0001" in lines[0]
    assert lines[1].startswith("small: 1 requests") and "$" not in lines[1]


def test_progress_bar_shows_failures_and_token_rate(capsys):
    def responder(body, attempt):
        return Reply(status=500) if question(body) == "bad" else "a b c"

    with ScriptedServer(responder) as server:
        jobs = [(server.endpoint(), chat(q)) for q in ("good", "bad")]
        run_all(make_client(max_retries=0, progress=True), jobs)
    err = capsys.readouterr().err
    assert "test: 100%" in err and "2/2" in err and "failed=1" in err and "tok_s=" in err


def test_breaking_out_of_a_stream_cancels_the_rest():
    with ScriptedServer(answer, latency=0.05) as server:
        jobs = [(server.endpoint(), chat(f"q{i}")) for i in range(200)]

        async def first_only():
            async with make_client(concurrency=4) as client:
                async for index, completion in client.stream(jobs):
                    return completion

        completion = asyncio.run(first_only())
        time.sleep(0.1)
        assert server.request_count < 20
    assert completion.ok


def test_a_client_can_be_used_from_two_event_loops():
    """As when a command runs two stages with asyncio.run each, closing connections after each."""
    with ScriptedServer(answer) as server:
        client = make_client()

        async def once(text):
            try:
                return await client.complete(server.endpoint(), chat(text))
            finally:
                await client.aclose()

        first = asyncio.run(once("a"))
        second = asyncio.run(once("b"))
        assert server.request_count == 2
    assert (first.text, second.text) == ("answer to a", "answer to b")


def test_the_server_lists_models_to_the_openai_client():
    with ScriptedServer(answer, models=("scripted",)) as server:

        async def models():
            async with openai.AsyncOpenAI(base_url=server.base_url, api_key="EMPTY", max_retries=0) as api:
                return [model.id async for model in api.models.list()]

        assert asyncio.run(models()) == ["scripted"]


# -- replies that cannot be stored as they are ---------------------------------------------------


def test_a_lone_surrogate_in_a_reply_is_replaced_once_and_cached(tmp_path):
    with ScriptedServer(lambda body, attempt: Reply(content="smile", lone_surrogate=True)) as server:
        completion = ask(make_client(tmp_path), server.endpoint(), chat("q"))
        again = ask(make_client(tmp_path), server.endpoint(), chat("q"))
        uncached = ask(make_client(), server.endpoint(), chat("q"))
        assert server.request_count == 2
    assert completion.ok and completion.text == "smile\ufffd"
    assert again.cached and again.text == "smile\ufffd" and uncached.text == "smile\ufffd"


@pytest.mark.parametrize("fault", ["reset", "disconnect"])
def test_a_dropped_connection_is_reported_as_such_not_as_a_timeout(fault):
    with ScriptedServer(lambda body, attempt: Reply(**{fault: True})) as server:
        completion = ask(make_client(timeout=30.0, max_retries=1), server.endpoint(), chat("q"))
        assert server.request_count == 2, "a dropped connection is retried"
    assert not completion.ok and "timed out" not in completion.error
    assert "connection error" in completion.error
    assert ("reset" if fault == "reset" else "disconnected") in completion.error.lower()


@pytest.mark.parametrize("status", [200, 401, 500])
def test_an_echoed_key_is_scrubbed_in_any_letter_case(tmp_path, monkeypatch, status):
    secret = "sk-Test-0123456789abcdef"
    monkeypatch.setenv("LEMA_TEST_API_KEY", secret)
    with ScriptedServer(lambda body, attempt: Reply(content="ok", status=status, echo_key=True)) as server:
        completion = ask(make_client(tmp_path, max_retries=1), server.endpoint(api_key_env="LEMA_TEST_API_KEY"), chat("q"))
    said = completion.text if status == 200 else completion.error
    assert said.count("***") == 2, said
    assert secret.lower() not in said.lower()
    for blob in [f.read_bytes() for f in (tmp_path / "cache").rglob("*") if f.is_file()]:
        assert secret.lower().encode() not in blob.lower()

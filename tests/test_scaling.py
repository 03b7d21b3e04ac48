"""Several servers behind one endpoint (the README's "Beyond one machine"): when one replica dies in
the middle of `lema sample`, its requests move to the live one; nothing is lost and nothing is
answered twice, and the same command run again asks for nothing."""
from __future__ import annotations

import json
import threading
from collections import Counter

from click.testing import CliRunner

from lema_plugin.cli import main
from lema_testing.scripted_server import Reply, ScriptedServer, prompt_text

QUESTIONS = [(f"Sam has {n} marbles and finds {n + 1} more. How many marbles does he have?", 2 * n + 1)
             for n in range(1, 21)]
SAMPLES = 2


def test_a_replica_that_dies_mid_run_loses_nothing_and_is_paid_for_once(tmp_path):
    problems = tmp_path / "problems.jsonl"
    problems.write_text("".join(json.dumps({"question": q, "answer": f"{q}\n#### {a}"}) + "\n" for q, a in QUESTIONS))
    answered: Counter[str] = Counter()  # request -> replies delivered, over both replicas
    lock = threading.Lock()
    dying = threading.Event()

    def reply(body: dict) -> str:
        key = json.dumps([prompt_text(body), body.get("seed")])
        with lock:
            answered[key] += 1
        return "Add them up.\nThe answer is 3."  # a wrong answer: every path is a mistake

    def first(body: dict, attempt: int):
        if dying.is_set():
            return Reply(hang=True)  # requests in flight when it goes down never get an answer
        with lock:
            served = sum(answered.values())
        if served >= 8:  # after a few answers the replica dies: stopped from another thread
            dying.set()
            threading.Thread(target=one.stop, daemon=True).start()
            return Reply(hang=True)
        return reply(body)

    one = ScriptedServer(first, latency=0.02).start()
    with ScriptedServer(lambda body, attempt: reply(body), latency=0.02) as two:
        command = ["sample", "--data-file", str(problems), "--generator", f"gen=m@{one.base_url},{two.base_url}",
                   "--samples", str(SAMPLES), "--temperature", "0.7", "--seed", "1", "--concurrency", "4",
                   "--max-retries", "4", "--out", str(tmp_path / "run")]
        result = CliRunner().invoke(main, command)
        one.stop()
        assert result.exit_code == 0, result.output
        assert dying.is_set(), "the first replica died during the run"

        paths = [json.loads(line) for line in (tmp_path / "run" / "paths.jsonl").read_text().splitlines()]
        assert len(paths) == len(QUESTIONS) * SAMPLES and not [p for p in paths if p["kind"] == "failed"]
        # every request was answered exactly once, by one replica or the other: nothing paid twice
        assert len(answered) == len(QUESTIONS) * SAMPLES and set(answered.values()) == {1}
        by_first = 8  # what the first replica answered before it died; the live one answered the rest
        assert two.request_count >= len(QUESTIONS) * SAMPLES - by_first

        # the same command again: everything is in the store; nothing is asked of either replica
        before = two.request_count
        again = CliRunner().invoke(main, command)
        assert again.exit_code == 0, again.output
        assert two.request_count == before and "0 new requests" in again.output
        assert sum(answered.values()) == len(QUESTIONS) * SAMPLES

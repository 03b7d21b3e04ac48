"""Paid Batch API answers are never lost nor bought twice: damaged lines in a batch's files or in
the ledger, an item that always fails, and `--fresh` while batches wait. Against the scripted
server's fake Batch API and the real openai client, through the `lema` commands."""
from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import yaml
from click.testing import CliRunner

from lema_plugin.cli import main
from lema_testing.scripted_server import Reply, ScriptedServer, prompt_text

GOOD = "Incorrect Step: Step 2.\nExplanation: 3 + 4 is 7.\nCorrect Solution:\nStep 2: 3 + 4 = 7. The answer is 7."


def mistakes_file(path: Path, names) -> Path:
    rows = []
    for name in names:
        question = f"{name}: Tom has 3 apples and buys 4 more. How many apples does he have?"
        rows.append({"id": f"m-{name}", "dataset": "gsm8k", "question": question, "answer": "7", "model": "gen",
                     "text": "Tom has 3 apples.\nHe buys 4 more, so 3 + 4 = 8. The answer is 8.", "correct": False})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def asked_about(body: dict) -> str:
    return re.findall(r"^Question: (\w+):", prompt_text(body), re.M)[-1]


def responder(body: dict, attempt: int):
    return Reply(status=500) if asked_about(body).startswith("broken") else GOOD


def correct(tmp_path: Path, server, names, *extra: str):
    args = ["correct", "--mistakes", str(mistakes_file(tmp_path / "m.jsonl", names)), "--out", str(tmp_path / "run"),
            "--corrector", f"c=m@{server.base_url};mode=batch", "-q", *extra]
    return CliRunner().invoke(main, args)


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_a_damaged_line_in_a_batch_output_file_is_set_aside_and_only_its_request_asked_again(tmp_path, caplog):
    names = ["a", "b", "c", "d"]
    with ScriptedServer(responder) as server:
        assert correct(tmp_path, server, names).exit_code == 75
        server.finish_batches(damage={1: b'{"custom_id": "cut here', 2: b"null"})
        with caplog.at_level(logging.WARNING):
            second = correct(tmp_path, server, names)
        assert second.exit_code == 75, second.output  # two answers stored, the two damaged ones asked again
        assert "submitted 2 requests in 1 batch; collected 2" in second.output
        assert len(lines(tmp_path / "run" / "corrections.jsonl")) == 2
        warned = [r.getMessage() for r in caplog.records if "damaged" in r.getMessage()]
        assert len(warned) == 2 and "line 2 of its output file" in warned[0] and "line 3 of its output file" in warned[1]
        aside = tmp_path / "run" / ".batches" / "b00001-output.jsonl.damaged"
        assert aside.read_bytes() == b'{"custom_id": "cut here\nnull\n'
        server.finish_batches()
        third = correct(tmp_path, server, names)
    assert third.exit_code == 0, third.output
    assert sorted(r["path_id"] for r in lines(tmp_path / "run" / "corrections.jsonl")) == [f"m-{n}" for n in names]
    assert server.batch_lines == 6  # 4 answered, 2 answered again: nothing else bought


def test_a_damaged_ledger_line_is_warned_about_and_downloaded_again_not_bought_again(tmp_path, caplog):
    names = ["a", "b", "c"]
    with ScriptedServer(responder) as server:  # no response cache: the ledger is the only copy of the answers
        correct(tmp_path, server, names, "--no-cache")
        server.finish_batches()
        assert correct(tmp_path, server, names, "--no-cache").exit_code == 0
        run = tmp_path / "run"
        # the ledger held answers the stores lost (a kill between the two writes): damage one of them
        results = (run / ".batches" / "results.jsonl").read_bytes().splitlines(keepends=True)
        (run / ".batches" / "results.jsonl").write_bytes(results[0] + b'{"key": "torn in the mid\n' + b"".join(results[2:]))
        for name in ("corrections.jsonl", "rejected.jsonl"):
            (run / name).unlink(missing_ok=True)
        with caplog.at_level(logging.WARNING):
            again = correct(tmp_path, server, names, "--no-cache")
        assert again.exit_code == 0, again.output
        assert len(server.batches) == 1 and server.batch_lines == 3  # no new batch, nothing bought again
    assert any("results.jsonl:2: not valid JSON" in r.getMessage() for r in caplog.records), caplog.text
    assert len(lines(run / "corrections.jsonl")) == 3
    assert (run / ".batches" / "results.jsonl.damaged").read_bytes() == b'{"key": "torn in the mid\n'


def until_done(tmp_path: Path, server, names, *extra: str, passes: int = 12) -> list[int]:
    """Run the same command again while it exits 75 (as the README's loop does), finishing the
    server's batches in between; the exit statuses."""
    codes = []
    for _ in range(passes):
        result = correct(tmp_path, server, names, *extra)
        codes.append(result.exit_code)
        if result.exit_code != 75:
            break
        server.finish_batches()
    return codes


def test_an_item_that_always_fails_is_submitted_at_most_three_times_across_its_attempts(tmp_path):
    submitted = []

    def counting(body, attempt):
        submitted.append(asked_about(body))
        return responder(body, attempt)

    with ScriptedServer(counting) as server:
        codes = until_done(tmp_path, server, ["good", "broken"], "--samples", "3", "--keep", "1")
        assert codes[-1] == 5 and codes.count(75) == len(codes) - 1, codes  # the loop ends, as with --samples 1
        assert submitted.count("broken") == 3 and submitted.count("good") == 1
        rejected = lines(tmp_path / "run" / "rejected.jsonl")
        assert sorted(r["attempt"] for r in rejected) == [0, 1, 2] and {r["reason"] for r in rejected} == {"request_failed"}
        later = until_done(tmp_path, server, ["good", "broken"], "--samples", "3", "--keep", "1")  # a later run tries again
        assert later[-1] == 5 and submitted.count("broken") == 6


def test_fresh_while_a_batch_is_pending_is_refused_naming_the_batch(tmp_path, shared_data, monkeypatch):
    monkeypatch.setenv("LEMA_DATA_DIR", str(shared_data))

    def pipeline(body, attempt):
        if "Incorrect Step" in prompt_text(body):
            return GOOD
        return "Step 1: Add.\nStep 2: So it is 1. The answer is 1."

    with ScriptedServer(pipeline) as server:
        recipe = tmp_path / "r.yaml"
        recipe.write_text(yaml.safe_dump({
            "dataset": "gsm8k", "limit": 2, "out": str(tmp_path / "run"),
            "generators": [{"name": "gen", "model": "m", "base_url": server.base_url, "samples": 1}],
            "corrector": {"name": "fixer", "model": "c", "base_url": server.base_url, "batch": True},
            "export": {"mixes": ["lema"], "allow_no_corrections": True}}))  # the batches are the point here
        assert CliRunner().invoke(main, ["run", str(recipe)]).exit_code == 75
        fresh = CliRunner().invoke(main, ["run", str(recipe), "--fresh"])
        assert fresh.exit_code == 1, fresh.output
        line = fresh.output.strip().splitlines()[-1]
        assert "1 Batch API batch still pending: batch_1 (2 requests at http://127.0.0.1:" in line, line
        assert "/batches/BATCH_ID/cancel" in line and "run without --fresh to collect them first" in line
        assert (tmp_path / "run" / ".batches" / "batches.json").exists() and len(server.batches) == 1
        server.finish_batches()
        assert CliRunner().invoke(main, ["run", str(recipe)]).exit_code == 0
        again = CliRunner().invoke(main, ["run", str(recipe), "--fresh"])  # nothing waits now: --fresh starts over
        assert again.exit_code == 0, again.output
        assert len(server.batches) == 1  # the fresh run's corrections came from the cache, not a new batch
    assert list((tmp_path / "run").glob("replaced-*/.batches/batches.json"))

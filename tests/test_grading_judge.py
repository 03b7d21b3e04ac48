"""The LLM judge: asked only about what the rules cannot decide, through the one client, against
the scripted test server; `lema grade --judge` end to end."""
from __future__ import annotations

import asyncio
import json

from click.testing import CliRunner

from lema_plugin.cli import main
from lema_plugin.grading import grade
from lema_plugin.grading.judge import JudgeItem, judge_graded, parse_verdict
from lema_plugin.llm import LLMClient
from lema_testing.scripted_server import Reply, ScriptedServer, prompt_text

RECORDS = [
    # settled by the rules
    {"id": "rule-right", "question": "1+1?", "completion": "The answer is $2$.", "answer": "2"},
    {"id": "rule-wrong", "question": "2+2?", "completion": "The answer is $5$.", "answer": "4"},
    {"id": "symbolic", "question": "Evaluate.", "completion": "The answer is $\\binom{5}{2}$.", "answer": "10"},
    # what the rules cannot decide
    {"id": "text", "question": "What kind of triangle?",
     "completion": "Final answer: it is a right triangle whose two legs have the same length.",
     "answer": "\\text{isosceles right triangle}"},
    {"id": "equation", "question": "The curve?", "completion": "The answer is $10^{y} - x = 0$.", "answer": "y = \\log_{10} x"},
    {"id": "no-answer", "question": "How many?", "completion": "I am not sure how to go on from here.", "answer": "7"},
]


def judge_script(body: dict, attempt: int) -> str:
    prompt = prompt_text(body)
    assert "Reference answer:" in prompt
    if "right triangle whose" in prompt or "10^{y} - x = 0" in prompt:
        return "Both say the same thing.\nVerdict: correct"
    return "There is no final answer.\nVerdict: incorrect"


def _write(path, records):
    path.write_text("".join(json.dumps(record) + "\n" for record in records))
    return path


def _read(path):
    return {row["id"]: row for row in map(json.loads, path.read_text().splitlines())}


def test_grade_marks_what_the_rules_cannot_decide():
    settled = {record["id"]: grade(record["completion"], record["answer"], "math") for record in RECORDS}
    assert [settled[name].settled for name in ("rule-right", "rule-wrong", "text", "equation", "no-answer")] == [
        True, True, False, False, False]
    assert settled["rule-right"].decided_by == "rule" and settled["rule-right"].correct
    assert settled["rule-wrong"].decided_by == "rule" and not settled["rule-wrong"].correct


def test_lema_grade_with_a_judge_end_to_end_and_resumed(tmp_path):
    predictions = _write(tmp_path / "preds.jsonl", RECORDS)
    out = tmp_path / "graded.jsonl"
    with ScriptedServer(judge_script) as server:
        args = ["grade", "--dataset", "math", "--predictions", str(predictions), "--out", str(out),
                "--judge", f"judge=judge-model@{server.base_url}", "--quiet"]
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 0, result.output
        assert server.request_count == 3  # only the three undecided items
        rows = _read(out)
        assert {name: row["decided_by"] for name, row in rows.items()} == {
            "rule-right": "rule", "rule-wrong": "rule", "symbolic": "symbolic",
            "text": "judge", "equation": "judge", "no-answer": "judge"}
        assert {name: row["correct"] for name, row in rows.items()} == {
            "rule-right": True, "rule-wrong": False, "symbolic": True,
            "text": True, "equation": True, "no-answer": False}
        assert "accuracy 0.6667 (4/6)" in result.output
        assert "decided by rule 2, symbolic 1, judge 3" in result.output
        assert "judge judge: 3 requests (0 cached, 0 failed)" in result.output

        again = CliRunner().invoke(main, args)  # a re-run is answered from the cache
        assert again.exit_code == 0, again.output
        assert server.request_count == 3
        assert "judge judge: 3 requests (3 cached, 0 failed)" in again.output
        assert _read(out) == rows


def test_without_a_judge_undecided_items_count_wrong(tmp_path):
    predictions = _write(tmp_path / "preds.jsonl", RECORDS)
    out = tmp_path / "graded.jsonl"
    result = CliRunner().invoke(main, ["grade", "--dataset", "math", "--predictions", str(predictions), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "accuracy 0.3333 (2/6)" in result.output
    assert "3 undecided (counted wrong)" in result.output
    assert {row["decided_by"] for row in _read(out).values()} == {"rule", "symbolic"}


def test_a_failing_judge_leaves_the_rule_verdict(tmp_path):
    items = [(grade(record["completion"], record["answer"], "math"), JudgeItem(record["completion"], record["answer"]))
             for record in RECORDS]

    async def run(server):
        async with LLMClient(cache_dir=tmp_path / "cache", max_retries=1, backoff_base=0.01, progress=False) as client:
            return await judge_graded(items, server.endpoint(model="judge"), client), client

    with ScriptedServer(lambda body, attempt: Reply(status=500)) as server:
        results, client = asyncio.run(run(server))
    assert [graded.decided_by for graded in results] == ["rule", "rule", "symbolic", "rule", "rule", "rule"]
    assert [graded.settled for graded in results] == [True, True, True, False, False, False]
    assert client.usage["judge"].failures == 3


def test_an_unreadable_reply_is_no_verdict():
    assert parse_verdict("Verdict: correct") is True
    assert parse_verdict("I think it is right.\n**Verdict:** incorrect") is False
    assert parse_verdict("Verdict: incorrect ... on second thought, Verdict: correct") is True
    assert parse_verdict("The answer looks fine to me.") is None
    assert parse_verdict("") is None


def test_a_bad_judge_spec_is_one_line_error(tmp_path):
    predictions = _write(tmp_path / "preds.jsonl", RECORDS[:1])
    result = CliRunner().invoke(main, ["grade", "--dataset", "math", "--predictions", str(predictions),
                                       "--judge", "judge@ftp://nowhere"])
    assert result.exit_code != 0
    assert "endpoint spec 'judge@ftp://nowhere'" in result.output
    assert "Traceback" not in result.output


def test_grade_with_judge_is_the_one_call_for_stages(tmp_path):
    from lema_plugin.grading.judge import grade_with_judge

    items = [(record["completion"], record["answer"], record["question"]) for record in RECORDS]

    async def run(endpoint):
        async with LLMClient(cache_dir=tmp_path / "cache", progress=False) as client:
            return await grade_with_judge(items, "math", endpoint, client), client

    with ScriptedServer(judge_script) as server:
        judged, client = asyncio.run(run(server.endpoint(model="judge")))
        assert server.request_count == 3
    assert [g.decided_by for g in judged] == ["rule", "rule", "symbolic", "judge", "judge", "judge"]
    assert [g.correct for g in judged] == [True, False, True, True, True, False]
    assert client.usage["judge"].requests == 3
    rules_only = asyncio.run(grade_with_judge(items, "math"))  # no judge: the rules alone, no client needed
    assert [g.decided_by for g in rules_only] == ["rule", "rule", "symbolic", "rule", "rule", "rule"]


def test_lema_grade_takes_the_budget_and_the_preview(tmp_path):
    predictions = _write(tmp_path / "preds.jsonl", RECORDS)
    out = tmp_path / "graded"
    with ScriptedServer(judge_script) as server:
        args = ["grade", "--dataset", "math", "--predictions", str(predictions), "--out", str(out),
                "--judge", f"judge=judge-model@{server.base_url};price=1000/1000", "--quiet"]
        preview = CliRunner().invoke(main, [*args, "--estimate"])
        assert preview.exit_code == 0, preview.output
        assert [line.split()[1] for line in preview.output.splitlines() if line.startswith("judge ")] == ["3"]
        assert not out.exists() and server.request_count == 0  # a preview sends and writes nothing
        stopped = CliRunner().invoke(main, [*args, "--max-cost", "0.01"])
        assert stopped.exit_code == 3, stopped.output
        assert stopped.output.strip().splitlines()[-1].startswith("budget: stopped before this run folder's --max-cost $0.01")
        assert server.request_count == 0 and not (out / "graded.jsonl").exists()
        done = CliRunner().invoke(main, [*args, "--max-cost", "5"])
        assert done.exit_code == 0 and server.request_count == 3, done.output

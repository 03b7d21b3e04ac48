"""`lema score-corrector`: the two protocols' metric against a hand computation, the items a user
gives, the request loop's guarantees (resume after kill -9, budget, estimate), correctors side by
side with a run folder's dollars per verified correction, and the report's section."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from lema_plugin.cli import main
from lema_plugin.errors import ConfigError
from lema_plugin.llm.types import Endpoint
from lema_plugin.records import RecordError
from lema_plugin.score_corrector import ProcessBenchSource, load_items
from lema_plugin.score_corrector.items import Item
from lema_plugin.score_corrector.metric import average_f1, lema_items, score_lema, score_processbench
from lema_plugin.score_corrector.parse import Reading, read_lema, read_processbench
from lema_testing.scripted_server import Reply, ScriptedServer, count_tokens, prompt_text


def item(id, split, steps, label, final_right, problem=None):
    return {"id": id, "generator": "g", "problem": problem or f"Problem {id}: what is {steps} + {label}?",
            "steps": [f"Paragraph {i} of {id}." for i in range(steps)], "label": label,
            "final_answer_correct": final_right, "split": split}


# The fixture: erroneous and correct items in two splits; g5 has an error but the right final
# answer, so the LeMa protocol leaves it out.
ITEMS = [item("g1", "gsm8k", 3, 1, False), item("g2", "gsm8k", 2, 0, False), item("g3", "gsm8k", 3, -1, True),
         item("g4", "gsm8k", 2, -1, True), item("g5", "gsm8k", 3, 2, True), item("g6", "gsm8k", 4, 2, False),
         item("m1", "math", 2, 0, False), item("m2", "math", 2, -1, True)]


def correction(step: int) -> str:
    return (f"Incorrect Step: Step {step}.\nExplanation: it adds instead of subtracting.\nCorrect Solution:\n"
            f"Step {step}: 5 - 2 = 3. The answer is 3.")


# What the scripted corrector answers, per protocol and item
BENCH = {"g1": "Paragraph 1 is wrong. \\boxed{1}", "g2": "\\boxed{5}", "g3": "All fine: \\boxed{-1}",
         "g4": "I think it is fine.", "g5": "\\boxed{1}", "g6": "\\boxed{2}", "m1": "\\boxed{0}", "m2": "\\boxed{0}"}
LEMA = {"g1": correction(2),  # index 1 = label: exact
        "g2": correction(7),  # past the 2 paragraphs: outside
        "g6": correction(1),  # index 0, label 2: early
        "m1": "I cannot tell."}  # unparsed
# By hand. ProcessBench, gsm8k: erroneous g1 g2 g5 g6, right g1 g6 -> 2/4; correct g3 g4, right
# g3 -> 1/2; F1 = 2 * 0.5 * 0.5 / 1 = 0.5; one unread (g4), one outside (g2). math: erroneous 1/1,
# correct 0/1 -> F1 0. Average F1 (0.5 + 0) / 2 = 0.25.
# LeMa: g1 g2 g6 m1 (g5's final answer is right): exact 1, outside 1, early 1, unparsed 1 of 4.


def responder(body, attempt):
    text = prompt_text(body)
    name = re.search(r"Problem (\w+): what is", text).group(1)
    return BENCH[name] if "<paragraph_0>" in text else LEMA[name]


def write_items(path: Path, items=ITEMS) -> Path:
    path.write_text("".join(json.dumps(i) + "\n" for i in items))
    return path


def readings(table: dict, protocol: str) -> list[tuple[Item, Reading]]:
    endpoint = Endpoint("m", ("http://127.0.0.1:9/v1",))
    items = [Item(i["id"], i["split"], i["problem"], tuple(i["steps"]), i["label"], i["final_answer_correct"])
             for i in ITEMS]
    if protocol == "lema":
        return [(i, read_lema(table[i.id], endpoint)) for i in lema_items(items)]
    return [(i, read_processbench(table[i.id])) for i in items]


# -- the metric, by hand -------------------------------------------------------------------------


def test_processbench_metric_matches_the_hand_computation():
    splits = score_processbench(readings(BENCH, "processbench"))
    gsm8k, math = splits["gsm8k"], splits["math"]
    assert (gsm8k.erroneous, gsm8k.erroneous_right, gsm8k.correct, gsm8k.correct_right) == (4, 2, 2, 1)
    assert (gsm8k.unparsed, gsm8k.outside) == (1, 1)
    assert gsm8k.f1 == pytest.approx(0.5)
    assert (math.erroneous_accuracy, math.correct_accuracy, math.f1) == (1.0, 0.0, 0.0)
    assert average_f1(splits) == pytest.approx(0.25)


def test_lema_metric_matches_the_hand_computation():
    splits = score_lema(readings(LEMA, "lema"))
    assert [i.id for i, _ in readings(LEMA, "lema")] == ["g1", "g2", "g6", "m1"]  # g5: final answer right
    gsm8k, math = splits["gsm8k"], splits["math"]
    assert (gsm8k.items, gsm8k.exact, gsm8k.early, gsm8k.late, gsm8k.outside, gsm8k.unparsed) == (3, 1, 1, 0, 1, 0)
    assert (math.items, math.unparsed, math.exact) == (1, 1, 0)


def test_f1_needs_both_kinds_of_item():
    only_wrong = [(i, r) for i, r in readings(BENCH, "processbench") if i.erroneous]
    assert score_processbench(only_wrong)["gsm8k"].f1 is None
    assert average_f1(score_processbench(only_wrong)) is None


@pytest.mark.parametrize("reply, index", [
    ("\\boxed{3}", 3), ("so the answer is $\\boxed{-1}$.", -1), ("\\boxed{ 2 }", 2), ("\\boxed{paragraph_4}", 4),
    ("first \\boxed{1}, on reflection \\boxed{0}", 0), ("\\boxed{\\text{2}}", 2), ("\\boxed{2.}", 2),
    ("\\boxed{two}", None), ("no box at all", None), ("", None), ("\\boxed{1/2}", None),
])
def test_processbench_replies_are_read_from_the_last_box(reply, index):
    assert read_processbench(reply).index == index


def test_lema_replies_are_read_as_lema_correct_reads_them():
    chat = Endpoint("m", ("http://127.0.0.1:9/v1",))
    assert read_lema(correction(1), chat).index == 0  # "Step 1" is the first paragraph, index 0
    assert read_lema(correction(0), chat).index == -1  # no step 0: outside every item
    assert read_lema("Incorrect Step: Step 2.", chat).index is None  # lema correct would reject it unread
    completion = Endpoint("m", ("http://127.0.0.1:9/v1",), mode="completion")
    assert read_lema(correction(3).removeprefix("Incorrect Step:"), completion).index == 2  # the cue put back


# -- the items -----------------------------------------------------------------------------------


def test_items_from_jsonl_a_json_list_or_a_folder(tmp_path):
    path = write_items(tmp_path / "mine.jsonl")
    items = load_items(ProcessBenchSource(data_file=str(path)))
    assert [(i.id, i.split) for i in items][:2] == [("g1", "gsm8k"), ("g2", "gsm8k")]
    assert [i.id for i in load_items(ProcessBenchSource(data_file=str(path), splits=("math",)))] == ["m1", "m2"]
    assert [i.id for i in load_items(ProcessBenchSource(data_file=str(path), limit=1))] == ["g1", "m1"]
    folder = tmp_path / "hub-copy"
    folder.mkdir()  # the hub repository's own form: one JSON list per split, the split in the file name
    for split in ("gsm8k", "math"):
        rows = [{k: v for k, v in i.items() if k != "split"} for i in ITEMS if i["split"] == split]
        (folder / f"{split}.json").write_text(json.dumps(rows, indent=1))
    assert [(i.id, i.split) for i in load_items(ProcessBenchSource(data_file=str(folder)))] == \
        [(i["id"], i["split"]) for i in ITEMS]


@pytest.mark.parametrize("change, message", [
    ({"label": 3}, r"mine.jsonl:2: field 'label': 3 is not -1 or the index of one of the 2 paragraphs"),
    ({"label": "1"}, r"mine.jsonl:2: field 'label': expected a whole number"),
    ({"steps": []}, r"mine.jsonl:2: field 'steps': expected a non-empty list"),
    ({"steps": ["a", 2]}, r"mine.jsonl:2: field 'steps'"),
    ({"final_answer_correct": None}, r"mine.jsonl:2: field 'final_answer_correct': missing"),
    ({"id": "g1"}, r"mine.jsonl:2: field 'id': id 'g1' appears twice"),
])
def test_a_bad_item_is_one_line_naming_file_line_and_field(tmp_path, change, message):
    rows = [dict(ITEMS[0]), {**ITEMS[1], **change}]
    path = write_items(tmp_path / "mine.jsonl", rows)
    with pytest.raises(RecordError, match=message):
        load_items(ProcessBenchSource(data_file=str(path)))
    result = CliRunner().invoke(main, ["score-corrector", "--data-file", str(path), "--out", str(tmp_path / "o")])
    assert result.exit_code == 1 and len(result.output.strip().splitlines()) == 1, result.output


def test_a_json_list_item_is_named_by_its_index(tmp_path):
    path = tmp_path / "gsm8k.json"
    path.write_text(json.dumps([ITEMS[0], {**ITEMS[1], "label": 9}]))
    with pytest.raises(RecordError, match=r"gsm8k.json\[1\]: field 'label'"):
        load_items(ProcessBenchSource(data_file=str(path)))


def test_splits_the_source_lacks_are_refused(tmp_path):
    path = write_items(tmp_path / "mine.jsonl")
    with pytest.raises(ConfigError, match="has no item of split 'omnimath' \\(it has gsm8k, math\\)"):
        load_items(ProcessBenchSource(data_file=str(path), splits=("omnimath",)))
    with pytest.raises(ConfigError, match="has no split 'gsm9k'"):
        load_items(ProcessBenchSource(splits=("gsm9k",)))


def test_the_hub_dataset_offline_is_one_line(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", "/nonexistent-lema-test-home")
    with pytest.raises(RecordError, match=r"hub:Qwen/ProcessBench: could not load split 'gsm8k' .*--data-file"):
        load_items(ProcessBenchSource(splits=("gsm8k",)))


# -- a run against the scripted server -----------------------------------------------------------


def args(path, out, *specs, extra=()):
    return ["score-corrector", "--data-file", str(path), "--out", str(out), "-q",
            *[x for spec in specs for x in ("--corrector", spec)], *extra]


def test_a_run_scores_exactly_what_the_server_answered(tmp_path):
    path = write_items(tmp_path / "mine.jsonl")
    out = tmp_path / "score"
    with ScriptedServer(responder) as server:
        result = CliRunner().invoke(main, args(path, out, f"fixer=m@{server.base_url}"))
        assert result.exit_code == 0, result.output
        assert server.request_count == len(ITEMS) + 4  # every item once, the 4 LeMa mistakes once more
        summary = json.loads((out / "score_corrector_summary.json").read_text())
        again = CliRunner().invoke(main, args(path, out, f"fixer=m@{server.base_url}"))
        assert again.exit_code == 0 and server.request_count == len(ITEMS) + 4  # resumed: nothing asked twice
    fixer = summary["correctors"][0]
    assert fixer["average_f1"] == pytest.approx(0.25)
    assert fixer["processbench"]["gsm8k"]["f1"] == pytest.approx(0.5)
    assert fixer["lema_all"]["exact"] == 1 and fixer["lema_all"]["unparsed"] == 1 and fixer["lema_all"]["items"] == 4
    table = result.output
    assert re.search(r"ProcessBench F1, average of 2 splits\s+25\.0", table)
    assert re.search(r"gsm8k F1 \(err\. / corr\. accuracy; 4 \+ 2\)\s+50\.0 \(50\.0 / 50\.0\)", table)
    assert re.search(r"LeMa: named first step = label \(4 mistakes\)\s+1/4 \(25\.0%\)", table)
    assert re.search(r"not parsed\s+1/4 \(25\.0%\)", table)
    verdicts = [json.loads(line) for line in (out / "verdicts.jsonl").read_text().splitlines()]
    assert {(v["protocol"], v["item_id"]): v["outcome"] for v in verdicts}[("lema", "g2")] == "outside"
    assert len(verdicts) == len(ITEMS) + 4


def test_a_relabelled_item_is_rescored_without_a_request(tmp_path):
    path = write_items(tmp_path / "mine.jsonl")
    out = tmp_path / "score"
    with ScriptedServer(responder) as server:
        assert CliRunner().invoke(main, args(path, out, f"m@{server.base_url}", extra=["--protocols", "processbench"])).exit_code == 0
        write_items(path, [{**i, "label": 0} if i["id"] == "g2" else i for i in ITEMS])  # g2 said \boxed{5}; now 0 is wrong too
        write_items(path, [{**i, "label": -1, "final_answer_correct": True} if i["id"] == "m2" else i for i in ITEMS])
        before = server.request_count
        again = CliRunner().invoke(main, args(path, out, f"m@{server.base_url}", extra=["--protocols", "processbench"]))
        assert again.exit_code == 0 and server.request_count == before
    summary = json.loads((out / "score_corrector_summary.json").read_text())
    assert summary["correctors"][0]["processbench"]["gsm8k"]["erroneous"] == 4


def test_two_correctors_side_by_side_with_a_run_folders_dollars(tmp_path):
    """A run folder made by `lema correct` and `lema build` with corrector A: its ledger's dollars
    per verified correction and per exported example sit in A's column, next to A's scores."""
    path = write_items(tmp_path / "mine.jsonl")
    mistakes = tmp_path / "mistakes.jsonl"
    rows = [{"id": f"p{i}", "dataset": "math", "question": f"What is {i} + 2?", "answer": str(i + 2), "level": 1 + i % 2,
             "steps": [f"{i} + 2 = {i + 3}.", f"The answer is {i + 3}."], "model": "gen", "problem_id": f"q{i}"} for i in range(4)]
    mistakes.write_text("".join(json.dumps(r) + "\n" for r in rows))

    def both(body, attempt):
        text = prompt_text(body)
        question = re.findall(r"What is (\d+) \+ 2\?", text)
        if question:  # lema correct: right for p0, p1 and p2, wrong for p3
            i = int(question[-1])
            return correction(1).replace("3. The answer is 3.", f"{i + 2}. The answer is {i + 2 if i < 3 else 0}.")
        return responder(body, attempt)

    run = tmp_path / "run"
    with ScriptedServer(both) as server:
        spec_a = f"a=m@{server.base_url};price=1000/2000"
        corrected = CliRunner().invoke(main, ["correct", "--mistakes", str(mistakes), "--corrector", spec_a, "--style",
                                              "zeroshot", "--out", str(run / "correct"), "-q"])
        assert corrected.exit_code == 0, corrected.output
        (tmp_path / "cot.jsonl").write_text("")  # corrections alone: every exported row is one
        build = CliRunner().invoke(main, ["build", "--corrections", str(run / "correct" / "corrections.jsonl"),
                                          "--cot", str(tmp_path / "cot.jsonl"), "--mix", "lema",
                                          "--out", str(run / "data" / "lema"), "-q"])
        assert build.exit_code == 0, build.output
        scored = CliRunner().invoke(main, args(path, tmp_path / "score", spec_a, f"b=m2@{server.base_url}",
                                               extra=["--runs", str(run)]))
    assert scored.exit_code == 0, scored.output
    ledger = [json.loads(line) for line in (run / "correct" / "usage.jsonl").read_text().splitlines()]
    paid = sum(line["total"]["cost"] for line in ledger)
    summary = json.loads((tmp_path / "score" / "score_corrector_summary.json").read_text())
    cost = summary["runs"][0]
    assert cost["corrector"] == "a" and cost["levels"]["all"]["verified"] == 3
    exported = len((run / "data" / "lema" / "train.jsonl").read_text().splitlines())
    assert cost["levels"]["all"]["exported"] == exported == 3
    assert cost["levels"]["all"]["per_verified"] == pytest.approx(paid / 3)
    by_level = {k: v for k, v in cost["levels"].items() if k != "all"}
    assert set(by_level) == {"level 1", "level 2"}
    assert sum(v["dollars"] for v in by_level.values()) == pytest.approx(paid)  # the parts add up to what was paid
    headers = summary["table"]["headers"]
    assert headers == ["measure", "a", "b"]
    run_row = next(r for r in summary["table"]["rows"] if r[0].startswith("run "))
    assert run_row[1] == "3/4" and run_row[2] == "-"
    a, b = summary["correctors"]
    assert a["processbench"] == b["processbench"]  # the same scripted answers for both
    assert a["dollars"] > 0 and b["dollars"] is None  # b has no price


def test_a_wrong_run_folder_stops_before_any_request(tmp_path):
    path = write_items(tmp_path / "mine.jsonl")
    (tmp_path / "empty").mkdir()
    with ScriptedServer(responder) as server:
        result = CliRunner().invoke(main, args(path, tmp_path / "s", f"m@{server.base_url}",
                                               extra=["--runs", str(tmp_path / "empty")]))
        assert server.request_count == 0
    assert result.exit_code == 1 and "no LeMa records found" in result.output


def test_estimate_previews_and_sends_nothing(tmp_path):
    path = write_items(tmp_path / "mine.jsonl")
    with ScriptedServer(responder) as server:
        result = CliRunner().invoke(main, args(path, tmp_path / "s", f"m@{server.base_url};price=1/2",
                                               extra=["--estimate"]))
        assert server.request_count == 0
    assert result.exit_code == 0, result.output
    assert re.search(rf"\bm\b.*\b{len(ITEMS) + 4}\b", result.output), result.output
    assert not (tmp_path / "s" / "replies.jsonl").exists()


def test_the_budget_stops_the_run_and_a_rerun_finishes_without_paying_twice(tmp_path):
    path = write_items(tmp_path / "mine.jsonl")
    out = tmp_path / "s"
    bodies = []

    def counted(body, attempt):
        bodies.append(json.dumps(body, sort_keys=True))
        return responder(body, attempt)

    with ScriptedServer(counted) as server:
        spec = f"m@{server.base_url};price=100/100;concurrency=1"
        stopped = CliRunner().invoke(main, args(path, out, spec, extra=["--max-cost", "0.6", "--max-tokens", "200"]))
        assert stopped.exit_code == 3, stopped.output
        assert "budget: stopped before this run folder's --max-cost" in stopped.output
        first = server.request_count
        assert 0 < first < len(ITEMS) + 4
        done = CliRunner().invoke(main, args(path, out, spec, extra=["--max-cost", "50", "--max-tokens", "200"]))
        assert done.exit_code == 0, done.output
    assert server.request_count == len(ITEMS) + 4 == len(set(bodies))  # every request paid once
    replies = [json.loads(line) for line in (out / "replies.jsonl").read_text().splitlines()]
    expected = sum(r["usage"]["prompt_tokens"] + r["usage"]["completion_tokens"] for r in replies) * 100 / 1e6
    ledger = [json.loads(line) for line in (out / "usage.jsonl").read_text().splitlines()]
    assert len(ledger) == 2  # the stopped run's spending is in the ledger too
    summary = json.loads((out / "score_corrector_summary.json").read_text())
    assert summary["correctors"][0]["dollars"] == pytest.approx(expected)
    per_split = summary["correctors"][0]["tokens"]
    assert sum(s["dollars"] for s in per_split.values()) == pytest.approx(expected)


def test_resume_after_kill_9_pays_nothing_twice(tmp_path):
    """Kill the command while one request hangs; the rerun asks only for what was not stored."""
    path = write_items(tmp_path / "mine.jsonl")
    out = tmp_path / "s"
    hang = threading.Event()
    hang.set()
    seen: list[str] = []

    def hanging(body, attempt):
        text = prompt_text(body)
        seen.append(text)
        if "<paragraph_0>" in text and "Problem m2:" in text and hang.is_set():
            return Reply(hang=True)
        return responder(body, attempt)

    with ScriptedServer(hanging) as server:
        command = [str(Path(sys.executable).parent / "lema"), *args(path, out, f"m@{server.base_url}",
                                                                    extra=["--max-retries", "0", "--timeout", "600"])]
        process = subprocess.Popen(command, env={**os.environ, "PYTHONUNBUFFERED": "1"}, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
        replies = out / "replies.jsonl"
        deadline = time.time() + 60
        while time.time() < deadline and _lines(replies) < len(ITEMS) + 3:
            time.sleep(0.1)
        process.send_signal(signal.SIGKILL)
        process.wait()
        assert _lines(replies) == len(ITEMS) + 3 and not (out / "score_corrector_summary.json").exists()
        hang.clear()
        before = len(seen)
        resumed = CliRunner().invoke(main, args(path, out, f"m@{server.base_url}"))
        assert resumed.exit_code == 0, resumed.output
        assert len(seen) - before == 1 and "Problem m2:" in seen[-1]  # only the one that never arrived
    assert _lines(replies) == len(ITEMS) + 4


def _lines(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.exists() else 0


def test_failed_requests_are_missing_not_wrong_and_exit_5(tmp_path):
    path = write_items(tmp_path / "mine.jsonl")

    def failing(body, attempt):
        return Reply(status=500) if "Problem g1:" in prompt_text(body) else responder(body, attempt)

    with ScriptedServer(failing) as server:
        result = CliRunner().invoke(main, args(path, tmp_path / "s", f"m@{server.base_url}",
                                               extra=["--max-retries", "0"]))
    assert result.exit_code == 5, result.output
    summary = json.loads((tmp_path / "s" / "score_corrector_summary.json").read_text())
    fixer = summary["correctors"][0]
    assert fixer["missing"] == 2 and summary["failed_requests"] == 2
    assert fixer["processbench"]["gsm8k"]["erroneous"] == 3  # g1 is not counted as wrong


def test_the_report_shows_the_score_table(tmp_path):
    path = write_items(tmp_path / "mine.jsonl")
    out = tmp_path / "s"
    with ScriptedServer(responder) as server:
        assert CliRunner().invoke(main, args(path, out, f"fixer=m@{server.base_url}")).exit_code == 0
    result = CliRunner().invoke(main, ["report", str(out)])
    assert result.exit_code == 0, result.output
    html = (out / "report.html").read_text()
    assert "Corrector scores (ProcessBench)" in html and "ProcessBench F1, average of 2 splits" in html
    assert "named the labelled step" in html  # the funnel row
    assert "Choosing a corrector" in html


def test_the_scripted_token_counts_are_what_the_replies_record(tmp_path):
    """Tokens per split are the stored replies' own counts (here the scripted server's word counts)."""
    path = write_items(tmp_path / "mine.jsonl")
    out = tmp_path / "s"
    prompts: dict[str, int] = {}

    def counting(body, attempt):
        text = prompt_text(body)
        reply = responder(body, attempt)
        prompts[text] = count_tokens(text) + count_tokens(reply)
        return reply

    with ScriptedServer(counting) as server:
        assert CliRunner().invoke(main, args(path, out, f"m@{server.base_url}")).exit_code == 0
    tokens = json.loads((out / "score_corrector_summary.json").read_text())["correctors"][0]["tokens"]
    total = sum(t["prompt_tokens"] + t["completion_tokens"] for t in tokens.values())
    assert total == sum(prompts.values())


def test_batch_mode_scores_what_an_online_run_scores(tmp_path):
    path = write_items(tmp_path / "mine.jsonl")
    with ScriptedServer(responder) as server:
        online = CliRunner().invoke(main, args(path, tmp_path / "online", f"m@{server.base_url}"))
        assert online.exit_code == 0, online.output
        batch = args(path, tmp_path / "batch", f"m@{server.base_url};mode=batch")
        submitted = CliRunner().invoke(main, batch)
        assert submitted.exit_code == 75, submitted.output
        assert f"submitted {len(ITEMS) + 4} requests in 1 batch" in submitted.output
        server.finish_batches()
        collected = CliRunner().invoke(main, batch)
    assert collected.exit_code == 0, collected.output

    def verdicts(folder):
        return sorted((v["protocol"], v["item_id"], v["index"], v["outcome"])
                      for v in map(json.loads, (tmp_path / folder / "verdicts.jsonl").read_text().splitlines()))

    assert verdicts("batch") == verdicts("online") and len(verdicts("online")) == len(ITEMS) + 4


def test_it_is_a_command_not_a_step_of_lema_run():
    from lema_plugin import stage as registry
    from lema_plugin.recipe_check import schema_markdown

    assert "score-corrector" in [s.name for s in registry.stages()]
    assert "score-corrector" not in [s.name for s in registry.pipeline()]
    assert "score_corrector" not in schema_markdown()


def test_compare_puts_two_score_folders_side_by_side(tmp_path):
    path = write_items(tmp_path / "mine.jsonl")
    with ScriptedServer(responder) as server:
        for folder, spec, extra in (("a", f"m@{server.base_url}", []),
                                    ("b", f"m@{server.base_url}", ["--splits", "gsm8k", "--style", "zeroshot"])):
            result = CliRunner().invoke(main, args(path, tmp_path / folder, spec, extra=extra))
            assert result.exit_code == 0, result.output
    compared = CliRunner().invoke(main, ["compare", str(tmp_path / "a"), str(tmp_path / "b")])
    assert compared.exit_code == 0, compared.output
    a, b = str(tmp_path / "a"), str(tmp_path / "b")
    header = next(line for line in compared.output.splitlines() if line.startswith("measure"))
    assert f"m ({a})" in header and f"m ({b})" in header  # the same label in both: named by folder
    assert re.search(r"ProcessBench F1, average of 2 splits\s+25\.0\s+-", compared.output)  # b scored one split
    assert re.search(r"ProcessBench F1, average of 1 split\s+-\s+50\.0", compared.output)
    assert "scored different items" in compared.output
    refused = CliRunner().invoke(main, ["compare", a, b, "--html", str(tmp_path / "c.html")])
    assert refused.exit_code == 1 and "--html" in refused.output

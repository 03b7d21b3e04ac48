"""The correction stage against the scripted server (exact counts), the prompts' own examples,
resume after a kill, and one real pass with the embedded model."""
from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner

from lema_plugin.cli import main
from lema_plugin.correct import (
    CORRECTIONS, REASONS, REJECTED, SUMMARY, CorrectSettings, correct_mistakes, corrector_spec, load_mistakes, parse_correction,
)
from lema_plugin.grading import answers_match, extract_answer, last_boxed
from lema_plugin.llm import LLMClient
from lema_testing.scripted_server import Reply, ScriptedServer, count_tokens, prompt_text
from lema_plugin.prompts import load_prompt, render
from lema_plugin.records import RecordError, make_id

GOOD = "Incorrect Step: Step 2.\nExplanation: 3 + 4 is 7, not 8.\nCorrect Solution:\nStep 2: He buys 4 more, so 3 + 4 = 7. The answer is 7."


def mistake(question, answer, steps, dataset="gsm8k", model="gen-a", **extra):
    record = {
        "problem_id": make_id(dataset, question),
        "dataset": dataset,
        "question": question,
        "answer": answer,
        "model": model,
        "sample_index": 0,
        "text": "\n".join(steps),
        "steps": steps,
        "prediction": None,
        "correct": False,
        "kind": "wrong",
        **extra,
    }
    record["id"] = make_id("path", question, model, 0)
    return record


def apples(name, model="gen-a"):
    """A GSM8K-style mistake whose question starts with `name`, so a responder can script it."""
    return mistake(f"{name}: Tom has 3 apples and buys 4 more. How many apples does he have?", "7",
                   ["Tom has 3 apples.", "He buys 4 more, so 3 + 4 = 8. The answer is 8."], model=model)


HALF = mistake(
    "What is the probability that a fair coin lands heads? Express your answer as a common fraction.",
    "\\frac{1}{2}",
    ["There are 2 outcomes.", "One of them is heads, so the probability is $\\frac{1}{3}$. The answer is $\\boxed{\\frac{1}{3}}$."],
    dataset="math", model="gen-b", level=1, subject="counting_and_probability",
)

# one mistake per outcome; the responder answers by the question's first word
REPLIES = {
    "good": GOOD,
    "chatty": "Sure, here is my review.\n\n**Incorrect Step:** step 2\n**Explanation:** 3 + 4 = 7.\n**Correct Solution:**\nStep 2: 3 + 4 = 7. The answer is 7.\n\nHope this helps!",
    "unparseable": "The solution looks right to me.",
    "missing": GOOD.replace("Step 2.", "Step 5."),
    "wrong": GOOD.replace("The answer is 7.", "The answer is 9."),
    "broken": Reply(status=500),
    "What": "Incorrect Step: Step 2.\nExplanation: One of two outcomes is 1/2.\nCorrect Solution:\nStep 2: The probability is $\\frac{1}{2}$. The answer is $\\boxed{\\frac{1}{2}}$.",
}
MISTAKES = [apples("good"), apples("chatty", model="gen-b"), apples("unparseable"), apples("missing"), apples("wrong"), apples("broken"), HALF]


def last_question(body: dict) -> str:
    return re.findall(r"^Question: (.*)$", prompt_text(body), re.M)[-1]


class Script:
    """A responder that answers by the mistake's key and records what the server billed."""

    def __init__(self, replies: dict, fix: set = frozenset()):
        self.replies, self.fix = replies, set(fix)
        self.calls: Counter = Counter()
        self.billed = [0, 0]
        self.lock = threading.Lock()

    def key(self, body):
        return re.match(r"[\w]+", last_question(body)).group(0)

    def __call__(self, body, attempt):
        key = self.key(body)
        with self.lock:
            n = self.calls[key]
            self.calls[key] += 1
        reply = self.replies[key]
        if isinstance(reply, list):
            reply = reply[min(n, len(reply) - 1)]
        if isinstance(reply, Reply) and reply.status != 200 and key in self.fix:
            reply = GOOD
        if isinstance(reply, str):
            with self.lock:
                self.billed[0] += count_tokens(prompt_text(body))
                self.billed[1] += count_tokens(reply)
        return reply


async def _correct(client, *args):
    async with client:
        return await correct_mistakes(*args)


def run_stage(server, out, mistakes=MISTAKES, endpoint=None, **settings):
    client = LLMClient(cache_dir=Path(out) / ".cache", concurrency=4, timeout=10, max_retries=1, progress=False, backoff_base=0.05)
    endpoint = endpoint or server.endpoint(model="corrector", name="fixer", price_prompt=1.0, price_completion=2.0)
    return asyncio.run(_correct(client, mistakes, [endpoint], client, out, CorrectSettings(**settings)))


def read(path):
    path = Path(path)
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def by_key(records):
    return {r["question"].split(":")[0] if r["dataset"] == "gsm8k" else "What": r for r in records}


def test_each_outcome_lands_in_the_right_file_with_exact_counts(tmp_path):
    script = Script(REPLIES)
    with ScriptedServer(script) as server:
        summary = run_stage(server, tmp_path)
    kept, rejected = read(tmp_path / CORRECTIONS), read(tmp_path / REJECTED)
    assert sorted(by_key(kept)) == ["What", "chatty", "good"]
    assert {k: r["reason"] for k, r in by_key(rejected).items()} == {
        "unparseable": "unparseable", "missing": "bad_step", "wrong": "wrong_answer", "broken": "request_failed",
    }
    good = by_key(kept)["good"]
    assert (good["incorrect_step"], good["prediction"], good["correct"], good["corrector"]) == (2, "7", True, "fixer")
    assert good["corrected_solution"] == "Step 2: He buys 4 more, so 3 + 4 = 7. The answer is 7."
    assert good["explanation"] == "3 + 4 is 7, not 8."
    assert good["source_model"] == "gen-a" and good["steps"] == MISTAKES[0]["steps"] and good["raw"] == GOOD
    assert by_key(kept)["chatty"]["corrected_solution"] == "Step 2: 3 + 4 = 7. The answer is 7."
    half = by_key(kept)["What"]
    assert (half["level"], half["subject"], half["prediction"]) == (1, "counting_and_probability", "\\frac{1}{2}")
    assert by_key(rejected)["missing"]["detail"] == "names step 5; the path has 2 steps"
    assert by_key(rejected)["wrong"]["prediction"] == "9"
    assert by_key(rejected)["broken"]["raw"] == "" and by_key(rejected)["broken"]["detail"]
    assert script.calls["broken"] == 2  # first try and the one retry

    assert (summary.mistakes, summary.corrected_mistakes, summary.attempts, summary.verified) == (7, 3, 7, 3)
    assert summary.rejected == {"unparseable": 1, "bad_step": 1, "wrong_answer": 1, "request_failed": 1}
    assert {k: (r.mistakes, r.corrected) for k, r in summary.by_model.items()} == {"gen-a": (5, 1), "gen-b": (2, 2)}
    assert {k: (r.mistakes, r.corrected) for k, r in summary.by_level.items()} == {"level 1": (1, 1)}
    assert {k: (r.mistakes, r.corrected) for k, r in summary.by_subject.items()} == {"counting_and_probability": (1, 1)}
    assert [summary.prompt_tokens, summary.completion_tokens] == script.billed
    assert summary.cost == pytest.approx((script.billed[0] * 1.0 + script.billed[1] * 2.0) / 1e6)
    saved = json.loads((tmp_path / SUMMARY).read_text())
    assert saved["success_rate"] == pytest.approx(3 / 7) and saved["by_model"]["gen-b"]["rate"] == 1.0
    text = "\n".join(summary.lines())
    assert "corrected: 3 (42.9%)" in text and "request_failed 1" in text and "level 1" in text


def test_a_second_run_retries_only_failed_requests(tmp_path):
    with ScriptedServer(Script(REPLIES)) as server:
        run_stage(server, tmp_path)
    script = Script(REPLIES, fix={"broken"})
    with ScriptedServer(script) as server:
        summary = run_stage(server, tmp_path)
        assert server.request_count == 1
    assert sum(script.calls.values()) == 1
    assert sorted(by_key(read(tmp_path / CORRECTIONS))) == ["What", "broken", "chatty", "good"]
    assert sorted(r["reason"] for r in read(tmp_path / REJECTED)) == ["bad_step", "unparseable", "wrong_answer"]
    assert summary.rejected["request_failed"] == 0 and summary.corrected_mistakes == 4


def test_attempts_stop_early_once_keep_corrections_are_verified(tmp_path):
    replies = {
        "late": ["no idea", "still nothing", GOOD, GOOD],  # verified from the third attempt on
        "never": "no idea",
        "good": GOOD,
    }
    mistakes = [apples("late"), apples("never"), apples("good")]
    script = Script(replies)
    with ScriptedServer(script) as server:
        summary = run_stage(server, tmp_path / "keep1", mistakes, samples=4, keep=1)
    assert script.calls == {"late": 3, "never": 4, "good": 1}
    assert Counter(r["question"].split(":")[0] for r in read(tmp_path / "keep1" / CORRECTIONS)) == {"late": 1, "good": 1}
    assert summary.attempts == 8 and summary.verified == 2 and summary.rejected["unparseable"] == 6

    script = Script(replies)
    with ScriptedServer(script) as server:
        run_stage(server, tmp_path / "keep2", mistakes, samples=4, keep=2)
    assert script.calls == {"late": 4, "never": 4, "good": 2}
    kept = read(tmp_path / "keep2" / CORRECTIONS)
    assert sorted(r["attempt"] for r in kept if r["question"].startswith("late")) == [2, 3]
    assert all(r["id"] != s["id"] for r in kept for s in kept if r is not s)


def test_completion_mode_and_zero_shot_prompt(tmp_path):
    seen = []

    def responder(body, attempt):
        seen.append(body)
        return " " + GOOD[len("Incorrect Step: "):] if "prompt" in body else GOOD

    with ScriptedServer(responder) as server:
        base = server.endpoint(model="base", mode="completion")
        summary = run_stage(server, tmp_path / "completion", [apples("good")], endpoint=base)
        assert summary.verified == 1
        assert seen[-1]["prompt"].endswith("Original Solution:\nStep 1: Tom has 3 apples.\nStep 2: He buys 4 more, so 3 + 4 = 8. The answer is 8.\nIncorrect Step:")
        assert "\nQuestion:" in seen[-1]["stop"]
        summary = run_stage(server, tmp_path / "zeroshot", [apples("good")], style="zeroshot")
        assert summary.verified == 1
    user = seen[-1]["messages"][-1]["content"]
    assert "Samuel" not in user and user.count("Question:") == 1 and 'End the last step with the sentence "The answer is X."' in user


def _examples(template: str):
    """(question, original solution, correction reply) of each worked example in a prompt."""
    body = template.format(question="QUESTION", steps="STEPS").split("\n\nQuestion: ")[1:-1]
    for block in body:
        question, rest = block.split("\nOriginal Solution:\n", 1)
        original, reply = rest.split("\nIncorrect Step:", 1)
        yield question, original, "Incorrect Step:" + reply


MATH_GOLD = {"sum of all values": "5", "Two fair six-sided dice": "\\frac{1}{9}", "2^{100}": "2", "right triangle": "\\frac{24}{5}", "minimum value": "5"}


@pytest.mark.parametrize("dataset", ["gsm8k", "math"])
def test_prompt_examples_are_real_corrections(dataset, shared_data):
    """Each worked example parses, names a step of its own wrong solution, and the corrected
    solution reaches the gold answer by the grader while the original does not."""
    golds = {}
    if dataset == "gsm8k":
        for line in (shared_data / "gsm8k" / "train.jsonl").read_text().splitlines():
            row = json.loads(line)
            golds[row["question"]] = row["answer"].rsplit("####", 1)[1].strip()
    examples = list(_examples(load_prompt(f"correct_{dataset}")))
    assert len(examples) >= 4
    for question, original, reply in examples:
        gold = golds[question] if dataset == "gsm8k" else next(v for k, v in MATH_GOLD.items() if k in question)
        steps = original.splitlines()
        parsed = parse_correction(reply)
        assert 1 <= parsed.incorrect_step <= len(steps)
        assert parsed.corrected_solution.startswith(f"Step {parsed.incorrect_step}:")
        assert answers_match(extract_answer(parsed.corrected_solution, dataset), gold, dataset), question
        assert not answers_match(extract_answer(original, dataset), gold, dataset), question
        assert re.search(r"The answer is [^\n]+\.$", parsed.corrected_solution)
        if dataset == "math":
            assert answers_match(last_boxed(parsed.corrected_solution), gold, dataset)
    assert "{" not in render(f"correct_{dataset}", question="Q", steps="S").split("\nQuestion: Q")[-1]


def test_bad_input_and_corrector_defaults(tmp_path):
    path = tmp_path / "mistakes.jsonl"
    path.write_text(json.dumps(MISTAKES[0]) + "\n" + json.dumps({**MISTAKES[1], "dataset": "aime"}) + "\n")
    with pytest.raises(RecordError, match=r"mistakes.jsonl:2: field 'dataset'"):
        load_mistakes(path)
    result = CliRunner().invoke(main, ["correct", "--mistakes", str(path), "--corrector", "m@http://127.0.0.1:9/v1", "--out", str(tmp_path / "o")])
    assert result.exit_code == 1 and "mistakes.jsonl:2: field 'dataset'" in result.output
    no_steps = {**MISTAKES[0], "steps": None, "text": "Tom has 3 apples. He buys 4 more, so 3 + 4 = 8."}
    failed = {**MISTAKES[2], "kind": "failed", "text": "", "steps": []}
    path.write_text("".join(json.dumps(r) + "\n" for r in (no_steps, {**MISTAKES[1], "correct": True}, failed, no_steps)))
    assert [m["steps"] for m in load_mistakes(path)] == [["Tom has 3 apples.", "He buys 4 more, so 3 + 4 = 8."]]
    path.write_text(json.dumps({**MISTAKES[3], "steps": [], "text": " "}) + "\n")
    with pytest.raises(RecordError, match=r"mistakes.jsonl:1: field 'steps'"):
        load_mistakes(path)

    assert corrector_spec("x@http://h/v1", {"LEMA_CORRECTOR": "y", "OPENAI_API_KEY": "k"}) == "x@http://h/v1"
    assert corrector_spec(None, {"LEMA_CORRECTOR": "y", "OPENAI_API_KEY": "k"}) == "y"
    assert corrector_spec(None, {"OPENAI_API_KEY": "k"}).startswith("gpt-4o")
    assert corrector_spec(None, {}) == "embedded"


def _sorted_lines(path):
    return sorted(Path(path).read_text().splitlines())


def test_resume_after_a_kill_gives_the_same_files(tmp_path):
    """Kill `lema correct` while one request hangs; the re-run completes it and ends with the
    same files as an uninterrupted run, asking only for what was missing."""
    hang = threading.Event()
    hang.set()
    replies = dict(REPLIES)
    script = Script(replies)

    def responder(body, attempt):
        if script.key(body) == "wrong" and hang.is_set():
            return Reply(hang=True)
        return script(body, attempt)

    path = tmp_path / "mistakes.jsonl"
    path.write_text("".join(json.dumps(m) + "\n" for m in MISTAKES))
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with ScriptedServer(responder) as server:
        def args(out):
            return ["correct", "--mistakes", str(path), "--out", str(out), "--corrector", f"fixer=corrector@{server.base_url}", "--max-retries", "0", "--quiet"]

        killed = tmp_path / "killed"
        lema = str(Path(sys.executable).parent / "lema")
        process = subprocess.Popen([lema, *args(killed)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 60
        while time.time() < deadline and len(read(killed / CORRECTIONS)) + len(read(killed / REJECTED)) < len(MISTAKES) - 1:
            time.sleep(0.1)
        process.send_signal(signal.SIGKILL)
        process.wait()
        assert len(read(killed / CORRECTIONS)) + len(read(killed / REJECTED)) == len(MISTAKES) - 1
        assert not (killed / SUMMARY).exists()

        hang.clear()
        script.calls.clear()
        resumed = CliRunner().invoke(main, args(killed))
        assert resumed.exit_code == 5, resumed.output  # the "broken" request fails every time
        assert script.calls == {"wrong": 1, "broken": 1}  # the hung one, and the failed one again
        assert "corrected: 3" in resumed.output

        fresh = tmp_path / "fresh"
        done = CliRunner().invoke(main, args(fresh))
        assert done.exit_code == 5, done.output
    for name in (CORRECTIONS, REJECTED, SUMMARY):
        assert _sorted_lines(killed / name) == _sorted_lines(fresh / name), name


@pytest.mark.slow
def test_real_pass_with_the_embedded_model(tmp_path, embedded_endpoint, shared_data):
    """SmolLM2-135M rarely corrects anything; this checks files and accounting, not quality.
    One request at a time with a long timeout: a CPU server that is asked twice at once only
    gets slower, and a timed-out request would keep it busy."""
    rows = [json.loads(line) for line in (shared_data / "gsm8k" / "train.jsonl").read_text().splitlines()[:2]]
    mistakes = [
        mistake(row["question"], row["answer"].rsplit("####", 1)[1].strip(), ["Let me think.", "The answer is 1."], model="gen-a")
        for row in rows
    ]
    client = LLMClient(cache_dir=tmp_path / ".cache", concurrency=1, timeout=300, max_retries=0, progress=False)
    settings = CorrectSettings(max_tokens=48, style="zeroshot")
    summary = asyncio.run(_correct(client, mistakes, [embedded_endpoint], client, tmp_path, settings))
    records = read(tmp_path / CORRECTIONS) + read(tmp_path / REJECTED)
    assert sorted(r["path_id"] for r in records) == sorted(m["id"] for m in mistakes)
    answered = [r for r in records if r.get("reason") != "request_failed"]
    assert answered, [r["detail"] for r in records]
    for record in records:
        assert record["correct"] or record["reason"] in REASONS
        assert record["corrector"] == embedded_endpoint.label and record["prompt"] == "correct_zeroshot"
    for record in answered:
        assert record["usage"]["prompt_tokens"] > 0 and record["finish_reason"] in ("stop", "length")
    assert summary.attempts == 2 and summary.verified + sum(summary.rejected.values()) == 2
    assert summary.prompt_tokens == sum(r["usage"]["prompt_tokens"] for r in records) > 0
    assert summary.completion_tokens == sum(r["usage"]["completion_tokens"] for r in records) > 0
    usage = client.usage[embedded_endpoint.label]
    assert (usage.requests, usage.prompt_tokens, usage.completion_tokens) == (2, summary.prompt_tokens, summary.completion_tokens)
    assert json.loads((tmp_path / SUMMARY).read_text())["attempts"] == 2


def test_keep_1_is_never_exceeded_when_first_arrivals_fail_across_reruns(tmp_path):
    """Issue 12, item 8: the first request about every mistake fails. Two runs of `--attempts 2
    --keep 1` must end with one verified correction per mistake (a clean run's count), and the
    two attempts of a mistake must not be the same request body."""
    names = [f"m{i}" for i in range(6)]
    path = tmp_path / "mistakes.jsonl"
    path.write_text("".join(json.dumps(apples(name)) + "\n" for name in names))
    bodies: list[str] = []
    arrivals: Counter = Counter()

    def first_arrival_fails(body, attempt):
        bodies.append(json.dumps(body, sort_keys=True))
        question = last_question(body)
        arrivals[question] += 1
        return Reply(status=500) if arrivals[question] == 1 else GOOD

    out = tmp_path / "out"
    args = ["correct", "--mistakes", str(path), "--attempts", "2", "--keep", "1", "--max-retries", "0", "--quiet", "--out", str(out)]
    with ScriptedServer(first_arrival_fails) as server:
        for _ in range(2):
            CliRunner().invoke(main, [*args, "--corrector", f"fixer=corrector@{server.base_url}"])
    corrections = [json.loads(line) for line in (out / CORRECTIONS).read_text().splitlines()]
    assert Counter(c["path_id"] for c in corrections) == Counter({apples(name)["id"]: 1 for name in names})
    assert len(bodies) == 2 * len(names), "the second run asked nothing: every mistake already had its correction"
    assert len(set(bodies)) == len(bodies), "attempts 0 and 1 of a mistake send different bodies"


def test_the_export_skips_a_repeated_correction_of_the_same_mistake(tmp_path):
    from lema_plugin.export.examples import load_examples

    record = {"id": "c1", "path_id": "p", "problem_id": "q", "dataset": "gsm8k", "question": "Q?", "answer": "7",
              "steps": ["a", "b"], "incorrect_step": 2, "explanation": "e", "corrected_solution": "Step 2: 7. The answer is 7.",
              "correct": True}
    path = tmp_path / "corrections.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in (record, {**record, "id": "c2", "attempt": 1},
                                                              {**record, "id": "c3", "explanation": "other"})))
    examples, skipped = load_examples(path, "correction")
    assert [e.id for e in examples] == ["c1", "c3"]
    assert skipped["duplicate_correction"] == 1

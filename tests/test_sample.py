"""`lema sample` against the scripted server (exact counts, resume after a kill) and one real run."""
from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from lema_plugin.cli import main
from lema_plugin.grading import is_correct
from lema_plugin.llm import LLMClient
from lema_testing.scripted_server import Reply, ScriptedServer
from lema_plugin.problems import Problem, read_problems_file
from lema_plugin.records import make_id
from lema_plugin.sample import SampleSettings, sample_paths, solve_request
from lema_testing.files import read_jsonl as read

SEED = 1000  # sample k is sent with seed SEED + k: the responder tells samples apart by it

# (question, gold) -> per model -> one scripted reply per sample index.
# A reply is text, ("length", text) for a truncated path, or "FAIL" for a failing request.
Q1 = "Tom has 2 apples and buys 3 more. How many apples does he have?"
Q2 = "A box holds 10 pens. 4 are taken out. How many pens are left?"
Q3 = "There are 3 rows of 3 chairs. How many chairs are there?"
SCRIPT = {
    (Q1, "5"): {
        "ma": [
            "2 + 3 = 5.\nThe answer is 5.",
            "2 + 3 = 6.\nThe answer is 6.",
            "2 + 3 = 6.\nThe answer is 6.",  # duplicate of sample 1
            "2 + 3 = 6.   the answer is 6.",  # duplicate after case/space normalization
        ],
        "mb": [
            "Tom has 2 * 3 = 6 apples.\nThe answer is 6.",
            ("length", "Tom starts with 2 apples and then he"),
            "I cannot tell.",  # no final answer: unextractable
            "FAIL",
        ],
    },
    (Q2, "6"): {
        "ma": ["10 - 4 = 6.\nThe answer is 6."] * 4,
        "mb": [f"10 - {k} = {10 - k}.\nThe answer is {10 - k}." for k in (1, 2, 3, 5)],
    },
    (Q3, "9"): {
        "ma": ["3 + 3 = 6.\nThe answer is 6.", "3 * 3 = 9.\nThe answer is 9.", "3 + 3 + 3 = 8.\nThe answer is 8.", "3 ^ 3 = 27.\nThe answer is 27."],
        "mb": ["3 - 3 = 0.\nThe answer is 0.", "3 / 3 = 1.\nThe answer is 1.", "3 * 3 = 9.\nThe answer is 9.", "33.\nThe answer is 33."],
    },
}


def problems() -> list[Problem]:
    return [Problem(make_id("gsm8k", q), "gsm8k", q, a, f"#### {a}") for q, a in SCRIPT]


def question_of(body: dict) -> str:
    text = body["messages"][-1]["content"] if "messages" in body else body["prompt"]
    return next(q for q, _ in SCRIPT if q in text)


def scripted(body: dict, attempt: int):
    gold = dict(SCRIPT)
    question = question_of(body)
    answer = next(a for q, a in gold if q == question)
    reply = SCRIPT[(question, answer)][body["model"]][body["seed"] - SEED]
    if reply == "FAIL":
        return Reply(status=400)
    if isinstance(reply, tuple):
        return Reply(content=reply[1], finish_reason=reply[0])
    return reply


def run_stage(server, out, **settings):
    endpoints = [server.endpoint(model="ma", name="a"), server.endpoint(model="mb", name="b", mode="completion")]
    client = LLMClient(cache_dir=out / ".cache", concurrency=8, max_retries=0, progress=False)
    options = dict(samples=4, seed=SEED, temperature=0.8, max_tokens=64) | settings

    async def run():
        async with client:
            return await sample_paths(problems(), endpoints, client, out, SampleSettings(**options))

    return asyncio.run(run())


def test_exact_counts(tmp_path):
    with ScriptedServer(scripted) as server:
        summary = run_stage(server, tmp_path / "run")
        assert server.request_count == 24

    paths = read(tmp_path / "run" / "paths.jsonl")
    assert len(paths) == 24
    kinds = {(p["model"], p["question"][:3], p["sample_index"]): p["kind"] for p in paths}
    assert kinds[("b", "Tom", 1)] == "truncated"
    assert kinds[("b", "Tom", 2)] == "unextractable"
    assert kinds[("b", "Tom", 3)] == "failed"
    failed = next(p for p in paths if p["kind"] == "failed")
    assert failed["error"] and failed["text"] == "" and failed["correct"] is False
    for p in paths:
        assert p["correct"] == (p["kind"] == "correct")
        if p["kind"] != "failed":
            assert p["correct"] == is_correct(p["text"], p["answer"], "gsm8k")
            assert p["steps"] and p["prompt_tokens"] > 0

    a, b = summary.generators["a"], summary.generators["b"]
    # a: Q1 1 correct + 3 wrong (2 duplicates), Q2 4 correct, Q3 1 correct + 3 wrong
    assert (a["paths"], a["correct"], a["wrong"], a["duplicates"], a["mistakes"]) == (12, 6, 6, 2, 4)
    # b: Q1 wrong, truncated, unextractable, failed; Q2 4 wrong; Q3 3 wrong + 1 correct
    assert (b["paths"], b["failed"], b["correct"], b["wrong"], b["truncated"], b["unextractable"]) == (11, 1, 1, 8, 1, 1)
    assert b["mistakes"] == 8 and b["truncated_share"] == round(1 / 11, 4)
    assert a["accuracy"] == 0.5 and b["accuracy"] == round(1 / 11, 4)

    mistakes = read(tmp_path / "run" / "mistakes.jsonl")
    assert len(mistakes) == 12
    assert all(m["kind"] == "wrong" and not m["correct"] for m in mistakes)
    assert len({(m["problem_id"], " ".join(m["text"].lower().split())) for m in mistakes}) == 12
    saved = json.loads((tmp_path / "run" / "sample_summary.json").read_text())
    assert saved["total"]["mistakes"] == 12 and saved["questions_with_mistakes"] == 3


def test_cap_takes_generators_in_turn_and_unfinished_on_request(tmp_path):
    with ScriptedServer(scripted) as server:
        run_stage(server, tmp_path / "run", max_mistakes_per_question=3)
        capped = read(tmp_path / "run" / "mistakes.jsonl")
        by_question = {}
        for m in capped:
            by_question.setdefault(m["question"][:3], []).append((m["model"], m["sample_index"]))
        assert by_question["Tom"] == [("a", 1), ("b", 0)]  # only 2 distinct finished mistakes
        assert by_question["A b"] == [("b", 0), ("b", 1), ("b", 2)]
        assert by_question["The"] == [("a", 0), ("a", 2), ("b", 0)]  # a, b, a in turn, file order kept

        before = server.request_count
        summary = run_stage(server, tmp_path / "run", keep_unfinished=True)
        # the failed request is asked again (and fails again); all else comes from the store
        assert server.request_count == before + 1
        kept = read(tmp_path / "run" / "mistakes.jsonl")
        assert sorted(m["kind"] for m in kept if m["question"] == Q1) == ["truncated", "unextractable", "wrong", "wrong"]
        assert summary.total["mistakes"] == 14
        assert summary.requests == 1


def test_failed_request_is_retried_on_rerun(tmp_path):
    broken = {"on": True}

    def flaky(body, attempt):
        if broken["on"] and body["model"] == "ma" and body["seed"] == SEED:
            return Reply(status=503)
        return "2 + 3 = 5.\nThe answer is 5." if question_of(body) == Q1 else "The answer is 1."

    with ScriptedServer(flaky) as server:
        first = run_stage(server, tmp_path / "run", samples=1)
        assert first.generators["a"]["failed"] == 3 and first.generators["b"]["failed"] == 0
        assert sum(p["kind"] == "failed" for p in read(tmp_path / "run" / "paths.jsonl")) == 3
        broken["on"] = False
        server.reset_counts()
        second = run_stage(server, tmp_path / "run", samples=1)
        assert server.request_count == 3  # only the failed ones
    paths = read(tmp_path / "run" / "paths.jsonl")
    assert len(paths) == 6 and not any(p["kind"] == "failed" for p in paths)
    assert second.generators["a"]["failed"] == 0 and second.generators["a"]["correct"] == 1


def test_chat_and_completion_requests():
    problem = problems()[0]
    with ScriptedServer(scripted) as server:
        chat = solve_request(problem, server.endpoint(mode="chat"), 2, seed=7)
        completion = solve_request(problem, server.endpoint(mode="completion"), 0)
    assert chat.messages[0][0] == "user" and Q1 in chat.messages[0][1] and chat.prompt is None
    assert chat.seed == 9 and chat.sample_index == 2 and chat.stop == ()
    assert completion.prompt.startswith("Please solve the following math problem.")
    assert completion.prompt.rstrip().endswith("Answer: Let's think step by step.")
    assert completion.stop == ("\nQuestion:",) and completion.messages is None


def write_problem_file(path: Path, count: int) -> Path:
    rows = [{"question": f"What is {n} plus {n}?", "answer": f"{n} + {n} = {2 * n}\n#### {2 * n}"} for n in range(1, count + 1)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def arithmetic(body: dict, attempt: int) -> str:
    """Model ma is right on samples 0 and 2, off by one on sample 1; mb is wrong differently each time."""
    text = body["messages"][-1]["content"] if "messages" in body else body["prompt"]
    n = int(text.split("What is ")[1].split(" plus")[0])
    k = body["seed"] - SEED
    if body["model"] == "ma":
        value = 2 * n + (k == 1)
    else:
        value = 2 * n + 10 + k
    return f"{n} + {n} = {value}.\nThe answer is {value}."


def sample_args(data_file: Path, out: Path, base_url: str) -> list[str]:
    return [
        "sample",
        "--data-file", str(data_file), "--generator", f"a=ma@{base_url}", "--generator", f"b=mb@{base_url};mode=completion",
        "-k", "3", "--seed", str(SEED), "--concurrency", "2", "--max-retries", "0", "--quiet", "--out", str(out),
    ]


def test_resume_after_kill_matches_uninterrupted_run(tmp_path):
    data_file = write_problem_file(tmp_path / "problems.jsonl", 10)
    total = 10 * 2 * 3
    with ScriptedServer(arithmetic, latency=0.05) as server:
        whole = CliRunner().invoke(main, sample_args(data_file, tmp_path / "whole", server.base_url))
        assert whole.exit_code == 0, whole.output
        assert server.request_count == total

        # a separate process, killed (SIGKILL: no clean-up at all) once 15 paths are stored
        server.reset_counts()
        out = tmp_path / "killed"
        command = [sys.executable, "-c", "from lema_plugin.cli import main; main()", *sample_args(data_file, out, server.base_url)]
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            paths = out / "paths.jsonl"
            if paths.exists() and paths.read_bytes().count(b"\n") >= 15:
                break
            time.sleep(0.005)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
        stored = (out / "paths.jsonl").read_bytes().count(b"\n")
        assert 15 <= stored < total, "the run finished before it could be killed"
        assert not (out / "mistakes.jsonl").exists()

        server.reset_counts()
        resumed = CliRunner().invoke(main, sample_args(data_file, out, server.base_url))
        assert resumed.exit_code == 0, resumed.output
        # what was stored is not asked again (answers received but not yet stored come from the cache)
        assert server.request_count <= total - stored

    for name in ("paths.jsonl", "mistakes.jsonl"):
        assert (out / name).read_bytes() == (tmp_path / "whole" / name).read_bytes()
    assert len(read(out / "paths.jsonl")) == total
    # ma is wrong on sample 1 only (2 + 2 distinct per question), mb on every sample
    assert len(read(out / "mistakes.jsonl")) == 10 * (1 + 3)
    assert "accuracy" in resumed.output and "\na " in resumed.output


@pytest.mark.slow
def test_real_run_with_embedded_model(tmp_path, shared_data, embedded_endpoint):
    """Five GSM8K training questions, two samples each, from the embedded SmolLM2."""
    endpoint = embedded_endpoint
    out = tmp_path / "run"
    spec = f"smol={endpoint.model}@{endpoint.base_urls[0]}"
    result = CliRunner().invoke(
        main,
        [
            "sample", "--data-file", str(shared_data / "gsm8k" / "train.jsonl"), "--limit", "5", "-k", "2",
            "--temperature", "0.7", "--seed", "1", "--max-tokens", "16", "--generator", spec, "--out", str(out), "--quiet",
            # the CPU server answers one request at a time: queue few, wait long, do not pile up retries
            "--concurrency", "2", "--timeout", "900", "--max-retries", "1",
        ],
    )
    mistakes = read(out / "mistakes.jsonl")
    assert result.exit_code == (0 if mistakes else 4), result.output  # 4: sampling found no mistake
    assert "smol" in result.output and "accuracy" in result.output

    paths = read(out / "paths.jsonl")
    assert len(paths) == 10
    known = {p.id: p for p in read_problems_file(shared_data / "gsm8k" / "train.jsonl")[:5]}
    assert {p["problem_id"] for p in paths} == set(known)
    for p in paths:
        assert p["kind"] != "failed", p.get("error")
        assert p["answer"] == known[p["problem_id"]].answer
        assert p["correct"] == is_correct(p["text"], p["answer"], "gsm8k")
        assert p["text"].strip() and p["completion_tokens"] > 0
    assert all(not m["correct"] and m["kind"] == "wrong" for m in mistakes)
    summary = json.loads((out / "sample_summary.json").read_text())
    assert summary["generators"]["smol"]["paths"] == 10
    assert summary["total"]["mistakes"] == len(mistakes)


def test_math_summary_per_level(tmp_path):
    math_problems = [
        Problem(make_id("math", "Compute 1/2 + 1/2."), "math", "Compute 1/2 + 1/2.", "1", "", level=1, subject="algebra"),
        Problem(make_id("math", "Simplify 2/4."), "math", "Simplify 2/4.", "\\frac{1}{2}", "", level=3, subject="algebra"),
    ]

    def boxed(body, attempt):
        text = body["messages"][-1]["content"]
        k = body["seed"] - SEED
        if "1/2 + 1/2" in text:
            return "So the sum is $\\boxed{1}$." if k < 2 else "So the sum is $\\boxed{2}$."
        return "So it is $\\boxed{0.5}$." if k == 0 else "So it is $\\boxed{\\frac{2}{3}}$."  # 0.5 = 1/2

    with ScriptedServer(boxed) as server:
        client = LLMClient(cache_dir=False, concurrency=4, max_retries=0, progress=False)
        settings = SampleSettings(samples=3, seed=SEED)

        async def run():
            async with client:
                return await sample_paths(math_problems, [server.endpoint(name="a")], client, tmp_path, settings)

        summary = asyncio.run(run())
    levels = summary.generators["a"]["by_level"]
    assert levels == {
        "1": {"paths": 3, "correct": 2, "accuracy": round(2 / 3, 4), "mistakes": 1},
        "3": {"paths": 3, "correct": 1, "accuracy": round(1 / 3, 4), "mistakes": 1},  # the two 2/3 paths are one mistake
    }
    paths = read(tmp_path / "paths.jsonl")
    assert {p["level"] for p in paths} == {1, 3} and {p["subject"] for p in paths} == {"algebra"}
    assert all(p["dataset"] == "math" for p in paths)
    assert "level" in summary.table()


def test_prompt_accepts_a_template_file_and_names_the_placeholders_it_needs(tmp_path):
    """`--prompt` takes a user's own template; a template for another command is refused up front."""
    from lema_plugin.cli import main
    from lema_testing.scripted_server import prompt_text

    data = tmp_path / "p.jsonl"
    data.write_text(json.dumps({"question": "What is 2 + 3?", "answer": "#### 5"}) + "\n")
    own = tmp_path / "mine.txt"
    own.write_text("Think, then end with 'The answer is N.'\n\n{question}\n")
    seen = []

    def reply(body, attempt):
        seen.append(prompt_text(body))
        return "2 + 3 = 6. The answer is 6."  # a mistake, so the run has something to keep

    with ScriptedServer(reply) as server:
        args = ["sample", "--data-file", str(data), "--generator", f"g=m@{server.base_url}", "-k", "1", "-q"]
        result = CliRunner().invoke(main, [*args, "--prompt", str(own), "--out", str(tmp_path / "own")])
        assert result.exit_code == 0, result.output
        assert "Think, then end with 'The answer is N.'\n\nWhat is 2 + 3?" in seen
        asked = len(seen)

        for prompt, message in [("correct_gsm8k", "prompt 'correct_gsm8k' needs {steps}"),
                                ("no-such", "no prompt template 'no-such': give a template file of your own with {question}")]:
            result = CliRunner().invoke(main, [*args, "--prompt", prompt, "--out", str(tmp_path / prompt)])
            assert result.exit_code == 2 and message in result.output
            assert "Error: steps" not in result.output
        assert len(seen) == asked  # nothing was asked for the refused templates

"""`lema cot`: gold rationale rewrites on real data, rejection sampling against the scripted server."""
from __future__ import annotations

import asyncio
import json
import random

import pytest
from click.testing import CliRunner

from lema_plugin.cli import main
from lema_plugin.cot import (
    finish_rationale,
    gold_cot,
    gold_rationale,
    gsm8k_gold_rationale,
    CotSettings,
    math_gold_rationale,
    sample_cot,
    strong_model_spec,
)
from lema_plugin.grading import answers_match, extract_strict
from lema_plugin.llm import LLMClient
from lema_testing.scripted_server import Reply, ScriptedServer, prompt_text
from lema_plugin.problems import read_problems_file


def model_cot(problems, endpoint, out, client, **settings):
    """The stage run once to the end; its records as written to cot.jsonl, and its summary."""

    async def run():
        async with client:
            return await sample_cot(problems, [endpoint], client, out, CotSettings(**settings))

    summary = asyncio.run(run())
    return [json.loads(line) for line in (out / "cot.jsonl").read_text().splitlines()], summary


@pytest.fixture(scope="module")
def gsm8k_train(shared_data):
    return read_problems_file(shared_data / "gsm8k" / "train.jsonl", "gsm8k")


@pytest.fixture(scope="module")
def math_test(shared_data):
    return read_problems_file(shared_data / "math" / "test_sample1000.jsonl", "math")


# -- gold rationales ---------------------------------------------------------------------------


def test_gsm8k_gold_rewrite_of_first_training_problems(gsm8k_train):
    assert gold_rationale(gsm8k_train[0]) == (
        "Natalia sold 48/2 = 24 clips in May.\n"
        "Natalia sold 48+24 = 72 clips altogether in April and May.\n"
        "The answer is 72."
    )
    # an annotation right after a dollar sign: the amount stays, the annotation goes
    assert gold_rationale(gsm8k_train[1]) == (
        "Weng earns 12/60 = $0.2 per minute.\n"
        "Working 50 minutes, she earned 0.2 x 50 = $10.\n"
        "The answer is 10."
    )


def test_gsm8k_gold_answer_with_thousands_comma(gsm8k_train):
    problem = gsm8k_train[345]  # its rationale ends "#### 1,080"
    assert problem.solution.endswith("#### 1,080")
    rationale = gold_rationale(problem)
    assert rationale.endswith("$36 * 30 = $1080.\nThe answer is 1080.")


def test_gsm8k_gold_rewrite_over_the_whole_training_set(gsm8k_train):
    for problem in gsm8k_train:
        rationale = gold_rationale(problem)
        assert "<<" not in rationale and ">>" not in rationale and "####" not in rationale, problem.id
        assert rationale.endswith(f"\nThe answer is {problem.answer}."), problem.id
        assert rationale.count("The answer is") == 1, problem.id
    for problem in random.Random(0).sample(gsm8k_train, 200):  # the one grader reads them back
        assert answers_match(extract_strict(gold_rationale(problem), "gsm8k"), problem.answer, "gsm8k"), problem.id


def test_gsm8k_rewrite_without_final_line_needs_the_answer():
    assert gsm8k_gold_rationale("2+2 = <<2+2=4>>4 apples.", "4") == "2+2 = 4 apples.\nThe answer is 4."
    with pytest.raises(ValueError):
        gsm8k_gold_rationale("2+2 = <<2+2=4>>4 apples.")


def test_math_gold_keeps_the_boxed_answer(math_test):
    first = math_test[0]
    rationale = gold_rationale(first)
    assert rationale.startswith(first.solution.rstrip())
    assert rationale.endswith("we can easily calculate $100^3=\\boxed{1000000}$.\nThe answer is 1000000.")
    for problem in math_test:
        rationale = gold_rationale(problem)
        assert answers_match(extract_strict(rationale, "math"), problem.answer, "math"), problem.id
        assert rationale.endswith(f"\nThe answer is {problem.answer}."), problem.id
    for problem in random.Random(0).sample(math_test, 100):
        assert answers_match(extract_strict(gold_rationale(problem), "math"), problem.answer, "math"), problem.id


def test_gold_cot_records(gsm8k_train, math_test):
    records = gold_cot(gsm8k_train[:3] + math_test[:2])
    assert [r["dataset"] for r in records] == ["gsm8k"] * 3 + ["math"] * 2
    assert all(r["source"] == "gold" for r in records)
    assert records[0]["problem_id"] == gsm8k_train[0].id and records[0]["answer"] == "72"
    assert records[3]["level"] == math_test[0].level and records[3]["subject"] == math_test[0].subject
    assert len({r["id"] for r in records}) == 5
    assert gold_cot(gsm8k_train[:3]) == records[:3]  # ids are stable across runs


def test_math_rewrite_plain():
    assert math_gold_rationale("So $x=\\boxed{3}$.\n", "3") == "So $x=\\boxed{3}$.\nThe answer is 3."


def test_gold_cot_of_evolved_problems_states_the_answer_once():
    """`lema evolve` writes problems whose solution already ends "The answer is X."."""
    from lema_plugin.problems import Problem

    evolved = [
        Problem("a", "gsm8k", "How many?", "90", "30 * 3 = 90.\nThe answer is 90.", extra={"seed_id": "s"}),
        Problem("b", "math", "Find $x$.", "7", "So $x = \\boxed{7}$.\nThe answer is 7.", level=2),
    ]
    assert [r["rationale"] for r in gold_cot(evolved)] == [
        "30 * 3 = 90.\nThe answer is 90.",
        "So $x = \\boxed{7}$.\nThe answer is 7.",
    ]


@pytest.mark.parametrize(
    "text, prediction, expected",
    [
        ("2 + 2 = 4.\nThe answer is 4.", "4", "2 + 2 = 4.\nThe answer is 4."),
        ("2 + 2 = 4.\nThe answer is 4\n\nI hope this helps!", "4", "2 + 2 = 4.\nThe answer is 4."),
        ("2 + 2 = 4. The answer is 4. Let me know!", "4", "2 + 2 = 4. The answer is 4."),
        ("So $x = \\boxed{4}$.", "4", "So $x = \\boxed{4}$.\nThe answer is 4."),
    ],
)
def test_finish_rationale(text, prediction, expected):
    assert finish_rationale(text, prediction) == expected


# -- rejection sampling ------------------------------------------------------------------------


def _scripted(replies: dict[str, list[str | Reply]]):
    """Answer the k-th request for a question with replies[question-key][k]."""
    seen: dict[str, int] = {}

    def responder(body, attempt):
        text = prompt_text(body)
        for key, script in replies.items():
            if key in text:
                k = seen.get(key, 0)
                seen[key] = k + 1
                return script[k % len(script)]
        raise AssertionError(f"unscripted prompt: {text[:80]}")

    return responder


def test_model_cot_keeps_correct_distinct_capped(gsm8k_train, tmp_path):
    natalia, weng, betty = gsm8k_train[:3]
    replies = {
        "Natalia": [  # 3 correct of which 2 are the same text up to spacing and case; cap 2 -> 2 kept
            "48/2 = 24 in May. 48 + 24 = 72.\nThe answer is 72.",
            "48/2 = 24 in may.  48 + 24 = 72.\nthe answer is 72.",
            "She sold 24 in May, so 72 in all.\nThe answer is 72.",
            "48 + 48 = 96.\nThe answer is 96.",
        ],
        "Weng": [  # 3 distinct correct; the cap keeps the first 2
            "12/60 = 0.2 a minute; 0.2 * 50 = 10.\nThe answer is 10.",
            "50 minutes is 5/6 of an hour: 12 * 5/6 = 10.\nThe answer is $10.",
            "She earns $10.\nThe answer is 10. Hope that helps.",
            Reply("12 * 50 = 600.\nThe answer is", finish_reason="length"),
        ],
        "Betty": ["I do not know.", "The answer is 10.", "The answer is 20.", "The answer is 10."],
    }
    with ScriptedServer(_scripted(replies)) as server:
        endpoint = server.endpoint(model="strong", name="strong")
        client = LLMClient(cache_dir=tmp_path / "cache", progress=False)
        records, summary = model_cot([natalia, weng, betty], endpoint, tmp_path / "out", client, samples=4, keep=2)
        assert server.request_count == 12

    assert summary.samples == 12 and summary.correct == 6
    assert (summary.kept, summary.duplicates, summary.capped, summary.questions_covered) == (4, 1, 1, 2)
    by_problem = {}
    for record in records:
        by_problem.setdefault(record["problem_id"], []).append(record)
        assert record["rationale"].rstrip().endswith(".") and "The answer is" in record["rationale"]
        assert record["source"] == "strong"
    assert len(by_problem[natalia.id]) == 2 and len(by_problem[weng.id]) == 2 and betty.id not in by_problem
    assert all("helps" not in r["rationale"] for r in records)
    lines = (tmp_path / "out" / "cot.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in lines] == records
    samples = [json.loads(line) for line in (tmp_path / "out" / "cot_samples.jsonl").read_text().splitlines()]
    assert len(samples) == 12 and sum(s["correct"] for s in samples) == 6


def test_model_cot_resumes_without_asking_again(gsm8k_train, tmp_path):
    problems = gsm8k_train[:2]
    fail_natalia = {"on": True}

    def responder(body, attempt):
        text = prompt_text(body)
        if "Natalia" in text:
            if fail_natalia["on"]:
                return Reply(status=500)
            return "48 + 24 = 72.\nThe answer is 72."
        return "0.2 * 50 = 10.\nThe answer is 10."

    out = tmp_path / "out"
    with ScriptedServer(responder) as server:
        endpoint = server.endpoint(model="strong")
        client = LLMClient(cache_dir=False, max_retries=0, progress=False)
        records, summary = model_cot(problems, endpoint, out, client, samples=2, keep=2)
        assert summary.failed == 2 and summary.samples == 2 and len(records) == 1
        fail_natalia["on"] = False
        server.reset_counts()
        client = LLMClient(cache_dir=False, max_retries=0, progress=False)
        records, summary = model_cot(problems, endpoint, out, client, samples=2, keep=2)
        assert server.request_count == 2  # only the two failed Natalia samples are asked again
    assert summary.requested == 2 and summary.samples == 4 and summary.failed == 0
    assert {r["problem_id"] for r in records} == {p.id for p in problems}


def test_cli_cot_gold(shared_data, tmp_path):
    result = CliRunner().invoke(main, [
        "cot", "--source", "gold", "--dataset", "gsm8k",
        "--data-file", str(shared_data / "gsm8k" / "train.jsonl"), "--limit", "5", "--out", str(tmp_path),
    ])
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in (tmp_path / "cot.jsonl").read_text().splitlines()]
    assert len(records) == 5 and records[0]["rationale"].endswith("The answer is 72.")
    assert "gold rationales written: 5" in result.output


def test_cli_cot_model(gsm8k_train, tmp_path):
    data = tmp_path / "problems.jsonl"
    data.write_text("".join(json.dumps(p.to_dict()) + "\n" for p in gsm8k_train[:2]))

    def responder(body, attempt):
        return "The answer is 72." if "Natalia" in prompt_text(body) else "The answer is 11."

    with ScriptedServer(responder) as server:
        result = CliRunner().invoke(main, [
            "cot", "--source", "model", "--data-file", str(data), "--model", f"strong=m@{server.base_url}",
            "--samples", "2", "--out", str(tmp_path / "out"), "--quiet",
        ])
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in (tmp_path / "out" / "cot.jsonl").read_text().splitlines()]
    assert [r["problem_id"] for r in records] == [gsm8k_train[0].id]  # identical samples: one kept
    assert "correct: 2 (50.0%)" in result.output


def test_cli_cot_bad_data_file(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "How many?", "answer": "Some reasoning\\nand no final line"}\n')
    result = CliRunner().invoke(main, ["cot", "--data-file", str(bad), "--out", str(tmp_path / "o")])
    assert result.exit_code == 1
    assert f"{bad}:1: field 'answer'" in result.output


def test_strong_model_spec_order():
    assert strong_model_spec("a=m@http://h/v1", {"LEMA_STRONG_MODEL": "b"}) == "a=m@http://h/v1"
    assert strong_model_spec(None, {"LEMA_STRONG_MODEL": "b", "LEMA_CORRECTOR": "c"}) == "b"
    assert strong_model_spec(None, {"LEMA_CORRECTOR": "c"}) == "c"  # the corrector's default chain
    assert strong_model_spec(None, {"OPENAI_API_KEY": "k"}).startswith("gpt-4")
    assert strong_model_spec(None, {}) == "embedded"


def test_math_answer_line_with_the_box_is_kept():
    assert math_gold_rationale("Add them.\nThe answer is $\\boxed{5}$.", "5") == (
        "Add them.\nThe answer is $\\boxed{5}$.\nThe answer is 5.")

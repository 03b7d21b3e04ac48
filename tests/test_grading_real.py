"""The grader against real GSM8K and MATH gold solutions (../shared/data)."""
from __future__ import annotations

import json

import pytest

from lema_plugin.grading import extract_answer, gold_answer, is_correct, last_boxed


def _rows(path):
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


@pytest.fixture(scope="module")
def gsm8k_test(shared_data):
    return _rows(shared_data / "gsm8k" / "test.jsonl")


@pytest.fixture(scope="module")
def math_sample(shared_data):
    return _rows(shared_data / "math" / "test_sample1000.jsonl")


def test_every_gsm8k_rationale_matches_its_own_answer(gsm8k_test):
    assert len(gsm8k_test) == 1319
    wrong = [i for i, row in enumerate(gsm8k_test) if not is_correct(row["answer"], row["answer"], "gsm8k")]
    assert wrong == []


def test_no_gsm8k_rationale_matches_another_problems_answer(gsm8k_test):
    golds = [gold_answer(row["answer"], "gsm8k") for row in gsm8k_test]
    checked, wrong = 0, []
    for i, row in enumerate(gsm8k_test):
        j = next(k % len(golds) for k in range(i + 1, i + 50) if golds[k % len(golds)] != golds[i])
        checked += 1
        if is_correct(row["answer"], golds[j], "gsm8k"):
            wrong.append((i, golds[i], golds[j]))
    assert checked == len(gsm8k_test)
    assert wrong == []


def test_every_math_gold_can_be_extracted(math_sample):
    missing = [i for i, row in enumerate(math_sample) if last_boxed(row["solution"]) is None]
    assert missing == [], f"gold answers that cannot be extracted: {missing}"


def test_every_math_solution_matches_its_own_answer(math_sample):
    assert len(math_sample) == 1000
    wrong = [
        (i, extract_answer(row["solution"], "math"), last_boxed(row["solution"]))
        for i, row in enumerate(math_sample)
        if not is_correct(row["solution"], row["solution"], "math")
    ]
    assert wrong == []


def test_no_math_solution_matches_another_problems_answer(math_sample):
    golds = [last_boxed(row["solution"]) for row in math_sample]
    wrong = []
    for i, row in enumerate(math_sample):
        j = next(k % len(golds) for k in range(i + 1, i + 50) if golds[k % len(golds)] != golds[i])
        if is_correct(row["solution"], golds[j], "math"):
            wrong.append((i, golds[i], golds[j]))
    assert wrong == []

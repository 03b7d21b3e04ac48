"""`lema evolve`: seeds, new questions, majority answers, de-duplication and contamination."""
from __future__ import annotations

import asyncio
import json

import pytest
from click.testing import CliRunner

from lema_plugin.cli import main
from lema_plugin.evolve import (
    EvolveSettings,
    NearDuplicateIndex,
    Seed,
    EvolveInputs,
    evolve_questions,
    generation_request,
    level_success,
    load_seeds,
    majority,
    parse_new_question,
    questions_per_seed,
    load_test_questions,
)
from lema_plugin.grading import answers_match
from lema_plugin.llm import Endpoint, LLMClient
from lema_testing.scripted_server import Reply, ScriptedServer, prompt_text
from lema_plugin.problems import load_problems, read_problems_file


def evolve(seeds, endpoint, out, settings, *, client, contamination_questions=None):
    """The stage run once to the end: the problems it wrote, and its summary."""

    async def run():
        async with client:
            inputs = EvolveInputs(seeds, contamination_questions=contamination_questions)
            return await evolve_questions(inputs, [endpoint], client, out, settings)

    summary = asyncio.run(run())
    return read_problems_file(out / "problems.jsonl"), summary

# What the scripted strong model writes when asked for new questions, in the order it is asked.
TOM = "Tom picked 30 apples on Monday and twice as many on Tuesday. How many apples did Tom pick in total?"
MARIA = "Maria baked 24 cookies and gave a third of them to her neighbor. How many cookies does she have left?"
PLUMBER = ("A plumber charges $40 per hour plus a $25 visit fee. A repair takes 1 hour and 15 minutes. "
           "How much does the repair cost?")
SAM = "Sam reads 15 pages a day for a week. How many pages does he read in that week?"

# Answers per new question (matched by a word of the question): 5 agree, 3 agree, 2-2-1, 4 agree.
ANSWERS = {
    "Tom picked": ["30 * 2 = 60; 30 + 60 = 90.\nThe answer is 90."] * 5,
    "Maria baked": ["24 / 3 = 8; 24 - 8 = 16.\nThe answer is 16.", "The answer is 16.", "The answer is 16.0.",
                    "The answer is 15.", "I am not sure."],
    "plumber": ["The answer is 65.", "The answer is 65.", "The answer is 70.", "The answer is 70.", "The answer is 80."],
    "Sam reads": ["15 * 7 = 105.\nThe answer is 105."] * 4 + ["The answer is 100."],
}


@pytest.fixture(scope="module")
def gsm8k_train(shared_data):
    return read_problems_file(shared_data / "gsm8k" / "train.jsonl", "gsm8k")


@pytest.fixture(scope="module")
def janet(shared_data):
    """A real GSM8K *test* question, lightly edited: what contamination looks like."""
    first = json.loads((shared_data / "gsm8k" / "test.jsonl").read_text().splitlines()[0])
    assert first["question"].startswith("Janet\u2019s ducks lay 16 eggs")
    return first["question"].replace("Janet", "Maria").replace("16 eggs", "18 eggs")


def correction(problem, **extra) -> dict:
    """A correction record as `lema correct` writes it (only the fields evolve reads matter)."""
    return {"id": f"c-{problem.id}-{len(extra)}", "problem_id": problem.id, "dataset": problem.dataset,
            "question": problem.question, "answer": problem.answer, "correct": True, **extra}


def generation_script(natalia: str, weng: str, janet: str) -> dict[str, list]:
    """Replies to the generation prompts of the two seeds (4 per seed, a 5th with --per-seed 5)."""
    return {
        natalia: [
            f"New problem: {TOM}",
            f"**New question:** {MARIA}\n\nAnswer: 16",  # label and a leaked answer are stripped
            f"New problem: {janet}",  # contaminated: a GSM8K test question with a new name
            "New problem: TOM picked 30 apples on Monday, and twice as many on Tuesday! "
            "How many apples did Tom pick in total?",  # duplicate of the first (normalized)
            Reply(f"New problem: {PLUMBER[:50]}", finish_reason="length"),  # cut off mid-question
        ],
        weng: [
            # near-duplicate of the seed itself: only one number changed
            "New problem: Weng earns $12 an hour for babysitting. Yesterday, she just did 40 minutes "
            "of babysitting. How much did she earn?",
            "...",  # unparseable
            PLUMBER,
            f"Here is a new problem.\nNew problem: {SAM}",
            # near-duplicate of the other seed
            "New problem: Natalia sold clips to 50 of her friends in April, and then she sold half as many "
            "clips in May. How many clips did Natalia sell altogether in April and May?",
        ],
    }


def scripted_model(generations: dict[str, list[str]], answers: dict[str, list], fail: set[str] = frozenset()):
    """A responder: generation prompts get generations[seed] in turn, solve prompts answers[key] in turn."""
    counters: dict[str, int] = {}

    def next_of(key, script):
        k = counters.get(key, 0)
        counters[key] = k + 1
        return script[k % len(script)]

    def responder(body, attempt):
        text = prompt_text(body)
        if "New problem:" in text:
            for seed, script in generations.items():
                if seed in text:
                    return next_of(seed, script)
        else:
            for key, script in answers.items():
                if key in text:
                    return Reply(status=500) if key in fail else next_of(key, script)
        raise AssertionError(f"unscripted prompt: {text[:100]}")

    return responder


# -- pieces ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "reply, expected",
    [
        (f"New problem: {SAM}", SAM),
        (f"**New Problem:** {SAM}", SAM),
        (f"Sure! Here is a harder one.\n\n**New question:**\n{SAM}\n\n**Answer:** 105", SAM),
        (f"Question: {SAM}\nSolution: 15 * 7 = 105.", SAM),
        (f'"{SAM}"', SAM),
        (SAM, SAM),
        ("New problem: Evaluate $\\log_2 1024$.", "Evaluate $\\log_2 1024$."),  # short is fine
        ("", None),
        ("...", None),
        ("OK.", None),
        ("New problem:", None),
    ],
)
def test_parse_new_question(reply, expected):
    assert parse_new_question(reply) == expected


def test_majority_groups_equivalent_answers():
    assert majority(["16", "16.0", "15", None, "16"], "gsm8k", answers_match) == ("16", 3, True)
    assert majority(["65", "65", "70", "70", "80"], "gsm8k", answers_match)[1:] == (2, False)
    assert majority([None, None], "gsm8k", answers_match) == (None, 0, False)
    assert majority(["\\frac{1}{2}", "0.5", "1/2", "2"], "math", answers_match)[1:] == (3, True)


def test_near_duplicate_index():
    index = NearDuplicateIndex(n=6, max_overlap=0.5)
    index.add(TOM, "tom")
    index.add(SAM, "sam")
    assert index.find(TOM.upper().replace(".", "!")) == "tom"  # same normalized text
    assert index.find(TOM.replace("30", "40")) == "tom"  # n-gram overlap
    assert index.find("In another story: " + SAM + " Explain briefly.") == "sam"  # pasted inside a longer text
    assert index.find(MARIA) is None
    assert index.find(PLUMBER) is None


def test_load_seeds_and_level_weights(tmp_path):
    records = [
        {"problem_id": "a", "dataset": "math500", "question": "qa", "answer": "1", "level": 5},
        {"problem_id": "a", "dataset": "math500", "question": "qa", "answer": "1", "level": 5},
        {"problem_id": "b", "dataset": "math", "question": "qb", "answer": "2", "level": 1, "generation": 1},
        {"problem_id": "c", "dataset": "math", "question": "qc", "answer": "3", "level": 1, "correct": False},
    ]
    path = tmp_path / "corrections.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    seeds = load_seeds(path)
    assert [(s.problem_id, s.dataset, s.corrections, s.generation) for s in seeds] == [
        ("a", "math", 2, 0), ("b", "math", 1, 1)]

    rejected = [{"level": 5}] * 6 + [{"level": 1}]  # level 5: 2 of 8 succeed; level 1: 1 of 2
    success = level_success(records, rejected)
    assert success == {5: 0.25, 1: 0.5}
    assert questions_per_seed(seeds, 4) == {"a": 4, "b": 4}
    # failure rates 0.75 and 0.5, mean 0.625: level 5 gets 4 * 1.2, level 1 gets 4 * 0.8
    assert questions_per_seed(seeds, 4, success) == {"a": 5, "b": 3}


def test_generation_prompts_per_dataset_and_style():
    endpoint = Endpoint(model="m", base_urls=("http://127.0.0.1:9/v1",))
    seed = Seed("s", "math", "Find $x$ if $2x+3=7$.", "2")
    request = generation_request(seed, "harder", endpoint, EvolveSettings(), 0)
    (role, text), = request.messages
    assert role == "user" and "Find $x$ if $2x+3=7$." in text
    assert "competition mathematics" in text and "\\boxed{}" in text and "harder variant" in text
    assert text.rstrip().endswith("New problem:")
    gsm8k = generation_request(Seed("t", "gsm8k", "How many?", "1"), "similar", endpoint, EvolveSettings(), 3)
    assert "grade-school" in gsm8k.messages[0][1] and "same skill" in gsm8k.messages[0][1]
    assert gsm8k.sample_index == 3 and gsm8k.temperature == EvolveSettings().generate_temperature
    completion = generation_request(seed, "similar", Endpoint("m", ("http://127.0.0.1:9/v1",), mode="completion"), EvolveSettings(), 0)
    assert completion.prompt.endswith("New problem:\n") and "\nAnswer:" in completion.stop


def test_bad_corrections_file_names_line_and_field(tmp_path):
    path = tmp_path / "corrections.jsonl"
    path.write_text('{"problem_id": "a", "dataset": "gsm8k", "question": "q", "answer": "1"}\n'
                    '{"problem_id": "b", "dataset": "gsm8k", "answer": "1"}\n')
    result = CliRunner().invoke(main, ["evolve", "--corrections", str(path), "--out", str(tmp_path / "o"),
                                       "--no-contamination-check"])
    assert result.exit_code == 1
    assert f"{path}:2: field 'question'" in result.output


def test_contamination_index_over_the_real_test_splits(shared_data, monkeypatch):
    monkeypatch.setenv("LEMA_DATA_DIR", str(shared_data))
    pairs = load_test_questions(["gsm8k", "math"])
    assert len(pairs) == 1319 + 1000
    assert sum(key.startswith("gsm8k-test:") for key, _ in pairs) == 1319
    index = NearDuplicateIndex()
    for key, question in pairs:
        index.add(question, key)
    key, digits = pairs[1319 + 2]  # a real MATH test problem: the digits 2, 3, 4, 7 and 8 ...
    assert "divisible by 11" in digits
    assert index.find(digits.replace("11", "7").replace("2, 3, 4, 7 and 8", "1, 3, 5, 7 and 9")) == key
    assert index.find("The digits 1, 2 and 3 are arranged at random. What is the chance of an even number?") is None


# -- the stage ---------------------------------------------------------------------------------


def test_evolve_counts_against_scripted_model(gsm8k_train, janet, shared_data, monkeypatch, tmp_path):
    monkeypatch.setenv("LEMA_DATA_DIR", str(shared_data))
    natalia, weng = gsm8k_train[0], gsm8k_train[1]
    seeds = load_seeds([correction(natalia), correction(natalia, attempt=1), correction(weng)])
    script = scripted_model(generation_script(natalia.question, weng.question, janet), ANSWERS)
    out = tmp_path / "evolve"
    with ScriptedServer(script) as server:
        endpoint = server.endpoint(model="strong", name="strong")
        client = LLMClient(cache_dir=out / ".cache", progress=False)
        problems, summary = evolve(seeds, endpoint, out, EvolveSettings(per_seed=5, samples=5, min_agreement=0.6),
                                   contamination_questions=load_test_questions(["gsm8k"]), client=client)
        assert not server.errors
        assert server.request_count == 10 + 4 * 5  # answers only for the 4 questions that passed the filters

    assert (summary.generated, summary.unparseable, summary.truncated) == (10, 1, 1)
    assert (summary.duplicates, summary.contaminated) == (3, 1)
    assert (summary.answered, summary.no_majority, summary.kept) == (4, 1, 3)
    assert dict(summary.agreement) == {5: 1, 3: 1, 4: 1}

    by_question = {p.question: p for p in problems}
    assert set(by_question) == {TOM, MARIA, SAM}
    assert (by_question[TOM].answer, by_question[MARIA].answer, by_question[SAM].answer) == ("90", "16", "105")
    assert by_question[MARIA].extra["agreement"] == 0.6 and by_question[TOM].extra["agreement"] == 1.0
    assert by_question[SAM].extra["seed_id"] == weng.id and by_question[TOM].extra["seed_id"] == natalia.id
    assert all(p.extra["generation"] == 1 and p.extra["evolved_by"] == "strong" for p in problems)
    assert by_question[SAM].solution.endswith("The answer is 105.")

    dropped = [json.loads(line) for line in (out / "evolve_dropped.jsonl").read_text().splitlines()]
    reasons = sorted(d["reason"] for d in dropped)
    assert reasons == ["contaminated", "duplicate", "duplicate", "duplicate", "no_majority", "truncated", "unparseable"]
    contaminated = next(d for d in dropped if d["reason"] == "contaminated")
    gsm8k_test = load_problems("gsm8k", split="test")
    assert contaminated["detail"] == f"gsm8k-test:{gsm8k_test[0].id}"
    seed_duplicates = sorted(d["detail"] for d in dropped if d["reason"] == "duplicate" and d["detail"].startswith("seed:"))
    assert seed_duplicates == sorted([f"seed:{weng.id}", f"seed:{natalia.id}"])

    written = json.loads((out / "evolve_summary.json").read_text())
    assert (written["kept"], written["contaminated"], written["duplicates"]) == (3, 1, 3)

    # the output loads back as problems, with the provenance kept
    loaded = load_problems("gsm8k", data_file=out / "problems.jsonl")
    assert {p.question for p in loaded} == {TOM, MARIA, SAM}
    assert all(p.dataset == "gsm8k" and "seed_id" in p.extra for p in loaded)


def test_evolve_resumes_without_asking_again(gsm8k_train, janet, tmp_path):
    natalia, weng = gsm8k_train[0], gsm8k_train[1]
    seeds = load_seeds([correction(natalia), correction(weng)])
    generations = generation_script(natalia.question, weng.question, janet)
    out = tmp_path / "evolve"
    config = EvolveSettings(per_seed=4)
    with ScriptedServer(scripted_model(generations, ANSWERS, fail={"Sam reads"})) as server:
        client = LLMClient(cache_dir=False, max_retries=0, progress=False)
        problems, summary = evolve(seeds, server.endpoint(model="strong"), out, config,
                                   contamination_questions=[("t", janet)], client=client)
    assert (summary.failed, summary.unanswered, summary.kept) == (5, 1, 2)

    with ScriptedServer(scripted_model(generations, ANSWERS)) as server:
        client = LLMClient(cache_dir=False, max_retries=0, progress=False)
        problems, summary = evolve(seeds, server.endpoint(model="strong"), out, config,
                                   contamination_questions=[("t", janet)], client=client)
        assert server.request_count == 5  # only Sam's five answers; the stores hold the rest
    assert (summary.asked, summary.unanswered, summary.kept) == (0, 0, 3)
    assert {p.question for p in problems} == {TOM, MARIA, SAM}


def test_cli_evolve_then_sample(gsm8k_train, janet, shared_data, monkeypatch, tmp_path):
    """`lema evolve` end to end, and its problems.jsonl straight into `lema sample`."""
    monkeypatch.setenv("LEMA_DATA_DIR", str(shared_data))
    natalia, weng = gsm8k_train[0], gsm8k_train[1]
    corrections = tmp_path / "corrections.jsonl"
    corrections.write_text("".join(json.dumps(correction(p)) + "\n" for p in (natalia, weng)))
    script = scripted_model(generation_script(natalia.question, weng.question, janet), ANSWERS)
    out = tmp_path / "evolve"
    with ScriptedServer(script) as server:
        result = CliRunner().invoke(main, [
            "evolve", "--corrections", str(corrections), "--model", f"strong=m@{server.base_url}",
            "--per-seed", "4", "--out", str(out), "--quiet",
        ])
        assert result.exit_code == 0, result.output
        assert "contamination check against 1319 test questions" in result.output
        assert "contaminated (test-set near-duplicates) 1" in result.output
        assert "kept: 3" in result.output

    def generator(body, attempt):  # a weak model: right on Tom's question only
        return "The answer is 90." if "Tom picked" in prompt_text(body) else "The answer is 1."

    with ScriptedServer(generator) as server:
        sampled = CliRunner().invoke(main, [
            "sample", "--data-file", str(out / "problems.jsonl"), "--dataset", "gsm8k",
            "--generator", f"gen=m@{server.base_url}", "--samples-per-question", "1",
            "--out", str(tmp_path / "sample"), "--quiet",
        ])
        assert sampled.exit_code == 0, sampled.output
    paths = [json.loads(line) for line in (tmp_path / "sample" / "paths.jsonl").read_text().splitlines()]
    mistakes = (tmp_path / "sample" / "mistakes.jsonl").read_text().splitlines()
    assert len(paths) == 3 and sum(p["correct"] for p in paths) == 1  # Tom's 90 is right; the others wrong
    assert len(mistakes) == 2


DISTINCT_MATH = [
    "Find the remainder when $7^{100}$ is divided by $5$.",
    "How many positive divisors does $360$ have?",
    "Solve for $y$: $3y - 7 = 2y + 4$.",
    "What is the sum of the interior angles of a convex octagon, in degrees?",
    "Compute $\\binom{9}{4}$.",
    "If $f(x) = x^2 + 1$, what is $f(f(2))$?",
    "What is the least common multiple of $18$ and $24$?",
    "Evaluate $\\log_2 1024$.",
]


def test_cli_evolve_weights_seeds_toward_weak_levels(shared_data, monkeypatch, tmp_path):
    monkeypatch.setenv("LEMA_DATA_DIR", str(shared_data))
    folder = tmp_path / "correct"
    folder.mkdir()
    hard = {"problem_id": "hard", "dataset": "math", "question": "Find all real $x$ with $x^4 = 16$.",
            "answer": "\\pm 2", "level": 5, "subject": "algebra"}
    easy = {"problem_id": "easy", "dataset": "math", "question": "What is $2 + 3 \\cdot 4$?",
            "answer": "14", "level": 1, "subject": "prealgebra"}
    (folder / "corrections.jsonl").write_text(json.dumps(hard) + "\n" + json.dumps(easy) + "\n")
    (folder / "rejected.jsonl").write_text("".join(json.dumps({**r, "reason": "wrong_answer"}) + "\n"
                                                   for r in [hard] * 3 + [easy] * 0))
    pending = list(DISTINCT_MATH)

    def responder(body, attempt):
        text = prompt_text(body)
        if "New problem:" in text:
            return f"New problem: {pending.pop()}"
        return "So it is $\\boxed{7}$.\nThe answer is 7."

    out = tmp_path / "evolve"
    args = ["evolve", "--corrections", str(folder / "corrections.jsonl"), "--per-seed", "4", "--answers", "2",
            "--out", str(out), "--quiet"]
    with ScriptedServer(responder) as server:
        result = CliRunner().invoke(main, args + ["--weight-by-level", "--model", f"m@{server.base_url}"])
        assert result.exit_code == 0, result.output
        assert server.request_count == 8 + 8 * 2
    # level 5 succeeded 1 time in 4 (failure 0.75), level 1 always (failure floored at 0.1):
    # mean 0.425, so 4 * 0.75 / 0.425 -> 7 questions and 4 * 0.1 / 0.425 -> 1
    asked = [json.loads(line)["seed_id"] for line in (out / "evolve_questions.jsonl").read_text().splitlines()]
    assert sorted(asked) == ["easy"] + ["hard"] * 7
    problems = read_problems_file(out / "problems.jsonl")
    assert len(problems) == 8 and all(p.answer == "7" and p.dataset == "math" for p in problems)
    assert {p.level for p in problems if p.extra["seed_id"] == "hard"} == {5}
    assert "contamination check against 1000 test questions" in result.output


@pytest.mark.parametrize(
    "extra, status, message",
    [
        (["--styles", "easier"], 2, "--styles: Input should be 'similar' or 'harder'"),
        (["--weight-by-level"], 1, "weighting by level needs rejected.jsonl"),
    ],
)
def test_cli_evolve_rejects_bad_options_before_asking(extra, status, message, tmp_path):
    corrections = tmp_path / "corrections.jsonl"
    corrections.write_text(json.dumps({"problem_id": "a", "dataset": "gsm8k", "question": "q", "answer": "1"}) + "\n")
    with ScriptedServer(lambda body, attempt: "unused") as server:
        result = CliRunner().invoke(main, ["evolve", "--corrections", str(corrections), "--no-contamination-check",
                                           "--model", f"m@{server.base_url}", "--out", str(tmp_path / "o"), *extra])
        assert server.request_count == 0
    assert result.exit_code == status and message in result.output

"""The lm-eval tasks in lm_eval_tasks/lema, loaded and run by lm-eval itself.

Data is read from local copies (`--metadata '{"data_dir": ...}'`), never from the hub. The shared
data holds no MATH-500 copy, so a `math500/` folder pointing at the MATH test sample stands in.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from lema_plugin.cli import main
from lema_plugin.cli.grade import grade
from lema_plugin.prompts import render
from lema_plugin.records import RecordError
from lema_plugin.steps import render_steps

REPO = Path(__file__).resolve().parent.parent
TASKS = REPO / "lm_eval_tasks"
SUBJECTS = (
    "algebra", "counting_and_probability", "geometry", "intermediate_algebra",
    "number_theory", "prealgebra", "precalculus",
)
OFFLINE = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


@pytest.fixture(scope="module")
def data_dir(shared_data, tmp_path_factory) -> Path:
    """The shared data in the layout the tasks read, with the MATH sample as `math500`."""
    root = tmp_path_factory.mktemp("lema_data")
    (root / "gsm8k").symlink_to(shared_data / "gsm8k")
    (root / "math").symlink_to(shared_data / "math")
    (root / "math500").mkdir()
    (root / "math500" / "test.jsonl").symlink_to(shared_data / "math" / "test_sample1000.jsonl")
    return root


def _manager(**metadata):
    from lm_eval.tasks import TaskManager

    return TaskManager(include_path=str(TASKS), include_defaults=False, metadata=metadata or None)


def _tasks(names, **metadata) -> dict:
    """name -> task object, groups flattened to their subtasks."""
    from lm_eval.tasks import get_task_dict

    found = {}

    def walk(tree):
        for key, value in tree.items():
            if isinstance(value, dict):
                walk(value)
            else:
                found[key if isinstance(key, str) else key.group_name] = value

    walk(get_task_dict(names, _manager(**metadata)))
    return found


@pytest.fixture(scope="module")
def local_tasks(data_dir) -> dict:
    names = ["lema_gsm8k", "lema_gsm8k_8shot", "lema_math", "lema_math_4shot_algebra", "lema_math500"]
    return _tasks(names, data_dir=str(data_dir))


def test_task_manager_indexes_tasks_and_groups():
    manager = _manager()
    expected = {"lema_gsm8k", "lema_gsm8k_8shot", "lema_gsm8k_correction", "lema_math500", "lema_gsm8k_train", "lema_math_train"}
    expected |= {f"lema_math_{s}" for s in SUBJECTS} | {f"lema_math_4shot_{s}" for s in SUBJECTS}
    assert expected <= set(manager.all_subtasks)
    assert {"lema_math", "lema_math_4shot"} <= set(manager.all_groups)
    for group in ("lema_math", "lema_math_4shot"):
        config = manager._get_config(group)
        assert config["task"] == [f"{group}_{s}" for s in SUBJECTS]
        assert [m["metric"] for m in config["aggregate_metric_list"]] == ["official_match", "strict_match", "exact_match"]
        assert all(m["weight_by_size"] for m in config["aggregate_metric_list"])


def test_tasks_load_with_both_metrics_and_levels(local_tasks, data_dir):
    math_tasks = {name: task for name, task in local_tasks.items() if name.startswith("lema_math_") and "4shot" not in name}
    assert set(math_tasks) == {f"lema_math_{s}" for s in SUBJECTS}
    for task in local_tasks.values():
        # the paper-comparable score first, then the robust views
        assert [m["metric"] for m in task.config.metric_list] == ["official_match", "strict_match", "exact_match"]
        assert task.config.generation_kwargs["do_sample"] is False
        assert "Question:" in task.config.generation_kwargs["until"]
    # The subject tasks split the MATH file between them, each doc tagged with level and subject.
    lines = (data_dir / "math" / "test_sample1000.jsonl").read_text().splitlines()
    assert sum(len(task.test_docs()) for task in math_tasks.values()) == len(lines)
    for subject in SUBJECTS:
        docs = math_tasks[f"lema_math_{subject}"].test_docs()
        assert {doc["subject"] for doc in docs} == {subject}
        assert all(1 <= doc["level"] <= 5 for doc in docs)
    first = json.loads(lines[0])
    doc500 = local_tasks["lema_math500"].test_docs()[0]
    assert (doc500["question"], doc500["solution"]) == (first["problem"], first["solution"])


def test_no_exemplar_is_a_test_question(data_dir, shared_data):
    """--num_fewshot k on any task draws from training data only (the test split is never the pool)."""
    names = ["lema_gsm8k", "lema_gsm8k_8shot", "lema_math", "lema_math_4shot", "lema_math500"]
    tasks = _tasks(names, data_dir=str(data_dir))
    gsm8k_test = {json.loads(line)["question"] for line in (shared_data / "gsm8k" / "test.jsonl").open()}
    math_test = {json.loads(line)["problem"] for line in (shared_data / "math" / "test_sample1000.jsonl").open()}
    assert len(tasks) == 2 + 2 * len(SUBJECTS) + 1
    for name, task in tasks.items():
        test = gsm8k_test if "gsm8k" in name else math_test
        pool = [doc["question"] for doc in task.fewshot_docs()]
        assert pool and not set(pool) & test, name
        assert {doc["question"] for doc in task.test_docs()} <= test, name
        doc = task.test_docs()[0]
        shots = min(3, len(pool))
        context = task.fewshot_context(doc, shots)
        assert context.count("Please solve the following math problem") == shots + 1
        others = [q for q in test if q != doc["question"] and q in context]
        assert not others, (name, others[:1])
    # the zero-shot GSM8K task's pool is the training set itself
    train = [json.loads(line)["question"] for line in (shared_data / "gsm8k" / "train.jsonl").open()]
    assert [doc["question"] for doc in tasks["lema_gsm8k"].fewshot_docs()] == train


def test_train_split_tasks_sample_the_training_questions(data_dir, shared_data):
    task = _tasks(["lema_gsm8k_train"], data_dir=str(data_dir))["lema_gsm8k_train"]
    train = [json.loads(line)["question"] for line in (shared_data / "gsm8k" / "train.jsonl").open()]
    assert [doc["question"] for doc in task.eval_docs] == train
    assert task.config.generation_kwargs["do_sample"] is True and task.config.generation_kwargs["temperature"] > 0
    # MATH's training split is not stored here: the task config loads and names the hub's train split
    config = _manager()._get_config("lema_math_train")
    assert config["test_split"] == "train" and config["dataset_kwargs"] == {"dataset": "math", "split": "train"}
    assert config["generation_kwargs"]["do_sample"] is True
    with pytest.raises(RecordError, match="train"):  # local files without a MATH train split: named, not guessed
        _tasks(["lema_math_train"], data_dir=str(data_dir))


def test_zero_shot_prompt_is_the_lema_solve_prompt(local_tasks):
    task = local_tasks["lema_gsm8k"]
    doc = task.test_docs()[0]
    assert doc["answer"] == "18"  # from the "#### 18" line of the first GSM8K test problem
    assert task.fewshot_context(doc, 0) == render("solve", question=doc["question"])


def test_gsm8k_8shot_exemplars_are_clean_training_rationales(local_tasks, shared_data):
    task = local_tasks["lema_gsm8k_8shot"]
    doc = task.test_docs()[0]
    context = task.fewshot_context(doc, 8)
    blocks = context.split("\n\n")
    assert len(blocks) == 9 and blocks[-1] == render("solve", question=doc["question"])
    train = [json.loads(line) for line in (shared_data / "gsm8k" / "train.jsonl").open().readlines()[:8]]
    for block, record in zip(blocks, train):
        prompt = render("solve", question=record["question"])
        gold = record["answer"].rsplit("####", 1)[1].strip().replace(",", "")
        assert block.startswith(prompt)
        assert block.endswith(f"The answer is {gold}.")
        assert "<<" not in block and "####" not in block


def test_math_4shot_works_as_chat_turns(local_tasks):
    task = local_tasks["lema_math_4shot_algebra"]
    doc = task.test_docs()[0]

    def as_messages(messages, add_generation_prompt=True):
        return messages

    turns = task.fewshot_context(doc, 4, apply_chat_template=True, fewshot_as_multiturn=True, chat_template=as_messages)
    assert [m["role"] for m in turns] == ["user", "assistant"] * 4 + ["user"]
    assert turns[-1]["content"].strip() == render("solve", question=doc["question"]).strip()
    assert turns[1]["content"].rstrip().endswith("The answer is 0.")
    assert "\\boxed{0}" in turns[1]["content"]
    single = task.fewshot_context(doc, 4, apply_chat_template=True, fewshot_as_multiturn=False, chat_template=as_messages)
    assert [m["role"] for m in single] == ["user"]
    assert "The answer is 1000." in single[0]["content"]


# Canned completions: the LeMa format, boxed, chatty chat-model answers, a run-on into a next question.
GSM8K_GOLD = "18"
GSM8K_COMPLETIONS = [
    ("lema", "Janet has 16 - 3 - 4 = 9 eggs left.\nShe sells them for 9 * 2 = $18.\nThe answer is 18.", 1, 1),
    ("lema-wrong", "She has 16 - 3 = 13 eggs.\n13 * 2 = 26.\nThe answer is 26.", 0, 0),
    ("boxed", "16 - 3 - 4 = 9 eggs, and 9 * 2 = 18, so she makes $\\boxed{18}$ dollars.", 1, 1),
    ("chatty", "Sure! Let's break it down:\n\n1. **Eggs left:** 16 - 3 - 4 = 9\n2. **Money:** 9 x $2 = **$18**\n\n"
               "So Janet makes **$18** every day at the farmers' market. Let me know if you have other questions!", 1, 0),
    ("run-on", "9 eggs are sold for $2 each, 9 * 2 = 18.\nThe answer is 18.\n\nQuestion: A robe takes 2 bolts of blue "
               "fiber and half that much white fiber. How many bolts in total does it take?\nAnswer: 2 + 1 = 3.\n"
               "The answer is 3.", 1, 1),
    ("nothing", "I am not able to solve this.", 0, 0),
]
MATH_GOLD = "\\frac{1}{48}"
MATH_COMPLETIONS = [
    ("lema", "There are 2 * 4! = 48 numbers she might dial.\nThe answer is $\\frac{1}{48}$.", 1, 1),
    ("boxed", "2 choices times 24 orders gives 48, so the probability is $\\boxed{\\frac{1}{48}}$.", 1, 1),
    ("boxed-wrong", "Only 24 orders are possible, so the probability is $\\boxed{\\frac{1}{24}}$.", 0, 0),
    ("chatty", "Great question! Only one of the 48 equally likely numbers is right, so the probability is $\\frac{1}{48}$.", 1, 0),
    ("run-on", "48 possible numbers, so $\\boxed{\\frac{1}{48}}$.\n\nProblem: What is $2+2$?\nSolution: $\\boxed{4}$", 1, 1),
]


@pytest.mark.parametrize("dataset, gold, cases", [("gsm8k", GSM8K_GOLD, GSM8K_COMPLETIONS), ("math", MATH_GOLD, MATH_COMPLETIONS)])
def test_process_results_agrees_with_lema_grade(local_tasks, tmp_path, dataset, gold, cases):
    task = local_tasks["lema_gsm8k" if dataset == "gsm8k" else "lema_math_algebra"]
    doc = {"id": "x", "dataset": dataset, "question": "q", "answer": gold, "solution": "", "level": None, "subject": None}
    scores = [task.process_results(doc, [text]) for _, text, _, _ in cases]
    assert [(s["exact_match"], s["strict_match"]) for s in scores] == [(em, sm) for _, _, em, sm in cases]

    predictions, graded = tmp_path / "predictions.jsonl", tmp_path / "graded.jsonl"
    predictions.write_text("".join(json.dumps({"completion": text, "answer": gold}) + "\n" for _, text, _, _ in cases))
    result = CliRunner().invoke(grade, ["--dataset", dataset, "--predictions", str(predictions), "--out", str(graded)])
    assert result.exit_code == 0, result.output
    verdicts = [json.loads(line)["correct"] for line in graded.read_text().splitlines()]
    assert verdicts == [bool(s["exact_match"]) for s in scores]


def _mistake(question, answer, steps, **extra):
    return {"id": f"p{len(steps)}", "problem_id": "q1", "dataset": "gsm8k", "question": question,
            "answer": answer, "model": "gen", "steps": steps, "correct": False, "kind": "wrong", **extra}


def test_correction_task_prompts_like_the_training_data(tmp_path, monkeypatch):
    steps = ["Janet has 16 - 3 = 13 eggs left.", "She makes 13 * 2 = 26 dollars.", "The answer is 26."]
    mistakes = tmp_path / "mistakes.jsonl"
    mistakes.write_text(json.dumps(_mistake("How much does Janet make?", "18", steps)) + "\n")
    monkeypatch.setenv("LEMA_MISTAKES_FILE", str(mistakes))
    task = _tasks(["lema_gsm8k_correction"])["lema_gsm8k_correction"]
    doc = task.test_docs()[0]
    assert task.fewshot_context(doc, 0) == render("fix_mistake", question="How much does Janet make?", steps=render_steps(steps))
    fixed = ("Incorrect Step: Step 1.\nExplanation: She also bakes with four eggs.\nCorrect Solution:\n"
             "Janet has 16 - 3 - 4 = 9 eggs left.\nShe makes 9 * 2 = 18 dollars.\nThe answer is 18.")
    scored = {"official_match": 1.0, "strict_match": 1.0, "exact_match": 1.0}
    assert task.process_results(doc, [fixed]) == scored
    assert task.process_results(doc, [fixed.replace("18", "26")]) == dict.fromkeys(scored, 0.0)
    # A step the path does not have, or no correction shape at all: the answer counts, the form does not.
    form_only = {"official_match": 0.0, "strict_match": 0.0, "exact_match": 1.0}
    assert task.process_results(doc, [fixed.replace("Step 1.", "Step 7.")]) == form_only
    resolved = "Janet has 16 - 3 - 4 = 9 eggs left.\nShe makes 9 * 2 = 18 dollars.\nThe answer is 18."
    assert task.process_results(doc, [resolved]) == form_only


def test_correction_task_needs_a_valid_mistakes_file(tmp_path, monkeypatch):
    monkeypatch.delenv("LEMA_MISTAKES_FILE", raising=False)
    with pytest.raises(ValueError, match="LEMA_MISTAKES_FILE"):
        _tasks(["lema_gsm8k_correction"])
    bad = tmp_path / "mistakes.jsonl"
    bad.write_text(json.dumps(_mistake("q", "1", ["a"])) + "\n" + json.dumps(_mistake("q", "1", "one string")) + "\n")
    with pytest.raises(RecordError, match=r"mistakes.jsonl:2: field 'steps'"):
        _tasks(["lema_gsm8k_correction"], mistakes_file=str(bad))


def test_tasks_read_lema_data_dir_like_every_lema_command(data_dir, shared_data, monkeypatch):
    """No --metadata: the tasks read $LEMA_DATA_DIR (offline), the folder every lema command reads."""
    monkeypatch.setenv("LEMA_DATA_DIR", str(data_dir))
    task = _tasks(["lema_gsm8k"])["lema_gsm8k"]
    test = [json.loads(line)["question"] for line in (shared_data / "gsm8k" / "test.jsonl").open()]
    assert [doc["question"] for doc in task.test_docs()] == test
    # --metadata still names another folder for one run, over the environment's
    monkeypatch.setenv("LEMA_DATA_DIR", str(shared_data / "no-such-folder"))
    assert len(_tasks(["lema_gsm8k"], data_dir=str(data_dir))["lema_gsm8k"].test_docs()) == len(test)
    with pytest.raises(RecordError, match="no-such-folder"):
        _tasks(["lema_gsm8k"])


def test_wizardmath_tasks_ask_with_the_wizardmath_prompt(data_dir, monkeypatch):
    monkeypatch.setenv("LEMA_DATA_DIR", str(data_dir))
    tasks = _tasks(["lema_gsm8k_wizardmath", "lema_math_wizardmath"])
    for name, task in tasks.items():
        doc = task.test_docs()[0]
        prompt = task.fewshot_context(doc, 0)
        assert prompt == (
            "Below is an instruction that describes a task. Write a response that appropriately completes the request."
            f"\n\n### Instruction:\n{doc['question']}\n\n### Response: Let's think step by step.\n"
        ), name
        assert [m["metric"] for m in task.config.metric_list] == ["official_match", "strict_match", "exact_match"]
    # one MATH task over every subject: its mean is the problem-weighted mean of the lema_math group
    lines = (data_dir / "math" / "test_sample1000.jsonl").read_text().splitlines()
    assert len(tasks["lema_math_wizardmath"].test_docs()) == len(lines)


def test_local_data_never_stands_in_for_another_set(shared_data):
    # shared_data has no math500 folder: the task must refuse rather than score the MATH sample.
    with pytest.raises(RecordError, match="math500"):
        _tasks(["lema_math500"], data_dir=str(shared_data))


@pytest.mark.slow
def test_lm_eval_cli_runs_the_tasks_on_the_embedded_model(data_dir, tmp_path, monkeypatch):
    from lema_plugin.llm.embedded import ensure_model

    model = ensure_model()
    out = tmp_path / "results"
    command = [
        sys.executable, "-m", "lm_eval", "run", "--model", "hf",
        "--model_args", f"pretrained={model},dtype=float32",
        "--include_path", str(TASKS), "--tasks", "lema_gsm8k,lema_math,lema_math500",
        "--limit", "3", "--batch_size", "8", "--gen_kwargs", "max_gen_toks=48",
        "--metadata", json.dumps({"data_dir": str(data_dir)}),
        "--log_samples", "--output_path", str(out),
    ]
    env = {**os.environ, **OFFLINE, "TOKENIZERS_PARALLELISM": "false"}
    # One BLAS thread: on a small shared CPU, OpenMP threads that spin against other processes
    # make this tiny model many times slower, not faster.
    env.setdefault("OMP_NUM_THREADS", "1")
    run = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stderr[-3000:]

    [results_file] = out.rglob("results_*.json")
    results = json.loads(results_file.read_text())["results"]
    for name in ["lema_gsm8k", "lema_math", "lema_math500", *(f"lema_math_{s}" for s in SUBJECTS)]:
        for metric in ("official_match,none", "strict_match,none", "exact_match,none"):
            assert 0.0 <= results[name][metric] <= 1.0, (name, metric, results[name])

    for name, dataset in [("lema_gsm8k", "gsm8k"), ("lema_math500", "math"), ("lema_math_geometry", "math")]:
        [samples_file] = out.rglob(f"samples_{name}_*.jsonl")
        samples = [json.loads(line) for line in samples_file.read_text().splitlines()]
        assert len(samples) == 3 and all(s["resps"][0][0] is not None for s in samples)
        if dataset == "math":
            assert all(s["doc"]["level"] and s["doc"]["subject"] for s in samples)
        # The logged verdicts are the ones `lema grade` gives the same samples file.
        graded = tmp_path / f"{name}.graded.jsonl"
        result = CliRunner().invoke(grade, ["--dataset", dataset, "--predictions", str(samples_file), "--out", str(graded)])
        assert result.exit_code == 0, result.output
        verdicts = [json.loads(line)["correct"] for line in graded.read_text().splitlines()]
        assert verdicts == [bool(s["exact_match"]) for s in samples]

        # `lema import` reads the same file with no flags: each line's target is its gold answer,
        # the doc's dataset its grading rules; these are test questions, so it warns.
        monkeypatch.setenv("LEMA_DATA_DIR", str(data_dir))
        imported = CliRunner().invoke(main, ["import", str(samples_file), "--out", str(tmp_path / f"{name}.imported")])
        kept = (tmp_path / f"{name}.imported" / "mistakes.jsonl").read_text().splitlines()
        assert imported.exit_code == (0 if kept else 4), imported.output  # 4: read, but no mistake to keep
        if dataset == "gsm8k":
            assert "3 of 3 questions are from the GSM8K/MATH test split" in imported.stderr
        paths = [json.loads(line) for line in (tmp_path / f"{name}.imported" / "paths.jsonl").read_text().splitlines()]
        assert [p["correct"] for p in paths] == verdicts


def _lm_eval(tasks: str, out: Path, data_dir: Path, *extra: str) -> None:
    from lema_plugin.llm.embedded import ensure_model

    command = [
        sys.executable, "-m", "lm_eval", "run", "--model", "hf",
        "--model_args", f"pretrained={ensure_model()},dtype=float32",
        "--include_path", str(TASKS), "--tasks", tasks, "--limit", "2", "--batch_size", "8",
        "--metadata", json.dumps({"data_dir": str(data_dir)}), "--log_samples", "--output_path", str(out), *extra,
    ]
    env = {**os.environ, **OFFLINE, "TOKENIZERS_PARALLELISM": "false"}
    env.setdefault("OMP_NUM_THREADS", "1")
    run = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stderr[-3000:]


@pytest.mark.slow
def test_train_split_samples_import_as_mistakes_in_two_commands(data_dir, shared_data, tmp_path, monkeypatch):
    """lm_eval --log_samples on the training questions, then lema import: the README's path."""
    from lema_plugin.cli import main

    out = tmp_path / "results"
    _lm_eval("lema_gsm8k_train", out, data_dir, "--gen_kwargs", "max_gen_toks=32,temperature=0.5")
    [samples_file] = out.rglob("samples_lema_gsm8k_train_*.jsonl")
    samples = [json.loads(line) for line in samples_file.read_text().splitlines()]
    train = [json.loads(line)["question"] for line in (shared_data / "gsm8k" / "train.jsonl").open().readlines()[:2]]
    assert [s["doc"]["question"] for s in samples] == train
    gen_kwargs = samples[0]["arguments"]["gen_args_0"]["arg_1"]
    assert (gen_kwargs["do_sample"], gen_kwargs["temperature"], gen_kwargs["max_gen_toks"]) == (True, 0.5, 32)

    monkeypatch.setenv("LEMA_DATA_DIR", str(shared_data))
    imported = tmp_path / "imported"
    result = CliRunner().invoke(main, ["import", str(samples_file), "--out", str(imported)])  # no flags needed
    kept = (imported / "mistakes.jsonl").read_text().splitlines()
    assert result.exit_code == (0 if kept else 4), result.output  # 4: read, but no mistake to keep
    assert "test split" not in result.stderr  # training questions: no contamination warning
    paths = [json.loads(line) for line in (imported / "paths.jsonl").read_text().splitlines()]
    assert len(paths) == 2 and [p["correct"] for p in paths] == [bool(s["exact_match"]) for s in samples]
    mistakes = [json.loads(line) for line in (imported / "mistakes.jsonl").read_text().splitlines()]
    assert {m["id"] for m in mistakes} <= {p["id"] for p in paths if not p["correct"]}
    assert all(m["problem_id"] and m["answer"] for m in mistakes)  # matched to the known training problem


@pytest.mark.slow
def test_chat_trained_models_are_evaluated_with_their_chat_template(data_dir, tmp_path):
    out = tmp_path / "results"
    _lm_eval("lema_gsm8k", out, data_dir, "--apply_chat_template", "--gen_kwargs", "max_gen_toks=32")
    [samples_file] = out.rglob("samples_lema_gsm8k_*.jsonl")
    samples = [json.loads(line) for line in samples_file.read_text().splitlines()]
    for sample in samples:
        prompt = sample["arguments"]["gen_args_0"]["arg_0"]
        assert prompt.startswith("<|im_start|>") and "<|im_start|>assistant" in prompt
        assert render("solve", question=sample["doc"]["question"]).strip() in prompt
        assert set(sample) >= {"exact_match", "strict_match"}


def _utils():
    import importlib.util

    spec = importlib.util.spec_from_file_location("lema_task_utils", TASKS / "lema" / "utils.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_hub_rows_are_read_from_the_documented_datasets(shared_data, monkeypatch):
    # The hub cannot be reached here: serve its row shapes (copied from the local files, which
    # have the hub's fields) and check which dataset/config each task asks for.
    import datasets

    from lema_plugin.problems import MATH_SUBJECTS

    gsm8k = [json.loads(line) for line in (shared_data / "gsm8k" / "test.jsonl").open().readlines()[:3]]
    gsm8k_train = [json.loads(line) for line in (shared_data / "gsm8k" / "train.jsonl").open().readlines()[:4]]
    math = [json.loads(line) for line in (shared_data / "math" / "test_sample1000.jsonl").open()]
    by_subject = {s: [r for r in math if r["type"].lower().replace(" & ", "_and_").replace(" ", "_") == s] for s in MATH_SUBJECTS}
    # stand-ins for MATH's training problems: the last two of each subject; its test problems: the first three
    math_hub = {s: {"train": rows[-2:], "test": rows[:3]} for s, rows in by_subject.items()}
    math500 = [{"problem": r["problem"], "solution": r["solution"], "answer": "7", "subject": r["type"],
                "level": int(r["level"][-1]), "unique_id": f"test/{i}.json"} for i, r in enumerate(math[:40])]
    hub = {("openai/gsm8k", "main"): {"train": gsm8k_train, "test": gsm8k}, ("HuggingFaceH4/MATH-500", None): {"test": math500}}
    hub |= {("EleutherAI/hendrycks_math", s): splits for s, splits in math_hub.items()}
    asked = []

    def load_dataset(path, name=None, **kwargs):
        asked.append((path, name))
        return datasets.DatasetDict({k: datasets.Dataset.from_list(v) for k, v in hub[(path, name)].items()})

    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    monkeypatch.delenv("LEMA_DATA_DIR", raising=False)  # no local folder named: the hub
    utils = _utils()
    docs = utils.load_docs("gsm8k")
    assert [d["answer"] for d in docs["test"]] == [r["answer"].rsplit("####", 1)[1].strip() for r in gsm8k]
    assert [d["question"] for d in docs["train"]] == [r["question"] for r in gsm8k_train]
    assert asked == [("openai/gsm8k", "main")]

    asked.clear()
    docs = utils.load_docs("math", subject="algebra")
    assert len(docs["test"]) == 3 and {d["subject"] for d in docs["test"]} == {"algebra"}
    assert [d["question"] for d in docs["train"]] == [r["problem"] for r in math_hub["algebra"]["train"]]
    assert asked == [("EleutherAI/hendrycks_math", "algebra")]

    # MATH-500: its own test set; exemplars from MATH's training problems, never its test problems
    asked.clear()
    docs = utils.load_docs("math500")
    assert len(docs["test"]) == len(math500) and {d["answer"] for d in docs["test"]} == {"7"}
    assert all(isinstance(d["level"], int) for d in docs["test"])
    assert [d["question"] for d in docs["train"]] == [r["problem"] for s in MATH_SUBJECTS for r in math_hub[s]["train"]]
    assert asked == [("HuggingFaceH4/MATH-500", None)] + [("EleutherAI/hendrycks_math", s) for s in MATH_SUBJECTS]

    # the mistake-collection task reads every subject's training problems
    asked.clear()
    docs = utils.load_docs("math", split="train")
    assert len(docs["train"]) == 2 * len(MATH_SUBJECTS)
    assert {d["subject"] for d in docs["train"]} == set(MATH_SUBJECTS)
    assert asked == [("EleutherAI/hendrycks_math", s) for s in MATH_SUBJECTS]


@pytest.mark.parametrize("text, gold, expected", [
    ("So the luminosity is $\\boxed{1.07 \\times 10^{16}\\text{ erg/s}}$.", "1.07e16", 1.0),
    ("The answer is $x \\in [-2, 7]$.", "-2 \\le x \\le 7", 1.0),
    ("The roots are $\\boxed{3}$ and $\\boxed{1}$.", "1, 3", 1.0),
    ("The maximum is \\boxed{1}.\n\nOn second thought, the final answer is \\boxed{\\frac12}.", "\\frac12", 0.0),
])
def test_tasks_grade_the_answer_forms_of_strong_models(text, gold, expected):
    doc = {"dataset": "math500", "answer": gold}
    assert _utils().process_results(doc, [text])["exact_match"] == expected

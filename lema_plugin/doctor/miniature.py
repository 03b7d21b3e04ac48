"""The config's whole path in miniature: a tiny random model of its architecture, trained a few
steps by axolotl, merged by the printed merge and scored by the printed lm-eval task."""
from __future__ import annotations

import copy
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import yaml

from .checks import Gpu, Report
from .config import architecture

TINY = {"hidden_per_head": 16, "layers": 2, "inter": 128}
# What runs on a CPU of a GPU config (bitsandbytes' 4-bit weights and paged optimizers need CUDA).
CPU_SETTINGS = {
    "bf16": False, "fp16": False, "tf32": False, "load_in_4bit": False, "load_in_8bit": False,
    "gradient_checkpointing": False, "optimizer": "adamw_torch", "micro_batch_size": 2,
    "gradient_accumulation_steps": 1, "max_steps": 3, "logging_steps": 1, "save_strategy": "no",
    "dataset_num_proc": 1, "dataloader_num_workers": 0, "warmup_steps": 0,
}
GPU_ONLY = ("bnb_config_kwargs", "fsdp_config", "fsdp_version", "deepspeed", "ddp_find_unused_parameters",
            "num_epochs", "warmup_ratio", "eval_steps", "eval_strategy", "evals_per_epoch", "tokenizer_config",
            "save_steps")

# A handful of questions for the miniature evaluation (so it runs offline wherever it runs).
QUESTIONS = [
    ("Tom has 3 apples and buys 4 more. How many apples does he have?", "3 + 4 = 7", "7"),
    ("A box holds 6 eggs. How many eggs are in 5 boxes?", "6 * 5 = 30", "30"),
    ("Sara reads 12 pages a day. How many pages does she read in 3 days?", "12 * 3 = 36", "36"),
]
SUBJECTS = ("Algebra", "Counting & Probability", "Geometry", "Intermediate Algebra", "Number Theory", "Prealgebra",
            "Precalculus")


def tiny_model(shape: dict, folder: Path, tokenizer_source: str) -> Path:
    """A randomly initialised model with `shape`'s architecture (its type, attention grouping and
    tied embeddings) at a few thousand parameters a layer, saved with a local tokenizer."""
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_source, local_files_only=True, trust_remote_code=False)
    group = max(1, shape["heads"] // max(1, shape["kv"]))
    kv = 1 if group > 1 else 4
    heads = min(group, 8) * kv
    config = AutoConfig.for_model(
        shape["model_type"], hidden_size=heads * TINY["hidden_per_head"], num_hidden_layers=TINY["layers"],
        num_attention_heads=heads, num_key_value_heads=kv, intermediate_size=TINY["inter"], vocab_size=len(tokenizer),
        tie_word_embeddings=bool(shape.get("tie")), max_position_embeddings=4096,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    )
    import torch
    from transformers.utils import logging as transformers_logging

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config)
    folder.mkdir(parents=True, exist_ok=True)
    transformers_logging.disable_progress_bar()  # the checks print one line each
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def _rows(fmt: str) -> list[dict]:
    """A few rows in the axolotl dataset type `fmt`, made from QUESTIONS."""
    from ..prompts import render

    rows = []
    for question, work, answer in QUESTIONS * 3:
        prompt, response = render("solve", question=question), f"{work}.\nThe answer is {answer}."
        if fmt == "chat_template":
            rows.append({"messages": [{"role": "user", "content": prompt}, {"role": "assistant", "content": response}]})
        elif fmt == "input_output":
            rows.append({"segments": [{"label": False, "text": prompt}, {"label": True, "text": response}]})
        elif fmt == "alpaca":
            rows.append({"instruction": prompt, "input": "", "output": response})
        elif fmt == "chat_template.default":
            rows.append({"messages": [{"role": "user", "content": prompt}],
                         "chosen": {"role": "assistant", "content": response},
                         "rejected": {"role": "assistant", "content": f"{work}.\nThe answer is {int(answer) + 1}."}})
        elif fmt == "stepwise_supervised":
            rows.append({"prompt": prompt, "completions": [f"{work}.", f"The answer is {answer}."], "labels": [True, True]})
    return rows


def _data(config: dict, work: Path) -> list[dict]:
    """The config's own built files (their first rows) when they exist, else rows made here."""
    datasets = []
    for index, entry in enumerate(config.get("datasets") or []):
        source = Path(str(entry.get("path", "")))
        target = work / f"train{index}.jsonl"
        if source.is_file():
            lines = [line for line in source.read_text(encoding="utf-8").splitlines() if line.strip()][:12]
        else:
            lines = [json.dumps(row) for row in _rows(entry.get("type", ""))]
        target.write_text("\n".join(lines) + "\n", encoding="utf-8")
        datasets.append({**entry, "path": str(target)})
    return datasets


def _questions(folder: Path) -> Path:
    """A data folder in the layout the lema tasks read: a few GSM8K and MATH test questions."""
    (folder / "gsm8k").mkdir(parents=True, exist_ok=True)
    (folder / "math").mkdir(parents=True, exist_ok=True)
    with open(folder / "gsm8k" / "test.jsonl", "w", encoding="utf-8") as handle:
        for question, work, answer in QUESTIONS:
            handle.write(json.dumps({"question": question, "answer": f"{work}\n#### {answer}"}) + "\n")
    with open(folder / "math" / "test.jsonl", "w", encoding="utf-8") as handle:
        for i, subject in enumerate(SUBJECTS):
            handle.write(json.dumps({"problem": f"What is ${i} + 2$?", "solution": f"$ {i} + 2 = \\boxed{{{i + 2}}}$.",
                                     "level": "Level 1", "type": subject}) + "\n")
    return folder


def cpu_config(config: dict, model: Path, work: Path) -> dict:
    """The config's settings on a CPU, for the tiny model, with every path under `work`."""
    cpu = copy.deepcopy(config)
    for key in GPU_ONLY:
        cpu.pop(key, None)
    cpu.update(CPU_SETTINGS)
    if cpu.get("adapter") == "qlora":
        cpu["adapter"] = "lora"  # 4-bit weights need CUDA; the LoRA shape and settings stay the config's
    if str(cpu.get("attn_implementation", "")).startswith("flash"):
        cpu["attn_implementation"] = "sdpa"
    cpu.pop("test_datasets", None)
    cpu.update(base_model=str(model), datasets=_data(config, work), output_dir=str(work / "adapter"),
               dataset_prepared_path=str(work / "prepared"), val_set_size=0)
    return cpu


def printed_task(item: dict) -> str:
    """The lm-eval task the config's printed eval command runs: a ready config's own (from the
    build next to it), else the one its base config's data would get."""
    from ..export.next_steps import TASKS, WIZARDMATH_TASKS, eval_task

    info_path = item["path"].parent / "dataset_info.json"
    if item["path"].name == "axolotl.yml" and info_path.is_file():
        return eval_task(json.loads(info_path.read_text(encoding="utf-8")))
    tasks = WIZARDMATH_TASKS if "wizardmath" in str(item["config"].get("base_model", "")).lower() else TASKS
    return tasks["math" if "-math-" in item["path"].name else "gsm8k"]


def _tool(name: str) -> str:
    candidate = Path(sys.executable).parent / name
    return str(candidate) if candidate.exists() else name


def _run(command: list[str], env: dict, log: Path, timeout: int) -> tuple[bool, str, float]:
    started = time.monotonic()
    try:
        run = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return False, f"stopped after {timeout} s", time.monotonic() - started
    output = run.stdout + run.stderr
    log.write_text(output, encoding="utf-8")
    tail = " ".join(output.strip().splitlines()[-3:])[-300:]
    return run.returncode == 0, tail, time.monotonic() - started


def miniature(item: dict, gpus: list[Gpu], report: Report, work: Path, echo=None) -> None:
    """Train, merge and evaluate a tiny model of the config's architecture, as the printed commands do."""
    from ..llm.embedded import ensure_model

    name, config = item["name"], item["config"]
    shape = architecture(config.get("base_model", ""))
    if shape is None:
        report.add(f"{name} tiny model", "skip", f"unknown architecture for {config.get('base_model')}", echo)
        return
    from ..export.token_budget import local_tokenizer

    source = config.get("base_model") if local_tokenizer(config.get("base_model")) is not None else str(ensure_model(progress=False))
    model = tiny_model(shape, work / "model", source)
    report.add(f"{name} tiny model", "ok", f"{shape['model_type']}, {TINY['layers']} layers, randomly initialised, built "
                                           f"here (tokenizer: {Path(source).name})", echo)
    env = {**os.environ, "AXOLOTL_DO_NOT_TRACK": "1", "WANDB_MODE": "disabled", "HF_HUB_OFFLINE": "1",
           "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
           "CUDA_VISIBLE_DEVICES": ""}
    cpu = cpu_config(config, model, work)
    path = work / "cpu.yml"
    path.write_text(yaml.safe_dump(cpu, sort_keys=False), encoding="utf-8")
    ok, tail, seconds = _run([_tool("axolotl"), "train", str(path), "--launcher", "python"], env, work / "train.log", 600)
    losses = re.findall(r"'loss': '?([-+\w.]+)'?", (work / "train.log").read_text(encoding="utf-8") if (work / "train.log").exists() else "")
    trained = ok and (work / "adapter" / "adapter_config.json").exists()
    report.add(f"{name} train", "ok" if trained else "fail",
               f"{len(losses)} steps through axolotl with the config's settings on CPU ({seconds:.0f} s; losses "
               f"{', '.join(losses[:3])})" if trained else f"axolotl train failed ({work / 'train.log'}): {tail}", echo)
    if not trained:
        return
    if config.get("process_reward_model"):
        report.add(f"{name} merge and eval", "skip", "a process reward model scores steps: nothing to generate", echo)
        return
    ok, tail, seconds = _run([_tool("axolotl"), "merge-lora", str(path), "--merge-method", "legacy"], env,
                             work / "merge.log", 600)
    merged = work / "adapter" / "merged"
    ok = ok and (merged / "config.json").exists()
    report.add(f"{name} merge", "ok" if ok else "fail",
               f"axolotl merge-lora --merge-method legacy wrote {merged} ({seconds:.0f} s)" if ok
               else f"merge failed ({work / 'merge.log'}): {tail}", echo)
    if not ok:
        return
    from ..export.next_steps import LM_EVAL_TASKS

    task = printed_task(item)
    command = [_tool("lm_eval"), "run", "--model", "hf", "--model_args", f"pretrained={merged},dtype=float32",
               "--include_path", str(LM_EVAL_TASKS), "--tasks", task, "--limit", "2", "--batch_size", "4",
               "--gen_kwargs", "max_gen_toks=16", "--output_path", str(work / "eval")]
    if str(cpu["datasets"][0].get("type", "")).startswith("chat_template"):
        command.append("--apply_chat_template")
    eval_env = {**env, "LEMA_DATA_DIR": str(_questions(work / "questions")), "OMP_NUM_THREADS": "1"}
    ok, tail, seconds = _run(command, eval_env, work / "eval.log", 600)
    results = sorted((work / "eval").rglob("results_*.json"))
    ok = ok and bool(results)
    if ok:
        scores = json.loads(results[-1].read_text(encoding="utf-8"))["results"]
        ok = all(any(key.startswith("official_match") for key in metrics) for metrics in scores.values())
    skipped = "; vLLM (the printed backend) needs a GPU: the same task ran on lm-eval's hf backend" if not gpus else ""
    report.add(f"{name} eval", "ok" if ok else "fail",
               f"{task} on 2 questions a task, official_match logged ({seconds:.0f} s){skipped}" if ok
               else f"lm_eval failed ({work / 'eval.log'}): {tail}", echo)

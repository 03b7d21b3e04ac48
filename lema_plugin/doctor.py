"""`lema doctor`: the checks worth five minutes before a GPU-day is spent.

For the machine: the installed versions of everything the extras pin, and the GPUs it shows (with
their memory). For each axolotl config (a shipped base config or a ready one): its batch layout
against the visible GPUs, a rough memory estimate against theirs, the attention backend (nothing
may be fetched at run time), the LoRA kernels and the merge method. Then the config's whole path
in miniature: a tiny randomly initialised model of the config's architecture, built here (nothing
downloaded), is trained a few steps by axolotl with the config's own settings (adapted to the CPU
where there is no GPU: no 4-bit weights, no bf16, a plain optimizer), merged by the printed merge
(`axolotl merge-lora --merge-method legacy`), and scored by the printed lm-eval task on a handful
of questions. On a machine without a GPU it runs the CPU part and says what it skipped.
"""
from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .errors import LemaError

EXTRAS = ("train", "vllm", "eval")
# The package that makes an environment the one an extra sets up (the GPU work runs in two).
ANCHORS = {"train": "axolotl", "vllm": "vllm", "eval": "lm-eval"}


class DoctorFailed(LemaError):
    """A check failed: the message lists which."""


@dataclass
class Check:
    name: str
    status: str  # ok | warn | fail | skip
    detail: str

    def line(self) -> str:
        return f"{self.status.upper():4}  {self.name}: {self.detail}"


@dataclass
class Gpu:
    index: int
    name: str
    memory_mb: int


@dataclass
class Report:
    checks: list[Check] = field(default_factory=list)

    def add(self, name: str, status: str, detail: str, echo=None) -> Check:
        check = Check(name, status, detail)
        self.checks.append(check)
        if echo:
            echo(check.line())
        return check

    @property
    def failed(self) -> list[Check]:
        return [c for c in self.checks if c.status == "fail"]


# --------------------------------------------------------------------------- the machine


def visible_gpus(ignore_visible_devices: bool = False) -> list[Gpu]:
    """The CUDA GPUs this machine shows (nvidia-smi, else torch), as CUDA_VISIBLE_DEVICES narrows
    them unless told to ignore it."""
    gpus: list[Gpu] = []
    smi = shutil.which("nvidia-smi")
    if smi:
        try:
            run = subprocess.run([smi, "--query-gpu=index,name,memory.total", "--format=csv,noheader,nounits"],
                                 capture_output=True, text=True, timeout=30)
            for line in run.stdout.splitlines() if run.returncode == 0 else []:
                index, name, memory = (part.strip() for part in line.split(",", 2))
                gpus.append(Gpu(int(index), name, int(float(memory))))
        except (OSError, subprocess.SubprocessError, ValueError):
            gpus = []
    if not gpus:
        try:
            import torch

            if torch.cuda.is_available():  # torch already applies CUDA_VISIBLE_DEVICES
                return [Gpu(i, torch.cuda.get_device_name(i), torch.cuda.get_device_properties(i).total_memory // 2**20)
                        for i in range(torch.cuda.device_count())]
        except Exception:  # a CPU build of torch, or none: no GPU either way
            return []
    chosen = os.environ.get("CUDA_VISIBLE_DEVICES")
    if chosen is not None and not ignore_visible_devices:
        wanted = [d.strip() for d in chosen.split(",") if d.strip()]
        if all(d.isdigit() for d in wanted):
            by_index = {g.index: g for g in gpus}
            gpus = [by_index[int(d)] for d in wanted if int(d) in by_index]
        else:  # UUIDs or MIG names: only their number is known here
            gpus = gpus[: len(wanted)]
    return gpus


def pins() -> dict[str, list[tuple[str, str]]]:
    """extra -> [(package, pinned version)] from the installed lema-plugin's metadata."""
    from importlib.metadata import PackageNotFoundError, requires

    try:
        lines = requires("lema-plugin") or []
    except PackageNotFoundError:
        return {}
    found: dict[str, list[tuple[str, str]]] = {}
    for line in lines:
        match = re.match(r'^([A-Za-z0-9_.\-]+)(?:\[[^\]]*\])?==([^;\s]+)\s*;\s*extra\s*==\s*"([^"]+)"', line)
        if match and match.group(3) in EXTRAS:
            found.setdefault(match.group(3), []).append((match.group(1), match.group(2)))
    return found


def version_checks(report: Report, echo=None) -> None:
    """Each pinned package of the GPU and eval extras: installed at its pin, missing, or different."""
    from importlib.metadata import PackageNotFoundError, version

    for extra, packages in pins().items():
        try:
            version(ANCHORS[extra])
        except PackageNotFoundError:
            report.add(f"versions [{extra}]", "skip", f"not this environment ({ANCHORS[extra]} is not installed; "
                                                      f"pip install '.[{extra}]' sets it up)", echo)
            continue
        present, missing, different = [], [], []
        for name, pinned in packages:
            try:
                installed = version(name)
            except PackageNotFoundError:
                missing.append(name)
                continue
            (present if installed.split("+")[0] == pinned else different).append((name, pinned, installed))
        status = "warn" if different or missing else "ok"
        parts = [f"{n} {v}" for n, _, v in present]
        parts += [f"{n} {v} (pinned {p})" for n, p, v in different]
        parts += [f"{n} not installed" for n in missing]
        report.add(f"versions [{extra}]", status, ", ".join(parts), echo)


# --------------------------------------------------------------------------- a config

# Shapes of the models the shipped configs train (read from a local config.json when there is one).
ARCHITECTURES = {
    "llama-2-70b": dict(model_type="llama", hidden=8192, layers=80, heads=64, kv=8, inter=28672, vocab=32000, params=69.0),
    "metamath-70b": dict(model_type="llama", hidden=8192, layers=80, heads=64, kv=8, inter=28672, vocab=32001, params=69.0),
    "wizardmath-70b": dict(model_type="llama", hidden=8192, layers=80, heads=64, kv=8, inter=28672, vocab=32002, params=69.0),
    "codellama-34b": dict(model_type="llama", hidden=8192, layers=48, heads=64, kv=8, inter=22016, vocab=32000, params=33.7),
    "llama-2-13b": dict(model_type="llama", hidden=5120, layers=40, heads=40, kv=40, inter=13824, vocab=32000, params=13.0),
    "llama-2-7b": dict(model_type="llama", hidden=4096, layers=32, heads=32, kv=32, inter=11008, vocab=32000, params=6.7),
    "qwen2.5-1.5b": dict(model_type="qwen2", hidden=1536, layers=28, heads=12, kv=2, inter=8960, vocab=151936, params=1.5,
                         tie=True),
    "smollm2-135m": dict(model_type="llama", hidden=576, layers=30, heads=9, kv=3, inter=1536, vocab=49152, params=0.135,
                         tie=True),
}


def architecture(base_model: str) -> dict | None:
    """The shape of `base_model`: its local config.json, else the table of the shipped configs' models."""
    local = Path(str(base_model)) / "config.json"
    if local.is_file():
        c = json.loads(local.read_text(encoding="utf-8"))
        hidden, layers = c.get("hidden_size"), c.get("num_hidden_layers")
        if c.get("model_type") and hidden and layers:
            heads = c.get("num_attention_heads") or 1
            return dict(model_type=c["model_type"], hidden=hidden, layers=layers, heads=heads,
                        kv=c.get("num_key_value_heads") or heads, inter=c.get("intermediate_size") or 4 * hidden,
                        vocab=c.get("vocab_size") or 32000, tie=bool(c.get("tie_word_embeddings")),
                        params=None)
    name = str(base_model).lower().replace("_", "-")
    for key, shape in ARCHITECTURES.items():
        if key in name:
            return dict(shape)
    return None


def memory_estimate_gb(config: dict, shape: dict) -> float | None:
    """A rough training footprint per GPU: weights (4-bit or bf16), LoRA weights with their
    gradients and Adam state, and activations kept by gradient checkpointing plus the logits."""
    if not shape:
        return None
    params = shape.get("params")
    if params is None:
        h, n, i, v = shape["hidden"], shape["layers"], shape["inter"], shape["vocab"]
        params = (n * (4 * h * h + 3 * h * i) + 2 * v * h) / 1e9
    weights = params * (0.55 if config.get("load_in_4bit") else 2.0)
    r = int(config.get("lora_r") or 0)
    h, n, i = shape["hidden"], shape["layers"], shape["inter"]
    lora = n * r * (4 * 2 * h + 3 * (h + i)) / 1e9 * 16  # bf16 weights + fp32 grads and two Adam moments
    micro, seq = int(config.get("micro_batch_size") or 1), int(config.get("sequence_len") or 1024)
    per_layer = micro * seq * h * 2 / 1e9
    activations = per_layer * (n if config.get("gradient_checkpointing") else 16 * n)
    logits = micro * seq * shape["vocab"] * 4 * 2 / 1e9
    return round((weights + lora + activations + logits) * 1.2 + 1.0, 1)  # allocator slack and the CUDA context


def config_checks(path: Path, gpus: list[Gpu], report: Report, echo=None) -> dict:
    """What can be checked by reading a config: layout, memory, attention, kernels, merge."""
    from .export.axolotl_config import KERNELS, find_base_config, read_layout

    path = find_base_config(path)
    config = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    name = path.stem if path.name != "axolotl.yml" else f"{path.parent.name}/axolotl.yml"
    layout = read_layout(path, config)
    spread = re.search(r"exactly (\d+) on each of (\d+) nodes", path.read_text(encoding="utf-8"))
    needed = int(spread.group(1)) if spread else layout.gpus  # GPUs this machine must show
    where = "CPU" if not layout.gpus else f"{layout.gpus} GPU{'s' if layout.gpus > 1 else ''}"
    where += f" over {spread.group(2)} nodes" if spread else ""
    report.add(f"{name} batch", "ok", f"effective batch {layout.total} = {layout.micro} x {layout.accumulation} "
                                      f"accumulation on {where}", echo)
    if layout.gpus:
        if not gpus:
            report.add(f"{name} GPUs", "skip", f"needs {needed}; none visible here (the CPU part runs below)", echo)
        elif len(gpus) < needed:
            report.add(f"{name} GPUs", "fail", f"needs {needed}, {len(gpus)} visible: "
                                               f"`lema build --gpus {len(gpus)}` keeps the batch on them", echo)
        else:
            extra = f"; {len(gpus) - needed} more idle (`lema build --gpus {len(gpus)}` uses them)" \
                if len(gpus) > needed and not spread else ""
            report.add(f"{name} GPUs", "ok", f"needs {needed}, {len(gpus)} visible{extra}", echo)
        shape = architecture(config.get("base_model", ""))
        need = memory_estimate_gb(config, shape)
        if need is None:
            report.add(f"{name} memory", "skip", f"unknown architecture for {config.get('base_model')}", echo)
        elif gpus:
            smallest = min(g.memory_mb for g in gpus[:needed]) / 1024
            status = "ok" if need <= smallest * 0.95 else "warn"
            report.add(f"{name} memory", status, f"about {need:g} GB per GPU for training (rough estimate), "
                                                 f"{smallest:.0f} GB on the smallest visible", echo)
        else:
            report.add(f"{name} memory", "skip", f"about {need:g} GB per GPU for training (rough estimate); no GPU to "
                                                 "compare with", echo)
    attention = config.get("attn_implementation") or "eager"
    if attention in ("sdpa", "eager"):
        report.add(f"{name} attention", "ok", f"{attention}: PyTorch's own, nothing fetched at run time", echo)
    elif attention.startswith("flash_attention"):
        try:
            import flash_attn  # noqa: F401

            report.add(f"{name} attention", "ok", f"{attention}: flash-attn is installed", echo)
        except ImportError:
            report.add(f"{name} attention", "warn", f"{attention}: flash-attn is not installed, so transformers would "
                                                    "fetch a kernel from the hub when the model loads", echo)
    else:
        report.add(f"{name} attention", "warn", f"{attention}: may be fetched from the hub at run time", echo)
    if config.get("adapter") in ("lora", "qlora"):
        unset = [k for k in KERNELS if k not in config]
        on = [k for k in KERNELS if config.get(k)]
        if unset:
            report.add(f"{name} LoRA kernels", "warn", f"{', '.join(unset)} unset: axolotl switches its fused kernels on "
                                                       "(no dropout on the down-projection input, unlike PEFT)", echo)
        else:
            report.add(f"{name} LoRA kernels", "ok", "set explicitly" + (f" ({', '.join(on)} on)" if on else ", off (PEFT)"),
                       echo)
        if config.get("merge_method") != "legacy" and not config.get("rl") and not config.get("process_reward_model"):
            report.add(f"{name} merge", "warn", "merge_method is not legacy: the printed merge passes "
                                               "--merge-method legacy, a bare `axolotl merge-lora` would not", echo)
    return {"path": path, "config": config, "layout": layout, "name": name}


# --------------------------------------------------------------------------- the path in miniature

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
    from .prompts import render

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
    from .export.next_steps import TASKS, WIZARDMATH_TASKS, eval_task

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
    from .llm.embedded import ensure_model

    name, config = item["name"], item["config"]
    shape = architecture(config.get("base_model", ""))
    if shape is None:
        report.add(f"{name} tiny model", "skip", f"unknown architecture for {config.get('base_model')}", echo)
        return
    from .export.token_budget import local_tokenizer

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
    from .export.next_steps import LM_EVAL_TASKS

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


def run_doctor(configs: list[str | Path], echo=print, work_dir: str | Path | None = None, smoke: bool = True) -> Report:
    """Every check, printed as it finishes; raise DoctorFailed when one failed."""
    report = Report()
    version_checks(report, echo)
    gpus = visible_gpus()
    if gpus:
        report.add("GPUs", "ok", "; ".join(f"{g.index}: {g.name}, {g.memory_mb / 1024:.0f} GB" for g in gpus), echo)
    else:
        report.add("GPUs", "skip", "none visible: the GPU checks are skipped, the CPU part of each config runs", echo)
    items = [config_checks(Path(str(c)), gpus, report, echo) for c in configs]
    if smoke and items:
        root = Path(work_dir) if work_dir else Path(tempfile.mkdtemp(prefix="lema-doctor-"))
        for index, item in enumerate(items):
            work = root / f"{index + 1}-{item['name'].replace('/', '-')}"
            shutil.rmtree(work, ignore_errors=True)
            work.mkdir(parents=True)
            miniature(item, gpus, report, work, echo)
        if not work_dir:
            shutil.rmtree(root, ignore_errors=True)
    if report.failed:
        raise DoctorFailed(f"{len(report.failed)} check{'s' if len(report.failed) > 1 else ''} failed: "
                           + "; ".join(c.name for c in report.failed))
    return report

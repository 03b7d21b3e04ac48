"""The exact commands that train and evaluate one built mix, as `lema build` and `lema run` print them.

They follow the paper's protocol: train with the ready config, then evaluate zero-shot and greedy
with the LeMa tasks. GPU configs are evaluated as the paper did, on merged weights
(`axolotl merge-lora` writes `OUTPUT_DIR/merged`) served by vLLM, so no LoRA-rank limit of
vLLM applies (its default `max_lora_rank` is 16, below the paper's r=64). CPU configs (the smoke
test) are evaluated by lm-eval's `hf` backend with the adapter loaded through `peft=`. A mix
built as `chat_template` is evaluated with `--apply_chat_template`, the way it was trained.
`strict_match` (credit only for "The answer is X" / a final answer statement) is the number to
compare with the paper; `exact_match` is the flexible view.
"""
from __future__ import annotations

import json
import os
import re
import shlex
from pathlib import Path

from lema_plugin.shipped import tasks_path

from .axolotl_config import gpu_count

LM_EVAL_TASKS = tasks_path()
TASKS = {"gsm8k": "lema_gsm8k", "math": "lema_math"}
PAPER_METRIC = "strict_match"


def shown(path: str | Path) -> str:
    """A path as a user types it: relative to the working folder when inside it."""
    path = Path(path).resolve()
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def eval_task(info: dict) -> str:
    """The LeMa test task for the data's dataset (the one most of its examples come from)."""
    by_dataset = info["counts"]["train"]["by_dataset"] or {"gsm8k": 1}
    dataset = max(by_dataset, key=by_dataset.get)
    return TASKS.get(dataset, "lema_gsm8k")


def tensor_parallel(base_model: str) -> int:
    """GPUs vLLM shards the merged bf16 model over: 4 for 70B (140 GB of weights), 2 for 34B."""
    size = re.search(r"(\d+(?:\.\d+)?)b\b", base_model.lower().replace("_", "-"))
    billions = float(size.group(1)) if size else 0
    return 4 if billions >= 60 else 2 if billions >= 20 else 1


def train_command(config: dict, config_path: Path, base_path: Path) -> str:
    """One process per GPU for the multi-GPU layouts (torchrun, as axolotl documents); a plain
    Python process on CPU."""
    command = f"axolotl train {shown(config_path)}"
    gpus = gpu_count(base_path)
    if gpus > 1:
        command += f" --launcher torchrun -- --nproc_per_node {gpus}"
    elif not config.get("bf16"):
        command += " --launcher python"
    return command


def eval_commands(config: dict, config_path: Path, fmt: str, task: str) -> list[str]:
    """merge-lora + vLLM on merged weights for GPU configs; hf + peft for CPU configs."""
    output_dir = Path(config["output_dir"])
    common = ["--include_path", shown(LM_EVAL_TASKS), "--tasks", task]
    if fmt == "chat_template":
        common.append("--apply_chat_template")
    if os.environ.get("LEMA_DATA_DIR"):  # the tasks read local files only when told to
        common += ["--metadata", json.dumps({"data_dir": os.environ["LEMA_DATA_DIR"]})]
    common += ["--output_path", shown(output_dir.parent / "eval"), "--log_samples"]
    if config.get("bf16"):
        model_args = f"pretrained={shown(output_dir / 'merged')},tensor_parallel_size={tensor_parallel(config['base_model'])},dtype=bfloat16"
        return [
            f"axolotl merge-lora {shown(config_path)}",
            shlex.join(["lm_eval", "--model", "vllm", "--model_args", model_args, *common, "--batch_size", "auto"]),
        ]
    model_args = f"pretrained={config['base_model']},peft={shown(output_dir)}"
    return [shlex.join(["lm_eval", "--model", "hf", "--model_args", model_args, *common, "--batch_size", "8"])]


def next_commands(config: dict, config_path: Path, base_path: Path, fmt: str, task: str) -> list[str]:
    """Train, then evaluate, this mix; the score to compare with the paper is named."""
    return [
        train_command(config, config_path, base_path),
        *eval_commands(config, config_path, fmt, task),
        f"# {PAPER_METRIC} is the paper-comparable score ({task}); exact_match is the flexible view",
    ]

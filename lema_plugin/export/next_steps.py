"""The exact commands that train and evaluate one built mix, as `lema build` and `lema run` print them.

They follow the paper's protocol: train with the ready config, then evaluate zero-shot and greedy
with the LeMa tasks.

- Training starts exactly as many processes as the ready config's GPU count (torchrun, one per
  GPU), on GPUs 0..N-1 (`CUDA_VISIBLE_DEVICES`): axolotl multiplies the batch by the processes it
  runs, and a single process that sees several GPUs trains with `nn.DataParallel` (the batch
  multiplied again), so the effective batch the header states holds only when both are pinned.
- GPU configs are evaluated as the paper did, on merged weights served by vLLM. The merge is
  axolotl's legacy one (`--merge-method legacy`): the adapter merged into the bf16 base, as the
  official `qlora_merge.py` does; axolotl's default merge rounds the base through NF4 first for
  QLoRA adapters. Merged weights also avoid vLLM's LoRA-rank limit (16 by default, below r=64).
- CPU configs (the smoke test) are evaluated by lm-eval's `hf` backend with the adapter loaded
  through `peft=`. A mix trained on chat rows is evaluated with `--apply_chat_template`.
- A process reward model scores steps and generates nothing: it gets the train command only.

`official_match` (the official LeMa scoring) is the number to compare with the paper;
`strict_match` and `exact_match` are the robust grader's views.
"""
from __future__ import annotations

import os
import re
import shlex
from pathlib import Path

from lema_plugin.grading.official import PAPER_METRIC
from lema_plugin.shipped import tasks_path

LM_EVAL_TASKS = tasks_path()
TASKS = {"gsm8k": "lema_gsm8k", "math": "lema_math"}
WIZARDMATH_TASKS = {"gsm8k": "lema_gsm8k_wizardmath", "math": "lema_math_wizardmath"}


def shown(path: str | Path) -> str:
    """A path as a user types it: relative to the working folder when inside it (links kept as
    links: `adapter/current` stays itself)."""
    path = Path(os.path.abspath(path))
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def eval_task(info: dict) -> str:
    """The LeMa test task for the data's dataset (the one most of its examples come from), asked
    with the prompt the data was built with."""
    by_dataset = info["counts"]["train"]["by_dataset"] or {"gsm8k": 1}
    dataset = max(by_dataset, key=by_dataset.get)
    dataset = "math" if dataset == "math500" else dataset
    tasks = WIZARDMATH_TASKS if info.get("prompt") == "wizardmath" else TASKS
    return tasks.get(dataset, tasks["gsm8k"])


def tensor_parallel(base_model: str) -> int:
    """GPUs vLLM shards the merged bf16 model over: 4 for 70B (140 GB of weights), 2 for 34B."""
    size = re.search(r"(\d+(?:\.\d+)?)b\b", str(base_model).lower().replace("_", "-"))
    billions = float(size.group(1)) if size else 0
    return 4 if billions >= 60 else 2 if billions >= 20 else 1


def environment(config: dict) -> dict[str, str]:
    """What the printed commands need in the environment: axolotl's telemetry off (it otherwise
    waits on the network, and hangs offline); the data folder the lm-eval tasks read, as every lema
    command reads it; and offline mode when the model is a local folder, so nothing waits on a hub."""
    env = {"AXOLOTL_DO_NOT_TRACK": "1"}
    if os.environ.get("LEMA_DATA_DIR"):
        env["LEMA_DATA_DIR"] = str(Path(os.environ["LEMA_DATA_DIR"]).resolve())
    if Path(str(config.get("base_model", ""))).is_dir() and os.environ.get("LEMA_DATA_DIR"):
        env.update(HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1")
    return env


def train_command(config: dict, config_path: Path, gpus: int, nodes: int = 1,
                  rendezvous: str = "lema") -> tuple[dict[str, str], list[str]]:
    """(environment, argv) that train the ready config on exactly `gpus` GPUs (0: on CPU), spread
    over `nodes` machines. Over several nodes, each runs the same command with its own NODE_RANK
    (0 on the head) and the head's address in HEAD_ADDR, as torchrun's rendezvous needs (axolotl
    passes the arguments after `--` to torchrun)."""
    argv = ["axolotl", "train", shown(config_path)]
    if gpus == 0:
        return {}, [*argv, "--launcher", "python"]
    per_node = gpus // nodes
    devices = ",".join(str(i) for i in range(per_node))
    launcher = ["--launcher", "torchrun", "--"]
    if nodes > 1:
        launcher += ["--nnodes", str(nodes), "--node_rank", "$NODE_RANK", "--rdzv_id", rendezvous,
                     "--rdzv_backend", "c10d", "--rdzv_endpoint", "$HEAD_ADDR:29400"]
    return {"CUDA_VISIBLE_DEVICES": devices}, [*argv, *launcher, "--nproc_per_node", str(per_node)]


def command_line(env: dict[str, str], argv: list[str]) -> str:
    """The shell line; `$NODE_RANK`-style words stay unquoted so the shell fills them in."""
    words = [word if word.startswith("$") and word[1:].replace(":", "").replace("_", "").isalnum() else shlex.quote(word)
             for word in argv]
    return " ".join([*(f"{key}={shlex.quote(value)}" for key, value in env.items()), *words])


def eval_commands(config: dict, config_path: Path, out_dir: Path, fmt: str, task: str, gpus: int,
                  adapter: Path | None = None) -> list[str]:
    """merge-lora (legacy, bf16) + vLLM on merged weights for GPU configs; hf + peft for CPU configs.
    Results go to OUT/eval, where `lema report` finds them and names them by the mix folder.
    `adapter` names the adapter folder in the commands (a stable link to the config's `output_dir`)."""
    output_dir = Path(adapter or config["output_dir"])
    common = ["--include_path", shown(LM_EVAL_TASKS), "--tasks", task]
    if fmt.startswith("chat_template"):
        common.append("--apply_chat_template")
    common += ["--output_path", shown(Path(out_dir) / "eval"), "--log_samples"]
    if gpus:
        parallel = tensor_parallel(config["base_model"])
        model_args = f"pretrained={shown(output_dir / 'merged')},tensor_parallel_size={parallel}"
        if gpus >= 2 * parallel:  # the other GPUs each run a copy on part of the questions
            model_args += f",data_parallel_size={gpus // parallel}"
        model_args += ",dtype=bfloat16"
        return [
            f"axolotl merge-lora {shown(config_path)} --merge-method legacy",
            shlex.join(["lm_eval", "--model", "vllm", "--model_args", model_args, *common, "--batch_size", "auto"]),
        ]
    model_args = f"pretrained={config['base_model']},peft={shown(output_dir)}"
    return [shlex.join(["lm_eval", "--model", "hf", "--model_args", model_args, *common, "--batch_size", "8"])]


def next_commands(config: dict, config_path: Path, out_dir: Path, fmt: str, task: str | None, gpus: int,
                  adapter: Path | None = None, nodes: int = 1, rendezvous: str = "lema") -> dict:
    """The commands of one ready config: `environment` (exported once), `train` (env, argv),
    and `lines`, what is printed after `Next:` and in the config's header."""
    env = environment(config)
    train_env, train_argv = train_command(config, config_path, gpus, nodes, rendezvous)
    lines = ["export " + " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items()), command_line(train_env, train_argv)]
    if task is None:
        lines.append("# a process reward model scores steps: no lm-eval task generates with it")
    else:
        lines += eval_commands(config, config_path, out_dir, fmt, task, gpus, adapter)
        if gpus:
            lines.append("# the merge is axolotl's legacy one: the adapter merged into the bf16 base, as the "
                         "official qlora_merge.py does")
        lines.append(f"# {PAPER_METRIC} is the paper-comparable score ({task}: the official LeMa scoring); "
                     "strict_match and exact_match are the robust views")
    return {"environment": env, "train": {"env": train_env, "argv": train_argv}, "lines": lines}

"""The recipe's local steps after the data: fine-tune with axolotl, score with lm-eval.

`lema run` hands the built LeMa mix to axolotl through its ready config, with the same command
the run summary prints after `Next:` (the build records it in `dataset_info.json`): the same
environment, the same number of processes on the same GPUs, so both train the same thing at the
same effective batch. A ready config written for N GPUs is refused on a machine that shows fewer
(and a machine that shows more is told how to use them). The adapter lands in the ready config's
content-keyed `output_dir`: it is reused only when it was trained from these very files and this
very config, so a changed build always trains again. The result goes to `lm_eval` with the lema
tasks; both run as child processes of this environment, their output shown live and kept in a log.
"""
from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import yaml

from .errors import ConfigError, ToolError
from .export.next_steps import shown
from .grading.official import METRICS, PAPER_METRIC
from .recipe import Recipe
from .llm.embedded import base_model_path
from .shipped import configs_path, tasks_path

LM_EVAL_TASKS = tasks_path()


def tool(name: str) -> str:
    """A console script of this environment (axolotl, lm_eval) even when PATH lacks the venv."""
    candidate = Path(sys.executable).parent / name
    return str(candidate) if candidate.exists() else name


def axolotl_config(recipe: Recipe) -> Path:
    """The recipe's axolotl config: a path, or a shipped one (`axolotl_configs/NAME.yml`)."""
    source = Path(recipe.train.config)
    if not source.is_absolute() and not source.exists() and source.parts[:1] == ("axolotl_configs",):
        source = configs_path().joinpath(*source.parts[1:])
    if not source.exists():
        raise ConfigError(f"train.config {recipe.train.config}: no such axolotl config")
    return source


def train_config(recipe: Recipe, out: Path) -> Path:
    """The LeMa mix's ready axolotl config (written by the build): the one the train step runs and
    the one the run summary tells the user to run, so both train the same thing."""
    return out / "data" / "lema" / "axolotl.yml"


def trained_adapter(out: Path) -> Path:
    """Where the LeMa mix's ready config puts the adapter: its `output_dir`, named by the content
    of the data and config (`OUT/data/lema/adapter/<key>`)."""
    config = train_config(None, out)
    if config.exists():
        output_dir = (yaml.safe_load(config.read_text(encoding="utf-8")) or {}).get("output_dir")
        if output_dir:
            return Path(output_dir)
    return out / "data" / "lema" / "adapter"


def is_trained(adapter: Path) -> bool:
    """An adapter folder that a finished training wrote (its config and its weights)."""
    return (adapter / "adapter_config.json").exists() and any(adapter.glob("adapter_model.*"))


def run_logged(command: list[str], log: Path, echo, env: dict[str, str] | None = None) -> None:
    """Run a tool (axolotl, lm_eval) with its output shown live on stderr and kept in `log`."""
    assigned = " ".join(f"{key}={shlex.quote(value)}" for key, value in (env or {}).items())
    echo("$ " + (assigned + " " if assigned else "") + shlex.join(command))
    log.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "AXOLOTL_DO_NOT_TRACK": "1", "WANDB_MODE": os.environ.get("WANDB_MODE", "disabled"),
           **(env or {})}
    with open(log, "wb") as handle:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
        try:
            # raw chunks, not lines, so progress bars that redraw with \r show as they move
            while chunk := os.read(process.stdout.fileno(), 65536):
                handle.write(chunk)
                sys.stderr.write(chunk.decode("utf-8", errors="replace"))
                sys.stderr.flush()
        finally:
            process.wait()
    if process.returncode != 0:
        tail = "\n".join(log.read_text(encoding="utf-8", errors="replace").splitlines()[-20:])
        raise ToolError(f"{command[0]} failed (exit {process.returncode}); log: {log}\n{tail}")


def train_environment(needed: int, planned: dict[str, str], echo) -> dict[str, str]:
    """The GPUs the train command runs on: the ready config's count, checked against this machine.

    A user's own CUDA_VISIBLE_DEVICES is kept when it names exactly that many GPUs (a scheduler's
    choice); naming another number is refused, as is a machine with fewer GPUs than the config needs.
    """
    from .doctor import visible_gpus

    if not needed:
        return {**planned, "CUDA_VISIBLE_DEVICES": ""}  # a CPU config: no GPU, even where there is one
    chosen = os.environ.get("CUDA_VISIBLE_DEVICES")
    if chosen is not None and chosen.strip():
        named = [d for d in chosen.split(",") if d.strip()]
        if len(named) != needed:
            raise ConfigError(f"CUDA_VISIBLE_DEVICES={chosen} names {len(named)} GPUs but the ready config is written for "
                              f"{needed}: rebuild it with `lema build --gpus {len(named)}` (the batch stays the same) or "
                              f"unset CUDA_VISIBLE_DEVICES")
        planned = {**planned, "CUDA_VISIBLE_DEVICES": chosen}
    gpus = visible_gpus(ignore_visible_devices=chosen is None)
    if len(gpus) < needed:
        raise ConfigError(f"the ready config trains on {needed} GPU{'s' if needed > 1 else ''} but this machine shows "
                          f"{len(gpus)}: rebuild it with `lema build --gpus {len(gpus)}`" if gpus else
                          f"the ready config trains on {needed} GPU{'s' if needed > 1 else ''} and this machine shows "
                          "none (nvidia-smi and torch find no CUDA device)")
    if len(gpus) > needed and chosen is None:
        echo(f"note: {len(gpus)} GPUs visible, the ready config uses {needed} (GPUs 0-{needed - 1}); "
             f"`lema build --gpus {len(gpus)}` lays the same batch out on all of them")
    return planned


def train(recipe: Recipe, out: Path, report, echo) -> None:
    """Train the LeMa mix with the command its build printed, unless this very data and config
    were trained already."""
    info = json.loads((out / "data" / "lema" / "dataset_info.json").read_text(encoding="utf-8"))
    adapter = trained_adapter(out)
    if is_trained(adapter):
        report.add("adapter", f"{shown(adapter)} (already trained on these files with this config)")
        return
    planned = info["train_command"]
    ready = info["axolotl_config"]
    per_node = ready["gpus"] // ready.get("nodes", 1)
    env = {**info.get("environment", {}), **train_environment(per_node, planned["env"], echo)}
    argv = [tool(planned["argv"][0]), *planned["argv"][1:]]
    run_logged(argv, out / "train" / "train.log", echo, env)
    report.add("adapter", shown(adapter))


def eval_command(recipe: Recipe, out: Path) -> list[str]:
    """The lm_eval command line for the recipe's tasks on the trained adapter (or the base model).
    The tasks read $LEMA_DATA_DIR themselves, as every lema command does."""
    model = base_model_path(recipe.train.base_model) if recipe.train and recipe.train.base_model else None
    if model is None and train_config(recipe, out).exists():
        model = (yaml.safe_load(train_config(recipe, out).read_text(encoding="utf-8")) or {}).get("base_model")
    model_args = f"pretrained={model}"
    adapter = trained_adapter(out)
    if is_trained(adapter):
        model_args += f",peft={adapter}"
    command = [
        tool("lm_eval"), "run", "--model", "hf", "--model_args", model_args,
        "--include_path", str(LM_EVAL_TASKS), "--tasks", ",".join(recipe.eval.tasks),
        "--gen_kwargs", f"max_gen_toks={recipe.eval.max_gen_toks}",
        "--output_path", str(out / "eval"), "--log_samples", "--batch_size", str(recipe.eval.batch_size),
    ]
    if recipe.eval.limit:
        command += ["--limit", str(recipe.eval.limit)]
    if recipe.export.format == "chat_template":  # evaluate the way the model was trained
        command += ["--apply_chat_template"]
    return command


def score_line(metrics: dict) -> str | None:
    """One summary row: the paper-comparable score first, then the robust views."""
    scores = {k.split(",")[0]: v for k, v in metrics.items() if k.split(",")[0] in METRICS}
    if not scores:
        return None
    parts = []
    for metric in METRICS:
        if metric in scores:
            note = " (paper-comparable: the official LeMa scoring)" if metric == PAPER_METRIC else ""
            parts.append(f"{metric} {scores[metric]:.3f}{note}")
    return ", ".join(parts) + ("; strict_match and exact_match are the robust views" if PAPER_METRIC in scores else "")


def evaluate(recipe: Recipe, out: Path, report, echo) -> None:
    run_logged(eval_command(recipe, out), out / "eval" / "eval.log", echo)
    for result in sorted((out / "eval").rglob("results_*.json"))[-1:]:
        scores = json.loads(result.read_text(encoding="utf-8"))["results"]
        for task, metrics in scores.items():
            line = score_line(metrics)
            if line:
                report.add(f"eval {task}", line)


def next_commands(recipe: Recipe, out: Path) -> list[str]:
    """Each mix's train and eval commands, as its ready config's header has them; the environment
    they need is exported once, first."""
    lines: list[str] = []
    exported = []
    for mix in recipe.export.mixes:
        info = json.loads((out / "data" / mix / "dataset_info.json").read_text(encoding="utf-8"))
        if "next_commands" in info:
            commands = info["next_commands"]
            if commands and commands[0].startswith("export "):
                if commands[0] not in exported:
                    exported.append(commands[0])
                commands = commands[1:]
            lines += [f"# {mix}", *commands]
    if not lines:
        return [f"# no axolotl config named (export.axolotl_config or train.config); build one with "
                f"`lema build --axolotl-config NAME` from {out / 'data'}"]
    return exported + lines

"""The recipe's local steps after the data: fine-tune with axolotl, score with lm-eval.

`lema run` hands the built LeMa mix to `axolotl train` (through its ready config, the same file the
run summary tells the user to run) and the result to `lm_eval` with the lema tasks; both run as
child processes of this environment, their output shown live and kept in a log. The commands
every mix prints after `Next:` come from its `dataset_info.json`, written by the build.
"""
from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

from .errors import ConfigError, ToolError
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
    """Where the ready config of the LeMa mix puts the adapter (its `output_dir`)."""
    return out / "data" / "lema" / "adapter"


def run_logged(command: list[str], log: Path, echo) -> None:
    """Run a tool (axolotl, lm_eval) with its output shown live on stderr and kept in `log`."""
    echo("$ " + shlex.join(command))
    log.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "AXOLOTL_DO_NOT_TRACK": "1", "WANDB_MODE": os.environ.get("WANDB_MODE", "disabled")}
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


def train(recipe: Recipe, out: Path, report, echo) -> None:
    adapter = trained_adapter(out)
    if (adapter / "adapter_config.json").exists():
        report.add("adapter", f"{adapter} (already trained)")
        return
    config = train_config(recipe, out)
    run_logged([tool("axolotl"), "train", str(config), "--launcher", "python"], out / "train" / "train.log", echo)
    report.add("adapter", str(adapter))


def eval_command(recipe: Recipe, out: Path) -> list[str]:
    """The lm_eval command line for the recipe's tasks on the trained adapter (or the base model)."""
    model = base_model_path(recipe.train.base_model) if recipe.train and recipe.train.base_model else None
    model_args = f"pretrained={model}"
    adapter = trained_adapter(out)
    if (adapter / "adapter_config.json").exists():
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
    if os.environ.get("LEMA_DATA_DIR"):  # the tasks read local files only when told to
        command += ["--metadata", json.dumps({"data_dir": os.environ["LEMA_DATA_DIR"]})]
    return command


def evaluate(recipe: Recipe, out: Path, report, echo) -> None:
    run_logged(eval_command(recipe, out), out / "eval" / "eval.log", echo)
    for result in sorted((out / "eval").rglob("results_*.json"))[-1:]:
        scores = json.loads(result.read_text(encoding="utf-8"))["results"]
        for task, metrics in scores.items():
            shown = {k.split(",")[0]: v for k, v in metrics.items() if k.split(",")[0] in ("exact_match", "strict_match")}
            if "strict_match" in shown:
                report.add(f"eval {task}", f"strict_match {shown['strict_match']:.3f} (paper-comparable), "
                                           f"exact_match {shown.get('exact_match', 0):.3f} (flexible)")


def next_commands(recipe: Recipe, out: Path) -> list[str]:
    """Each mix's train and eval commands, as its ready config's header has them."""
    lines = []
    for mix in recipe.export.mixes:
        info = json.loads((out / "data" / mix / "dataset_info.json").read_text(encoding="utf-8"))
        if "next_commands" in info:
            lines += [f"# {mix}", *info["next_commands"]]
    if not lines:
        lines = [f"# no axolotl config named (export.axolotl_config or train.config); build one with "
                 f"`lema build --axolotl-config NAME` from {out / 'data'}"]
    return lines

"""Every `lema ...` command line in the README names real commands and options.

Each line is parsed by the real click command (types, choices and required options included),
so a renamed option or a typo in the docs fails here. Running them is the job of the stage tests
and `make demo`.
"""
from __future__ import annotations

import re
import shlex
from pathlib import Path

import click
import pytest

from lema_plugin.cli import main

README = Path(__file__).resolve().parent.parent / "README.md"


def readme_commands() -> list[str]:
    blocks = re.findall(r"```bash\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)
    lines = []
    for block in blocks:
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split("  #", 1)[0].strip()
            if line.startswith("lema "):
                lines.append(line)
    return lines


def test_readme_shows_the_stage_commands():
    names = {shlex.split(line)[1] for line in readme_commands()}
    assert {"sample", "correct", "cot", "evolve", "build", "grade", "run"} <= names


@pytest.mark.parametrize("line", readme_commands())
def test_readme_command_parses(line, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # options that must name existing files get empty stand-ins
    args = shlex.split(line)[1:]
    command = main.get_command(click.Context(main), args[0])
    assert command is not None, f"unknown command in README: {line}"
    for value in args[1:]:
        if value.endswith((".jsonl", ".yaml")) and not value.startswith("-"):
            Path(value).parent.mkdir(parents=True, exist_ok=True)
            Path(value).touch()
    with command.make_context(args[0], args[1:]) as ctx:  # raises on unknown or invalid options
        assert ctx.params


def readme_lines(program: str, with_env: bool = False) -> list[str]:
    """Lines of the README's bash blocks that run `program`, environment settings before it
    (`CUDA_VISIBLE_DEVICES=0 axolotl train ...`) removed unless `with_env`."""
    blocks = re.findall(r"```bash\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)
    lines = []
    for block in blocks:
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split("  #", 1)[0].strip()
            bare = re.sub(r"^([A-Z_]+=\S*\s+)+", "", line)
            if bare.startswith(f"{program} "):
                lines.append(line if with_env else bare)
    return lines


def test_readme_lm_eval_commands_use_real_model_arguments():
    from test_configs import check_lm_eval_command

    lines = readme_lines("lm_eval")
    assert any("--model vllm" in line for line in lines) and any("--model hf" in line for line in lines)
    for line in lines:
        check_lm_eval_command(line)


def test_readme_trains_and_evaluates_the_configs_its_commands_write(monkeypatch):
    """Every `axolotl train|merge-lora X` in the README names a config that a command before it writes."""
    from lema_plugin.recipe import load_recipe

    for name in ("LEMA_GEN_URL_7B", "LEMA_GEN_URL_13B", "LEMA_GEN_URL_70B"):  # as step 2 exports them
        monkeypatch.setenv(name, "http://gpu:8000/v1")
    monkeypatch.delenv("LEMA_OUT", raising=False)
    written = set()
    for line in readme_lines("lema"):
        args = shlex.split(line)
        if args[1] == "build" and "--axolotl-config" in args:
            written.add(args[args.index("--out") + 1] + "/axolotl.yml")
        if args[1] == "run" and "--check" not in args and args[2] != "demo":
            recipe = load_recipe(args[2])
            written |= {f"runs/{args[2]}/data/{mix}/axolotl.yml" for mix in recipe.export.mixes}
            assert recipe.export.axolotl_config
    used = [shlex.split(line) for line in readme_lines("axolotl")]
    assert {args[1] for args in used} == {"train", "merge-lora"}
    for args in used:
        assert args[2] in written, args
        if args[1] == "merge-lora":
            assert args[3:] == ["--merge-method", "legacy"], args  # the bf16 merge, as the paper merged


def test_readme_trains_on_exactly_the_gpus_each_ready_config_is_written_for(monkeypatch):
    """Each `axolotl train` line starts as many processes, on as many GPUs, as the `lema build`
    that wrote its config laid the batch out for (--gpus, else the base config's own layout)."""
    from lema_plugin.export.axolotl_config import find_base_config, gpu_count

    gpus = {}
    for line in readme_lines("lema"):
        args = shlex.split(line)
        if args[1] == "build" and "--axolotl-config" in args:
            base = find_base_config(args[args.index("--axolotl-config") + 1])
            count = int(args[args.index("--gpus") + 1]) if "--gpus" in args else gpu_count(base)
            gpus[args[args.index("--out") + 1] + "/axolotl.yml"] = count
    trains = [line for line in readme_lines("axolotl", with_env=True) if " axolotl train " in f" {line}"]
    assert trains
    for line in trains:
        words = shlex.split(line)
        config = words[words.index("train") + 1]
        count = gpus[config]
        if count == 0:  # a CPU config: one plain process, no GPU named
            assert words[-2:] == ["--launcher", "python"] and not any(w.startswith("CUDA_VISIBLE_DEVICES=") for w in words), line
            continue
        devices = next(w for w in words if w.startswith("CUDA_VISIBLE_DEVICES=")).split("=", 1)[1].split(",")
        assert len(devices) == count and words[-2:] == ["--nproc_per_node", str(count)], line

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
        if value.endswith((".jsonl", ".yaml")) and "/" in value:
            Path(value).parent.mkdir(parents=True, exist_ok=True)
            Path(value).touch()
    with command.make_context(args[0], args[1:]) as ctx:  # raises on unknown or invalid options
        assert ctx.params

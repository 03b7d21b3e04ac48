"""The `lema` command group.

Each subcommand lives in its own module under `lema_plugin.cli` and is imported only when it is
invoked (or listed by `lema --help`), so a command's heavy imports (torch, datasets, lm_eval) never
slow down another command. Commands are listed in pipeline order, each with its whole one-line
description, and every command takes `-v` (debug log) and `-q` (no progress bars) wherever they
are typed.
"""
from .group import TOOLS, command_names, main

__all__ = ["COMMANDS", "TOOLS", "command_names", "main"]


def __getattr__(name: str):
    if name == "COMMANDS":  # the names of every command, the stages' included
        return command_names()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

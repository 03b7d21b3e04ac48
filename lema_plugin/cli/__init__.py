"""The `lema` command group.

Each subcommand lives in its own module under `lema_plugin.cli` and is imported only when it is
invoked, so `lema --help` stays fast and a command's heavy imports (torch, datasets, lm_eval)
never slow down another command.
"""
from __future__ import annotations

import importlib
import logging

import click

# command name -> "module:attribute" (module relative to lema_plugin.cli)
COMMANDS = {
    "grade": "grade:grade",
    "serve": "serve:serve",
    "sample": "sample:sample",
    "import": "import_paths:import_paths",
    "correct": "correct:correct",
    "cot": "cot:cot",
    "evolve": "evolve:evolve",
    "first-error": "first_error:first_error",
    "build": "build:build",
    "run": "run:run",
    "tasks-path": "tasks_path:tasks_path",
    "report": "report:report",
    "compare": "compare:compare",
}


class LazyGroup(click.Group):
    """A click group that imports a subcommand's module on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        target = COMMANDS.get(name)
        if target is None:
            return None
        module_name, attr = target.split(":")
        module = importlib.import_module(f"{__name__}.{module_name}")
        return getattr(module, attr)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", is_flag=True, help="Log debug details to stderr.")
@click.version_option(package_name="lema-plugin")
def main(verbose: bool) -> None:
    """Build Learning-from-Mistakes (LeMa) datasets for axolotl and score them with lm-eval.

    Typical order: sample -> correct -> cot -> (evolve) -> (first-error) -> build, or all at once with `lema run`.

    \b
    Exit status of every command:
      0    everything asked for is done
      1    bad input, options, recipe, path or endpoint (one line names what to fix)
      2    bad command line
      3    --max-cost reached (what was answered is kept; run again with more to continue)
      4    nothing produced (no problems, mistakes, corrections or examples)
      5    some requests finally failed (what arrived is kept; run again to retry the rest)
      75   requests wait in Batch API batches (run the same command again later to collect)
      130  interrupted (what was written is kept; run again to resume)
    """
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )

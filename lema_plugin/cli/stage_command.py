"""`lema NAME` for every registered stage, generated from the stage's declaration.

The options come from what the stage declares, in the same order for every stage: its input
(the problem options `--dataset/--split/--data-file/--limit`, one file option such as
`--mistakes PATH` with `--limit`, or positional FILES), its endpoint roles (`--generator SPEC`,
...), its settings model (one option per field, see `options.settings_options`), `--out` and
`--fresh`, and the client's options (`--concurrency`, `--max-cost`, `--estimate`, ...). The command
reads the input, opens the endpoints, makes one library call (`stage_run.run_stage`), prints the
summary and maps the outcome to the exit status. A stage a plugin registers gets its command
the same way.
"""
from __future__ import annotations

import inspect
from pathlib import Path

import click

from lema_plugin.errors import NothingProduced
from lema_plugin.problems import ProblemSource
from lema_plugin.stage import Stage
from lema_plugin.summaries import top_reasons

from .common import (SPEC_EPILOG, check_outcome, client_options, fresh_option, friendly_errors, make_client, out_option,
                     print_outcome, run_async, start_fresh)
from .options import old_spellings, settings_options

_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)


def role_param(role) -> str:
    return role.option.lstrip("-").replace("-", "_") + "_specs"


def stage_command(stage: Stage) -> click.Command:
    """The click command of `stage`."""

    def invoke(out_dir: Path, fresh: bool, settings, client_settings, cache_dir, no_cache, quiet, max_cost, estimate,
               **given):
        items, where = _read_input(stage, given)
        specs = {role.name: _specs(given.pop(role_param(role))) for role in stage.roles}
        start_fresh(out_dir, fresh and not estimate)  # a preview moves nothing
        client = make_client(out_dir, client_settings, cache_dir, no_cache, quiet, max_cost, estimate)
        from lema_plugin.stage_run import open_stage, run_stage

        with open_stage(stage, specs, settings, start=not estimate) as (endpoints, settings):  # a preview starts no server
            summary = run_async(run_stage(stage, items, endpoints, client, out_dir, settings), client)
        print_outcome(client, summary)
        if client.estimate is None:
            check_outcome(summary.produced, stage.product_name, failed=getattr(summary, "failed", 0),
                          judge_pending=getattr(summary, "judge_pending", 0), reasons=top_reasons(summary))

    command = friendly_errors(invoke)
    command = client_options(command)
    decisive = tuple(_declared(stage, name) for name in stage.settings.decisive_fields())
    command = fresh_option(command, decisive=decisive)
    command = out_option(command)
    command = settings_options(stage.settings, spellings=stage.option_spellings)(command)
    if stage.old_spellings:
        command = old_spellings(**stage.old_spellings)(command)
    for role in reversed(stage.roles):
        command = click.option(role.option, role_param(role), multiple=role.many, metavar="SPEC", help=role.help,
                               required=role.default is None,
                               show_default=role.default_text if role.default is not None else False)(command)
    command = _input_options(stage)(command)
    help_text = inspect.cleandoc(stage.help)
    if stage.examples:
        help_text += "\n\n\b\nExample:\n" + stage.examples
    takes_specs = bool(stage.roles) or "judge" in stage.settings.model_fields
    return click.command(stage.name, help=help_text, epilog=SPEC_EPILOG if takes_specs else None)(command)


def _specs(value) -> list[str]:
    """A role option's value as a list of specs (a repeatable option gives a tuple)."""
    return [value] if isinstance(value, str) else list(value or ())


def _declared(stage: Stage, field: str) -> str:
    """The option a settings field is typed as on the command line."""
    spelling = stage.option_spellings.get(field)
    return spelling[0] if spelling else "--" + field.replace("_", "-")


def _input_options(stage: Stage):
    source = stage.input

    def decorate(func):
        if source.options is not None:
            func = settings_options(source.options, into="input_options")(func)
        if source.from_options:
            return func
        if source.positional:
            return click.argument("files", nargs=-1, required=True, type=_FILE)(func)
        if source.limit_help:
            func = click.option("--limit", type=click.IntRange(1), help=source.limit_help, show_default="all")(func)
        return click.option(source.option, "input_path", required=True, type=_FILE, help=source.help)(func)

    return decorate


def _read_input(stage: Stage, given: dict):
    """The stage's input as the command line names it, read (and checked) before any request."""
    source = stage.input
    options = given.pop("input_options", None)
    verb = stage.verb or stage.name
    if source.from_options:
        items = source.load(options) if source.load is not None else options.load()
        if not items:
            hint = " (check --dataset, --split, --data-file)" if isinstance(options, ProblemSource) else ""
            raise NothingProduced(f"no {source.artifact} to {verb}{hint}")
        return items, None
    where = given.pop("files", None) if source.positional else given.pop("input_path")
    limit = given.pop("limit", None)
    items = source.load(where, limit=limit, options=options)
    if items is None or (hasattr(items, "__len__") and not len(items)):
        raise NothingProduced(f"{where}: no {source.artifact} to {verb}")
    return items, where

"""`lema run RECIPE`: the whole experiment from one YAML file."""
from __future__ import annotations

from pathlib import Path

import click

from lema_plugin.cli.common import friendly_errors


@click.command("run")
@click.argument("recipe")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), help="Run folder (default: the recipe's `out`).")
@click.option("--limit", type=click.IntRange(1), help="Override the recipe's question limit.")
@click.option("--no-train", is_flag=True, help="Skip the recipe's train and eval steps.")
@click.option("--check", is_flag=True, help="Validate the recipe and print it, then stop.")
@friendly_errors
def run(recipe: str, out: Path | None, limit: int | None, no_train: bool, check: bool) -> None:
    """Run every stage of RECIPE (a YAML file, or a built-in: demo, gsm8k-paper, math-paper).

    sample -> correct -> (evolve) -> cot -> build -> (train -> eval). The recipe is validated
    before anything runs. Every stage resumes: run the same command again after a crash or
    Ctrl-C and nothing already paid for is asked again.
    """
    from lema_plugin.pipeline import run_recipe
    from lema_plugin.recipe import load_recipe

    config = load_recipe(recipe)
    if limit is not None:
        config = config.model_copy(update={"limit": limit})
    if no_train:
        config = config.model_copy(update={"train": None, "eval": None})
    if check:
        click.echo(config.model_dump_json(indent=2, exclude_none=True))
        return
    report = run_recipe(config, out, echo=lambda line: click.echo(line, err=True))
    click.echo("")
    click.echo(f"LeMa run summary ({report.out})")
    click.echo(report.table())
    click.echo("")
    click.echo("Next:")
    for line in report.next_commands:
        click.echo(f"  {line}")
    click.echo("")
    click.echo(f"Report: {report.html}")

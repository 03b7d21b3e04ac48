"""`lema run RECIPE`: the whole experiment from one YAML file."""
from __future__ import annotations

from pathlib import Path

import click

from lema_plugin.cli.common import DOLLARS, friendly_errors, start_fresh
from lema_plugin.errors import ConfigError


@click.command("run")
@click.argument("recipe")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), help="Run folder.", show_default="the recipe's `out`")
@click.option("--limit", type=click.IntRange(1), help="Override the recipe's question limit.", show_default="the recipe's")
@click.option("--no-train", is_flag=True, help="Skip the recipe's train and eval steps.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bars.")
@click.option("--check", is_flag=True, help="Validate the recipe, print it as commented YAML with the requests each "
              "stage will send, and stop (nothing is run or paid for).")
@click.option("--max-cost", type=DOLLARS, metavar="USD", show_default="the recipe's max_cost",
              help="Hard budget of the run folder, over this run and every earlier one into it (overrides the "
              "recipe's max_cost); run again with a larger one to continue.")
@click.option("--estimate", is_flag=True,
              help="Send nothing and write nothing: print the requests, tokens and dollars (online and batch) the run "
              "would spend.")
@click.option("--fresh", is_flag=True, help="Start the run folder over: move its outputs to OUT/replaced-<time>/ first "
              "(the response cache stays). Needed to rerun into a folder with other sampling settings.")
@friendly_errors
def run(recipe: str, out: Path | None, limit: int | None, no_train: bool, quiet: bool, check: bool, max_cost: float | None,
        estimate: bool, fresh: bool) -> None:
    """Run every stage of RECIPE (a YAML file, or a built-in: demo, gsm8k-paper, math-paper).

    sample -> correct -> (evolve) -> cot -> build -> (train -> eval). The recipe is validated
    before anything runs. Every stage resumes: run the same command again after a crash or
    Ctrl-C and nothing already paid for is asked again. With a batch-mode endpoint the run stops
    at that stage once its batches are submitted (exit status 75): run the same command again to
    collect them and go on. A run stopped by --max-cost exits with status 3.
    """
    from lema_plugin.pipeline import run_recipe
    from lema_plugin.recipe import load_recipe

    config = load_recipe(recipe)
    if limit is not None:
        config = config.model_copy(update={"limit": limit})
    if max_cost is not None:
        config = config.model_copy(update={"max_cost": max_cost})
    if no_train:
        config = config.model_copy(update={"train": None, "eval": None})
    if check:
        from lema_plugin.recipe_check import check_text

        click.echo(check_text(config, _problems(config)), nl=False)
        from lema_plugin import keys
        from lema_plugin.pipeline import endpoints_of, steps

        lacking = keys.missing(endpoints_of(steps(config, Path(out or config.out))))
        if lacking:  # every missing key at once, before a run would pay for the stages before it
            raise ConfigError(keys.missing_line(lacking, f"{recipe}: "))
        return
    if not estimate:
        start_fresh(Path(out or config.out), fresh, everything=True)
    from lema_plugin.errors import NothingProduced

    try:
        report = run_recipe(config, out, echo=lambda line: click.echo(line, err=True), estimate=estimate,
                            progress=not (quiet or click.get_current_context().find_root().meta.get("lema.quiet")))
    except NothingProduced as stop:
        if stop.report is not None:  # the run got far enough to have a summary: show it, then stop
            _summary(stop.report)
        raise
    if estimate:
        click.echo(report.estimate.table())
        return
    _summary(report)
    click.echo("")
    click.echo("Next:")
    for line in report.next_commands:
        click.echo(f"  {line}")
    click.echo("")
    click.echo(f"Report: {report.html}")


def _summary(report) -> None:
    click.echo("")
    click.echo(f"LeMa run summary ({report.out})")
    click.echo(report.table())


def _problems(config) -> list | None:
    """The problems the recipe will use, or None when they cannot be loaded here."""
    from lema_plugin.recipe_check import _load_problems

    try:
        return _load_problems(config)
    except Exception:  # offline without the data: the plan is shown without counts
        return None

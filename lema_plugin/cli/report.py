"""`lema report RUN_DIR`: one self-contained HTML page with the run's funnel, plots and records."""
from __future__ import annotations

from pathlib import Path

import click

from lema_plugin.cli.common import friendly_errors
from lema_plugin.grading.official import METRICS, PAPER_METRIC
from lema_plugin.cli.options import old_spellings


@click.command("report")
@old_spellings(html=("--out",))
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--html", type=click.Path(dir_okay=False, path_type=Path), help="HTML page to write.",
              show_default="RUN_DIR/report.html")
@click.option("--compare", "compare_pair", nargs=2, type=click.Path(path_type=Path), show_default="none",
              help="Two lm-eval --log_samples outputs (files or folders) to compare in the report, A then B.")
@click.option("--metric", type=click.Choice(METRICS), default=PAPER_METRIC, show_default=True,
              help="Score compared by --compare: official_match follows the official LeMa scoring (the paper-comparable one); "
              "strict_match and exact_match are the robust grader's views.")
@friendly_errors
def report(run_dir: Path, html: Path | None, compare_pair: tuple[Path, Path] | None, metric: str) -> None:
    """Write an HTML report of RUN_DIR: a `lema run` folder or the --out of any single stage.

    The page opens offline: the funnel from problems to exported corrections with the reasons
    records were dropped, generator accuracy, mistakes per question, where the first incorrect
    step falls, correction success by MATH level and subject, tokens and cost, lm-eval scores
    when the run evaluated, and a filterable viewer of every mistake and correction.
    """
    from lema_plugin.report import build_report
    from lema_plugin.report.compare import compare

    comparisons = [compare(*compare_pair, metric=metric)] if compare_pair else []
    click.echo(f"report: {build_report(run_dir, html, comparisons)}")

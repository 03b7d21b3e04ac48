"""`lema compare A B`: is one fine-tune's gain over another more than noise?"""
from __future__ import annotations

from pathlib import Path

import click

from lema_plugin.cli.common import friendly_errors
from lema_plugin.grading.official import METRICS, PAPER_METRIC


@click.command("compare")
@click.argument("a", type=click.Path(path_type=Path))
@click.argument("b", type=click.Path(path_type=Path))
@click.option("--metric", type=click.Choice(METRICS), default=PAPER_METRIC, show_default=True,
              help="Per-question score to compare: official_match follows the official LeMa scoring (the paper-comparable one); "
              "strict_match and exact_match are the robust grader's views.")
@click.option("--show", default=10, show_default=True, type=click.IntRange(0), help="Flipped questions to list each way.")
@click.option("--html", type=click.Path(dir_okay=False, path_type=Path), help="Also write the comparison as an HTML page here.",
              show_default="none")
@friendly_errors
def compare(a: Path, b: Path, metric: str, show: int, html: Path | None) -> None:
    """Compare two lm-eval --log_samples outputs of the same task(s), question by question.

    A and B are samples files (samples_<task>_<time>.jsonl) or lm-eval --output_path folders,
    e.g. the LeMa and the CoT-alone fine-tunes. Prints the accuracy difference A - B with a 95%
    paired-bootstrap interval and McNemar's exact p-value, the same by task, MATH level and
    subject, and the questions that flipped each way. `lema report RUN --compare A B` puts the
    same section into a run's report.
    """
    from lema_plugin.report import write_comparison
    from lema_plugin.report.compare import compare as compare_outputs, text

    result = compare_outputs(a, b, metric=metric)
    click.echo(text(result, show=show))
    if html is not None:
        click.echo(f"\nhtml: {write_comparison(result, html)}")

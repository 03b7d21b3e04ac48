"""`lema compare A B`: is one fine-tune's gain over another more than noise?"""
from __future__ import annotations

from pathlib import Path

import click

from lema_plugin.cli.common import friendly_errors
from lema_plugin.errors import ConfigError
from lema_plugin.grading.official import METRICS, PAPER_METRIC
from lema_plugin.tables import format_table


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
    same section into a run's report. Two folders of a stage that can be put side by side (two
    `lema score-corrector` outputs) are shown as one table instead.
    """
    from lema_plugin.report import write_comparison
    from lema_plugin.report.compare import compare as compare_outputs, text

    side_by_side = _stage_folders(a, b)
    if side_by_side is not None:
        if html is not None:
            raise ConfigError("--html: only for lm-eval outputs; two stage folders are compared on the terminal")
        click.echo("\n".join([side_by_side.title, "", format_table(side_by_side.headers, side_by_side.rows)]
                             + (["", side_by_side.note] if side_by_side.note else [])))
        return
    result = compare_outputs(a, b, metric=metric)
    click.echo(text(result, show=show))
    if html is not None:
        click.echo(f"\nhtml: {write_comparison(result, html)}")


def _stage_folders(a: Path, b: Path):
    """The side-by-side view of the first registered stage whose summary both folders hold, if it
    has one (`Stage.compare`); else None."""
    import json

    from lema_plugin import stage as registry
    from lema_plugin.records import RecordError

    def read(path: Path) -> dict:
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise RecordError(path, getattr(exc, "lineno", None), f"not valid JSON ({exc})") from None

    for stage in registry.stages():
        files = [Path(folder) / stage.summary_file for folder in (a, b)]
        if all(f.is_file() for f in files):
            section = stage.compare(read(files[0]), read(files[1]), str(a), str(b))
            if section is not None:
                return section
    return None

"""`lema grade`: grade a JSONL file of model outputs with the project's one grader."""
from __future__ import annotations

from pathlib import Path

import click

from lema_plugin.cli.common import DOLLARS, SPEC_EPILOG, friendly_errors, make_client
from lema_plugin.cli.options import old_spellings
from lema_plugin.errors import NothingProduced, RequestsFailed
from lema_plugin.fields import GOLD_FIELDS, TEXT_FIELDS
from lema_plugin.settings import DATASETS
from lema_plugin.summaries import timeout_hint
from lema_plugin.tables import format_table


def _breakdown(title: str, table: dict[str, list[int]]) -> str:
    rows = [(name, graded, correct, correct / graded) for name, (correct, graded) in sorted(table.items())]
    return f"{title}:\n" + format_table([title, "graded", "correct", "accuracy"], rows)


@click.command(epilog=SPEC_EPILOG)
@old_spellings(text_field=("--prediction-field",))
@click.option("--dataset", type=click.Choice(DATASETS),
              help="Grading rules.", show_default="each record's own `dataset` (every file lema-plugin writes has one), else gsm8k")
@click.option("--predictions", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="JSONL of model outputs: any record file lema-plugin writes (paths, mistakes, corrections, cot, ...), "
              "lm-eval --log_samples output, LeMa inference output, or your own records (detected by their fields).")
@click.option("--text-field", help="Field holding the model text.", show_default="the first of " + ", ".join(TEXT_FIELDS))
@click.option("--gold-field",
              help="Field holding the gold answer (a GSM8K rationale ending in '#### N' or a MATH solution with \\boxed{} is fine).",
              show_default="the first of " + ", ".join(GOLD_FIELDS))
@click.option("--gold-file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="JSONL with the gold answers line by line, for LeMa inference output (which holds only `samples`).",
              show_default="none")
@click.option("--out", "out_dir", type=click.Path(path_type=Path),
              help="Run folder: write OUT/graded.jsonl (each input record plus `extracted`, `correct` and `decided_by`: "
              "rule, symbolic or judge) and OUT/grade_summary.json.", show_default="print only")
@click.option("--judge", "judge_spec", metavar="SPEC",
              help="Ask this LLM endpoint (SPEC below) about the answers the rules cannot decide (no answer found, "
                   "free-form text, equations written differently).", show_default="none: the rules decide alone")
@click.option("--cache-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Judge response cache.", show_default="OUT/.cache, else ~/.cache/lema/responses")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar for the judge.")
@click.option("--max-cost", type=DOLLARS, metavar="USD", show_default="no limit",
              help="Hard budget for the judge, over this command and every earlier one into OUT: stop cleanly "
              "before the worst case of the next judge request would cross it (a judge priced with ;price=).")
@click.option("--estimate", is_flag=True,
              help="Send nothing and write nothing: print the judge requests, tokens and dollars this command would spend.")
@friendly_errors
def grade(dataset, predictions, text_field, gold_field, gold_file, out_dir, judge_spec, cache_dir, quiet, max_cost,
          estimate):
    """Extract each final answer, compare it with the gold answer and print the accuracy.

    MATH results are also broken down per level and per subject when the records carry them.
    Lines that are not JSON or lack a field are reported with their line numbers; the rest are
    still graded. With --judge, only what the rules cannot decide is sent to the judge; its
    replies are cached, so running the command again pays for nothing twice.
    """
    from lema_plugin.grading.files import grade_file

    out = None
    if out_dir is not None and out_dir.suffix == ".jsonl" and not out_dir.is_dir():  # the last release's --out FILE
        click.echo(f"note: --out is a run folder now; writing {out_dir} as before (this goes in the next release)", err=True)
        out, out_dir = out_dir, out_dir.parent
    elif out_dir is not None:
        out = out_dir / "graded.jsonl"
    if estimate:  # a preview: the judge's questions priced, nothing sent, no server started, nothing written
        from lema_plugin.llm.endpoints import parse_endpoint
        from lema_plugin.settings import ClientSettings

        client = make_client(out_dir, ClientSettings(), cache_dir, quiet=True, max_cost=max_cost, estimate=True)
        judge = parse_endpoint(judge_spec, default_name="judge") if judge_spec else None
        grade_file(predictions, dataset, text_field, gold_field, gold_file=gold_file, judge=judge, client=client)
        if judge is None:
            client.estimate.notes.append("no --judge: the rules grade alone and nothing is sent")
        click.echo(client.estimate.table())
        return
    if judge_spec:
        from lema_plugin.llm.endpoints import open_endpoints
        from lema_plugin.settings import ClientSettings

        client = make_client(out_dir, ClientSettings(), cache_dir, quiet=quiet, max_cost=max_cost)
        with open_endpoints([judge_spec]) as (judge,):
            report = grade_file(predictions, dataset, text_field, gold_field, out=out, gold_file=gold_file,
                                judge=judge, client=client)
    else:
        client = None
        report = grade_file(predictions, dataset, text_field, gold_field, out=out, gold_file=gold_file)
    layouts = ", ".join(f"{name} {count}" for name, count in sorted(report.formats.items())) or "none"
    click.echo(f"graded {report.graded} ({layouts}); answer found in {report.extracted}")
    decided = ", ".join(f"{name} {report.decided_by[name]}" for name in ("rule", "symbolic", "judge") if report.decided_by[name])
    click.echo(f"decided by {decided or 'nothing'}" + (f"; {report.unsettled} undecided (counted wrong)" if report.unsettled else ""))
    if client is not None:
        for line in client.usage_lines():
            click.echo(f"judge {line}")
    if report.repeated:
        click.echo(f"{report.repeated} repeated lm-eval row(s) (one per filter) counted once")
    click.echo(f"accuracy {report.accuracy:.4f} ({report.correct}/{report.graded})")
    if set(report.datasets) != {"gsm8k"}:
        if report.by_level:
            click.echo(_breakdown("level", report.by_level))
        if report.by_subject:
            click.echo(_breakdown("subject", report.by_subject))
    if report.bad_lines:
        click.echo(f"{len(report.bad_lines)} bad line(s) skipped in {predictions}:", err=True)
        for lineno, message in report.bad_lines[:20]:
            click.echo(f"  {predictions}:{lineno}: {message}", err=True)
        if len(report.bad_lines) > 20:
            click.echo(f"  ... and {len(report.bad_lines) - 20} more", err=True)
    if out is not None:
        from lema_plugin.summaries import write_summary

        write_summary(Path(out_dir) / "grade_summary.json", report)
        click.echo(f"wrote {out}")
    if report.graded == 0:  # an empty or all-bad file: exit 4, so `lema grade ... && ...` stops
        raise NothingProduced(f"{predictions}: no line could be graded")
    failed = sum(report.judge_failures.values())
    if failed:  # those lines keep the rules' verdict (counted wrong when undecided): say why, exit 5
        reasons = "; ".join(f"{count}x {reason}" for reason, count in report.judge_failures.most_common(3))
        reasons += timeout_hint(report.judge_failures)
        raise RequestsFailed(f"judge: {failed} request{'s' if failed != 1 else ''} finally failed; top reasons: {reasons}; "
                             "run the same command again to ask the judge again")

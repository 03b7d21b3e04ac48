"""`lema import`: turn existing model outputs into graded paths and mistakes."""
from __future__ import annotations

from pathlib import Path

import click

from lema_plugin.settings import JudgeSettings

from .common import check_outcome, friendly_errors, open_stage_endpoints, out_option
from .options import settings_options


@click.command("import")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["auto", "lm-eval", "jsonl", "gsm8k-solutions"]), default="auto", show_default=True,
              help="Input format; auto looks at the first line.")
@click.option("--dataset", type=click.Choice(["gsm8k", "math", "math500"]), default="gsm8k", show_default=True, help="Grading rules, and where known problems come from.")
@click.option("--split", default="train", show_default=True, help="Split of the known problems the questions are matched against.")
@click.option("--data-file", type=click.Path(dir_okay=False, exists=True, path_type=Path), help="Known problems from this file instead of the hub.")
@click.option("--gold-field", help="Read the gold answer from this field of the file (dotted for nested fields) instead of matching known problems.")
@click.option("--question-field", help="Field holding the question (default: question, or problem for MATH records).")
@click.option("--text-field", default="solution", show_default=True, help="jsonl format: field holding the solution text (or a list of texts).")
@click.option("--model-field", help="jsonl format: field holding the model name of each line.")
@click.option("--model", help="Model label for the paths (lm-eval default: the folder of the file; jsonl: the file name). "
              "gsm8k-solutions: import only this model's solutions.")
@click.option("--max-mistakes-per-question", type=click.IntRange(0), help="Keep at most N distinct mistakes per question (default: all).")
@click.option("--keep-unfinished", is_flag=True, help="Also keep paths with no extractable answer as mistakes.")
@settings_options(JudgeSettings, into="judging")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar for the judge.")
@out_option
@friendly_errors
def import_paths(files, fmt, dataset, split, data_file, gold_field, question_field, text_field, model_field, model,
                 max_mistakes_per_question, keep_unfinished, judging, quiet, out_dir):
    """Grade solutions from FILES and keep the wrong ones as mistakes.

    Reads lm-eval --log_samples files, GSM8K model-solution files or any JSONL, and writes
    OUT/paths.jsonl, OUT/mistakes.jsonl and OUT/summary.json exactly like `lema sample`.

    \b
    Examples:
      lema import results/my-model/samples_gsm8k_*.jsonl --split train --out runs/mistakes
      lema import example_model_solutions.jsonl --gold-field ground_truth --out runs/gsm8k-solutions
      lema import outputs.jsonl --question-field prompt --text-field output --gold-field gold --out runs/mine
    """
    from lema_plugin.import_paths import ImportOptions, import_paths as run_import
    from lema_plugin.problems import load_problems

    options = ImportOptions(
        dataset=dataset,
        format=fmt,
        model=model,
        question_field=question_field,
        text_field=text_field,
        gold_field=gold_field,
        model_field=model_field,
        max_mistakes_per_question=max_mistakes_per_question,
        keep_unfinished=keep_unfinished,
    )
    problems = None if gold_field else load_problems(dataset, split=split, data_file=data_file)
    if judging.judge is None:
        summary = run_import(files, out_dir, options, problems)
    else:  # the judge's replies are cached in OUT/.cache, so a re-run pays for nothing twice
        from lema_plugin.llm import LLMClient

        client = LLMClient(cache_dir=Path(out_dir) / ".cache", progress=not quiet)
        with open_stage_endpoints([], judging) as (_, judging):
            summary = run_import(files, out_dir, options, problems, judging.judge, client)
        for line in client.usage_lines():
            click.echo(f"judge {line}")
    click.echo(summary.table())
    check_outcome(summary.total["mistakes"], "mistakes")

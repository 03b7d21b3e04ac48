"""`lema import`: turn existing model outputs into graded paths and mistakes."""
from __future__ import annotations

from pathlib import Path

import click

from lema_plugin.fields import GOLD_FIELDS, TEXT_FIELDS
from lema_plugin.settings import JudgeSettings

from .common import check_outcome, friendly_errors, open_stage_endpoints, out_option
from .options import old_spellings, settings_options


@click.command("import")
@old_spellings(model_name=("--model",))
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["auto", "lm-eval", "jsonl", "gsm8k-solutions"]), default="auto", show_default=True,
              help="Input format; auto looks at the first line.")
@click.option("--dataset", type=click.Choice(["gsm8k", "math", "math500"]), help="Grading rules, and where known problems come from.",
              show_default="each line's own `dataset` (lema records and lema lm-eval tasks have one), else gsm8k")
@click.option("--split", default="train", show_default=True,
              help="Split of the known problems that lines without a gold answer are matched against.")
@click.option("--data-file", type=click.Path(dir_okay=False, exists=True, path_type=Path), help="Known problems from this file.", show_default="$LEMA_DATA_DIR, else the hub")
@click.option("--gold-field", help="Field holding the gold answer (dotted for nested fields); a line with none is matched "
              "against the known problems.", show_default="lm-eval's target, else the first of " + ", ".join(GOLD_FIELDS))
@click.option("--question-field", help="Field holding the question.", show_default="question, else problem")
@click.option("--text-field", help="jsonl format: field holding the solution text (or a list of texts).",
              show_default="the first of " + ", ".join(TEXT_FIELDS))
@click.option("--model-field", help="jsonl format: field holding the model name of each line.",
              show_default="model, else corrector, else source_model")
@click.option("--model-name", help="Label for the paths' `model` field. gsm8k-solutions: import only this model's solutions.",
              show_default="--model-field, else lm-eval: the file's folder, jsonl: the file name")
@click.option("--max-mistakes-per-question", type=click.IntRange(0), help="Keep at most N distinct mistakes per question.", show_default="all")
@click.option("--keep-unfinished", is_flag=True, help="Also keep paths with no extractable answer as mistakes.")
@settings_options(JudgeSettings, into="judging")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar for the judge.")
@out_option
@friendly_errors
def import_paths(files, fmt, dataset, split, data_file, gold_field, question_field, text_field, model_field, model_name,
                 max_mistakes_per_question, keep_unfinished, judging, quiet, out_dir):
    """Grade solutions from FILES and keep the wrong ones as mistakes.

    Reads lm-eval --log_samples files (the ones `lema run` writes too), GSM8K model-solution
    files, any record file lema-plugin writes, or any JSONL, and writes OUT/paths.jsonl,
    OUT/mistakes.jsonl (exactly like `lema sample`) and OUT/import_summary.json. Questions from
    the test split get a warning: their mistakes would leak the test set into training.

    \b
    Examples:
      lema import results/my-model/samples_lema_gsm8k_*.jsonl --out runs/mistakes
      lema import example_model_solutions.jsonl --out runs/gsm8k-solutions
      lema import outputs.jsonl --question-field prompt --text-field output --gold-field gold --out runs/mine
    """
    from lema_plugin.import_paths import ImportOptions, import_paths as run_import
    from lema_plugin.problems import load_problems

    options = ImportOptions(
        dataset=dataset,
        format=fmt,
        model=model_name,
        question_field=question_field,
        text_field=text_field,
        gold_field=gold_field,
        model_field=model_field,
        max_mistakes_per_question=max_mistakes_per_question,
        keep_unfinished=keep_unfinished,
    )
    def known():
        return load_problems(dataset or "gsm8k", split=split, data_file=data_file)

    def test_questions():
        if split == "test":
            return [p.question for p in known()]
        questions = []
        for name in ([dataset] if dataset else ["gsm8k", "math"]):
            try:
                questions += [p.question for p in load_problems(name, split="test")]
            except Exception as exc:  # no test split to compare with here: say so, import anyway
                click.echo(f"warning: could not load the {name} test split to check for contamination ({exc})", err=True)
        return questions

    problems = None if gold_field else known
    if judging.judge is None:
        summary = run_import(files, out_dir, options, problems, test_questions=test_questions)
    else:  # the judge's replies are cached in OUT/.cache, so a re-run pays for nothing twice
        from lema_plugin.llm import LLMClient

        client = LLMClient(cache_dir=Path(out_dir) / ".cache", progress=not quiet)
        with open_stage_endpoints([], judging) as (_, judging):
            summary = run_import(files, out_dir, options, problems, judging.judge, client, test_questions=test_questions)
        for line in client.usage_lines():
            click.echo(f"judge {line}")
    click.echo(summary.table())
    if summary.test_questions:
        click.echo(f"warning: {summary.test_questions} of {summary.questions} questions are from the {dataset or 'GSM8K/MATH'} test split: "
                   "training on their mistakes contaminates any test-set score (collect mistakes on the train split)", err=True)
    check_outcome(summary.total["mistakes"], "mistakes")

"""`lema cot`: CoT targets from the datasets' own rationales or by rejection sampling a strong model."""
from __future__ import annotations

from pathlib import Path

import click

from lema_plugin.cli.common import (SPEC_EPILOG, check_outcome, client_options, fresh_option, friendly_errors, make_client,
                                    open_stage_endpoints, out_option, print_outcome, run_async, start_fresh)
from lema_plugin.cli.options import settings_options
from lema_plugin.cot import CotSettings


@click.command(epilog=SPEC_EPILOG)
@click.option("--source", type=click.Choice(["gold", "model"]), default="gold", show_default=True,
              help="gold: the dataset's rationales, rewritten to end 'The answer is X.'. "
              "model: sample rationales from --model and keep the correct ones.")
@click.option("--dataset", type=click.Choice(["gsm8k", "math", "math500"]), default="gsm8k", show_default=True,
              help="Which problems.")
@click.option("--split", default="train", show_default=True, help="Dataset split (CoT targets come from training questions).")
@click.option("--data-file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Local problems (GSM8K/MATH fields or problems.jsonl from `lema evolve`).",
              show_default="$LEMA_DATA_DIR, else the hub")
@click.option("--limit", type=click.IntRange(1), help="Use only the first N problems.", show_default="all")
@click.option("--model", "model_spec", metavar="SPEC",
              help="--source model: the strong model's endpoint (SPEC below).", show_default="$LEMA_STRONG_MODEL; else "
              "the corrector's default: $LEMA_CORRECTOR; gpt-4o when OPENAI_API_KEY is set; else embedded")
@settings_options(CotSettings)
@out_option
@fresh_option
@client_options
@friendly_errors
def cot(source, dataset, split, data_file, limit, model_spec, settings, out_dir, fresh, client_settings, cache_dir,
        no_cache, quiet, max_cost, estimate):
    """Write CoT targets: the datasets' rationales, or correct ones sampled from a strong model.

    OUT/cot.jsonl holds question -> a correct step-by-step rationale ending "The answer is X.",
    OUT/cot_summary.json the figures. With --source model every graded sample is kept in
    OUT/cot_samples.jsonl as it arrives, so running the same command again resumes without asking
    the model twice.
    """
    from lema_plugin import cot as stage
    from lema_plugin.problems import load_problems

    problems = load_problems(dataset, split=split, data_file=data_file, limit=limit)
    start_fresh(out_dir, fresh and not estimate)  # a preview moves nothing
    if source == "gold":
        records, by_dataset = stage.write_gold_cot(problems, out_dir)
        click.echo(f"problems: {len(problems)}; gold rationales written: {len(records)} "
                   f"({len(problems) - len(records)} without a usable rationale)")
        produced, failed = len(records), 0
    else:
        client = make_client(out_dir, client_settings, cache_dir, no_cache, quiet, max_cost, estimate)
        with open_stage_endpoints([stage.strong_model_spec(model_spec)], settings) as (endpoints, settings):
            summary = run_async(stage.sample_cot(problems, endpoints, client, out_dir, settings), client)
        print_outcome(client, summary)
        if client.estimate is not None:
            return
        produced, failed = summary.kept, summary.failed
    click.echo(f"wrote {Path(out_dir) / 'cot.jsonl'}")
    check_outcome(produced, "CoT examples", failed=failed)

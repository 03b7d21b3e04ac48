"""`lema evolve`: new questions in the style of the ones that produced verified corrections."""
from __future__ import annotations

from pathlib import Path

import click

from lema_plugin.cli.common import (SPEC_EPILOG, check_outcome, client_options, fresh_option, friendly_errors, make_client,
                                    open_stage_endpoints, out_option, print_outcome, run_async, start_fresh)
from lema_plugin.cli.options import old_spellings, settings_options
from lema_plugin.evolve import EvolveSettings

_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)


@click.command(epilog=SPEC_EPILOG)
@click.option("--corrections", "corrections_path", required=True, type=_FILE,
              help="corrections.jsonl from `lema correct`: its problems are the seeds.")
@click.option("--weight-by-level", is_flag=True,
              help="Give seeds from levels where corrections succeeded least more new questions "
              "(success rates from --corrections and --rejected).")
@click.option("--rejected", "rejected_path", type=_FILE,
              help="rejected.jsonl from `lema correct`.", show_default="the one next to --corrections")
@click.option("--model", "model_spec", metavar="SPEC",
              help="The strong model that writes and answers the new questions (SPEC below).", show_default=
              "$LEMA_STRONG_MODEL; else the corrector's default: $LEMA_CORRECTOR; gpt-4o when OPENAI_API_KEY is set; else embedded")
@old_spellings(samples=("--answers",))
@settings_options(EvolveSettings)
@click.option("--test-file", "test_files", multiple=True, type=_FILE,
              help="More questions to keep out (repeatable); the GSM8K/MATH test splits are always checked.", show_default="none")
@click.option("--no-contamination-check", is_flag=True,
              help="Skip the test-set check (only when the test splits cannot be loaded).")
@out_option
@fresh_option
@client_options
@friendly_errors
def evolve(corrections_path, weight_by_level, rejected_path, model_spec, settings, test_files, no_contamination_check,
           out_dir, fresh, client_settings, cache_dir, no_cache, quiet, max_cost, estimate):
    """Write new questions seeded by the corrected ones, kept when the strong model's answers agree.

    OUT/problems.jsonl holds each new question whose strong-model answers agree by a clear
    majority (that answer becomes the gold one); OUT/evolve_summary.json the figures.

    New questions that nearly repeat a seed, each other, or a GSM8K/MATH test question are
    dropped (listed with the reason in OUT/evolve_dropped.jsonl). The output feeds
    `lema sample --data-file OUT/problems.jsonl` and then `lema correct`.
    """
    from lema_plugin.cot import strong_model_spec
    from lema_plugin.evolve import evolve_questions, read_inputs

    inputs = read_inputs(corrections_path, weight_by_level=weight_by_level, rejected_path=rejected_path,
                         contamination_check=not no_contamination_check, test_files=test_files)
    start_fresh(out_dir, fresh and not estimate)  # a preview moves nothing
    client = make_client(out_dir, client_settings, cache_dir, no_cache, quiet, max_cost, estimate)
    with open_stage_endpoints([strong_model_spec(model_spec)], settings) as (endpoints, settings):
        summary = run_async(evolve_questions(inputs, endpoints, client, out_dir, settings), client)
    print_outcome(client, summary)
    if client.estimate is not None:
        return
    click.echo(f"wrote {Path(out_dir) / 'problems.jsonl'}")
    check_outcome(summary.kept, "new questions", failed=summary.failed)

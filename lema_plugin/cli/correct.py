"""`lema correct`: ask a corrector LLM to correct each mistake; keep the verified corrections."""
from __future__ import annotations

from pathlib import Path

import click

from lema_plugin.cli.common import (SPEC_EPILOG, check_outcome, client_options, fresh_option, friendly_errors, make_client,
                                    open_stage_endpoints, out_option, print_outcome, run_async, start_fresh)
from lema_plugin.cli.options import old_spellings, settings_options
from lema_plugin.correct.stage import CorrectSettings
from lema_plugin.errors import NothingProduced


@click.command(epilog=SPEC_EPILOG)
@click.option(
    "--mistakes",
    "mistakes_path",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="mistakes.jsonl from `lema sample` or `lema import` (a paths.jsonl works too: its correct paths are skipped).",
)
@click.option(
    "--corrector",
    metavar="SPEC",
    help="Corrector endpoint (SPEC below).",
    show_default="$LEMA_CORRECTOR; else gpt-4o on the OpenAI API when OPENAI_API_KEY is set; else embedded",
)
@out_option
@fresh_option
@old_spellings(samples=("--attempts",), style=("--prompt",))
@settings_options(CorrectSettings)
@click.option("--limit", type=click.IntRange(1), help="Correct only the first N mistakes.", show_default="all")
@client_options
@friendly_errors
def correct(mistakes_path, corrector, out_dir, fresh, settings, limit, client_settings, cache_dir, no_cache, quiet,
            max_cost, estimate):
    """Correct mistakes with a corrector LLM; keep the corrections whose final answer checks out.

    The corrector names the first wrong step, explains it and finishes a corrected solution;
    corrections whose final answer is right go to OUT/corrections.jsonl, the others to
    OUT/rejected.jsonl with a reason, the figures to OUT/correct_summary.json. Run again with the
    same OUT to resume."""
    from lema_plugin.correct import corrector_spec, correct_mistakes, load_mistakes

    mistakes = load_mistakes(mistakes_path, limit=limit)
    if not mistakes:
        raise NothingProduced(f"{mistakes_path}: no mistakes to correct")
    start_fresh(out_dir, fresh and not estimate)  # a preview moves nothing
    client = make_client(out_dir, client_settings, cache_dir, no_cache, quiet, max_cost, estimate)
    with open_stage_endpoints([corrector_spec(corrector)], settings) as (endpoints, settings):
        summary = run_async(correct_mistakes(mistakes, endpoints, client, out_dir, settings), client)
    print_outcome(client, summary)
    if client.estimate is None:
        check_outcome(summary.verified, "verified corrections", failed=summary.rejected.get("request_failed", 0))

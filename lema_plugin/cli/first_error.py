"""`lema first-error`: check where each correction says the wrong path first went wrong."""
from __future__ import annotations

from pathlib import Path

import click

from lema_plugin.cli.common import (SPEC_EPILOG, check_outcome, client_options, friendly_errors, make_client, out_option,
                                    print_outcome, run_async)
from lema_plugin.cli.options import settings_options
from lema_plugin.first_error import FirstErrorSettings


@click.command("first-error", epilog=SPEC_EPILOG)
@click.option("--corrections", "corrections_path", required=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Verified corrections (corrections.jsonl from `lema correct`, or a run's data/corrections.jsonl).")
@click.option("--generator", required=True, metavar="SPEC",
              help="The model that continues the partial solutions (SPEC below). A completion endpoint continues the prefix as its own answer (the faithful rollout); a chat "
              "endpoint gets the partial solution in the user turn and is asked to continue it.")
@out_option
@settings_options(FirstErrorSettings)
@click.option("--limit", type=click.IntRange(1), help="Check only the first N usable corrections.", show_default="all")
@client_options
@friendly_errors
def first_error(corrections_path, generator, out_dir, settings, limit, client_settings, cache_dir, no_cache, quiet,
                max_cost, estimate):
    """Check each correction's claimed first wrong step by sampled continuations.

    Sample continuations from the steps before it and from the steps including it, grade them,
    and call the claim confirmed when the
    first prefix still reaches the right answer often and the second rarely does. Writes
    OUT/checks.jsonl (one verdict per correction, with both success rates) and
    OUT/first_error_summary.json (confirmation rate by generator and MATH level); restrict
    `lema build` step kinds to confirmed corrections with `--confirmed OUT/checks.jsonl`.
    Run again with the same OUT to resume; changed thresholds re-judge without new requests."""
    from lema_plugin.export.steps import load_step_corrections
    from lema_plugin.first_error import check_first_errors
    from lema_plugin.llm.endpoints import open_endpoints

    loaded = load_step_corrections(corrections_path)
    corrections = loaded.records[:limit] if limit else loaded.records
    client = make_client(out_dir, client_settings, cache_dir, no_cache, quiet, max_cost, estimate)
    with open_endpoints([generator]) as endpoints:
        summary = run_async(
            check_first_errors(corrections, endpoints, client, out_dir, settings, skipped=loaded.skipped), client)
    print_outcome(client, summary)
    if client.estimate is None:
        check_outcome(summary.checked, "checked corrections", failed=summary.failed_requests)

"""`lema sample`: collect mistakes by sampling reasoning paths from one or more generators."""
from __future__ import annotations

from pathlib import Path

import click

from lema_plugin.errors import NothingProduced
from lema_plugin.sample import SampleSettings, sample_paths

from .common import (SPEC_EPILOG, check_outcome, client_options, fresh_option, friendly_errors, make_client, open_stage_endpoints,
                     out_option, print_outcome, run_async, start_fresh)
from .options import old_spellings, settings_options


@click.command("sample", epilog=SPEC_EPILOG)
@click.option("--dataset", type=click.Choice(["gsm8k", "math", "math500"]), default="gsm8k", show_default=True, help="Which problems.")
@click.option("--split", default="train", show_default=True, help="Dataset split (mistakes are collected on training questions).")
@click.option("--data-file", type=click.Path(dir_okay=False, exists=True, path_type=Path), help="Read problems from this JSONL/Parquet file (raw GSM8K/MATH fields or problem records).", show_default="$LEMA_DATA_DIR, else the hub")
@click.option("--limit", type=click.IntRange(1), help="Use only the first N problems.", show_default="all")
@click.option(
    "--generator",
    "generators",
    multiple=True,
    metavar="SPEC",
    help="A generator endpoint (repeatable; SPEC below).", show_default="embedded",
)
@old_spellings(samples=("--samples-per-question",))
@settings_options(SampleSettings, spellings={"samples": ("--samples", "-k")})
@out_option
@fresh_option
@client_options
@friendly_errors
def sample(dataset, split, data_file, limit, generators, settings, out_dir, fresh, client_settings, cache_dir, no_cache,
           quiet, max_cost, estimate):
    """Sample reasoning paths, grade them, and keep the wrong ones as mistakes.

    Writes OUT/paths.jsonl (every path, graded, split into steps), OUT/mistakes.jsonl (the wrong
    ones, de-duplicated per question) and OUT/sample_summary.json. Running the same command again
    resumes: finished paths are neither re-requested nor re-graded.

    \b
    Example:
      lema sample --dataset gsm8k --limit 100 -k 4 \\
        --generator llama=meta-llama/Llama-3.1-8B-Instruct@http://gpu1:8000/v1 \\
        --generator qwen=Qwen/Qwen2.5-7B-Instruct@http://gpu2:8000/v1 --out runs/mistakes
    """
    from lema_plugin.problems import load_problems

    problems = load_problems(dataset, split=split, data_file=data_file, limit=limit)
    if not problems:
        raise NothingProduced("no problems to sample (check --dataset, --split, --data-file)")
    start_fresh(out_dir, fresh and not estimate)  # a preview moves nothing
    client = make_client(out_dir, client_settings, cache_dir, no_cache, quiet, max_cost, estimate)
    with open_stage_endpoints(list(generators) or ["embedded"], settings) as (endpoints, settings):
        summary = run_async(sample_paths(problems, endpoints, client, out_dir, settings), client)
    print_outcome(client, summary)
    if client.estimate is None:
        check_outcome(summary.total["mistakes"], "mistakes", failed=summary.total["failed"])

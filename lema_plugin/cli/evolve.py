"""`lema evolve`: new questions in the style of the ones that produced verified corrections."""
from __future__ import annotations

from pathlib import Path

import click

from lema_plugin.cli.common import client_options, friendly_errors, make_client, out_option, run_async

_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)


@click.command()
@click.option("--corrections", "corrections_path", required=True, type=_FILE,
              help="corrections.jsonl from `lema correct`: its problems are the seeds.")
@click.option("--weight-by-level", is_flag=True,
              help="Give seeds from levels where corrections succeeded least more new questions "
              "(success rates from --corrections and --rejected).")
@click.option("--rejected", "rejected_path", type=_FILE,
              help="rejected.jsonl from `lema correct` (default: the one next to --corrections).")
@click.option("--model", "model_spec", metavar="SPEC",
              help="The strong model that writes and answers the new questions, [NAME=]MODEL[@URL][;mode=completion][;key_env=VAR][;price=IN/OUT]. "
              "Default: $LEMA_STRONG_MODEL; else the corrector's default ($LEMA_CORRECTOR; gpt-4o when "
              "OPENAI_API_KEY is set; else the embedded model).")
@click.option("--per-seed", default=2, show_default=True, type=click.IntRange(1),
              help="New questions asked per seed; the styles are taken in turn.")
@click.option("--styles", default="similar,harder", show_default=True,
              help="Comma-separated: similar (same skill and difficulty), harder (one more step or condition).")
@click.option("--answers", default=5, show_default=True, type=click.IntRange(1), help="Answers sampled per new question.")
@click.option("--min-agreement", default=0.6, show_default=True, type=click.FloatRange(0, 1, min_open=True),
              help="Share of the answers that must agree (and more than any other answer) to keep a question.")
@click.option("--generate-temperature", default=1.0, show_default=True, type=click.FloatRange(0),
              help="Sampling temperature for writing new questions (high: varied questions).")
@click.option("--answer-temperature", default=0.7, show_default=True, type=click.FloatRange(0),
              help="Sampling temperature for the answers (above 0, so the vote means something).")
@click.option("--max-tokens", default=1024, show_default=True, type=click.IntRange(1), help="Per answer.")
@click.option("--ngram", default=6, show_default=True, type=click.IntRange(1),
              help="Word n-gram size for near-duplicate and contamination checks.")
@click.option("--max-overlap", default=0.5, show_default=True, type=click.FloatRange(0, 1, min_open=True),
              help="Share of shared n-grams (of the shorter text) that makes two questions near-duplicates.")
@click.option("--test-file", "test_files", multiple=True, type=_FILE,
              help="More questions to keep out (repeatable); the GSM8K/MATH test splits are always checked.")
@click.option("--no-contamination-check", is_flag=True,
              help="Skip the test-set check (only when the test splits cannot be loaded).")
@out_option
@client_options
@friendly_errors
def evolve(corrections_path, weight_by_level, rejected_path, model_spec, per_seed, styles, answers, min_agreement,
           generate_temperature, answer_temperature, max_tokens, ngram, max_overlap, test_files,
           no_contamination_check, out_dir, concurrency, cache_dir, no_cache, timeout, max_retries, quiet):
    """Write OUT/problems.jsonl: new questions, each kept only when a clear majority of the strong
    model's answers agree (that answer becomes the gold one).

    New questions that nearly repeat a seed, each other, or a GSM8K/MATH test question are
    dropped (listed with the reason in OUT/evolve_dropped.jsonl). The output feeds
    `lema sample --data-file OUT/problems.jsonl` and then `lema correct`.
    """
    from lema_plugin import evolve as stage
    from lema_plugin.cot import strong_model_spec
    from lema_plugin.llm.endpoints import open_endpoints

    config = stage.EvolveConfig(
        per_seed=per_seed, styles=tuple(s.strip() for s in styles.split(",") if s.strip()), answers=answers,
        min_agreement=min_agreement, generate_temperature=generate_temperature,
        answer_temperature=answer_temperature, answer_max_tokens=max_tokens, ngram=ngram, max_overlap=max_overlap,
    )
    inputs = stage.read_inputs(corrections_path, weight_by_level=weight_by_level, rejected_path=rejected_path,
                               contamination_check=not no_contamination_check, test_files=test_files)
    with open_endpoints([strong_model_spec(model_spec)]) as (endpoint,):
        client = make_client(out_dir, concurrency, cache_dir, no_cache, timeout, max_retries, quiet)
        problems, summary = run_async(stage.evolve_async(
            inputs.seeds, endpoint, out_dir, config, level_success_rates=inputs.level_success_rates,
            contamination_questions=inputs.contamination_questions, client=client), client)
    for line in summary.lines():
        click.echo(line)
    click.echo(f"wrote {Path(out_dir) / 'problems.jsonl'}")

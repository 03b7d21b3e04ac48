"""`lema correct`: ask a corrector LLM to correct each mistake; keep the verified corrections."""
from __future__ import annotations

from pathlib import Path

import click

from lema_plugin.cli.common import client_options, friendly_errors, make_client, out_option, run_async


@click.command()
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
    help="Corrector endpoint, [NAME=]MODEL[@URL][;mode=completion][;key_env=VAR][;price=IN/OUT]. "
    "Default: $LEMA_CORRECTOR; else gpt-4o on the OpenAI API when OPENAI_API_KEY is set; else the embedded model.",
)
@out_option
@click.option("--attempts", default=1, show_default=True, type=click.IntRange(1), help="Corrector samples per mistake, at most.")
@click.option("--keep", default=1, show_default=True, type=click.IntRange(1), help="Stop sampling a mistake once this many corrections are verified.")
@click.option(
    "--prompt",
    "style",
    default="fewshot",
    show_default=True,
    type=click.Choice(["fewshot", "zeroshot"]),
    help="Few-shot corrector prompt (any model), or zero-shot (strong chat models, fewer tokens).",
)
@click.option("--temperature", type=click.FloatRange(0), help="Sampling temperature [default: 0 for one attempt, 0.7 for several].")
@click.option("--top-p", default=1.0, show_default=True, type=click.FloatRange(0, 1))
@click.option("--max-tokens", default=1024, show_default=True, type=click.IntRange(1), help="Longest corrector reply.")
@click.option("--limit", type=click.IntRange(1), help="Correct only the first N mistakes.")
@client_options
@friendly_errors
def correct(mistakes_path, corrector, out_dir, attempts, keep, style, temperature, top_p, max_tokens, limit, **client_settings):
    """Correct mistakes: the corrector names the first wrong step, explains it and finishes a
    corrected solution; corrections whose final answer is right go to OUT/corrections.jsonl,
    the others to OUT/rejected.jsonl with a reason. Run again with the same OUT to resume."""
    from lema_plugin.correct import CorrectSettings, correct_mistakes, corrector_spec, load_mistakes
    from lema_plugin.llm.endpoints import open_endpoints

    mistakes = load_mistakes(mistakes_path, limit=limit)
    settings = CorrectSettings(attempts=attempts, keep=keep, temperature=temperature, top_p=top_p, max_tokens=max_tokens, style=style)
    client = make_client(out_dir, **client_settings)

    async def run(endpoint):
        async with client:
            return await correct_mistakes(mistakes, endpoint, client, out_dir, settings)

    with open_endpoints([corrector_spec(corrector)]) as (endpoint,):
        summary = run_async(run(endpoint))
    click.echo("\n".join(summary.lines()))
    lines = client.usage_lines()
    if lines:
        click.echo("\nthis run:\n" + "\n".join(lines))

"""`lema sample`: collect mistakes by sampling reasoning paths from one or more generators."""
from __future__ import annotations

from pathlib import Path

import click

from .common import client_options, friendly_errors, make_client, out_option, run_async


@click.command("sample")
@click.option("--dataset", type=click.Choice(["gsm8k", "math", "math500"]), default="gsm8k", show_default=True, help="Which problems.")
@click.option("--split", default="train", show_default=True, help="Dataset split (mistakes are collected on training questions).")
@click.option("--data-file", type=click.Path(dir_okay=False, exists=True, path_type=Path), help="Read problems from this JSONL/Parquet file instead of the hub (raw GSM8K/MATH fields or problem records).")
@click.option("--limit", type=click.IntRange(1), help="Use only the first N problems.")
@click.option(
    "--generator",
    "generators",
    multiple=True,
    metavar="[NAME=]MODEL[@URL]",
    help="A generator model (repeatable). Spec: [NAME=]MODEL[@URL[,URL2]][;mode=completion][;key_env=VAR][;price=IN/OUT]. "
    "Default: the embedded SmolLM2-135M-Instruct.",
)
@click.option("--samples-per-question", "-k", default=4, show_default=True, type=click.IntRange(1), help="Paths sampled per question and generator.")
@click.option("--temperature", default=0.7, show_default=True, type=click.FloatRange(0), help="Sampling temperature.")
@click.option("--top-p", default=1.0, show_default=True, type=click.FloatRange(0, 1), help="Nucleus sampling.")
@click.option("--max-tokens", default=512, show_default=True, type=click.IntRange(1), help="Token limit per path (paths that hit it are 'truncated').")
@click.option("--seed", type=int, help="Base seed for servers that honour it (sample k uses seed+k).")
@click.option("--prompt", default="solve", show_default=True, help="Prompt template (lema_plugin/prompts/NAME.txt): the user message in chat mode, the prompt in completion mode.")
@click.option("--max-mistakes-per-question", type=click.IntRange(0), help="Keep at most N distinct mistakes per question, taking generators in turn (default: all).")
@click.option("--keep-unfinished", is_flag=True, help="Also keep paths with no extractable answer and truncated paths as mistakes.")
@out_option
@client_options
@friendly_errors
def sample(dataset, split, data_file, limit, generators, samples_per_question, temperature, top_p, max_tokens, seed, prompt,
           max_mistakes_per_question, keep_unfinished, out_dir, concurrency, cache_dir, no_cache, timeout, max_retries, quiet):
    """Sample reasoning paths, grade them, and keep the wrong ones as mistakes.

    Writes OUT/paths.jsonl (every path, graded, split into steps), OUT/mistakes.jsonl (the wrong
    ones, de-duplicated per question) and OUT/summary.json. Running the same command again
    resumes: finished paths are neither re-requested nor re-graded.

    \b
    Example:
      lema sample --dataset gsm8k --limit 100 -k 4 \\
        --generator llama=meta-llama/Llama-3.1-8B-Instruct@http://gpu1:8000/v1 \\
        --generator qwen=Qwen/Qwen2.5-7B-Instruct@http://gpu2:8000/v1 --out runs/mistakes
    """
    from lema_plugin.llm.endpoints import open_endpoints
    from lema_plugin.problems import load_problems
    from lema_plugin.sample import SampleSettings, sample_paths

    settings = SampleSettings(
        samples_per_question=samples_per_question,
        temperature=temperature,
        top_p=top_p,
        max_tokens=max_tokens,
        prompt=prompt,
        seed=seed,
        max_mistakes_per_question=max_mistakes_per_question,
        keep_unfinished=keep_unfinished,
    )
    problems = load_problems(dataset, split=split, data_file=data_file, limit=limit)
    if not problems:
        raise click.ClickException("no problems to sample (check --dataset, --split, --data-file)")
    client = make_client(out_dir, concurrency, cache_dir, no_cache, timeout, max_retries, quiet)
    with open_endpoints(list(generators) or ["embedded"]) as endpoints:
        summary = run_async(sample_paths(problems, endpoints, client, out_dir, settings), client)
    click.echo(summary.table())
    for line in summary.usage_lines:
        click.echo(line)
    click.echo(f"{summary.requests} paths requested in {summary.elapsed_s:.1f} s")

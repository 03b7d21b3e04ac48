"""`lema tasks-path`: where the lm-eval tasks of this installation are."""
from __future__ import annotations

import click


@click.command("tasks-path")
def tasks_path() -> None:
    """Print the folder of the lm-eval tasks shipped with lema-plugin.

    Use it as `lm_eval --include_path "$(lema tasks-path)" --tasks lema_gsm8k`."""
    from lema_plugin.shipped import tasks_path as folder

    click.echo(str(folder()))

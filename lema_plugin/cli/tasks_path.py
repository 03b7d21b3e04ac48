"""`lema tasks-path`: where the lm-eval tasks of this installation are."""
from __future__ import annotations

import click


@click.command("tasks-path")
def tasks_path() -> None:
    """Print the lm-eval task folder shipped with lema-plugin, for
    `lm_eval --include_path "$(lema tasks-path)" --tasks lema_gsm8k`."""
    from lema_plugin.shipped import tasks_path as folder

    click.echo(str(folder()))

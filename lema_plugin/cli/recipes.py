"""`lema recipes`: the recipes shipped with lema-plugin, or one of them in full."""
from __future__ import annotations

import click

from lema_plugin.cli.common import friendly_errors


@click.command("recipes")
@click.argument("name", required=False)
@click.option("--schema", is_flag=True, help="Print every recipe key with its type, default and meaning (Markdown).")
@friendly_errors
def recipes(name: str | None, schema: bool) -> None:
    """List the built-in recipes, or print one (NAME) to start your own from.

    Save the printed YAML, edit it, then `lema run my.yaml --check` and `lema run my.yaml`.
    `--schema` lists every key a recipe may hold."""
    from lema_plugin.recipe import builtin_recipes, recipe_summary, resolve_recipe_path

    if schema:
        from lema_plugin.recipe_check import schema_markdown

        click.echo(schema_markdown(), nl=False)
        return
    if name:
        click.echo(resolve_recipe_path(name).read_text(encoding="utf-8"), nl=False)
        return
    names = builtin_recipes()
    width = max(map(len, names))
    for recipe in names:
        click.echo(f"{recipe:<{width}}  {recipe_summary(recipe)}")
    click.echo("\nlema run NAME --check   shows one resolved, with the requests it will send")

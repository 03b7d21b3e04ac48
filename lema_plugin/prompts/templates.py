"""Prompt templates, one text file per use, shipped as package data; or a user's own file.

Templates use `str.format` fields (`{question}`, `{steps}`, ...); literal braces in a template
(LaTeX such as `\\boxed{}`) are written doubled, `{{` and `}}`. Where a user may choose the
template (`lema sample --prompt`), `check_template` says up front which placeholders the chosen
one needs and which the command fills, so a mismatch is a one-line error, not a `KeyError` at the
first request.
"""
from __future__ import annotations

import string
from functools import lru_cache
from importlib import resources
from pathlib import Path

from lema_plugin.errors import ConfigError


def shipped() -> list[str]:
    """Names of the templates shipped with the package."""
    return sorted(p.name[:-4] for p in resources.files(__package__).iterdir() if p.name.endswith(".txt"))


@lru_cache(maxsize=None)
def load_prompt(name: str) -> str:
    """The template `lema_plugin/prompts/<name>.txt`, or the file at path `name` (a user's own)."""
    path = resources.files(__package__).joinpath(f"{name}.txt")
    if path.is_file():
        return path.read_text(encoding="utf-8")
    own = Path(name).expanduser()
    if own.is_file():
        try:
            return own.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise ConfigError(f"{name}: prompt template is not UTF-8 text") from None
    raise ConfigError(f"no prompt template {name!r}: give a template file of your own, or one of {', '.join(shipped())}")


def placeholders(template: str) -> set[str]:
    """The `{field}` names a template needs."""
    try:
        return {field.split(".")[0].split("[")[0] for _, field, _, _ in string.Formatter().parse(template) if field}
    except ValueError as exc:  # a lone { or }
        raise ConfigError(f"not a valid template ({exc}; write a literal brace as {{{{ or }}}})") from None


def check_template(name: str, fills: tuple[str, ...]) -> str:
    """Load template `name` and make sure its placeholders are exactly what the caller fills."""
    wanted = ", ".join("{" + f + "}" for f in fills)
    usable = [n for n in shipped() if placeholders(load_prompt(n)) == set(fills)]
    try:
        needed = placeholders(load_prompt(name))
    except ConfigError as exc:
        if not str(exc).startswith("no prompt"):
            raise ConfigError(f"prompt {name!r}: {exc}") from None
        raise ConfigError(f"no prompt template {name!r}: give a template file of your own with {wanted}, "
                          f"or {' or '.join(usable)}") from None
    unknown, missing = needed - set(fills), set(fills) - needed
    if unknown or missing:
        problem = (f"needs {', '.join('{' + f + '}' for f in sorted(unknown))}" if unknown
                   else f"has no {', '.join('{' + f + '}' for f in sorted(missing))}")
        raise ConfigError(f"prompt {name!r} {problem}, but this command's template must hold exactly {wanted}: "
                          f"use {' or '.join(usable) or 'a file of your own'}, or a template file of your own with {wanted}")
    return name


def render(name: str, **fields: str) -> str:
    """Fill template `name` with `fields`."""
    return load_prompt(name).format(**fields)

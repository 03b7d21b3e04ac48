"""Prompt templates, one text file per use, shipped as package data.

Templates use `str.format` fields (`{question}`, `{steps}`, ...); literal braces in a template
(LaTeX such as `\\boxed{}`) are written doubled, `{{` and `}}`.
"""
from __future__ import annotations

from functools import lru_cache
from importlib import resources

from lema_plugin.errors import ConfigError


@lru_cache(maxsize=None)
def load_prompt(name: str) -> str:
    """Return the template `lema_plugin/prompts/<name>.txt` as text."""
    path = resources.files(__name__).joinpath(f"{name}.txt")
    if not path.is_file():
        available = sorted(p.name[:-4] for p in resources.files(__name__).iterdir() if p.name.endswith(".txt"))
        raise ConfigError(f"no prompt template {name!r}; available: {', '.join(available)}")
    return path.read_text(encoding="utf-8")


def render(name: str, **fields: str) -> str:
    """Fill template `name` with `fields`."""
    return load_prompt(name).format(**fields)

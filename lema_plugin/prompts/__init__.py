"""Prompt templates, one text file per use, shipped as package data; or a user's own file.

Templates use `str.format` fields (`{question}`, `{steps}`, ...); literal braces in a template
(LaTeX such as `\\boxed{}`) are written doubled, `{{` and `}}`. Where a user may choose the
template (`lema sample --prompt`), `check_template` says up front which placeholders the chosen
one needs and which the command fills, so a mismatch is a one-line error, not a `KeyError` at the
first request.
"""
from .templates import check_template, load_prompt, placeholders, render, shipped

__all__ = ["check_template", "load_prompt", "placeholders", "render", "shipped"]

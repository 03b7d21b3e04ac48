"""What `lema run RECIPE --check` prints: the recipe as resolved (environment variables expanded,
defaults filled in), as YAML with each key's meaning as a comment, and the requests each stage
will send. The output is itself a valid recipe, so it can be saved and edited.

Request counts are upper bounds where they depend on grading: a run corrects only the paths that
turn out wrong, and evolves only from the corrections that are verified. Answers already in a run
folder's cache are not subtracted: the counts describe the recipe, not one folder.
"""
from __future__ import annotations

import types
import typing

import yaml
from pydantic import BaseModel

from .recipe import recipe_model


def commented_yaml(recipe: BaseModel, indent: int = 0) -> str:
    """`recipe` as YAML, every key preceded by its description from the model."""
    lines: list[str] = []
    pad = " " * indent
    for name, info in type(recipe).model_fields.items():
        value = getattr(recipe, name)
        if info.description:
            lines.append(f"{pad}# {info.description}")
        if isinstance(value, BaseModel):
            lines.append(f"{pad}{name}:")
            lines.append(commented_yaml(value, indent + 2))
        elif isinstance(value, list) and value and isinstance(value[0], BaseModel):
            lines.append(f"{pad}{name}:")
            for item in value:
                body = commented_yaml(item, indent + 4).splitlines()
                first = next(i for i, line in enumerate(body) if not line.lstrip().startswith("#"))
                body[first] = f"{pad}  - {body[first].lstrip()}"
                lines.extend(body)
        else:
            lines.append(f"{pad}{name}: {_scalar(value)}")
    return "\n".join(lines)


def _scalar(value) -> str:
    if value is None:
        return "null"
    return yaml.safe_dump(value, default_flow_style=True, width=10_000).strip().removesuffix("\n...").strip()


def request_plan(recipe: BaseModel, problems: int | list) -> list[tuple[str, int, bool]]:
    """(stage, requests, exact) for a run over `problems` (the problems, or how many: the first N
    the recipe loads); `exact` is False for an upper bound. The same plan `--estimate` prices."""
    from .pipeline import request_plan as plan

    if isinstance(problems, int):
        problems = _load_problems(recipe)[:problems]
    return plan(recipe, problems)


def _load_problems(recipe: BaseModel) -> list:
    from .problems import ProblemSource

    return ProblemSource(**{name: getattr(recipe, name) for name in ProblemSource.model_fields}).load()


def check_text(recipe: BaseModel, problems: list | None) -> str:
    """The whole `--check` output: the commented recipe, then the request plan as comments."""
    text = commented_yaml(recipe) + "\n\n"
    if problems is None:
        text += "# requests: unknown (the problems could not be loaded here; set `limit` or LEMA_DATA_DIR)\n"
        return text
    text += f"# requests each stage will send for {len(problems)} problems (at most: depends on what is graded wrong):\n"
    rows = request_plan(recipe, problems)
    width = max([8, *(len(stage) for stage, _, _ in rows)])
    for stage, count, exact in rows:
        text += f"#   {stage:<{width}} {'' if exact else 'at most '}{count:,}\n"
    if recipe.train or recipe.eval:
        text += "#   train and eval run locally (axolotl, lm_eval) and send none\n"
    return text


def _args(annotation) -> list:
    out = []
    for arg in typing.get_args(annotation):
        out += [arg, *_args(arg)]
    return out


def schema_rows() -> list[tuple[str, str, str, str]]:
    """(key, type, default, meaning) for every recipe key, sections in order, lists as `key[]`."""
    rows: list[tuple[str, str, str, str]] = []

    def visit(model: type[BaseModel], prefix: str) -> None:
        for name, info in model.model_fields.items():
            key = f"{prefix}{name}"
            section = _section(info.annotation)
            is_list = typing.get_origin(_unwrap(info.annotation)) is list
            if section is not None:
                rows.append((key, "list of sections" if is_list else "section", _default(info), info.description or ""))
                visit(section, f"{key}[]." if is_list else f"{key}.")
            else:
                rows.append((key, _type_name(info.annotation), _default(info), info.description or ""))

    visit(recipe_model(), "")
    return rows


def schema_markdown() -> str:
    """The recipe schema as the README's table (`lema recipes --schema` prints it)."""
    lines = ["| key | type | default | meaning |", "| --- | --- | --- | --- |"]
    for key, kind, default, meaning in schema_rows():
        lines.append(f"| `{key}` | {kind} | {default} | {meaning.replace('|', '/')} |")
    return "\n".join(lines) + "\n"


def _unwrap(annotation):
    """`X` for `X | None`."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType) and len(args) == 1:
        return args[0]
    return annotation


def _section(annotation) -> type[BaseModel] | None:
    for arg in (annotation, *_args(annotation)):
        if isinstance(arg, type) and issubclass(arg, BaseModel):
            return arg
    return None


def _type_name(annotation) -> str:
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Literal:
        return " / ".join(f"`{a}`" for a in args)
    if origin in (list, tuple):
        return f"list of {_type_name(args[0])}"
    if args and origin is not None:  # a union
        names = [_type_name(a) for a in args if a is not type(None)]
        return " or ".join(names) + (" or null" if type(None) in args else "")
    return {str: "text", int: "integer", float: "number", bool: "true / false"}.get(annotation, str(annotation))


def _default(info) -> str:
    if info.is_required():
        return "required"
    text = (info.json_schema_extra or {}).get("default_text") if isinstance(info.json_schema_extra, dict) else None
    if text:
        return text
    value = info.default
    if isinstance(value, BaseModel):
        return "see below"
    return f"`{_scalar(list(value) if isinstance(value, tuple) else value)}`"

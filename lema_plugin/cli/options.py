"""Click options generated from a stage's settings model, so a command can never drift from the
library's defaults, bounds or help text.

`settings_options(Model)` adds one option per field (`--field-name`, or a spelling given for
it) and hands the command one `settings` argument built from them. Types follow the field:
bool -> flag, Literal -> choice, bounded int/float -> a range, tuple of text -> a comma list.
"""
from __future__ import annotations

import functools
import types
import typing
from typing import Callable, Literal

import annotated_types
import click
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from lema_plugin.settings import SettingsError


def settings_options(model: type[BaseModel], into: str = "settings", spellings: dict | None = None,
                     exclude: tuple[str, ...] = ()) -> Callable:
    """Decorate a click command with `model`'s fields as options; it receives `into=model(...)`.

    `spellings` maps a field to its option declarations when they differ from `--field-name`
    (a short form, e.g. `{"samples": ("--samples", "-k")}`).
    """
    spellings = spellings or {}
    fields = {name: info for name, info in model.model_fields.items() if name not in exclude}

    def decorate(func: Callable) -> Callable:
        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            values = {name: kwargs.pop(name) for name in fields}
            try:
                kwargs[into] = model(**values)
            except SettingsError as exc:  # a value the settings refuse: a usage error naming the option
                raise click.UsageError("; ".join(
                    f"{_declared(spellings, e['loc'][0]) if e['loc'] else model.__name__}: {e['msg'].removeprefix('Value error, ')}"
                    for e in exc.errors
                )) from None
            return func(*args, **kwargs)

        for name, info in reversed(fields.items()):
            wrapper = option_for(name, info, spellings.get(name))(wrapper)
        return wrapper

    return decorate


def option_for(name: str, info: FieldInfo, spelling: str | tuple[str, ...] | None = None) -> Callable:
    """The click option for one settings field."""
    decls = (spelling,) if isinstance(spelling, str) else tuple(spelling or (f"--{name.replace('_', '-')}",))
    kind = _base_type(info.annotation)
    default = info.default
    # a field whose default is None says what None means (`json_schema_extra={"default_text": ...}`)
    text = (info.json_schema_extra or {}).get("default_text")
    shown = text if default is None or (default == () and text) else not (default is False or default == ())  # 0 is shown
    common = dict(help=info.description, show_default=shown)
    if kind is bool:
        return click.option(*decls, name, is_flag=True, default=bool(default), help=info.description)
    if typing.get_origin(kind) is Literal:
        return click.option(*decls, name, type=click.Choice([str(v) for v in typing.get_args(kind)]), default=default, **common)
    if typing.get_origin(kind) is tuple:
        common["help"] = f"{info.description} (comma-separated)"
        return click.option(*decls, name, default=",".join(default), callback=_comma_list, **common)
    if kind in (int, float):
        return click.option(*decls, name, type=_range(kind, info), default=default, **common)
    return click.option(*decls, name, type=kind if kind in (str,) else None, default=default, **common)


def _declared(spellings: dict, name) -> str:
    spelling = spellings.get(name) or f"--{str(name).replace('_', '-')}"
    return spelling if isinstance(spelling, str) else spelling[0]


def _base_type(annotation):
    """`X` for `X | None` / `Optional[X]`, else the annotation itself."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return annotation


def _range(kind: type, info: FieldInfo) -> click.ParamType:
    bounds: dict = {}
    for item in info.metadata:
        if isinstance(item, annotated_types.Ge):
            bounds["min"] = item.ge
        elif isinstance(item, annotated_types.Gt):
            bounds["min"], bounds["min_open"] = item.gt, True
        elif isinstance(item, annotated_types.Le):
            bounds["max"] = item.le
        elif isinstance(item, annotated_types.Lt):
            bounds["max"], bounds["max_open"] = item.lt, True
    if kind is int:
        if bounds.pop("min_open", False):
            bounds["min"] += 1
        if bounds.pop("max_open", False):
            bounds["max"] -= 1
        return click.IntRange(**bounds) if bounds else click.INT
    return click.FloatRange(**bounds) if bounds else click.FLOAT


def _comma_list(ctx, param, value):
    return tuple(part.strip() for part in (value or "").split(",") if part.strip())


def old_spellings(**targets: tuple[str, ...]) -> Callable:
    """Keep an option's old spellings working, hidden, for one release: `old_spellings(samples=
    ("--samples-per-question",))` accepts the old name for `samples`, says what it is called now,
    and refuses both names given at once. Put it above the decorators that declare the target."""

    def decorate(func: Callable) -> Callable:
        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            ctx = click.get_current_context()
            for target, decls in targets.items():
                value = kwargs.pop(f"old__{target}")
                if value is None:
                    continue
                now = next((p.opts[0] for p in ctx.command.params if p.name == target), target)
                if ctx.get_parameter_source(target) is click.core.ParameterSource.COMMANDLINE:
                    raise click.UsageError(f"{decls[0]} is the old name of {now}: give only {now}")
                click.echo(f"note: {decls[0]} is now {now} (the old name goes in the next release)", err=True)
                kwargs[target] = value
            return func(*args, **kwargs)

        declared = {p.name: p for p in getattr(func, "__click_params__", [])}
        for target, decls in targets.items():
            kind = declared[target].type if target in declared else None  # the old name reads values as the new one
            wrapper = click.option(*decls, f"old__{target}", hidden=True, default=None, type=kind)(wrapper)
        return wrapper

    return decorate

"""A stage's section of a recipe, built from the stage's declaration.

Every key of a section comes from somewhere the stage already says it: the settings model's
fields (defaults, bounds and help copied with `settings.same_as`; those the stage gives once at
the recipe's top level, `recipe_hoisted`, left out), the endpoint keys of each role (in the
section itself, like `corrector:`, or under the role's own key, like `cot.model`), an `enabled`
key for an optional stage, and any `recipe_extra` keys. The option names the stage's command
used before (`old_spellings`) stay accepted as recipe keys, with a warning. So a stage a plugin
registers gets its section with no code of its own, and a setting cannot be spelt two ways.
"""
from __future__ import annotations

import functools
from typing import Any, ClassVar

from pydantic import Field, create_model, model_validator

from .recipe_base import EndpointSpec, Strict
from .settings import SettingsError, same_as
from .stage import Stage


class StageSection:
    """What every section model has: its stage, the settings it makes, the endpoints it names."""

    stage: ClassVar[Stage]

    def settings(self, recipe=None):
        """The stage's settings: this section's keys, the recipe's top-level ones (`recipe_hoisted`)
        and the recipe's judge (by default: none)."""
        model = self.stage.settings
        values = {name: getattr(self, name) for name in model.model_fields if name in type(self).model_fields}
        for name in self.stage.recipe_hoisted:
            if recipe is not None:
                values[name] = getattr(recipe, name)
        if "judge" in model.model_fields and recipe is not None and getattr(recipe, "judge", None) is not None:
            values["judge"] = recipe.judge.endpoint()
        return model(**values)

    def endpoints(self, recipe=None) -> dict[str, list]:
        """Role name -> endpoints, built field by field (never through the spec mini-language);
        a role left out takes the endpoint its `recipe_default` names."""
        settings = self.settings(recipe)
        chosen = {}
        for role in self.stage.roles:
            if not role.is_needed(settings):
                continue
            spec = self if role.recipe_key is None else getattr(self, role.recipe_key)
            if spec is not None:
                chosen[role.name] = [spec.endpoint()]
            elif role.recipe_default is not None and recipe is not None:
                fallback = getattr(recipe, role.recipe_default)
                chosen[role.name] = [(fallback[0] if isinstance(fallback, list) else fallback).endpoint()]
        return chosen


def _check(self):
    """A section whose keys do not make valid settings, or that lacks an endpoint it needs, is
    refused where it is written (the recipe names the section and the problem)."""
    try:
        settings = self.settings()
    except SettingsError as exc:
        raise ValueError("; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'settings'}: "
                                   f"{e['msg'].removeprefix('Value error, ')}" for e in exc.errors)) from None
    on = not self.stage.optional or getattr(self, "enabled", False)
    for role in self.stage.roles:
        if on and role.recipe_key is not None and role.recipe_default is None and role.is_needed(settings) \
                and getattr(self, role.recipe_key) is None:
            raise ValueError(role.needed_text or f"needs a '{role.recipe_key}' endpoint")
    self.stage.check_section(self)
    return self


@functools.lru_cache(maxsize=None)
def _section_model(stage: Stage, version: int):
    inline = any(role.recipe_key is None for role in stage.roles)
    fields: dict[str, Any] = {}
    if stage.optional:
        fields["enabled"] = (bool, Field(False, description=stage.one_line()))
    for role in stage.roles:
        if role.recipe_key is not None:
            default_text = {"corrector": "the corrector", "generators": "the first generator"}.get(
                role.recipe_default or "", "none")
            meaning = role.recipe_help or f"{role.help.split(' (SPEC')[0].rstrip('.')} (endpoint keys)."
            fields[role.recipe_key] = (EndpointSpec | None, Field(None, description=meaning,
                                                                  json_schema_extra={"default_text": default_text}))
    for name, info in stage.settings.model_fields.items():
        if name in stage.recipe_hoisted or name == "judge":
            continue
        fields[name] = (info.annotation, same_as(stage.settings, name))
    for name, (kind, info) in stage.recipe_extra.items():
        fields[name] = (kind, info)
    bases = (EndpointSpec, StageSection) if inline else (Strict, StageSection)
    renamed = {old.lstrip("-").replace("-", "_"): new for new, olds in stage.old_spellings.items() for old in olds}
    model = create_model(f"{stage.key.title().replace('_', '')}Section", __base__=bases,
                         __validators__={"_check": model_validator(mode="after")(_check)}, **fields)
    model.stage = stage
    model.renamed = {**getattr(bases[0], "renamed", {}), **renamed}
    model.__doc__ = f"The `{stage.key}` section: {stage.one_line()}"
    return model


def section_model(stage: Stage):
    """The pydantic model of `stage`'s recipe section (one item of the list for `recipe_many`)."""
    from .stage import version

    return _section_model(stage, version())

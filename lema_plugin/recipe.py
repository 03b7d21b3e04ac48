"""The recipe: one YAML file that describes a whole LeMa experiment, validated before anything runs.

Like an axolotl config, a recipe names everything a run needs (data, generators, corrector, CoT
source, evolution, export, and optionally the fine-tune and the evaluation), so that a run can be
repeated or resumed from the file alone. Validation uses pydantic with unknown keys forbidden;
every problem is reported at once, as `RECIPE: key.path: message; ...` (a misspelt key with the
nearest real one, every unset environment variable by name), so a typo never costs a paid
request and a fix never needs a second run to find the next one. Keys are the spec grammar's for
an endpoint and the settings models' field names for a stage; `renamed` keeps the last release's
spellings working, with a warning.

The model is built from the registered stages: one section per stage (`recipe_sections`), whose
keys take their defaults, bounds and help from that stage's settings model (`settings.same_as`),
so a recipe, the CLI and a library caller agree on every default, and a stage a plugin registers
gets its section too; endpoints are built field by field (`EndpointSpec.endpoint`), never through
the spec mini-language.
"""
from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Literal

import difflib
import os
import re

import yaml

from .errors import LemaError
from .recipe_base import EndpointSpec, Strict
from .problems import ProblemSource
from .settings import MAX_CONCURRENCY, MAX_COUNT, MAX_TOKENS, ClientSettings, same_as
from pydantic import BaseModel, Field, ValidationError, create_model

class Export(Strict):
    """The training sets written for axolotl (`lema build`)."""

    format: Literal["chat_template", "input_output", "alpaca"] = Field(
        "chat_template", description="axolotl dataset type: chat_template (chat models), input_output (base models), alpaca.")
    mixes: list[Literal["lema", "cot-only", "cot-size-matched", "step-dpo", "solution-dpo", "prm"]] = Field(
        ["lema", "cot-only"], description="Which mixes to write, each to OUT/data/MIX/: SFT mixes, and the step-level "
        "kinds (Step-DPO pairs, whole-solution pairs, PRM labels).")
    val_fraction: float = Field(0.0, ge=0, lt=1, description="Share of problems held out for validation.")
    seed: int = Field(0, description="Seed for the split, the padding and the shuffle.")
    # input_output rows are raw text: the model's BOS/EOS must be written in (LLaMA-2: <s> / </s>)
    bos_token: str = Field("", description="input_output only: text before each prompt, e.g. <s> for LLaMA-2.")
    eos_token: str = Field("", description="input_output only: text after each response, e.g. </s> for LLaMA-2.")
    axolotl_config: str | None = Field(
        None, description="Base axolotl config of the ready config written next to each mix.",
        json_schema_extra={"default_text": "train.config"})
    allow_no_corrections: bool = Field(
        False, description="Build, train and evaluate even when no correction was verified (the LeMa mix is then the "
        "CoT-only mix); otherwise the run stops there with exit status 4.")


class Train(Strict):
    """Optional: run `axolotl train` on the exported LeMa mix when the data is built."""

    config: str = Field(description="axolotl config file (a name in axolotl_configs/ is found without the checkout).")
    base_model: str | None = Field(None, description="The model to fine-tune; 'embedded' = the cached SmolLM2 model.",
                                   json_schema_extra={"default_text": "the config's"})
    max_steps: int | None = Field(None, ge=1, le=MAX_COUNT, description="Optimizer steps.", json_schema_extra={"default_text": "the config's"})


class Eval(Strict):
    """Optional: run `lm_eval` on the trained adapter (or the base model) with the lema tasks."""

    tasks: list[str] = Field(["lema_gsm8k"], description="lm-eval task names from `lema tasks-path`.")
    limit: int | None = Field(None, ge=1, le=MAX_COUNT, description="lm_eval --limit: first N test questions.",
                              json_schema_extra={"default_text": "all"})
    max_gen_toks: int = Field(512, ge=1, le=MAX_TOKENS, description="Token limit per answer.")
    batch_size: int = Field(8, ge=1, le=MAX_CONCURRENCY, description="lm_eval --batch_size.")


def _recipe_model(version: int) -> type[BaseModel]:
    """The recipe model of the stages registered now (see the module docstring)."""
    from .recipe_sections import section_model
    from .stage import stages

    pipeline_stages = [s for s in stages() if s.in_pipeline]
    fields: dict = {name: (info.annotation, same_as(ProblemSource, name)) for name, info in ProblemSource.model_fields.items()}
    fields["out"] = (str, Field("runs/lema", description="Run folder; every stage writes under it and resumes from it."))
    fields.update({name: (info.annotation, same_as(ClientSettings, name)) for name, info in ClientSettings.model_fields.items()})
    fields["max_cost"] = (float | None, Field(None, ge=0, allow_inf_nan=False, description="USD this run folder may spend "
                                              "at most, over every run into it (lema run --max-cost); a larger value "
                                              "continues a run that reached it.",
                                              json_schema_extra={"default_text": "no limit"}))
    for stage in pipeline_stages:
        for name in stage.recipe_hoisted:
            fields[name] = (stage.settings.model_fields[name].annotation, same_as(stage.settings, name))
    for stage in pipeline_stages:
        section = section_model(stage)
        meaning = stage.recipe_help or stage.one_line()
        if stage.recipe_many:
            fields[stage.key] = (list[section], Field(..., min_length=1, description=meaning))
        else:
            fields[stage.key] = (section, Field(section(), description=meaning,
                                                json_schema_extra={"default_text": "see below"}))
    fields["judge"] = (EndpointSpec | None, Field(
        None, description="An LLM judge for the answers the rules cannot decide, in every stage that grades.",
        json_schema_extra={"default_text": "off"}))
    fields["export"] = (Export, Field(Export(), description="The axolotl training sets."))
    fields["train"] = (Train | None, Field(None, description="Fine-tune with axolotl after the data is built.",
                                           json_schema_extra={"default_text": "off"}))
    fields["eval"] = (Eval | None, Field(None, description="Score the result with lm-eval.",
                                         json_schema_extra={"default_text": "off"}))
    model = create_model("Recipe", __base__=Strict, **fields)
    model.__doc__ = "A whole LeMa experiment."
    return model


_models: dict[int, type[BaseModel]] = {}


def recipe_model() -> type[BaseModel]:
    """The recipe model: one section per registered stage, rebuilt when a stage is registered."""
    from .stage import version

    current = version()
    if current not in _models:
        _models[current] = _recipe_model(current)
    return _models[current]


def __getattr__(name: str):
    if name == "Recipe":  # the model of the stages registered now
        return recipe_model()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class RecipeError(LemaError, ValueError):
    """A recipe that does not validate; the message names the file and each bad key."""


def builtin_recipes() -> list[str]:
    folder = resources.files("lema_plugin.recipes")
    return sorted(p.name[: -len(".yaml")] for p in folder.iterdir() if p.name.endswith(".yaml"))


def recipe_summary(name: str) -> str:
    """The first sentence of a built-in recipe's opening comment: what it runs."""
    text = resources.files("lema_plugin.recipes").joinpath(f"{name}.yaml").read_text(encoding="utf-8")
    comment = " ".join(line.lstrip("# ").strip() for line in text.splitlines()
                       if line.startswith("#") and line.lstrip("# ").strip())
    return comment.split(". ")[0].rstrip(".") + "." if comment else ""


def resolve_recipe_path(name_or_path: str) -> Path | resources.abc.Traversable:
    """A path on disk, or the name of a recipe shipped with the package (`demo`, `gsm8k-paper`, ...)."""
    path = Path(name_or_path)
    if path.exists():
        return path
    shipped = resources.files("lema_plugin.recipes").joinpath(f"{name_or_path}.yaml")
    if shipped.is_file():
        return shipped
    raise RecipeError(f"{name_or_path}: no such file, and not a built-in recipe ({', '.join(builtin_recipes())})")


_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def expand_env(value, key: str = "", missing: list[str] | None = None):
    """Replace `${VAR}` and `${VAR:-default}` in every string of a parsed recipe.

    Endpoints and keys of real runs live in the environment, so a shipped recipe needs no edits.
    An unset variable without a default is left as written and added to `missing` as
    `key: VAR`, so every unset variable can be named at once; without a `missing` list the first
    one is an error naming the recipe key.
    """
    if isinstance(value, dict):
        return {k: expand_env(v, f"{key}.{k}" if key else str(k), missing) for k, v in value.items()}
    if isinstance(value, list):
        return [expand_env(v, f"{key}.{i}", missing) for i, v in enumerate(value)]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match) -> str:
        name, default = match.group(1), match.group(2)
        if name in os.environ:
            return os.environ[name]
        if default is not None:
            return default
        if missing is None:
            raise RecipeError(f"{key}: environment variable {name} is not set")
        missing.append((key, name))
        return match.group(0)

    return _ENV.sub(substitute, value)


def _model_at(loc: tuple) -> type[BaseModel] | None:
    """The recipe section (a pydantic model) that the error location `loc` points into."""
    model: type[BaseModel] | None = recipe_model()
    for part in loc:
        if model is None:
            return None
        if isinstance(part, int):
            continue
        info = model.model_fields.get(part)
        if info is None:
            return None
        model = _section_type(info.annotation)
    return model


def _section_type(annotation) -> type[BaseModel] | None:
    import typing

    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _section_type(arg)
        if found is not None:
            return found
    return None


def _problem(error: dict) -> str:
    """One validation error as `key.path: message`, with a suggestion for a misspelt key."""
    loc = tuple(error["loc"])
    key = ".".join(str(part) for part in loc) or "(top level)"
    if error["type"] != "extra_forbidden":
        return f"{key}: {error['msg'].removeprefix('Value error, ')}"
    section = _model_at(loc[:-1])
    renamed = getattr(section, "renamed", {}) if section else {}
    names = list(section.model_fields) + list(renamed) if section else []
    close = [renamed.get(name, name) for name in difflib.get_close_matches(str(loc[-1]), names, n=1, cutoff=0.6)]
    hint = f"did you mean '{close[0]}'?" if close else f"known keys: {', '.join(section.model_fields)}" if section else ""
    return f"{key}: unknown key" + (f"; {hint}" if hint else "")


MAX_YAML_VALUES = 100_000  # values a recipe may hold once its aliases are expanded


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader, except that a key given twice in one mapping is an error: plain YAML
    silently keeps the last value, so a recipe edited by appending `temperature: 1.0` would run
    with a setting its reader never sees; and that aliases are bounded: one that refers to the
    node holding it (`a: &a [*a]`), or aliases that expand to more than `MAX_YAML_VALUES` values
    (a "billion laughs" file), are refused before anything is built from them."""

    def get_single_node(self):
        node = super().get_single_node()
        if node is not None:
            _check_expansion(node)
        return node

    def construct_mapping(self, node, deep=False):
        first_line: dict = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            try:
                seen = first_line.get(key)
            except TypeError:  # an unhashable key: let the base loader report it
                continue
            line = key_node.start_mark.line + 1
            if seen is not None:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} given twice, first on line {seen}", key_node.start_mark
                )
            first_line[key] = line
        return super().construct_mapping(node, deep=deep)


def _check_expansion(root) -> None:
    """Raise a ComposerError (with its line) for a recursive alias or a node graph that expands
    to more than MAX_YAML_VALUES values; iterative, so deep nesting cannot overflow the stack."""
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()
    stack = [(root, False)]
    while stack:
        node, closing = stack.pop()
        children = [part for pair in node.value for part in pair] if isinstance(node, yaml.MappingNode) else \
            list(node.value) if isinstance(node, yaml.SequenceNode) else []
        if closing:
            open_nodes.discard(id(node))
            sizes[id(node)] = 1 + sum(sizes[id(child)] for child in children)
            if sizes[id(node)] > MAX_YAML_VALUES:
                raise yaml.composer.ComposerError(None, None, f"aliases expand to more than {MAX_YAML_VALUES:,} values",
                                                  node.start_mark)
            continue
        if id(node) in sizes:
            continue
        open_nodes.add(id(node))
        stack.append((node, True))
        for child in children:
            if id(child) in open_nodes:
                raise yaml.composer.ComposerError(None, None, "an alias refers to the value that holds it (recursive)",
                                                  child.start_mark)
            if id(child) not in sizes:
                stack.append((child, False))


def load_recipe(name_or_path: str):
    """Read and validate a recipe; raise RecipeError naming the file and the bad keys."""
    source = resolve_recipe_path(name_or_path)
    label = str(name_or_path)
    raw = source.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise RecipeError(f"{label}:{line}: not valid UTF-8 (byte 0x{raw[exc.start]:02x})") from None
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{label}:{mark.line + 1}" if mark else label
        raise RecipeError(f"{where}: not valid YAML ({getattr(exc, 'problem', exc)})") from None
    except RecursionError:
        raise RecipeError(f"{label}: not valid YAML (nested too deeply to read)") from None
    if not isinstance(data, dict):
        raise RecipeError(f"{label}: expected a mapping of keys at the top level")
    missing: list[tuple[str, str]] = []
    data = expand_env(data, missing=missing)
    problems = []
    if missing:
        names = ", ".join(dict.fromkeys(name for _, name in missing))
        problems.append(f"environment variable(s) not set: {names} (for {', '.join(key for key, _ in missing)})")
    try:
        recipe = recipe_model().model_validate(data)
    except ValidationError as exc:
        problems += [_problem(error) for error in exc.errors()
                     if error["type"] == "extra_forbidden"
                     or not (isinstance(error.get("input"), str) and _ENV.search(error["input"]))]
    if problems:
        count = f"{len(problems)} problems: " if len(problems) > 1 else ""
        raise RecipeError(f"{label}: {count}" + "; ".join(problems))
    return recipe

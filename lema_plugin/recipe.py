"""The recipe: one YAML file that describes a whole LeMa experiment, validated before anything runs.

Like an axolotl config, a recipe names everything a run needs (data, generators, corrector, CoT
source, evolution, export, and optionally the fine-tune and the evaluation), so that a run can be
repeated or resumed from the file alone. Validation uses pydantic with unknown keys forbidden;
every problem is reported at once, as `RECIPE: key.path: message; ...` (a misspelt key with the
nearest real one, every unset environment variable by name), so a typo never costs a paid
request and a fix never needs a second run to find the next one. Keys are the spec grammar's for
an endpoint and the settings models' field names for a stage; `renamed` keeps the last release's
spellings working, with a warning.

A stage's keys take their defaults, bounds and help from that stage's settings model
(`settings.same_as`), so a recipe, the CLI and a library caller agree on every default; endpoints
are built field by field (`EndpointSpec.endpoint`), never through the spec mini-language.
"""
from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import ClassVar, Literal

import difflib
import logging
import os
import re

import yaml

from .correct.stage import CorrectSettings
from .cot import CotSettings
from .errors import LemaError
from .evolve.stage import EvolveSettings
from .first_error.stage import FirstErrorSettings
from .llm.endpoints import make_endpoint
from .llm.types import Endpoint
from .sample import SampleSettings
from .settings import ClientSettings, same_as
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

log = logging.getLogger(__name__)


def _shared(section: BaseModel, model: type[BaseModel]) -> dict:
    """The values of `section`'s keys that are also `model`'s fields (same names by design)."""
    return {name: getattr(section, name) for name in model.model_fields if name in type(section).model_fields}


class Strict(BaseModel):
    """Unknown keys refused. `renamed` maps a key's old spelling to its name now: the old one still
    works for one release, with a warning, so a recipe written for the last release still runs."""

    model_config = ConfigDict(extra="forbid")
    renamed: ClassVar[dict[str, str]] = {}

    @model_validator(mode="before")
    @classmethod
    def _old_spellings(cls, data):
        if not isinstance(data, dict):
            return data
        data = dict(data)
        for old, new in cls.renamed.items():
            if old not in data:
                continue
            if new in data:
                raise ValueError(f"'{old}' is the old name of '{new}': give only '{new}'")
            log.warning("recipe key '%s' is now '%s' (the old name goes in the next release)", old, new)
            data[new] = data.pop(old)
        return data


class EndpointSpec(Strict):
    """Where a model is served; the keys are the endpoint spec's (`lema sample --help`).
    `model: embedded` is the built-in SmolLM2-135M-Instruct."""

    renamed: ClassVar[dict[str, str]] = {"api_key_env": "key_env"}

    name: str | None = Field(None, description="Label in records and summaries.", json_schema_extra={"default_text": "the model"})
    model: str = Field("embedded", description="Model name the server knows; `embedded` = the built-in SmolLM2-135M-Instruct.")
    base_url: str | list[str] | None = Field(
        None, description="Server URL, or a list (requests are spread over them).",
        json_schema_extra={"default_text": "$OPENAI_BASE_URL, else the OpenAI API"})
    mode: Literal["chat", "completion"] = Field("chat", description="chat: /chat/completions; completion: /completions (base models).")
    key_env: str | None = Field(None, description="Environment variable holding the API key.",
                                json_schema_extra={"default_text": "OPENAI_API_KEY"})
    price: str | None = Field(None, description="USD per 1M tokens, IN/OUT (prompt/completion), for the cost figures.",
                              json_schema_extra={"default_text": "no cost figures"})
    concurrency: int | None = Field(None, ge=1, description="This endpoint's requests in flight, at most.",
                                    json_schema_extra={"default_text": "the run's concurrency"})
    timeout: float | None = Field(None, gt=0, description="Seconds per request for this endpoint.",
                                  json_schema_extra={"default_text": "the run's timeout"})
    batch: bool = Field(False, description="Send through the OpenAI Batch API (half price, answers within 24 h).")
    rpm: int | None = Field(None, ge=1, description="Requests per minute sent online, at most.",
                            json_schema_extra={"default_text": "no limit"})
    tpm: int | None = Field(None, ge=1, description="Tokens per minute sent online, at most.",
                            json_schema_extra={"default_text": "no limit"})

    @model_validator(mode="before")
    @classmethod
    def _old_price_keys(cls, data):
        """`price_prompt` + `price_completion` (last release) are `price: IN/OUT` now."""
        if isinstance(data, dict) and ({"price_prompt", "price_completion"} & data.keys()):
            if "price" in data:
                raise ValueError("'price_prompt'/'price_completion' are the old names of 'price': give only 'price'")
            data = dict(data)
            log.warning("recipe keys 'price_prompt'/'price_completion' are now 'price: IN/OUT' (the old names go in the next release)")
            data["price"] = [data.pop("price_prompt", 0.0), data.pop("price_completion", 0.0)]
        return data

    @field_validator("price", mode="before")
    @classmethod
    def _price_pair(cls, value):
        if value is None:
            return None
        parts = value.split("/") if isinstance(value, str) else list(value) if isinstance(value, (list, tuple)) else [value]
        try:
            pair = [float(p) for p in parts]
        except (TypeError, ValueError):
            raise ValueError("expected 'IN/OUT', USD per 1M prompt and completion tokens, e.g. 2.5/10") from None
        if len(pair) != 2 or min(pair) < 0:
            raise ValueError("expected 'IN/OUT', two prices of at least 0, e.g. 2.5/10")
        return f"{pair[0]:g}/{pair[1]:g}"

    def endpoint(self) -> Endpoint:
        """The endpoint, built field by field: a recipe value is never read as spec syntax."""
        urls = [self.base_url] if isinstance(self.base_url, str) else (self.base_url or [])
        price_prompt, price_completion = (float(p) for p in self.price.split("/")) if self.price else (None, None)
        return make_endpoint(
            self.model, urls, name=self.name, mode=self.mode, api_key_env=self.key_env,
            price_prompt=price_prompt, price_completion=price_completion,
            max_concurrency=self.concurrency, timeout=self.timeout, batch=self.batch, rpm=self.rpm, tpm=self.tpm,
            where=f"endpoint {self.name or self.model!r}",
        )


class Generator(EndpointSpec):
    """A generator endpoint and how it is sampled (defaults: `SampleSettings`)."""

    samples: int = same_as(SampleSettings, "samples")
    temperature: float = same_as(SampleSettings, "temperature")
    top_p: float = same_as(SampleSettings, "top_p")
    max_tokens: int = same_as(SampleSettings, "max_tokens")
    prompt: str = same_as(SampleSettings, "prompt")
    seed: int | None = same_as(SampleSettings, "seed")

    @field_validator("prompt")
    @classmethod
    def _usable_prompt(cls, name: str) -> str:
        from .prompts import check_template

        return check_template(name, ("question",))

    def settings(self, max_mistakes_per_question: int | None, keep_unfinished: bool = False,
                 judge: Endpoint | None = None) -> SampleSettings:
        return SampleSettings(**_shared(self, SampleSettings), max_mistakes_per_question=max_mistakes_per_question,
                              keep_unfinished=keep_unfinished, judge=judge)


class Corrector(EndpointSpec):
    """The corrector endpoint and how it is asked (defaults: `CorrectSettings`)."""

    renamed: ClassVar[dict[str, str]] = {**EndpointSpec.renamed, "attempts": "samples", "prompt": "style"}

    style: Literal["fewshot", "zeroshot"] = same_as(CorrectSettings, "style")
    samples: int = same_as(CorrectSettings, "samples")
    keep: int = same_as(CorrectSettings, "keep")
    temperature: float | None = same_as(CorrectSettings, "temperature")
    top_p: float = same_as(CorrectSettings, "top_p")
    max_tokens: int = same_as(CorrectSettings, "max_tokens")

    def settings(self, judge: Endpoint | None = None) -> CorrectSettings:
        return CorrectSettings(**_shared(self, CorrectSettings), judge=judge)


class Cot(Strict):
    """Where CoT targets come from; with `source: model`, how it is sampled (defaults: `CotSettings`)."""

    source: Literal["gold", "model", "none"] = Field(
        "gold", description="gold: the dataset's rationales; model: rejection-sample `model`; none: no CoT.")
    model: EndpointSpec | None = Field(None, description="The strong model for `source: model` (endpoint keys).",
                                       json_schema_extra={"default_text": "none"})
    samples: int = same_as(CotSettings, "samples")
    keep: int = same_as(CotSettings, "keep")
    temperature: float = same_as(CotSettings, "temperature")
    max_tokens: int = same_as(CotSettings, "max_tokens")

    @model_validator(mode="after")
    def _model_needs_endpoint(self):
        if self.source == "model" and self.model is None:
            raise ValueError("source 'model' needs a 'model' endpoint")
        return self

    def settings(self, judge: Endpoint | None = None) -> CotSettings:
        return CotSettings(**_shared(self, CotSettings), judge=judge)


class Evolve(Strict):
    """Optional evolution (defaults: `EvolveSettings`)."""

    renamed: ClassVar[dict[str, str]] = {"answers": "samples"}

    enabled: bool = Field(False, description="Grow the question set from the corrected questions.")
    model: EndpointSpec | None = Field(None, description="The strong model (endpoint keys).",
                                       json_schema_extra={"default_text": "the corrector"})
    per_seed: int = same_as(EvolveSettings, "per_seed")
    styles: tuple[Literal["similar", "harder"], ...] = same_as(EvolveSettings, "styles")
    samples: int = same_as(EvolveSettings, "samples")
    min_agreement: float = same_as(EvolveSettings, "min_agreement")
    generate_temperature: float = same_as(EvolveSettings, "generate_temperature")
    temperature: float = same_as(EvolveSettings, "temperature")
    generate_max_tokens: int = same_as(EvolveSettings, "generate_max_tokens")
    max_tokens: int = same_as(EvolveSettings, "max_tokens")
    ngram: int = same_as(EvolveSettings, "ngram")
    max_overlap: float = same_as(EvolveSettings, "max_overlap")

    def settings(self, judge: Endpoint | None = None) -> EvolveSettings:
        return EvolveSettings(**_shared(self, EvolveSettings), judge=judge)


class FirstError(Strict):
    """Optional: check each correction's named first error by sampled continuations (defaults:
    `FirstErrorSettings`); `confirmed_only` builds the step-level kinds from confirmed ones."""

    enabled: bool = Field(False, description="Check each correction's named first wrong step.")
    generator: EndpointSpec | None = Field(None, description="The model that samples the continuations (endpoint keys).",
                                           json_schema_extra={"default_text": "the first generator"})
    samples: int = same_as(FirstErrorSettings, "samples")
    temperature: float = same_as(FirstErrorSettings, "temperature")
    top_p: float = same_as(FirstErrorSettings, "top_p")
    max_tokens: int = same_as(FirstErrorSettings, "max_tokens")
    min_before: float = same_as(FirstErrorSettings, "min_before")
    max_after: float = same_as(FirstErrorSettings, "max_after")
    confirmed_only: bool = Field(False, description="Build the step-level kinds from confirmed corrections only.")

    @model_validator(mode="after")
    def _consistent(self):
        self.settings()  # thresholds that cannot both hold are refused before any request
        if self.confirmed_only and not self.enabled:
            raise ValueError("confirmed_only needs the check: set enabled: true")
        return self

    def settings(self) -> FirstErrorSettings:
        return FirstErrorSettings(samples=self.samples, temperature=self.temperature, top_p=self.top_p,
                                  max_tokens=self.max_tokens, min_before=self.min_before, max_after=self.max_after)


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


class Train(Strict):
    """Optional: run `axolotl train` on the exported LeMa mix when the data is built."""

    config: str = Field(description="axolotl config file (a name in axolotl_configs/ is found without the checkout).")
    base_model: str | None = Field(None, description="The model to fine-tune; 'embedded' = the cached SmolLM2 model.",
                                   json_schema_extra={"default_text": "the config's"})
    max_steps: int | None = Field(None, ge=1, description="Optimizer steps.", json_schema_extra={"default_text": "the config's"})


class Eval(Strict):
    """Optional: run `lm_eval` on the trained adapter (or the base model) with the lema tasks."""

    tasks: list[str] = Field(["lema_gsm8k"], description="lm-eval task names from `lema tasks-path`.")
    limit: int | None = Field(None, ge=1, description="lm_eval --limit: first N test questions.",
                              json_schema_extra={"default_text": "all"})
    max_gen_toks: int = Field(512, ge=1, description="Token limit per answer.")
    batch_size: int = Field(8, ge=1, description="lm_eval --batch_size.")


class Recipe(Strict):
    """A whole LeMa experiment."""

    dataset: Literal["gsm8k", "math", "math500"] = Field("gsm8k", description="Which problems.")
    split: str = Field("train", description="Dataset split (mistakes are collected on training questions).")
    data_file: str | None = Field(None, description="Problems from this JSONL/Parquet file.",
                                  json_schema_extra={"default_text": "$LEMA_DATA_DIR, else the hub"})
    limit: int | None = Field(None, ge=1, description="Use only the first N problems.", json_schema_extra={"default_text": "all"})
    out: str = Field("runs/lema", description="Run folder; every stage writes under it and resumes from it.")
    concurrency: int = same_as(ClientSettings, "concurrency")
    timeout: float = same_as(ClientSettings, "timeout")
    max_retries: int = same_as(ClientSettings, "max_retries")
    max_cost: float | None = Field(None, ge=0, description="USD this run may spend at most (lema run --max-cost).",
                                   json_schema_extra={"default_text": "no limit"})
    max_mistakes_per_question: int | None = same_as(SampleSettings, "max_mistakes_per_question")
    keep_unfinished: bool = same_as(SampleSettings, "keep_unfinished")
    generators: list[Generator] = Field(..., min_length=1, description="The models whose mistakes are collected.")
    corrector: Corrector = Field(Corrector(), description="The model that corrects the mistakes.")
    cot: Cot = Field(Cot(), description="Where the CoT examples come from.")
    evolve: Evolve = Field(Evolve(), description="Correction-centric evolution of the question set.")
    judge: EndpointSpec | None = Field(
        None, description="An LLM judge for the answers the rules cannot decide, in every stage that grades.",
        json_schema_extra={"default_text": "off"})
    first_error: FirstError = Field(FirstError(), description="Check each correction's named first wrong step.")
    export: Export = Field(Export(), description="The axolotl training sets.")
    train: Train | None = Field(None, description="Fine-tune with axolotl after the data is built.",
                                json_schema_extra={"default_text": "off"})
    eval: Eval | None = Field(None, description="Score the result with lm-eval.", json_schema_extra={"default_text": "off"})


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
    model: type[BaseModel] | None = Recipe
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


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader, except that a key given twice in one mapping is an error: plain YAML
    silently keeps the last value, so a recipe edited by appending `temperature: 1.0` would run
    with a setting its reader never sees."""

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


def load_recipe(name_or_path: str) -> Recipe:
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
    if not isinstance(data, dict):
        raise RecipeError(f"{label}: expected a mapping of keys at the top level")
    missing: list[tuple[str, str]] = []
    data = expand_env(data, missing=missing)
    problems = []
    if missing:
        names = ", ".join(dict.fromkeys(name for _, name in missing))
        problems.append(f"environment variable(s) not set: {names} (for {', '.join(key for key, _ in missing)})")
    try:
        recipe = Recipe.model_validate(data)
    except ValidationError as exc:
        problems += [_problem(error) for error in exc.errors()
                     if error["type"] == "extra_forbidden"
                     or not (isinstance(error.get("input"), str) and _ENV.search(error["input"]))]
    if problems:
        count = f"{len(problems)} problems: " if len(problems) > 1 else ""
        raise RecipeError(f"{label}: {count}" + "; ".join(problems))
    return recipe

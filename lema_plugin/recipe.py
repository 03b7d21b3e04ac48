"""The recipe: one YAML file that describes a whole LeMa experiment, validated before anything runs.

Like an axolotl config, a recipe names everything a run needs (data, generators, corrector, CoT
source, evolution, export, and optionally the fine-tune and the evaluation), so that a run can be
repeated or resumed from the file alone. Validation uses pydantic with unknown keys forbidden, and
errors are reported as `RECIPE: key.path: message` so a typo never costs a paid request.

A stage's keys take their defaults, bounds and help from that stage's settings model
(`settings.same_as`), so a recipe, the CLI and a library caller agree on every default; endpoints
are built field by field (`EndpointSpec.endpoint`), never through the spec mini-language.
"""
from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Literal

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
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EndpointSpec(Strict):
    """Where a model is served. `model: embedded` is the built-in SmolLM2-135M-Instruct."""

    name: str | None = None
    model: str = "embedded"
    base_url: str | list[str] | None = None
    mode: Literal["chat", "completion"] = "chat"
    api_key_env: str | None = None
    price_prompt: float | None = Field(None, ge=0, description="USD per 1M prompt tokens")
    price_completion: float | None = Field(None, ge=0, description="USD per 1M completion tokens")
    concurrency: int | None = Field(None, ge=1, description="this endpoint's requests in flight, at most")
    timeout: float | None = Field(None, gt=0, description="seconds per request")
    batch: bool = Field(False, description="send through the OpenAI Batch API (half price, answers within 24 h)")
    rpm: int | None = Field(None, ge=1, description="requests per minute sent online, at most")
    tpm: int | None = Field(None, ge=1, description="tokens per minute sent online, at most")

    def endpoint(self) -> Endpoint:
        """The endpoint, built field by field: a recipe value is never read as spec syntax."""
        urls = [self.base_url] if isinstance(self.base_url, str) else (self.base_url or [])
        return make_endpoint(
            self.model, urls, name=self.name, mode=self.mode, api_key_env=self.api_key_env,
            price_prompt=self.price_prompt, price_completion=self.price_completion,
            max_concurrency=self.concurrency, timeout=self.timeout, batch=self.batch, rpm=self.rpm, tpm=self.tpm,
            where=f"endpoint {self.name or self.model!r}",
        )


class Generator(EndpointSpec):
    """A generator endpoint and how it is sampled (defaults: `SampleSettings`)."""

    samples: int = same_as(SampleSettings, "samples_per_question")
    temperature: float = same_as(SampleSettings, "temperature")
    top_p: float = same_as(SampleSettings, "top_p")
    max_tokens: int = same_as(SampleSettings, "max_tokens")

    def settings(self, max_mistakes_per_question: int | None, judge: Endpoint | None = None) -> SampleSettings:
        return SampleSettings(samples_per_question=self.samples, temperature=self.temperature, top_p=self.top_p,
                              max_tokens=self.max_tokens, max_mistakes_per_question=max_mistakes_per_question, judge=judge)


class Corrector(EndpointSpec):
    """The corrector endpoint and how it is asked (defaults: `CorrectSettings`)."""

    prompt: Literal["fewshot", "zeroshot"] = same_as(CorrectSettings, "style")
    attempts: int = same_as(CorrectSettings, "attempts")
    keep: int = same_as(CorrectSettings, "keep")
    temperature: float | None = same_as(CorrectSettings, "temperature")
    top_p: float = same_as(CorrectSettings, "top_p")
    max_tokens: int = same_as(CorrectSettings, "max_tokens")

    def settings(self, judge: Endpoint | None = None) -> CorrectSettings:
        return CorrectSettings(attempts=self.attempts, keep=self.keep, temperature=self.temperature, top_p=self.top_p,
                               max_tokens=self.max_tokens, style=self.prompt, judge=judge)


class Cot(Strict):
    """Where CoT targets come from; with `source: model`, how it is sampled (defaults: `CotSettings`)."""

    source: Literal["gold", "model", "none"] = "gold"
    model: EndpointSpec | None = None
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
        return CotSettings(samples=self.samples, keep=self.keep, temperature=self.temperature, max_tokens=self.max_tokens,
                           judge=judge)


class Evolve(Strict):
    """Optional evolution (defaults: `EvolveSettings`)."""

    enabled: bool = False
    model: EndpointSpec | None = None  # defaults to the corrector's endpoint
    per_seed: int = same_as(EvolveSettings, "per_seed")
    answers: int = same_as(EvolveSettings, "answers")
    min_agreement: float = same_as(EvolveSettings, "min_agreement")

    def settings(self, judge: Endpoint | None = None) -> EvolveSettings:
        return EvolveSettings(per_seed=self.per_seed, answers=self.answers, min_agreement=self.min_agreement, judge=judge)


class FirstError(Strict):
    """Optional: check each correction's named first error by sampled continuations (defaults:
    `FirstErrorSettings`); `confirmed_only` builds the step-level kinds from confirmed ones."""

    enabled: bool = False
    generator: EndpointSpec | None = None  # defaults to the recipe's first generator
    samples: int = same_as(FirstErrorSettings, "samples")
    temperature: float = same_as(FirstErrorSettings, "temperature")
    top_p: float = same_as(FirstErrorSettings, "top_p")
    max_tokens: int = same_as(FirstErrorSettings, "max_tokens")
    min_before: float = same_as(FirstErrorSettings, "min_before")
    max_after: float = same_as(FirstErrorSettings, "max_after")
    confirmed_only: bool = Field(False, description="build the step-level kinds from confirmed corrections only")

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
    format: Literal["chat_template", "input_output", "alpaca"] = "chat_template"
    # SFT mixes, and the step-level kinds (Step-DPO pairs, whole-solution pairs, PRM labels)
    mixes: list[Literal["lema", "cot-only", "cot-size-matched", "step-dpo", "solution-dpo", "prm"]] = ["lema", "cot-only"]
    val_fraction: float = Field(0.0, ge=0, lt=1)
    seed: int = 0
    # input_output rows are raw text: the model's BOS/EOS must be written in (LLaMA-2: <s> / </s>)
    bos_token: str = ""
    eos_token: str = ""
    axolotl_config: str | None = Field(
        None, description="base axolotl config of the ready config written next to each mix (default: train.config)"
    )


class Train(Strict):
    """Optional: run `axolotl train` on the exported LeMa mix when the data is built."""

    config: str
    base_model: str | None = Field(None, description="'embedded' = the cached SmolLM2 model directory")
    max_steps: int | None = Field(None, ge=1)


class Eval(Strict):
    """Optional: run `lm_eval` on the trained adapter (or the base model) with the lema tasks."""

    tasks: list[str] = ["lema_gsm8k"]
    limit: int | None = Field(None, ge=1)
    max_gen_toks: int = Field(512, ge=1)
    batch_size: int = Field(8, ge=1, description="lm_eval --batch_size")


class Recipe(Strict):
    dataset: Literal["gsm8k", "math", "math500"] = "gsm8k"
    split: str = "train"
    data_file: str | None = None
    limit: int | None = Field(None, ge=1, description="first N questions")
    out: str = "runs/lema"
    concurrency: int = same_as(ClientSettings, "concurrency")
    max_cost: float | None = Field(None, ge=0, description="USD this run may spend at most (lema run --max-cost)")
    max_mistakes_per_question: int | None = same_as(SampleSettings, "max_mistakes_per_question")
    generators: list[Generator] = Field(..., min_length=1)
    corrector: Corrector = Corrector()
    cot: Cot = Cot()
    evolve: Evolve = Evolve()
    judge: EndpointSpec | None = Field(
        None, description="An LLM judge for the answers the rules cannot decide, in every stage that grades (off by default)")
    first_error: FirstError = FirstError()
    export: Export = Export()
    train: Train | None = None
    eval: Eval | None = None


class RecipeError(LemaError, ValueError):
    """A recipe that does not validate; the message names the file and each bad key."""


def builtin_recipes() -> list[str]:
    folder = resources.files("lema_plugin.recipes")
    return sorted(p.name[: -len(".yaml")] for p in folder.iterdir() if p.name.endswith(".yaml"))


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


def expand_env(value, key: str = ""):
    """Replace `${VAR}` and `${VAR:-default}` in every string of a parsed recipe.

    Endpoints and keys of real runs live in the environment, so a shipped recipe needs no edits.
    An unset variable without a default is an error that names the recipe key.
    """
    if isinstance(value, dict):
        return {k: expand_env(v, f"{key}.{k}" if key else str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [expand_env(v, f"{key}.{i}") for i, v in enumerate(value)]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match) -> str:
        name, default = match.group(1), match.group(2)
        if name in os.environ:
            return os.environ[name]
        if default is not None:
            return default
        raise RecipeError(f"{key}: environment variable {name} is not set")

    return _ENV.sub(substitute, value)


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
    try:
        data = expand_env(data)
    except RecipeError as exc:
        raise RecipeError(f"{label}: {exc}") from None
    try:
        return Recipe.model_validate(data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            key = ".".join(str(part) for part in error["loc"]) or "(top level)"
            problems.append(f"{key}: {error['msg']}")
        raise RecipeError(f"{label}: " + "; ".join(problems)) from None

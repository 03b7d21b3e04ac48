"""Settings models: one pydantic model per stage, the only place its defaults live.

A stage takes its settings as one frozen model. The click options of its command are generated
from the model's fields (`lema_plugin.cli.options`), and a recipe section is built from the same
fields (`same_as`), so the CLI, a recipe and a library caller can never disagree on a default.

A field that decides what a record *is* (a temperature, a prompt, a token limit: change it and the
same request gets another answer) is marked once, with `decisive(...)` in place of `Field(...)`.
The mark is the one source of three things: the values a run folder remembers and a rerun may not
change (`Settings.decisive_values`, kept by `manifest`), the record ids (a stage hashes the same
values into them), and the options' help ("a new value needs --fresh"). Renaming a marked field
carries the mark along, so nothing keyed by hand can silently drop it.
"""
from __future__ import annotations

import copy
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic.fields import FieldInfo

from .errors import ConfigError
from .llm.types import Endpoint


def describe(exc: ValidationError) -> str:
    """A pydantic error as one line: `key.path: message; ...`."""
    return "; ".join(f"{'.'.join(str(p) for p in e['loc']) or '(top level)'}: {e['msg']}" for e in exc.errors())


class SettingsError(ConfigError):
    """Settings a model refuses; `errors` keeps pydantic's list so a caller can name its own keys."""

    def __init__(self, model: str, exc: ValidationError):
        self.errors = exc.errors()
        super().__init__(f"{model}: {describe(exc)}")


DECIDES = "decides"  # the schema extra that marks a decisive field


def decisive(default=..., **kwargs) -> FieldInfo:
    """`Field(...)` for a setting that decides the records (see the module docstring)."""
    extra = dict(kwargs.pop("json_schema_extra", None) or {})
    extra[DECIDES] = True
    return Field(default, json_schema_extra=extra, **kwargs)


def is_decisive(info: FieldInfo) -> bool:
    return isinstance(info.json_schema_extra, dict) and bool(info.json_schema_extra.get(DECIDES))


class Settings(BaseModel):
    """Frozen, unknown names refused; a bad value is a `ConfigError` naming the field."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    def __init__(self, **values):
        try:
            super().__init__(**values)
        except ValidationError as exc:
            raise SettingsError(type(self).__name__, exc) from None

    @classmethod
    def decisive_fields(cls) -> list[str]:
        return [name for name, info in cls.model_fields.items() if is_decisive(info)]

    def decisive_values(self) -> dict:
        """The marked fields and their values: what a run folder keeps fixed and ids hash."""
        return {name: getattr(self, name) for name in self.decisive_fields()}


def same_as(model: type[BaseModel], name: str, **changes) -> FieldInfo:
    """A copy of `model`'s field `name` (default, bounds, description) for use in another model,
    e.g. a recipe key that spells a stage setting its own way."""
    info = copy.copy(model.model_fields[name])
    for key, value in changes.items():
        setattr(info, key, value)
    return info


class ProblemSource(Settings):
    """Which problems a stage reads: the same four options for every command and a recipe."""

    dataset: Literal["gsm8k", "math", "math500"] = Field("gsm8k", description="Which problems.")
    split: str = Field("train", description="Dataset split (mistakes are collected on training questions).")
    data_file: str | None = Field(None, description="Problems from this JSONL/Parquet file: a `question` and its "
                                  "`answer` a line, or GSM8K's / MATH's own fields (docs/records.md).",
                                  json_schema_extra={"default_text": "$LEMA_DATA_DIR, else the hub"})
    limit: int | None = Field(None, ge=1, description="Use only the first N problems.", json_schema_extra={"default_text": "all"})

    def load(self):
        from .problems import load_problems

        return load_problems(self.dataset, self.split, self.data_file, self.limit)


class ClientSettings(Settings):
    """How the one LLM client talks to every endpoint (a spec's `;concurrency=` and `;timeout=`
    narrow them for one endpoint)."""

    concurrency: int = Field(32, ge=1, description="Requests in flight at once, over all endpoints.")
    timeout: float = Field(120.0, gt=0, description="Seconds per request.")
    max_retries: int = Field(5, ge=0, description="Retries per failed request.")


class JudgeSettings(Settings):
    """The judge setting every grading stage shares (sample, import, correct, CoT, evolve), defined once.

    `judge` is an `Endpoint`, or an endpoint spec that is parsed into one (the CLI's `--judge
    SPEC`); a recipe's `judge:` block builds the `Endpoint` field by field. The judge is asked only
    about items the rules cannot decide (`grading.judge`); off by default.
    """

    judge: Endpoint | None = Field(
        None, description="Ask this LLM endpoint (an endpoint SPEC) about the answers the rules cannot decide (no answer "
        "found, free-form text, equations written differently).", json_schema_extra={"default_text": "none: the rules decide alone"})

    @field_validator("judge", mode="before")
    @classmethod
    def _spec(cls, value):
        if isinstance(value, str):
            from .llm.endpoints import parse_endpoint

            return parse_endpoint(value, default_name="judge") if value.strip() else None
        return value

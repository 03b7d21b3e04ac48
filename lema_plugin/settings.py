"""Settings models: one pydantic model per stage, the only place its defaults live.

A stage takes its settings as one frozen model. The click options of its command are generated
from the model's fields (`lema_plugin.cli.options`), and a recipe composes the same fields
(`same_as`), so the CLI, a recipe and a library caller can never disagree on a default.
"""
from __future__ import annotations

import copy

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


class Settings(BaseModel):
    """Frozen, unknown names refused; a bad value is a `ConfigError` naming the field."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    def __init__(self, **values):
        try:
            super().__init__(**values)
        except ValidationError as exc:
            raise SettingsError(type(self).__name__, exc) from None


def same_as(model: type[BaseModel], name: str, **changes) -> FieldInfo:
    """A copy of `model`'s field `name` (default, bounds, description) for use in another model,
    e.g. a recipe key that spells a stage setting its own way."""
    info = copy.copy(model.model_fields[name])
    for key, value in changes.items():
        setattr(info, key, value)
    return info


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

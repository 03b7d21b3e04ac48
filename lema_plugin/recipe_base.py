"""The two kinds of recipe section every section builds on: `Strict` (unknown keys refused, old
spellings still read) and `EndpointSpec` (where a model is served, key by key)."""
from __future__ import annotations

import logging
import math
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from .llm.types import Endpoint
from .settings import MAX_CONCURRENCY, MAX_COUNT, MAX_SECONDS

log = logging.getLogger("lema_plugin.recipe")


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
    key_env: str | None = Field(None, description="Environment variable holding the API key; it must be set. Without "
                                "key_env, an endpoint with a base_url is keyless (a local server) and one without "
                                "sends $OPENAI_API_KEY.",
                                json_schema_extra={"default_text": "none with base_url, else OPENAI_API_KEY"})
    price: str | None = Field(None, description="USD per 1M tokens, IN/OUT (prompt/completion), for the cost figures.",
                              json_schema_extra={"default_text": "no cost figures"})
    concurrency: int | None = Field(None, ge=1, le=MAX_CONCURRENCY, description="This endpoint's requests in flight, at most.",
                                    json_schema_extra={"default_text": "the run's concurrency"})
    timeout: float | None = Field(None, gt=0, le=MAX_SECONDS, description="Seconds per request for this endpoint.",
                                  json_schema_extra={"default_text": "the run's timeout"})
    batch: bool = Field(False, description="Send through the OpenAI Batch API (half price, answers within 24 h).")
    rpm: int | None = Field(None, ge=1, le=MAX_COUNT, description="Requests per minute sent online, at most.",
                            json_schema_extra={"default_text": "no limit"})
    tpm: int | None = Field(None, ge=1, le=MAX_COUNT, description="Tokens per minute sent online, at most.",
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
        if len(pair) != 2 or not all(math.isfinite(p) and p >= 0 for p in pair):
            raise ValueError("expected 'IN/OUT', two finite prices of at least 0, e.g. 2.5/10")
        return f"{pair[0]:g}/{pair[1]:g}"

    @field_validator("key_env")
    @classmethod
    def _variable_name(cls, value):
        from .keys import looks_like_key

        if value is not None and (looks_like_key(value) or not value.replace("_", "a").isalnum()):
            raise ValueError("expected the name of the environment variable that holds the key, e.g. OPENAI_API_KEY "
                             "(the value given is not shown, in case it is the key itself)")
        return value

    def endpoint(self) -> Endpoint:
        """The endpoint, built field by field: a recipe value is never read as spec syntax."""
        urls = [self.base_url] if isinstance(self.base_url, str) else (self.base_url or [])
        from .llm.endpoints import make_endpoint

        price_prompt, price_completion = (float(p) for p in self.price.split("/")) if self.price else (None, None)
        return make_endpoint(
            self.model, urls, name=self.name, mode=self.mode, api_key_env=self.key_env,
            price_prompt=price_prompt, price_completion=price_completion,
            max_concurrency=self.concurrency, timeout=self.timeout, batch=self.batch, rpm=self.rpm, tpm=self.tpm,
            where=f"endpoint {self.name or self.model!r}",
        )

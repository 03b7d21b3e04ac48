"""LLM access: the shared data types and the one OpenAI-compatible client.

Thin on purpose: importing `lema_plugin.llm.types` (what settings and stage declarations need)
must not load `openai`; `LLMClient` is imported the first time it is asked for.
"""
from .types import Completion, Endpoint, Request

__all__ = ["LLMClient", "Endpoint", "Request", "Completion", "Usage"]


def __getattr__(name: str):
    if name == "LLMClient":
        from .client import LLMClient

        return LLMClient
    if name == "Usage":
        from .usage import Usage

        return Usage
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

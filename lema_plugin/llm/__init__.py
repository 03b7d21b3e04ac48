"""LLM access: the shared data types and the one OpenAI-compatible client."""
from .client import LLMClient
from .types import Completion, Endpoint, Request
from .usage import Usage

__all__ = ["LLMClient", "Endpoint", "Request", "Completion", "Usage"]

"""Test support for lema-plugin: a scripted OpenAI-compatible server on 127.0.0.1.

Kept out of the installed library: it is for the project's tests and benchmarks, and for anyone
who wants to try their own flow against a server whose every answer they decide. From a
checkout, `PYTHONPATH=tests python -m lema_testing --help` runs it (see the README).
"""
from .scripted_server import Reply, ScriptedServer, count_tokens, echo_responder, prompt_text

__all__ = ["Reply", "ScriptedServer", "count_tokens", "echo_responder", "prompt_text"]

"""The solve request: how sample, cot and evolve ask a model to solve a problem.

One builder, so the three stages ask in the same words and a cached answer serves all of them.
"""
from __future__ import annotations

from .llm.types import Endpoint, Request
from .problems import Problem
from .prompts import render

COMPLETION_STOP = ("\nQuestion:",)  # a base model would otherwise go on to invent the next question


def solve_request(
    problem: Problem,
    endpoint: Endpoint,
    sample_index: int = 0,
    *,
    prompt: str = "solve",
    temperature: float = 0.7,
    top_p: float = 1.0,
    max_tokens: int = 512,
    seed: int | None = None,
) -> Request:
    """The request for one sample: the template as the user message (chat) or the prompt
    (completion mode, stopped before a made-up next question)."""
    text = render(prompt, question=problem.question)
    common = dict(
        temperature=temperature,
        top_p=top_p,
        max_tokens=max_tokens,
        seed=None if seed is None else seed + sample_index,
        sample_index=sample_index,
    )
    if endpoint.mode == "completion":
        return Request(prompt=text, stop=COMPLETION_STOP, **common)
    return Request(messages=(("user", text.rstrip()),), **common)

"""The request that asks for one new question in the style of a seed."""
from __future__ import annotations

from lema_plugin.llm.types import Endpoint, Request
from lema_plugin.prompts import load_prompt, render

from .seeds import Seed

STYLES = ("similar", "harder")


def generation_request(seed: Seed, style: str, endpoint: Endpoint, config, index: int) -> Request:
    """Ask for one new question in `style` after `seed` (a base model stops before an answer)."""
    prompt = render(f"evolve_{seed.dataset}", question=seed.question, task=load_prompt(f"evolve_{style}").strip())
    common = dict(temperature=config.generate_temperature, max_tokens=config.generate_max_tokens, sample_index=index)
    if endpoint.mode == "completion":
        return Request(prompt=prompt, stop=("\nAnswer:", "\nSolution:", "\nProblem:"), **common)
    return Request(messages=(("user", prompt.rstrip()),), **common)

"""The two requests a corrector is scored by.

- the LeMa protocol: exactly what `lema correct` sends for a mistake (its prompt style, its
  numbering: "Step 1" is the first paragraph), built by `correct.prompt.build_request`, so the
  score measures the corrector in the situation it will be paid for;
- the ProcessBench protocol: `critique_steps`, a critique prompt that allows "no error": the
  paragraphs tagged with their 0-based index, the answer the first wrong index in `\\boxed{}`,
  or -1 (the output format ProcessBench's own evaluation reads).
"""
from __future__ import annotations

from lema_plugin.correct.prompt import build_request
from lema_plugin.llm.types import Endpoint, Request
from lema_plugin.prompts import render

from .items import Item

PROTOCOLS = ("lema", "processbench")
CRITIQUE = "critique_steps"


def as_mistake(item: Item) -> dict:
    """The item as `lema correct` sees a mistake: its question and its steps."""
    return {"dataset": item.dataset, "question": item.problem, "steps": list(item.steps)}


def critique_prompt(item: Item) -> str:
    paragraphs = "\n\n".join(f"<paragraph_{i}>\n{text.strip()}\n</paragraph_{i}>" for i, text in enumerate(item.steps))
    return render(CRITIQUE, problem=item.problem.strip(), paragraphs=paragraphs)


def score_request(protocol: str, item: Item, endpoint: Endpoint, settings) -> Request:
    """The request of one item under one protocol, with the run's sampling settings."""
    if protocol == "lema":
        return build_request(as_mistake(item), endpoint, settings.style, 0, settings.temperature, 1.0,
                             settings.max_tokens)
    text = critique_prompt(item)
    common = dict(temperature=settings.temperature, max_tokens=settings.max_tokens)
    if endpoint.mode == "completion":
        return Request(prompt=text, **common)
    return Request(messages=(("user", text),), **common)

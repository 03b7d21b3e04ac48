"""Build the request that asks a corrector to correct one mistake.

Two prompt styles:

- `fewshot` (default): `correct_gsm8k` / `correct_math`, an instruction and five worked
  corrections written for this project. The GSM8K examples use GSM8K training problems; the
  MATH examples use problems written in the style of MATH training problems (the MATH training
  split is not shipped with the test data, and original problems cannot leak a test item).
  Works for chat models and, in completion mode, for base models.
- `zeroshot`: `correct_zeroshot`, the instruction and format alone, for strong chat models
  that follow a format without examples (cheaper: a fifth of the prompt tokens).

In completion mode the prompt ends with "Incorrect Step:" so a base model answers in the
format, and generation stops where it would begin another example; `reply_text` puts the label
back before parsing.
"""
from __future__ import annotations

from lema_plugin.errors import ConfigError
from lema_plugin.llm.types import Endpoint, Request
from lema_plugin.problems import grader_dataset
from lema_plugin.prompts import render
from lema_plugin.steps import render_steps

STYLES = ("fewshot", "zeroshot")
COMPLETION_CUE = "Incorrect Step:"
COMPLETION_STOP = ("\nQuestion:", "\n\nQuestion:")
ANSWER_RULES = {
    "gsm8k": 'End the last step with the sentence "The answer is X." where X is the final number.',
    "math": 'End the last step with the sentence "The answer is $\\boxed{X}$." where X is the final answer in simplest form.',
}


def template_name(dataset: str, style: str) -> str:
    if style not in STYLES:
        raise ConfigError(f"prompt style must be one of {', '.join(STYLES)}, not {style!r}")
    return "correct_zeroshot" if style == "zeroshot" else f"correct_{grader_dataset(dataset)}"


def prompt_text(mistake: dict, style: str) -> str:
    """The corrector prompt for one mistake record (question + its numbered steps)."""
    dataset = grader_dataset(mistake["dataset"])
    fields = {"question": mistake["question"].strip(), "steps": render_steps(mistake["steps"])}
    if style == "zeroshot":
        fields["answer_rule"] = ANSWER_RULES[dataset]
    return render(template_name(dataset, style), **fields)


def build_request(
    mistake: dict,
    endpoint: Endpoint,
    style: str,
    attempt: int,
    temperature: float,
    top_p: float,
    max_tokens: int,
) -> Request:
    """One sampling request; `attempt` keeps the attempts of one mistake apart in the cache and
    is sent as the seed, so attempt k is not the same request as attempt j (a server, proxy or
    cache that answers identical bodies alike would otherwise return the same correction)."""
    text = prompt_text(mistake, style)
    common = dict(temperature=temperature, top_p=top_p, max_tokens=max_tokens, sample_index=attempt, seed=attempt)
    if endpoint.mode == "completion":
        return Request(prompt=f"{text}{COMPLETION_CUE}", stop=COMPLETION_STOP, **common)
    return Request(messages=(("user", text),), **common)


def reply_text(endpoint: Endpoint, raw: str) -> str:
    """The reply as the parser should read it (completion mode: the cue put back in front)."""
    return f"{COMPLETION_CUE}{raw}" if endpoint.mode == "completion" else raw

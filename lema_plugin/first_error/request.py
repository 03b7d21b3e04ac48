"""How a generator is asked to continue a partial solution, and how its continuation is graded.

Completion endpoints get the LeMa solve prompt followed by the prefix steps, one per line: the
prefix sits where the model's own answer would be, so the continuation is a true rollout (the
same text is the Step-DPO prompt). Chat endpoints get the same question and prefix in the user
turn, with one sentence asking to continue rather than start again.
"""
from __future__ import annotations

from lema_plugin.grading import answers_match, extract_answer
from lema_plugin.llm.types import Endpoint, Request
from lema_plugin.problems import grader_dataset
from lema_plugin.prompts import render

COMPLETION_STOP = ("\nQuestion:",)  # a base model would otherwise go on to invent the next question


def continuation_prompt(endpoint: Endpoint, question: str, prefix: tuple[str, ...]) -> str:
    if endpoint.mode == "completion":
        return render("solve", question=question) + "".join(f"{step}\n" for step in prefix)
    return render("continue_solution", question=question, steps="\n".join(prefix)).rstrip()


def continuation_request(prompt: str, endpoint: Endpoint, index: int, temperature: float, top_p: float,
                         max_tokens: int) -> Request:
    common = dict(temperature=temperature, top_p=top_p, max_tokens=max_tokens, sample_index=index)
    if endpoint.mode == "completion":
        return Request(prompt=prompt, stop=COMPLETION_STOP, **common)
    return Request(messages=(("user", prompt),), **common)


def grade_continuation(prefix: tuple[str, ...], continuation: str, gold: str, dataset: str) -> tuple[str | None, bool]:
    """The final answer of prefix + continuation, and whether it is right.

    The prefix is graded with the continuation: a continuation that only closes the sentence of
    a prefix that already stated its answer is judged on that answer.
    """
    dataset = grader_dataset(dataset)
    prediction = extract_answer("\n".join([*prefix, continuation]), dataset)
    return prediction, prediction is not None and answers_match(prediction, gold, dataset)

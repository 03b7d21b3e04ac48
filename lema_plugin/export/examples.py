"""Turn CoT and correction records into (prompt, response) training examples.

Both kinds share one shape so that every dataset format and every mix treats them alike: the
prompt is what the model reads at training time (and, for CoT, exactly the zero-shot prompt the
evaluation uses), the response is the only text that carries loss.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from lema_plugin.cot import answer_sentence, has_worked_steps
from lema_plugin.prompts import render
from lema_plugin.records import RecordError, read_jsonl

COT_FIELDS = ("id", "problem_id", "question", "rationale")
CORRECTION_FIELDS = (
    "id", "problem_id", "question", "steps", "incorrect_step", "explanation", "corrected_solution",
)
_ANSWER_LINE = re.compile(r"The answer is\b", re.IGNORECASE)
# Prompt styles: (solve template, correction template). `wizardmath` is WizardMath's Alpaca frame
# ("### Instruction: ... ### Response: Let's think step by step."), which the official LeMa
# evaluation uses for WizardMath models; their training rows are built in the same frame.
PROMPTS = {"lema": ("solve", "fix_mistake"), "wizardmath": ("wizardmath_solve", "wizardmath_fix_mistake")}


@dataclass(frozen=True)
class Example:
    """One training example; `source` is the model (or "gold") that wrote the response,
    `mistake_model` the model whose wrong path a correction fixes (None for CoT)."""

    id: str
    kind: str  # "cot" | "correction"
    problem_id: str
    dataset: str
    source: str
    prompt: str
    response: str
    mistake_model: str | None = None


def _with_answer_line(text: str, answer: object, where: tuple[Path, int], field: str) -> str:
    """Return `text` ending in "The answer is X." (appended from the gold answer when missing).

    The evaluation extracts answers from that sentence, so every response must teach it.
    """
    if not isinstance(text, str):
        raise RecordError(where[0], where[1], "must be text", field=field)
    text = text.strip()
    if _ANSWER_LINE.search(text):
        return text
    if answer in (None, ""):
        raise RecordError(where[0], where[1], "has no 'The answer is X.' and no answer to add", field=field)
    return f"{text}\n{answer_sentence(str(answer))}"


def correction_response(incorrect_step: int, explanation: str, corrected_solution: str) -> str:
    """The three-part correction the model learns to write (the paper's output format)."""
    return (
        f"Incorrect Step: Step {incorrect_step}.\n"
        f"Explanation: {explanation.strip()}\n"
        f"Correct Solution:\n{corrected_solution.strip()}"
    )


def cot_example(record: dict, where: tuple[Path, int], prompt: str = "lema") -> Example:
    """A CoT record -> the solve prompt (of style `prompt`) and its rationale."""
    rationale = _with_answer_line(record["rationale"], record.get("answer"), where, "rationale")
    return Example(
        id=str(record["id"]),
        kind="cot",
        problem_id=str(record["problem_id"]),
        dataset=str(record.get("dataset") or "unknown"),
        source=str(record.get("source") or "unknown"),
        prompt=render(PROMPTS[prompt][0], question=str(record["question"]).strip()),
        response=rationale,
    )


def correction_example(record: dict, where: tuple[Path, int], prompt: str = "lema") -> Example:
    """A verified correction -> (question + numbered wrong steps) and the three-part correction."""
    from lema_plugin.steps import render_steps

    steps = record["steps"]
    if not isinstance(steps, list) or not steps or not all(isinstance(s, str) for s in steps):
        raise RecordError(where[0], where[1], "must be a non-empty list of strings", field="steps")
    step = record["incorrect_step"]
    if isinstance(step, bool) or not isinstance(step, int) or not 1 <= step <= len(steps):
        raise RecordError(where[0], where[1], f"must be a step number in 1..{len(steps)}", field="incorrect_step")
    if not isinstance(record["explanation"], str):
        raise RecordError(where[0], where[1], "must be text", field="explanation")
    solution = _with_answer_line(record["corrected_solution"], record.get("answer"), where, "corrected_solution")
    return Example(
        id=str(record["id"]),
        kind="correction",
        problem_id=str(record["problem_id"]),
        dataset=str(record.get("dataset") or "unknown"),
        source=str(record.get("corrector") or "unknown"),
        prompt=render(PROMPTS[prompt][1], question=str(record["question"]).strip(), steps=render_steps(steps)),
        response=correction_response(step, record["explanation"], solution),
        mistake_model=str(record.get("source_model") or "unknown"),
    )


def _record_lines(path: Path) -> list[int]:
    """Line numbers of the non-blank lines, i.e. of the records `read_jsonl` yields, in order."""
    with open(path, "rb") as handle:  # split as `read_jsonl` does; it reports bytes that are not UTF-8
        return [n for n, line in enumerate(handle, 1) if line.strip()]


def load_examples(path: str | Path, kind: str, prompt: str = "lema") -> tuple[list[Example], dict[str, int]]:
    """Read a cot.jsonl or corrections.jsonl file into examples, prompted in style `prompt`.

    Returns the examples and counts of skipped records: repeated ids (files concatenated twice),
    corrections marked `correct: false` (a rejected.jsonl passed by mistake must not train
    the model on wrong answers), a correction that repeats another of the same mistake word
    for word (the same example twice would weigh it double), and a CoT rationale that only states
    its answer (`no_worked_solution`: "The answer is 24." teaches no reasoning).
    """
    path = Path(path)
    required, convert = (COT_FIELDS, cot_example) if kind == "cot" else (CORRECTION_FIELDS, correction_example)
    lines = _record_lines(path)
    examples: list[Example] = []
    seen: set[str] = set()
    skipped = {"duplicate_id": 0, "not_verified": 0}
    if kind != "cot":
        skipped["duplicate_correction"] = 0
    else:
        skipped["no_worked_solution"] = 0
    texts: set[tuple[str, str]] = set()
    for index, record in enumerate(read_jsonl(path, required=required)):
        where = (path, lines[index])
        if record.get("correct") is False:
            skipped["not_verified"] += 1
            continue
        if kind == "cot" and isinstance(record["rationale"], str) and not has_worked_steps(record["rationale"]):
            skipped["no_worked_solution"] += 1
            continue
        example = convert(record, where, prompt)
        if example.id in seen:
            skipped["duplicate_id"] += 1
            continue
        seen.add(example.id)
        if kind != "cot" and (example.prompt, example.response) in texts:
            skipped["duplicate_correction"] += 1
            continue
        texts.add((example.prompt, example.response))
        examples.append(example)
    return examples, skipped

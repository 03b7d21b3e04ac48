"""The one gold-answer reader: what a gold field says the final answer is.

Every command reads gold answers here (loading problems, `lema import`, `lema grade`, the
correction check, the lm-eval tasks, the report), so a file is graded the same way whichever
command reads it. The answer is kept as the file writes it (`3/8` stays `3/8`, for the eye);
`answers_match` compares values, so `0.375` is still right against it.

A gold value may be
- a bare answer: `72`, `3/8`, `\\frac{3}{8}`, `$1,234` (a number in JSON too, or a list of one);
- a rationale that states its answer: a last `#### X` line (GSM8K), a final `A: X` line, a
  `\\boxed{X}` (MATH: with the boxes stated next to it, or every boxed value when a solution
  boxes several different answers), or "The answer is X".

A rationale of several lines that states no answer gives None: guessing its last number would
turn a gold `3/8` into `8`.
"""
from __future__ import annotations

import re

from .datasets import dataset_kind

_FINAL_A = re.compile(r"^[ \t]*A[ \t]*:[ \t]*(.+?)[ \t]*$", re.MULTILINE)
_STATED = re.compile(r"\b(?:the\s+)?(?:final\s+)?answer\s+is\b", re.IGNORECASE)
_NUMBER_LIKE = re.compile(r"^-?[\d,]*\.?\d+(?:\s*/\s*-?[\d,]*\.?\d+)?$")  # 72, 1,234, -3.5, 3/8
_TRAILING = re.compile(r"[\s.]+$")


def gold_answer(value: object, dataset: str) -> str | None:
    """The gold final answer in `value` (see the module docstring); None when it holds none."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (list, tuple)):
        return gold_answer(value[0], dataset) if len(value) == 1 else None
    if isinstance(value, (int, float)):
        return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)
    if not isinstance(value, str):
        return None
    text = value.strip()
    if not text:
        return None
    kind = dataset_kind(dataset)
    answer = _stated(text, kind)
    if answer is None:
        if "\n" in text and kind == "gsm8k":
            return None  # a rationale that states no answer
        answer = text
    if kind == "gsm8k":
        answer = answer.replace(",", "")
    return answer or None


def stated_answer(value: object, dataset: str) -> str | None:
    """The answer a rationale states (`#### X`, `A: X`, `\\boxed{X}`, "The answer is X"); None
    for a text that states none. A field that is always a rationale (a MATH `solution`) is read
    with this, so its text is never taken for a bare answer."""
    if not isinstance(value, str) or not value.strip():
        return None
    kind = dataset_kind(dataset)
    answer = _stated(value.strip(), kind)
    return answer.replace(",", "") if answer and kind == "gsm8k" else answer


def _stated(text: str, kind: str) -> str | None:
    """The answer a rationale states, as written; None when it states none."""
    if "####" in text:
        return text.rsplit("####", 1)[1].strip() or None
    if "\\boxed" in text or "\\fbox" in text:
        return _boxed(text, kind)
    finals = _FINAL_A.findall(text)
    if finals:
        return _TRAILING.sub("", finals[-1]) or None
    if _STATED.search(text):
        return _sentence_answer(text, kind)
    return None


def _boxed(text: str, kind: str) -> str | None:
    from .extract import find_answer, joined_answers
    from .latex import last_boxed

    answer = find_answer(text, "math")
    if answer.value is None:
        return last_boxed(text)
    if kind == "math" and answer.others:
        return joined_answers((*answer.others, answer.value))
    return answer.value


def _sentence_answer(text: str, kind: str) -> str | None:
    """"The answer is X": X as written when it is a plain number or fraction (GSM8K) or any
    MATH answer; else the grader's reading of it."""
    from .extract import find_answer

    raw = find_answer(text, "math").value
    if kind == "math":
        return raw
    plain = raw.replace("\\$", "").replace("$", "").strip() if raw else None
    if plain and _NUMBER_LIKE.match(plain):
        return plain
    return find_answer(text, "gsm8k").value

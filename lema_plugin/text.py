"""Text read out of a dataset or a model: the gold final answer, and the key that tells duplicates.

One gold-answer reader serves loading problems, importing outputs and building CoT targets, and
one duplicate key serves mistakes, CoT rationales and evolved questions, so "the same answer" and
"the same text" mean the same thing in every stage. (Grading a model's answer is `grading/`'s job.)
"""
from __future__ import annotations

import re

_FINAL_A = re.compile(r"^\s*A:\s*(.+?)\s*$", re.MULTILINE)
_PLAIN_NUMBER = re.compile(r"^-?[\d,]*\.?\d+$")
_TOKEN = re.compile(r"\w+|[=+\-*/^]")


def split_gsm8k(rationale: str) -> tuple[str, str | None]:
    """(the rationale before its last `####`, the answer after it with commas removed); the
    answer is None when there is no `####`."""
    if "####" not in rationale:
        return rationale, None
    body, answer = rationale.rsplit("####", 1)
    return body, answer.strip().replace(",", "") or None


def gsm8k_gold(rationale: str) -> str | None:
    """The answer after the last `####`, commas removed."""
    return split_gsm8k(rationale)[1]


def gold_from_value(value, dataset: str) -> str | None:
    """The gold final answer in a file's field: a bare answer, or a rationale that ends in
    "#### X", "A: X" (GSM8K styles) or a final \\boxed{X} (MATH)."""
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, list) and len(value) == 1:
        return gold_from_value(value[0], dataset)
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    if dataset == "gsm8k":
        if "####" in text:
            return gsm8k_gold(text)
        finals = _FINAL_A.findall(text)
        if finals:
            return finals[-1].replace(",", "")
        if _PLAIN_NUMBER.match(text):
            return text.replace(",", "")
        from .grading import extract_answer

        return extract_answer(text, dataset)
    from .grading import gold_answer

    return gold_answer(text, dataset) or text


def dedupe_key(text: str) -> str:
    """Lower-case words and math operators, nothing else: case, spacing and punctuation do not
    make a mistake, a rationale or a question new."""
    return " ".join(_TOKEN.findall(text.lower()))

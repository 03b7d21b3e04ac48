"""Text read out of a dataset or a model: a GSM8K rationale's parts, and the key that tells duplicates.

One duplicate key serves mistakes, CoT rationales and evolved questions, so "the same text" means
the same thing in every stage. (The gold answer has one reader, `grading.gold_answer`; grading a
model's answer is `grading/`'s job too.)
"""
from __future__ import annotations

import re

_TOKEN = re.compile(r"\w+|[=+\-*/^]")


def split_gsm8k(rationale: str) -> tuple[str, str | None]:
    """(the rationale before its last `####`, the answer after it with commas removed); the
    answer is None when there is no `####`."""
    if "####" not in rationale:
        return rationale, None
    body, answer = rationale.rsplit("####", 1)
    return body, answer.strip().replace(",", "") or None


def dedupe_key(text: str) -> str:
    """Lower-case words and math operators, nothing else: case, spacing and punctuation do not
    make a mistake, a rationale or a question new."""
    return " ".join(_TOKEN.findall(text.lower()))

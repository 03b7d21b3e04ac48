"""The one grader: final-answer extraction and answer equivalence for GSM8K and MATH.

Every stage (sampling, correction filtering, CoT rejection sampling) and the lm-eval tasks
import these functions, so a path is judged the same way everywhere.

    extract_answer(text, dataset)   the final answer a completion states (None if none)
    extract_strict(text, dataset)   only "The answer is X" or a final \\boxed{X}
    answers_match(pred, gold, dataset)  equivalence of an extracted answer and the gold answer
    is_correct(text, gold, dataset) extract_answer + answers_match
    last_boxed(text)                content of the last \\boxed{}/\\fbox{}
    gold_answer(gold, dataset)      a gold final answer, also from a full rationale

`dataset` is "gsm8k" or "math" ("math500" is graded as "math"). Nothing here raises on model
text or evaluates it; symbolic checks run under a time bound (see `symbolic`).
"""
from __future__ import annotations

from .compare import gsm8k_answers_match, math_answers_match
from .extract import _dataset, extract_answer, extract_strict, last_boxed

__all__ = ["extract_answer", "extract_strict", "answers_match", "is_correct", "last_boxed", "gold_answer"]


def gold_answer(gold: object, dataset: str) -> str | None:
    """The gold final answer: GSM8K text after the last `####`, MATH the last `\\boxed{}` if any."""
    if gold is None:
        return None
    gold = str(gold).strip()
    if _dataset(dataset) == "gsm8k":
        if "####" in gold:
            gold = gold.rsplit("####", 1)[1].strip()
        return gold.replace(",", "") or None
    if "\\boxed" in gold or "\\fbox" in gold:
        return last_boxed(gold)
    return gold or None


def answers_match(pred: object, gold: object, dataset: str) -> bool:
    """Whether an extracted answer `pred` equals the gold answer (a `####` rationale is fine too)."""
    dataset = _dataset(dataset)
    if pred is None or gold is None:
        return False
    gold = gold_answer(gold, dataset)
    pred = str(pred).strip()
    if not gold or not pred:
        return False
    if dataset == "gsm8k":
        return gsm8k_answers_match(pred, gold)
    return math_answers_match(pred, gold)


def is_correct(text: object, gold: object, dataset: str) -> bool:
    """Whether the final answer stated in `text` equals `gold`."""
    return answers_match(extract_answer(text, dataset), gold, dataset)

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
from .extract import dataset_kind, extract_answer, extract_strict, last_boxed

__all__ = ["extract_answer", "extract_strict", "answers_match", "is_correct", "last_boxed", "gold_answer"]


def gold_answer(gold: object, dataset: str) -> str | None:
    """The gold final answer from a bare answer or a whole gold rationale.

    GSM8K: the text after the last `####`; MATH: the last `\\boxed{}`; a rationale that ends
    "The answer is X" (the LeMa test files) gives X.
    """
    if gold is None:
        return None
    gold = str(gold).strip()
    dataset = dataset_kind(dataset)
    if dataset == "gsm8k" and "####" in gold:
        return gold.rsplit("####", 1)[1].strip().replace(",", "") or None
    if dataset == "math" and ("\\boxed" in gold or "\\fbox" in gold):
        return last_boxed(gold)
    if "answer is" in gold.lower() and len(gold) > 40:
        return extract_answer(gold, dataset)
    if dataset == "gsm8k":
        gold = gold.replace(",", "")
    return gold or None


def answers_match(pred: object, gold: object, dataset: str) -> bool:
    """Whether an extracted answer `pred` equals the gold answer (a `####` rationale is fine too)."""
    dataset = dataset_kind(dataset)
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

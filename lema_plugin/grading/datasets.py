"""Which grading rules a dataset uses: the one place that maps dataset names to rule sets."""
from __future__ import annotations

RULES = {"gsm8k": "gsm8k", "math": "math", "math500": "math"}


def dataset_kind(dataset: str) -> str:
    """"gsm8k" or "math": the rules `dataset` is graded by (MATH-500 is graded as MATH).

    Raises ValueError for a name the grader has no rules for.
    """
    kind = RULES.get((dataset or "").lower())
    if kind is None:
        raise ValueError(f"unknown dataset {dataset!r} (expected gsm8k, math or math500)")
    return kind

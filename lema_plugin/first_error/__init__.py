"""The first-error check: does the step the corrector named really break the solution?

For each verified correction, a generator continues the wrong path twice over: from the steps
before the named step, and from the steps including it. If the first prefix still reaches the
right answer often and the second rarely does, the claim is "confirmed". Step-DPO pairs and PRM
labels can then be restricted to confirmed corrections (`lema build --confirmed`).
"""
from .spec import FIRST_ERROR, FirstErrorSettings, FirstErrorStage, check_first_errors
from .stage import CHECKS, CONTINUATIONS, SUMMARY
from .summary import FirstErrorSummary

__all__ = [
    "CHECKS", "CONTINUATIONS", "FIRST_ERROR", "SUMMARY", "FirstErrorSettings", "FirstErrorStage", "FirstErrorSummary",
    "check_first_errors",
]

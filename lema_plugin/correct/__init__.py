"""LeMa's correction stage: a corrector LLM names the first wrong step of a mistake, explains
it, and finishes a corrected solution; only corrections that reach the gold answer are kept.

`parse` reads replies, `verify` checks them, `prompt` builds requests, `stage` reads mistakes
and judges replies into records, `spec` is the registered stage (rounds of attempts), `summary`
counts the outcome.
"""
from .parse import ParsedCorrection, UnparseableReply, parse_correction
from .spec import CORRECT, CorrectSettings, CorrectStage, correct_mistakes
from .stage import CORRECTIONS, REJECTED, SUMMARY, corrector_spec, judge, load_mistakes
from .summary import REASONS, CorrectSummary, Rate, summarize
from .verify import Verdict, verify

__all__ = [
    "CORRECT", "CORRECTIONS", "REJECTED", "SUMMARY", "REASONS",
    "CorrectSettings", "CorrectStage", "CorrectSummary", "ParsedCorrection", "Rate", "UnparseableReply", "Verdict",
    "corrector_spec", "correct_mistakes", "judge", "load_mistakes", "parse_correction", "summarize", "verify",
]

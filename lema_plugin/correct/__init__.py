"""LeMa's correction stage: a corrector LLM names the first wrong step of a mistake, explains
it, and finishes a corrected solution; only corrections that reach the gold answer are kept.

`parse` reads replies, `verify` checks them, `prompt` builds requests, `stage` runs the whole
thing resumably, `summary` counts the outcome.
"""
from .parse import ParsedCorrection, UnparseableReply, parse_correction
from .stage import CORRECTIONS, REJECTED, SUMMARY, CorrectSettings, attempt_id, corrector_spec, correct_mistakes, judge, load_mistakes
from .summary import REASONS, CorrectSummary, Rate, summarize
from .verify import Verdict, verify

__all__ = [
    "CORRECTIONS", "REJECTED", "SUMMARY", "REASONS",
    "CorrectSettings", "CorrectSummary", "ParsedCorrection", "Rate", "UnparseableReply", "Verdict",
    "attempt_id", "corrector_spec", "correct_mistakes", "judge", "load_mistakes", "parse_correction", "summarize", "verify",
]

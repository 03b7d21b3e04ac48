"""Correction-centric evolution: new questions in the style of the ones that produced verified
corrections (see `stage` for the whole procedure).

`seeds` reads what evolution starts from, `prompt` asks for a new question, `reply` reads the
model's questions and answers, `dedupe` finds near-duplicates, `summary` counts, and `stage`
runs it all resumably.
"""
from .dedupe import NearDuplicateIndex, ngrams
from .prompt import STYLES, generation_request
from .reply import majority, parse_new_question
from .seeds import EvolveInputs, Seed, level_success, load_seeds, load_test_questions, questions_per_seed, read_inputs
from .stage import PROBLEMS, EvolveSettings, evolve_questions
from .summary import EvolveSummary

__all__ = [
    "PROBLEMS", "STYLES", "EvolveInputs", "EvolveSettings", "EvolveSummary", "NearDuplicateIndex", "Seed",
    "evolve_questions", "generation_request", "level_success", "load_seeds", "load_test_questions", "majority",
    "ngrams", "parse_new_question", "questions_per_seed", "read_inputs",
]

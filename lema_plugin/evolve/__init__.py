"""Correction-centric evolution: new questions in the style of the ones that produced verified
corrections (see `stage` for the whole procedure).

`seeds` reads what evolution starts from, `prompt` asks for a new question, `reply` reads the
model's questions and answers, `dedupe` finds near-duplicates, `summary` counts, `stage` does
each step, and `spec` is the registered stage.
"""
from .dedupe import NearDuplicateIndex, ngrams
from .prompt import STYLES, generation_request
from .reply import majority, parse_new_question
from .seeds import EvolveInputs, Seed, level_success, load_seeds, load_test_questions, questions_per_seed, read_inputs
from .spec import EVOLVE, EvolveReading, EvolveSettings, EvolveStage, evolve_questions
from .stage import PROBLEMS
from .summary import EvolveSummary

__all__ = [
    "EVOLVE", "PROBLEMS", "STYLES", "EvolveInputs", "EvolveReading", "EvolveSettings", "EvolveStage", "EvolveSummary", "NearDuplicateIndex", "Seed",
    "evolve_questions", "generation_request", "level_success", "load_seeds", "load_test_questions", "majority",
    "ngrams", "parse_new_question", "questions_per_seed", "read_inputs",
]

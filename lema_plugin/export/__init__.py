"""Export CoT and correction records as axolotl training data: the CoT / LeMa mixes, and the
step-level kinds (Step-DPO pairs, whole-solution pairs, PRM labels)."""
from .build import build_dataset
from .examples import Example, correction_response, load_examples
from .formats import FORMATS, axolotl_stanza, to_row
from .mixes import MIXES, make_mix
from .step_kinds import STEP_KINDS, build_step_dataset

__all__ = [
    "Example", "FORMATS", "MIXES", "STEP_KINDS", "axolotl_stanza", "build_dataset", "build_step_dataset",
    "correction_response",
    "load_examples", "make_mix", "to_row",
]

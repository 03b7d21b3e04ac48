"""Export CoT and correction records as axolotl training data, in the CoT / LeMa mixes."""
from .build import build_dataset
from .examples import Example, correction_response, load_examples
from .formats import FORMATS, axolotl_stanza, to_row
from .mixes import MIXES, make_mix

__all__ = [
    "Example", "FORMATS", "MIXES", "build_dataset", "correction_response", "axolotl_stanza",
    "load_examples", "make_mix", "to_row",
]

"""Export CoT and correction records as axolotl training data: the CoT / LeMa mixes, and the
step-level kinds (Step-DPO pairs, whole-solution pairs, PRM labels).

Thin on purpose: a stage that reads corrections step by step (`export.steps`) must not load the
config writer and axolotl's schema; the names below are imported the first time they are used.
"""
from importlib import import_module

_WHERE = {
    "build_dataset": "build", "Example": "examples", "correction_response": "examples", "load_examples": "examples",
    "FORMATS": "formats", "axolotl_stanza": "formats", "to_row": "formats", "MIXES": "mixes", "make_mix": "mixes",
    "STEP_KINDS": "step_kinds", "build_step_dataset": "step_kinds",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name in _WHERE:
        return getattr(import_module(f"{__name__}.{_WHERE[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

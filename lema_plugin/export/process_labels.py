"""Process labels (one per step) in axolotl's `stepwise_supervised` format, for a PRM.

Label policy, from what a verified correction and a gold rationale can vouch for:
- the wrong path: the steps before the named first wrong step are positive, that step is
  negative, and nothing after it is labelled (a step after an error has no clean label);
- the corrected solution (the steps before the wrong one, then the corrected steps): every step
  positive, since it reaches the gold answer and the corrector vouched for it;
- a gold CoT rationale: every step positive.

Rows: `prompt` (the LeMa solve prompt), `completions` (the steps), `labels` (booleans, one per
step). axolotl joins the steps with `step_separator` ("\\n", as the rationales are written) and
puts each label on the last token of its step.
"""
from __future__ import annotations

from lema_plugin.prompts import render

from .steps import GoldSolution, StepCorrection

LABEL_KIND = "prm"
LABEL_POLICY = (
    "wrong path: steps before the named first error positive, that step negative, later steps left out; "
    "verified corrected solution (steps before the error + corrected steps): all positive; gold CoT: all positive"
)


def _body(question: str, steps, labels) -> dict:
    return {
        "prompt": render("solve", question=question),
        "completions": list(steps),
        "labels": list(labels),
    }


def first_error_labels(correction: StepCorrection) -> dict:
    """The wrong path up to and including its first error: positives, then one negative."""
    k = correction.incorrect_step
    return _body(correction.question, correction.through_error, [True] * (k - 1) + [False])


def corrected_labels(correction: StepCorrection) -> dict:
    steps = correction.prefix + correction.corrected_steps
    return _body(correction.question, steps, [True] * len(steps))


def gold_labels(solution: GoldSolution) -> dict:
    return _body(solution.question, solution.steps, [True] * len(solution.steps))


def _dataset_entry(path: str) -> dict:
    return {"path": path, "ds_type": "json", "split": "train", "type": "stepwise_supervised", "step_separator": "\n"}


def labels_stanza(train_path: str, val_path: str | None = None) -> dict:
    """The axolotl config keys that load the labels (`process_reward_model: true` with them), as data."""
    stanza = {"process_reward_model": True, "datasets": [_dataset_entry(train_path)]}
    if val_path:
        stanza["test_datasets"] = [_dataset_entry(val_path)]
    return stanza

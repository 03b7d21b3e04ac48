"""Preference pairs from verified corrections, in axolotl's DPO `chat_template` format.

Two kinds, both with the LeMa solve prompt as the user turn:

- `step-dpo` (Step-DPO): the user turn is the solve prompt followed by the steps before the
  first wrong one; chosen = the corrected step(s) through to the answer; rejected = the wrong
  step and what the wrong path wrote after it. The shared correct prefix is context, so the
  preference falls on the first step where the paths part.
- `solution-dpo`: the user turn is the solve prompt; chosen = the whole corrected solution
  (prefix + corrected steps); rejected = the whole wrong path.

Steps are written one per line, as the CoT rationales are, so the policy is trained in the shape
it is evaluated in. Rows use axolotl's conversational DPO shape: `messages` (the prompt turns),
`chosen` and `rejected` (one assistant message each); axolotl's `chat_template.default` strategy
renders them with the model's own chat template.
"""
from __future__ import annotations

from lema_plugin.errors import ConfigError
from lema_plugin.prompts import render

from .steps import StepCorrection

PREFERENCE_KINDS = ("step-dpo", "solution-dpo")


def _lines(steps) -> str:
    return "\n".join(steps)


def dpo_body(prompt: str, chosen: str, rejected: str) -> dict:
    return {
        "messages": [{"role": "user", "content": prompt}],
        "chosen": {"role": "assistant", "content": chosen},
        "rejected": {"role": "assistant", "content": rejected},
    }


def step_pair(correction: StepCorrection) -> dict:
    """The Step-DPO pair: shared prefix in the prompt, the parting steps as chosen / rejected."""
    prompt = render("solve", question=correction.question) + "".join(f"{step}\n" for step in correction.prefix)
    return dpo_body(prompt, _lines(correction.corrected_steps), _lines(correction.wrong_continuation))


def solution_pair(correction: StepCorrection) -> dict:
    """The whole-solution pair: the corrected solution against the wrong path."""
    chosen = _lines(correction.prefix + correction.corrected_steps)
    return dpo_body(render("solve", question=correction.question), chosen, _lines(correction.steps))


def preference_pair(kind: str, correction: StepCorrection) -> dict:
    if kind == "step-dpo":
        return step_pair(correction)
    if kind == "solution-dpo":
        return solution_pair(correction)
    raise ConfigError(f"unknown preference kind {kind!r}; choose one of {', '.join(PREFERENCE_KINDS)}")


def _dataset_entry(path: str) -> dict:
    return {"path": path, "ds_type": "json", "split": "train", "type": "chat_template.default",
            "field_messages": "messages", "field_chosen": "chosen", "field_rejected": "rejected"}


def preference_stanza(train_path: str, val_path: str | None = None) -> dict:
    """The axolotl config keys that load the pairs (`rl: dpo` with them), as data."""
    stanza = {"rl": "dpo", "datasets": [_dataset_entry(train_path)]}
    if val_path:
        stanza["test_datasets"] = [_dataset_entry(val_path)]
    return stanza

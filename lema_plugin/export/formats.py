"""axolotl dataset formats: one JSONL row per example, and the `datasets:` YAML that loads it.

Every format keeps the loss on the response only:
- `chat_template`: a user turn (the prompt) and an assistant turn (the response); axolotl trains
  on `roles_to_train: [assistant]` and renders the model's own chat template.
- `input_output`: axolotl's template-free format, the paper's raw prompt -> completion style; the
  prompt segment has `label: false`, the response segment `label: true`. axolotl adds no special
  tokens here, so BOS/EOS strings (e.g. `<s>` / `</s>` for LLaMA-2) are written into the text.
- `alpaca`: instruction = the prompt, output = the response; axolotl masks the instruction when
  `train_on_inputs: false` (its default) and appends EOS itself.
"""
from __future__ import annotations

from lema_plugin.errors import ConfigError

from .examples import Example

FORMATS = ("chat_template", "input_output", "alpaca")


def to_row(example: Example, fmt: str, bos_token: str = "", eos_token: str = "") -> dict:
    """The JSONL row for `example` in format `fmt`, with its provenance alongside."""
    meta = {
        "id": example.id,
        "kind": example.kind,
        "dataset": example.dataset,
        "source": example.source,
        "problem_id": example.problem_id,
    }
    if fmt == "chat_template":
        body = {"messages": [
            {"role": "user", "content": example.prompt},
            {"role": "assistant", "content": example.response},
        ]}
    elif fmt == "input_output":
        body = {"segments": [
            {"label": False, "text": bos_token + example.prompt},
            {"label": True, "text": example.response + eos_token},
        ]}
    elif fmt == "alpaca":
        body = {"instruction": example.prompt, "input": "", "output": example.response}
    else:
        raise ConfigError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    return {**body, **meta}


def dataset_entry(path: str, fmt: str) -> dict:
    """One entry of axolotl's `datasets:` (or `test_datasets:`) list that loads a built file."""
    entry = {"path": path, "ds_type": "json", "split": "train", "type": fmt}
    if fmt == "chat_template":
        entry.update(field_messages="messages", roles_to_train=["assistant"], train_on_eos="turn")
    return entry


def axolotl_stanza(fmt: str, train_path: str, val_path: str | None = None) -> dict:
    """The axolotl config keys that load the built files, as data (JSON and YAML alike).

    Validation rows go to `test_datasets`, which axolotl evaluates on every `eval_steps`.
    """
    stanza = {"datasets": [dataset_entry(train_path, fmt)]}
    if val_path:
        stanza["test_datasets"] = [dataset_entry(val_path, fmt)]
    # Loss on the response only (axolotl's default, stated so a pasted config cannot drift).
    stanza["train_on_inputs"] = False
    return stanza

"""How many built rows are longer than a token budget, so that no row vanishes unseen.

axolotl drops (or truncates, per `excess_length_strategy`) every tokenized row longer than
`sequence_len` while it prepares the data, with no more than a log line. `lema build` counts
those rows first. Counting uses the base model's own tokenizer when it is on this machine
(read offline, never downloaded, no remote code); otherwise it states an estimate.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

# A conservative rate for LLaMA-style tokenizers on math text (digits and LaTeX cut short).
CHARS_PER_TOKEN = 3.0


@dataclass(frozen=True)
class BudgetReport:
    budget: int
    rows: int
    over: int
    longest: int
    counted_with: str

    def to_dict(self) -> dict:
        return {"budget": self.budget, "rows": self.rows, "over": self.over, "longest": self.longest,
                "counted_with": self.counted_with}


def local_tokenizer(name: str | None):
    """The tokenizer of `name` if it is on disk (a folder or the hub cache), else None."""
    if not name:
        return None
    try:
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(name, local_files_only=True, trust_remote_code=False)
    except Exception:  # not cached, no transformers, or not a tokenizer: fall back to the estimate
        return None


def _texts(row: dict, fmt: str) -> list[str | list[dict]]:
    """The sequences one row becomes: one, or for a preference pair the prompt with each answer."""
    if fmt == "chat_template":
        return [row["messages"]]
    if fmt == "chat_template.default":  # DPO: prompt + chosen, prompt + rejected
        return [row["messages"] + [row["chosen"]], row["messages"] + [row["rejected"]]]
    if fmt == "stepwise_supervised":  # PRM: the prompt, then each step and its separator
        return [row["prompt"] + "".join(f"{step}\n" for step in row["completions"])]
    if fmt == "input_output":
        return ["".join(segment["text"] for segment in row["segments"])]
    return [f"{row['instruction']}\n\n{row['output']}"]


def _length(text: str | list[dict], fmt: str, tokenizer) -> int:
    if tokenizer is None:
        if isinstance(text, list):
            text = "\n".join(m["content"] for m in text)
        return int(len(text) / CHARS_PER_TOKEN) + 1
    if isinstance(text, list):
        if getattr(tokenizer, "chat_template", None):
            rendered = tokenizer.apply_chat_template(text, tokenize=False)
            return len(tokenizer(rendered, add_special_tokens=False)["input_ids"])
        return sum(len(tokenizer(m["content"])["input_ids"]) for m in text)
    # input_output rows carry their BOS/EOS as text already; alpaca gets them from axolotl
    return len(tokenizer(text, add_special_tokens=fmt != "input_output")["input_ids"])


def row_lengths(rows: list[dict], fmt: str, tokenizer) -> list[int]:
    """Tokens per row as the trainer sees them (the chat template rendered for chat rows; the
    longer of a preference pair's two sequences)."""
    return [max(_length(text, fmt, tokenizer) for text in _texts(row, fmt)) for row in rows]


def check_budget(train_path: Path, fmt: str, budget: int, tokenizer_name: str | None) -> BudgetReport:
    rows = [json.loads(line) for line in Path(train_path).read_text(encoding="utf-8").splitlines() if line.strip()]
    tokenizer = local_tokenizer(tokenizer_name)
    lengths = row_lengths(rows, fmt, tokenizer)
    if tokenizer is not None:
        counted = f"counted with the {tokenizer_name} tokenizer"
    else:
        where = f"no local tokenizer for {tokenizer_name}" if tokenizer_name else "no tokenizer named"
        counted = f"estimated at {CHARS_PER_TOKEN:g} characters a token: {where}"
    return BudgetReport(budget, len(rows), sum(n > budget for n in lengths), max(lengths, default=0), counted)

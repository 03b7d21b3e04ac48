"""`lema build` for the step-level kinds: Step-DPO pairs, whole-solution pairs, PRM labels.

The same contract as the SFT mixes (`build.py`): rows carry their provenance (`id`, `kind`,
`dataset`, `source`, `problem_id`, `mistake_model`); identical rows are written once; validation
holds out whole problems, drawn from the problem ids of the CoT and correction inputs exactly as
the mixes draw them, so every kind built from the same inputs and seed holds out the same
problems; `dataset_info.json` holds counts, skips by reason, input hashes and the `datasets:`
lines for axolotl; and with a base axolotl config, the same ready-config writer as the SFT mixes
(`axolotl_config.write_ready`) writes `OUT/axolotl.yml` and the commands that train (and, for
the preference kinds, evaluate) it.
"""
from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from lema_plugin.errors import ConfigError
from lema_plugin.store import write_atomic, write_jsonl_atomic

from .axolotl_config import find_base_config, load_base_config, write_ready
from .build import sha256_file
from .mixes import _rng, held_out_problems
from .preference import PREFERENCE_KINDS, preference_pair, preference_stanza
from .process_labels import LABEL_KIND, LABEL_POLICY, corrected_labels, first_error_labels, gold_labels, labels_stanza
from .steps import confirmed_ids, load_gold_solutions, load_step_corrections

STEP_KINDS = (*PREFERENCE_KINDS, LABEL_KIND)
# The axolotl dataset type each kind is written in, and the shipped config that trains it.
AXOLOTL_TYPES = {"step-dpo": "chat_template.default", "solution-dpo": "chat_template.default",
                 "prm": "stepwise_supervised"}
DEFAULT_CONFIGS = {"step-dpo": "qwen2.5-1.5b-instruct-gsm8k-step-dpo",
                   "solution-dpo": "qwen2.5-1.5b-instruct-gsm8k-step-dpo", "prm": "qwen2.5-1.5b-instruct-gsm8k-prm"}


@dataclass(frozen=True)
class Row:
    """One output row: the axolotl fields in `body`, provenance beside them.

    `part` says which piece of a correction (or CoT) the row comes from: `step-pair`,
    `solution-pair`, `first-error`, `corrected`, `gold`."""

    id: str
    part: str
    problem_id: str
    dataset: str
    source: str
    body: dict
    mistake_model: str | None = None

    def to_json(self) -> dict:
        meta = {"id": self.id, "kind": self.part, "dataset": self.dataset, "source": self.source,
                "problem_id": self.problem_id}
        if self.mistake_model:
            meta["mistake_model"] = self.mistake_model
        return {**self.body, **meta}


def step_rows(kind: str, corrections, gold) -> list[Row]:
    """The rows of `kind` from loaded corrections (and, for labels, gold solutions)."""
    rows: list[Row] = []
    for c in corrections:
        common = dict(problem_id=c.problem_id, dataset=c.dataset, source=c.corrector, mistake_model=c.mistake_model)
        if kind in PREFERENCE_KINDS:
            part = "step-pair" if kind == "step-dpo" else "solution-pair"
            rows.append(Row(id=c.id, part=part, body=preference_pair(kind, c), **common))
        else:
            rows.append(Row(id=f"{c.id}:first-error", part="first-error", body=first_error_labels(c), **common))
            rows.append(Row(id=f"{c.id}:corrected", part="corrected", body=corrected_labels(c), **common))
    if kind == LABEL_KIND:
        for g in gold:
            rows.append(Row(id=g.id, part="gold", problem_id=g.problem_id, dataset=g.dataset, source="gold",
                            body=gold_labels(g)))
    return rows


def dedupe(rows: list[Row]) -> tuple[list[Row], dict[str, int]]:
    """Drop rows whose training fields repeat an earlier row's (two corrections of one mistake
    that name the same step and write the same fix), and pairs whose chosen equals rejected."""
    kept, seen = [], set()
    dropped = {"duplicate_row": 0, "identical_pair": 0}
    for row in sorted(rows, key=lambda r: r.id):
        body = row.body
        if "chosen" in body and body["chosen"]["content"].strip() == body["rejected"]["content"].strip():
            dropped["identical_pair"] += 1
            continue
        key = json.dumps(body, sort_keys=True, ensure_ascii=False)
        if key in seen:
            dropped["duplicate_row"] += 1
            continue
        seen.add(key)
        kept.append(row)
    return kept, dropped


def counts(rows: list[Row]) -> dict:
    """The same count keys as the SFT mixes' dataset_info (by kind, kind:source, dataset, mistake model)."""
    return {
        "examples": len(rows),
        "by_kind": dict(sorted(Counter(r.part for r in rows).items())),
        "by_source": dict(sorted(Counter(f"{r.part}:{r.source}" for r in rows).items())),
        "by_dataset": dict(sorted(Counter(r.dataset for r in rows).items())),
        "by_mistake_model": dict(sorted(Counter(r.mistake_model for r in rows if r.mistake_model).items())),
    }


def build_step_dataset(
    out_dir: str | Path,
    kind: str,
    cot_path: str | Path | None,
    corrections_path: str | Path,
    val_fraction: float = 0.0,
    seed: int = 0,
    checks_path: str | Path | None = None,
    axolotl_config: str | Path | None = None,
    config_overrides: dict | None = None,
    gpus: int | None = None,
    max_tokens: int | None = None,
    tokenizer: str | None = None,
    nodes: int = 1,
) -> dict:
    """Write OUT/train.jsonl (+ OUT/val.jsonl) and OUT/dataset_info.json for a step kind.

    `checks_path` (checks.jsonl from the first-error check) restricts the corrections to those
    whose named first error it confirmed. With `axolotl_config` (a base config that reads this
    kind's rows, e.g. `DEFAULT_CONFIGS[kind]`), also write OUT/axolotl.yml and its commands, as
    `build_dataset` does for the SFT mixes; rows longer than `max_tokens` (default: the config's
    `sequence_len`) are counted.
    """
    if kind not in STEP_KINDS:
        raise ConfigError(f"unknown step kind {kind!r}; choose one of {', '.join(STEP_KINDS)}")
    if corrections_path is None:
        raise ConfigError(f"kind {kind!r} needs a corrections file")
    overrides = {k: v for k, v in (config_overrides or {}).items() if v is not None}
    base_path = base = None
    if axolotl_config is not None:
        base_path = find_base_config(axolotl_config)
        base = load_base_config(base_path, AXOLOTL_TYPES[kind],
                                hint=f"pick a config that reads them, e.g. {DEFAULT_CONFIGS[kind]}")
        tokenizer = tokenizer or overrides.get("base_model") or base.get("tokenizer_config") or base["base_model"]
        max_tokens = max_tokens or base.get("sequence_len")
    out = Path(out_dir)
    confirmed = confirmed_ids(checks_path) if checks_path is not None else None
    corrections = load_step_corrections(corrections_path, confirmed)
    gold = load_gold_solutions(cot_path) if cot_path is not None else None
    rows, dropped = dedupe(step_rows(kind, corrections.records, gold.records if gold else []))
    correction_skips = {**corrections.skipped, **dropped}
    if confirmed is None:
        correction_skips.pop("not_confirmed")
    inputs = {"corrections": _input(corrections_path, len(corrections.records), correction_skips)}
    if gold is not None:
        used = len(gold.records) if kind == LABEL_KIND else 0
        inputs["cot"] = _input(cot_path, used, gold.skipped if kind == LABEL_KIND else {})

    problems = corrections.problem_ids | (gold.problem_ids if gold else set())
    held = held_out_problems(problems, val_fraction, seed)
    train = [r for r in rows if r.problem_id not in held]
    val = [r for r in rows if r.problem_id in held]
    _rng(seed, "train").shuffle(train)
    _rng(seed, "val-order").shuffle(val)

    train_path, val_path = out / "train.jsonl", out / "val.jsonl"
    files = {"train": _write(train_path, train)}
    if val:
        files["val"] = _write(val_path, val)
    elif val_path.exists():
        val_path.unlink()  # a stale split from an earlier build would be silently mixed in
    stanza = labels_stanza if kind == LABEL_KIND else preference_stanza
    info = {
        "mix": kind,
        "format": "stepwise_supervised" if kind == LABEL_KIND else "chat_template.default (DPO)",
        "seed": seed,
        "val_fraction": val_fraction,
        "restricted_to_confirmed": _input(checks_path, len(confirmed), {}) if checks_path is not None else None,
        "inputs": inputs,
        "files": files,
        "counts": {"train": counts(train), "val": counts(val)},
        "held_out_problems": len(held),
        "label_policy": LABEL_POLICY if kind == LABEL_KIND else None,
        "axolotl": stanza(str(train_path.resolve()), str(val_path.resolve()) if val else None),
    }
    if max_tokens:
        from .token_budget import check_budget

        report = check_budget(train_path, AXOLOTL_TYPES[kind], max_tokens, tokenizer)
        strategy = (base or {}).get("excess_length_strategy") or "drop"
        info["token_budget"] = {**report.to_dict(), "axolotl_excess_length_strategy": strategy if base else None}
    if base is not None:
        from .next_steps import eval_task

        task = None if kind == LABEL_KIND else eval_task(info)  # a PRM scores steps; it is not asked to solve
        write_ready(info, base_path, base, out, overrides, gpus, task, nodes)
    write_atomic(out / "dataset_info.json", json.dumps(info, indent=2, ensure_ascii=False) + "\n")
    return info


def _input(path, used: int, skipped: dict) -> dict:
    return {"path": str(Path(path).resolve()), "sha256": sha256_file(path), "examples": used, "skipped": skipped}


def _write(path: Path, rows: list[Row]) -> dict:
    count = write_jsonl_atomic(path, [r.to_json() for r in rows])
    return {"path": path.name, "examples": count, "sha256": sha256_file(path)}

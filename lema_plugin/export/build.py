"""`lema build`: CoT and correction records -> one axolotl training set and its dataset_info.json."""
from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path

from lema_plugin.errors import ConfigError
from lema_plugin.store import write_atomic, write_jsonl_atomic

from .examples import PROMPTS, Example, load_examples
from .formats import FORMATS, axolotl_stanza, to_row
from .axolotl_config import find_base_config, load_base_config, write_ready
from .mixes import MIXES, make_mix
from .token_budget import check_budget


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def counts(examples: list[Example]) -> dict:
    """Counts by kind, by kind:source (who wrote the response), by dataset, and corrections by
    the model that made the mistake."""
    return {
        "examples": len(examples),
        "by_kind": dict(sorted(Counter(e.kind for e in examples).items())),
        "by_source": dict(sorted(Counter(f"{e.kind}:{e.source}" for e in examples).items())),
        "by_dataset": dict(sorted(Counter(e.dataset for e in examples).items())),
        "by_mistake_model": dict(sorted(Counter(e.mistake_model for e in examples if e.mistake_model).items())),
    }


def count_rows(info: dict) -> list[tuple[str, str, str, int]]:
    """(split, kind, source, examples) rows of a `build_dataset` result, for a summary table."""
    rows = []
    for split in ("train", "val"):
        for key, value in info["counts"][split]["by_source"].items():
            kind, source = key.split(":", 1)
            rows.append((split, kind, source, value))
    return rows


def build_dataset(
    out_dir: str | Path,
    cot_path: str | Path,
    corrections_path: str | Path | None = None,
    mix: str = "lema",
    fmt: str = "chat_template",
    val_fraction: float = 0.0,
    seed: int = 0,
    extra_cot_path: str | Path | None = None,
    bos_token: str = "",
    eos_token: str = "",
    axolotl_config: str | Path | None = None,
    max_tokens: int | None = None,
    tokenizer: str | None = None,
    config_overrides: dict | None = None,
    gpus: int | None = None,
    prompt: str | None = None,
    nodes: int = 1,
) -> dict:
    """Write OUT/train.jsonl (+ OUT/val.jsonl) and OUT/dataset_info.json; return the info.

    With `axolotl_config` (a base config), also write OUT/axolotl.yml, ready to train on this
    build on `gpus` GPUs (default: the base config's own layout) over `nodes` machines, and the
    commands that train and
    evaluate it (`info["next_commands"]`). `config_overrides` replace base config keys (a local
    `base_model`, say). Rows longer than `max_tokens` (default: the config's `sequence_len`) are
    counted with `tokenizer` (default: the config's model) when it is on disk.

    `prompt` is the prompt style of every example: `lema` (the LeMa solve and correction prompts)
    or `wizardmath` (WizardMath's Alpaca frame around them, which the official evaluation uses for
    WizardMath models); default: `wizardmath` for a WizardMath base model, else `lema`.

    Raises RecordError for bad input records and ValueError for bad options or a base config
    that cannot read this format (before anything is written).
    """
    if fmt not in FORMATS:
        raise ConfigError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if mix not in MIXES:
        raise ConfigError(f"unknown mix {mix!r}; choose one of {', '.join(MIXES)}")
    if mix != "cot-only" and corrections_path is None:
        raise ConfigError(f"mix {mix!r} needs a corrections file")
    base_path = base = None
    overrides = {k: v for k, v in (config_overrides or {}).items() if v is not None}
    if axolotl_config is not None:
        base_path = find_base_config(axolotl_config)
        base = load_base_config(base_path, fmt)
        tokenizer = tokenizer or overrides.get("base_model") or base.get("tokenizer_config") or base["base_model"]
        max_tokens = max_tokens or base.get("sequence_len")
    prompt = prompt or default_prompt(overrides.get("base_model") or (base or {}).get("base_model"))
    if prompt not in PROMPTS:
        raise ConfigError(f"unknown prompt style {prompt!r}; choose one of {', '.join(PROMPTS)}")
    out = Path(out_dir)
    inputs: dict[str, dict] = {}
    loaded: dict[str, list[Example]] = {}
    for name, path, kind in (
        ("cot", cot_path, "cot"),
        ("corrections", corrections_path, "correction"),
        ("extra_cot", extra_cot_path, "cot"),
    ):
        if path is None:
            loaded[name] = []
            continue
        examples, skipped = load_examples(path, kind, prompt)
        loaded[name] = examples
        inputs[name] = {
            "path": str(Path(path).resolve()),
            "sha256": sha256_file(path),
            "examples": len(examples),
            "skipped": skipped,
        }
    result = make_mix(mix, loaded["cot"], loaded["corrections"], loaded["extra_cot"], val_fraction, seed)

    def rows(examples):
        return [to_row(e, fmt, bos_token, eos_token) for e in examples]

    train_path, val_path = out / "train.jsonl", out / "val.jsonl"
    files = {"train": _write(train_path, rows(result.train))}
    if result.val:
        files["val"] = _write(val_path, rows(result.val))
    elif val_path.exists():
        val_path.unlink()  # a stale split from an earlier build would be silently mixed in
    info = {
        "mix": mix,
        "format": fmt,
        "seed": seed,
        "val_fraction": val_fraction,
        "prompt": prompt,
        "special_tokens": {"bos": bos_token, "eos": eos_token} if fmt == "input_output" else None,
        "inputs": inputs,
        "files": files,
        "counts": {"train": counts(result.train), "val": counts(result.val)},
        "held_out_problems": len({e.problem_id for e in result.val}),
        "size_matching": result.padding or None,
        "axolotl": axolotl_stanza(
            fmt, str(train_path.resolve()), str(val_path.resolve()) if result.val else None
        ),
    }
    info["warnings"] = special_token_warnings(fmt, bos_token, eos_token)
    if max_tokens:
        report = check_budget(train_path, fmt, max_tokens, tokenizer)
        strategy = (base or {}).get("excess_length_strategy") or "drop"
        info["token_budget"] = {**report.to_dict(), "axolotl_excess_length_strategy": strategy if base else None}
    if base is not None:
        from .next_steps import eval_task

        write_ready(info, base_path, base, out, overrides, gpus, eval_task(info), nodes)
    write_atomic(out / "dataset_info.json", json.dumps(info, indent=2, ensure_ascii=False) + "\n")
    return info


def default_prompt(base_model: str | None) -> str:
    """WizardMath models are asked with their own prompt (the official LeMa evaluation does so)."""
    return "wizardmath" if base_model and "wizardmath" in str(base_model).lower() else "lema"


def special_token_warnings(fmt: str, bos_token: str, eos_token: str) -> list[str]:
    """input_output rows get no special tokens from axolotl: each one left out is a warning."""
    if fmt != "input_output":
        return []
    warnings = []
    if not bos_token:
        warnings.append("no --bos-token: axolotl adds none in input_output, so every row starts without the model's "
                        "BOS token (LLaMA-2 trains with '<s>'; a model without a BOS token needs none)")
    if not eos_token:
        warnings.append("no --eos-token: axolotl adds none in input_output, so the model will not learn to stop")
    return warnings


def _write(path: Path, rows: list[dict]) -> dict:
    count = write_jsonl_atomic(path, rows)
    return {"path": path.name, "examples": count, "sha256": sha256_file(path)}

"""`lema build`: CoT and correction records -> one axolotl training set and its dataset_info.json."""
from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path

from lema_plugin.errors import ConfigError
from lema_plugin.store import write_atomic, write_jsonl_atomic

from .examples import Example, load_examples
from .formats import FORMATS, datasets_yaml, to_row
from .mixes import MIXES, make_mix


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
) -> dict:
    """Write OUT/train.jsonl (+ OUT/val.jsonl) and OUT/dataset_info.json; return the info.

    Raises RecordError for bad input records and ValueError for bad options.
    """
    if fmt not in FORMATS:
        raise ConfigError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if mix not in MIXES:
        raise ConfigError(f"unknown mix {mix!r}; choose one of {', '.join(MIXES)}")
    if mix != "cot-only" and corrections_path is None:
        raise ConfigError(f"mix {mix!r} needs a corrections file")
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
        examples, skipped = load_examples(path, kind)
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
        "special_tokens": {"bos": bos_token, "eos": eos_token} if fmt == "input_output" else None,
        "inputs": inputs,
        "files": files,
        "counts": {"train": counts(result.train), "val": counts(result.val)},
        "held_out_problems": len({e.problem_id for e in result.val}),
        "size_matching": result.padding or None,
        "axolotl_datasets": datasets_yaml(
            fmt, str(train_path.resolve()), str(val_path.resolve()) if result.val else None
        ),
    }
    write_atomic(out / "dataset_info.json", json.dumps(info, indent=2, ensure_ascii=False) + "\n")
    return info


def _write(path: Path, rows: list[dict]) -> dict:
    count = write_jsonl_atomic(path, rows)
    return {"path": path.name, "examples": count, "sha256": sha256_file(path)}

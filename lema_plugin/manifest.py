"""What made a run folder: the settings of every stage that wrote it, kept in `lema_run.json`.

Records in a run folder are keyed by content hashes that include the sampling settings, so a
rerun with another temperature would not overwrite anything: it would quietly add paths sampled
at a second temperature next to the first, and every count after it would mix the two. The
manifest prevents that. Each stage saves its resolved settings and endpoints here when it stores
its first record, split in two:

- `fixed`: what decides the records (the endpoint's model and mode, and the settings fields
  marked decisive: `settings.decisive`); a rerun that changes one of them is refused, before any
  request, with one line naming what changed;
- `settings`: everything else (how many samples, attempts, caps), free to change: asking for
  more samples or attempts adds to the same records.

`--fresh` starts a folder over: its outputs move to `replaced-<time>/` inside it (paid records are
never deleted), and the response cache stays, so anything asked before is free again. It is
refused while Batch API batches wait (`refuse_pending_batches`): moving their ledger aside would
submit, and pay for, the same requests again. The folder's spend ledger stays: it is the budget's.
"""
from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

from . import runlock
from .errors import ConfigError
from .llm.types import Endpoint
from .store import make_folder, write_atomic

MANIFEST = "lema_run.json"
REPLACED = "replaced-"
BATCHES = ".batches"  # the Batch API ledger (`llm.batch`)


def endpoint_info(endpoint: Endpoint) -> dict:
    """An endpoint as saved: where and how it was asked (the key's variable name, never the key)."""
    return {"model": endpoint.model, "base_urls": list(endpoint.base_urls), "mode": endpoint.mode,
            "key_env": endpoint.api_key_env}


def read(out_dir: str | Path) -> dict:
    path = Path(out_dir) / MANIFEST
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: unreadable ({exc}); use --fresh or a new --out") from None
    return data if isinstance(data, dict) else {}


def check(out_dir: str | Path, stage: str, fixed: dict[str, dict]) -> None:
    """Refuse, before any request, a run whose decisive values differ from what made the folder.

    `fixed` maps a part (a generator label, "corrector") to the values that decide its records;
    a part seen before must have the same values. Raises ConfigError naming the first change."""
    fixed = json.loads(json.dumps(fixed, default=str))  # compared as saved: tuples become lists
    before = (read(out_dir).get(stage) or {}).get("fixed") or {}
    for part, values in fixed.items():
        for name, value in values.items():
            if part in before and name in before[part] and before[part][name] != value:
                raise ConfigError(
                    f"{out_dir}: {part} was run here with {name} {before[part][name]!r}, now {value!r}; "
                    f"records of both would mix. Add --fresh to start this folder over (its outputs move to "
                    f"{REPLACED}<time>/), or use a new --out")


def remember(out_dir: str | Path, stage: str, fixed: dict[str, dict], settings: dict, files: list[str]) -> None:
    """Save what `stage` runs with (after the same check as `check`). A stage calls it when it
    stores its first record: a folder that holds no record has nothing to protect, so a run that
    stopped before storing anything (a failed endpoint check, a preview) leaves no settings
    behind to refuse the fixed rerun.

    `settings` maps parts to the rest of what they run with (saved, never compared); `files`
    names the stage's outputs (moved by `--fresh`)."""
    out_dir = make_folder(out_dir)
    key = runlock.acquire(out_dir)
    try:
        check(out_dir, stage, fixed)
        fixed = json.loads(json.dumps(fixed, default=str))
        data = read(out_dir)
        entry = data.get(stage) or {}
        before = entry.get("fixed") or {}
        data[stage] = {"fixed": {**before, **fixed}, "settings": {**(entry.get("settings") or {}), **settings},
                       "files": sorted(set(entry.get("files") or []) | set(files))}
        write_atomic(out_dir / MANIFEST, json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")
    finally:
        runlock.release(key)


def refuse_pending_batches(out_dir: Path) -> None:
    """Moving `.batches/` aside while batches wait would forget what they were paid for, and the
    next run would submit (and pay for) the same requests again: refuse, naming each batch."""
    from .llm.batch import waiting

    pending = waiting(out_dir / BATCHES)
    if not pending:
        return
    named = ", ".join(f"{entry.get('batch_id') or entry['name']} ({len(entry['keys'])} requests at {entry['base_url']})"
                      for entry in pending[:5]) + (f" and {len(pending) - 5} more" if len(pending) > 5 else "")
    raise ConfigError(f"{out_dir}: {len(pending)} Batch API batch{'es' if len(pending) > 1 else ''} still pending: "
                      f"{named}. --fresh would forget them and pay again: run without --fresh to collect them first, "
                      "or cancel them (POST BASE_URL/batches/BATCH_ID/cancel, or the provider's dashboard) and run once "
                      "without --fresh to record that; then --fresh")


def start_over(out_dir: str | Path, everything: bool = False) -> Path | None:
    """Move the outputs of every stage that wrote `out_dir` (`everything`: all it holds but the
    response cache and earlier replaced folders) to `out_dir/replaced-<time>/`; return that
    folder, or None when there was nothing to move."""
    out_dir = Path(out_dir)
    if not out_dir.is_dir():
        return None
    key = runlock.acquire(out_dir)
    try:
        if everything:
            names = [p.name for p in out_dir.iterdir()
                     if p.name != ".cache" and not p.name.startswith(REPLACED) and not p.name.startswith(".lema")]
        else:
            names = [MANIFEST] + [name for entry in read(out_dir).values() if isinstance(entry, dict)
                                  for name in entry.get("files") or []]
            names += [f"{name}.damaged" for name in names]
        moving = [out_dir / name for name in dict.fromkeys(names) if (out_dir / name).exists()]
        if out_dir / BATCHES in moving:
            refuse_pending_batches(out_dir)
        if not moving:
            return None
        target = out_dir / f"{REPLACED}{time.strftime('%Y%m%d-%H%M%S')}"
        suffix = 1
        while target.exists():
            suffix += 1
            target = out_dir / f"{REPLACED}{time.strftime('%Y%m%d-%H%M%S')}-{suffix}"
        target.mkdir()
        for path in moving:
            shutil.move(str(path), str(target / path.name))
        return target
    finally:
        runlock.release(key)

"""Read what a run folder holds, whichever stages wrote it.

A `lema run` folder has one sub-folder per stage; a single stage command (`lema sample`,
`lema correct`, `lema build`, ...) writes the same files straight into its `--out`. So the
folder is walked and files are recognised by name, wherever they sit. Records are keyed by their
content-hash `id`, which also folds the merged copy of the corrections (`data/corrections.jsonl`)
into the originals. Anything under `evolve/` belongs to the "evolved" questions, the rest to the
"original" ones.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from lema_plugin import stage as registry
from lema_plugin.errors import LemaError
from lema_plugin.grading.official import METRICS
from lema_plugin.records import RecordError, numbered_jsonl
from lema_plugin.summaries import USAGE_FILE, folder_usage

ORIGINAL, EVOLVED = "original", "evolved"
SKIP_DIRS = {".cache", "prepared", "adapter", "report"}  # caches, axolotl outputs, our own output


class NoRunData(LemaError, ValueError):
    """The folder holds none of the files a LeMa stage writes."""


@dataclass
class RunData:
    root: Path
    paths: dict[str, dict] = field(default_factory=dict)
    mistakes: dict[str, dict] = field(default_factory=dict)
    replies: dict[str, dict] = field(default_factory=dict)  # corrections.jsonl + rejected.jsonl
    cot: int = 0  # CoT examples (only counted)
    exported: dict[str, set[str]] = field(default_factory=dict)  # mix -> example ids (train + val)
    export_counts: dict[str, dict] = field(default_factory=dict)  # mix -> dataset_info counts
    export_rows: dict[str, list[dict]] = field(default_factory=dict)  # mix -> a few train rows of each kind, as written
    export_format: dict[str, str] = field(default_factory=dict)  # mix -> its axolotl format (or step kind)
    checks: dict[str, dict] = field(default_factory=dict)  # correction id -> its first-error check (checks.jsonl)
    evals: list[dict] = field(default_factory=list)  # one row per (results file, task)
    stage_summaries: dict[tuple[str, str], dict] = field(default_factory=dict)  # (origin, stage) -> its summary file
    usage: dict[tuple[str, str], dict] = field(default_factory=dict)  # (origin, stage) -> the client's counts, all runs
    run_summary: dict | None = None
    found: list[str] = field(default_factory=list)  # files read, relative to root


def _stage(relative: Path) -> str:
    return EVOLVED if "evolve" in relative.parts[:-1] else ORIGINAL


def _read_records(path: Path, stage: str, into: dict[str, dict]) -> None:
    for lineno, record in numbered_jsonl(path):
        if "id" not in record:
            raise RecordError(path, lineno, "missing", field="id")
        record["_stage"] = stage
        into.setdefault(str(record["id"]), record)


ROWS_SHOWN = 2  # training rows shown per mix and kind of row


def _read_export(path: Path, data: "RunData") -> None:
    """The ids a mix exported, and its first rows of each kind (to show what training reads)."""
    mix = path.parent.name
    ids = data.exported.setdefault(mix, set())
    shown = data.export_rows.setdefault(mix, [])
    kinds: dict[str, int] = {}
    for row in shown:
        kinds[str(row.get("kind"))] = kinds.get(str(row.get("kind")), 0) + 1
    for _, record in numbered_jsonl(path):
        if "id" in record:
            ids.add(str(record["id"]))
        kind = str(record.get("kind"))
        if path.name == "train.jsonl" and kinds.get(kind, 0) < ROWS_SHOWN:
            kinds[kind] = kinds.get(kind, 0) + 1
            shown.append(record)


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise RecordError(path, exc.lineno, f"not valid JSON ({exc.msg})") from None


def evaluated_mix(relative: Path) -> str:
    """The mix a results file scored, from where lm-eval wrote it: the printed `Next:` commands
    write `data/<mix>/eval/<model>/results_*.json`, a run that evaluates several mixes
    `eval/<mix>/<model>/results_*.json`; `eval/<model>/...` (the run's own eval step) names none."""
    parts = relative.parts[:-1]
    if "eval" not in parts:
        return ""
    at = len(parts) - 1 - parts[::-1].index("eval")
    before, after = parts[:at], parts[at + 1:]
    if before and before[-1] not in ("data", "."):
        return before[-1]
    return after[0] if len(after) > 1 else ""


def _eval_rows(path: Path, relative: Path) -> list[dict]:
    """The scores per task (official_match, strict_match, exact_match) from one lm-eval results file."""
    content = _read_json(path)
    results = content.get("results", {})
    source = evaluated_mix(relative)
    model = (content.get("config") or {}).get("model_args") or ""
    if isinstance(model, dict):  # lm-eval 0.4 logs the parsed --model_args
        model = ",".join(f"{key}={value}" for key, value in model.items())
    rows = []
    for task, metrics in sorted(results.items()):
        row = {"file": str(relative), "source": source, "model": str(model), "task": task}
        for key, value in metrics.items():
            name = key.partition(",")[0]
            if name.removesuffix("_stderr") in METRICS and isinstance(value, (int, float)):
                row[name] = value
        if any(metric in row for metric in METRICS):
            rows.append(row)
    return rows


def _add_usage(before: dict | None, more: dict) -> dict:
    if before is None:
        return dict(more)
    cost = None if before["cost"] is None and more["cost"] is None else (before["cost"] or 0.0) + (more["cost"] or 0.0)
    return {**{k: before[k] + more[k] for k in ("prompt_tokens", "completion_tokens", "requests")}, "cost": cost}


def read_run(root: str | Path) -> RunData:
    """Every record a LeMa stage left in `root` (a `lema run` folder or one stage's `--out`)."""
    root = Path(root)
    if not root.is_dir():
        raise NoRunData(f"{root}: no such folder")
    data = RunData(root=root)
    summaries = {s.summary_file: s.name for s in registry.stages()}
    files: list[Path] = []
    for folder, dirs, names in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS and not d.startswith("."))
        files += [Path(folder) / name for name in sorted(names)]
    # originals first, so a record read again from a merged copy keeps its own stage
    files.sort(key=lambda p: (p.parent.name == "data", str(p)))
    for path in files:
        relative = path.relative_to(root)
        name, stage = path.name, _stage(relative)
        if name == "paths.jsonl":
            _read_records(path, stage, data.paths)
        elif name == "mistakes.jsonl":
            _read_records(path, stage, data.mistakes)
        elif name in ("corrections.jsonl", "rejected.jsonl"):
            _read_records(path, stage, data.replies)
        elif name == "cot.jsonl":
            with open(path, "rb") as handle:
                data.cot += sum(1 for line in handle if line.strip())
        elif name in ("train.jsonl", "val.jsonl") and (path.parent / "dataset_info.json").exists():
            _read_export(path, data)
        elif name == "dataset_info.json":
            info = _read_json(path)
            data.export_counts[path.parent.name] = info.get("counts", {})
            data.export_format[path.parent.name] = str(info.get("kind") or info.get("format") or "")
            data.exported.setdefault(path.parent.name, set())
        elif name == "checks.jsonl":
            for _, record in numbered_jsonl(path):
                if "correction_id" in record:
                    data.checks[str(record["correction_id"])] = record
        elif name.startswith("results_") and name.endswith(".json"):
            data.evals += _eval_rows(path, relative)
        elif name in summaries:
            data.stage_summaries[(stage, summaries[name])] = _read_json(path)
        elif name == USAGE_FILE:
            for stage_name, counts in folder_usage(path.parent).items():
                key = (stage, stage_name)
                data.usage[key] = _add_usage(data.usage.get(key), counts)
        elif name == "run_summary.json" and path.parent == root:
            data.run_summary = _read_json(path)
        else:
            continue
        data.found.append(str(relative))
    if not (data.paths or data.mistakes or data.replies or data.cot or data.exported or data.evals
            or data.stage_summaries or data.checks):
        raise NoRunData(f"{root}: no LeMa records found (paths.jsonl, mistakes.jsonl, corrections.jsonl, "
                        "rejected.jsonl, cot.jsonl, an export or lm-eval results)")
    return data

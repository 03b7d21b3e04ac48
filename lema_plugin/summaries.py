"""Stage summaries: the one writer, and the usage figures every summary takes from the client.

Every stage ends with a summary computed from the records in its run store (so a resumed run
reports the whole run) and written here, as `<stage>_summary.json` in its run folder
(`sample_summary.json`, `import_summary.json`, `correct_summary.json`, `cot_summary.json`,
`evolve_summary.json`, `grade_summary.json`; `lema run` adds `run_summary.json`).
Tokens, requests and cost are never added up from records: they are the client's own counts,
measured over the stage (`usage_since`), so the run total equals what the client paid for.
"""
from __future__ import annotations

import copy
import json
from pathlib import Path

from .store import write_atomic


def write_summary(path: str | Path, summary) -> None:
    """Write `summary.to_dict()` as JSON, atomically."""
    write_atomic(Path(path), json.dumps(summary.to_dict(), indent=2, ensure_ascii=False) + "\n")


def usage_snapshot(client) -> dict:
    """A copy of the client's usage counters, to measure what one stage spent."""
    return copy.deepcopy(getattr(client, "usage", {}))


def usage_since(client, before: dict) -> dict:
    """Tokens, requests and cost the client counted since `before`, per endpoint label and in
    total: a stage's figures come from here, never from adding up its own records."""
    per_label = {}
    for label, now in getattr(client, "usage", {}).items():
        then = before.get(label)
        delta = {
            name: getattr(now, name) - (getattr(then, name) if then else 0)
            for name in ("requests", "cached", "failures", "prompt_tokens", "completion_tokens")
        }
        if now.cost is not None:
            delta["cost"] = round(now.cost - ((then.cost or 0.0) if then else 0.0), 6)
        if any(delta.values()):
            per_label[label] = delta
    total = {name: sum(d.get(name, 0) for d in per_label.values())
             for name in ("requests", "cached", "failures", "prompt_tokens", "completion_tokens")}
    costs = [d["cost"] for d in per_label.values() if "cost" in d]
    total["cost"] = round(sum(costs), 6) if costs else None
    return {"total": total, "by_endpoint": per_label}


USAGE_FILE = "usage.jsonl"


def record_usage(out_dir: str | Path, stage: str, usage: dict) -> None:
    """Add what one run of `stage` spent (the client's counts, `usage_since`) to the run folder's
    ledger, one line per run: the tokens and dollars a folder cost, across resumes and reruns,
    come from here and nowhere else."""
    import time

    from .records import make_id
    from .store import RunStore

    total = usage.get("total") or {}
    if not any(total.get(name) for name in ("requests", "prompt_tokens", "completion_tokens", "cost")):
        return
    with RunStore(Path(out_dir) / USAGE_FILE) as ledger:
        ledger.append({"id": make_id(stage, time.time_ns()), "stage": stage, "time": time.time(), **usage})


def folder_usage(out_dir: str | Path, by_endpoint: bool = False) -> dict[str, dict]:
    """Stage -> prompt tokens, completion tokens, requests and dollars, summed over every run the
    folder's ledger holds (None for dollars when no endpoint had a price). With `by_endpoint`,
    stage -> endpoint label -> the same figures (each ledger line keeps its run's counts per
    endpoint too), for a stage that asks several endpoints and reports each."""
    from .records import numbered_jsonl

    path = Path(out_dir) / USAGE_FILE
    totals: dict[str, dict] = {}
    if not path.exists():
        return totals
    for _, row in numbered_jsonl(path):
        stage = row.get("stage", "?")
        if by_endpoint:
            for label, counts in (row.get("by_endpoint") or {}).items():
                _add_counts(totals.setdefault(stage, {}).setdefault(label, _no_usage()), counts)
        else:
            _add_counts(totals.setdefault(stage, _no_usage()), row.get("total") or {})
    return totals


def _no_usage() -> dict:
    return {"prompt_tokens": 0, "completion_tokens": 0, "requests": 0, "cost": None}


def _add_counts(entry: dict, counts: dict) -> None:
    for name in ("prompt_tokens", "completion_tokens", "requests"):
        entry[name] += int(counts.get(name) or 0)
    if counts.get("cost") is not None:
        entry["cost"] = round((entry["cost"] or 0.0) + counts["cost"], 6)


def request_lines(summary) -> list[str]:
    """The closing lines of a stage summary that has `failed_requests`, `failure_example`,
    `requests` and `usage`: what still failed (asked again next run), and what this run asked."""
    out = []
    if summary.failed_requests:
        out.append(f"failed requests: {summary.failed_requests}, asked again on the next run "
                   f"(first error: {summary.failure_example})")
    total = summary.usage.get("total", {})
    out.append(f"{summary.requests} new requests; tokens this run: {total.get('prompt_tokens', 0):,} prompt, "
               f"{total.get('completion_tokens', 0):,} completion")
    return out


def top_reasons(summary, limit: int = 3) -> str:
    """"; top reasons: 4x HTTP 500: ..." from a summary's `failure_reasons` (empty when none),
    and which setting to change when most of them are timeouts."""
    reasons = getattr(summary, "failure_reasons", None) or []
    if not reasons:
        return ""
    return "; top reasons: " + "; ".join(f"{count}x {reason}" for reason, count in reasons[:limit]) + timeout_hint(reasons)


TIMEOUT_HINT = ("; most timed out: give each request longer (--timeout S, `;timeout=S` on the endpoint spec, "
                "`timeout:` in a recipe) or send fewer at once (--concurrency N, `;concurrency=N`)")


def timeout_hint(reasons) -> str:
    """TIMEOUT_HINT when timeouts are most of `reasons` ((reason, count) pairs or a Counter)."""
    pairs = list(reasons.items()) if hasattr(reasons, "items") else list(reasons)
    total = sum(count for _, count in pairs)
    timed_out = sum(count for reason, count in pairs if "timed out" in reason)
    return TIMEOUT_HINT if total and timed_out * 2 > total else ""

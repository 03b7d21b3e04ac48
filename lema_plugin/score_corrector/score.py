"""Score a run folder's stored replies: one verdict per reply, then the summary.

Every reply is read again from its stored text and compared with the item's label as loaded
today, so a better parser or a corrected label re-scores without a request. Replies the plan
wants but the store lacks (failed, over the budget, pending in a batch) are counted as missing,
never as wrong. `verdicts.jsonl` is written whole each time (it is derived, like first-error's
checks).
"""
from __future__ import annotations

from lema_plugin.store import write_jsonl_atomic
from lema_plugin.summaries import folder_usage, usage_since

from .costs import share, weight
from .metric import lema_items, outcome, score_lema, score_processbench
from .parse import read_reply
from .summary import CorrectorScore, ScoreSummary


def score_run(stage, run, costs: list) -> ScoreSummary:
    settings, items, store = run.settings, run.items, run.store(stage.outputs[0])
    ledger = folder_usage(run.out_dir, by_endpoint=True).get(stage.name, {})
    this_run = usage_since(run.client, run.usage_before)["by_endpoint"]
    verdicts, scores = [], []
    for corrector in run.endpoints["corrector"]:
        pairs: dict[str, list] = {"lema": [], "processbench": []}
        tokens: dict[str, dict] = {}
        weights: dict[str, float] = {}
        missing = 0
        for ask in stage.plan(items, {"corrector": [corrector]}, settings):
            protocol, item = ask.owner
            record = store.get(ask.id)
            if record is None:
                missing += 1
                continue
            reading = read_reply(protocol, record["raw"], corrector)
            pairs[protocol].append((item, reading))
            verdicts.append({"id": ask.id, "corrector": corrector.label, "protocol": protocol, "split": item.split,
                             "item_id": item.id, "label": item.label, "paragraphs": len(item.steps),
                             "final_answer_correct": item.final_answer_correct, "index": reading.index,
                             "outcome": outcome(item, reading, allow_none=protocol == "processbench"),
                             "reason": reading.reason})
            usage = record.get("usage") or {}
            prompt, completion = int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)
            counts = tokens.setdefault(item.split, {"prompt_tokens": 0, "completion_tokens": 0})
            counts["prompt_tokens"] += prompt
            counts["completion_tokens"] += completion
            weights[item.split] = weights.get(item.split, 0.0) + weight(prompt, completion, corrector)
        dollars = _paid(ledger.get(corrector.label), this_run.get(corrector.label))
        for split, value in share(dollars, weights).items():
            tokens[split]["dollars"] = value
        scores.append(CorrectorScore(corrector.label, score_processbench(pairs["processbench"]),
                                     score_lema(pairs["lema"]), tokens, dollars, missing))
    write_jsonl_atomic(run.out_dir / stage.product_file, verdicts)
    splits: dict[str, dict] = {}
    wrong_answer = {id(item) for item in lema_items(items)}
    for item in items:
        info = splits.setdefault(item.split, {"items": 0, "erroneous": 0, "lema": 0})
        info["items"] += 1
        info["erroneous"] += item.erroneous
        info["lema"] += id(item) in wrong_answer
    summary = ScoreSummary(splits, list(settings.protocols), settings.model_dump(mode="json"), scores, costs)
    failures = run.failed("corrector")
    summary.failed_requests = len(failures)
    summary.failure_example = failures[0] if failures else None
    return summary


def _paid(*parts: dict | None) -> float | None:
    """Dollars over the ledger's earlier runs and this one (None when no price was ever known)."""
    costs = [part.get("cost") for part in parts if part and part.get("cost") is not None]
    return round(sum(costs), 6) if costs else None

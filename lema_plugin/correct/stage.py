"""The correction stage's records: mistakes read and checked, one reply judged into a record.

`load_mistakes` reads what the stage corrects (every field checked before anything is paid
for); `judge` turns one corrector reply into a verified correction or a rejection with its
reason; `drop_failures` takes the failed requests that will be asked again out of
`rejected.jsonl`. The stage itself (rounds of attempts, the store, the summary) is `spec`.
"""
from __future__ import annotations

import os
from pathlib import Path

from lema_plugin.grading import Graded
from lema_plugin.llm.types import Completion, Endpoint
from lema_plugin.problems import parse_level
from lema_plugin.records import RecordError, check_fields, numbered_jsonl
from lema_plugin.settings import DATASETS
from lema_plugin.steps import split_steps
from lema_plugin.store import RunStore, write_jsonl_atomic

from .parse import UnparseableReply, parse_correction
from .prompt import reply_text, template_name
from .verify import verify

CORRECTIONS = "corrections.jsonl"
REJECTED = "rejected.jsonl"
SUMMARY = "correct_summary.json"
# The shape of a stored correction or rejection: a record that lacks it is set aside on load
STORED_FIELDS = {"id": (str,), "path_id": (str,), "dataset": (str,), "question": (str,), "answer": (str,),
                 "steps": (list,), "attempt": (int,), "correct": (bool,), "level": (int, type(None)),
                 "subject": (str, type(None)), "reason": (str, type(None))}
# Field types of a mistake record, checked line by line before the corrector is asked anything
MISTAKE_FIELDS = {"id": (str,), "question": (str,), "answer": (str, int, float), "dataset": (str,),
                  "text": (str, type(None)), "model": (str, type(None)), "problem_id": (str, type(None)),
                  "subject": (str, type(None)), "correct": (bool, type(None)), "kind": (str, type(None))}
OPENAI_CORRECTOR = "gpt-4o;price=2.5/10"  # a GPT-4-class model, as in the paper
EMBEDDED_CORRECTOR = "embedded"


def corrector_spec(spec: str | None = None, environ=os.environ) -> str:
    """The corrector endpoint spec to use.

    In order: `spec` (the --corrector option), `$LEMA_CORRECTOR`, a GPT-4-class OpenAI model
    when `$OPENAI_API_KEY` is set (at `$OPENAI_BASE_URL` if set), else the embedded default.
    """
    for candidate in (spec, environ.get("LEMA_CORRECTOR")):
        if candidate and candidate.strip():
            return candidate.strip()
    if environ.get("OPENAI_API_KEY"):
        return OPENAI_CORRECTOR
    return EMBEDDED_CORRECTOR


def load_mistakes(path, limit: int | None = None) -> list[dict]:
    """Wrong paths from `mistakes.jsonl` (or `paths.jsonl`: its correct and failed paths are
    skipped), or from a list of such records (a plan made before sampling).

    A record without `steps` gets them from its `text`; duplicate ids are read once. Every field
    is checked for type first: a bad one is named by file, line and field before anything is paid.
    """
    mistakes: dict[str, dict] = {}
    lines = enumerate(path, 1) if isinstance(path, list) else numbered_jsonl(path)
    path = "<planned mistakes>" if isinstance(path, list) else path
    for number, record in lines:
        for name in ("id", "question", "answer", "dataset"):
            if record.get(name) is None or (isinstance(record[name], str) and not record[name].strip()):
                raise RecordError(path, number, "missing or empty", field=name)
        check_fields(record, MISTAKE_FIELDS, path, number)
        record = {**record, "answer": str(record["answer"])}
        if record.get("level") is not None:
            record["level"] = parse_level(record["level"], str(path), number)
        if record.get("correct") is True or record.get("kind") == "failed" or record["id"] in mistakes:
            continue
        if record["dataset"] not in DATASETS:
            raise RecordError(path, number, f"unknown dataset {record['dataset']!r} (expected gsm8k, math or math500)", field="dataset")
        steps = record.get("steps")
        if steps is not None and not (isinstance(steps, list) and all(isinstance(s, str) for s in steps)):
            raise RecordError(path, number, "expected a list of strings", field="steps")
        if not steps:
            steps = split_steps(record.get("text") or "")
            if not steps:
                raise RecordError(path, number, "no steps and no text to split into steps", field="steps")
            record = {**record, "steps": steps}
        mistakes[record["id"]] = record
        if limit is not None and len(mistakes) >= limit:
            break
    return list(mistakes.values())


def judge(mistake: dict, corrector: Endpoint, settings, attempt: int, completion: Completion, record_id: str,
          graded: Graded | None = None) -> dict:
    """Turn one corrector reply into a correction record (`correct` true) or a rejected one;
    `graded` is the corrected solution's grade when a judge settled it (else the rules grade)."""
    record = {
        "id": record_id,
        "path_id": mistake["id"],
        "problem_id": mistake.get("problem_id"),
        "dataset": mistake["dataset"],
        "question": mistake["question"],
        "answer": mistake["answer"],
        "source_model": mistake.get("model"),
        "steps": mistake["steps"],
        "corrector": corrector.label,
        "prompt": template_name(mistake["dataset"], settings.style),
        "attempt": attempt,
        "raw": completion.text,
        "finish_reason": completion.finish_reason,
        "incorrect_step": None,
        "explanation": None,
        "corrected_solution": None,
        "prediction": None,
        "correct": False,
        "usage": {"prompt_tokens": completion.prompt_tokens, "completion_tokens": completion.completion_tokens},
    }
    for name in ("level", "subject"):
        if mistake.get(name) is not None:
            record[name] = mistake[name]
    if not completion.ok:
        return {**record, "reason": "request_failed", "detail": completion.error}
    try:
        parsed = parse_correction(reply_text(corrector, completion.text))
    except UnparseableReply as exc:
        return {**record, "reason": "unparseable", "detail": str(exc)}
    record.update(
        incorrect_step=parsed.incorrect_step,
        explanation=parsed.explanation,
        corrected_solution=parsed.corrected_solution,
    )
    verdict = verify(parsed, mistake["steps"], mistake["answer"], mistake["dataset"], graded, mistake.get("question"))
    record["prediction"] = verdict.prediction
    record["decided_by"] = verdict.decided_by
    if not verdict.ok:
        return {**record, "reason": verdict.reason, "detail": verdict.detail}
    record["correct"] = True
    return record


def drop_failures(path: Path, retry_ids: set[str]) -> None:
    """Take failed requests that will be asked again out of `rejected.jsonl`."""
    if not path.exists():
        return
    with RunStore(path, STORED_FIELDS) as store:  # also trims a torn last line
        records = list(store)
    kept = [r for r in records if not (r.get("reason") == "request_failed" and r["id"] in retry_ids)]
    if len(kept) < len(records):
        write_jsonl_atomic(path, kept)

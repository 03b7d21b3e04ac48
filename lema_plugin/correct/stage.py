"""The correction stage: mistakes in, verified corrections and counted rejections out.

Attempts are sampled in rounds: round i asks for attempt i of every mistake that has fewer than
`keep` verified corrections among all of its attempts stored so far. The rule depends only on
records already written, so an interrupted run, run again, asks for what an uninterrupted run
would have asked for, and nothing it already has; and a rerun never asks again for an early
attempt that failed once a later one was verified, so `keep` is never exceeded. Every judged reply goes, the moment it arrives, to
`corrections.jsonl` (verified) or `rejected.jsonl` (with a reason); a request that failed is
recorded too and asked again on the next run.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Literal, Sequence

from pydantic import Field

from lema_plugin import manifest
from lema_plugin.asking import Ask, ask_missing, one_endpoint
from lema_plugin.llm.types import Completion, Endpoint
from lema_plugin.problems import parse_level
from lema_plugin.records import RecordError, check_fields, make_id, numbered_jsonl
from lema_plugin.steps import split_steps
from lema_plugin.grading import Graded
from lema_plugin.grading.judge import JudgeItem, JudgeQueue
from lema_plugin.problems import grader_dataset
from lema_plugin.settings import JudgeSettings
from lema_plugin.store import RunStore, write_jsonl_atomic
from lema_plugin.summaries import usage_since, usage_snapshot, write_summary

from .parse import UnparseableReply, parse_correction
from .prompt import build_request, reply_text, template_name
from .summary import CorrectSummary, summarize
from .verify import grade_solution, verify

CORRECTIONS = "corrections.jsonl"
REJECTED = "rejected.jsonl"
SUMMARY = "correct_summary.json"
DATASETS = ("gsm8k", "math", "math500")
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


class CorrectSettings(JudgeSettings):
    """How the corrector is asked."""

    samples: int = Field(1, ge=1, description="Corrector replies sampled per mistake, at most.")
    keep: int = Field(1, ge=1, description="Stop sampling a mistake once this many corrections are verified.")
    temperature: float | None = Field(
        None, ge=0, description="Sampling temperature.", json_schema_extra={"default_text": "0 for one sample, 0.7 for several"})
    top_p: float = Field(1.0, gt=0, le=1, description="Nucleus sampling.")
    max_tokens: int = Field(1024, ge=1, description="Longest corrector reply.")
    style: Literal["fewshot", "zeroshot"] = Field(
        "fewshot", description="Few-shot corrector prompt (any model), or zero-shot (strong chat models, fewer tokens).")

    @property
    def sampling_temperature(self) -> float:
        """Greedy for one attempt; several attempts of the same question need variety."""
        if self.temperature is not None:
            return self.temperature
        return 0.0 if self.samples == 1 else 0.7


def load_mistakes(path: str | Path, limit: int | None = None) -> list[dict]:
    """Wrong paths from `mistakes.jsonl` (or `paths.jsonl`: its correct and failed paths are skipped).

    A record without `steps` gets them from its `text`; duplicate ids are read once. Every field
    is checked for type first: a bad one is named by file, line and field before anything is paid.
    """
    mistakes: dict[str, dict] = {}
    for number, record in numbered_jsonl(path):
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


def attempt_id(mistake: dict, corrector: Endpoint, settings: CorrectSettings, attempt: int) -> str:
    """Everything that decides the corrector's reply, so a changed setting is new work."""
    return make_id(
        "correction",
        mistake["id"],
        corrector.model,
        template_name(mistake["dataset"], settings.style),
        settings.sampling_temperature,
        settings.top_p,
        settings.max_tokens,
        attempt,
    )


def judge(mistake: dict, corrector: Endpoint, settings: CorrectSettings, attempt: int, completion: Completion,
          graded: Graded | None = None) -> dict:
    """Turn one corrector reply into a correction record (`correct` true) or a rejected one;
    `graded` is the corrected solution's grade when a judge settled it (else the rules grade)."""
    record = {
        "id": attempt_id(mistake, corrector, settings, attempt),
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
    verdict = verify(parsed, mistake["steps"], mistake["answer"], mistake["dataset"], graded)
    record["prediction"] = verdict.prediction
    record["decided_by"] = verdict.decided_by
    if not verdict.ok:
        return {**record, "reason": verdict.reason, "detail": verdict.detail}
    record["correct"] = True
    return record


def _drop_failures(path: Path, retry_ids: set[str]) -> None:
    """Take failed requests that will be asked again out of `rejected.jsonl`."""
    if not path.exists():
        return
    with RunStore(path, STORED_FIELDS) as store:  # also trims a torn last line
        records = list(store)
    kept = [r for r in records if not (r.get("reason") == "request_failed" and r["id"] in retry_ids)]
    if len(kept) < len(records):
        write_jsonl_atomic(path, kept)


async def correct_mistakes(
    mistakes: list[dict],
    endpoints: Sequence[Endpoint],
    client,
    out_dir: str | Path,
    settings: CorrectSettings | None = None,
) -> CorrectSummary:
    """The correction stage: ask the corrector (the one endpoint in `endpoints`) to correct each
    mistake; write corrections.jsonl and rejected.jsonl in `out_dir`.

    `mistakes` are path records (see `load_mistakes`); `client` is the shared `LLMClient`.
    Returns the summary (also written to `correct_summary.json`).
    """
    corrector = one_endpoint(endpoints, "the correction stage")
    settings = settings or CorrectSettings()
    before = usage_snapshot(client)
    out_dir = Path(out_dir)
    ids = {m["id"]: [attempt_id(m, corrector, settings, i) for i in range(settings.samples)] for m in mistakes}
    _drop_failures(out_dir / REJECTED, {i for attempt_ids in ids.values() for i in attempt_ids})

    requests = 0
    judging = JudgeQueue(settings.judge, client, desc="judge corrections")
    with RunStore(out_dir / CORRECTIONS, STORED_FIELDS) as kept, RunStore(out_dir / REJECTED, STORED_FIELDS) as rejected:
        manifest.remember(
            out_dir, "correct",
            {"corrector": {"model": corrector.model, "mode": corrector.mode, "style": settings.style,
                           "temperature": settings.sampling_temperature, "top_p": settings.top_p,
                           "max_tokens": settings.max_tokens}},
            {"corrector": {**manifest.endpoint_info(corrector), **settings.model_dump()}},
            [CORRECTIONS, REJECTED, SUMMARY],
        )

        def keep(record: dict) -> None:
            (kept if record["correct"] else rejected).append(record)

        def store(ask, completion) -> None:
            mistake, attempt = ask.owner
            record = judge(mistake, corrector, settings, attempt, completion)
            if record.get("reason") != "wrong_answer" or judging.judge is None:
                keep(record)
                return
            # a wrong answer the rules may not have settled: the judge may (after this round)
            solution = record["corrected_solution"]
            graded = grade_solution(solution, mistake["answer"], mistake["dataset"])
            item = JudgeItem.of(solution, mistake["answer"], grader_dataset(mistake["dataset"]), mistake["question"])
            judging.put(graded, item, lambda settled: keep(judge(mistake, corrector, settings, attempt, completion, settled)))

        for attempt in range(settings.samples):
            asks = [
                Ask(ids[m["id"]][attempt], corrector,
                    build_request(m, corrector, settings.style, attempt, settings.sampling_temperature, settings.top_p, settings.max_tokens),
                    (m, attempt))
                for m in mistakes
                if sum(i in kept for i in ids[m["id"]]) < settings.keep
            ]
            desc = f"correct {attempt + 1}/{settings.samples}" if settings.samples > 1 else "correct"
            requests += await ask_missing(client, asks, lambda i: i in kept or i in rejected, store, desc=desc,
                                          role="corrector")
            await judging.settle()  # before the next round, which counts what this one verified

        mine = {i for attempt_ids in ids.values() for i in attempt_ids}
        records = [r for store_ in (kept, rejected) for r in store_ if r["id"] in mine]

    summary = summarize(mistakes, records, corrector)
    summary.requests = requests
    summary.usage = usage_since(client, before)
    write_summary(out_dir / SUMMARY, summary)
    return summary

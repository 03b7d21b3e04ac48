"""Collect mistakes: sample reasoning paths from generator LLMs, grade them, keep the wrong ones.

LeMa's first stage. For every problem and every generator, K paths are sampled with the `solve`
prompt, graded by the one grader, split into numbered steps, and appended to `paths.jsonl` the
moment they arrive (a run store: an interrupted run, started again, asks only for what is
missing; the response cache in `OUT/.cache` covers answers that arrived but were not yet stored).

When the requests are done, the run folder is finalized from the store alone:

- `paths.jsonl` is rewritten in a fixed order (problem, generator, sample index), so a resumed run
  and an uninterrupted one give the same file;
- `mistakes.jsonl` holds the wrong paths, de-duplicated per question by normalized text and
  capped per question (taking generators in turn, so every model's mistakes are represented);
  paths with no extractable answer and truncated ones are kept out unless `keep_unfinished`;
- `sample_summary.json`: per generator accuracy, mistakes kept, unextractable and truncated shares and
  tokens (and, for MATH, accuracy per level).

With a judge (`SampleSettings.judge`), a path the rules cannot grade waits until the requests are
done, is judged, and is then stored; every path records `decided_by` (rule, symbolic or judge).

Failed requests are recorded too (kind "failed", with the error) but never count as done: a
re-run asks again, and once a path succeeds its failure records are dropped on finalize.
`lema import` reuses `path_record` and `finalize_run`, so imported paths are graded and
filtered exactly like sampled ones.
"""
from __future__ import annotations

import time
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field

from pydantic import Field, field_validator
from pathlib import Path
from typing import Iterable, Sequence

from .errors import ConfigError
from .asking import Ask, ask_missing
from .grading import Graded, grade
from .grading.judge import JudgeItem, JudgeQueue
from . import manifest
from .llm.types import Completion, Endpoint
from .problems import Problem, grader_dataset
from .prompts import check_template, load_prompt
from .records import make_id
from .steps import split_steps
from .settings import JudgeSettings
from .solving import solve_request
from .store import RunStore, write_jsonl_atomic
from .text import dedupe_key
from .summaries import usage_since, usage_snapshot, write_summary as write_summary_file

PATHS_FILE = "paths.jsonl"
MISTAKES_FILE = "mistakes.jsonl"
SUMMARY_FILE = "sample_summary.json"
KINDS = ("correct", "wrong", "unextractable", "truncated", "failed")
_OPTIONAL_TEXT = (str, type(None))
# The shape of a stored path: a record that lacks it is set aside on load and asked again
PATH_FIELDS = {"id": (str,), "problem_id": (str,), "dataset": (str,), "question": (str,), "answer": (str,),
               "model": (str,), "sample_index": (int,), "text": (str,), "kind": (str,), "correct": (bool,),
               "prediction": _OPTIONAL_TEXT, "level": (int, type(None)), "subject": _OPTIONAL_TEXT}


class SampleSettings(JudgeSettings):
    """How paths are sampled and which of them become mistakes."""

    samples: int = Field(4, ge=1, description="Paths sampled per question and generator.")
    temperature: float = Field(0.7, ge=0, description="Sampling temperature.")
    top_p: float = Field(1.0, gt=0, le=1, description="Nucleus sampling.")
    max_tokens: int = Field(512, ge=1, description="Token limit per path (paths that hit it are 'truncated').")
    prompt: str = Field("solve", description="Prompt template: a shipped one by name (lema_plugin/prompts/NAME.txt) "
                        "or your own .txt file with a {question} placeholder; the user message in chat mode, the "
                        "prompt in completion mode.")
    seed: int | None = Field(None, description="Base seed for servers that honour it (sample k uses seed+k).",
                             json_schema_extra={"default_text": "none, the server's own"})
    max_mistakes_per_question: int | None = Field(
        None, ge=0, description="Keep at most N distinct mistakes per question, taking generators in turn.",
        json_schema_extra={"default_text": "all"})
    keep_unfinished: bool = Field(False, description="Also keep paths with no extractable answer and truncated paths as mistakes.")

    @field_validator("prompt")
    @classmethod
    def _known_prompt(cls, name: str) -> str:
        return check_template(name, ("question",))  # fail early: unknown, or the wrong placeholders


@dataclass
class SampleSummary:
    """What a run folder holds after finalizing: counts per generator and overall."""

    out_dir: str
    generators: dict[str, dict]
    total: dict
    questions: int
    questions_with_mistakes: int
    elapsed_s: float = 0.0
    requests: int = 0  # requests sent by this run (not answered from the store)
    usage: dict = field(default_factory=dict)  # the client's counts over this stage (see summaries.usage_since)
    usage_lines: list[str] = field(default_factory=list)
    test_questions: int = 0  # `lema import`: questions found in the dataset's test split (contamination)

    def to_dict(self) -> dict:
        return asdict(self)

    def table(self) -> str:
        """A text table for the terminal: one row per generator, then per MATH level."""
        from .tables import format_table

        headers = ["generator", "paths", "accuracy", "mistakes", "dupes", "unextr.", "trunc.", "failed", "tokens in", "tokens out"]

        def row(label: str, s: dict) -> list:
            return [
                label, s["paths"], s["accuracy"], s["mistakes"], s["duplicates"], s["unextractable_share"],
                s["truncated_share"], s["failed"], s["prompt_tokens"], s["completion_tokens"],
            ]

        rows = [row(name, stats) for name, stats in self.generators.items()]
        if len(self.generators) > 1:
            rows.append(row("all", self.total))
        parts = [format_table(headers, rows)]
        level_rows = [
            [name, level, s["paths"], s["accuracy"], s["mistakes"]]
            for name, stats in self.generators.items()
            for level, s in sorted(stats.get("by_level", {}).items(), key=lambda kv: int(kv[0]))
        ]
        if level_rows:
            parts.append(format_table(["generator", "level", "paths", "accuracy", "mistakes"], level_rows))
        parts.append(
            f"{self.questions} questions, {self.questions_with_mistakes} with at least one mistake kept; "
            f"{self.total['mistakes']} mistakes in {Path(self.out_dir) / MISTAKES_FILE}"
        )
        return "\n\n".join(parts)

    def lines(self) -> list[str]:
        """The table, the client's usage lines and how many requests this run sent."""
        return [self.table(), *self.usage_lines, f"{self.requests} new requests in {self.elapsed_s:.1f} s"]


# -- requests ------------------------------------------------------------------------------


def sampling_key(endpoint: Endpoint, settings: SampleSettings) -> dict:
    """Everything besides the problem and the index that decides what a path is."""
    return {
        "model": endpoint.model,
        "mode": endpoint.mode,
        "prompt": settings.prompt,
        "template": make_id(load_prompt(settings.prompt)),
        "temperature": settings.temperature,
        "top_p": settings.top_p,
        "max_tokens": settings.max_tokens,
        "seed": settings.seed,
    }


def path_id(problem: Problem, endpoint: Endpoint, settings: SampleSettings, sample_index: int) -> str:
    return make_id(problem.id, endpoint.label, sampling_key(endpoint, settings), sample_index)


# -- grading one path ----------------------------------------------------------------------


def path_record(
    problem: Problem,
    model: str,
    sample_index: int,
    text: str,
    finish_reason: str | None,
    record_id: str,
    graded: Graded | None = None,
    **extra,
) -> dict:
    """Grade and split one reasoning path into a path record.

    kind: "correct" when the grader accepts it; otherwise "truncated" when generation hit the
    token limit, "unextractable" when no final answer can be found, else "wrong". `graded` is a
    grade already in hand (one a judge settled); by default the rules grade `text` here.
    `decided_by` says which path decided (rule, symbolic or judge).
    """
    graded = graded or path_grade(problem, text)
    prediction, correct = graded.extracted, graded.correct
    if correct:
        kind = "correct"
    elif finish_reason == "length":
        kind = "truncated"
    elif prediction is None:
        kind = "unextractable"
    else:
        kind = "wrong"
    record = {
        "id": record_id,
        "problem_id": problem.id,
        "dataset": grader_dataset(problem.dataset),
        "question": problem.question,
        "answer": problem.answer,
        "model": model,
        "sample_index": sample_index,
        "text": text,
        "steps": split_steps(text),
        "prediction": prediction,
        "correct": correct,
        "decided_by": graded.decided_by,
        "finish_reason": finish_reason,
        "kind": kind,
        **problem.tags(),
    }
    record.update(extra)
    return record


def path_grade(problem: Problem, text: str) -> Graded:
    """The rules' grade of one path; an empty reply is wrong and settled (nothing to judge)."""
    if not text.strip():
        return Graded(None, False)
    return grade(text, problem.answer, grader_dataset(problem.dataset))


def failed_record(problem: Problem, model: str, sample_index: int, sample_id: str, error: str) -> dict:
    """A request that finally failed. Its id is fresh each time, so it never marks the path done."""
    record = {
        "id": make_id(sample_id, "failed", time.time_ns()),
        "sample_id": sample_id,
        "problem_id": problem.id,
        "dataset": grader_dataset(problem.dataset),
        "question": problem.question,
        "answer": problem.answer,
        "model": model,
        "sample_index": sample_index,
        "text": "",
        "steps": [],
        "prediction": None,
        "correct": False,
        "finish_reason": None,
        "kind": "failed",
        "error": error,
        **problem.tags(),
    }
    return record


# -- the stage -----------------------------------------------------------------------------


async def sample_paths(
    problems: Sequence[Problem],
    endpoints: Sequence[Endpoint],
    client,
    out_dir: str | Path,
    settings: SampleSettings = SampleSettings(),
) -> SampleSummary:
    """The sample stage: sample, grade and store paths for every (problem, generator, index)
    not done yet; then finalize the run folder and return its summary. `client` is an `LLMClient`."""
    if not endpoints:
        raise ConfigError("no generator endpoints given")
    labels = [e.label for e in endpoints]
    if len(set(labels)) != len(labels):
        raise ConfigError(f"generator names must differ (got {', '.join(labels)}); name them NAME=MODEL")
    started = time.monotonic()
    before = usage_snapshot(client)
    out_dir = Path(out_dir)
    problems = list({p.id: p for p in problems}.values())  # a question listed twice is sampled once

    asks = [
        Ask(
            path_id(problem, endpoint, settings, k),
            endpoint,
            solve_request(problem, endpoint, k, prompt=settings.prompt, temperature=settings.temperature,
                          top_p=settings.top_p, max_tokens=settings.max_tokens, seed=settings.seed),
            (problem, k),
        )
        for problem in problems
        for endpoint in endpoints
        for k in range(settings.samples)
    ]
    judging = JudgeQueue(settings.judge, client, desc="judge paths")
    with RunStore(out_dir / PATHS_FILE, PATH_FIELDS) as store:
        manifest.remember(
            out_dir, "sample", {f"generator {e.label}": sampling_key(e, settings) for e in endpoints},
            {f"generator {e.label}": {**manifest.endpoint_info(e), **settings.model_dump()} for e in endpoints},
            [PATHS_FILE, MISTAKES_FILE, SUMMARY_FILE],
        )
        requests = await ask_missing(
            client, asks, store.__contains__, lambda ask, reply: _store_reply(ask, reply, store, judging), desc="sampling paths",
            role="generator",
        )
        await judging.settle()

    summary = finalize_run(
        out_dir,
        problem_order=[p.id for p in problems],
        model_order=labels,
        max_mistakes_per_question=settings.max_mistakes_per_question,
        keep_unfinished=settings.keep_unfinished,
    )
    summary.elapsed_s = round(time.monotonic() - started, 3)
    summary.requests = requests
    summary.usage = usage_since(client, before)
    summary.usage_lines = list(client.usage_lines()) if hasattr(client, "usage_lines") else []
    write_summary(out_dir, summary)
    return summary


def _store_reply(ask: Ask, completion: Completion, store: RunStore, judging: JudgeQueue) -> None:
    """Store one reply's path record; one the rules cannot grade waits for the judge first.
    A truncated path that states no answer is not judged: it never reached one."""
    problem, k = ask.owner
    endpoint, pid = ask.endpoint, ask.id
    if not completion.ok:
        store.append(failed_record(problem, endpoint.label, k, pid, completion.error or "request failed"))
        return
    text = completion.text or ""

    def done(graded: Graded) -> None:
        store.append(path_record(
            problem, endpoint.label, k, text, completion.finish_reason, pid, graded,
            prompt_tokens=completion.prompt_tokens, completion_tokens=completion.completion_tokens,
        ))

    graded = path_grade(problem, text)
    if completion.finish_reason == "length" and graded.extracted is None:
        done(graded)
    else:
        judging.put(graded, JudgeItem.of(text, problem.answer, problem.dataset, problem.question), done)


# -- finalizing a run folder ---------------------------------------------------------------


def current_paths(records: Iterable[dict]) -> list[dict]:
    """The store's records with failures dropped once the same path succeeded (or failed
    again later: the last failure is kept)."""
    records = list(records)
    done = {r["id"] for r in records if r.get("kind") != "failed"}
    last_failure: dict[str, dict] = {}
    for r in records:
        if r.get("kind") == "failed" and r.get("sample_id") not in done:
            last_failure[r.get("sample_id") or r["id"]] = r
    keep_failures = {id(r) for r in last_failure.values()}
    return [r for r in records if r.get("kind") != "failed" or id(r) in keep_failures]


def select_mistakes(
    paths: Sequence[dict],
    max_per_question: int | None = None,
    keep_unfinished: bool = False,
) -> tuple[list[dict], Counter]:
    """Mistakes from ordered paths: per question, distinct texts only, at most `max_per_question`
    taken from the generators in turn. Returns (mistakes, duplicates dropped per model)."""
    allowed = {"wrong"} | ({"unextractable", "truncated"} if keep_unfinished else set())
    duplicates: Counter = Counter()
    by_question: dict[str, list[dict]] = defaultdict(list)
    seen: dict[str, set[str]] = defaultdict(set)
    for path in paths:
        if path.get("kind") not in allowed:
            continue
        key = dedupe_key(path.get("text", ""))
        if key in seen[path["problem_id"]]:
            duplicates[path["model"]] += 1
            continue
        seen[path["problem_id"]].add(key)
        by_question[path["problem_id"]].append(path)
    mistakes: list[dict] = []
    for candidates in by_question.values():
        mistakes.extend(_round_robin(candidates, max_per_question))
    return mistakes, duplicates


def _round_robin(candidates: list[dict], limit: int | None) -> list[dict]:
    if limit is None or len(candidates) <= limit:
        return candidates
    queues: dict[str, list[dict]] = defaultdict(list)
    for c in candidates:
        queues[c["model"]].append(c)
    chosen: list[dict] = []
    while len(chosen) < limit:
        for queue in queues.values():
            if queue and len(chosen) < limit:
                chosen.append(queue.pop(0))
    order = {id(c): i for i, c in enumerate(candidates)}
    return sorted(chosen, key=lambda c: order[id(c)])


def finalize_run(
    out_dir: str | Path,
    problem_order: Sequence[str] = (),
    model_order: Sequence[str] = (),
    max_mistakes_per_question: int | None = None,
    keep_unfinished: bool = False,
) -> SampleSummary:
    """Rewrite `paths.jsonl` in a fixed order, derive `mistakes.jsonl` and `sample_summary.json`.

    Works on everything in the folder's store, so paths sampled earlier, or imported, count too.
    """
    out_dir = Path(out_dir)
    with RunStore(out_dir / PATHS_FILE, PATH_FIELDS) as store:
        records = list(store)
    problem_rank = {pid: i for i, pid in enumerate(problem_order)}
    model_rank = {m: i for i, m in enumerate(model_order)}
    unknown = float("inf")  # records from earlier runs or imports go after this run's, by id

    def order(r: dict):
        return (
            problem_rank.get(r["problem_id"], unknown), r["problem_id"],
            model_rank.get(r["model"], unknown), r["model"], r.get("sample_index", 0), r["id"],
        )

    paths = sorted(current_paths(records), key=order)
    write_jsonl_atomic(out_dir / PATHS_FILE, paths)
    mistakes, duplicates = select_mistakes(paths, max_mistakes_per_question, keep_unfinished)
    write_jsonl_atomic(out_dir / MISTAKES_FILE, mistakes)
    summary = summarize(out_dir, paths, mistakes, duplicates)
    write_summary(out_dir, summary)
    return summary


def summarize(out_dir: Path, paths: Sequence[dict], mistakes: Sequence[dict], duplicates: Counter) -> SampleSummary:
    kept = Counter(m["model"] for m in mistakes)
    groups: dict[str, list[dict]] = defaultdict(list)
    for p in paths:
        groups[p["model"]].append(p)
    generators = {}
    for model, items in groups.items():
        stats = _stats(items, kept[model], duplicates[model])
        levels = sorted({p["level"] for p in items if p.get("dataset") == "math" and p.get("level") is not None})
        if levels:
            kept_by_level = Counter(m.get("level") for m in mistakes if m["model"] == model)
            stats["by_level"] = {
                str(level): _level_stats([p for p in items if p.get("level") == level], kept_by_level[level])
                for level in levels
            }
        generators[model] = stats
    total = _stats(list(paths), len(mistakes), sum(duplicates.values()))
    return SampleSummary(
        out_dir=str(out_dir),
        generators=generators,
        total=total,
        questions=len({p["problem_id"] for p in paths}),
        questions_with_mistakes=len({m["problem_id"] for m in mistakes}),
    )


def _stats(items: Sequence[dict], mistakes: int, duplicates: int) -> dict:
    kinds = Counter(p.get("kind") for p in items)
    answered = len(items) - kinds["failed"]
    share = (lambda n: round(n / answered, 4)) if answered else (lambda n: None)
    return {
        "paths": answered,
        "failed": kinds["failed"],
        "correct": kinds["correct"],
        "wrong": kinds["wrong"],
        "unextractable": kinds["unextractable"],
        "truncated": kinds["truncated"],
        "accuracy": share(kinds["correct"]),
        "unextractable_share": share(kinds["unextractable"]),
        "truncated_share": share(kinds["truncated"]),
        "duplicates": duplicates,
        "mistakes": mistakes,
        "judged": sum(p.get("decided_by") == "judge" for p in items),
        "prompt_tokens": sum(p.get("prompt_tokens") or 0 for p in items),
        "completion_tokens": sum(p.get("completion_tokens") or 0 for p in items),
    }


def _level_stats(items: Sequence[dict], mistakes: int) -> dict:
    answered = [p for p in items if p.get("kind") != "failed"]
    correct = sum(p.get("kind") == "correct" for p in answered)
    return {
        "paths": len(answered),
        "correct": correct,
        "accuracy": round(correct / len(answered), 4) if answered else None,
        "mistakes": mistakes,
    }


def write_summary(out_dir: Path, summary: SampleSummary, name: str = SUMMARY_FILE) -> None:
    write_summary_file(Path(out_dir) / name, summary)

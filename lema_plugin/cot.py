"""CoT data: question -> a correct step-by-step rationale ending "The answer is X.".

LeMa trains on CoT data next to the correction data. Two sources:

- `gold_cot`: the datasets' own rationales, rewritten into the one target style (GSM8K calculator
  annotations `<<48/2=24>>` removed and the `#### 72` line turned into `The answer is 72.`; MATH
  solutions keep their `\\boxed{}` answer and gain a closing `The answer is X.`).
- `sample_cot`: rejection sampling from a strong model. K rationales per question with the `solve`
  prompt, graded by the one grader; the correct ones are kept, de-duplicated and capped per
  question. Every graded sample goes to `cot_samples.jsonl` (a run store) the moment it arrives,
  so an interrupted run resumes without asking again; `cot.jsonl` is derived from it atomically.
"""
from __future__ import annotations

import json
import os
import re
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

from pydantic import Field

from . import manifest
from .asking import Ask, ask_missing, one_endpoint
from .grading.judge import JudgeItem, JudgeQueue
from .llm.types import Endpoint
from .problems import Problem, grader_dataset
from .records import make_id
from .settings import JudgeSettings
from .solving import solve_request
from .store import RunStore, write_atomic, write_jsonl_atomic
from .summaries import usage_since, usage_snapshot, write_summary
from .text import dedupe_key, split_gsm8k

_CALCULATOR = re.compile(r"<<[^<>]*>>")
_ANSWER_IS = re.compile(r"the answer is\b", re.IGNORECASE)
# "The answer is X." up to the period that ends the sentence (not the one inside "3.5") or the line end
_ANSWER_SENTENCE = re.compile(r"the answer is[^\n]*?(?:\.(?=\s|$)|$)", re.IGNORECASE | re.MULTILINE)


def strong_model_spec(spec: str | None = None, environ=os.environ) -> str:
    """The strong model for CoT sampling and evolution: `spec`, else `$LEMA_STRONG_MODEL`, else the
    corrector's default (the paper uses one GPT-4-class model for all three jobs)."""
    from .correct import corrector_spec

    for candidate in (spec, environ.get("LEMA_STRONG_MODEL")):
        if candidate and candidate.strip():
            return candidate.strip()
    return corrector_spec(None, environ)


def answer_sentence(answer: str) -> str:
    """The closing line every CoT target ends with."""
    return f"The answer is {answer.strip()}."


def gsm8k_gold_rationale(solution: str, answer: str | None = None) -> str:
    """GSM8K rationale without calculator annotations, `#### X` rewritten as `The answer is X.`."""
    body, stated = split_gsm8k(_CALCULATOR.sub("", solution))
    answer = answer if answer is not None else stated
    if answer is None:
        raise ValueError("GSM8K rationale has no '#### <answer>' line and no answer was given")
    lines = [line.rstrip() for line in body.strip().splitlines() if line.strip()]
    return "\n".join(_without_answer_line(lines) + [answer_sentence(answer)])


def math_gold_rationale(solution: str, answer: str) -> str:
    """MATH solution as written (boxed answer kept), closed by `The answer is X.`."""
    lines = _without_answer_line(solution.rstrip().splitlines())
    return "\n".join(lines + [answer_sentence(answer)])


def _without_answer_line(lines: list[str]) -> list[str]:
    """Drop a closing "The answer is ..." line: some rationales (a few GSM8K ones, every evolved
    problem's) already say it in their own words; the target says it once, our way. A line that
    holds the boxed answer stays."""
    last = lines[-1].strip() if lines else ""
    if last.lower().startswith("the answer is") and "\\boxed" not in last:
        return lines[:-1]
    return lines


def gold_rationale(problem: Problem) -> str:
    """The dataset's own rationale for `problem` in the CoT target style."""
    if grader_dataset(problem.dataset) == "gsm8k":
        return gsm8k_gold_rationale(problem.solution or "", problem.answer)
    if not problem.solution:
        raise ValueError(f"problem {problem.id} has no gold solution")
    return math_gold_rationale(problem.solution, problem.answer)


def cot_record(problem: Problem, rationale: str, source: str) -> dict:
    """One cot.jsonl record (id stable across runs: problem, source and rationale text)."""
    record = {
        "id": make_id("cot", problem.id, source, rationale),
        "problem_id": problem.id,
        "dataset": problem.dataset,
        "question": problem.question,
        "answer": problem.answer,
        "rationale": rationale,
        "source": source,
        **problem.tags(),
    }
    return record


def gold_cot(problems: Iterable[Problem]) -> list[dict]:
    """CoT records from the gold rationales; problems without a usable rationale are skipped."""
    records = []
    for problem in problems:
        try:
            records.append(cot_record(problem, gold_rationale(problem), "gold"))
        except ValueError:
            continue
    return records


def finish_rationale(text: str, prediction: str) -> str:
    """Cut a correct model rationale after its last `The answer is ...` sentence, or add one.

    Chatter after the answer sentence is dropped so every target ends the same way.
    """
    text = text.strip()
    starts = [m.start() for m in _ANSWER_IS.finditer(text)]
    if starts:
        sentence = _ANSWER_SENTENCE.match(text, starts[-1]).group(0).rstrip()
        if not sentence.endswith("."):
            sentence += "."
        return (text[: starts[-1]] + sentence).strip()
    return f"{text}\n{answer_sentence(prediction)}"


class CotSettings(JudgeSettings):
    """Rejection sampling of CoT rationales from a strong model."""

    samples: int = Field(4, ge=1, description="Rationales sampled per question.")
    keep: int = Field(2, ge=1, description="Distinct correct rationales kept per question.")
    temperature: float = Field(0.8, ge=0, description="Sampling temperature.")
    max_tokens: int = Field(512, ge=1, description="Token limit per rationale (truncated ones are never kept).")


@dataclass
class CotSummary:
    """Counts for the end-of-run summary of `sample_cot`."""

    questions: int = 0
    samples: int = 0
    requested: int = 0
    failed: int = 0
    correct: int = 0
    duplicates: int = 0
    capped: int = 0
    kept: int = 0
    questions_covered: int = 0
    usage: dict = field(default_factory=dict)  # the client's counts over this run (summaries.usage_since)
    usage_lines: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)

    def lines(self) -> list[str]:
        graded = self.samples
        rate = f"{self.correct / graded:.1%}" if graded else "n/a"
        lines = [
            f"questions: {self.questions} ({self.questions_covered} with at least one kept rationale)",
            f"samples graded: {graded} (requested this run: {self.requested}, failed: {self.failed})",
            f"correct: {self.correct} ({rate})",
            f"kept: {self.kept} (duplicates dropped: {self.duplicates}, over the cap: {self.capped})",
        ]
        return lines + self.usage_lines + [f"{self.requested} new requests"]


def sample_id(problem: Problem, endpoint: Endpoint, temperature: float, max_tokens: int, index: int) -> str:
    return make_id("cot-sample", problem.id, endpoint.model, temperature, max_tokens, index)


def select_rationales(problems: list[Problem], samples: Iterable[dict], max_per_question: int,
                      summary: CotSummary, source: str) -> list[dict]:
    """Correct samples -> CoT records: finished, de-duplicated, at most `max_per_question` each."""
    by_problem: dict[str, list[dict]] = defaultdict(list)
    for record in samples:
        by_problem[record["problem_id"]].append(record)
    records = []
    for problem in problems:
        seen: set[str] = set()
        kept = 0
        for sample in sorted(by_problem.get(problem.id, []), key=lambda r: r["sample_index"]):
            if not sample.get("correct"):
                continue
            # a rationale the judge accepted may state no answer the rules could read: close with the gold one
            rationale = finish_rationale(sample["text"], sample["prediction"] or problem.answer)
            key = dedupe_key(rationale)
            if key in seen:
                summary.duplicates += 1
                continue
            seen.add(key)
            if kept >= max_per_question:
                summary.capped += 1
                continue
            kept += 1
            records.append(cot_record(problem, rationale, source))
        summary.questions_covered += kept > 0
    summary.kept = len(records)
    return records


async def sample_cot(
    problems: list[Problem],
    endpoints: Sequence[Endpoint],
    client,
    out_dir: str | Path,
    settings: CotSettings = CotSettings(),
) -> CotSummary:
    """The CoT stage with a model: rejection-sample rationales from the one endpoint in
    `endpoints`; write `cot_samples.jsonl` (every graded sample), `cot.jsonl` and
    `cot_summary.json` under `out_dir`."""
    endpoint = one_endpoint(endpoints, "CoT sampling")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    before = usage_snapshot(client)
    summary = CotSummary(questions=len(problems))
    asks = [
        Ask(sample_id(problem, endpoint, settings.temperature, settings.max_tokens, index), endpoint,
            solve_request(problem, endpoint, index, temperature=settings.temperature, max_tokens=settings.max_tokens),
            (problem, index))
        for problem in problems
        for index in range(settings.samples)
    ]
    judging = JudgeQueue(settings.judge, client, desc="judge rationales")
    with RunStore(out_dir / "cot_samples.jsonl") as store:
        manifest.remember(
            out_dir, "cot",
            {"cot model": {"model": endpoint.model, "mode": endpoint.mode, "temperature": settings.temperature,
                           "max_tokens": settings.max_tokens}},
            {"cot model": {**manifest.endpoint_info(endpoint), **settings.model_dump()}},
            ["cot_samples.jsonl", "cot.jsonl", "cot_summary.json"],
        )

        def grade(ask: Ask, completion) -> None:
            if not completion.ok:
                summary.failed += 1
                return  # not stored: asked again on the next run
            if completion.finish_reason == "length":  # a truncated rationale is no training target: not judged
                store.append(_graded_sample(ask, completion))
                return
            problem = ask.owner[0]
            judging.put(_rule_grade(problem, completion.text), JudgeItem.of(completion.text, problem.answer, problem.dataset, problem.question),
                        lambda graded: store.append(_graded_sample(ask, completion, graded)))

        summary.requested = await ask_missing(client, asks, store.__contains__, grade, desc=f"cot {endpoint.label}",
                                               role="cot model")
        await judging.settle()
        wanted = {ask.id for ask in asks}
        graded = [r for r in store if r["id"] in wanted]
    summary.samples = len(graded)
    summary.correct = sum(bool(r.get("correct")) for r in graded)
    records = select_rationales(problems, graded, settings.keep, summary, endpoint.label)
    write_jsonl_atomic(out_dir / "cot.jsonl", records)
    summary.usage = usage_since(client, before)
    summary.usage_lines = list(client.usage_lines())
    write_summary(out_dir / "cot_summary.json", summary)
    return summary


def _rule_grade(problem: Problem, text: str):
    from .grading import grade

    return grade(text, problem.answer, grader_dataset(problem.dataset))


def _graded_sample(ask: Ask, completion, graded=None) -> dict:
    """A sample record; `graded` is a grade in hand (one the judge settled), else the rules grade."""
    problem, index = ask.owner
    graded = graded or _rule_grade(problem, completion.text)
    prediction, correct = graded.extracted, graded.correct
    if completion.finish_reason == "length":
        correct = False  # a truncated rationale is no training target
    return {
        "id": ask.id,
        "problem_id": problem.id,
        "model": ask.endpoint.label,
        "sample_index": index,
        "text": completion.text,
        "prediction": prediction,
        "correct": correct,
        "decided_by": graded.decided_by,
        "finish_reason": completion.finish_reason,
    }


def write_gold_cot(problems: list[Problem], out_dir: str | Path) -> tuple[list[dict], Counter]:
    """Write the gold CoT records to `out_dir/cot.jsonl`; return them and per-dataset counts."""
    records = gold_cot(problems)
    write_jsonl_atomic(Path(out_dir) / "cot.jsonl", records)
    by_dataset = Counter(r["dataset"] for r in records)
    figures = {"source": "gold", "questions": len(problems), "kept": len(records),
               "without_rationale": len(problems) - len(records), "by_dataset": dict(by_dataset)}
    write_atomic(Path(out_dir) / "cot_summary.json", json.dumps(figures, indent=2) + "\n")
    return records, by_dataset

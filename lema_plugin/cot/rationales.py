"""CoT rationales: question -> a correct step-by-step rationale ending "The answer is X.".

- `gold_cot`: the datasets' own rationales, rewritten into the one target style (GSM8K calculator
  annotations `<<48/2=24>>` removed and the `#### 72` line turned into `The answer is 72.`; MATH
  solutions keep their `\\boxed{}` answer and gain a closing `The answer is X.`). A problem
  whose "rationale" only states its answer (your own `{"question", "answer": "24"}` lines) has no
  CoT target: it is counted as without a usable rationale, never written as "The answer is 24."
- `select_rationales`: the correct samples of a strong model, finished the same way,
  de-duplicated and capped per question (the stage that samples them is `spec`).
"""
from __future__ import annotations

import os
import re
from collections import defaultdict
from typing import Iterable

from ..problems import Problem, grader_dataset
from ..records import make_id
from ..text import dedupe_key, split_gsm8k

_CALCULATOR = re.compile(r"<<[^<>]*>>")
_ANSWER_IS = re.compile(r"the answer is\b", re.IGNORECASE)
# "The answer is X." up to the period that ends the sentence (not the one inside "3.5") or the line end
_ANSWER_SENTENCE = re.compile(r"the answer is[^\n]*?(?:\.(?=\s|$)|$)", re.IGNORECASE | re.MULTILINE)
# a line that only states the answer: "The answer is X.", "Final answer: X", "#### X", "A: X", a lone box
_ANSWER_ONLY_LINE = re.compile(
    r"^\s*(?:(?:the\s+)?(?:final\s+)?answer\s*(?:is\b|:)|####|A\s*:|[$\\(\[\s]*\\(?:boxed|fbox)\{[^\n]*\}[$\\)\]\s.]*$)",
    re.IGNORECASE)


class NoWorkedSolution(ValueError):
    """A gold rationale that only states the answer: no training target for CoT."""


def has_worked_steps(rationale: str) -> bool:
    """Whether a rationale shows any work besides stating its answer ("The answer is 24." alone,
    or a lone `#### 24` or `\\boxed{24}`, teaches nothing and is never exported as CoT)."""
    return any(line.strip() and not _ANSWER_ONLY_LINE.match(line) for line in rationale.splitlines())


def strong_model_spec(spec: str | None = None, environ=os.environ) -> str:
    """The strong model for CoT sampling and evolution: `spec`, else `$LEMA_STRONG_MODEL`, else the
    corrector's default (the paper uses one GPT-4-class model for all three jobs)."""
    from ..correct.stage import corrector_spec

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
    lines = _without_answer_line([line.rstrip() for line in body.strip().splitlines() if line.strip()])
    if not has_worked_steps("\n".join(lines)):
        raise NoWorkedSolution("the GSM8K rationale states only its answer")
    return "\n".join(lines + [answer_sentence(answer)])


def math_gold_rationale(solution: str, answer: str) -> str:
    """MATH solution as written (boxed answer kept), closed by `The answer is X.`."""
    lines = _without_answer_line(solution.rstrip().splitlines())
    if not has_worked_steps("\n".join(lines)):
        raise NoWorkedSolution("the MATH solution states only its answer")
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
    """CoT records from the gold rationales; problems without a usable rationale (none, or one
    that only states the answer) are skipped: the summary counts them."""
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


def select_rationales(problems: list[Problem], samples: Iterable[dict], max_per_question: int,
                      summary, source: str) -> list[dict]:
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



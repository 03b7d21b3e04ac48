"""Paired comparison of two lm-eval `--log_samples` outputs of the same task(s).

Both models answered the same questions, so the comparison is per question: the difference in
accuracy (A minus B), a 95% paired-bootstrap interval for it (questions resampled with
replacement, the same draw for both models, a fixed seed), and McNemar's exact test: under "no
difference" a question one model gets right and the other wrong is equally likely to go either
way, so the discordant count is Binomial(b + c, 1/2); the p-value is the two-sided exact
binomial test (scipy). The paper reports single accuracies; this says whether a gap is more
than noise on the questions at hand.

Samples are paired by task (from the file name `samples_<task>_<time>.jsonl`) and `doc_id`;
`doc_hash` must agree, so two different test sets are never paired by position.
"""
from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lema_plugin.errors import LemaError
from lema_plugin.grading.official import METRICS, PAPER_METRIC
from lema_plugin.records import RecordError, numbered_jsonl
from lema_plugin.tables import format_table

SAMPLES_FILE = re.compile(r"^samples_(?P<task>.+)_\d{4}-\d{2}-\d{2}T[\d\-.:]+\.jsonl$")
BOOTSTRAP = 10_000
SEED = 0


class CompareError(LemaError, ValueError):
    """The two outputs cannot be compared (no samples, different questions)."""


@dataclass
class Question:
    task: str
    doc_id: int
    question: str
    level: str
    subject: str
    answer_a: str | None = None  # the final answer each model stated (the metric's reading), and the gold
    answer_b: str | None = None
    gold: str | None = None


@dataclass
class Paired:
    label: str  # "all", "Level 3", "algebra", a task name
    n: int
    accuracy_a: float
    accuracy_b: float
    a_only: int  # right in A, wrong in B
    b_only: int
    difference: float  # accuracy A - accuracy B
    low: float  # 95% paired-bootstrap interval of the difference
    high: float
    p_value: float  # McNemar, exact two-sided


@dataclass
class Comparison:
    a: str
    b: str
    metric: str
    overall: Paired
    groups: dict[str, list[Paired]] = field(default_factory=dict)  # "level" / "subject" / "task" -> rows
    a_wins: list[Question] = field(default_factory=list)  # right in A, wrong in B
    b_wins: list[Question] = field(default_factory=list)
    unpaired: int = 0  # samples present in only one of the two
    rounds: int = BOOTSTRAP
    seed: int = SEED


def _task_name(path: Path) -> str:
    match = SAMPLES_FILE.match(path.name)
    return match.group("task") if match else path.stem


def sample_files(source: str | Path) -> list[Path]:
    """A samples file, or every `samples_*.jsonl` under an lm-eval `--output_path` folder."""
    source = Path(source)
    if source.is_file():
        return [source]
    if not source.is_dir():
        raise CompareError(f"{source}: no such file or folder")
    files = sorted(source.rglob("samples_*.jsonl"))
    if not files:
        raise CompareError(f"{source}: no lm-eval samples_*.jsonl files (run lm_eval with --log_samples)")
    latest: dict[str, Path] = {}  # one file per task: the latest run wins (names sort by time)
    for path in files:
        latest[_task_name(path)] = path
    return sorted(latest.values())


def read_samples(source: str | Path, metric: str) -> dict[tuple, tuple[float, dict, str, dict]]:
    """(task, doc_id) -> (score, doc, doc_hash, the logged row) for every logged question. A task
    with several filters logs a row per filter: the first filter's row is the one compared."""
    samples = {}
    for path in sample_files(source):
        task = _task_name(path)
        for lineno, record in numbered_jsonl(path):
            if "doc_id" not in record:
                raise RecordError(path, lineno, "missing (not an lm-eval --log_samples file?)", field="doc_id")
            if metric not in record:
                logged = [k for k in METRICS if k in record]
                hint = f"the task logs {', '.join(logged)} (choose one with --metric)" if logged else "the task logs none of " + ", ".join(METRICS)
                raise RecordError(path, lineno, f"missing; {hint}", field=metric)
            try:
                score = float(record[metric])
            except (TypeError, ValueError):
                raise RecordError(path, lineno, "not a number", field=metric) from None
            key = (task, record["doc_id"])
            samples.setdefault(key, (score, record.get("doc") or {}, str(record.get("doc_hash", "")), record))
    return samples


def _question(key: tuple, doc: dict, row_a: dict | None = None, row_b: dict | None = None, metric: str = "exact_match") -> Question:
    level = doc.get("level")
    level = "" if level in (None, "") else (str(level) if str(level).lower().startswith("level") else f"Level {level}")
    text = doc.get("question") or doc.get("problem") or ""
    question = Question(task=key[0], doc_id=key[1], question=str(text), level=level,
                        subject=str(doc.get("subject") or doc.get("type") or ""))
    if row_a is not None and row_b is not None:
        question.answer_a, question.answer_b, question.gold = _answers(key[0], doc, row_a, row_b, metric)
    return question


def _answers(task: str, doc: dict, row_a: dict, row_b: dict, metric: str) -> tuple:
    """Each model's final answer as the metric reads it (the one grader's), and the gold as written."""
    from lema_plugin.grading import extract_answer, extract_strict, gold_answer

    own = doc.get("dataset")
    dataset = own if own in ("gsm8k", "math", "math500") else ("math" if "math" in task else "gsm8k")
    extract = extract_strict if metric == "strict_match" else extract_answer

    def said(row: dict) -> str | None:
        text = row.get("resps")
        while isinstance(text, list) and text:
            text = text[0]
        return extract(text, dataset) if isinstance(text, str) else None

    gold = row_a.get("target") if row_a.get("target") not in (None, "") else doc.get("answer")
    return said(row_a), said(row_b), gold_answer(gold, dataset)


def paired_stats(a: np.ndarray, b: np.ndarray, label: str, rng: np.random.Generator, rounds: int = BOOTSTRAP) -> Paired:
    """Difference of mean scores with a percentile paired-bootstrap interval and McNemar's p."""
    from scipy.stats import binomtest  # scipy.stats takes seconds to import: only when comparing

    n = len(a)
    right_a, right_b = a >= 0.5, b >= 0.5
    a_only = int(np.sum(right_a & ~right_b))
    b_only = int(np.sum(~right_a & right_b))
    difference = float(a.mean() - b.mean())
    # Resampling n questions with replacement only decides how many times each distinct paired
    # difference (-1, 0, +1 for 0/1 scores) is drawn: a multinomial draw over those values has the
    # same distribution as drawing indices, and costs rounds x (distinct values), not rounds x n.
    values, counts = np.unique(a - b, return_counts=True)
    diffs = rng.multinomial(n, counts / n, size=rounds) @ values / n
    low, high = np.percentile(diffs, [2.5, 97.5])
    p_value = binomtest(a_only, a_only + b_only, 0.5).pvalue if a_only + b_only else 1.0
    return Paired(label, n, float(a.mean()), float(b.mean()), a_only, b_only, difference, float(low), float(high), float(p_value))


def compare(a_source: str | Path, b_source: str | Path, metric: str = PAPER_METRIC, seed: int = SEED,
            rounds: int = BOOTSTRAP) -> Comparison:
    """Pair A's and B's samples by task and doc_id; overall, per task / level / subject, and the flips."""
    if metric not in METRICS:
        raise CompareError(f"metric must be one of {', '.join(METRICS)}, not {metric!r}")
    a, b = read_samples(a_source, metric), read_samples(b_source, metric)
    common = sorted(set(a) & set(b), key=lambda k: (k[0], k[1] if isinstance(k[1], int) else -1, str(k[1])))
    if not common:
        raise CompareError(f"{a_source} and {b_source} share no question (same task and doc_id): "
                           f"tasks {sorted({k[0] for k in a})} vs {sorted({k[0] for k in b})}")
    for key in common:
        if a[key][2] and b[key][2] and a[key][2] != b[key][2]:
            raise CompareError(f"task {key[0]} doc_id {key[1]}: the two outputs hold different questions (doc_hash differs)")
    scores_a = np.array([a[k][0] for k in common])
    scores_b = np.array([b[k][0] for k in common])
    questions = [_question(k, a[k][1], a[k][3], b[k][3], metric) for k in common]
    rng = np.random.default_rng(seed)
    result = Comparison(a=str(a_source), b=str(b_source), metric=metric,
                        overall=paired_stats(scores_a, scores_b, "all", rng, rounds),
                        unpaired=len(set(a) ^ set(b)), rounds=rounds, seed=seed)
    for group in ("task", "level", "subject"):
        members: dict[str, list[int]] = defaultdict(list)
        for i, q in enumerate(questions):
            if getattr(q, group):
                members[getattr(q, group)].append(i)
        if len(members) > 1 or (group != "task" and members):
            result.groups[group] = [paired_stats(scores_a[idx], scores_b[idx], name, rng, rounds)
                                    for name, idx in sorted(members.items())]
    for i, q in enumerate(questions):
        if scores_a[i] >= 0.5 > scores_b[i]:
            result.a_wins.append(q)
        elif scores_b[i] >= 0.5 > scores_a[i]:
            result.b_wins.append(q)
    return result


def _row(p: Paired) -> list:
    return [p.label, p.n, f"{p.accuracy_a:.3f}", f"{p.accuracy_b:.3f}", f"{p.difference:+.3f}",
            f"[{p.low:+.3f}, {p.high:+.3f}]", p.a_only, p.b_only, f"{p.p_value:.3g}"]


HEADERS = ["", "questions", "acc A", "acc B", "A - B", "95% CI (paired bootstrap)", "A only", "B only", "McNemar p (exact)"]


def text(result: Comparison, show: int = 10) -> str:
    """The comparison for a terminal."""
    o = result.overall
    lines = [
        f"A: {result.a}",
        f"B: {result.b}",
        f"metric {result.metric}; {o.n} paired questions" + (f" ({result.unpaired} in only one output, left out)" if result.unpaired else ""),
        f"accuracy A {o.accuracy_a:.3f}, B {o.accuracy_b:.3f}; difference A - B {o.difference:+.3f}, "
        f"95% paired-bootstrap interval [{o.low:+.3f}, {o.high:+.3f}] ({result.rounds:,} resamples, seed {result.seed})",
        f"McNemar exact test: {o.a_only} right only in A, {o.b_only} right only in B, p = {o.p_value:.3g}",
    ]
    for group, rows in result.groups.items():
        lines += ["", f"by {group}:", format_table([group, *HEADERS[1:]], [_row(p) for p in rows])]
    for title, flipped in (("right in A, wrong in B", result.a_wins), ("right in B, wrong in A", result.b_wins)):
        lines += ["", f"{title}: {len(flipped)}"]
        for q in flipped[:show]:
            snippet = " ".join(q.question.split())
            lines.append(f"  {q.task} #{q.doc_id}: {snippet[:100]}{'...' if len(snippet) > 100 else ''}"
                         f"  [A: {q.answer_a}, B: {q.answer_b}, gold: {q.gold}]")
        if len(flipped) > show:
            lines.append(f"  ... and {len(flipped) - show} more")
    return "\n".join(lines)

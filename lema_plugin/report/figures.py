"""The numbers the report shows, computed from the records a run folder holds.

Everything here is plain counting over `RunData`; the plots and the page only lay it out. The
funnel follows one mistake from the generator to the export and says at each step why records
fell out: paths that were right, unfinished, failed or duplicate never become mistakes; replies
that did not arrive, could not be parsed, named a step the path lacks or reached a wrong answer
are not verified; verified corrections left out of every export mix are counted last.
"""
from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field

from lema_plugin import stage as registry
from lema_plugin.text import dedupe_key

from .gather import ORIGINAL, RunData

FUNNEL = ("problems", "paths", "mistakes", "correction replies", "parsed", "verified", "exported")
REASON_LABELS = {
    "correct": "path was right",
    "unextractable": "no final answer",
    "truncated": "cut off at max tokens",
    "failed": "request failed",
    "over_cap": "over the per-question cap",
    "duplicate": "repeats a wrong path of its question",
    "request_failed": "request failed",
    "unparseable": "reply not in the correction format",
    "bad_step": "named a step the path lacks",
    "wrong_answer": "corrected answer wrong",
    "not_exported": "left out of every export mix",
}
CHECK_LABELS = {  # the first-error check's verdicts (first_error.stage)
    "confirmed": "named step confirmed",
    "before_fails": "the steps before it already fail",
    "step_recovers": "the path recovers after the step",
    "incomplete": "continuations missing",
}


@dataclass
class Rate:
    total: int = 0
    hits: int = 0

    @property
    def rate(self) -> float | None:
        return self.hits / self.total if self.total else None


@dataclass
class Figures:
    datasets: list[str]
    stages: list[str]  # funnel columns present: a prefix of FUNNEL, or fewer for one stage's folder
    funnel: dict[tuple[str, str], dict[str, int]]  # (stage, generator) -> step -> count
    dropped: dict[tuple[str, str], Counter]  # (stage, generator) -> reason -> count
    accuracy: dict[str, Rate]  # generator -> correct paths / answered paths
    mistakes_per_question: dict[str, Counter]  # generator -> {mistakes on a question: questions}
    first_step: dict[str, Counter]  # "verified" / "rejected" -> {named step: replies}
    by_level: dict[str, Rate]  # MATH level -> mistakes with a verified correction
    by_subject: dict[str, Rate]
    tokens: dict[str, dict[str, float]]  # stage -> prompt/completion tokens (+ cost), as the client counted them
    stages_funnel: list = field(default_factory=list)  # one `stage.Funnel` per registered stage that wrote here
    stage_sections: list = field(default_factory=list)  # `stage.Section`s the stages that wrote here give of their own
    problems: int = 0  # distinct questions over all generators and stages
    cot: int = 0  # CoT examples
    items: dict = field(default_factory=dict)  # the viewer's data (see `viewer_data`)
    correctors: dict[str, dict[str, int]] = field(default_factory=dict)  # corrector -> replies, parsed, verified, mistakes, corrected
    first_error: dict[str, dict[str, Rate]] = field(default_factory=dict)  # "generator" / "level" / "corrector" -> confirmed / checked
    first_error_reasons: Counter = field(default_factory=Counter)  # verdict -> checked corrections


def _generator(record: dict) -> str:
    return str(record.get("model") or record.get("source_model") or "unknown")


def _level(record: dict) -> str | None:
    level = record.get("level")
    if level in (None, ""):
        return None
    text = str(level)
    return text if text.lower().startswith("level") else f"Level {text}"


def compute(data: RunData) -> Figures:
    funnel: dict[tuple[str, str], dict[str, int]] = defaultdict(lambda: dict.fromkeys(FUNNEL, 0))
    dropped: dict[tuple[str, str], Counter] = defaultdict(Counter)
    problems: dict[tuple[str, str], set] = defaultdict(set)
    accuracy: dict[str, Rate] = defaultdict(Rate)
    per_question: dict[str, Counter] = defaultdict(Counter)
    datasets = Counter()

    seen_texts: set = set()  # (question, text) of the candidate mistakes met so far, as sampling de-duplicates
    for path in data.paths.values():
        key = (path["_stage"], _generator(path))
        funnel[key]["paths"] += 1
        problems[key].add(path.get("problem_id"))
        datasets[path.get("dataset")] += 1
        kind = path.get("kind") or ("correct" if path.get("correct") else "wrong")
        if kind != "failed":
            accuracy[key[1]].total += 1
            accuracy[key[1]].hits += kind == "correct"
        if path["id"] not in data.mistakes:
            dropped[key][_drop_code(path, kind, seen_texts)] += 1
        else:
            seen_texts.add((path.get("problem_id"), dedupe_key(str(path.get("text") or ""))))

    # mistakes: those in mistakes.jsonl, or (a `lema correct` folder alone) the paths the replies name
    mistakes = dict(data.mistakes)
    for reply in data.replies.values():
        path_id = str(reply.get("path_id"))
        if path_id not in mistakes:
            mistakes[path_id] = {**reply, "id": path_id, "model": reply.get("source_model"), "prediction": None}
    for mistake in mistakes.values():
        key = (mistake["_stage"], _generator(mistake))
        funnel[key]["mistakes"] += 1
        problems[key].add(mistake.get("problem_id"))
        per_question[key[1]][mistake.get("problem_id")] += 1
        datasets[mistake.get("dataset")] += 1

    exported = set().union(*data.exported.values()) if data.exported else set()
    verified_paths: set[str] = set()
    first_step: dict[str, Counter] = {"verified": Counter(), "rejected": Counter()}
    for reply in data.replies.values():
        mistake = mistakes[str(reply.get("path_id"))]
        key = (mistake["_stage"], _generator(mistake))
        reason = reply.get("reason")
        if reason == "request_failed":
            dropped[key]["request_failed"] += 1
            continue
        funnel[key]["correction replies"] += 1
        if reason == "unparseable":
            dropped[key]["unparseable"] += 1
            continue
        funnel[key]["parsed"] += 1
        step = reply.get("incorrect_step")
        if isinstance(step, int):
            first_step["verified" if reply.get("correct") else "rejected"][step] += 1
        if not reply.get("correct"):
            dropped[key][reason or "wrong_answer"] += 1
            continue
        funnel[key]["verified"] += 1
        verified_paths.add(str(reply.get("path_id")))
        if reply["id"] in exported:
            funnel[key]["exported"] += 1
        elif data.exported:
            dropped[key]["not_exported"] += 1

    for key, ids in problems.items():
        funnel[key]["problems"] = len(ids - {None})
    correctors = _correctors(data, mistakes)
    first_error, reasons = _first_error(data, mistakes)
    tokens, stages_funnel, stage_sections = _stage_figures(data)

    by_level: dict[str, Rate] = defaultdict(Rate)
    by_subject: dict[str, Rate] = defaultdict(Rate)
    if data.replies:
        for mistake in mistakes.values():
            corrected = mistake["id"] in verified_paths
            for table, value in ((by_level, _level(mistake)), (by_subject, mistake.get("subject"))):
                if value:
                    table[str(value)].total += 1
                    table[str(value)].hits += corrected

    present = [data.paths, mistakes, data.replies, data.replies, data.replies, data.exported]
    stages = ["problems"] + [step for step, have in zip(FUNNEL[1:], present) if have]
    return Figures(
        datasets=sorted(str(d) for d in datasets if d),
        stages=stages,
        funnel=dict(sorted(funnel.items(), key=lambda kv: (kv[0][0] != ORIGINAL, kv[0]))),
        dropped=dict(dropped),
        accuracy=dict(sorted(accuracy.items())),
        mistakes_per_question=dict(sorted(per_question.items())),
        first_step=first_step,
        by_level=dict(sorted(by_level.items())),
        by_subject=dict(sorted(by_subject.items())),
        tokens=tokens,
        stages_funnel=stages_funnel,
        stage_sections=stage_sections,
        items=viewer_data(data, mistakes),
        problems=len(set().union(*problems.values()) - {None}) if problems else 0,
        cot=data.cot,
        correctors=correctors,
        first_error=first_error,
        first_error_reasons=reasons,
    )


def _drop_code(path: dict, kind: str, seen: set) -> str:
    """Why a path is not a mistake: its kind, with a wrong one told apart as a duplicate (the text
    of an earlier wrong path of its question, case and spacing aside) or one over the per-question
    cap."""
    if kind != "wrong":
        return kind
    text = (path.get("problem_id"), dedupe_key(str(path.get("text") or "")))
    if text in seen:
        return "duplicate"
    seen.add(text)
    return "over_cap"


def _correctors(data: RunData, mistakes: dict[str, dict]) -> dict[str, dict[str, int]]:
    """Per corrector: replies that arrived, parsed, verified; the mistakes it was asked about and
    those it corrected (two correction folders with different correctors stay apart)."""
    rows: dict[str, dict] = {}
    for reply in data.replies.values():
        name = str(reply.get("corrector") or "unknown")
        row = rows.setdefault(name, {"replies": 0, "parsed": 0, "verified": 0, "failed": 0, "asked": set(), "fixed": set()})
        row["asked"].add(str(reply.get("path_id")))
        if reply.get("reason") == "request_failed":
            row["failed"] += 1
            continue
        row["replies"] += 1
        row["parsed"] += reply.get("reason") != "unparseable"
        if reply.get("correct"):
            row["verified"] += 1
            row["fixed"].add(str(reply.get("path_id")))
    return {name: {"replies": r["replies"], "parsed": r["parsed"], "verified": r["verified"], "failed": r["failed"],
                   "mistakes": len(r["asked"]), "corrected": len(r["fixed"])} for name, r in sorted(rows.items())}


def _first_error(data: RunData, mistakes: dict[str, dict]) -> tuple[dict[str, dict[str, Rate]], Counter]:
    """Confirmation rates of the first-error checks, by the generator that made the mistake, by
    MATH level and by corrector; and the checks by verdict."""
    groups: dict[str, dict[str, Rate]] = {"generator": defaultdict(Rate), "level": defaultdict(Rate),
                                          "corrector": defaultdict(Rate)}
    reasons: Counter = Counter()
    for check in data.checks.values():
        reasons[str(check.get("reason"))] += 1
        if check.get("confirmed") is None:  # incomplete: not judged yet
            continue
        level = _level(check)
        for group, key in (("generator", check.get("mistake_model")), ("level", level), ("corrector", check.get("corrector"))):
            if key:
                groups[group][str(key)].total += 1
                groups[group][str(key)].hits += bool(check.get("confirmed"))
    return {name: dict(sorted(rates.items())) for name, rates in groups.items() if rates}, reasons


def _stage_figures(data: RunData) -> tuple[dict, list, list]:
    """Per registered stage that wrote here: its tokens and dollars as the client counted them,
    over every run of it (the folder's `usage.jsonl`, the one ledger; never added up from
    records), its funnel row and the section it gives of its own, if any (from its summary file)."""
    order = {stage.name: index for index, stage in enumerate(registry.stages())}

    def rank(key):
        return key[0] != ORIGINAL, order.get(key[1], len(order))

    tokens: dict[str, dict[str, float]] = {}
    for (origin, name), total in sorted(data.usage.items(), key=lambda kv: rank(kv[0])):
        tokens[_stage_label(name, origin)] = {"prompt": total["prompt_tokens"], "completion": total["completion_tokens"]}
        if total.get("cost") is not None:
            tokens[_stage_label(name, origin)]["cost"] = total["cost"]
    rows, sections = [], []
    for (origin, name), summary in sorted(data.stage_summaries.items(), key=lambda kv: rank(kv[0])):
        stage = registry.get(name)
        row = stage.funnel(summary)
        row.stage = _stage_label(name, origin)
        rows.append(row)
        section = stage.section(summary)
        if section is not None:
            section.title = f"{section.title} (evolved)" if origin != ORIGINAL else section.title
            sections.append(section)
    return tokens, rows, sections


def _stage_label(stage: str, origin: str) -> str:
    return stage if origin == ORIGINAL else f"{stage} (evolved)"


def totals(figures: Figures) -> dict[str, int]:
    """The funnel summed over stages and generators; a question asked of several generators counts once."""
    out = dict.fromkeys(FUNNEL, 0)
    for counts in figures.funnel.values():
        for step, value in counts.items():
            out[step] += value
    out["problems"] = figures.problems
    return out


def viewer_data(data: RunData, mistakes: dict[str, dict]) -> dict:
    """Compact tables for the viewer: each question and each wrong path once, then one item per
    corrector reply (and per mistake no reply exists for), pointing into them."""
    questions: dict[str, int] = {}
    question_rows: list[list] = []
    path_index: dict[str, int] = {}
    path_rows: list[list] = []
    items: list[list] = []

    def question(record: dict) -> int:
        key = str(record.get("problem_id") or record.get("question"))
        if key not in questions:
            questions[key] = len(question_rows)
            question_rows.append([str(record.get("question") or ""), str(record.get("answer") or "")])
        return questions[key]

    def path(mistake: dict, reply: dict | None) -> int:
        if mistake["id"] not in path_index:
            steps = mistake.get("steps") or (reply or {}).get("steps") or []
            path_index[mistake["id"]] = len(path_rows)
            path_rows.append([[str(s) for s in steps], _text(mistake.get("prediction"))])
        return path_index[mistake["id"]]

    replied: set[str] = set()
    for reply in data.replies.values():
        mistake = mistakes[str(reply.get("path_id"))]
        replied.add(mistake["id"])
        verdict = "verified" if reply.get("correct") else "rejected"
        check = data.checks.get(str(reply.get("id"))) or {}
        items.append([
            question(mistake), path(mistake, reply), _generator(mistake), _level(mistake) or "", str(mistake.get("subject") or ""),
            verdict, "" if reply.get("correct") else str(reply.get("reason") or ""), mistake["_stage"],
            reply.get("incorrect_step") if isinstance(reply.get("incorrect_step"), int) else None,
            _text(reply.get("explanation")), _text(reply.get("corrected_solution") or ("" if reply.get("explanation") else reply.get("raw"))),
            _text(reply.get("prediction")), str(reply.get("corrector") or ""), _text(reply.get("detail")),
            str(check.get("reason") or ""), _rates(check),
        ])
    for mistake in mistakes.values():
        if mistake["id"] not in replied:
            items.append([question(mistake), path(mistake, None), _generator(mistake), _level(mistake) or "",
                          str(mistake.get("subject") or ""), "not corrected", "", mistake["_stage"],
                          None, "", "", "", "", "", "", ""])
    return {
        "fields": ["q", "p", "generator", "level", "subject", "verdict", "reason", "stage", "step",
                   "explanation", "corrected", "corrected_answer", "corrector", "detail", "check", "check_rates"],
        "questions": question_rows,  # [question, gold answer]
        "paths": path_rows,  # [steps, predicted answer]
        "items": items,
    }


def _rates(check: dict) -> str:
    """"3/4 reached the answer from the steps before the named one, 0/4 from those through it"."""
    before, through = check.get("before") or {}, check.get("including") or {}
    if not before and not through:
        return ""
    return (f"{before.get('correct', 0)}/{before.get('samples', 0)} continuations reached the answer from the steps "
            f"before the named one, {through.get('correct', 0)}/{through.get('samples', 0)} from the steps through it")


def _text(value) -> str:
    return "" if value is None else str(value)

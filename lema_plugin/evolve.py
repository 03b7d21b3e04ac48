"""Correction-centric evolution: grow the question set from the questions that produced corrections.

LeMa's observation is that the questions a model gets wrong, and a strong model can correct, are
the useful ones; so they seed new questions of the same kind. The pipeline, in order:

1. Seeds: the problems behind verified corrections (`corrections.jsonl`). Optionally each seed
   gets more new questions when its level's correction success rate was low (needs
   `rejected.jsonl` to know the failures).
2. Generate: the strong model writes new questions in the style of each seed, taking the styles
   in turn (`similar`: same skill and difficulty; `harder`: one more step or condition), from the
   `evolve_<dataset>` prompt template.
3. Filter before paying for answers: unparseable or truncated replies; near-duplicates of a seed or of an
   earlier new question (normalized text or word n-gram overlap); near-duplicates of a GSM8K or
   MATH *test* question (contamination).
4. Answer each survivor K times with the `solve` prompt; keep it only when a clear majority of
   the K answers agree (the one grader's `answers_match` decides agreement). The majority answer
   becomes the gold answer and one of its rationales the gold solution.
5. Write `problems.jsonl` in the Problem format with provenance (seed id, generation, style,
   agreement), ready for `lema sample --data-file` and `lema correct`.

Generations and answers go to run stores (`evolve_questions.jsonl`, `evolve_answers.jsonl`) as
they arrive, so an interrupted run resumes without asking again. Every dropped question is listed
with its reason in `evolve_dropped.jsonl`.
"""
from __future__ import annotations

import asyncio
import json
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from .cot import finish_rationale
from .errors import ConfigError
from .llm.types import Endpoint, Request
from .problems import Problem, grader_dataset, load_problems, read_problems_file
from .prompts import load_prompt, render
from .records import make_id, read_jsonl
from .store import RunStore, write_atomic, write_jsonl_atomic

STYLES = ("similar", "harder")

# --------------------------------------------------------------------------------------------
# Near-duplicate detection (used for de-duplication and for the contamination check)

_TOKEN = re.compile(r"\w+")


def normalize_question(text: str) -> str:
    """Lower case, words only: two questions equal here are the same question."""
    return " ".join(_TOKEN.findall(text.lower()))


def ngrams(text: str, n: int) -> set[tuple[str, ...]]:
    """Word n-grams of the normalized text (the whole text as one gram when it is shorter)."""
    words = normalize_question(text).split()
    if len(words) < n:
        return {tuple(words)} if words else set()
    return {tuple(words[i:i + n]) for i in range(len(words) - n + 1)}


class NearDuplicateIndex:
    """Finds a stored text that a new text nearly repeats.

    Near-duplicate means: the same normalized text, or a share of shared word n-grams of at least
    `max_overlap`, measured against the smaller of the two n-gram sets (so a question pasted
    inside a longer one still counts). An inverted index keeps lookups fast over a test set.
    """

    def __init__(self, n: int = 6, max_overlap: float = 0.5):
        self.n, self.max_overlap = n, max_overlap
        self._exact: dict[str, str] = {}
        self._grams: dict[tuple[str, ...], list[int]] = defaultdict(list)
        self._keys: list[str] = []
        self._sizes: list[int] = []

    def __len__(self) -> int:
        return len(self._keys)

    def add(self, text: str, key: str) -> None:
        self._exact.setdefault(normalize_question(text), key)
        grams = ngrams(text, self.n)
        slot = len(self._keys)
        self._keys.append(key)
        self._sizes.append(len(grams))
        for gram in grams:
            self._grams[gram].append(slot)

    def find(self, text: str) -> str | None:
        """The key of a stored near-duplicate of `text`, or None."""
        exact = self._exact.get(normalize_question(text))
        if exact is not None:
            return exact
        grams = ngrams(text, self.n)
        if not grams:
            return None
        shared: Counter[int] = Counter()
        for gram in grams:
            shared.update(self._grams.get(gram, ()))
        for slot, count in shared.items():
            if count / min(len(grams), self._sizes[slot]) >= self.max_overlap:
                return self._keys[slot]
        return None


# --------------------------------------------------------------------------------------------
# Seeds


@dataclass
class Seed:
    """A problem whose mistake got a verified correction."""

    problem_id: str
    dataset: str
    question: str
    answer: str
    level: int | None = None
    subject: str | None = None
    generation: int = 0  # 0 for dataset problems; evolved problems carry theirs
    corrections: int = 0


def load_seeds(corrections: str | Path | Iterable[dict]) -> list[Seed]:
    """Seeds from correction records (a path or records), in first-seen order."""
    if isinstance(corrections, (str, Path)):
        corrections = read_jsonl(corrections, required=("problem_id", "question", "answer", "dataset"))
    seeds: dict[str, Seed] = {}
    for record in corrections:
        if record.get("correct") is False:
            continue
        seed = seeds.get(record["problem_id"])
        if seed is None:
            seed = seeds[record["problem_id"]] = Seed(
                problem_id=record["problem_id"],
                dataset=grader_dataset(record["dataset"]),
                question=record["question"],
                answer=str(record["answer"]),
                level=record.get("level"),
                subject=record.get("subject"),
                generation=int(record.get("generation") or 0),
            )
        seed.corrections += 1
    return list(seeds.values())


def level_success(corrections: Iterable[dict], rejected: Iterable[dict]) -> dict:
    """Correction success rate per level: verified / (verified + rejected) attempts."""
    good, bad = Counter(), Counter()
    for record in corrections:
        if record.get("correct") is not False:
            good[record.get("level")] += 1
    for record in rejected:
        bad[record.get("level")] += 1
    return {level: good[level] / (good[level] + bad[level]) for level in set(good) | set(bad)}


def questions_per_seed(seeds: list[Seed], per_seed: int, success: dict | None = None) -> dict[str, int]:
    """How many new questions each seed gets (styles are taken in turn).

    Without success rates every seed gets `per_seed`. With them, a seed's share follows its
    level's failure rate (1 - success, floored at 0.1 so no level is left out), scaled so the
    average over the seeds stays `per_seed`; every seed gets at least one.
    """
    if not success:
        return {s.problem_id: per_seed for s in seeds}
    weights = {s.problem_id: max(1.0 - success.get(s.level, 0.0), 0.1) for s in seeds}
    mean = sum(weights.values()) / len(weights)
    return {pid: max(1, round(per_seed * w / mean)) for pid, w in weights.items()}


# --------------------------------------------------------------------------------------------
# Generated questions and majority answers

_LABEL = re.compile(r"^\s*(?:#+\s*)?\**\s*(?:new\s+)?(?:problem|question)\s*\d*\s*\**\s*[:.]\s*\**\s*", re.IGNORECASE)
_STOP = re.compile(r"^\s*\**\s*(?:answer|solution|final answer|note|explanation)\b\s*\**\s*:", re.IGNORECASE | re.MULTILINE)


def parse_new_question(text: str) -> str | None:
    """The new question in a generator reply: labels and markdown removed, anything after an
    `Answer:`/`Solution:` line dropped. None when nothing usable is left."""
    text = text.strip()
    labelled = list(re.finditer(r"(?im)^.*?\b(?:new\s+)(?:problem|question)\s*\**\s*:", text))
    if labelled:
        text = text[labelled[-1].end():]
    text = _LABEL.sub("", text, count=1)
    stop = _STOP.search(text)
    if stop:
        text = text[: stop.start()]
    text = text.strip().strip('"').strip("*").strip()
    return text if len(normalize_question(text).split()) >= 3 else None


def majority(predictions: list[str | None], dataset: str, answers_match) -> tuple[str | None, int, bool]:
    """Group predictions by equivalence; return (answer, votes, clear).

    `answer` is the most frequent spelling inside the largest group; `clear` is False when two
    groups tie for first place. Unextractable answers (None) vote for nothing.
    """
    groups: list[list[str]] = []
    for prediction in predictions:
        if prediction is None:
            continue
        for group in groups:
            if answers_match(prediction, group[0], dataset):
                group.append(prediction)
                break
        else:
            groups.append([prediction])
    if not groups:
        return None, 0, False
    groups.sort(key=len, reverse=True)
    clear = len(groups) == 1 or len(groups[0]) > len(groups[1])
    answer = Counter(groups[0]).most_common(1)[0][0]
    return answer, len(groups[0]), clear


@dataclass
class EvolveSummary:
    """Counts for the end-of-run summary."""

    seeds: int = 0
    test_questions: int | None = None  # size of the contamination check (None: not checked)
    asked: int = 0  # generation requests this run (not cached in the store)
    generated: int = 0  # generation replies stored (this run and earlier)
    failed: int = 0  # requests that failed this run (retried next run)
    unparseable: int = 0
    truncated: int = 0  # the question hit the token limit: cut off mid-sentence
    duplicates: int = 0
    contaminated: int = 0
    answered: int = 0  # candidates with all K answers
    unanswered: int = 0  # candidates still missing answers (failed requests)
    no_majority: int = 0
    kept: int = 0
    kept_by_style: Counter = field(default_factory=Counter)
    agreement: Counter = field(default_factory=Counter)  # votes -> kept questions
    usage: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {k: dict(v) if isinstance(v, Counter) else v for k, v in vars(self).items()}

    def lines(self) -> list[str]:
        agreement = ", ".join(f"{votes} votes: {n}" for votes, n in sorted(self.agreement.items(), reverse=True))
        styles = ", ".join(f"{style}: {n}" for style, n in sorted(self.kept_by_style.items()))
        checked = ("contamination check: off" if self.test_questions is None
                   else f"contamination check against {self.test_questions} test questions")
        return [
            f"seeds: {self.seeds}; {checked}",
            f"new questions generated: {self.generated} (requested this run: {self.asked}, failed: {self.failed})",
            f"dropped: unparseable {self.unparseable}, truncated {self.truncated}, duplicates {self.duplicates}, "
            f"contaminated (test-set near-duplicates) {self.contaminated}, no clear majority {self.no_majority}",
            f"answered: {self.answered} (still missing answers: {self.unanswered})",
            f"kept: {self.kept}" + (f" ({styles})" if styles else ""),
            f"agreement of kept questions: {agreement or 'n/a'}",
        ] + self.usage


@dataclass
class EvolveConfig:
    """Knobs of the evolution stage (CLI options map one to one)."""

    per_seed: int = 2  # new questions asked per seed, styles taken in turn (before level weighting)
    styles: tuple[str, ...] = STYLES
    answers: int = 5  # K answers per new question
    min_agreement: float = 0.6  # share of the K answers the majority needs
    generate_temperature: float = 1.0
    answer_temperature: float = 0.7
    generate_max_tokens: int = 512
    answer_max_tokens: int = 1024
    ngram: int = 6
    max_overlap: float = 0.5

    def __post_init__(self):
        unknown = set(self.styles) - set(STYLES)
        if unknown or not self.styles:
            raise ConfigError(f"styles must be some of {', '.join(STYLES)}, not {', '.join(self.styles) or 'none'}")
        if self.per_seed < 1 or self.answers < 1:
            raise ConfigError("per_seed and answers must be at least 1")
        if not 0 < self.min_agreement <= 1 or not 0 < self.max_overlap <= 1:
            raise ConfigError("min_agreement and max_overlap must be in (0, 1]")


def load_test_questions(datasets: Iterable[str], files: Iterable[str | Path] = ()) -> list[tuple[str, str]]:
    """(key, question) pairs of the GSM8K / MATH test sets the seeds' datasets need, plus `files`.

    The test splits load like any split (`$LEMA_DATA_DIR` or the hub, see `load_problems`).
    """
    pairs = []
    for dataset in sorted(set(datasets)):
        pairs += [(f"{dataset}-test:{p.id}", p.question) for p in load_problems(dataset, split="test")]
    for path in files:
        pairs += [(f"{Path(path).name}:{p.id}", p.question) for p in read_problems_file(path)]
    return pairs


def generation_request(seed: Seed, style: str, endpoint: Endpoint, config: "EvolveConfig", index: int) -> Request:
    """Ask for one new question in `style` after `seed` (a base model stops before an answer)."""
    prompt = render(f"evolve_{seed.dataset}", question=seed.question, task=load_prompt(f"evolve_{style}").strip())
    common = dict(temperature=config.generate_temperature, max_tokens=config.generate_max_tokens, sample_index=index)
    if endpoint.mode == "completion":
        return Request(prompt=prompt, stop=("\nAnswer:", "\nSolution:", "\nProblem:"), **common)
    return Request(messages=(("user", prompt.rstrip()),), **common)


class _Evolution:
    """One run of the stage: the model, the settings, the two run stores and the counts."""

    def __init__(self, endpoint: Endpoint, config: EvolveConfig, client, questions: RunStore, answers: RunStore,
                 summary: EvolveSummary):
        self.endpoint, self.config, self.client = endpoint, config, client
        self.questions, self.answers, self.summary = questions, answers, summary

    def plan(self, seeds: list[Seed], counts: dict[str, int]) -> list[tuple[str, Seed, str, int]]:
        """(question id, seed, style, index) for every new question wanted, in a fixed order."""
        plan = []
        for seed in seeds:
            for index in range(counts[seed.problem_id]):
                style = self.config.styles[index % len(self.config.styles)]  # similar, harder, similar, ...
                qid = make_id("evolve-question", seed.problem_id, style, index, self.endpoint.model,
                              self.config.generate_temperature, self.config.generate_max_tokens)
                plan.append((qid, seed, style, index))
        return plan

    async def _run(self, jobs: list, owners: list, what: str, store) -> None:
        """Send the jobs; hand each good completion to `store`. Failures are counted, not stored,
        so the next run asks again."""
        if not jobs:
            return
        async for position, completion in self.client.stream(jobs, desc=f"evolve: {what} ({self.endpoint.label})"):
            if completion.ok:
                store(owners[position], completion)
            else:
                self.summary.failed += 1

    async def generate(self, plan) -> None:
        todo = [item for item in plan if item[0] not in self.questions]
        self.summary.asked = len(todo)
        jobs = [(self.endpoint, generation_request(seed, style, self.endpoint, self.config, index))
                for _, seed, style, index in todo]

        def store(item, completion):
            qid, seed, style, index = item
            self.questions.append({
                "id": qid, "seed_id": seed.problem_id, "style": style, "sample_index": index,
                "generation": seed.generation + 1, "model": self.endpoint.label, "raw": completion.text,
                "question": parse_new_question(completion.text), "finish_reason": completion.finish_reason,
            })

        await self._run(jobs, todo, "new questions", store)

    def filter(self, plan, seeds: list[Seed], contamination: NearDuplicateIndex | None, dropped: list):
        """Drop unparseable or truncated replies, near-duplicates (of a seed or an earlier new question) and
        test-set near-duplicates, in plan order so the result does not depend on reply order."""
        seen = NearDuplicateIndex(self.config.ngram, self.config.max_overlap)
        for seed in seeds:
            seen.add(seed.question, f"seed:{seed.problem_id}")
        candidates = []
        for qid, seed, _, _ in plan:
            record = self.questions.get(qid)
            if record is None:
                continue
            self.summary.generated += 1
            question, reason, detail = record["question"], None, None
            if question is None:
                reason = "unparseable"
                self.summary.unparseable += 1
            elif record["finish_reason"] == "length":
                reason = "truncated"
                self.summary.truncated += 1
            elif (detail := seen.find(question)) is not None:
                reason = "duplicate"
                self.summary.duplicates += 1
            elif contamination is not None and (detail := contamination.find(question)) is not None:
                reason = "contaminated"
                self.summary.contaminated += 1
            if reason:
                dropped.append({**record, "reason": reason, "detail": detail})
                continue
            seen.add(question, qid)
            candidates.append((record, seed))
        return candidates

    def answer_id(self, question_id: str, index: int) -> str:
        return make_id("evolve-answer", question_id, self.endpoint.model, self.config.answer_temperature,
                       self.config.answer_max_tokens, index)

    async def answer(self, candidates) -> None:
        """K answers per surviving question with the `solve` prompt (what `lema sample` asks)."""
        from .grading import extract_answer
        from .sample import solve_request

        jobs, owners = [], []
        for record, seed in candidates:
            new = Problem(record["id"], seed.dataset, record["question"], answer="", solution="")
            for index in range(self.config.answers):
                aid = self.answer_id(record["id"], index)
                if aid not in self.answers:
                    jobs.append((self.endpoint, solve_request(new, self.endpoint, index,
                                                              temperature=self.config.answer_temperature,
                                                              max_tokens=self.config.answer_max_tokens)))
                    owners.append((aid, record, seed, index))

        def store(owner, completion):
            aid, record, seed, index = owner
            truncated = completion.finish_reason == "length"
            self.answers.append({
                "id": aid, "question_id": record["id"], "sample_index": index, "model": self.endpoint.label,
                "text": completion.text, "finish_reason": completion.finish_reason,
                "prediction": None if truncated else extract_answer(completion.text, seed.dataset),
            })

        await self._run(jobs, owners, "answers", store)

    def vote(self, candidates, dropped: list) -> list[Problem]:
        """Keep the questions whose answers agree clearly; the majority answer becomes the gold."""
        from .grading import answers_match

        config, summary, problems = self.config, self.summary, []
        for record, seed in candidates:
            got = [self.answers.get(self.answer_id(record["id"], i)) for i in range(config.answers)]
            if any(a is None for a in got):
                summary.unanswered += 1
                continue
            summary.answered += 1
            predictions = [a["prediction"] for a in got]
            answer, votes, clear = majority(predictions, seed.dataset, answers_match)
            agreement = votes / config.answers
            if answer is None or not clear or agreement < config.min_agreement:
                summary.no_majority += 1
                dropped.append({**record, "reason": "no_majority", "detail": f"{votes}/{config.answers} agree",
                                "predictions": predictions})
                continue
            rationale = next(a["text"] for a in got
                             if a["prediction"] is not None and answers_match(a["prediction"], answer, seed.dataset))
            problems.append(Problem(
                id=make_id(seed.dataset, record["question"]),  # the id `load_problems` would give it
                dataset=seed.dataset,
                question=record["question"],
                answer=answer,
                solution=finish_rationale(rationale, answer),
                level=seed.level,  # inherited from the seed
                subject=seed.subject,
                extra={
                    "seed_id": seed.problem_id,
                    "generation": record["generation"],
                    "style": record["style"],
                    "agreement": round(agreement, 4),
                    "votes": votes,
                    "answers": config.answers,
                    "evolved_by": self.endpoint.label,
                },
            ))
            summary.kept_by_style[record["style"]] += 1
            summary.agreement[votes] += 1
        summary.kept = len(problems)
        return problems


async def evolve_async(
    seeds: list[Seed],
    endpoint: Endpoint,
    out_dir: str | Path,
    config: EvolveConfig | None = None,
    *,
    level_success_rates: dict | None = None,
    contamination_questions: list[tuple[str, str]] | None = None,
    client=None,
) -> tuple[list[Problem], EvolveSummary]:
    """Run the evolution stage and write `problems.jsonl` and `evolve_dropped.jsonl` in `out_dir`.

    `contamination_questions` are (key, question) pairs to check against; pass None to skip the
    check (the CLI loads the GSM8K / MATH test sets by default, see `load_test_questions`).
    `level_success_rates` (see `level_success`) turns on the weighting toward weak levels.
    """
    from .llm import LLMClient

    config = config or EvolveConfig()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    client = client or LLMClient(cache_dir=out_dir / ".cache")
    summary = EvolveSummary(seeds=len(seeds))
    counts = questions_per_seed(seeds, config.per_seed, level_success_rates)
    contamination = None
    if contamination_questions is not None:
        contamination = NearDuplicateIndex(config.ngram, config.max_overlap)
        for key, question in contamination_questions:
            contamination.add(question, key)
        summary.test_questions = len(contamination)
    dropped: list[dict] = []
    with RunStore(out_dir / "evolve_questions.jsonl") as questions, RunStore(out_dir / "evolve_answers.jsonl") as answers:
        run = _Evolution(endpoint, config, client, questions, answers, summary)
        plan = run.plan(seeds, counts)
        await run.generate(plan)
        candidates = run.filter(plan, seeds, contamination, dropped)
        await run.answer(candidates)
        problems = run.vote(candidates, dropped)
    write_jsonl_atomic(out_dir / "problems.jsonl", [p.to_dict() for p in problems])
    write_jsonl_atomic(out_dir / "evolve_dropped.jsonl", dropped)
    summary.usage = list(client.usage_lines())
    write_atomic(out_dir / "evolve_summary.json", json.dumps(summary.to_dict(), indent=2) + "\n")
    return problems, summary


@dataclass
class EvolveInputs:
    """What the stage reads before asking anything: seeds, level weights, the test questions."""

    seeds: list[Seed]
    level_success_rates: dict | None = None
    contamination_questions: list[tuple[str, str]] | None = None


def read_inputs(
    corrections_path: str | Path,
    *,
    weight_by_level: bool = False,
    rejected_path: str | Path | None = None,
    contamination_check: bool = True,
    test_files: Iterable[str | Path] = (),
) -> EvolveInputs:
    """Read `lema correct`'s files (and the test splits) up front, so bad input fails before any
    model is started or paid.

    Seeds come from `corrections_path`; with `weight_by_level`, success rates per level from it
    and `rejected_path` (default: rejected.jsonl next to it). The contamination check loads the
    test splits of the seeds' datasets (and `test_files`). Problems are ValueError/RecordError.
    """
    corrections_path = Path(corrections_path)
    corrections = list(read_jsonl(corrections_path, required=("problem_id", "question", "answer", "dataset")))
    seeds = load_seeds(corrections)
    if not seeds:
        raise ConfigError(f"{corrections_path}: no verified corrections, so no seeds")
    inputs = EvolveInputs(seeds)
    if weight_by_level:
        rejected_path = Path(rejected_path or corrections_path.with_name("rejected.jsonl"))
        if not rejected_path.exists():
            raise ConfigError(f"weighting by level needs rejected.jsonl: {rejected_path} not found")
        inputs.level_success_rates = level_success(corrections, read_jsonl(rejected_path))
    if contamination_check:
        try:
            inputs.contamination_questions = load_test_questions({s.dataset for s in seeds}, test_files)
        except Exception as exc:  # offline without $LEMA_DATA_DIR, or a bad file
            raise ConfigError(
                f"could not load the test splits for the contamination check ({exc}); set LEMA_DATA_DIR "
                "to a folder with <dataset>/test*.jsonl, or turn the check off"
            ) from None
    return inputs


async def evolve_from_files(corrections_path: str | Path, endpoint: Endpoint, out_dir: str | Path,
                            config: EvolveConfig | None = None, *, client=None, **reading) -> tuple[list[Problem], EvolveSummary]:
    """`read_inputs` then `evolve_async`: the whole stage from `lema correct`'s output folder."""
    inputs = read_inputs(corrections_path, **reading)
    return await evolve_async(inputs.seeds, endpoint, out_dir, config, level_success_rates=inputs.level_success_rates,
                              contamination_questions=inputs.contamination_questions, client=client)


def evolve(seeds: list[Seed], endpoint: Endpoint, out_dir: str | Path, config: EvolveConfig | None = None, *,
           client=None, **options) -> tuple[list[Problem], EvolveSummary]:
    """`evolve_async` for callers without an event loop (the client's connections are closed after)."""
    from .llm import LLMClient

    client = client or LLMClient(cache_dir=Path(out_dir) / ".cache")

    async def run():
        try:
            return await evolve_async(seeds, endpoint, out_dir, config, client=client, **options)
        finally:
            await client.aclose()

    return asyncio.run(run())

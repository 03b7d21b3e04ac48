"""What the LeMa task YAMLs cannot say: where the data comes from, the prompts, and the scoring.

Every piece is borrowed from `lema_plugin`, so an evaluation sees exactly what the pipeline sees:
records are normalized by `lema_plugin.problems`, prompts come from `lema_plugin.prompts` (the
LeMa `solve` prompt, and `fix_mistake` for the correction task), few-shot targets are the CoT
targets of `lema_plugin.cot`, and answers are judged by `lema_plugin.grading`, the one grader
that `lema grade` and every stage use.

Data: the same as every other lema command reads: local JSONL/Parquet files under
`$LEMA_DATA_DIR` when it is set (laid out as `DIR/gsm8k/{train,test}.jsonl`, `DIR/math/test*.jsonl`
and `DIR/math500/test*.jsonl`, the same field names as the hub copies), else the hub.
`--metadata '{"data_dir": "DIR"}'` names another folder for one run. The correction task reads
the mistakes file of `lema sample`, named by `$LEMA_MISTAKES_FILE` or `--metadata
'{"mistakes_file": "PATH"}'`.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path

from lema_plugin.grading import answers_match, extract_strict, is_correct
from lema_plugin.grading.official import official_match
from lema_plugin.grading.subproblems import asked_section
from lema_plugin.problems import MATH_SUBJECTS, Problem, grader_dataset, local_split_file, normalize, read_problems_file
from lema_plugin.prompts import render
from lema_plugin.records import RecordError

log = logging.getLogger(__name__)

# Hub copies: (path, config). MATH's config is the subject.
HUB = {
    "gsm8k": ("openai/gsm8k", "main"),
    "math": ("EleutherAI/hendrycks_math", None),
    "math500": ("HuggingFaceH4/MATH-500", None),
}
DOC_FIELDS = ("id", "dataset", "question", "answer", "solution", "level", "subject")


# --------------------------------------------------------------------------- data


def load_docs(dataset: str, subject: str | None = None, data_dir: str | None = None, split: str = "test", **_metadata):
    """`custom_dataset` hook: a `test` and a `train` split of one dataset as normalized Problem dicts.

    lm-eval calls it with the task's `dataset_kwargs` (`dataset`, `subject`) and its metadata,
    which includes whatever `--metadata` JSON the user passed (`data_dir`). Docs carry `level`
    and `subject`, so logged samples can be broken down by them. MATH without a subject is all
    seven subjects.

    Every task draws few-shot exemplars from `train` (`fewshot_split: train`), never from the
    test questions: GSM8K's training set, MATH's training problems (MATH-500 too, whose
    questions come from MATH's test set). Where no training file is at hand (a local MATH test
    sample alone), `train` holds the four MATH training exemplars of the 4-shot tasks.

    `split` is the split the task scores (`train` for the mistake-collection tasks): it must exist.
    Without `data_dir`, `$LEMA_DATA_DIR` is read, as every lema command reads it.
    """
    import datasets

    data_dir = data_dir or os.environ.get("LEMA_DATA_DIR") or None
    if data_dir:
        splits = _local_splits(Path(data_dir), dataset, split)
        if subject:  # one local MATH file holds every subject; the hub has one config each
            splits = {name: [p for p in problems if p.subject == subject] for name, problems in splits.items()}
    else:
        splits = _hub_splits(dataset, subject)
    if not splits.get("train") and grader_dataset(dataset) == "math":
        splits["train"] = [normalize(record, "math") for record in MATH_TRAIN_EXEMPLARS]
    splits.setdefault("train", [])
    return datasets.DatasetDict(
        {name: datasets.Dataset.from_list([_doc(p) for p in problems]) for name, problems in splits.items()}
    )


def _hub_splits(dataset: str, subject: str | None) -> dict[str, list[Problem]]:
    """The hub copies; MATH-500 (a test set) takes its exemplar split from MATH's training set."""
    import datasets

    path, config = HUB[dataset]
    if dataset == "math":
        sources = [(path, name) for name in ([subject] if subject else MATH_SUBJECTS)]
    else:
        sources = [(path, config)]
    if dataset == "math500":
        sources += [(HUB["math"][0], name) for name in MATH_SUBJECTS]
    kind = grader_dataset(dataset)
    splits: dict[str, list[Problem]] = {}
    for source, name in sources:
        raw = datasets.load_dataset(source, name)
        for split, rows in raw.items():
            if dataset == "math500" and source != path and split != "train":
                continue  # only MATH's training problems join MATH-500
            where = f"hub:{source}/{split}"
            splits.setdefault(split, []).extend(normalize(row, kind, (where, i + 1)) for i, row in enumerate(rows))
    return splits


def _local_splits(data_dir: Path, dataset: str, scored: str) -> dict[str, list[Problem]]:
    folder = data_dir / dataset
    if not folder.is_dir():
        # Checked here rather than left to local_split_file, which lets a MATH sample stand in for
        # MATH-500: a score must never be reported on a different set than the task names.
        raise RecordError(folder, None, f"no local {dataset} folder (expected {folder}/test*.jsonl)")
    splits = {}
    # MATH-500's exemplars are MATH training problems; its own folder has no train split.
    sources = {"test": dataset, "train": "math" if dataset == "math500" else dataset}
    for split, source in sources.items():
        try:
            path = local_split_file(data_dir, source, split)
        except RecordError:
            if split == scored:
                raise
            continue  # an exemplar split only: GSM8K's is needed for few-shot runs, MATH's falls back
        log.info("lema: %s %s split from %s", dataset, split, path)
        splits[split] = read_problems_file(path, source)
    return splits


def _doc(problem: Problem) -> dict:
    record = problem.to_dict()
    return {name: record.get(name) for name in DOC_FIELDS}


def load_mistakes(mistakes_file: str | None = None, **_metadata):
    """`custom_dataset` hook of the correction task: one doc per wrong path in a mistakes file.

    The path comes from `--metadata '{"mistakes_file": ...}'`, else `$LEMA_MISTAKES_FILE`. The
    file is read exactly as `lema correct` reads it (a `paths.jsonl` works too: only its wrong
    paths are kept).
    """
    import datasets

    from lema_plugin.correct.stage import load_mistakes as read_mistakes

    path = mistakes_file or os.environ.get("LEMA_MISTAKES_FILE")
    if not path:
        raise ValueError(
            "lema_gsm8k_correction needs a mistakes file (mistakes.jsonl from `lema sample`): "
            "set LEMA_MISTAKES_FILE=PATH or pass --metadata '{\"mistakes_file\": \"PATH\"}'"
        )
    if not Path(path).is_file():
        raise RecordError(path, None, "mistakes file not found")
    mistakes = read_mistakes(path)
    if not mistakes:
        raise RecordError(path, None, "no wrong paths in the file")
    docs = [
        {
            "id": record["id"],
            "problem_id": record.get("problem_id"),
            "dataset": record["dataset"],
            "question": record["question"],
            "answer": str(record["answer"]),
            "steps": record["steps"],
            "source_model": record.get("model"),
            "level": record.get("level"),
            "subject": record.get("subject"),
        }
        for record in mistakes
    ]
    # An empty train split: the task is zero-shot, and no other mistake may serve as an exemplar.
    return datasets.DatasetDict({"test": datasets.Dataset.from_list(docs), "train": datasets.Dataset.from_list([])})


# --------------------------------------------------------------------------- prompts


def solve_prompt(doc: dict) -> str:
    """The LeMa zero-shot prompt; few-shot exemplars use it too, so every question reads alike."""
    return render("solve", question=doc["question"])


def wizardmath_prompt(doc: dict) -> str:
    """WizardMath's own Alpaca-style prompt, which the official LeMa evaluation uses for the
    WizardMath rows (`gsm8k_test_wizardmath_prompt.jsonl`)."""
    return render("wizardmath_solve", question=doc["question"])


def correction_prompt(doc: dict) -> str:
    """The same input a correction training example has: the question and the wrong steps."""
    from lema_plugin.steps import render_steps

    return render("fix_mistake", question=doc["question"], steps=render_steps(doc["steps"]))


def cot_target(doc: dict) -> str:
    """An exemplar's answer: its gold rationale in the CoT training style ("The answer is X.")."""
    from lema_plugin.cot import gold_rationale

    return gold_rationale(Problem.from_dict(dict(doc)))


def math_exemplars() -> list[dict]:
    """The four MATH exemplars (from the MATH training split) as docs."""
    return [_doc(normalize(record, "math")) for record in MATH_TRAIN_EXEMPLARS]


# --------------------------------------------------------------------------- scoring


def process_results(doc: dict, results: list[str]) -> dict[str, float]:
    """The three metrics of one completion.

    official_match: the official LeMa evaluation's reading and comparison
    (`lema_plugin.grading.official`): the score to compare with the paper.
    strict_match: the project's robust grader, crediting only an answer given as asked ("The answer
    is X" or a final \\boxed{}), with equivalence (`\\frac{2}{4}` counts for `\\frac12`).
    exact_match: the grader's flexible extraction and equivalence (what `lema grade` reports), so
    format failures show apart from reasoning failures.
    """
    return _scores(results[0], str(doc["answer"]), doc["dataset"], doc.get("question"), doc.get("solution"))


def process_correction(doc: dict, results: list[str]) -> dict[str, float]:
    """Score a correction on its corrected solution's final answer.

    The reply is read by the parser `lema correct` uses. exact_match grades the corrected
    solution (the whole reply when it has no readable correction shape); strict_match also asks
    for a well-formed correction that names a step of the path, as the training filter does.
    """
    from lema_plugin.correct.parse import UnparseableReply, parse_correction

    text, gold, dataset = results[0], str(doc["answer"]), doc["dataset"]
    try:
        parsed = parse_correction(text)
    except UnparseableReply:
        return {"official_match": 0.0, "strict_match": 0.0,
                "exact_match": _scores(text, gold, dataset, doc.get("question"))["exact_match"]}
    scores = _scores(parsed.corrected_solution, gold, dataset, doc.get("question"))
    if not 1 <= parsed.incorrect_step <= len(doc["steps"]):
        scores["strict_match"] = scores["official_match"] = 0.0
    return scores


def _scores(text: str, gold: str, dataset: str, question: str | None = None, solution: str | None = None) -> dict[str, float]:
    """The official scoring and the grader's rules (it maps the dataset name to its rules); no
    LLM judge is ever asked here, so an lm-eval score is reproducible offline and costs nothing.
    The question tells the grader which sub-problem a reply that solves several must be graded on."""
    strict = extract_strict(asked_section(text, question) or text, dataset) if question else None
    strict = strict if strict is not None else extract_strict(text, dataset)
    return {
        "official_match": float(official_match(text, gold, dataset, solution)),
        "strict_match": float(strict is not None and answers_match(strict, gold, dataset)),
        "exact_match": float(is_correct(text, gold, dataset, question)),
    }


# --------------------------------------------------------------------------- exemplar data

# Four problems of the public MATH training split (Hendrycks et al., MIT license), one each from
# algebra, counting & probability, number theory and prealgebra, with their gold solutions. They
# are written here because the 4-shot tasks must also run where only test files are at hand.
MATH_TRAIN_EXEMPLARS = [
    {
        "problem": (
            "Let \\[f(x) = \\left\\{\n\\begin{array}{cl} ax+3, &\\text{ if }x>2, \\\\\n"
            "x-5 &\\text{ if } -2 \\le x \\le 2, \\\\\n2x-b &\\text{ if } x <-2.\n\\end{array}\n"
            "\\right.\\]Find $a+b$ if the piecewise function is continuous (which means that its "
            "graph can be drawn without lifting your pencil from the paper)."
        ),
        "level": "Level 5",
        "type": "Algebra",
        "solution": (
            "For the piecewise function to be continuous, the cases must \"meet\" at $2$ and $-2$. "
            "For example, $ax+3$ and $x-5$ must be equal when $x=2$. This implies $a(2)+3=2-5$, "
            "which we solve to get $2a=-6 \\Rightarrow a=-3$. Similarly, $x-5$ and $2x-b$ must be "
            "equal when $x=-2$. Substituting, we get $-2-5=2(-2)-b$, which implies $b=3$. So "
            "$a+b=-3+3=\\boxed{0}$."
        ),
    },
    {
        "problem": "What is the value of $9^3 + 3(9^2) + 3(9) + 1$?",
        "level": "Level 1",
        "type": "Counting & Probability",
        "solution": (
            "The given expression is the expansion of $(9+1)^3$.  In general, the cube of $(x+y)^3$ "
            "is \\[(x+y)^3=1x^3+3x^2y+3xy^2+1y^3.\\]   The first and last terms in the given "
            "expression are cubes and the middle two terms both have coefficient 3, giving us a "
            "clue that this is a cube of a binomial and can be written in the form \\[(x+y)^3\\]"
            "In this case, $x=9$ and $y=1$, so our answer is\\[(9+1)^3\\ = 10^3 = \\boxed{1000}\\]"
        ),
    },
    {
        "problem": "What is the largest number, all of whose digits are 3 or 2, and whose digits add up to $11$?",
        "level": "Level 4",
        "type": "Number Theory",
        "solution": (
            "To make a number as large as possible, we want as many digits as possible, so we want "
            "the digits to be as small as possible. To have the most number of digits, we use 4 "
            "twos and 1 three to make $4 \\cdot 2 +3 =11$. We want to arrange them in decreasing "
            "order because we want the digits to the left to be as large as possible. Therefore, "
            "we have the number $\\boxed{32222}$."
        ),
    },
    {
        "problem": (
            "Megan has lost Fatima's phone number. Megan knows that the first three digits are "
            "either 296 or 299. The remaining four digits are 0, 1, 6 and 7, but she isn't sure of "
            "the order of these digits. If Megan randomly dials a seven-digit number that meets "
            "these conditions, what is the probability that she dials Fatima's correct number? "
            "Express your answer as a common fraction."
        ),
        "level": "Level 4",
        "type": "Prealgebra",
        "solution": (
            "There are 2 different ways in which Megan can type the first three numbers. There are "
            "$4! = 24$ different orderings of the digits 0, 1, 6 and 7 for the last four digits. "
            "So, there are $2 \\cdot 24 = 48$ different numbers she can dial. Since exactly one "
            "number will be Fatima's, there is a $\\boxed{\\frac{1}{48}}$ probability of Megan "
            "guessing it right."
        ),
    },
]

"""The import stage: solution texts a user already has, graded and kept like sampled paths.

No model is asked (the judge aside, for what the rules cannot decide): the stage reads the
files (`read`), matches each text to its problem, grades it with the one grader and stores it
as a path record, then finalizes the folder exactly as `lema sample` does.
"""
from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from ..fields import GOLD_FIELDS, TEXT_FIELDS
from ..grading.judge import JudgeItem
from ..llm.types import Ask
from ..sample.paths import MISTAKES_FILE, PATH_FIELDS, PATHS_FILE
from ..problems import ProblemSource
from ..settings import MAX_COUNT, Dataset, JudgeSettings, same_as
from ..stage import Input, Stage

FORMATS = ("auto", "lm-eval", "jsonl", "gsm8k-solutions")
SUMMARY = "import_summary.json"


class ImportSettings(JudgeSettings):
    """How to read the files: format, fields (dotted names reach nested ones), where gold answers
    come from when a line has none, and which wrong paths become mistakes."""

    format: Literal["auto", "lm-eval", "jsonl", "gsm8k-solutions"] = Field(
        "auto", description="Input format; auto looks at the first line.")
    # where known problems come from: the fields every command reads problems with (`ProblemSource`)
    dataset: Dataset | None = same_as(
        ProblemSource, "dataset", default=None, description="Grading rules, and where known problems come from.",
        json_schema_extra={"default_text": "each line's own `dataset` (lema records and lema lm-eval tasks have one), else gsm8k"})
    split: str = same_as(ProblemSource, "split",
                         description="Split of the known problems that lines without a gold answer are matched against.")
    data_file: str | None = same_as(ProblemSource, "data_file", description="Known problems from this file.")
    gold_field: str | None = Field(None, description="Field holding the gold answer (dotted for nested fields); a line "
                                   "with none is matched against the known problems.",
                                   json_schema_extra={"default_text": "lm-eval's target, else the first of " + ", ".join(GOLD_FIELDS)})
    question_field: str | None = Field(None, description="Field holding the question.",
                                       json_schema_extra={"default_text": "question, else problem"})
    text_field: str | None = Field(None, description="jsonl format: field holding the solution text (or a list of texts).",
                                   json_schema_extra={"default_text": "the first of " + ", ".join(TEXT_FIELDS)})
    model_field: str | None = Field(None, description="jsonl format: field holding the model name of each line.",
                                    json_schema_extra={"default_text": "model, else corrector, else source_model"})
    model_name: str | None = Field(None, description="Label for the paths' `model` field. gsm8k-solutions: import only "
                                   "this model's solutions.", json_schema_extra={
                                       "default_text": "--model-field, else lm-eval: the file's folder, jsonl: the file name"})
    max_mistakes_per_question: int | None = Field(None, ge=0, le=MAX_COUNT, description="Keep at most N distinct mistakes per question.",
                                                  json_schema_extra={"default_text": "all"})
    keep_unfinished: bool = Field(False, description="Also keep paths with no extractable answer as mistakes.")


ImportOptions = ImportSettings  # the name library callers used before the stage had settings


def _load(files, limit=None, options=None) -> list[Path]:
    return [Path(f) for f in files]


class ImportStage(Stage):
    name = "import"
    help = """Grade solutions from FILES and keep the wrong ones as mistakes.

    Reads lm-eval --log_samples files (the ones `lema run` writes too), GSM8K model-solution
    files, any record file lema-plugin writes, or any JSONL, and writes OUT/paths.jsonl,
    OUT/mistakes.jsonl (exactly like `lema sample`) and OUT/import_summary.json. Questions from
    the test split get a warning: their mistakes would leak the test set into training."""
    examples = """\
  lema import results/my-model/samples_lema_gsm8k_*.jsonl --out runs/mistakes
  lema import example_model_solutions.jsonl --out runs/gsm8k-solutions
  lema import outputs.jsonl --question-field prompt --text-field output --gold-field gold --out runs/mine"""
    settings = ImportSettings
    input = Input("files", positional=True, load=_load, limit_help=None)
    outputs = (PATHS_FILE, MISTAKES_FILE, SUMMARY)
    store_fields = {PATHS_FILE: PATH_FIELDS}
    produces = "mistakes"
    product_file = MISTAKES_FILE
    product_name = "mistakes"
    in_pipeline = False
    old_spellings = {"model_name": ("--model",)}

    def _matched(self, files, settings, unmatched=None):
        from .read import Known, matched_paths

        return matched_paths(files, settings, Known(None if settings.gold_field else lambda: _known(settings)), unmatched)

    def plan(self, items, endpoints, settings) -> list[Ask]:
        """No model is asked; with a judge, the texts the rules cannot grade are (the plan a preview prices)."""
        from ..sample.paths import path_grade

        judge = settings.judge
        if judge is None:
            return []
        from ..grading.judge import judge_id, judge_request

        asks = []
        for problem, raw, _, _, _ in self._matched(items, settings):
            if not path_grade(problem, raw.text).settled:
                item = JudgeItem.of(raw.text, problem.answer, problem.dataset, problem.question)
                asks.append(Ask(judge_id(judge, item), judge, judge_request(item)))
        return asks

    def done(self, run, record_id: str) -> bool:
        return False  # a judge question is never stored itself: the path it decides is

    async def run(self, run) -> None:
        from ..sample.paths import path_grade, path_record
        from .read import Unmatched

        store = run.store(PATHS_FILE)
        unmatched = Unmatched()
        run.result = problem_order, model_order, questions, unmatched = [], [], {}, unmatched
        for problem, raw, sample_index, record_id, source in self._matched(run.items, run.settings, unmatched):
            questions.setdefault(problem.id, " ".join(raw.question.split()))
            if problem.id not in problem_order:
                problem_order.append(problem.id)
            if raw.model not in model_order:
                model_order.append(raw.model)
            if record_id in store:
                continue

            def done(graded, problem=problem, raw=raw, sample_index=sample_index, record_id=record_id, source=source):
                store.append(path_record(problem, raw.model, sample_index, raw.text, raw.finish_reason, record_id, graded,
                                         source=source.name, **(raw.extra or {})))

            run.judge.put(path_grade(problem, raw.text),
                          JudgeItem.of(raw.text, problem.answer, problem.dataset, problem.question), done)
        await run.settle()
        run.close()

    def summarize(self, run):
        from ..sample.paths import finalize_run, write_summary

        problem_order, model_order, questions, unmatched = run.result
        settings = run.settings
        summary = finalize_run(run.out_dir, problem_order=problem_order, model_order=model_order,
                               max_mistakes_per_question=settings.max_mistakes_per_question,
                               keep_unfinished=settings.keep_unfinished)
        summary.unmatched, summary.unmatched_lines, summary.failed_records = \
            unmatched.count, unmatched.examples, unmatched.failed
        if questions:
            test = _test_questions(settings)
            summary.test_questions = sum(question in test for question in questions.values())
            summary.test_split = settings.dataset or "GSM8K/MATH"
        write_summary(run.out_dir, summary, SUMMARY)
        return summary


def _known(settings: ImportSettings):
    from ..problems import load_problems

    return load_problems(settings.dataset or "gsm8k", split=settings.split, data_file=settings.data_file)


def _test_questions(settings: ImportSettings) -> set[str]:
    """The test split's questions (whitespace aside), to warn about contamination."""
    import logging

    from ..problems import load_problems

    if settings.split == "test":
        problems = _known(settings)
    else:
        problems = []
        for name in ([settings.dataset] if settings.dataset else ["gsm8k", "math"]):
            try:
                problems += load_problems(name, split="test")
            except Exception as exc:  # no test split to compare with here: say so, import anyway
                logging.getLogger(__name__).warning("could not load the %s test split to check for contamination (%s)",
                                                    name, exc)
    return {" ".join(p.question.split()) for p in problems}


IMPORT = ImportStage()


def register_stages(register) -> None:
    register(IMPORT)


def import_paths(sources, out_dir, options: ImportSettings = ImportSettings(), problems=None, judge=None, client=None,
                 test_questions=None):
    """The import stage as a library call: read, match, grade and store the paths of `sources`;
    finalize `out_dir`; return its summary. `problems` (a list, or a function that loads them,
    called only when a line carries no gold answer) stand in for the known problems of
    `options`; `judge` and `client` reach a judge."""
    import asyncio

    from ..llm.factory import make_client
    from ..stage_run import run_stage

    if judge is not None:
        options = options.model_copy(update={"judge": judge})
    stage = IMPORT if problems is None else _WithProblems(problems)
    own = client is None
    client = client or make_client(out_dir, progress=False)

    async def go():
        try:
            return await run_stage(stage, list(sources), {}, client, out_dir, options)
        finally:
            if own or judge is not None:
                await client.aclose()

    return asyncio.run(go())


class _WithProblems(ImportStage):
    """The import stage with known problems given by the caller."""

    def __init__(self, problems):
        self.problems = problems

    def _matched(self, files, settings, unmatched=None):
        from .read import Known, matched_paths

        return matched_paths(files, settings, Known(self.problems), unmatched)

"""The sample stage: reasoning paths from generator LLMs, graded; the wrong ones are the mistakes.

LeMa's first stage. For every problem and every generator, K paths are sampled with the `solve`
prompt, graded by the one grader, split into numbered steps, and appended to `paths.jsonl` the
moment they arrive (an interrupted run, started again, asks only for what is missing; the
response cache in `OUT/.cache` covers answers that arrived but were not yet stored). When the
requests are done the folder is finalized from the store (`paths.finalize_run`): ordered paths,
de-duplicated and capped `mistakes.jsonl`, `sample_summary.json`.

With a judge (`SampleSettings.judge`), a path the rules cannot grade waits until the requests are
done, is judged, and is then stored.
"""
from __future__ import annotations

from pydantic import Field, field_validator

from ..grading.judge import JudgeItem
from ..llm.types import Ask
from ..problems import Problem
from ..prompts import check_template, load_prompt
from ..records import make_id
from ..settings import MAX_COUNT, MAX_SAMPLES, MAX_TOKENS, JudgeSettings, decisive
from ..solving import solve_request
from ..stage import Funnel, Role, Stage
from ..steps import split_steps
from .paths import MISTAKES_FILE, PATH_FIELDS, PATHS_FILE, SUMMARY_FILE


class SampleSettings(JudgeSettings):
    """How paths are sampled and which of them become mistakes."""

    samples: int = Field(4, ge=1, le=MAX_SAMPLES, description="Paths sampled per question and generator.")
    temperature: float = decisive(0.7, ge=0, description="Sampling temperature.")
    top_p: float = decisive(1.0, gt=0, le=1, description="Nucleus sampling.")
    max_tokens: int = decisive(512, ge=1, le=MAX_TOKENS, description="Token limit per path (paths that hit it are 'truncated').")
    prompt: str = decisive("solve", description="Prompt template: a shipped one by name (lema_plugin/prompts/NAME.txt) "
                           "or your own .txt file with a {question} placeholder; the user message in chat mode, the "
                           "prompt in completion mode.")
    seed: int | None = decisive(None, description="Base seed for servers that honour it (sample k uses seed+k).",
                                json_schema_extra={"default_text": "none, the server's own"})
    max_mistakes_per_question: int | None = Field(
        None, ge=0, le=MAX_COUNT, description="Keep at most N distinct mistakes per question, taking generators in turn.",
        json_schema_extra={"default_text": "all"})
    keep_unfinished: bool = Field(False, description="Also keep paths with no extractable answer and truncated paths as mistakes.")

    @field_validator("prompt")
    @classmethod
    def _known_prompt(cls, name: str) -> str:
        return check_template(name, ("question",))  # fail early: unknown, or the wrong placeholders


class SampleStage(Stage):
    name = "sample"
    help = """Sample reasoning paths, grade them, and keep the wrong ones as mistakes.

    Writes OUT/paths.jsonl (every path, graded, split into steps), OUT/mistakes.jsonl (the wrong
    ones, de-duplicated per question) and OUT/sample_summary.json. Running the same command again
    resumes: finished paths are neither re-requested nor re-graded."""
    examples = """\
  lema sample --dataset gsm8k --limit 100 -k 4 \\
    --generator llama=meta-llama/Llama-3.1-8B-Instruct@http://gpu1:8000/v1 \\
    --generator qwen=Qwen/Qwen2.5-7B-Instruct@http://gpu2:8000/v1 --out runs/mistakes"""
    recipe_help = "The models whose mistakes are collected."
    settings = SampleSettings
    roles = (Role("generator", "--generator", "A generator endpoint (repeatable; SPEC below).", many=True,
                  default_text="embedded"),)
    outputs = (PATHS_FILE, MISTAKES_FILE, SUMMARY_FILE)
    store_fields = {PATHS_FILE: PATH_FIELDS}
    produces = "mistakes"
    product_file = MISTAKES_FILE
    failures_file = PATHS_FILE
    projection = ("projected before sampling: every question gives the most mistakes the recipe keeps, each as long as its gold solution; run --estimate again after `sample` for figures from the real mistakes")
    product_name = "mistakes"
    optional = False
    recipe_key = "generators"
    recipe_many = True
    recipe_hoisted = ("max_mistakes_per_question", "keep_unfinished")
    option_spellings = {"samples": ("--samples", "-k")}
    old_spellings = {"samples": ("--samples-per-question",)}

    def decisive(self, endpoint, settings) -> dict:
        """The marked settings, and the template's text (a user's own file may change)."""
        return {**super().decisive(endpoint, settings), "template": make_id(load_prompt(settings.prompt))}

    def plan(self, items, endpoints, settings) -> list[Ask]:
        problems = list({p.id: p for p in items}.values())  # a question listed twice is sampled once
        return [
            Ask(make_id(problem.id, endpoint.label, self.decisive(endpoint, settings), k), endpoint,
                solve_request(problem, endpoint, k, prompt=settings.prompt, temperature=settings.temperature,
                              top_p=settings.top_p, max_tokens=settings.max_tokens, seed=settings.seed),
                (problem, k))
            for problem in problems
            for endpoint in endpoints["generator"]
            for k in range(settings.samples)
        ]

    def judge_item(self, ask: Ask) -> JudgeItem | None:
        problem, _ = ask.owner
        return JudgeItem.of("", problem.answer, problem.dataset, problem.question)

    def to_record(self, run, ask: Ask, completion) -> None:
        """Store one reply's path record; one the rules cannot grade waits for the judge first.
        A truncated path that states no answer is not judged: it never reached one."""
        from .paths import failed_record, path_grade, path_record

        problem, k = ask.owner
        store = run.store(PATHS_FILE)
        if not completion.ok:
            store.append(failed_record(problem, ask.endpoint.label, k, ask.id, completion.error or "request failed"))
            return
        text = completion.text or ""

        def done(graded) -> None:
            store.append(path_record(problem, ask.endpoint.label, k, text, completion.finish_reason, ask.id, graded,
                                     prompt_tokens=completion.prompt_tokens, completion_tokens=completion.completion_tokens))

        graded = path_grade(problem, text)
        if completion.finish_reason == "length" and graded.extracted is None:
            done(graded)
        else:
            run.judge.put(graded, JudgeItem.of(text, problem.answer, problem.dataset, problem.question), done)

    async def run(self, run) -> None:
        from .paths import drop_unasked_failures

        plan = self.plan(run.items, run.endpoints, run.settings)
        drop_unasked_failures(run.out_dir, {e.label for e in run.endpoints["generator"]}, {ask.id for ask in plan})
        await super().run(run)

    def done(self, run, record_id: str) -> bool:
        return record_id in run.store(PATHS_FILE)

    def answered(self, record: dict) -> bool:
        return record.get("kind") != "failed"

    def finish(self, run) -> None:
        run.close()  # finalize rewrites paths.jsonl from the store

    def summarize(self, run):
        from .paths import finalize_run

        return finalize_run(
            run.out_dir,
            problem_order=list(dict.fromkeys(p.id for p in run.items)),
            model_order=[e.label for e in run.endpoints["generator"]],
            max_mistakes_per_question=run.settings.max_mistakes_per_question,
            keep_unfinished=run.settings.keep_unfinished,
        )

    def project(self, items, settings) -> list[dict]:
        """Before sampling: every question gives the most mistakes the recipe keeps, each as long
        as its gold solution."""
        per_question = settings.samples
        if settings.max_mistakes_per_question is not None:
            per_question = min(per_question, settings.max_mistakes_per_question)
        return [
            {"id": f"projected-{p.id}-{k}", "problem_id": p.id, "question": p.question, "answer": p.answer,
             "dataset": p.dataset, "steps": split_steps(p.solution) or [p.solution or p.answer], **p.tags()}
            for p in items for k in range(per_question)
        ]

    def funnel(self, summary: dict) -> Funnel:
        total = summary.get("total") or {}
        return Funnel(self.name, [("problems", summary.get("questions", 0)), ("paths", total.get("paths", 0)),
                                  ("mistakes", total.get("mistakes", 0))],
                      {k: total.get(k, 0) for k in ("correct", "unextractable", "truncated", "failed", "duplicates")
                       if total.get(k)})


SAMPLE = SampleStage()


def register_stages(register) -> None:
    register(SAMPLE)


async def sample_paths(problems: list[Problem], endpoints, client, out_dir, settings: SampleSettings = SampleSettings()):
    """The sample stage as a library call (`run_stage(SAMPLE, ...)`): returns its summary."""
    from ..stage_run import run_stage

    return await run_stage(SAMPLE, problems, endpoints, client, out_dir, settings)

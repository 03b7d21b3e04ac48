"""`lema run`: every stage of a recipe in order, each resumable, in one run folder.

The run folder holds one sub-folder per stage (`sample/`, `correct/`, `cot/`, `evolve/`,
`data/<mix>/`, `train/`, `eval/`) and one response cache (`.cache/`) shared by all of them.
Stages write through the run store and the cache, so running the same recipe again after a crash
or Ctrl-C asks the models only for what is still missing.

The stages themselves live in their own modules; this one only wires a recipe's settings to
them, in the paper's order: sample -> correct -> (evolve -> sample -> correct) -> CoT -> build
-> (train -> eval).

A run stops, before building anything, when a data stage ended with requests that finally failed
(exit 5: the rerun asks only for those) or when sampling found no mistakes to correct (exit 4):
a "lema" mix built from a half-done or empty correction stage would look like a result.
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import time
from pathlib import Path

from .errors import ConfigError, NothingProduced, RequestsFailed
from .recipe import Recipe
from .run_summary import RunReport
from .shipped import tasks_path
from .export.recipe_mixes import base_config, build_mixes
from .store import write_atomic, write_jsonl_atomic
from .train_eval import axolotl_config, evaluate, next_commands, train
from .summaries import usage_since, usage_snapshot

LM_EVAL_TASKS = tasks_path()


def _pct(part: int, whole: int) -> str:
    return f"{part}/{whole} ({100 * part / whole:.1f}%)" if whole else f"{part}/0"


class _Timer:
    def __init__(self, report: RunReport, stage: str, echo):
        self.report, self.stage, self.echo = report, stage, echo

    def __enter__(self):
        self.echo(f"== {self.stage}")
        self.started = time.monotonic()

    def __exit__(self, *exc):
        self.report.timings[self.stage] = round(time.monotonic() - self.started, 1)


def run_recipe(recipe: Recipe, out: str | Path | None = None, echo=print, estimate: bool = False,
               progress: bool = True) -> RunReport:
    """Run every stage the recipe asks for; return the report (also written to run_summary.json).

    With `estimate`, nothing is sent and nothing after the data stages runs: the report carries
    the cost preview (`report.estimate`). A batch-mode endpoint's pending batches stop the run at
    that stage (`BatchPending`), and `recipe.max_cost` at the budget (`BudgetStop`); running the
    same recipe again resumes there."""
    from .llm.endpoints import open_endpoints
    from .problems import load_problems

    if recipe.train:  # fail before any request, not after the paid stages
        axolotl_config(recipe)
    base_config(recipe)
    if recipe.eval and not LM_EVAL_TASKS.is_dir():
        raise ConfigError(f"lm-eval tasks not found at {LM_EVAL_TASKS}: reinstall lema-plugin")
    out = Path(out or recipe.out)
    out.mkdir(parents=True, exist_ok=True)
    report = RunReport(out=str(out))
    started = time.monotonic()

    problems = load_problems(recipe.dataset, recipe.split, recipe.data_file, recipe.limit)
    report.add("problems", f"{len(problems)} ({recipe.dataset}/{recipe.split})")

    wanted = [g.endpoint() for g in recipe.generators] + [recipe.corrector.endpoint()]
    if recipe.cot.source == "model":
        wanted.append(recipe.cot.model.endpoint())
    if recipe.evolve.enabled:
        wanted.append((recipe.evolve.model or recipe.corrector).endpoint())
    if recipe.judge is not None:
        wanted.append(recipe.judge.endpoint())
    if recipe.first_error.enabled:
        wanted.append((recipe.first_error.generator or recipe.generators[0]).endpoint())
    opened = contextlib.nullcontext(wanted) if estimate else open_endpoints(wanted)  # a preview starts no server
    with opened as endpoints:
        generators = endpoints[: len(recipe.generators)]
        corrector = endpoints[len(recipe.generators)]
        rest = iter(endpoints[len(recipe.generators) + 1 :])
        cot_model = next(rest) if recipe.cot.source == "model" else None
        evolver = next(rest) if recipe.evolve.enabled else None
        judge = next(rest) if recipe.judge is not None else None
        checker = next(rest) if recipe.first_error.enabled else None
        asyncio.run(_data_stages(recipe, out, problems, generators, corrector, cot_model, evolver, judge, checker,
                                 report, echo, estimate, progress))
    if estimate:
        return report
    # the recipe the data was made with (each stage has also checked its own settings in lema_run.json)
    write_atomic(out / "recipe.json", recipe.model_dump_json(indent=2) + "\n")

    corrections = _merge_corrections(out, recipe.evolve.enabled)
    with _Timer(report, "build", echo):
        build_mixes(recipe, out, corrections, report)
    if recipe.train:
        with _Timer(report, "train", echo):
            train(recipe, out, report, echo)
    if recipe.eval:
        with _Timer(report, "eval", echo):
            evaluate(recipe, out, report, echo)
    report.timings["total"] = round(time.monotonic() - started, 1)
    report.next_commands = next_commands(recipe, out)
    write_atomic(out / "run_summary.json", json.dumps(report.to_dict(), indent=2) + "\n")
    from .report import build_report

    report.html = str(build_report(out))
    return report


class _Stage(_Timer):
    """A timed data stage whose tokens are what the client counted while it ran."""

    def __init__(self, report: RunReport, stage: str, echo, client):
        super().__init__(report, stage, echo)
        self.client = client

    def __enter__(self):
        super().__enter__()
        self.before = usage_snapshot(self.client)

    def __exit__(self, *exc):
        super().__exit__(*exc)
        total = usage_since(self.client, self.before)["total"]
        spent = total["prompt_tokens"] + total["completion_tokens"]
        self.report.tokens[self.stage] = self.report.tokens.get(self.stage, 0) + spent
        if total["cost"] is not None:
            self.report.costs[self.stage] = round(self.report.costs.get(self.stage, 0.0) + total["cost"], 6)


async def _data_stages(recipe, out, problems, generators, corrector, cot_model, evolver, judge, checker, report, echo,
                       estimate=False, progress: bool = True) -> None:
    from .llm import LLMClient
    from .llm.costs import Budget, Estimate

    budget = Budget(recipe.max_cost) if recipe.max_cost is not None else None
    async with LLMClient(cache_dir=out / ".cache", concurrency=recipe.concurrency, budget=budget,
                         timeout=recipe.timeout, max_retries=recipe.max_retries, progress=progress,
                         batch_dir=out / ".batches", estimate=Estimate() if estimate else None) as client:
        if estimate:
            report.estimate = await _estimate(recipe, out, problems, generators, corrector, cot_model, judge, client)
            return
        with _Stage(report, "sample", echo, client):
            paths = await _sample(recipe, out / "sample", problems, generators, judge, client)
        report.add("paths", f"{paths.total['paths']} (accuracy {paths.total['accuracy']}, {paths.total['failed']} failed)")
        report.add("mistakes kept", paths.total["mistakes"])
        _stop_if_failed("sample", paths.total["failed"], out / "sample" / "paths.jsonl")
        if not paths.total["mistakes"]:
            raise NothingProduced(f"sample: no mistakes in {out / 'sample' / 'mistakes.jsonl'}, so nothing to correct "
                                  "and no LeMa data to build")
        with _Stage(report, "correct", echo, client):
            fixed = await _correct(recipe, out / "sample", out / "correct", corrector, judge, client)
        report.add("corrections verified", f"{fixed.verified} of {fixed.attempts} replies")
        report.add("correction success", _pct(fixed.corrected_mistakes, fixed.mistakes))
        _stop_if_failed("correct", fixed.rejected.get("request_failed", 0), out / "correct" / "rejected.jsonl")
        if fixed.mistakes and not fixed.verified:
            report.add("note", f"no correction from {corrector.label} reached the right answer; "
                               "a GPT-4-class corrector is what makes LeMa data")
        if evolver is not None:
            with _Stage(report, "evolve", echo, client):
                await _evolve(recipe, out, evolver, generators, corrector, judge, client, report)
        with _Stage(report, "cot", echo, client):
            await _cot(recipe, out / "cot", problems, cot_model, judge, client, report)
        if checker is not None:
            with _Stage(report, "first-error", echo, client):
                await _first_error(recipe, out, _merge_corrections(out, recipe.evolve.enabled), checker, client, report)
        report.add("tokens (prompt + completion)", f"{sum(report.tokens.values()):,}")
        spent = usage_since(client, {})
        report.usage, report.by_endpoint = spent["total"], spent["by_endpoint"]
        report.add("new requests", report.usage["requests"] - report.usage["cached"])
        if report.costs:
            report.add("cost (USD)", ", ".join(f"{stage} ${cost:.2f}" for stage, cost in report.costs.items())
                       + f"; total ${sum(report.costs.values()):.2f}")
        for label, counts in report.by_endpoint.items():
            dollars = f", ${counts['cost']:.2f}" if counts.get("cost") is not None else ""
            report.add(f"endpoint {label}", f"{counts['requests']:,} requests ({counts['cached']:,} cached), "
                       f"{counts['prompt_tokens'] + counts['completion_tokens']:,} tokens{dollars}")


def _stop_if_failed(stage: str, failed: int, where: Path) -> None:
    if failed:
        raise RequestsFailed(f"{stage}: {failed} request{'s' if failed != 1 else ''} finally failed (reasons in {where}); "
                             "stopped before building; run the same command again to retry only those")


async def _estimate(recipe, out, problems, generators, corrector, cot_model, judge, client):
    """The cost preview of a run: sampling and CoT from their inputs; corrections from the
    mistakes on disk when sampling is complete, else projected (see the note it adds)."""
    from .correct.stage import correct_mistakes, load_mistakes
    from .steps import split_steps

    await _sample(recipe, out / "sample", problems, generators, judge, client)
    sampling_left = client.estimate.total().requests
    mistakes_file = out / "sample" / "mistakes.jsonl"
    folder = out / "correct"
    if mistakes_file.exists() and not sampling_left:
        mistakes = load_mistakes(mistakes_file)
    else:
        folder = out / ".estimate"  # projected mistakes never touch the real stage folder
        per_question = sum(g.samples for g in recipe.generators)
        if recipe.max_mistakes_per_question:
            per_question = min(per_question, recipe.max_mistakes_per_question)
        mistakes = [
            {"id": f"projected-{p.id}-{k}", "question": p.question, "answer": p.answer, "dataset": p.dataset,
             "steps": split_steps(p.solution) or [p.solution], **p.tags()}
            for p in problems for k in range(per_question)
        ]
        client.estimate.notes.append(
            f"{corrector.label}: projected before sampling: every question gives {per_question} mistakes "
            "(the most the recipe keeps), each as long as the gold solution, each asked every attempt; "
            "run --estimate again after `sample` for figures from the real mistakes.")
    await correct_mistakes(mistakes, [corrector], client, folder, recipe.corrector.settings(judge))
    if recipe.cot.source == "model":
        await _cot(recipe, out / ".estimate" / "cot", problems, cot_model, judge, client, RunReport(out=str(out)))
    if recipe.evolve.enabled:
        client.estimate.notes.append("evolve: not included (its requests depend on the verified corrections); "
                                     "about (per_seed + answers) requests per seed correction.")
    if recipe.first_error.enabled:
        client.estimate.notes.append("first-error: not included (its requests depend on the verified corrections); "
                                     f"at most {2 * recipe.first_error.samples} continuations per correction.")
    return client.estimate


async def _sample(recipe, folder, problems, generators, judge, client):
    from .sample import sample_paths

    summary = None
    for endpoint, spec in zip(generators, recipe.generators):  # each generator has its own sampling settings
        summary = await sample_paths(problems, [endpoint], client, folder,
                                     spec.settings(recipe.max_mistakes_per_question, recipe.keep_unfinished, judge))
    return summary


async def _correct(recipe, sample_folder, folder, corrector, judge, client):
    from .correct.stage import correct_mistakes, load_mistakes

    mistakes = load_mistakes(sample_folder / "mistakes.jsonl")
    return await correct_mistakes(mistakes, [corrector], client, folder, recipe.corrector.settings(judge))


async def _evolve(recipe, out, evolver, generators, corrector, judge, client, report) -> None:
    """New questions seeded by the corrected ones, then the same sample -> correct stages on them."""
    from .evolve import PROBLEMS, evolve_questions, read_inputs
    from .problems import read_problems_file

    corrections = out / "correct" / "corrections.jsonl"
    if not corrections.exists() or not corrections.read_text().strip():
        report.add("evolved questions", "0 (no verified corrections to seed from)")
        return
    inputs = read_inputs(corrections)
    await evolve_questions(inputs, [evolver], client, out / "evolve", recipe.evolve.settings(judge))
    new_problems = read_problems_file(out / "evolve" / PROBLEMS)
    report.add("evolved questions", len(new_problems))
    if not new_problems:
        return
    await _sample(recipe, out / "evolve" / "sample", new_problems, generators, judge, client)
    fixed = await _correct(recipe, out / "evolve" / "sample", out / "evolve" / "correct", corrector, judge, client)
    report.add("evolved corrections verified", fixed.verified)


async def _cot(recipe, folder, problems, cot_model, judge, client, report) -> None:
    from .cot import sample_cot, write_gold_cot

    if recipe.cot.source == "none":
        write_jsonl_atomic(folder / "cot.jsonl", [])
        report.add("cot examples", 0)
        return
    if recipe.cot.source == "gold":
        records, _ = write_gold_cot(problems, folder)
        report.add("cot examples", f"{len(records)} (gold rationales)")
        return
    summary = await sample_cot(problems, [cot_model], client, folder, recipe.cot.settings(judge))
    report.add("cot examples", f"{summary.kept} (rejection-sampled from {cot_model.label})")


async def _first_error(recipe, out, corrections, checker, client, report) -> None:
    """Check the corrections' named first errors (the optional stage): `first-error/checks.jsonl`."""
    from .export.steps import load_step_corrections
    from .first_error import check_first_errors

    loaded = load_step_corrections(corrections)
    summary = await check_first_errors(loaded.records, [checker], client, out / "first-error",
                                       recipe.first_error.settings(), skipped=loaded.skipped)
    incomplete = summary.reasons["incomplete"]
    report.add("first error confirmed",
               _pct(summary.confirmed, summary.checked) + (f", {incomplete} incomplete" if incomplete else ""))


def _merge_corrections(out: Path, evolved: bool) -> Path:
    """One corrections file for the export: the run's own plus those on evolved questions."""
    sources = [out / "correct" / "corrections.jsonl"]
    if evolved:
        sources.append(out / "evolve" / "correct" / "corrections.jsonl")
    records = []
    for source in sources:
        if source.exists():
            records += [json.loads(line) for line in source.read_text(encoding="utf-8").splitlines() if line.strip()]
    merged = out / "data" / "corrections.jsonl"
    write_jsonl_atomic(merged, records)
    return merged



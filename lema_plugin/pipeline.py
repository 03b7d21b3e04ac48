"""`lema run`: every stage of a recipe in order, each resumable, in one run folder.

The run folder holds one sub-folder per stage (`sample/`, `correct/`, `cot/`, `evolve/`,
`first-error/`, ..., then `data/<mix>/`, `train/`, `eval/`) and one response cache (`.cache/`)
shared by all of them. This module only orchestrates: the stages come from the registry
(`stage.pipeline()`: each after the stages whose product it reads), each runs through
`stage_run.run_stage`, and the build, train and eval steps live in `export.recipe_mixes` and
`train_eval`. A stage whose product feeds an earlier one (evolution's new problems) has its
products run through that chain again (`evolve/sample/`, `evolve/correct/`), and what the chain
makes joins the run's own (the corrections).

One walk over the stages serves three uses, so they cannot disagree: the run itself, the cost
preview (`--estimate`: each stage priced on what the folder holds, or, before its upstream stage
ran, on that stage's projection of what it will produce), and `--check` (the requests of every
stage's plan on projections alone: what the recipe asks, not what one folder holds).

A run stops, before building anything, when a data stage ended with requests that finally failed
(exit 5: the rerun asks only for those) or when a stage produced nothing that a stage it must feed
reads (sampling found no mistakes: exit 4): a "lema" mix built from a half-done or empty
correction stage would look like a result.
"""
from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Awaitable, Callable

from . import keys
from . import stage as registry
from .errors import ConfigError, NothingProduced, RequestsFailed
from .export.recipe_mixes import base_config, build_mixes
from .run_summary import RunReport
from .problems import ProblemSource
from .shipped import tasks_path
from .stage import Stage
from .store import write_atomic, write_jsonl_atomic
from .summaries import top_reasons, usage_since, usage_snapshot
from .train_eval import axolotl_config, evaluate, next_commands, train

LM_EVAL_TASKS = tasks_path()


@dataclass
class Step:
    """One stage of this recipe: its sections (one per generator for sampling), where it writes,
    and each section's endpoints (role -> endpoints) and settings."""

    stage: Stage
    folder: Path
    runs: list[tuple[dict, object]] = field(default_factory=list)  # (endpoints by role, settings) per section


def steps(recipe, out: Path) -> list[Step]:
    """The recipe's stages in pipeline order, with what each section asks (endpoints not opened)."""
    chosen = []
    for stage in registry.pipeline():
        section = getattr(recipe, stage.key)
        sections = section if stage.recipe_many else [section]
        if stage.optional and not all(getattr(s, "enabled", False) for s in sections):
            continue
        chosen.append(Step(stage, out / stage.folder, [(s.endpoints(recipe), s.settings(recipe)) for s in sections]))
    return chosen


def endpoints_of(plan: list[Step]) -> list:
    """Every endpoint the recipe asks, the judges included, in order, once each."""
    wanted = []
    for step in plan:
        for endpoints, settings in step.runs:
            wanted += [e for group in endpoints.values() for e in group]
            if getattr(settings, "judge", None) is not None:
                wanted.append(settings.judge)
    return list(dict.fromkeys(wanted))


def reachable(plan: list[Step], opened: dict) -> list[Step]:
    """The same steps with every endpoint (and judge) replaced by its opened twin."""
    out = []
    for step in plan:
        runs = []
        for endpoints, settings in step.runs:
            endpoints = {role: [opened[e] for e in group] for role, group in endpoints.items()}
            if getattr(settings, "judge", None) is not None:
                settings = settings.model_copy(update={"judge": opened[settings.judge]})
            runs.append((endpoints, settings))
        out.append(Step(step.stage, step.folder, runs))
    return out


# -- one walk over the stages -------------------------------------------------------------------

Act = Callable[[Step, object], Awaitable[object]]  # (step, its input or None) -> its product or None


async def walk(plan: list[Step], problems: list, act: Act, merged: Path | None) -> dict[str, object]:
    """Run `act` on every step in order, each on the product of the step it reads (None when that
    step produced nothing); a feedback step's products go through the chain that leads back to
    what it reads, whose own products then join the run's (`merged`: one corrections file from the
    original and the evolved ones). Returns the products by artifact."""
    by_stage = {step.stage.name: step for step in plan}
    products: dict[str, object] = {"problems": problems}
    for step in plan:
        stage = step.stage
        given = products.get(stage.input.artifact)
        product = await act(step, None if given is None else _for(stage, given))
        if product is None:
            continue
        chain = [by_stage[s.name] for s in registry.feedback_chain(stage) if s.name in by_stage]
        if chain and stage.produces:
            fed = product
            for link in chain:
                sub = Step(link.stage, step.folder / link.stage.folder, link.runs)
                fed = await act(sub, None if fed is None else _for(link.stage, fed))
            if fed is not None:
                products[chain[-1].stage.produces] = _join(products.get(chain[-1].stage.produces), fed, merged)
        elif stage.produces:
            products[stage.produces] = product
    return products


def _for(stage: Stage, product):
    """A product as `stage` reads it: problems as they are; records or a file through its loader."""
    if stage.input.problems:
        return product
    return stage.input.load(product if isinstance(product, list) else Path(product))


def _join(first, second, merged: Path | None):
    """Two products of the same kind as one: records added up, files merged into `merged` (None,
    for a plan or a preview, which write nothing: the records themselves)."""
    if first is None:
        return second
    if isinstance(first, list) and isinstance(second, list) and (first or second):
        return first + second
    records = []
    for part in (first, second):
        if isinstance(part, list):
            records += part
        elif Path(part).exists():
            records += [json.loads(line) for line in Path(part).read_text(encoding="utf-8").splitlines() if line.strip()]
    if merged is None:
        return records
    write_jsonl_atomic(merged, records)
    return merged


def _project(step: Step, items):
    """What a step would produce from `items` at most (several sections: their samples together)."""
    endpoints, settings = step.runs[0]
    if len(step.runs) > 1 and "samples" in type(settings).model_fields:
        settings = settings.model_copy(update={"samples": sum(s.samples for _, s in step.runs)})
    return step.stage.project(items, settings)


# -- the three uses -----------------------------------------------------------------------------


def request_plan(recipe, problems: list, out: Path | None = None) -> list[tuple[str, int, bool]]:
    """(stage, requests, exact) for every stage the recipe runs on `problems`: each stage's plan,
    made on the projections of the stages before it. `exact` is False for an upper bound (it
    depends on what is graded wrong or verified). A judge adds a line of its own."""
    plan = steps(recipe, Path(out or recipe.out))
    counts: dict[str, list] = {}
    judge = 0

    async def count(step: Step, items):
        nonlocal judge
        if items is None:
            return None
        total = 0
        for endpoints, settings in step.runs:
            asks = step.stage.plan(items, endpoints, settings)
            total += len(asks)
            if getattr(settings, "judge", None) is not None:
                judge += sum(step.stage.judge_item(ask) is not None for ask in asks)
        top = step.folder.parent == Path(out or recipe.out)  # a feedback chain counts under the stage that feeds it
        entry = counts.setdefault(step.stage.name if top else step.folder.parent.name, [0, True])
        entry[0] += total
        entry[1] = entry[1] and top and step.stage.input.problems and items is problems
        return _project(step, items)

    asyncio.run(walk(plan, problems, count, None))
    rows = [(name, total, exact or total == 0) for name, (total, exact) in counts.items()]
    if recipe.judge is not None:
        rows.append(("judge", judge, judge == 0))
    return rows


async def _preview(plan: list[Step], problems: list, client, out: Path) -> None:
    """The cost preview: each stage priced on what its folder holds, or on a projection when the
    stage it reads from has requests left (or never ran)."""
    from .stage_run import run_stage

    async def price(step: Step, items):
        if items is None:
            return None
        before = client.estimate.total().requests
        for endpoints, settings in step.runs:
            await run_stage(step.stage, items, endpoints, client, step.folder, settings)
        product = step.folder / step.stage.product_file if step.stage.product_file else None
        if client.estimate.total().requests == before and product is not None and product.exists():
            return _read_product(step.stage, product)
        note = f"{step.stage.name}: {step.stage.projection}."
        if step.stage.projection and note not in client.estimate.notes:
            client.estimate.notes.append(note)
        return _project(step, items)

    await walk(plan, problems, price, None)


def _read_product(stage: Stage, path: Path):
    if stage.produces == "problems":
        from .problems import read_problems_file

        return read_problems_file(path)
    return path


def run_recipe(recipe, out: str | Path | None = None, echo=print, estimate: bool = False,
               progress: bool = True) -> RunReport:
    """Run every stage the recipe asks for; return the report (also written to run_summary.json).

    With `estimate`, nothing is sent and nothing after the data stages runs: the report carries
    the cost preview (`report.estimate`). A batch-mode endpoint's pending batches stop the run at
    that stage (`BatchPending`), and `recipe.max_cost` at the budget (`BudgetStop`); running the
    same recipe again resumes there."""
    from .llm.endpoints import open_endpoints
    from .llm.factory import make_client
    from .settings import ClientSettings

    if recipe.train:  # fail before any request, not after the paid stages
        axolotl_config(recipe)
    base_config(recipe)
    if recipe.eval and not LM_EVAL_TASKS.is_dir():
        raise ConfigError(f"lm-eval tasks not found at {LM_EVAL_TASKS}: reinstall lema-plugin")
    out = Path(out or recipe.out)
    plan = steps(recipe, out)
    if not estimate:  # every key the run will send, before any work (a preview needs none)
        keys.require(endpoints_of(plan), f"{out}: ")
    report = RunReport(out=str(out))
    started = time.monotonic()
    problems = ProblemSource(**{name: getattr(recipe, name) for name in ProblemSource.model_fields}).load()
    report.add("problems", f"{len(problems)} ({recipe.dataset}/{recipe.split})")
    client = make_client(out, ClientSettings(**{name: getattr(recipe, name) for name in ClientSettings.model_fields}),
                         progress=progress, max_cost=recipe.max_cost, estimate=estimate)

    async def go(coroutine):
        try:
            return await coroutine
        finally:
            await client.aclose()

    if estimate:  # a preview starts no server and writes nothing
        asyncio.run(go(_preview(plan, problems, client, out)))
        report.estimate = client.estimate
        return report
    out.mkdir(parents=True, exist_ok=True)
    wanted = endpoints_of(plan)
    with open_endpoints(wanted) as opened:
        plan = reachable(plan, dict(zip(wanted, opened)))
        asyncio.run(go(_data_stages(plan, problems, out, client, report, echo)))
    # the recipe the data was made with (each stage has also checked its own settings in lema_run.json)
    write_atomic(out / "recipe.json", recipe.model_dump_json(indent=2) + "\n")

    corrections = out / "data" / "corrections.jsonl"
    if not corrections.exists():
        write_jsonl_atomic(corrections, [])
    _check_corrections(recipe, corrections, report)
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


NO_CORRECTIONS = "no verified corrections"


def _check_corrections(recipe, corrections: Path, report: RunReport) -> None:
    """A run whose corrector verified nothing would build a "lema" mix that is the CoT-only mix.
    Say so first in the summary; stop there (exit 4, the summary written) unless the recipe
    allows it (`export.allow_no_corrections`, as the demo does)."""
    uses = [mix for mix in recipe.export.mixes if mix != "cot-only"]
    if not uses or any(line.strip() for line in corrections.read_text(encoding="utf-8").splitlines()):
        return
    what = f"{NO_CORRECTIONS}: the corrector reached the right answer for no mistake, so {', '.join(uses)} would hold no " \
           "correction (a GPT-4-class corrector is what makes LeMa data)"
    if recipe.export.allow_no_corrections:
        report.alerts.append(f"note: {what}; building anyway (export.allow_no_corrections): the lema mix is the CoT-only mix")
        return
    report.alerts.append(f"stopped: {what}; nothing was built (set export.allow_no_corrections to build anyway)")
    write_atomic(Path(report.out) / "run_summary.json", json.dumps(report.to_dict(), indent=2) + "\n")
    raise NothingProduced(f"{NO_CORRECTIONS} in {corrections}: stopped before building", report=report)


async def _data_stages(plan: list[Step], problems: list, out: Path, client, report: RunReport, echo) -> None:
    from .stage_run import run_stage

    readers = {step.stage.input.artifact for step in plan if not step.stage.optional}
    merged = out / "data" / "corrections.jsonl"

    async def run(step: Step, items):
        stage = step.stage
        top = step.folder.parent == out
        feeder = None if top else registry.get(step.folder.parent.name)  # the stage whose products this chain runs
        label = stage.name if top else f"{feeder.name} {stage.name}"
        prefix = "" if top else f"{feeder.chain_label} "
        if items is None:
            report.add(prefix + stage.name, f"skipped: no {stage.input.artifact} to {stage.verb or stage.name}")
            return None
        with _Stage(report, stage.name if top else feeder.name, echo, client, shown=label):
            summary = None
            for endpoints, settings in step.runs:  # each generator has its own sampling settings
                summary = await run_stage(stage, items, endpoints, client, step.folder, settings)
        for name, value in summary.headline():
            report.add(prefix + name, value)
        failed = getattr(summary, "failed", 0) + getattr(summary, "judge_pending", 0)
        if failed:
            where = step.folder / (stage.failures_file or "")
            raise RequestsFailed(f"{label}: {failed} request{'s' if failed != 1 else ''} finally failed (reasons in "
                                 f"{where}){top_reasons(summary)}; stopped before building; run the same command again "
                                 "to retry only those")
        product = step.folder / stage.product_file if stage.product_file else None
        if stage.produces and not summary.produced:
            if stage.produces in readers and step.folder.parent == out:
                raise NothingProduced(f"{label}: no {stage.product_name} in {product}, so nothing to go on with and "
                                      "no LeMa data to build")
            return None
        return _read_product(stage, product) if product is not None else None

    products = await walk(plan, problems, run, merged)
    corrections = products.get("corrections")
    if corrections is None or Path(corrections) != merged:  # the build reads one file: the run's corrections
        _join([], corrections or [], merged)
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


class _Timer:
    """Times a step under `stage` (added up when several steps count as one: a chain under the
    stage that feeds it), announcing it as `shown`."""

    def __init__(self, report: RunReport, stage: str, echo, shown: str | None = None):
        self.report, self.stage, self.echo, self.shown = report, stage, echo, shown or stage

    def __enter__(self):
        self.echo(f"== {self.shown}")
        self.started = time.monotonic()

    def __exit__(self, *exc):
        self.report.timings[self.stage] = round(self.report.timings.get(self.stage, 0.0)
                                                + time.monotonic() - self.started, 1)


class _Stage(_Timer):
    """A timed data stage whose tokens and dollars are what the client counted while it ran."""

    def __init__(self, report: RunReport, stage: str, echo, client, shown: str | None = None):
        super().__init__(report, stage, echo, shown)
        self.client = client

    def __enter__(self):
        super().__enter__()
        self.before = usage_snapshot(self.client)

    def __exit__(self, *exc):
        super().__exit__(*exc)
        total = usage_since(self.client, self.before)["total"]
        self.report.tokens[self.stage] = self.report.tokens.get(self.stage, 0) + total["prompt_tokens"] + total["completion_tokens"]
        if total["cost"] is not None:
            self.report.costs[self.stage] = round(self.report.costs.get(self.stage, 0.0) + total["cost"], 6)


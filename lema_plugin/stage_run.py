"""Running a stage: the one path every registered stage takes, so every guarantee follows it.

`run_stage(stage, items, endpoints, client, out_dir, settings)` is what `lema NAME`, `lema run`
and a library caller all call. Around the stage's own work it does, once for every stage:

- checks the endpoints the stage's roles ask for (how many, which are needed);
- refuses, before any request, a rerun whose decisive settings differ from what made the run
  folder (`manifest.check`), and remembers them when the first answer is stored (a failed
  endpoint check, a preview or requests that all failed leave nothing to refuse the fixed rerun);
- gives the stage its run stores (`run.store(NAME)`: one lock per folder, damaged lines set
  aside, fields checked) and the one request loop (`run.ask`, `asking.ask_missing`: cache, ids,
  endpoint check, first-failures stop, budget, batch mode, estimate) with the judge on it
  (`run.judge`, a `JudgeQueue` whose requests go through the same loop);
- with a cost preview (`client.estimate`), prices the stage's plan instead: what the folder does
  not hold and the cache cannot answer, plus a bound on the judge's questions; nothing is written;
- writes the summary (`<stage>_summary.json`), with requests, tokens and dollars taken from the
  client's own counts over the stage, never added up from records, and adds them to the folder's
  ledger (`usage.jsonl`); a run that stops early (the budget, pending batches, failed requests,
  Ctrl-C) adds what it paid to the ledger all the same.
"""
from __future__ import annotations

import contextlib
import time
from collections import Counter
from pathlib import Path
from typing import Callable, Iterable, Mapping, Sequence

from . import keys, manifest
from .asking import ask_missing
from .errors import ConfigError
from .grading.judge import JudgeItem, JudgeQueue, SOLUTION_TAIL_CHARS, judge_request
from .llm.batch import end_cycle
from .llm.types import Ask, Endpoint
from .stage import Role, Stage
from .store import RunStore
from .summaries import USAGE_FILE, record_usage, usage_since, usage_snapshot, write_summary


class StageRun:
    """One stage at work in one run folder: its inputs, endpoints, settings, stores and loop."""

    def __init__(self, stage: Stage, items, endpoints: Mapping[str, list[Endpoint]], client, out_dir: str | Path,
                 settings):
        self.stage, self.items, self.endpoints, self.client, self.settings = stage, items, dict(endpoints), client, settings
        self.out_dir = Path(out_dir)
        self.estimate = getattr(client, "estimate", None) is not None
        self.requests = 0  # requests this run sent (not answered from the store)
        self.counts: Counter = Counter()  # what the stage counts of this run alone
        self.failures: list[tuple[str, str]] = []  # (role, reason) of each request of this run that finally failed
        self.result = None  # what `finish` computed, for `summarize`
        self.started = time.monotonic()
        self.usage_before = usage_snapshot(client)
        self._stores: dict[str, RunStore] = {}
        self._role_of = {endpoint: role for role, group in self.endpoints.items() for endpoint in group}
        self.judge = JudgeQueue(getattr(settings, "judge", None), self.ask, desc=f"judge ({stage.name})")
        self.fixed = {self.part(role, e): stage.decisive(e, settings) for role, group in self.endpoints.items() for e in group}
        self._remembered = False

    def part(self, role: str, endpoint: Endpoint) -> str:
        """How the run folder's manifest names one endpoint: by its role alone when the stage asks
        one (renaming the corrector does not make it another corrector), else role and label."""
        roles = {r.name: r for r in self.stage.roles}
        return f"{role} {endpoint.label}" if role in roles and roles[role].many else role

    # -- stores ------------------------------------------------------------------------------

    def store(self, name: str) -> RunStore:
        """The run store of output `name` in this folder, opened on first use (read-only in a
        cost preview, which writes nothing)."""
        if name not in self._stores:
            fields = getattr(self.stage, "store_fields", {}).get(name)
            self._stores[name] = RunStore(self.out_dir / name, fields, read_only=self.estimate,
                                          before_append=self._remember)
        return self._stores[name]

    def _remember(self, record: dict) -> bool:
        """Save the folder's settings before the first answer is stored; the record of a failed
        request (`Stage.answered` is False) holds nothing to protect, so it waits."""
        if self._remembered:
            return True
        if not self.stage.answered(record):
            return False
        self._remembered = True
        from .manifest import endpoint_info

        saved = {self.part(role, e): {**endpoint_info(e), **self.settings.model_dump()}
                 for role, group in self.endpoints.items() for e in group}
        manifest.remember(self.out_dir, self.stage.name, self.fixed, saved or {"settings": self.settings.model_dump()},
                          [*self.stage.outputs, USAGE_FILE])
        return True

    def close(self) -> None:
        for store in self._stores.values():
            store.close()
        self._stores.clear()

    def __enter__(self) -> "StageRun":
        if not self.estimate:
            judge = [self.judge.judge] if self.judge.judge is not None else []
            keys.require([e for group in self.endpoints.values() for e in group] + judge, f"{self.stage.name}: ")
            if (self.out_dir / manifest.MANIFEST).exists():
                manifest.check(self.out_dir, self.stage.name, self.fixed)
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- the one request loop ----------------------------------------------------------------

    async def ask(self, asks: Iterable[Ask], on_reply: Callable, desc: str | None = None, role: str | None = None,
                  done: Callable[[str], bool] | None = None) -> int:
        """Send the asks this folder does not hold yet through the one loop (see `asking`);
        `on_reply(ask, completion)` stores each as it arrives. Returns how many were new."""
        asks = list(asks)
        if role is None:
            role = self._role_of.get(asks[0].endpoint, "model") if asks else "model"
        def handle(ask: Ask, completion) -> None:
            if not completion.ok:
                self.failures.append((role, completion.error or "request failed"))
            on_reply(ask, completion)

        new = await ask_missing(self.client, asks, done or (lambda record_id: self.stage.done(self, record_id)),
                                handle, desc=desc or self.stage.name, role=role)
        self.requests += new
        return new

    def failed(self, role: str | None = None) -> list[str]:
        """The reasons of this run's failed requests (of one role: "judge", "generator", ...)."""
        return [reason for who, reason in self.failures if role is None or who == role]

    async def settle(self) -> None:
        """Ask the judge about the replies the rules could not grade (see `JudgeQueue`)."""
        await self.judge.settle()


def endpoints_for(stage: Stage, endpoints, settings) -> dict[str, list[Endpoint]]:
    """`endpoints` (a list for a one-role stage, or role name -> endpoints) checked against the
    stage's roles: a role that is needed has its endpoints, a one-endpoint role has one."""
    if not isinstance(endpoints, Mapping):
        roles = [r for r in stage.roles if r.is_needed(settings)]
        if len(roles) > 1:
            raise TypeError(f"stage {stage.name} asks {len(roles)} roles: pass endpoints by role name")
        endpoints = {roles[0].name: list(endpoints)} if roles else {}
    checked: dict[str, list[Endpoint]] = {}
    for role in stage.roles:
        group = list(endpoints.get(role.name) or [])
        if not role.is_needed(settings):
            continue
        if not group:
            raise ConfigError(f"{stage.name}: no {role.name} endpoint given ({role.option} SPEC)")
        if not role.many and len(group) != 1:
            raise ConfigError(f"the {stage.name} stage takes one {role.name} endpoint, not {len(group)}")
        labels = [e.label for e in group]
        if len(set(labels)) != len(labels):
            raise ConfigError(f"{role.name} names must differ (got {', '.join(labels)}); name them NAME=MODEL")
        checked[role.name] = group
    return checked


async def run_stage(stage: Stage, items, endpoints, client, out_dir: str | Path, settings=None):
    """Run `stage` on `items` in `out_dir` and return its summary (also written to
    `out_dir/<stage>_summary.json`). With a cost preview client, price it and return None."""
    settings = settings if settings is not None else stage.settings()
    endpoints = endpoints_for(stage, endpoints, settings)
    with StageRun(stage, items, endpoints, client, out_dir, settings) as run:
        if run.estimate:
            preview(run)
            await run.ask(stage.plan(items, endpoints, settings), lambda ask, completion: None)
            return None
        try:
            await stage.run(run)
            end_cycle(getattr(client, "batch_dir", None))  # nothing of this stage waits: failed items may be retried
            summary = stage.summarize(run)
        except BaseException:  # stopped early (budget, pending batches, failures, Ctrl-C): what it paid stays counted
            with contextlib.suppress(Exception):  # a full disk: the error that stopped the stage is the one to show
                record_usage(run.out_dir, stage.name, usage_since(client, run.usage_before))
            raise
    summary.requests = run.requests
    summary.elapsed_s = round(time.monotonic() - run.started, 3)
    summary.usage = usage_since(client, run.usage_before)
    summary.judge_pending = run.judge.pending
    summary.failure_reasons = Counter(" ".join(reason.split())[:160] for reason in run.failed()).most_common(5)
    if hasattr(client, "usage_lines") and hasattr(summary, "usage_lines"):
        summary.usage_lines = list(client.usage_lines())
    write_summary(run.out_dir / stage.summary_file, summary)
    record_usage(run.out_dir, stage.name, summary.usage)
    return summary


def preview(run: StageRun) -> None:
    """Count the judge into a cost preview, as a bound: every reply the stage may get is taken to
    need the judge, shown its question, gold answer and a full tail of solution text."""
    judge = run.judge.judge
    if judge is None:
        return
    asks = [ask for ask in run.stage.plan(run.items, run.endpoints, run.settings) if not run.stage.done(run, ask.id)]
    items = [item for item in (run.stage.judge_item(ask) for ask in asks) if item is not None]
    for item in items:
        run.client.estimate.add(judge, judge_request(JudgeItem("x" * SOLUTION_TAIL_CHARS, item.gold, item.question)))
    note = (f"judge {judge.label}: counted as if every reply of a stage that grades needed it (at most; the rules "
            "settle almost all)")
    if items and note not in run.client.estimate.notes:
        run.client.estimate.notes.append(note)


def role_specs(stage: Stage, given: Mapping[str, Sequence[str]], settings) -> list[tuple[Role, list[str]]]:
    """Each needed role with its endpoint specs: the ones given, else the role's default."""
    chosen = []
    for role in stage.roles:
        if not role.is_needed(settings):
            continue
        specs = [s for s in given.get(role.name, ()) if s]
        if not specs:
            default = role.default_spec()
            if default is None:
                raise ConfigError(f"{stage.name}: {role.option} SPEC is required")
            specs = [default]
        chosen.append((role, specs))
    return chosen


@contextlib.contextmanager
def open_stage(stage: Stage, given: Mapping[str, Sequence], settings, start: bool = True):
    """Open the endpoints `stage` asks (the specs given per role, else each role's default) and
    its judge, starting the embedded model once if any of them is it; yields the endpoints by
    role and the settings with the judge made reachable. With `start` False (a cost preview)
    the specs are only parsed: no server is started."""
    from .llm.endpoints import open_endpoints, parse_endpoint

    chosen = role_specs(stage, given, settings)
    judge = getattr(settings, "judge", None)
    flat = [spec for _, specs in chosen for spec in specs] + ([judge] if judge is not None else [])
    opening = open_endpoints(flat) if start else contextlib.nullcontext(
        [spec if not isinstance(spec, str) else parse_endpoint(spec) for spec in flat])
    with opening as opened:
        if judge is not None:
            settings = settings.model_copy(update={"judge": opened[-1]})
        endpoints, start = {}, 0
        for role, specs in chosen:
            endpoints[role.name] = list(opened[start:start + len(specs)])
            start += len(specs)
        yield endpoints, settings

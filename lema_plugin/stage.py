"""What a stage is, and the registry that every part of the tool iterates.

A stage is one object: its name, its settings model (the only home of its defaults, decisive
fields marked), the endpoint roles it asks, what it reads and writes, and four methods:

- `plan(items, endpoints, settings) -> [Ask]`: every request the stage may send for these inputs,
  each under the id its record is stored with. `lema run --check` counts it, `--estimate` prices
  what the run folder does not hold yet, so the two always agree;
- `to_record(run, ask, completion)`: store one reply (the request loop calls it as replies arrive);
- `run(run)`: the stage's work; by default "ask the plan, store each reply, finish", and stages
  that ask in rounds (corrections attempt by attempt, evolution's questions then answers)
  override it, still asking through `run.ask`, the one request loop;
- `summarize(run) -> summary`: computed from what the run folder holds, with headline rows for
  the run summary and funnel steps for the report. From the summary file, `funnel` gives the
  report's row, `section` a table of the stage's own for the report (if any), and `compare` two
  of its folders side by side for `lema compare A B` (if it has such a view).

The command line (`lema NAME`), a recipe's section, the pipeline's order, `--check`,
`--estimate`, the run summary and the report's funnel are all built from the registered stages;
nothing else lists them. Built-in stages register through the same door a third-party package
uses: a module with a `register_stages(register)` function, named in `DEFAULT_PLUGINS` for the
built-ins and by an entry point in the `lema_plugin.stages` group for a plugin:

    [options.entry_points]
    lema_plugin.stages =
        critique = my_package.critique

This module stays light (pydantic and the shared types only): `lema --help` and a recipe load
the registry without the LLM client.
"""
from __future__ import annotations

import importlib
import logging
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any, Callable, ClassVar, Sequence

from .errors import ConfigError
from .problems import ProblemSource
from .settings import Settings

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "lema_plugin.stages"
DEFAULT_PLUGINS = (  # the built-in stages, in the order `lema --help` lists them
    "lema_plugin.sample.spec",
    "lema_plugin.import_paths.spec",
    "lema_plugin.correct.spec",
    "lema_plugin.cot.spec",
    "lema_plugin.evolve.spec",
    "lema_plugin.first_error.spec",
    "lema_plugin.score_corrector.spec",
)


@dataclass(frozen=True)
class Role:
    """An endpoint a stage asks, as the command line, a recipe and the messages name it.

    `default` is the spec used when the option is not given (a function for one read from the
    environment at run time); None makes the option required. In a recipe the endpoint's keys sit
    in the stage's own section (`recipe_key` None) or under `recipe_key`; `recipe_default` names
    the recipe section whose endpoint stands in when the key is left out ("corrector", "generators"),
    and `needed(settings)` says when the stage asks it at all.
    """

    name: str  # "generator", "corrector", "cot model": in start lines, errors and help
    option: str  # "--generator"
    help: str
    many: bool = False
    default: str | Callable[[], str] | None = "embedded"
    default_text: str | None = None
    recipe_key: str | None = None
    recipe_default: str | None = None
    needed: Callable[[Any], bool] | None = None
    needed_text: str | None = None  # the recipe's error when the role is needed and missing
    recipe_help: str | None = None  # the recipe key's meaning, when `help` speaks of the option

    def default_spec(self) -> str | None:
        return self.default() if callable(self.default) else self.default

    def is_needed(self, settings) -> bool:
        return self.needed is None or bool(self.needed(settings))


@dataclass(frozen=True)
class Input:
    """What a stage reads. `artifact` is the name other stages produce it under ("problems",
    "mistakes", "corrections"); on the command line it is a file option (`--mistakes PATH`), the
    problem options (`--dataset/--split/--data-file/--limit`, one model for every command), or
    positional FILES. `load(source, limit, options)` reads it, checking every field before
    anything is paid for; `options` is a settings model of reading options of its own.

    An input with neither a file option nor positional files is read from its options alone, as
    the problems are: `load(options)` (or `options.load()` when no `load` is given) picks the
    source itself, say a hub dataset by default and a file the options name."""

    artifact: str
    option: str | None = None  # "--mistakes"; None for positional files and inputs read from their options
    help: str = ""
    load: Callable[..., Any] | None = None
    limit_help: str | None = "Use only the first N."
    options: type[Settings] | None = None
    positional: bool = False

    @property
    def problems(self) -> bool:
        return self.artifact == "problems"

    @property
    def from_options(self) -> bool:
        """Read from its options alone: no file option, no positional files (the problems are)."""
        return self.option is None and not self.positional


PROBLEMS = Input("problems", help="Which problems.", options=ProblemSource)


class Stage:
    """One stage of the pipeline (see the module docstring). Subclasses set the class attributes
    and the methods they need; an instance is what is registered."""

    name: ClassVar[str]  # the command, the run sub-folder, `<name>_summary.json`
    help: ClassVar[str]  # the command's help: first line, blank line, details
    settings: ClassVar[type[Settings]]
    roles: ClassVar[tuple[Role, ...]] = ()
    input: ClassVar[Input] = PROBLEMS
    outputs: ClassVar[tuple[str, ...]] = ()  # files written in the run folder (moved by --fresh)
    produces: ClassVar[str | None] = None  # the artifact later stages read ("mistakes", ...)
    product_file: ClassVar[str | None] = None  # ... from this output file
    product_name: ClassVar[str] = "records"  # what "nothing produced" names ("mistakes")
    failures_file: ClassVar[str | None] = None  # the output that records failed requests with their reasons
    projection: ClassVar[str] = ""  # how `project` stands in for the real product, for a preview's notes
    in_pipeline: ClassVar[bool] = True  # a section of `lema run` recipes
    optional: ClassVar[bool] = True  # off in a recipe unless `enabled: true`
    recipe_key: ClassVar[str | None] = None  # the recipe section (default: the name, - as _)
    recipe_many: ClassVar[bool] = False  # a list of sections, the stage run once per section
    recipe_hoisted: ClassVar[tuple[str, ...]] = ()  # settings given once at the recipe's top level
    recipe_extra: ClassVar[dict[str, tuple[Any, Any]]] = {}  # more section keys: name -> (type, Field)
    recipe_help: ClassVar[str | None] = None  # the section's meaning in the schema (default: the first help line)
    option_spellings: ClassVar[dict[str, tuple[str, ...]]] = {}  # settings field -> option names
    old_spellings: ClassVar[dict[str, tuple[str, ...]]] = {}  # settings field -> hidden old option names
    store_fields: ClassVar[dict[str, dict]] = {}  # output -> the field types a stored record must have
    examples: ClassVar[str] = ""
    chain_label: ClassVar[str] = ""  # a feedback stage: how the run summary names its chain's rows ("evolved")
    verb: ClassVar[str | None] = None  # "no mistakes to correct": the stage's name unless set

    # -- what the tool derives from the declaration -----------------------------------------

    @property
    def key(self) -> str:
        """The recipe section's key."""
        return self.recipe_key or self.name.replace("-", "_")

    @property
    def summary_file(self) -> str:
        return f"{self.name.replace('-', '_')}_summary.json"

    @property
    def folder(self) -> str:
        """The stage's sub-folder of a `lema run` folder."""
        return self.name

    def one_line(self) -> str:
        return " ".join(self.help.strip().split("\n\n")[0].split())

    # -- the four methods -------------------------------------------------------------------

    def plan(self, items, endpoints: dict[str, list], settings) -> list:
        """Every request the stage may send for `items` (`asking.Ask`s, each with its id)."""
        return []

    def to_record(self, run, ask, completion) -> None:
        """Store one reply (`run.store(...)`, through `run.judge` when the rules may not settle it)."""

    async def run(self, run) -> None:
        """Ask what the plan holds and the store does not; hand each reply to `to_record`;
        settle the judge's questions; then `finish`."""
        await run.ask(self.plan(run.items, run.endpoints, run.settings),
                      lambda ask, completion: self.to_record(run, ask, completion))
        await run.settle()
        self.finish(run)

    def answered(self, record: dict) -> bool:
        """Whether a stored record holds an answer (not the record of a failed request): the run
        folder remembers its settings at the first one, so a run whose requests all failed (a
        misspelt model the server does not list) leaves nothing that refuses the fixed rerun."""
        return True

    def done(self, run, record_id: str) -> bool:
        """Whether the record of `record_id` is stored (by default: in the first output)."""
        return run.store(self.outputs[0]).get(record_id) is not None

    def finish(self, run) -> None:
        """Derive the final files from the stores (after every reply is in)."""

    def summarize(self, run):
        """The stage's summary (see `summaries.StageSummary`), computed from the run folder."""
        raise NotImplementedError

    def check_section(self, section) -> None:
        """Refuse (ValueError) a recipe section whose keys cannot work together."""

    def judge_item(self, ask):
        """What the judge would be shown about the reply to `ask` (question and gold answer; the
        solution left empty), for a preview's bound; None for a stage that never grades."""
        return None

    def funnel(self, summary: dict) -> "Funnel":
        """The report's funnel row, from the stage's summary file (`summary.to_dict()`)."""
        return Funnel(self.name, [("records", int(summary.get("produced") or 0))])

    def section(self, summary: dict) -> "Section | None":
        """A section of the report of the stage's own, from its summary file, for what a funnel
        row cannot say (a score table); None, the default, when the row is enough."""
        return None

    def compare(self, a: dict, b: dict, a_name: str, b_name: str) -> "Section | None":
        """Two of the stage's run folders side by side, from their summary files, for `lema compare
        A B`; None, the default, when the stage has no such view."""
        return None

    # -- plans made before the upstream stage ran (--check, --estimate) -----------------------

    def project(self, items, settings) -> list:
        """What this stage would produce from `items` at most, in the shape the next stage
        loads: a stand-in so a plan can be made before this stage has run."""
        return []

    def decisive(self, endpoint, settings) -> dict:
        """What decides a record for one endpoint: its model and mode and the marked settings."""
        return {"model": endpoint.model, "mode": endpoint.mode, **settings.decisive_values()}


# -- the registry ----------------------------------------------------------------------------

_stages: dict[str, Stage] = {}
_loaded = False
_version = 0  # bumped on every registration, so models built from the registry are rebuilt


def register(stage: Stage) -> Stage:
    """Add `stage` (the door built-ins and plugins both use); a name taken twice is refused."""
    global _version
    name = stage.name
    if name in _stages and type(_stages[name]) is not type(stage):
        raise ConfigError(f"stage {name!r} is registered twice ({type(_stages[name]).__module__} and "
                          f"{type(stage).__module__})")
    _stages[name] = stage
    _version += 1
    return stage


def _load_module(name: str) -> None:
    module = importlib.import_module(name)
    hook = getattr(module, "register_stages", None)
    if hook is None:
        raise ConfigError(f"stage plugin {name}: no register_stages(register) function")
    hook(register)


def load(reload: bool = False) -> None:
    """Register the built-in stages, then every plugin's (entry points, group `lema_plugin.stages`)."""
    global _loaded, _version
    if _loaded and not reload:
        return
    if reload:
        _stages.clear()
        _version += 1
    _loaded = True
    for name in DEFAULT_PLUGINS:
        _load_module(name)
    for entry in metadata.entry_points(group=ENTRY_POINT_GROUP):
        try:
            _load_module(entry.value.split(":")[0])
        except ImportError as exc:  # a broken plugin must not take the whole tool down
            log.warning("stage plugin %s (%s) could not be loaded: %s", entry.name, entry.value, exc)


def version() -> int:
    load()
    return _version


def stages() -> list[Stage]:
    """Every registered stage, in registration order."""
    load()
    return list(_stages.values())


def get(name: str) -> Stage:
    load()
    try:
        return _stages[name]
    except KeyError:
        raise ConfigError(f"no stage {name!r} (known: {', '.join(_stages)})") from None


def pipeline() -> list[Stage]:
    """The stages of a `lema run`, in the order they run: a stage comes after every stage that
    produces what it reads. A stage that produces what an earlier one reads (evolution's new
    problems) feeds back: its products are run through that earlier chain, so the stages that
    read what the chain makes (the corrections) come after it. Ties keep registration order."""
    chosen = [s for s in stages() if s.in_pipeline]
    producers: dict[str, list[Stage]] = {}
    for stage in chosen:
        if stage.produces:
            producers.setdefault(stage.produces, []).append(stage)
    for stage in chosen:  # a feedback stage also extends what the chain it feeds produces
        for made in feedback_chain(stage, chosen):
            if made.produces and stage not in producers.setdefault(made.produces, []):
                producers[made.produces].append(stage)
    ordered: list[Stage] = []
    waiting = list(chosen)
    while waiting:
        for stage in waiting:
            before = [p for p in producers.get(stage.input.artifact, []) if p is not stage
                      and p not in ordered and stage not in feedback_chain(p, chosen)]
            if not before:
                ordered.append(stage)
                waiting.remove(stage)
                break
        else:
            raise ConfigError("the registered stages read and produce in a circle: "
                              + ", ".join(s.name for s in waiting))
    return ordered


def feedback_chain(stage: Stage, chosen: Sequence[Stage] | None = None) -> list[Stage]:
    """For a stage that produces what a run starts from (evolve: new problems), the stages that
    lead from it back to what this stage reads (sample, correct); else []."""
    chosen = [s for s in (chosen or stages()) if s.in_pipeline]
    if stage.produces != PROBLEMS.artifact or stage.input.artifact == PROBLEMS.artifact:
        return []
    chain: list[Stage] = []
    artifact = stage.produces
    while artifact != stage.input.artifact:
        step = next((s for s in chosen if s.input.artifact == artifact and s is not stage and s.produces
                     and s not in chain and not s.optional), None)
        if step is None:
            return []
        chain.append(step)
        artifact = step.produces
    return chain


@dataclass
class Funnel:
    """One stage's row of the report's funnel: what went in, what came out, why the rest fell out."""

    stage: str
    steps: list[tuple[str, int]] = field(default_factory=list)  # (label, count), in order
    dropped: dict[str, int] = field(default_factory=dict)


@dataclass
class Section:
    """A stage's own section of the report: a title, one table of plain values and a note. The
    report escapes and lays it out, so a stage never writes HTML."""

    title: str
    headers: list[str]
    rows: list[list]
    note: str = ""

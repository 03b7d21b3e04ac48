"""One stage object: a stage registered from outside the package (as a plugin would, through an
entry point) gets a command, a recipe section, a `--check` count, an `--estimate` line, a
run-summary row and a report funnel row, with no other file edited; decisive fields are marked
once and every key derives from the mark; `--check` and `--estimate` come from one plan."""
from __future__ import annotations

import json
import re
import sys
import textwrap

import pytest
import yaml
from click.testing import CliRunner

from lema_plugin import stage as registry
from lema_plugin.cli import main
from lema_plugin.errors import ConfigError
from lema_plugin.llm.types import Endpoint
from lema_plugin.settings import Settings, decisive
from lema_testing.scripted_server import ScriptedServer, prompt_text

PLUGIN = '''
from dataclasses import asdict, dataclass, field

from pydantic import Field

from lema_plugin.llm.types import Ask, Request
from lema_plugin.records import make_id
from lema_plugin.settings import Settings, decisive
from lema_plugin.stage import Funnel, Role, Stage


class CritiqueSettings(Settings):
    samples: int = Field(1, ge=1, description="Critiques per question.")
    temperature: float = decisive(0.0, ge=0, description="Sampling temperature of the critic.")


@dataclass
class CritiqueSummary:
    questions: int
    critiques: int
    requests: int = 0
    usage: dict = field(default_factory=dict)

    @property
    def produced(self):
        return self.critiques

    def to_dict(self):
        return asdict(self)

    def lines(self):
        return [f"critiques: {self.critiques} of {self.questions} questions"]

    def headline(self):
        return [("critiques written", str(self.critiques))]


class Critique(Stage):
    name = "critique"
    help = "Critique every question (a stage from a plugin)."
    settings = CritiqueSettings
    roles = (Role("critic", "--critic", "The critic endpoint (SPEC below).", recipe_key="critic"),)
    outputs = ("critiques.jsonl", "critique_summary.json")
    produces = "critiques"
    product_file = "critiques.jsonl"
    product_name = "critiques"

    def plan(self, items, endpoints, settings):
        critic = endpoints["critic"][0]
        return [Ask(make_id("critique", p.id, self.decisive(critic, settings), k), critic,
                    Request(messages=(("user", "Critique: " + p.question),), temperature=settings.temperature,
                            sample_index=k), p)
                for p in items for k in range(settings.samples)]

    def to_record(self, run, ask, completion):
        if completion.ok:
            run.store("critiques.jsonl").append({"id": ask.id, "problem_id": ask.owner.id, "text": completion.text})

    def summarize(self, run):
        return CritiqueSummary(len(run.items), len(run.store("critiques.jsonl")))

    def funnel(self, summary):
        return Funnel(self.name, [("questions", summary["questions"]), ("critiques", summary["critiques"])])


def register_stages(register):
    register(Critique())
'''


@pytest.fixture
def plugin(tmp_path, monkeypatch):
    """A third-party package with a stage, installed the way pip leaves one: a module and a
    dist-info folder whose entry point names it."""
    site = tmp_path / "site"
    (site / "toy_critique").mkdir(parents=True)
    (site / "toy_critique" / "__init__.py").write_text(PLUGIN)
    info = site / "toy_critique-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: toy-critique\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[lema_plugin.stages]\ncritique = toy_critique\n")
    monkeypatch.syspath_prepend(str(site))
    registry.load(reload=True)
    yield registry.get("critique")
    monkeypatch.delitem(sys.modules, "toy_critique", raising=False)
    sys.path.remove(str(site))
    registry.load(reload=True)


def problems_file(path, count=3):
    path.write_text("".join(json.dumps({"id": f"p{i}", "dataset": "gsm8k", "question": f"What is {i} + 1?",
                                        "answer": str(i + 1)}) + "\n" for i in range(count)))
    return path


def answer(body, attempt):
    text = prompt_text(body)
    if text.startswith("Critique:"):
        return "A fair question."
    if "Incorrect Step" in text or "incorrect step" in text.lower():
        return "Incorrect Step: Step 1.\nExplanation: wrong.\nCorrect Solution: Step 1: so.\nThe answer is 1."
    return "Step 1: I guess.\nThe answer is 999."


def test_a_plugin_stage_gets_a_command_with_generated_options(plugin, tmp_path):
    assert "critique" in CliRunner().invoke(main, ["--help"]).output
    help_text = CliRunner().invoke(main, ["critique", "--help"]).output
    for option in ("--dataset", "--data-file", "--limit", "--critic", "--samples", "--temperature", "--out",
                   "--fresh", "--max-cost", "--estimate", "--concurrency"):
        assert option in help_text, option
    assert re.search(r"other sampling settings\s+\(--temperature\)", help_text)  # from the decisive mark
    data = problems_file(tmp_path / "p.jsonl")
    out = tmp_path / "out"
    with ScriptedServer(answer) as server:
        args = ["critique", "--data-file", str(data), "--critic", f"c=m@{server.base_url}", "--samples", "2",
                "--out", str(out), "-q"]
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 0, result.output
        assert server.request_count == 6
        summary = json.loads((out / "critique_summary.json").read_text())
        assert summary["critiques"] == 6 and summary["usage"]["total"]["requests"] == 6  # the client's count
        again = CliRunner().invoke(main, args)  # resumes: nothing asked twice
        assert again.exit_code == 0 and server.request_count == 6
        refused = CliRunner().invoke(main, [*args[:-3], "--temperature", "0.5", "--out", str(out), "-q"])
    assert refused.exit_code == 1 and "temperature 0.0, now 0.5" in refused.output
    assert len((out / "critiques.jsonl").read_text().splitlines()) == 6


def recipe(path, server, **extra):
    body = {"limit": 2, "out": str(path.parent / "run"),
            "generators": [{"name": "gen", "model": "m", "base_url": server.base_url, "samples": 2}],
            "corrector": {"name": "fixer", "model": "c", "base_url": server.base_url},
            "export": {"mixes": ["lema", "cot-only"]}, **extra}
    path.write_text(yaml.safe_dump(body))
    return path


def test_a_plugin_stage_gets_a_recipe_section_check_estimate_summary_and_report(plugin, tmp_path, shared_data,
                                                                               monkeypatch):
    monkeypatch.setenv("LEMA_DATA_DIR", str(shared_data))
    with ScriptedServer(answer) as server:
        path = recipe(tmp_path / "r.yaml", server,
                      critique={"enabled": True, "critic": {"name": "critic", "model": "k", "base_url": server.base_url},
                                "samples": 3},
                      export={"mixes": ["lema", "cot-only"], "allow_no_corrections": True})  # this corrector verifies none
        check = CliRunner().invoke(main, ["run", str(path), "--check"])
        assert check.exit_code == 0, check.output
        assert "critique:\n" in check.output and re.search(r"^#   critique +6$", check.output, re.M)  # 2 problems x 3
        estimate = CliRunner().invoke(main, ["run", str(path), "--estimate"])
        assert estimate.exit_code == 0, estimate.output
        assert re.search(r"^critic\s+6\s", estimate.output, re.M)
        assert server.request_count == 0
        run = CliRunner().invoke(main, ["run", str(path), "--no-train"])
        assert run.exit_code == 0, run.output
    assert re.search(r"^critiques written\s+6$", run.output, re.M)  # the stage's own run-summary row
    page = (tmp_path / "run" / "report.html").read_text()
    assert "questions 2 \u2192 critiques 6" in page  # its funnel row, in the report


def test_check_and_estimate_come_from_one_plan_first_error_and_judge_included(tmp_path, shared_data, monkeypatch):
    monkeypatch.setenv("LEMA_DATA_DIR", str(shared_data))
    with ScriptedServer(answer) as server:
        path = recipe(tmp_path / "r.yaml", server, first_error={"enabled": True, "samples": 2},
                      evolve={"enabled": True, "per_seed": 1, "samples": 2},
                      cot={"source": "model", "model": {"name": "strong", "model": "s", "base_url": server.base_url}},
                      judge={"name": "judge", "model": "j", "base_url": server.base_url})
        check = CliRunner().invoke(main, ["run", str(path), "--check"])
        estimate = CliRunner().invoke(main, ["run", str(path), "--estimate"])
        assert server.request_count == 0
    assert check.exit_code == 0 and estimate.exit_code == 0, check.output + estimate.output
    planned = {name: int(count.replace(",", "")) for name, count in
               re.findall(r"^#   (\S+)\s+(?:at most )?([\d,]+)$", check.output, re.M)}
    assert set(planned) == {"sample", "correct", "evolve", "cot", "first-error", "judge"}
    assert all(planned[name] > 0 for name in planned)
    priced = {name: int(count.replace(",", "")) for name, count in
              re.findall(r"^(\S+)\s+([\d,]+)\s+[\d,]+\s+[\d,]+", estimate.output, re.M)}
    # evolution's chain (sample and correct on the new questions) is priced under the same endpoints
    assert sum(v for k, v in priced.items() if k != "total") == priced["total"]
    assert priced["total"] == sum(planned.values())
    assert priced["judge"] == planned["judge"]


def test_a_renamed_decisive_field_changes_the_manifest_key():
    class Before(Settings):
        temperature: float = decisive(0.7)
        samples: int = 4

    class After(Settings):  # the same setting, renamed: the mark travels with it
        answer_temperature: float = decisive(0.7)
        samples: int = 4

    assert Before().decisive_values() == {"temperature": 0.7}
    assert After().decisive_values() == {"answer_temperature": 0.7}
    assert Before().decisive_values() != After().decisive_values()
    assert Before(samples=9).decisive_values() == Before().decisive_values()  # more samples add to the records


@pytest.mark.parametrize("stage", registry.stages(), ids=lambda s: s.name)
def test_every_decisive_field_of_every_stage_reaches_its_key(stage):
    """Changing any marked field changes what the run folder keeps fixed (and so the record ids,
    which every stage hashes from `stage.decisive`); an unmarked field never does."""
    endpoint = Endpoint("m", ("http://127.0.0.1:9/v1",))
    base = stage.settings()
    key = stage.decisive(endpoint, base)
    for name, info in stage.settings.model_fields.items():
        changed = _another_value(stage.settings, name, getattr(base, name))
        if changed is _SKIP:
            continue
        other = stage.decisive(endpoint, base.model_copy(update={name: changed}))
        if name in stage.settings.decisive_fields():
            assert other != key, f"{stage.name}.{name} is marked decisive but does not change the key"
        elif name not in ("samples",):  # samples resolves the corrector's default temperature
            assert other == key, f"{stage.name}.{name} changes the key without a mark"


def test_evolution_answer_settings_are_decisive():
    """The bug that motivated the marks: the answer temperature and token limit were dropped from
    evolution's manifest key, so a rerun with another one was not refused."""
    from lema_plugin.evolve import EvolveSettings

    assert {"temperature", "max_tokens", "generate_temperature", "generate_max_tokens"} <= set(
        EvolveSettings.decisive_fields())


_SKIP = object()


def _another_value(model, name, value):
    kind = model.model_fields[name].annotation
    if name == "judge" or isinstance(value, tuple):
        return _SKIP
    if isinstance(value, bool):
        return not value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value / 2 if isinstance(value, float) and value else (value + 1 if isinstance(value, int) else 0.5)
    if value is None:
        return 0.5 if "float" in str(kind) else 3 if "int" in str(kind) else _SKIP
    if name == "prompt":
        return "continue_solution"
    if isinstance(value, str) and "Literal" in str(kind):
        import typing

        options = [v for v in typing.get_args(typing.get_args(kind)[0] if typing.get_origin(kind) is not typing.Literal
                                              else kind) if v != value]
        return options[0] if options else _SKIP
    return _SKIP


def test_a_stage_name_registered_twice_by_different_packages_is_refused():
    class Other(registry.Stage):
        name = "sample"
        settings = Settings

    with pytest.raises(ConfigError, match="registered twice"):
        registry.register(Other())


def test_pipeline_order_comes_from_what_stages_read_and_produce():
    order = [s.name for s in registry.pipeline()]
    assert order.index("sample") < order.index("correct") < order.index("evolve") < order.index("first-error")
    assert [s.name for s in registry.feedback_chain(registry.get("evolve"))] == ["sample", "correct"]
    assert "import" not in order  # an alternative to sampling, not a step of a run
    assert textwrap.dedent(registry.get("correct").one_line()).startswith("Correct mistakes")


def test_a_stage_preview_starts_no_server_and_writes_nothing(tmp_path, monkeypatch):
    """`--estimate` with the default embedded generator prices the plan without starting it."""
    import lema_plugin.llm.endpoints as endpoints

    def refuse(*args, **kwargs):
        raise AssertionError("a preview started the embedded model")

    monkeypatch.setattr(endpoints, "embedded_server", refuse)
    data = problems_file(tmp_path / "p.jsonl")
    result = CliRunner().invoke(main, ["sample", "--data-file", str(data), "-k", "2", "--out", str(tmp_path / "out"),
                                       "--estimate"])
    assert result.exit_code == 0, result.output
    assert re.search(r"^smollm2-135m\s+6\s", result.output, re.M)  # 3 problems x 2 paths, priced
    assert not (tmp_path / "out").exists()

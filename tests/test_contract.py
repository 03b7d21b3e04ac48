"""The stage contract holds: no import cycles, the library never imports the CLI, every default
is defined once, user errors are one line while bugs keep their traceback, recipe values are
never read as spec syntax, and the run summary's tokens are what the client paid for."""
from __future__ import annotations

import ast
import importlib
import inspect
import json
import pkgutil
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

import lema_plugin
from lema_plugin.cli import main
from lema_plugin.correct import CorrectSettings
from lema_plugin.cot import CotSettings
from lema_plugin.evolve import EvolveSettings
from lema_plugin.llm import LLMClient
from lema_testing.scripted_server import ScriptedServer
from lema_plugin.recipe import Recipe
from lema_plugin.sample import SampleSettings
from lema_plugin.settings import ClientSettings

PACKAGE = Path(lema_plugin.__file__).parent


def all_modules() -> list[str]:
    return sorted(m.name for m in pkgutil.walk_packages([str(PACKAGE)], "lema_plugin.")
                  if ".lm_eval_tasks" not in m.name and not m.name.endswith("__main__"))


def module_file(name: str) -> Path:
    parts = name.split(".")[1:]
    path = PACKAGE.joinpath(*parts)
    return path / "__init__.py" if path.is_dir() else path.with_suffix(".py")


def imported_modules(node: ast.AST, name: str, modules: set[str]) -> set[str]:
    """The package modules one import statement of module `name` names (none for other nodes)."""
    if isinstance(node, ast.Import):
        targets = [alias.name for alias in node.names]
    elif isinstance(node, ast.ImportFrom):
        base = node.module or ""
        if node.level:
            package = name if module_file(name).name == "__init__.py" else name.rsplit(".", 1)[0]
            anchor = package.split(".")
            base = ".".join(anchor[: len(anchor) - (node.level - 1)] + ([base] if base else []))
        targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names]
    else:
        return set()
    found = set()
    for target in targets:
        while target and target not in modules:
            target = target.rpartition(".")[0]
        if target and target != name:
            found.add(target)
    return found


def import_graph() -> dict[str, set[str]]:
    """module -> the package modules it imports, at the top or inside a function."""
    modules = set(all_modules()) | {"lema_plugin"}
    return {
        name: set().union(*(imported_modules(node, name, modules)
                            for node in ast.walk(ast.parse(module_file(name).read_text(encoding="utf-8")))))
        for name in modules - {"lema_plugin"}
    }


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                item = stack.pop()
                on_stack.discard(item)
                group.append(item)
                if item == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_every_module_imports():
    for name in all_modules():
        importlib.import_module(name)


# grading/extract <-> grading/normalize is being untangled with the grader's LaTeX scanning (issue 13's
# grading items); once that lands this list is empty and must stay so.
KNOWN_CYCLES: list[list[str]] = []


def test_no_module_imports_another_in_a_cycle():
    found = cycles(import_graph())
    assert [c for c in found if c not in KNOWN_CYCLES] == []


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_the_library_never_imports_the_cli():
    offenders = {name: sorted(t for t in edges if t.startswith("lema_plugin.cli"))
                 for name, edges in import_graph().items() if not name.startswith("lema_plugin.cli")}
    assert {name: found for name, found in offenders.items() if found} == {}


# -- a light import graph: shared types at the bottom, stages declared without the client --------

HEAVY = ("openai", "matplotlib", "torch", "transformers", "datasets", "lm_eval", "axolotl")
# The bottom layer: plain types and helpers every other module may use; they import (at import
# time) nothing of lema_plugin outside this set.
BOTTOM = {"lema_plugin", "lema_plugin.errors", "lema_plugin.keys", "lema_plugin.bounds", "lema_plugin.llm", "lema_plugin.llm.types", "lema_plugin.records",
          "lema_plugin.settings", "lema_plugin.text", "lema_plugin.fields", "lema_plugin.tables"}
# What a stage's declaration (and so `lema --help` and a recipe) must never load at import time:
# the request loop, the client, the run driver, the report.
RUNTIME = ("lema_plugin.asking", "lema_plugin.stage_run", "lema_plugin.llm.client", "lema_plugin.llm.batch",
           "lema_plugin.llm.probe", "lema_plugin.pipeline", "lema_plugin.report", "lema_plugin.cli")


def top_level_imports(name: str, modules: set[str]) -> set[str]:
    """The package modules `name` imports when it is imported: module and class bodies, not
    function bodies (those are imported when the function runs)."""
    found = set()

    def visit(nodes):
        for node in nodes:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                found.update(imported_modules(node, name, modules))
            else:
                visit(ast.iter_child_nodes(node))

    visit(ast.parse(module_file(name).read_text(encoding="utf-8")).body)
    return found


def import_closure(start: str) -> set[str]:
    modules = set(all_modules()) | {"lema_plugin"}
    seen, todo = set(), [start]
    while todo:
        name = todo.pop()
        if name in seen or name == "lema_plugin":
            continue
        seen.add(name)
        todo += top_level_imports(name, modules)
        parent = name.rpartition(".")[0]  # importing a.b.c imports a.b first
        if parent.startswith("lema_plugin."):
            todo.append(parent)
    return seen


def test_the_bottom_layer_imports_nothing_above_it():
    for name in BOTTOM - {"lema_plugin", "lema_plugin.llm"}:
        assert import_closure(name) <= BOTTOM, (name, sorted(import_closure(name) - BOTTOM))


def test_stage_declarations_never_load_the_request_loop_the_client_or_the_report():
    from lema_plugin.stage import DEFAULT_PLUGINS

    for name in (*DEFAULT_PLUGINS, "lema_plugin.stage", "lema_plugin.recipe", "lema_plugin.recipe_sections"):
        loaded = import_closure(name)
        assert not [m for m in loaded if m.startswith(RUNTIME)], (name, sorted(m for m in loaded if m.startswith(RUNTIME)))


@pytest.mark.parametrize("code", [
    "import lema_plugin.settings",
    "from lema_plugin.recipe import load_recipe; load_recipe('demo')",
    "from lema_plugin.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass",
    "from lema_plugin.cli import main\ntry:\n    main(['correct', '--help'])\nexcept SystemExit:\n    pass",
])
def test_help_settings_and_recipes_load_no_heavy_package(code):
    """What runs before any model is asked stays fast: measured in bench/imports.py."""
    import subprocess
    import sys

    probe = f"{code}\nimport sys\nprint(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert result.stdout.strip().splitlines()[-1] == "[]", result.stdout + result.stderr


def test_package_init_files_are_thin():
    """An `__init__` re-exports; it defines nothing but a lazy `__getattr__` (work lives in modules
    named for it: `grading.api`, `prompts.templates`, `report.build`, `cli.group`, ...)."""
    for name in all_modules():
        path = module_file(name)
        if path.name != "__init__.py":
            continue
        defined = [node.name for node in ast.parse(path.read_text(encoding="utf-8")).body
                   if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.name != "__getattr__"]
        assert defined == [], (name, defined)


# -- every default is defined once ----------------------------------------------------------


def cli_defaults(command: str) -> dict:
    cmd = main.get_command(click.Context(main), command)
    return {p.name: p.default for p in cmd.params}


@pytest.mark.parametrize("command, model", [
    ("sample", SampleSettings), ("correct", CorrectSettings), ("cot", CotSettings), ("evolve", EvolveSettings),
    ("sample", ClientSettings), ("correct", ClientSettings), ("cot", ClientSettings), ("evolve", ClientSettings),
])
def test_cli_defaults_are_the_settings_defaults(command, model):
    defaults = cli_defaults(command)
    for name, info in model.model_fields.items():
        expected = ",".join(info.default) if isinstance(info.default, tuple) else info.default
        assert defaults[name] == expected, (command, name)


def recipe_of(**changes) -> Recipe:
    return Recipe.model_validate({"generators": [{"model": "m", "base_url": "http://127.0.0.1:9/v1"}], **changes})


# recipe key -> (settings model, field); the recipe spells some settings its own way
RECIPE_KEYS = {
    "generators.0": (SampleSettings, {"samples": "samples", "temperature": "temperature",
                                      "top_p": "top_p", "max_tokens": "max_tokens"}),
    "corrector": (CorrectSettings, {"style": "style", "samples": "samples", "keep": "keep",
                                    "temperature": "temperature", "top_p": "top_p", "max_tokens": "max_tokens"}),
    "cot": (CotSettings, {"samples": "samples", "keep": "keep", "temperature": "temperature", "max_tokens": "max_tokens"}),
    "evolve": (EvolveSettings, {"per_seed": "per_seed", "samples": "samples", "min_agreement": "min_agreement"}),
    "": (ClientSettings, {"concurrency": "concurrency"}),
}


def test_recipe_defaults_are_the_settings_defaults():
    recipe = recipe_of()
    for path, (model, keys) in RECIPE_KEYS.items():
        section = recipe
        for part in filter(None, path.split(".")):
            section = section[int(part)] if part.isdigit() else getattr(section, part)
        for key, field_name in keys.items():
            assert getattr(section, key) == model.model_fields[field_name].default, (path, key)
    assert recipe.max_mistakes_per_question == SampleSettings().max_mistakes_per_question


def test_library_defaults_are_the_settings_defaults():
    signature = inspect.signature(LLMClient.__init__).parameters
    for name, info in ClientSettings.model_fields.items():
        assert signature[name].default == info.default, name
    # what a recipe asks of a stage is the stage's own settings when the recipe says nothing
    recipe = recipe_of()
    assert recipe.generators[0].settings(None) == SampleSettings()
    assert recipe.corrector.settings() == CorrectSettings()
    assert recipe.cot.settings() == CotSettings()
    assert recipe.evolve.settings() == EvolveSettings()


def test_a_recipe_corrector_with_attempts_samples_above_zero():
    """`attempts: 3` and no temperature used to ask the same greedy question three times."""
    recipe = recipe_of(corrector={"model": "c", "base_url": "http://127.0.0.1:9/v1", "samples": 3})
    assert recipe.corrector.settings().sampling_temperature == 0.7
    assert recipe_of().corrector.settings().sampling_temperature == 0.0


# -- user errors are one line; bugs keep their traceback --------------------------------------

def write_problems(path, questions):
    path.write_text("".join(json.dumps({"id": f"p{i}", "dataset": "gsm8k", "question": q, "answer": "5"}) + "\n"
                            for i, q in enumerate(questions)))
    return path


def sample_args(data, server, out):
    return ["sample", "--data-file", str(data), "--generator", f"g=m@{server.base_url}", "-k", "1",
            "--out", str(out), "--quiet"]


def test_a_bug_in_a_stage_keeps_its_traceback(tmp_path, monkeypatch):
    import lema_plugin.sample.paths as stage

    def broken(*args, **kwargs):  # a stand-in for a programming error inside the stage
        raise KeyError("steps")

    monkeypatch.setattr(stage, "path_record", broken)
    data = write_problems(tmp_path / "p.jsonl", ["What is 2 + 3?"])
    with ScriptedServer(lambda body, attempt: "The answer is 5.") as server:
        result = CliRunner().invoke(main, sample_args(data, server, tmp_path / "out"))
    assert isinstance(result.exception, KeyError)  # not turned into a one-line "Error: 'steps'"
    assert "Error:" not in result.output


def test_bad_input_is_one_line_naming_file_and_line(tmp_path):
    data = write_problems(tmp_path / "p.jsonl", ["What is 2 + 3?"])
    data.write_text(data.read_text() + "{not json\n")
    with ScriptedServer(lambda body, attempt: "The answer is 5.") as server:
        result = CliRunner().invoke(main, sample_args(data, server, tmp_path / "out"))
        assert server.request_count == 0
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"Error: {data}:2:")


def test_a_bad_setting_is_one_line_naming_the_option(tmp_path):
    data = write_problems(tmp_path / "p.jsonl", ["What is 2 + 3?"])
    result = CliRunner().invoke(main, ["sample", "--data-file", str(data), "--prompt", "no-such-template",
                                       "--out", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert "--prompt: no prompt template 'no-such-template': give a template file of your own with {question}, or solve" in result.output


def test_library_user_errors_share_one_base():
    from lema_plugin.errors import LemaError
    from lema_plugin.llm.embedded import EmbeddedModelError
    from lema_plugin.llm.endpoints import parse_endpoint
    from lema_plugin.recipe import RecipeError
    from lema_plugin.records import RecordError

    assert all(issubclass(e, LemaError) for e in (EmbeddedModelError, RecipeError, RecordError))
    with pytest.raises(LemaError, match="endpoint spec"):
        parse_endpoint("m@ftp://x")
    with pytest.raises(LemaError, match="samples"):
        SampleSettings(samples=0)


# -- recipe endpoints are built field by field (issue 12, item 9) ------------------------------

def test_a_recipe_url_is_never_read_as_spec_options(monkeypatch):
    monkeypatch.setenv("OTHER_SECRET", "sk-not-for-this-server")
    recipe = recipe_of(generators=[{"name": "g", "model": "m", "base_url": "http://x;key_env=OTHER_SECRET"}],
                       corrector={"model": "c", "base_url": "http://y/v1;price=0/0;mode=completion"})
    generator = recipe.generators[0].endpoint()
    assert generator.api_key_env is None
    assert generator.base_urls == ("http://x;key_env=OTHER_SECRET",)
    corrector = recipe.corrector.endpoint()
    assert (corrector.mode, corrector.price_prompt) == ("chat", None)
    assert recipe.corrector.model_copy(update={"key_env": "MY_KEY"}).endpoint().api_key_env == "MY_KEY"


# -- the task folder ships with the package ---------------------------------------------------

def test_tasks_path_names_the_shipped_task_folder():
    result = CliRunner().invoke(main, ["tasks-path"])
    assert result.exit_code == 0
    folder = Path(result.output.strip())
    assert (folder / "lema" / "lema_gsm8k.yaml").is_file() and (folder / "lema" / "utils.py").is_file()


@pytest.mark.slow
def test_the_wheel_holds_the_tasks_and_configs(tmp_path):
    """A plain (non-editable) install gets the same task files and axolotl configs as the checkout."""
    import subprocess
    import sys
    import zipfile

    root = PACKAGE.parent
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path), str(root)],
                   check=True, capture_output=True)
    (wheel,) = tmp_path.glob("lema_plugin-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    tasks = {p.relative_to(root).as_posix() for p in (root / "lm_eval_tasks").rglob("*") if p.is_file() and "__pycache__" not in p.parts}
    configs = {p.relative_to(root).as_posix() for p in (root / "axolotl_configs").glob("*.yml")}
    assert tasks and configs
    assert {f"lema_plugin/{name}" for name in tasks | configs} <= names


def test_a_one_model_stage_refuses_two_endpoints_as_a_user_error():
    from lema_plugin import stage as registry
    from lema_plugin.errors import LemaError
    from lema_plugin.llm.endpoints import make_endpoint
    from lema_plugin.stage_run import endpoints_for

    cot = registry.get("cot")
    settings = cot.settings(source="model")
    a, b = make_endpoint("a", ["http://127.0.0.1:9/v1"]), make_endpoint("b", ["http://127.0.0.1:9/v1"])
    assert endpoints_for(cot, [a], settings) == {"cot model": [a]}
    with pytest.raises(LemaError, match="the cot stage takes one cot model endpoint, not 2"):
        endpoints_for(cot, [a, b], settings)

"""One vocabulary: every command, the recipe and the README's table agree; help reads like docs;
`lema run --check` shows the resolved recipe and the requests it will send."""
from __future__ import annotations

import re
import shlex
from pathlib import Path

import click
import pytest
import yaml
from click.testing import CliRunner

from lema_plugin.cli import COMMANDS, main
from lema_plugin.correct import CorrectSettings
from lema_plugin.cot import CotSettings
from lema_plugin.evolve import EvolveSettings
from lema_plugin.first_error import FirstErrorSettings
from lema_plugin.llm.types import SPEC_GRAMMAR
from lema_plugin.recipe import load_recipe
from lema_plugin.recipe_check import request_plan, schema_markdown, schema_rows
from lema_plugin.sample import SampleSettings
from lema_plugin.settings import ClientSettings

README = Path(__file__).resolve().parent.parent / "README.md"
# the order, with `first-error` (added since) where it runs: after evolve, then the other
# registered stage, `score-corrector`, before build
PIPELINE_ORDER = ["sample", "import", "correct", "cot", "evolve", "first-error", "score-corrector", "build", "run",
                  "grade", "serve"]


def vocabulary_table() -> list[dict]:
    """The rows of the README's "One vocabulary" table, each cell a list of `code` names."""
    text = README.read_text(encoding="utf-8").split("## One vocabulary", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 5 or cells[0] in ("idea", "---"):
            continue
        names = [re.findall(r"`([^`]+)`", cell) for cell in cells[1:]]
        rows.append(dict(idea=cells[0], options=names[0], keys=names[1], fields=names[2], old=names[3]))
    return rows


def commands() -> dict[str, click.Command]:
    ctx = click.Context(main)
    return {name: main.get_command(ctx, name) for name in COMMANDS}


def long_name(param: click.Option) -> str:
    return next(o for o in param.opts + param.secondary_opts if o.startswith("--"))


def test_every_option_of_every_command_is_in_the_table():
    rows = vocabulary_table()
    listed = {option: row for row in rows for option in row["options"]}
    old = {option: row for row in rows for option in row["old"]}
    for name, command in commands().items():
        visible = {p.name: long_name(p) for p in command.params if isinstance(p, click.Option) and not p.hidden}
        for param in command.params:
            if not isinstance(param, click.Option) or long_name(param) == "--help":
                continue
            option = long_name(param)
            if not param.hidden:
                assert option in listed, f"lema {name} {option} is not in the README's vocabulary table"
                continue
            # an old spelling: hidden, listed in the row of the option it became
            target = visible[param.name.removeprefix("old__")]
            assert option in old, f"lema {name}: hidden {option} is not listed as an old spelling"
            assert target in old[option]["options"], f"lema {name}: {option} is now {target}, not what the table says"


def test_each_idea_has_one_option_name():
    """No option names two rows' ideas, and no old spelling is still shown anywhere as itself
    for the same idea."""
    rows = vocabulary_table()
    seen: dict[str, str] = {}
    for row in rows:
        for option in row["options"]:
            assert option not in seen, f"{option} is listed for both {seen[option]!r} and {row['idea']!r}"
            seen[option] = row["idea"]


def test_recipe_keys_in_the_table_exist():
    keys = {key for key, *_ in schema_rows()}
    for row in vocabulary_table():
        for key in row["keys"]:
            assert key in keys, f"recipe key {key} in the README table is not a recipe key"


SECTIONS = [  # settings model -> (its command, the recipe section holding its keys, fields kept elsewhere)
    (SampleSettings, "sample", "generators[].", {"max_mistakes_per_question": "", "keep_unfinished": "", "judge": ""}),
    (CorrectSettings, "correct", "corrector.", {"judge": ""}),
    (CotSettings, "cot", "cot.", {"judge": ""}),
    (EvolveSettings, "evolve", "evolve.", {"judge": ""}),
    (FirstErrorSettings, "first-error", "first_error.", {}),
    (ClientSettings, "sample", "", {}),
]


@pytest.mark.parametrize("model, command, section, elsewhere", SECTIONS)
def test_a_setting_has_the_same_name_as_option_and_recipe_key(model, command, section, elsewhere):
    options = {p.name: long_name(p) for p in commands()[command].params if isinstance(p, click.Option) and not p.hidden}
    keys = {key for key, *_ in schema_rows()}
    for field in model.model_fields:
        assert options[field] == "--" + field.replace("_", "-"), (command, field)
        assert elsewhere.get(field, section) + field in keys, (model.__name__, field)


def test_the_readme_schema_is_generated_from_the_models():
    text = README.read_text(encoding="utf-8")
    block = text.split("<!-- recipe-schema:start -->\n", 1)[1].split("<!-- recipe-schema:end -->", 1)[0]
    assert block == schema_markdown(), "README recipe schema is stale: paste `lema recipes --schema` between the markers"
    assert "| `corrector.samples` | integer | `1` |" in block


def test_readme_commands_use_no_old_spelling():
    blocks = re.findall(r"```bash\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)
    for block in blocks:
        for line in block.replace("\\\n", " ").splitlines():
            if line.strip().startswith("lema "):
                words = shlex.split(line.split("  #", 1)[0])
                hidden = {o for p in commands()[words[1]].params if isinstance(p, click.Option) and p.hidden for o in p.opts}
                assert not hidden & set(words), line


# -- help ----------------------------------------------------------------------------------


def test_help_lists_commands_in_pipeline_order_with_whole_descriptions():
    result = CliRunner().invoke(main, ["--help"], terminal_width=200)
    listed = re.findall(r"^  ([a-z-]+)\s{2,}(.+)$", result.output.split("Commands", 1)[1], flags=re.M)
    assert [name for name, _ in listed][: len(PIPELINE_ORDER)] == PIPELINE_ORDER
    for name, description in listed:
        first = " ".join((commands()[name].help or "").split("\n\n")[0].split())
        assert description == first and not description.endswith("..."), name
    assert SPEC_GRAMMAR in result.output.splitlines()[result.output.splitlines().index(
        "  Every model is an OpenAI-compatible endpoint, written as one spec:") + 1]
    assert ";concurrency=N" in SPEC_GRAMMAR and ";timeout=S" in SPEC_GRAMMAR


@pytest.mark.parametrize("name", list(COMMANDS))
def test_every_option_shows_its_default(name):
    command = commands()[name]
    ctx = click.Context(command)
    for param in command.params:
        if not isinstance(param, click.Option) or param.hidden or param.is_flag or param.required:
            continue
        help_text = param.get_help_record(ctx)[1]
        assert "[default: " in help_text or "default: " in help_text, f"lema {name} {long_name(param)}: {help_text}"


@pytest.mark.parametrize("name", ["sample", "import", "correct", "build", "run", "grade", "serve", "tasks-path"])
def test_verbose_and_quiet_work_after_every_command(name):
    result = CliRunner().invoke(main, [name, "-v", "-q", "--help"])
    assert result.exit_code == 0, result.output
    help_text = result.output
    assert "-q, --quiet" in help_text and "-v, --verbose" in help_text


def test_endpoint_help_shows_the_whole_grammar():
    result = CliRunner().invoke(main, ["sample", "--help"], terminal_width=80)
    assert SPEC_GRAMMAR in [line.strip() for line in result.output.splitlines()]


# -- lema run --check and lema recipes ------------------------------------------------------


def test_check_prints_the_resolved_recipe_as_commented_yaml(tmp_path, shared_data, monkeypatch):
    monkeypatch.setenv("LEMA_DATA_DIR", str(shared_data))
    monkeypatch.setenv("LEMA_TEST_GEN_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-check-key")  # the CoT model has no URL: the OpenAI API and its key
    recipe = tmp_path / "r.yaml"
    recipe.write_text("limit: 3\ngenerators:\n  - {name: g, model: m, base_url: '${LEMA_TEST_GEN_URL}', samples: 2}\n"
                      "  - {name: h, model: n, base_url: '${LEMA_TEST_GEN_URL}', samples: 3}\n"
                      "corrector: {samples: 2}\ncot: {source: model, model: {model: s}, samples: 4}\n")
    result = CliRunner().invoke(main, ["run", str(recipe), "--check"])
    assert result.exit_code == 0, result.output
    text = result.stdout
    assert "# Corrector replies sampled per mistake, at most.\n  samples: 2" in text
    assert "base_url: http://127.0.0.1:9/v1" in text  # the environment is expanded
    again = tmp_path / "resolved.yaml"
    again.write_text(text)
    assert load_recipe(str(again)) == load_recipe(str(recipe))  # the output is the same recipe
    assert re.search(r"^#   sample +15$", text, re.M)  # 3 problems x (2 + 3) paths
    assert re.search(r"^#   correct +at most 30$", text, re.M)  # every path wrong, 2 replies each
    assert re.search(r"^#   cot +12$", text, re.M)


def test_check_counts_match_what_a_run_sends(tmp_path, shared_data, monkeypatch):
    """The plan's exact figures are what the server receives; its bounds are never exceeded."""
    from lema_testing.scripted_server import ScriptedServer
    from lema_plugin.problems import load_problems

    from test_pipeline import make_responder, write_recipe

    monkeypatch.setenv("LEMA_DATA_DIR", str(shared_data))
    problems = load_problems("gsm8k", "train", limit=3)
    with ScriptedServer(make_responder(problems)) as server:
        path = write_recipe(tmp_path / "r.yaml", server, tmp_path / "run")
        plan = dict((stage, count) for stage, count, _ in request_plan(load_recipe(str(path)), 3))
        assert CliRunner().invoke(main, ["run", str(path)]).exit_code == 0
    assert plan["sample"] + plan["correct"] >= server.request_count >= plan["sample"]
    assert plan == {"sample": 6, "correct": 12, "cot": 0}


def test_recipes_lists_the_builtins_and_prints_one():
    result = CliRunner().invoke(main, ["recipes"])
    assert result.exit_code == 0
    names = [line.split()[0] for line in result.output.splitlines() if line and not line.startswith("lema")]
    assert {"demo", "gsm8k-paper", "math-paper"} <= set(names)
    assert "demo" in result.output and "SmolLM2" in result.output
    shown = CliRunner().invoke(main, ["recipes", "demo"]).output
    assert yaml.safe_load(shown)["generators"][0]["model"] == "embedded"
    schema = CliRunner().invoke(main, ["recipes", "--schema"]).output
    assert schema == schema_markdown()

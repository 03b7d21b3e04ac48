"""Hostile or mistyped input is one line and a non-zero exit before any work: YAML aliases that
recurse or explode, and counts no run could ever send."""
from __future__ import annotations

import json
import time

import pytest
import yaml
from click.testing import CliRunner

from lema_plugin.cli import main

HUGE = "99999999999999999999999"
LAUGHS = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"{b}: &{b} [{', '.join(['*' + a] * 9)}]\n" for a, b in zip("abcdefgh", "bcdefghi"))


def one_line(result, status: int = 1) -> str:
    assert result.exit_code == status, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and "Traceback" not in result.output, result.output
    return lines[0]


@pytest.mark.parametrize("text,message", [
    ("a: &a [*a]\n", ":1: not valid YAML (an alias refers to the value that holds it (recursive))"),
    ("generators: &g [{model: m, extra: *g}]\n", ":1: not valid YAML (an alias refers to the value that holds it"),
    (LAUGHS, ":6: not valid YAML (aliases expand to more than 100,000 values)"),
    ("limit: " + "[" * 20000 + "]" * 20000 + "\n", "not valid YAML (nested too deeply to read)"),
], ids=["recursive", "recursive-mapping", "billion-laughs", "deep"])
def test_a_recipe_whose_aliases_recurse_or_explode_is_one_line(tmp_path, text, message):
    path = tmp_path / "r.yaml"
    path.write_text(text)
    started = time.monotonic()
    line = one_line(CliRunner().invoke(main, ["run", str(path), "--check"]))
    assert message in line and str(path) in line
    assert time.monotonic() - started < 60  # bounded: never a hang (not a timing claim, a guard)


def test_aliases_that_stay_small_still_work(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text("corrector: &gpt {model: m, base_url: 'http://127.0.0.1:9/v1'}\njudge: *gpt\n"
                    "generators: [{model: m, base_url: 'http://127.0.0.1:9/v1'}]\n")
    from lema_plugin.recipe import load_recipe

    recipe = load_recipe(str(path))
    assert recipe.judge.model == recipe.corrector.model == "m"


@pytest.mark.parametrize("key", ["samples", "max_tokens"])
def test_an_absurd_count_in_a_recipe_is_refused_before_any_work(tmp_path, key):
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump({"generators": [{"model": "m", "base_url": "http://127.0.0.1:9/v1"}]})
                    .replace("model: m", f"model: m\n  {key}: {HUGE}"))
    line = one_line(CliRunner().invoke(main, ["run", str(path), "--check"]))
    assert f"generators.0.{key}: Input should be less than or equal to" in line


@pytest.mark.parametrize("option", ["-k", "--samples", "--max-tokens", "--concurrency"])
def test_an_absurd_count_on_the_command_line_is_refused_before_any_work(tmp_path, option):
    data = tmp_path / "p.jsonl"
    data.write_text(json.dumps({"question": "What is 1 plus 1?", "answer": "#### 2"}) + "\n")
    result = CliRunner().invoke(main, ["sample", "--data-file", str(data), "--generator", "m@http://127.0.0.1:9/v1",
                                       option, HUGE, "--out", str(tmp_path / "run")])
    assert result.exit_code == 2 and "is not in the range" in result.output, result.output
    assert not (tmp_path / "run").exists()


def test_an_absurd_count_in_an_endpoint_spec_is_refused():
    from lema_plugin.errors import EndpointError
    from lema_plugin.llm.endpoints import parse_endpoint

    for option in ("concurrency", "rpm", "tpm", "timeout"):
        with pytest.raises(EndpointError, match="at most"):
            parse_endpoint(f"m@http://127.0.0.1:9/v1;{option}={HUGE}")

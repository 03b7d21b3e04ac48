"""API keys: read from the environment in one place (`lema_plugin.keys`), refused in one line when
a named variable is unset, never sent as a placeholder, never echoed in an error, and scrubbed
from every text on its way to disk or to a message, whatever path it came by (online replies,
Batch API error files, the report). Against the scripted server on 127.0.0.1."""
from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from lema_plugin import keys
from lema_plugin.cli import main
from lema_plugin.llm.batch import MAX_TRIES
from lema_testing.scripted_server import Reply, ScriptedServer, prompt_text

SECRET = "sk-lema-Test-7f3KqZ9wX2"  # the key in the environment; a server echoes it back
GOOD = "Incorrect Step: Step 2.\nExplanation: 3 + 4 is 7.\nCorrect Solution:\nStep 2: 3 + 4 = 7. The answer is 7."


def mistakes_file(path: Path, names=("good", "echo")) -> Path:
    rows = []
    for name in names:
        question = f"{name}: Tom has 3 apples and buys 4 more. How many apples does he have?"
        steps = ["Tom has 3 apples.", "He buys 4 more, so 3 + 4 = 8. The answer is 8."]
        rows.append({"id": f"m-{name}", "dataset": "gsm8k", "question": question, "answer": "7", "model": "gen",
                     "text": "\n".join(steps), "steps": steps, "correct": False})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def echoing(body: dict, attempt: int):
    """"echo" questions fail with an error that quotes the key (as typed and upper-cased)."""
    if "echo:" in prompt_text(body):
        return Reply(status=500, content=" details", echo_key=True)
    return GOOD


def files_holding(folder: Path, secret: str) -> list[str]:
    return [str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()
            and secret.lower().encode() in p.read_bytes().lower()]


def test_a_key_echoed_in_batch_error_lines_reaches_no_file_and_no_message(tmp_path, monkeypatch):
    monkeypatch.setenv("LEMA_TEST_KEY", SECRET)
    out = tmp_path / "run"
    with ScriptedServer(echoing) as server:
        args = ["correct", "--mistakes", str(mistakes_file(tmp_path / "m.jsonl")), "--out", str(out), "-q",
                "--corrector", f"c=m@{server.base_url};key_env=LEMA_TEST_KEY;mode=batch"]
        outputs = []
        for _ in range(MAX_TRIES + 1):
            result = CliRunner().invoke(main, args)
            outputs.append(result.output)
            if result.exit_code != 75:
                break
            server.finish_batches()
        report = CliRunner().invoke(main, ["report", str(out)])
        outputs.append(report.output)
    assert result.exit_code == 5, result.output  # the echoing request finally failed, the other is stored
    assert report.exit_code == 0, report.output
    rejected = [json.loads(line) for line in (out / "rejected.jsonl").read_text().splitlines()]
    assert [r["reason"] for r in rejected] == ["request_failed"] and "***" in rejected[0]["detail"]
    assert (out / "report.html").exists() and (out / ".batches" / "results.jsonl").exists()
    assert files_holding(out, SECRET) == []
    assert not any(SECRET.lower() in text.lower() for text in outputs)


def test_an_unset_key_variable_is_refused_in_one_line_before_anything_is_sent(tmp_path, monkeypatch):
    monkeypatch.delenv("LEMA_UNSET_KEY", raising=False)
    with ScriptedServer(echoing) as server:
        result = CliRunner().invoke(main, ["correct", "--mistakes", str(mistakes_file(tmp_path / "m.jsonl")),
                                           "--corrector", f"c=m@{server.base_url};key_env=LEMA_UNSET_KEY",
                                           "--out", str(tmp_path / "run"), "-q"])
        assert result.exit_code == 1, result.output
        assert result.output.strip().splitlines() == [
            "Error: correct: API key variable not set: $LEMA_UNSET_KEY (for c). Export it; a server that takes no "
            "key needs a URL and no key_env"]
        assert server.request_count == 0 and server.model_listings == 0  # nothing sent, not even a placeholder key
    assert not (tmp_path / "run" / "lema_run.json").exists()


def test_a_url_without_key_env_is_a_keyless_server_even_with_an_openai_key_set(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    with ScriptedServer(echoing) as server:
        result = CliRunner().invoke(main, ["correct", "--mistakes", str(mistakes_file(tmp_path / "m.jsonl", ["good"])),
                                           "--corrector", f"c=m@{server.base_url}", "--out", str(tmp_path / "run"), "-q"])
        assert result.exit_code == 0, result.output
        assert set(server.authorizations) == {"Bearer EMPTY"}  # $OPENAI_API_KEY goes to the OpenAI API only


def recipe(path: Path, url: str, **changes) -> Path:
    data = {"dataset": "gsm8k", "limit": 1, "out": str(path.parent / "run"),
            "generators": [{"name": "gen", "model": "m", "base_url": url, "key_env": "LEMA_GEN_KEY"}],
            "corrector": {"name": "fixer", "model": "c", "base_url": url, "key_env": "LEMA_FIX_KEY"},
            "judge": {"model": "gpt-4o-mini"}, "export": {"mixes": ["lema"]}, **changes}
    path.write_text(yaml.safe_dump(data))
    return path


def test_check_and_run_name_every_missing_key_variable_at_once(tmp_path, shared_data, monkeypatch):
    monkeypatch.setenv("LEMA_DATA_DIR", str(shared_data))
    for name in ("LEMA_GEN_KEY", "LEMA_FIX_KEY", "OPENAI_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    with ScriptedServer(echoing) as server:
        path = recipe(tmp_path / "r.yaml", server.base_url)
        check = CliRunner().invoke(main, ["run", str(path), "--check"])
        assert check.exit_code == 1, check.output
        last = check.output.strip().splitlines()[-1]
        assert last.startswith("Error: ") and "variables not set" in last, last
        assert all(part in last for part in ("$LEMA_GEN_KEY (for gen)", "$LEMA_FIX_KEY (for fixer)",
                                             "$OPENAI_API_KEY (for gpt-4o-mini)")), last
        monkeypatch.setenv("LEMA_GEN_KEY", SECRET)
        run = CliRunner().invoke(main, ["run", str(path), "--no-train"])
        assert run.exit_code == 1, run.output
        assert "$LEMA_FIX_KEY (for fixer)" in run.output and "$OPENAI_API_KEY (for gpt-4o-mini)" in run.output
        assert "LEMA_GEN_KEY" not in run.output
        assert server.request_count == 0 and server.model_listings == 0  # refused before sampling, not after
    assert not (tmp_path / "run").exists()


PASTED = "gsk_Qm3xV9bT2wLr8Kp4Ns7Yz1Hc"  # a key typed where the variable's name belongs


def test_a_key_pasted_as_key_env_is_refused_without_echo_and_never_saved(tmp_path, monkeypatch):
    monkeypatch.setenv(PASTED, "the variable exists")  # even then: a value like this is a key, not a name
    data = tmp_path / "p.jsonl"
    data.write_text('{"question": "What is 1 plus 1?", "answer": "#### 2"}\n')
    with ScriptedServer(echoing) as server:
        result = CliRunner().invoke(main, ["sample", "--data-file", str(data), "--generator",
                                           f"g=m@{server.base_url};key_env={PASTED}", "--out", str(tmp_path / "run")])
        path = recipe(tmp_path / "r.yaml", server.base_url, corrector={"model": "c", "key_env": PASTED})
        from_recipe = CliRunner().invoke(main, ["run", str(path), "--check"])
        assert server.request_count == 0
    for outcome in (result, from_recipe):
        assert outcome.exit_code == 1, outcome.output
        assert len(outcome.output.strip().splitlines()) == 1 and PASTED not in outcome.output, outcome.output
        assert "not shown" in outcome.output
    assert "corrector.key_env: expected the name of the environment variable" in from_recipe.output
    assert not (tmp_path / "run").exists()


def test_error_messages_and_log_lines_are_scrubbed(tmp_path, caplog):
    from lema_plugin.cli.common import friendly_errors
    from lema_plugin.errors import ConfigError

    keys.remember(SECRET)

    @friendly_errors
    def fails():
        raise ConfigError(f"the server said: bad key {SECRET.upper()}")

    with pytest.raises(Exception) as info:
        fails()
    assert SECRET.lower() not in info.value.format_message().lower() and "***" in info.value.format_message()

    handler = logging.StreamHandler(stream := __import__("io").StringIO())
    logger = logging.getLogger("lema_plugin.test_keys")
    logging.getLogger().addHandler(handler)
    try:
        keys.guard_logging()
        logger.warning("a proxy said %s", SECRET)
    finally:
        logging.getLogger().removeHandler(handler)
    assert stream.getvalue() == "a proxy said ***\n"


def test_scrub_knows_every_key_read_and_ignores_short_values(monkeypatch):
    from lema_plugin.llm.types import Endpoint

    monkeypatch.setenv("LEMA_OTHER_KEY", "Other-Key-42-abcdef")
    endpoint = Endpoint("m", ("http://127.0.0.1:1/v1",), api_key_env="LEMA_OTHER_KEY")
    assert keys.key_for(endpoint) == "Other-Key-42-abcdef"
    assert keys.scrub("x OTHER-KEY-42-ABCDEF y other-key-42-abcdef") == "x *** y ***"
    keys.remember("abc")  # too short to be a key: scrubbing it would mangle ordinary text
    assert keys.scrub("abcdef") == "abcdef"

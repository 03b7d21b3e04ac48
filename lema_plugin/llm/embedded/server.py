"""The embedded server's process: `transformers serve` on 127.0.0.1, started, watched and stopped.

It runs through `serving`, which makes the server cancel a generation whose client went away.

The server runs as a subprocess in its own process group, pinned to the model, on CPU, offline, on
127.0.0.1 and a free port, with the memory plan's settings. It is started from the models folder
so the model name a client sends is the short, machine-independent `smollm2-135m-instruct`.
Leaving `embedded_server` (normally, on error or on Ctrl-C) kills the whole group."""
from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from lema_plugin.llm.types import Endpoint

from .memory import BATCH, MemoryPlan, check_memory, free_memory, plan_memory
from .weights import EmbeddedModelError, cache_dir, ensure_model, ensure_serving_model, served_model_name

log = logging.getLogger(__name__)


ENDPOINT_NAME = "smollm2-135m"


REQUEST_TIMEOUT = 900.0


OFFLINE_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "HF_HUB_DISABLE_UPDATE_CHECK": "1",
    "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1",
    "TOKENIZERS_PARALLELISM": "false",
    "CUDA_VISIBLE_DEVICES": "",
}


def default_threads() -> int:
    """CPU threads for the server: every core, at most 4.

    With continuous batching the server decodes a batch of requests per step, which uses the
    cores well: on an idle 2-core machine, 32 requests of 128 tokens ran at 69 tokens/s with 2
    threads against 45 with 1. On a machine busy with other work, OpenMP threads that spin lose
    badly (1 thread decoded 4x faster than 2 there): set $LEMA_EMBEDDED_THREADS=1 in that case.
    """
    return max(1, min(4, os.cpu_count() or 1))


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _log_tail(path: Path, lines: int = 25) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no server log)"
    return "\n".join(text.splitlines()[-lines:])


def _http(url: str, body: dict | None = None, timeout: float = 5.0) -> dict:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read() or b"{}")


def _stop(process: subprocess.Popen, grace: float = 10.0) -> None:
    """Terminate the server's whole process group: SIGTERM, then SIGKILL after `grace` s."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            break
        try:
            process.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            continue
        # The leader is gone; make sure nothing else of its group lingers.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        break
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=5.0)


@contextlib.contextmanager
def embedded_server(
    port: int | None = None,
    startup_timeout: float = 300.0,
    progress: bool = True,
    threads: int | None = None,
    memory: MemoryPlan | bool = True,
) -> Iterator[Endpoint]:
    """Serve the embedded model for the duration of the block and yield its `Endpoint`.

    Converts the model on first use, starts `transformers serve` on 127.0.0.1 (`port` or a free
    one), waits until it answers a one-token chat request (at most `startup_timeout` s), and
    stops the server's whole process group on exit. `threads` (default
    ``$LEMA_EMBEDDED_THREADS`` or `default_threads()`) caps its CPU threads. `memory` is the
    `MemoryPlan` (True: `plan_memory`); False leaves memory to the server (float32, cache sized
    from free memory: how it ran before, kept for the benchmark). The server log goes to
    ``<cache>/logs/embedded-<port>.log``; its tail is part of any start-up error.
    """
    folder = ensure_serving_model(progress=progress) if memory else ensure_model(progress=progress)
    if memory is True:
        memory = plan_memory(folder)
    if memory:
        check_memory(memory, free_memory())
    if port and not _port_is_free(port):
        raise EmbeddedModelError(f"port {port} on 127.0.0.1 is already in use; choose another or leave it out")
    port = port or free_port()
    base_url = f"http://127.0.0.1:{port}/v1"
    logs = cache_dir() / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    log_path = logs / f"embedded-{port}.log"
    command = [
        # `transformers serve`, with generation cancelled when a client gives up (see `serving`)
        sys.executable, "-m", "lema_plugin.llm.embedded.serving", "serve", served_model_name(),
        "--host", "127.0.0.1", "--port", str(port), "--device", "cpu",
        "--log-level", "warning",
        # batch concurrent requests into one forward pass: about twice the tokens/s of serving
        # them one by one on a 2-core CPU (bench/embedded_model.py)
        "--continuous-batching",
    ]  # fmt: skip
    command += memory.flags() if memory else ["--dtype", "float32"]
    env = {**os.environ, **OFFLINE_ENV, "PYTHONUNBUFFERED": "1"}
    threads = threads or int(os.environ.get("LEMA_EMBEDDED_THREADS") or 0) or default_threads()
    env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(threads)
    if progress:
        print(f"Starting the embedded model {ENDPOINT_NAME} at {base_url} ...", file=sys.stderr)
    started = time.monotonic()
    with _sigterm_as_exit(), open(log_path, "wb") as log_file:
        process = subprocess.Popen(
            command,
            cwd=folder.parent,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: Ctrl-C reaches us only, we stop all of it
            preexec_fn=_parent_death_signal(),
        )
        try:
            _wait_ready(process, base_url, log_path, started + startup_timeout)
            log.info("embedded server ready at %s after %.1fs", base_url, time.monotonic() - started)
            yield Endpoint(
                model=served_model_name(),
                base_urls=(base_url,),
                name=ENDPOINT_NAME,
                max_concurrency=memory.batch if memory else BATCH,
                timeout=REQUEST_TIMEOUT,
            )
        finally:
            _stop(process)


def _parent_death_signal():
    """A pre-exec hook (Linux) that makes the server get SIGTERM when its parent dies, even by
    SIGKILL, so no orphan remains. libc is loaded here in the parent: the hook itself runs
    between fork and exec and must not import anything. None where prctl is unavailable."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    return lambda: prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG


@contextlib.contextmanager
def _sigterm_as_exit() -> Iterator[None]:
    """Turn SIGTERM into SystemExit while the server runs, so `finally` stops it.

    Only in the main thread and only if nobody else handles SIGTERM already.
    """
    import threading

    if threading.current_thread() is not threading.main_thread() or (
        signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL
    ):
        yield
        return

    def leave(signum, frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, leave)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


def is_alive(endpoint: Endpoint, timeout: float = 5.0) -> bool:
    """True when every base URL of `endpoint` answers its health check."""
    try:
        return all(
            _http(f"{url.removesuffix('/v1')}/health", timeout=timeout).get("status") == "ok"
            for url in endpoint.base_urls
        )
    except (urllib.error.URLError, OSError, ValueError):
        return False


def watch(endpoint: Endpoint, interval: float = 2.0, misses: int = 3) -> None:
    """Block while the server answers; raise EmbeddedModelError once it missed `misses` checks
    in a row (a foreground `lema serve` ends when its server dies, rather than hanging on)."""
    failures = 0
    while failures < misses:
        time.sleep(interval)
        failures = 0 if is_alive(endpoint) else failures + 1
    raise EmbeddedModelError(f"the embedded server at {endpoint.base_urls[0]} stopped answering")


def _wait_ready(process: subprocess.Popen, base_url: str, log_path: Path, deadline: float) -> None:
    """Poll until the server answers a tiny chat request; fail fast if it exits."""
    probe = {"model": served_model_name(), "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 1}
    root = base_url.removesuffix("/v1")
    while True:
        if process.poll() is not None:
            raise EmbeddedModelError(
                f"the embedded server exited with code {process.returncode} before it was ready "
                f"(log: {log_path}):\n{_log_tail(log_path)}"
            )
        try:
            healthy = _http(f"{root}/health", timeout=2.0).get("status") == "ok"
        except (urllib.error.URLError, OSError, ValueError):
            healthy = False  # not listening yet (or still loading the model)
        if healthy:
            try:
                if _http(f"{base_url}/chat/completions", probe, timeout=120.0).get("choices"):
                    return
            except urllib.error.HTTPError as exc:
                detail = exc.read().decode(errors="replace")[:500]
                raise EmbeddedModelError(
                    f"the embedded server at {base_url} refused a test request ({exc.code}: {detail}) "
                    f"(log: {log_path}):\n{_log_tail(log_path)}"
                ) from exc
            except (urllib.error.URLError, OSError, ValueError):
                pass
        if time.monotonic() > deadline:
            raise EmbeddedModelError(
                f"the embedded server at {base_url} was not ready in time (log: {log_path}):\n{_log_tail(log_path)}"
            )
        time.sleep(0.5)

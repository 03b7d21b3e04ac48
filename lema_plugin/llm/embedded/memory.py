"""How much memory the embedded server may hold, planned from its work, not the machine's.

Left to itself, `transformers serve` sizes its paged KV cache from the machine's free memory
(about 10 GB for this 135M model on a 24 GB machine). `plan_memory` sizes it from the requests it
will get instead (about 1.5 GB), and `check_memory` refuses, in one line, to start a server that
would not fit."""
from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from .weights import DTYPE, EmbeddedModelError

log = logging.getLogger(__name__)


# Requests the server batches at once, and how long one may take. Tokens/s grow with the batch
# on CPU (2 cores: 28 tokens/s at 8, 48 at 16, 69 at 32), but each request then gets only a few
# tokens/s, so a long few-shot prompt with a few hundred new tokens takes minutes.
BATCH = 32


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


# Resident memory of the server with no model and no cache: Python, torch, transformers and the
# HTTP server (measured: 0.78 GB with the bfloat16 weights taken out).
RUNTIME_BYTES = 780 * 2**20


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

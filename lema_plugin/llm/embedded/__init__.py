"""The embedded default model: SmolLM2-135M-Instruct served by `transformers serve` on localhost.

Three concerns, one module each: `weights` (find the GGUF, convert and cast it once into a
cache), `memory` (plan what the server may hold and refuse what would not fit), `server` (start,
watch and stop the process).
"""
from .memory import (BATCH, BLOCK_SIZE, CONTEXT, MAX_BATCH_TOKENS, RUNTIME_BYTES, MemoryPlan, check_memory, free_memory,
                     plan_memory)
from .server import (ENDPOINT_NAME, OFFLINE_ENV, REQUEST_TIMEOUT, default_threads, embedded_server, free_port, is_alive,
                     watch)
from .weights import (CONVERSION_VERSION, DTYPE, EOS_TOKEN, MARKER, MODEL_DIR_NAME, PACKAGE, EmbeddedModelError,
                      base_model_path, cache_dir, ensure_model, ensure_serving_model, find_gguf, model_dir,
                      served_model_name, serving_dir)

__all__ = ["BATCH", "BLOCK_SIZE", "CONTEXT", "CONVERSION_VERSION", "DTYPE", "ENDPOINT_NAME", "EOS_TOKEN", "MARKER",
           "MAX_BATCH_TOKENS", "MODEL_DIR_NAME", "OFFLINE_ENV", "PACKAGE", "REQUEST_TIMEOUT", "RUNTIME_BYTES",
           "EmbeddedModelError", "MemoryPlan", "base_model_path", "cache_dir", "check_memory", "default_threads",
           "embedded_server", "ensure_model", "ensure_serving_model", "find_gguf", "free_memory", "free_port", "is_alive",
           "model_dir", "plan_memory", "served_model_name", "serving_dir", "watch"]

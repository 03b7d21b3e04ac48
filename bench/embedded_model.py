"""How fast is the embedded default model on this machine?

Prints three figures: the one-time GGUF -> transformers conversion (into a fresh temporary cache,
so the real cache is left alone; skip it with --no-convert), the server start-up time (process
start to the first answered request), and decode speed for 64-token chat generations.

    python bench/embedded_model.py [--no-convert] [--runs 3]
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time

import openai

from lema_plugin.llm import embedded

PROMPT = "Write a long story about a lighthouse keeper and a cat."


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-convert", action="store_true", help="Skip timing the one-time conversion.")
    parser.add_argument("--runs", type=int, default=3, help="64-token generations to time.")
    parser.add_argument("--threads", type=int, help="Server CPU threads (default: embedded.default_threads()).")
    args = parser.parse_args()

    if not args.no_convert:
        saved = os.environ.get("LEMA_CACHE_DIR")
        with tempfile.TemporaryDirectory() as scratch:
            os.environ["LEMA_CACHE_DIR"] = scratch
            started = time.perf_counter()
            embedded.ensure_model(progress=False)
            print(f"conversion (GGUF -> transformers, once): {time.perf_counter() - started:.1f} s")
        if saved is None:
            del os.environ["LEMA_CACHE_DIR"]
        else:
            os.environ["LEMA_CACHE_DIR"] = saved

    embedded.ensure_model()
    started = time.perf_counter()
    with embedded.embedded_server(progress=False, threads=args.threads) as endpoint:
        print(f"server start (to first answer):         {time.perf_counter() - started:.1f} s "
              f"({args.threads or embedded.default_threads()} threads, {os.cpu_count()} cores)")
        client = openai.OpenAI(base_url=endpoint.base_urls[0], api_key="unused")
        for run in range(args.runs):
            started = time.perf_counter()
            reply = client.chat.completions.create(
                model=endpoint.model,
                messages=[{"role": "user", "content": PROMPT}],
                max_tokens=64,
                temperature=0,
            )
            seconds = time.perf_counter() - started
            tokens = reply.usage.completion_tokens
            print(
                f"generation {run + 1}: {tokens} tokens in {seconds:.2f} s = {tokens / seconds:.1f} tokens/s "
                f"(prompt {reply.usage.prompt_tokens} tokens)"
            )


if __name__ == "__main__":
    main()

"""How fast is the embedded default model on this machine, and how much memory does it hold?

Prints the one-time GGUF -> transformers conversion (into a fresh temporary cache, so the real
cache is left alone; skip it with --no-convert), then, for each server setup and repeat: the
start-up time (process start to the first answered request), and for 1, 8 and 16 concurrent chat
requests of a few hundred tokens (a short prompt, up to --max-tokens new tokens, greedy) the
decode speed in completion tokens/s next to the peak resident memory (RSS) of the server's whole
process tree (bench/peak_memory.py). Memory held when idle after the load ends
each block.

Setups: ``sized`` is the server the project starts (`embedded.plan_memory`: bfloat16, a cache
sized for the work); ``auto`` is how it ran before: float32, and a cache `transformers serve` sizes
from the machine's free memory. Runs alternate between setups, so both see the same load from anything else on the
machine; repeat with --repeats and read the spread.

    python bench/embedded_model.py [--no-convert] [--setups sized,auto] [--repeats 2]
"""
from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import openai
import psutil
from peak_memory import TreeRSS  # bench/peak_memory.py, next to this file

from lema_plugin.llm import embedded

SUBJECTS = [
    "a lighthouse keeper and a cat", "a baker who counts apples", "two trains leaving a station",
    "a farmer selling eggs at a market", "a girl saving coins for a bicycle", "a river and a bridge",
    "a school trip to a museum", "a robot learning to paint", "an old clock in a quiet town",
    "a fisherman and a storm", "a garden with twelve rows of tulips", "a library that never closes",
    "a chess game between friends", "a mountain village in winter", "a shop that sells only hats",
    "a kite festival by the sea",
]
PROMPT = (
    "You are a careful storyteller. Write a long story about {subject}. Give every character a "
    "name, describe the place in detail, include some numbers (prices, distances, times), and end "
    "with a short moral. Write plain paragraphs without headings."
)


def gb(n: int) -> str:
    return f"{n / 1e9:.2f} GB"


def load(endpoint, concurrency: int, max_tokens: int) -> tuple[int, float]:
    """`concurrency` chat requests at once; returns (completion tokens, seconds)."""
    client = openai.OpenAI(base_url=endpoint.base_urls[0], api_key="unused", timeout=900, max_retries=0)

    def ask(index: int) -> int:
        reply = client.chat.completions.create(
            model=endpoint.model,
            messages=[{"role": "user", "content": PROMPT.format(subject=SUBJECTS[index % len(SUBJECTS)])}],
            max_tokens=max_tokens,
            temperature=0,
        )
        return reply.usage.completion_tokens

    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        tokens = sum(pool.map(ask, range(concurrency)))
    return tokens, time.perf_counter() - started


# What the old setup grows to on a 24 GB machine, plus room for everything else: on a shared
# machine it is skipped rather than pushing the others' processes out of memory, and stopped
# when the machine gets down to MIN_FREE.
AUTO_NEEDS = 12e9
MIN_FREE = 1.5e9


def guard(stop: threading.Event) -> None:
    while not stop.wait(0.2):
        if psutil.virtual_memory().available < MIN_FREE:
            for child in psutil.Process().children(recursive=True):
                with contextlib.suppress(psutil.Error):
                    child.kill()
            print(f"  stopped the server: the machine is down to {gb(MIN_FREE)} of free memory", flush=True)
            return


def run_setup(name: str, args, figures: dict) -> None:
    if name == "auto" and psutil.virtual_memory().available < AUTO_NEEDS:
        print(f"[auto] skipped: it grows to about 10 GB and only {gb(psutil.virtual_memory().available)} is free")
        return
    memory = embedded.plan_memory(embedded.ensure_serving_model()) if name == "sized" else False
    label = f"sized: {' '.join(memory.flags())}" if memory else "auto: float32, the server's own cache sizing"
    rss, stop = TreeRSS(), threading.Event()
    if not memory:
        threading.Thread(target=guard, args=(stop,), daemon=True).start()
    started = time.perf_counter()
    try:
        with embedded.embedded_server(progress=False, threads=args.threads, memory=memory) as endpoint:
            print(f"[{label}] start {time.perf_counter() - started:.1f} s, peak RSS {gb(rss.peak)}", flush=True)
            figures.setdefault((name, "start"), []).append((None, rss.peak))
            for concurrency in args.concurrency:
                rss.reset()
                tokens, seconds = load(endpoint, concurrency, args.max_tokens)
                speed = tokens / seconds
                figures.setdefault((name, concurrency), []).append((speed, rss.peak))
                print(
                    f"  concurrency {concurrency:2d}: {tokens:5d} tokens in {seconds:6.1f} s = {speed:5.1f} tokens/s, "
                    f"peak RSS {gb(rss.peak)}",
                    flush=True,
                )
            time.sleep(2.0)
            print(f"  idle after the load: {gb(rss.now())}", flush=True)
    except (openai.OpenAIError, embedded.EmbeddedModelError) as exc:
        print(f"  failed: {exc}", flush=True)
    finally:
        stop.set()
        rss.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-convert", action="store_true", help="Skip timing the one-time conversion.")
    parser.add_argument("--setups", default="sized,auto", help="Comma-separated: sized, auto.")
    parser.add_argument("--repeats", type=int, default=2, help="Runs of each setup, alternating.")
    parser.add_argument("--concurrency", default="1,8,16", help="Comma-separated numbers of requests at once.")
    parser.add_argument("--max-tokens", type=int, default=256, help="New tokens per request.")
    parser.add_argument("--threads", type=int, help="Server CPU threads (default: embedded.default_threads()).")
    args = parser.parse_args()
    args.concurrency = [int(c) for c in args.concurrency.split(",")]

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
    print(f"{args.threads or embedded.default_threads()} server threads, {os.cpu_count()} cores, "
          f"{gb(psutil.virtual_memory().total)} memory ({gb(psutil.virtual_memory().available)} available)")

    figures: dict = {}
    for _ in range(args.repeats):
        for name in args.setups.split(","):
            run_setup(name, args, figures)

    print("\nsummary (median [min-max] over repeats)")
    for (name, phase), runs in sorted(figures.items(), key=lambda item: (item[0][0], str(item[0][1]).zfill(5))):
        speeds = [s for s, _ in runs if s is not None]
        peaks = [p for _, p in runs]
        speed = f"{statistics.median(speeds):5.1f} [{min(speeds):.1f}-{max(speeds):.1f}] tokens/s, " if speeds else ""
        where = "start-up      " if phase == "start" else f"concurrency {phase:2d}"
        print(f"  {name:5s} {where}: {speed}peak RSS {gb(max(peaks))} (max of {len(runs)})")


if __name__ == "__main__":
    main()

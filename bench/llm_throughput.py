"""Throughput of the LLM client against the scripted server at a fixed latency.

For each concurrency level the client streams N distinct chat requests to a server that answers
each one after `--latency` seconds. With perfect overlap the client would finish
concurrency / latency requests per second; the ratio to that ideal shows how much the client
itself holds things back. Client CPU per request is `time.process_time()` of this process over
the run: the server lives in a separate process so its work is not counted.

Each level starts with an unmeasured wave of `concurrency` requests (at least 16) so connections
are open and first-use costs are paid, as they are in a long run. Concurrency 1 uses fewer requests (`--requests-at-1`, default 50),
since 2,000 sequential requests at 200 ms would take almost 7 minutes and measure the same thing.

The client is one asyncio event loop, so it can never finish more than 1 / (client CPU per
request) requests a second; that figure is printed as `1-core cap`. When the ideal rate is above
it (high concurrency), the run is CPU-bound and the ratio to ideal falls accordingly. On a
shared machine CPU figures also rise with the load average, which is printed at start and end.

    python bench/llm_throughput.py [--requests 2000] [--latency 0.2] [--levels 1,8,64,256]
"""
from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from lema_plugin.llm import LLMClient, Request  # noqa: E402
from lema_testing.scripted_server import ScriptedServer, echo_responder  # noqa: E402


def serve(latency: float, pipe) -> None:
    """Child process: run the server; answer "cpu" with its CPU seconds so far, stop on "stop"."""
    with ScriptedServer(echo_responder, latency=latency) as server:
        pipe.send(server.base_url)
        while pipe.recv() == "cpu":
            pipe.send(time.process_time())


async def one_level(base_url: str, concurrency: int, requests: int, progress: bool, cache_dir) -> dict:
    client = LLMClient(cache_dir=cache_dir, concurrency=concurrency, timeout=60, max_retries=2, progress=progress)
    endpoint = _endpoint(base_url)
    warmup = [(endpoint, Request(messages=(("user", f"warm-up {i}"),))) for i in range(max(concurrency, 16))]
    jobs = [(endpoint, Request(messages=(("user", f"Question {i}: what is {i} + {i}?"),))) for i in range(requests)]
    async with client:
        async for _ in client.stream(warmup, desc=f"warm-up c={concurrency}"):
            pass
        cpu0, wall0 = time.process_time(), time.perf_counter()
        failures = 0
        async for _, completion in client.stream(jobs, desc=f"c={concurrency}"):
            failures += not completion.ok
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    return {"wall": wall, "cpu": cpu, "failures": failures}


def _endpoint(base_url: str):
    from lema_plugin.llm import Endpoint

    return Endpoint(model="bench", base_urls=(base_url,))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--requests-at-1", type=int, default=50)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--levels", default="1,8,64,256")
    parser.add_argument("--progress", action="store_true", help="show the progress bar (costs a little CPU)")
    parser.add_argument("--cache", action="store_true", help="write every answer to a fresh on-disk cache, as stages do")
    args = parser.parse_args()

    context = multiprocessing.get_context("spawn")
    pipe, child_end = context.Pipe()
    server = context.Process(target=serve, args=(args.latency, child_end), daemon=True)
    server.start()
    base_url = pipe.recv()

    def server_cpu() -> float:
        pipe.send("cpu")
        return pipe.recv()
    try:
        load = os.getloadavg()
        print(f"server {base_url} (separate process), latency {args.latency * 1000:.0f} ms, "
              f"cache {'on' if args.cache else 'off'}, progress bar {'on' if args.progress else 'off'}, "
              f"{os.cpu_count()} CPUs, load average {load[0]:.2f} at start")
        print(f"{'concurrency':>11} {'requests':>8} {'wall s':>7} {'req/s':>8} {'ideal':>8} {'ratio':>6} "
              f"{'client CPU ms/req':>17} {'1-core cap':>10} {'server CPU ms/req':>17} {'failed':>6}")
        for concurrency in [int(level) for level in args.levels.split(",")]:
            requests = args.requests_at_1 if concurrency == 1 else args.requests
            # server CPU includes the warm-up wave: a slight over-estimate of its share
            server_before = server_cpu()
            with tempfile.TemporaryDirectory() as cache_dir:
                result = asyncio.run(one_level(base_url, concurrency, requests, args.progress, cache_dir if args.cache else False))
            server_ms = (server_cpu() - server_before) / (requests + max(concurrency, 16)) * 1000
            rate = requests / result["wall"]
            client_ms = result["cpu"] / requests * 1000
            ideal = concurrency / args.latency
            print(
                f"{concurrency:>11} {requests:>8} {result['wall']:>7.2f} {rate:>8.1f} {ideal:>8.1f} "
                f"{rate / ideal:>6.1%} {client_ms:>17.3f} {1000 / client_ms:>10.0f} {server_ms:>17.3f} {result['failures']:>6}",
                flush=True,
            )
        print(f"load average {os.getloadavg()[0]:.2f} at end")
    finally:
        pipe.send("stop")
        server.join(timeout=10)
        if server.is_alive():
            server.terminate()


if __name__ == "__main__":
    main()

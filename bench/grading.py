"""Grader throughput on the real gold solutions: items/s, p50/p99 ms per item, slowest items.

Each gold solution (1,319 GSM8K test rationales, 1,000 MATH test solutions) is graded against its
own gold answer with `is_correct`, the call every stage makes; then against another problem's
answer, where proving a mismatch can take the symbolic path (the first such call also pays
math-verify's one-off start-up). Run:

    python bench/grading.py [--data DIR] [--repeat N]

DIR defaults to $LEMA_DATA_DIR or ../shared/data. Goals on a 2-core machine: GSM8K >= 5,000
items/s, MATH >= 300 items/s, p99 < 50 ms.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

from lema_plugin.grading import is_correct, last_boxed


def _rows(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def _items(data: Path) -> dict[str, list[tuple[str, str]]]:
    gsm8k = [(row["answer"], row["answer"].rsplit("####", 1)[1].strip()) for row in _rows(data / "gsm8k" / "test.jsonl")]
    math = [(row["solution"], last_boxed(row["solution"]) or "") for row in _rows(data / "math" / "test_sample1000.jsonl")]
    return {"gsm8k": gsm8k, "math": math}


def _figures(label: str, seconds: list[float], total: float) -> str:
    millis = sorted(t * 1000 for t in seconds)
    p99 = millis[min(len(millis) - 1, int(0.99 * len(millis)))]
    return (f"  {label}: {len(millis) / total:,.0f} items/s, p50 {statistics.median(millis):.3f} ms, "
            f"p99 {p99:.3f} ms, max {millis[-1]:.1f} ms")


def _run(label: str, items: list[tuple[str, str]], repeat: int, dataset: str | None = None) -> None:
    dataset = dataset or label
    timings: list[tuple[float, int]] = []
    cpu: list[float] = []
    correct = 0
    started, cpu_started = time.perf_counter(), time.process_time()
    for _ in range(repeat):
        for index, (text, gold) in enumerate(items):
            t0, c0 = time.perf_counter(), time.process_time()
            correct += is_correct(text, gold, dataset)
            cpu.append(time.process_time() - c0)
            timings.append((time.perf_counter() - t0, index))
    total, cpu_total = time.perf_counter() - started, time.process_time() - cpu_started
    print(f"{label}: {len(timings)} items, correct {correct}/{len(timings)}")
    print(_figures("wall", [t for t, _ in timings], total))
    # CPU time is what the grader costs; wall time also counts other processes on a busy machine
    print(_figures("cpu ", cpu, cpu_total))
    slowest = sorted(zip(cpu, (index for _, index in timings)), reverse=True)[:5]
    print("  slowest (cpu):")
    for seconds, index in slowest:
        text, gold = items[index]
        print(f"  {seconds * 1000:8.2f} ms  item {index}  gold {gold!r}  ({len(text)} chars)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = os.environ.get("LEMA_DATA_DIR") or Path(__file__).resolve().parents[1].parent / "shared" / "data"
    parser.add_argument("--data", type=Path, default=Path(default), help="folder laid out like ../shared/data")
    parser.add_argument("--repeat", type=int, default=1, help="passes over the data (the first includes warm-up)")
    args = parser.parse_args()
    for dataset, items in _items(args.data).items():
        _run(dataset, items, args.repeat)
    # the slow path: another problem's answer is mostly wrong, and proving that may need sympy
    for dataset, items in _items(args.data).items():
        golds = [gold for _, gold in items]
        shifted = [(text, next(g for g in golds[i + 1:] + golds if g != golds[i])) for i, (text, _) in enumerate(items)]
        _run(f"{dataset} vs another problem's answer", shifted, args.repeat, dataset)


if __name__ == "__main__":
    main()

"""`lema report` on a large synthetic run folder: build time, page size, and (when chromium is
installed) how long the page takes to open and to filter its viewer.

The folder has the files and record fields a `lema run` on MATH writes: 50,000 reasoning paths
(12,500 questions x 2 generators x 2 samples), the wrong ones as mistakes, one corrector reply per
mistake (verified or rejected for each reason), gold CoT and a LeMa export. Run:

    python bench/report.py [--paths 50000] [--keep DIR]

Goal on this 2-core machine: the report builds in under 30 s.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SUBJECTS = ("algebra", "counting_and_probability", "geometry", "intermediate_algebra", "number_theory",
            "prealgebra", "precalculus")
WORDS = "the of a number sum each total then so we find value times equal twice less more than".split()


def _text(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words))


def write_jsonl(path: Path, records) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with open(path, "w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record) + "\n")
            count += 1
    return count


def make_run(root: Path, paths_wanted: int, seed: int = 0) -> dict[str, int]:
    rng = random.Random(seed)
    generators = ("llama-7b", "llama-70b")
    samples = 2
    questions = paths_wanted // (len(generators) * samples)
    problems = [{"id": f"p{i}", "dataset": "math", "question": _text(rng, 45) + "?", "answer": str(i),
                 "level": 1 + i % 5, "subject": SUBJECTS[i % len(SUBJECTS)]} for i in range(questions)]
    paths, mistakes, corrections, rejected = [], [], [], []
    for problem in problems:
        for g, model in enumerate(generators):
            for k in range(samples):
                right = rng.random() < (0.3 if g == 0 else 0.6)
                steps = [_text(rng, 12) + "." for _ in range(rng.randint(3, 8))]
                answer = problem["answer"] if right else str(-rng.randint(1, 99))
                steps[-1] += f" The answer is {answer}."
                fields = {key: value for key, value in problem.items() if key != "id"}
                path = {"id": f"{problem['id']}-{g}-{k}", "problem_id": problem["id"], **fields, "model": model,
                        "sample_index": k, "text": "\n".join(steps), "steps": steps, "prediction": answer,
                        "correct": right, "finish_reason": "stop", "kind": "correct" if right else "wrong",
                        "prompt_tokens": 120, "completion_tokens": 12 * len(steps)}
                paths.append(path)
                if not right and k == 0:
                    mistakes.append(path)
    for m in mistakes:
        roll = rng.random()
        step = rng.randint(1, len(m["steps"]))
        reply = {"id": "c" + m["id"], "path_id": m["id"], "problem_id": m["problem_id"], "dataset": "math",
                 "question": m["question"], "answer": m["answer"], "source_model": m["model"], "steps": m["steps"],
                 "level": m["level"], "subject": m["subject"], "corrector": "gpt-4o", "attempt": 0,
                 "raw": _text(rng, 80), "incorrect_step": step, "explanation": _text(rng, 25) + ".",
                 "corrected_solution": _text(rng, 50) + f" The answer is {m['answer']}.", "prediction": m["answer"],
                 "usage": {"prompt_tokens": 900, "completion_tokens": 120}}
        if roll < 0.6:
            corrections.append({**reply, "correct": True})
        else:
            reason = "wrong_answer" if roll < 0.85 else "bad_step" if roll < 0.95 else "unparseable"
            rejected.append({**reply, "correct": False, "reason": reason, "detail": reason})
    counts = {
        "sample/paths.jsonl": write_jsonl(root / "sample" / "paths.jsonl", paths),
        "sample/mistakes.jsonl": write_jsonl(root / "sample" / "mistakes.jsonl", mistakes),
        "correct/corrections.jsonl": write_jsonl(root / "correct" / "corrections.jsonl", corrections),
        "correct/rejected.jsonl": write_jsonl(root / "correct" / "rejected.jsonl", rejected),
        "cot/cot.jsonl": write_jsonl(root / "cot" / "cot.jsonl", ({"id": "cot" + p["id"], "problem_id": p["id"],
                                                                    "question": p["question"], "rationale": "..."} for p in problems)),
        "data/lema/train.jsonl": write_jsonl(root / "data" / "lema" / "train.jsonl",
                                             ({"id": c["id"], "kind": "correction"} for c in corrections)),
    }
    (root / "data" / "lema" / "dataset_info.json").write_text(json.dumps({"counts": {"train": {"examples": len(corrections)}}}))
    return counts


async def _browse(html: Path) -> dict[str, float]:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    from chromium import open_browser

    figures = {}
    async with open_browser() as page:
        started = time.perf_counter()
        await page.goto(html.resolve().as_uri())
        await page.evaluate("document.getElementById('viewer-count').textContent")
        figures["open and first render (s)"] = time.perf_counter() - started
        started = time.perf_counter()
        count = await page.evaluate("(s => { s.value = 'llama-70b'; s.dispatchEvent(new Event('change'));"
                                    " return document.getElementById('viewer-count').textContent; })"
                                    "(document.getElementById('filter-generator'))")
        figures["filter by generator (s)"] = time.perf_counter() - started
        figures["cards in the DOM"] = await page.evaluate("document.querySelectorAll('.item').length")
        figures["errors"] = len(page.errors)
        print(f"after filtering: {count}")
    return figures


def _child_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--paths", type=int, default=50_000)
    parser.add_argument("--keep", type=Path, help="write the run folder here and keep it")
    args = parser.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="lema-report-bench-"))
    started = time.perf_counter()
    counts = make_run(root, args.paths)
    print(f"synthetic run folder {root} ({time.perf_counter() - started:.1f}s to write)")
    for name, count in counts.items():
        print(f"  {name:28} {count:>7,} records")
    lema = Path(sys.executable).parent / "lema"
    started, cpu = time.perf_counter(), _child_cpu()
    subprocess.run([str(lema), "report", str(root)], check=True)
    elapsed, cpu = time.perf_counter() - started, _child_cpu() - cpu
    html = root / "report.html"
    # on a shared machine the wall time includes waiting for a core; the CPU time does not
    print(f"lema report: {elapsed:.1f}s wall, {cpu:.1f}s CPU (goal < 30 s), {html.stat().st_size / 1e6:.1f} MB page, "
          f"load average {os.getloadavg()[0]:.1f}")
    try:
        for name, value in asyncio.run(_browse(html)).items():
            print(f"  chromium {name}: {value:.2f}" if isinstance(value, float) else f"  chromium {name}: {value}")
    except FileNotFoundError as exc:
        print(f"  (page not timed in a browser: {exc})")
    if args.keep is None:
        shutil.rmtree(root)


if __name__ == "__main__":
    main()

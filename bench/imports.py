"""What a user waits for before anything is asked: `lema --help`, a stage's `--help`, importing a
stage's settings, loading a recipe. Each is timed in a fresh interpreter (the median of several
runs, wall clock), with the number of lema_plugin modules it loads and whether any heavy package
(openai, matplotlib, torch, transformers, datasets) came along.

    python bench/imports.py [--runs 7]

Goal on this 2-core machine: `lema --help` under 1 s, a settings import under 0.3 s, no heavy
package in any of them (tests/test_contract.py keeps the last one).
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys

HEAVY = ("openai", "matplotlib", "torch", "transformers", "datasets")
CASES = {
    "lema --help": "from lema_plugin.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass",
    "lema correct --help": "from lema_plugin.cli import main\ntry:\n    main(['correct', '--help'])\nexcept SystemExit:\n    pass",
    "import lema_plugin.sample.spec (SampleSettings)": "import lema_plugin.sample.spec",
    "import lema_plugin.settings": "import lema_plugin.settings",
    "load_recipe('demo')": "from lema_plugin.recipe import load_recipe\nload_recipe('demo')",
}
PROBE = """
import io, contextlib, json, sys, time
started = time.perf_counter()
with contextlib.redirect_stdout(io.StringIO()):
{code}
elapsed = time.perf_counter() - started
print(json.dumps({{"seconds": elapsed, "modules": sum(m.startswith("lema_plugin") for m in sys.modules),
                  "heavy": sorted(m for m in {heavy!r} if m in sys.modules)}}))
"""


def measure(code: str, runs: int) -> dict:
    body = "\n".join("    " + line for line in code.splitlines())
    results = []
    for _ in range(runs):
        started = __import__("time").perf_counter()
        out = subprocess.run([sys.executable, "-c", PROBE.format(code=body, heavy=HEAVY)], capture_output=True,
                             text=True, check=True).stdout
        wall = __import__("time").perf_counter() - started
        result = json.loads(out.strip().splitlines()[-1])
        result["wall"] = wall
        results.append(result)
    return {"import": statistics.median(r["seconds"] for r in results),
            "wall": statistics.median(r["wall"] for r in results),
            "modules": results[-1]["modules"], "heavy": results[-1]["heavy"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    print(f"{'what':<48} {'in-process s':>12} {'wall s':>8} {'modules':>8}  heavy packages")
    for name, code in CASES.items():
        r = measure(code, args.runs)
        print(f"{name:<48} {r['import']:>12.2f} {r['wall']:>8.2f} {r['modules']:>8}  {', '.join(r['heavy']) or 'none'}")


if __name__ == "__main__":
    main()

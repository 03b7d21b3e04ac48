"""Time `lema doctor`'s checks, stage by stage, for one or more configs (its CPU part where no GPU is).

The doctor promises to finish in under five minutes on the box it checks; this prints where the
time goes (building the tiny model, axolotl's training, the legacy merge, lm-eval), read from the
lines it prints. Nothing is asserted.

    python bench/doctor.py llama2-70b-gsm8k-lema qwen2.5-1.5b-instruct-gsm8k-step-dpo
"""
from __future__ import annotations

import re
import sys
import tempfile
import time

from lema_plugin.doctor import run_doctor


def main(configs: list[str]) -> None:
    lines: list[tuple[float, str]] = []
    started = time.monotonic()

    def echo(line: str) -> None:
        lines.append((time.monotonic() - started, line))
        print(f"{time.monotonic() - started:7.1f}s  {line}", flush=True)

    with tempfile.TemporaryDirectory() as work:
        run_doctor(configs or ["llama2-70b-gsm8k-lema"], echo=echo, work_dir=work)
    total = time.monotonic() - started
    stages = {}
    for _, line in lines:
        match = re.search(r" (train|merge|eval): .*?\((\d+) s", line)
        if match:
            stages[match.group(1)] = stages.get(match.group(1), 0) + int(match.group(2))
    print(f"\ntotal {total:.0f} s for {len(configs) or 1} config(s); " + ", ".join(f"{k} {v} s" for k, v in stages.items()))


if __name__ == "__main__":
    main(sys.argv[1:])

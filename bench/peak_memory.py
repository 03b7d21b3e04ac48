"""Run a command and print the peak resident memory (RSS) of its whole process tree.

The tree is the command and everything it starts (the embedded server, axolotl, lm_eval), read
from /proc by psutil every 50 ms; a short peak between two readings can be missed. RSS counts
pages shared by two processes of the tree twice, so the figure errs on the high side.

    python bench/peak_memory.py lema run demo --limit 2 --no-train --out /tmp/emb-demo
"""
from __future__ import annotations

import subprocess
import sys
import threading
import time

import psutil


class TreeRSS:
    """Peak RSS of the processes under `root` (default: the children of this process)."""

    def __init__(self, root: psutil.Process | None = None, include_root: bool = False, interval: float = 0.05):
        self.root = root or psutil.Process()
        self.include_root = include_root
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def now(self) -> int:
        total = 0
        try:
            processes = self.root.children(recursive=True) + ([self.root] if self.include_root else [])
        except psutil.Error:
            return 0  # the root has ended
        for process in processes:
            try:
                total += process.memory_info().rss
            except psutil.Error:
                pass  # ended between listing and reading
        return total

    def reset(self) -> None:
        self.peak = self.now()

    def _watch(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak = max(self.peak, self.now())

    def close(self) -> None:
        self._stop.set()
        self._thread.join()


def main() -> None:
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    started = time.perf_counter()
    process = subprocess.Popen(sys.argv[1:])
    rss = TreeRSS(psutil.Process(process.pid), include_root=True)
    code = process.wait()
    rss.close()
    print(f"peak RSS of the process tree: {rss.peak / 1e9:.2f} GB ({rss.peak / 2**30:.2f} GiB) "
          f"in {time.perf_counter() - started:.0f} s, exit code {code}", file=sys.stderr)
    sys.exit(code)


if __name__ == "__main__":
    main()

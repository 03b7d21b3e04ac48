"""On-disk response cache: one small JSON file per request hash.

A re-run of a stage must not pay for answers it already has, and several processes (or a crash
mid-write) must never leave a half-written entry that a later run trusts. One file per key,
written to a temporary name and moved into place with `os.replace`, gives both: readers see
either no file or a whole one, and two writers of the same key simply race to write the same
answer. Keys are sharded into 256 folders so no folder grows huge.

Only successful completions are stored; failures are retried on the next run. Entries hold the
answer and token counts only, never the API key or the base URL.
"""
from __future__ import annotations

import itertools
import json
import os
import random
from pathlib import Path

from ..keys import scrub
from ..records import repair_text


_counter = itertools.count()


def default_cache_dir() -> Path:
    """$LEMA_CACHE_DIR/responses, else ~/.cache/lema/responses."""
    root = os.environ.get("LEMA_CACHE_DIR")
    base = Path(root) if root else Path.home() / ".cache" / "lema"
    return base / "responses"


class ResponseCache:
    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        self._made: set[Path] = set()  # shard folders known to exist

    def path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict | None:
        """The stored entry, or None when absent or unreadable (a damaged file is a miss)."""
        try:
            with open(self.path(key), "rb") as handle:
                entry = json.loads(handle.read())
        except (OSError, ValueError):
            return None
        return entry if isinstance(entry, dict) else None

    def put(self, key: str, entry: dict) -> None:
        target = self.path(key)
        blob = scrub(repair_text(json.dumps(entry, ensure_ascii=False)))  # always writable as UTF-8, no key
        if target.parent not in self._made:
            target.parent.mkdir(parents=True, exist_ok=True)
            self._made.add(target.parent)
        while True:  # a name no other writer (thread, process, machine) is using
            tmp = target.parent / f".{key[:16]}.{os.getpid()}.{next(_counter)}.{random.getrandbits(32):08x}.tmp"
            try:
                handle = open(tmp, "x", encoding="utf-8")
                break
            except FileExistsError:
                continue
        try:
            with handle:
                handle.write(blob)
            os.replace(tmp, target)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise

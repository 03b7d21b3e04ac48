"""The run store: an append-only JSONL file per output, shared by every stage.

A stage appends each record as soon as it has it (one line, flushed), so a crash or Ctrl-C
loses at most the line being written. On open, the store reads what is there, drops a torn last
line, and reports which ids are done; the stage then skips them and pays for nothing twice.
Final, derived files (summaries, exports) are written with `write_atomic` so a reader never
sees half a file.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Iterable, Iterator


class RunStore:
    """Append-only JSONL records keyed by their `id`."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._records: dict[str, dict] = {}
        self._load()
        self._handle = open(self.path, "a", encoding="utf-8")

    def _load(self) -> None:
        if not self.path.exists():
            return
        data = self.path.read_bytes()
        good_end = 0
        for line in data.splitlines(keepends=True):
            if not line.endswith(b"\n"):
                break  # torn write from an interrupted run
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                break
            good_end += len(line)
            if isinstance(record, dict) and "id" in record:
                self._records[record["id"]] = record
        if good_end < len(data):  # cut the torn tail so appends start on a clean line
            with open(self.path, "r+b") as handle:
                handle.truncate(good_end)

    def __contains__(self, record_id: str) -> bool:
        return record_id in self._records

    def __len__(self) -> int:
        return len(self._records)

    def __iter__(self) -> Iterator[dict]:
        return iter(list(self._records.values()))

    def get(self, record_id: str) -> dict | None:
        return self._records.get(record_id)

    def ids(self) -> set[str]:
        return set(self._records)

    def append(self, record: dict) -> bool:
        """Write `record` unless its id is already stored; return whether it was written."""
        record_id = record["id"]
        if record_id in self._records:
            return False
        self._handle.write(json.dumps(record, ensure_ascii=False) + "\n")
        self._handle.flush()
        self._records[record_id] = record
        return True

    def close(self) -> None:
        if not self._handle.closed:
            self._handle.flush()
            os.fsync(self._handle.fileno())
            self._handle.close()

    def __enter__(self) -> "RunStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def write_atomic(path: str | Path, text: str) -> None:
    """Write `text` to `path` through a temporary file and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_jsonl_atomic(path: str | Path, records: Iterable[dict]) -> int:
    """Write records as JSONL atomically; return how many were written."""
    lines = [json.dumps(r, ensure_ascii=False) for r in records]
    write_atomic(path, "".join(line + "\n" for line in lines))
    return len(lines)

"""Record ids and JSONL reading with precise errors.

Every record carries an `id` that is a hash of the content that defines it (problem text, model,
sampling settings, sample index, ...), so the same work always gets the same id and a re-run can
tell what is already done.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Iterable, Iterator


class RecordError(ValueError):
    """Bad input: carries file, line and field so the CLI can print one precise line."""

    def __init__(self, path: str | Path, line: int | None, message: str, field: str | None = None):
        self.path, self.line, self.field = str(path), line, field
        where = f"{self.path}:{line}" if line is not None else self.path
        what = f"field {field!r}: " if field else ""
        super().__init__(f"{where}: {what}{message}")


def make_id(*parts: object) -> str:
    """A short stable content hash of `parts` (JSON-encoded, so types and order matter)."""
    blob = json.dumps(parts, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]


def numbered_jsonl(path: str | Path) -> Iterator[tuple[int, dict]]:
    """Yield (line number, object) for each non-blank line; RecordError on a line that is not
    a JSON object."""
    with open(path, encoding="utf-8") as handle:
        for lineno, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise RecordError(path, lineno, f"not valid JSON ({exc.msg})") from None
            if not isinstance(record, dict):
                raise RecordError(path, lineno, "expected a JSON object")
            yield lineno, record


def read_jsonl(path: str | Path, required: Iterable[str] = ()) -> Iterator[dict]:
    """Yield the objects of a JSONL file; raise RecordError naming file, line and field."""
    required = tuple(required)
    for lineno, record in numbered_jsonl(path):
        for name in required:
            if record.get(name) in (None, ""):
                raise RecordError(path, lineno, "missing or empty", field=name)
        yield record

"""Record ids and JSONL reading with precise errors.

Every record carries an `id` that is a hash of the content that defines it (problem text, model,
sampling settings, sample index, ...), so the same work always gets the same id and a re-run can
tell what is already done.
"""
from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Iterable, Iterator

from .errors import LemaError

# A UTF-16 surrogate on its own (half of an emoji a server cut apart, or a `\ud83d` escape in an
# input file) is a valid Python str but cannot be written as UTF-8.
_SURROGATE = re.compile("[\ud800-\udfff]")
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


class RecordError(LemaError, ValueError):
    """Bad input: carries file, line and field so the CLI can print one precise line."""

    def __init__(self, path: str | Path, line: int | None, message: str, field: str | None = None):
        self.path, self.line, self.field, self.reason = str(path), line, field, message
        where = f"{self.path}:{line}" if line is not None else self.path
        what = f"field {field!r}: " if field else ""
        super().__init__(f"{where}: {what}{message}")


def make_id(*parts: object) -> str:
    """A short stable content hash of `parts` (JSON-encoded, so types and order matter)."""
    blob = json.dumps(parts, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]


def repair_text(text: str) -> str:
    """`text` with every lone surrogate replaced by U+FFFD.

    The policy for text that cannot be encoded: it is repaired once, where it enters (the LLM
    client for replies, `parse_line` for input files), so every later step (ids, the cache, the
    store, the grader) sees only encodable text and a rerun never trips over the same reply.
    """
    return _SURROGATE.sub("\ufffd", text) if _SURROGATE.search(text) else text


def repair_strings(value):
    """`value` (parsed JSON) with `repair_text` applied to every string in it, keys included."""
    if isinstance(value, str):
        return repair_text(value)
    if isinstance(value, list):
        return [repair_strings(v) for v in value]
    if isinstance(value, dict):
        return {repair_strings(k): repair_strings(v) for k, v in value.items()}
    return value


def parse_line(raw: bytes, path: str | Path, lineno: int) -> dict | None:
    """One JSONL line as an object (None for a blank line); RecordError naming file and line for
    bytes that are not UTF-8, text that is not JSON, JSON nested too deep to read, or a value that
    is not an object."""
    try:
        line = raw.decode("utf-8-sig" if lineno == 1 else "utf-8")
    except UnicodeDecodeError as exc:
        raise RecordError(path, lineno, f"not valid UTF-8 (byte 0x{raw[exc.start]:02x} at column {exc.start + 1})") from None
    if not line.strip():
        return None
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise RecordError(path, lineno, f"not valid JSON ({exc.msg})") from None
    except RecursionError:
        raise RecordError(path, lineno, "JSON nested too deeply to read") from None
    if not isinstance(record, dict):
        raise RecordError(path, lineno, "expected a JSON object")
    if _SURROGATE_ESCAPE.search(line):
        record = repair_strings(record)
    return record


def numbered_jsonl(path: str | Path) -> Iterator[tuple[int, dict]]:
    """Yield (line number, object) for each non-blank line; RecordError on a line that is not
    a JSON object (see `parse_line`)."""
    with open(path, "rb") as handle:
        for lineno, raw in enumerate(handle, 1):
            record = parse_line(raw, path, lineno)
            if record is not None:
                yield lineno, record


_TYPE_NAMES = {str: "text", int: "a whole number", float: "a number", bool: "true or false", list: "a list",
               dict: "an object", type(None): "null"}


def wrong_field(record: dict, fields: dict[str, tuple[type, ...]]) -> tuple[str, str] | None:
    """(field, what it should be) for the first field of `record` whose value has none of the
    types allowed for it (a missing field counts as null; `True` is no number), else None."""
    for name, kinds in fields.items():
        value = record.get(name)
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
            allowed = " or ".join(_TYPE_NAMES.get(k, k.__name__) for k in kinds)
            shown = json.dumps(value, ensure_ascii=False, default=str)
            return name, f"expected {allowed}, got {shown if len(shown) <= 40 else shown[:37] + '...'}"
    return None


def check_fields(record: dict, fields: dict[str, tuple[type, ...]], path: str | Path, line: int | None) -> dict:
    """`record` if every field has an allowed type; else RecordError naming file, line and field.
    Inputs are checked this way before any request is paid for."""
    wrong = wrong_field(record, fields)
    if wrong is not None:
        raise RecordError(path, line, wrong[1], field=wrong[0])
    return record


def read_jsonl(path: str | Path, required: Iterable[str] = ()) -> Iterator[dict]:
    """Yield the objects of a JSONL file; raise RecordError naming file, line and field."""
    required = tuple(required)
    for lineno, record in numbered_jsonl(path):
        for name in required:
            if record.get(name) in (None, ""):
                raise RecordError(path, lineno, "missing or empty", field=name)
        yield record

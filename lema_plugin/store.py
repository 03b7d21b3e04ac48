"""The run store: an append-only JSONL file per output, shared by every stage.

A stage appends each record as soon as it has it (one line, flushed), so a crash or Ctrl-C
loses at most the line being written. On open, the store takes the run folder's lock (one writer
per folder, see `runlock`), reads what is there and reports which ids are done; the stage then
skips them and pays for nothing twice.

What the store does with a file it did not write whole:

- a torn last line (no newline: the run stopped mid-write) is cut;
- a damaged line anywhere else (not UTF-8, not JSON, not a record with an id, or a record whose
  fields have the wrong types for this file) is never dropped silently: it is moved, as it was,
  to `FILE.damaged`, a warning names the file, line and field, and every good record before and
  after it is kept. A record set aside does not count as done, so a rerun asks for it again
  (usually from the response cache, for free): a bad stored record never poisons a folder.

A store given `fields` checks each record against them (`records.wrong_field`) when it reads the
file and before it appends: a record only counts as done once it has the shape its stage reads.

Final, derived files (summaries, exports) are written with `write_atomic` so a reader never
sees half a file; they get the user's umask like any other file.

Every line appended and every file written here passes through `keys.scrub` first, so no API key
reaches the disk whatever path its text came by; and a full disk (or a quota, or a read-only file
system) is one line naming the file (`OutputError`), not a bare "No space left on device".
`load_lines` is the damaged-line handling itself, for other append-only files of a run folder
(the Batch API ledger, the spend ledger).
"""
from __future__ import annotations

import errno
import itertools
import json
import logging
import os
import random
from pathlib import Path
from typing import Callable, Iterable, Iterator

from . import runlock
from .keys import scrub, scrub_bytes
from .records import RecordError, parse_line, repair_text, wrong_field

log = logging.getLogger(__name__)
_counter = itertools.count()
DAMAGED_SUFFIX = ".damaged"
DISK_ERRNOS = {errno.ENOSPC, errno.EROFS, errno.EDQUOT}


class OutputError(RecordError):
    """An output path that cannot be created or written (a file in the way, no permission)."""


def make_folder(folder: str | Path) -> Path:
    """Create `folder` (and its parents); OutputError naming the path if that is impossible."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise OutputError(folder, None, "cannot create this folder: a file with that name is in the way") from None
    except NotADirectoryError:
        raise OutputError(folder, None, "cannot create this folder: part of the path is a file") from None
    except PermissionError:
        raise OutputError(folder, None, "cannot create this folder: permission denied") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputError(folder, None, "cannot write in this folder: permission denied")
    return folder


def dumps_line(record: dict) -> str:
    """One JSONL line (with its newline) that can always be written as UTF-8, holding no key."""
    return scrub(repair_text(json.dumps(record, ensure_ascii=False))) + "\n"


def load_lines(path: Path, check: Callable[[dict, int], None] | None = None,
               move_damaged: bool = True) -> tuple[list[dict], int]:
    """The good records of the JSONL file at `path` (none when it is missing) and how many
    damaged lines it held. A torn last line is cut; a damaged line (not UTF-8, not JSON, or one
    `check(record, lineno)` refuses with a RecordError) is moved as it was to `FILE.damaged` with
    a warning naming file and line, and every good line is kept (see the module docstring).
    With `move_damaged` False (a preview) nothing is changed on disk."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return [], 0
    good: list[bytes] = []
    damaged: list[bytes] = []
    records: list[dict] = []
    *lines, torn = data.split(b"\n")  # torn: what follows the last newline (a cut write)
    for lineno, body in enumerate(lines, 1):
        line = body + b"\n"
        try:
            record = parse_line(line, path, lineno)
            if record is not None and check is not None:
                check(record, lineno)
        except RecordError as exc:
            damaged.append(line)
            if move_damaged:
                log.warning("%s; line set aside in %s%s", exc, path.name, DAMAGED_SUFFIX)
            continue
        if record is not None:
            good.append(line)
            records.append(record)
    if not move_damaged:
        return records, len(damaged)
    if damaged:
        set_aside(path, b"".join(damaged))
        _replace_bytes(path, b"".join(good))
    elif torn:  # cut the torn tail so appends start on a clean line
        with open(path, "r+b") as handle:
            handle.truncate(len(data) - len(torn))
    return records, len(damaged)


def set_aside(path: Path, data: bytes) -> Path:
    """Append damaged `data` (keys scrubbed) to `PATH.damaged`; return that file."""
    target = path.with_name(path.name + DAMAGED_SUFFIX)
    try:
        with open(target, "ab") as handle:
            handle.write(scrub_bytes(data))
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as exc:
        raise disk_error(target, exc) from None
    return target


def disk_error(path: Path, exc: OSError) -> OSError:
    """A full disk, a quota or a read-only file system as one line naming `path` (an
    OutputError); any other OSError as it was."""
    if exc.errno in DISK_ERRNOS:
        return OutputError(path, None, f"cannot write: {os.strerror(exc.errno)}")
    return exc


class RunStore:
    """Append-only JSONL records keyed by their `id`."""

    def __init__(self, path: str | Path, fields: dict[str, tuple[type, ...]] | None = None,
                 read_only: bool = False, before_append: Callable[[dict], bool | None] | None = None):
        """`read_only` (a cost preview) reads what is stored and writes nothing: no folder, no
        lock, no file, no damaged lines moved. `before_append(record)` is called before the records
        this store writes until it returns anything but False (a run folder remembers its settings
        once it holds an answer: the record of a failed request does not count)."""
        self.path = Path(path)
        self.fields = fields or {}
        self.read_only = read_only
        self._before_append = before_append
        self._records: dict[str, dict] = {}
        self._handle = None
        if read_only:
            self._load(move_damaged=False)
            return
        self._lock = runlock.acquire(make_folder(self.path.parent))
        try:
            self._load()
            self._handle = open(self.path, "a", encoding="utf-8")
        except BaseException:
            runlock.release(self._lock)
            raise

    def _load(self, move_damaged: bool = True) -> None:
        def check(record: dict, lineno: int) -> None:
            if not isinstance(record.get("id"), str):
                raise RecordError(self.path, lineno, "no string id", field="id")
            wrong = wrong_field(record, self.fields)
            if wrong is not None:
                raise RecordError(self.path, lineno, wrong[1], field=wrong[0])

        for record in load_lines(self.path, check, move_damaged)[0]:
            self._records[record["id"]] = record

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
        wrong = wrong_field(record, self.fields)
        if wrong is not None:  # a stage built a record it could not read back: a bug, not input
            raise TypeError(f"{self.path}: record {record_id}: field {wrong[0]!r}: {wrong[1]}")
        if self.read_only:
            raise TypeError(f"{self.path}: a read-only store (a cost preview) was asked to write")
        if self._before_append is not None and self._before_append(record) is not False:
            self._before_append = None  # done once; a hook that returns False is asked again next time
        try:
            self._handle.write(dumps_line(record))
            self._handle.flush()
        except OSError as exc:
            raise disk_error(self.path, exc) from None
        self._records[record_id] = record
        return True

    def close(self) -> None:
        if self._handle is not None and not self._handle.closed:
            try:
                self._handle.flush()
                os.fsync(self._handle.fileno())
                self._handle.close()
            except OSError as exc:
                raise disk_error(self.path, exc) from None
            finally:
                runlock.release(self._lock)

    def __enter__(self) -> "RunStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def write_atomic(path: str | Path, text: str) -> None:
    """Write `text` to `path` through a temporary file and a rename, holding the folder's lock
    while doing so (a rename must not replace a file another run is appending to)."""
    path = Path(path)
    key = runlock.acquire(make_folder(path.parent))
    try:
        _replace_bytes(path, scrub(repair_text(text)).encode("utf-8"))
    finally:
        runlock.release(key)


def _replace_bytes(path: Path, data: bytes) -> None:
    """Put `data` at `path` atomically. The temporary file is created like any other file (mode
    0666 less the umask), not 0600 as `mkstemp` would make it."""
    while True:
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{next(_counter)}.{random.getrandbits(32):08x}.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            break
        except FileExistsError:
            continue
        except (PermissionError, IsADirectoryError, NotADirectoryError) as exc:
            raise OutputError(path, None, f"cannot write here: {os.strerror(exc.errno or errno.EACCES)}") from None
        except OSError as exc:
            raise disk_error(path, exc) from None
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except IsADirectoryError:
        os.unlink(tmp)
        raise OutputError(path, None, "cannot write this file: a folder with that name is in the way") from None
    except OSError as exc:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise disk_error(path, exc) from None
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_jsonl_atomic(path: str | Path, records: Iterable[dict]) -> int:
    """Write records as JSONL atomically; return how many were written."""
    lines = [dumps_line(r) for r in records]
    write_atomic(path, "".join(lines))
    return len(lines)

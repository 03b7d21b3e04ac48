"""One writer per run folder.

Two runs appending to the same store files lose records: one rewrites a file the other is still
appending to. So every process that writes a run folder first takes its lock, a file `.lema.lock`
in the folder that holds an exclusive `flock` and names the holder (pid, host, command line). A
second process is refused with one line naming the holder. The kernel drops a `flock` when its
process dies, so a lock left behind by a killed run is simply taken over; no pid guessing.

The lock is re-entrant within a process (`lema run` opens several stores in one folder): it
counts its holders and is let go, and its file removed, when the last one releases it.
"""
from __future__ import annotations

import fcntl
import json
import os
import socket
import sys
import threading
from pathlib import Path

from .records import RecordError

LOCK_NAME = ".lema.lock"

_held: dict[Path, list] = {}  # resolved folder -> [file descriptor, holders]
_guard = threading.Lock()


class RunFolderBusy(RecordError):
    """Another live process holds the run folder's lock."""

    def __init__(self, folder: Path, holder: str):
        super().__init__(folder, None, f"in use by another run ({holder}); wait for it to end or choose another --out")


def _holder_text(raw: str) -> str:
    try:
        info = json.loads(raw)
        return f"pid {info['pid']} on {info['host']}: {info['command']}"
    except (ValueError, KeyError, TypeError):
        return "holder unknown"


def acquire(folder: str | Path) -> Path:
    """Take (or re-enter) the lock of `folder`, which must exist; raise RunFolderBusy if another
    process holds it. Returns the key to pass to `release`."""
    key = Path(folder).resolve()
    with _guard:
        if key in _held:
            _held[key][1] += 1
            return key
        path = key / LOCK_NAME
        while True:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _holder_text(os.pread(fd, 4096, 0).decode("utf-8", "replace"))
                os.close(fd)
                raise RunFolderBusy(key, holder) from None
            except BaseException:
                os.close(fd)
                raise
            # The file may have been removed by a holder that just let go: then our lock is on a
            # file nobody else will see, so start over on the new one.
            try:
                same = os.stat(path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        info = {"pid": os.getpid(), "host": socket.gethostname(), "command": " ".join(sys.argv)}
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(info) + "\n").encode("utf-8", "replace"), 0)
        _held[key] = [fd, 1]
        return key


def release(key: Path) -> None:
    """Let go of one hold on the lock taken by `acquire`; the last one removes the lock file."""
    with _guard:
        entry = _held.get(key)
        if entry is None:
            return
        entry[1] -= 1
        if entry[1] > 0:
            return
        del _held[key]
        fd = entry[0]
        try:
            os.unlink(key / LOCK_NAME)  # while still locked, so nobody locks the old file
        except OSError:
            pass
        os.close(fd)

"""What a run folder has spent: the ledger that makes `--max-cost` the folder's budget.

`OUT/.lema-spend.jsonl` holds one line per reservation and one per settlement, appended through
the run store (flushed, damaged lines set aside, keys scrubbed):

    {"id": "r3f9a...", "usd": 0.0123}    reserved: the worst case of one HTTP attempt or one batch,
                                          written BEFORE the request is sent or the batch created
    {"id": "s3f9a...", "usd": 0.0041}    settled: what that attempt or batch really cost

What the folder has spent is every settlement plus every reservation never settled: a run killed
with requests in flight (kill -9 included: the line is in the file before the request leaves)
may have been billed for them, so they count at their worst case, and no rerun can take the
folder past its cap. The ledger is kept by `--fresh` (the money was spent), and a preview only
reads it.
"""
from __future__ import annotations

import math
import uuid
from pathlib import Path

SPEND_FILE = ".lema-spend.jsonl"


class SpendLedger:
    """The spend lines of one run folder (`folder` None: kept in memory only, e.g. `lema grade`
    without a run folder)."""

    def __init__(self, folder: str | Path | None = None, read_only: bool = False):
        self.path = Path(folder) / SPEND_FILE if folder is not None else None
        self.read_only = read_only
        self.settled = 0.0
        self.open: dict[str, float] = {}  # reservation token -> USD, not settled yet
        self._store = None
        if self.path is not None:
            from ..records import RecordError
            from ..store import load_lines

            path = self.path

            def check(row: dict, lineno: int) -> None:
                if not _spend_line(row):
                    raise RecordError(path, lineno, "not a spend line (id r... or s..., usd a number of at least 0)")

            for row in load_lines(self.path, check, move_damaged=not read_only)[0]:
                self._take(row)

    def _take(self, row: dict) -> None:
        kind, token = row["id"][0], row["id"][1:]
        if kind == "r":
            self.open.setdefault(token, float(row["usd"]))
        elif kind == "s" and token in self.open:
            del self.open[token]
            self.settled += float(row["usd"])

    @property
    def spent(self) -> float:
        """USD settled plus USD reserved and not settled (see the module docstring)."""
        return self.settled + sum(self.open.values())

    def reserve(self, usd: float) -> str:
        """Write a reservation of `usd` and return its token (write first, send after)."""
        token = uuid.uuid4().hex[:16]
        self._write({"id": "r" + token, "usd": round(usd, 9)})
        return token

    def settle(self, token: str, usd: float) -> None:
        """Replace the reservation `token` by what was really spent (once; a repeat is ignored)."""
        if token not in self.open:
            return
        self._write({"id": "s" + token, "usd": round(usd, 9)})

    def _write(self, row: dict) -> None:
        if self.path is not None and not self.read_only:
            if self._store is None:
                from ..store import RunStore

                self._store = RunStore(self.path)
            self._store.append(row)
        self._take(row)

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None


def _spend_line(row: dict) -> bool:
    usd = row.get("usd")
    return (isinstance(row.get("id"), str) and row["id"][:1] in ("r", "s") and isinstance(usd, (int, float))
            and not isinstance(usd, bool) and math.isfinite(usd) and usd >= 0)

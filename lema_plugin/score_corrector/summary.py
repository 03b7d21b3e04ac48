"""What a score run found, as one table with a column per corrector, and as JSON.

Computed from the stored replies and today's labels, so a resumed run reports the whole run.
Tokens per split are what the stored replies record; dollars come from the folder's ledger
(`costs`). The table's rows are kept in the JSON (`table`), so the report shows exactly what the
terminal showed.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from lema_plugin.summaries import request_lines
from lema_plugin.tables import format_table

from .costs import ALL, RunCost
from .metric import BenchSplit, LemaSplit, average_f1, overall

GUIDE = ("Choosing a corrector: the LeMa row is the share of LeMa-style mistakes (the steps hold an error and the "
         "final answer is wrong) whose first wrong step the corrector names exactly, with the project's own "
         "correction prompt; `not parsed` is the share `lema correct` would reject unread. ProcessBench F1 (a "
         "critique prompt that allows 'no error', on every item) compares with the published table: o1-mini 87.9, "
         "QwQ-32B-Preview 71.5 (average F1). Dollars per verified correction come from a run folder you made with "
         "the corrector. Prefer the corrector with the higher scores per dollar.")


@dataclass
class CorrectorScore:
    label: str
    processbench: dict[str, BenchSplit] = field(default_factory=dict)
    lema: dict[str, LemaSplit] = field(default_factory=dict)
    tokens: dict[str, dict] = field(default_factory=dict)  # split -> prompt_tokens, completion_tokens, dollars
    dollars: float | None = None  # every run of this folder, from its ledger
    missing: int = 0  # planned replies not stored (failed, over the budget, pending): asked again next run

    @property
    def average_f1(self) -> float | None:
        return average_f1(self.processbench)

    def to_dict(self) -> dict:
        return {"label": self.label, "average_f1": self.average_f1, "dollars": self.dollars, "missing": self.missing,
                "processbench": {k: v.to_dict() for k, v in self.processbench.items()},
                "lema": {k: v.to_dict() for k, v in self.lema.items()},
                "lema_all": overall(self.lema).to_dict() if self.lema else None, "tokens": self.tokens}


@dataclass
class ScoreSummary:
    splits: dict[str, dict]  # split -> items, erroneous, lema (the LeMa protocol's items)
    protocols: list[str]
    settings: dict
    correctors: list[CorrectorScore] = field(default_factory=list)
    runs: list[RunCost] = field(default_factory=list)
    requests: int = 0  # new requests this run
    failed_requests: int = 0
    failure_example: str | None = None
    usage: dict = field(default_factory=dict)

    @property
    def produced(self) -> int:
        return sum(s.items for c in self.correctors for s in c.processbench.values()) + \
            sum(s.items for c in self.correctors for s in c.lema.values())

    @property
    def failed(self) -> int:
        return self.failed_requests

    def headline(self) -> list[tuple[str, str]]:
        rows = []
        for c in self.correctors:
            parts = []
            if "processbench" in self.protocols:
                parts.append(f"ProcessBench F1 {_num(c.average_f1)}")
            if "lema" in self.protocols and c.lema:
                total = overall(c.lema)
                parts.append(f"LeMa first step {total.exact}/{total.items} ({_pct(total.exact_rate)})")
            rows.append((f"corrector {c.label}", ", ".join(parts)))
        return rows

    # -- the table ------------------------------------------------------------------------

    def columns(self) -> list[str]:
        labels = [c.label for c in self.correctors]
        return labels + [r.corrector for r in self.runs if r.corrector not in labels]

    def table(self) -> tuple[list[str], list[list[str]]]:
        columns = self.columns()
        by_label = {c.label: c for c in self.correctors}
        rows: list[list[str]] = []

        def row(label: str, cell) -> None:
            rows.append([label, *(cell(by_label[name]) if name in by_label else "-" for name in columns)])

        if "processbench" in self.protocols:
            counted = [s for s in self.splits if any(s in c.processbench for c in self.correctors)]
            row(f"ProcessBench F1, average of {len(counted)} split{'s' if len(counted) != 1 else ''}",
                lambda c: _num(c.average_f1))
            for split in counted:
                info = self.splits[split]
                row(f"  {split} F1 (err. / corr. accuracy; {info['erroneous']} + {info['items'] - info['erroneous']})",
                    lambda c, s=split: _bench_cell(c.processbench.get(s)))
            row("  replies not read / index outside",
                lambda c: f"{sum(s.unparsed for s in c.processbench.values())} / {sum(s.outside for s in c.processbench.values())}")
        if "lema" in self.protocols:
            mistakes = sum(info["lema"] for info in self.splits.values())
            row(f"LeMa: named first step = label ({mistakes} mistakes)",
                lambda c: _rate(overall(c.lema).exact, overall(c.lema).items))
            for split in [s for s in self.splits if any(s in c.lema for c in self.correctors)]:
                row(f"  {split} ({self.splits[split]['lema']})", lambda c, s=split: _rate(c.lema[s].exact, c.lema[s].items)
                    if s in c.lema else "-")
            row("  not parsed", lambda c: _rate(overall(c.lema).unparsed, overall(c.lema).items))
            row("  named too early / too late / outside",
                lambda c: f"{overall(c.lema).early} / {overall(c.lema).late} / {overall(c.lema).outside}")
        for split in self.splits:
            row(f"tokens {split} (prompt + completion)", lambda c, s=split: _tokens(c.tokens.get(s)))
        row("USD, every split (this folder's ledger)", lambda c: _usd(c.dollars))
        if any(c.missing for c in self.correctors):
            row("replies missing (run again)", lambda c: str(c.missing))
        for run in self.runs:
            at = columns.index(run.corrector)

            def put(label: str, value: str) -> None:
                cells = ["-"] * len(columns)
                cells[at] = value
                rows.append([label, *cells])

            total = run.total
            put(f"run {run.folder}: verified / replies", f"{total.verified}/{total.replies}")
            put("  USD per verified / per exported", _per(total))
            for key, level in run.levels.items():
                if key != ALL:
                    put(f"  {key}: USD per verified / per exported", _per(level))
        return ["measure", *columns], rows

    def lines(self) -> list[str]:
        headers, rows = self.table()
        counts = "; ".join(f"{split}: {info['items']} items, {info['erroneous']} erroneous, {info['lema']} with a wrong "
                           "final answer" for split, info in self.splits.items())
        out = [f"scored on {counts}", "", format_table(headers, rows), ""]
        out += request_lines(self)
        return out

    def to_dict(self) -> dict:
        headers, rows = self.table()
        return {"splits": self.splits, "protocols": self.protocols, "settings": self.settings,
                "correctors": [c.to_dict() for c in self.correctors], "runs": [r.to_dict() for r in self.runs],
                "failed_requests": self.failed_requests, "table": {"headers": headers, "rows": rows}, "guide": GUIDE}


def _num(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def _rate(part: int, whole: int) -> str:
    return f"{part}/{whole} ({_pct(part / whole if whole else None)})"


def _bench_cell(split: BenchSplit | None) -> str:
    if split is None:
        return "-"
    return f"{_num(split.f1)} ({_num(split.erroneous_accuracy)} / {_num(split.correct_accuracy)})"


def _tokens(counts: dict | None) -> str:
    if not counts:
        return "-"
    dollars = f", {_usd(counts['dollars'])}" if counts.get("dollars") is not None else ""
    return f"{counts['prompt_tokens']:,} + {counts['completion_tokens']:,}{dollars}"


def _usd(value: float | None) -> str:
    return "-" if value is None else f"${value:.4f}"


def _per(level) -> str:
    return f"{_usd(level.per_verified)} / {_usd(level.per_exported)} ({level.verified} verified, " \
           f"{'-' if level.exported is None else level.exported} exported)"


def side_by_side(a: dict, b: dict, a_name: str, b_name: str):
    """Two score folders' tables as one (`lema compare A B`): every corrector a column (with its
    folder's name where both folders hold one of that name), rows matched by their measure."""
    from lema_plugin.stage import Section

    tables = [(a.get("table") or {}, a_name), (b.get("table") or {}, b_name)]
    columns = [list(table.get("headers") or ["measure"])[1:] for table, _ in tables]
    clash = set(columns[0]) & set(columns[1])
    headers = ["measure"] + [f"{c} ({name})" if c in clash else c for cols, (_, name) in zip(columns, tables) for c in cols]
    cells: list[dict[str, list]] = [{row[0]: row[1:] for row in table.get("rows") or []} for table, _ in tables]
    labels = list(cells[0]) + [label for label in cells[1] if label not in cells[0]]
    rows = [[label, *(cells[i].get(label) or ["-"] * len(columns[i]) for i in (0, 1))] for label in labels]
    rows = [[row[0], *[cell for part in row[1:] for cell in part]] for row in rows]
    note = GUIDE
    if a.get("splits") != b.get("splits"):
        note = (f"The two folders scored different items ({_items(a)} in {a_name}; {_items(b)} in {b_name}): only "
                "rows of the same items compare. " + GUIDE)
    return Section("Corrector scores side by side", headers, rows, note)


def _items(summary: dict) -> str:
    return ", ".join(f"{split} {info.get('items', 0)}" for split, info in (summary.get("splits") or {}).items()) or "none"

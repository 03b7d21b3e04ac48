"""Build the report page of a run folder, or a page holding only a `lema compare` result."""
from __future__ import annotations

from pathlib import Path

from lema_plugin.store import write_atomic

REPORT_FILE = "report.html"


def build_report(run_dir: str | Path, out: str | Path | None = None, comparisons=()) -> Path:
    """Write the HTML report of `run_dir` (to `run_dir/report.html` unless `out` says where)."""
    from . import page, plots
    from .figures import compute
    from .gather import read_run

    data = read_run(run_dir)
    figures = compute(data)
    html = page.render(f"LeMa report: {Path(run_dir).resolve()}", figures, plots.all_plots(figures),
                       data.evals, data.run_summary, comparisons,
                       training=(data.export_rows, data.export_format, data.export_counts))
    target = Path(out) if out else Path(run_dir) / REPORT_FILE
    write_atomic(target, html)
    return target


def write_comparison(result, out: str | Path) -> Path:
    """A page holding only a `lema compare` result."""
    from . import page

    write_atomic(out, page.render("LeMa paired comparison", comparisons=[result]))
    return Path(out)

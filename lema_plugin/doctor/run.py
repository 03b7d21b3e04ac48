"""`lema doctor` as one call: every check in order, printed as it finishes."""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from .checks import DoctorFailed, Report
from .config import config_checks
from .machine import version_checks, visible_gpus
from .miniature import miniature


def run_doctor(configs: list[str | Path], echo=print, work_dir: str | Path | None = None, smoke: bool = True) -> Report:
    """Every check, printed as it finishes; raise DoctorFailed when one failed."""
    report = Report()
    version_checks(report, echo)
    gpus = visible_gpus()
    if gpus:
        report.add("GPUs", "ok", "; ".join(f"{g.index}: {g.name}, {g.memory_mb / 1024:.0f} GB" for g in gpus), echo)
    else:
        report.add("GPUs", "skip", "none visible: the GPU checks are skipped, the CPU part of each config runs", echo)
    items = [config_checks(Path(str(c)), gpus, report, echo) for c in configs]
    if smoke and items:
        root = Path(work_dir) if work_dir else Path(tempfile.mkdtemp(prefix="lema-doctor-"))
        for index, item in enumerate(items):
            work = root / f"{index + 1}-{item['name'].replace('/', '-')}"
            shutil.rmtree(work, ignore_errors=True)
            work.mkdir(parents=True)
            miniature(item, gpus, report, work, echo)
        if not work_dir:
            shutil.rmtree(root, ignore_errors=True)
    if report.failed:
        raise DoctorFailed(f"{len(report.failed)} check{'s' if len(report.failed) > 1 else ''} failed: "
                           + "; ".join(c.name for c in report.failed))
    return report

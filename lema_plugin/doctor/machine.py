"""The machine: the GPUs it shows and the installed versions against the extras' pins."""
from __future__ import annotations

import os
import re
import shutil
import subprocess

from .checks import Gpu, Report

EXTRAS = ("train", "vllm", "eval")
# The package that makes an environment the one an extra sets up (the GPU work runs in two).
ANCHORS = {"train": "axolotl", "vllm": "vllm", "eval": "lm-eval"}


def visible_gpus(ignore_visible_devices: bool = False) -> list[Gpu]:
    """The CUDA GPUs this machine shows (nvidia-smi, else torch), as CUDA_VISIBLE_DEVICES narrows
    them unless told to ignore it."""
    gpus: list[Gpu] = []
    smi = shutil.which("nvidia-smi")
    if smi:
        try:
            run = subprocess.run([smi, "--query-gpu=index,name,memory.total", "--format=csv,noheader,nounits"],
                                 capture_output=True, text=True, timeout=30)
            for line in run.stdout.splitlines() if run.returncode == 0 else []:
                index, name, memory = (part.strip() for part in line.split(",", 2))
                gpus.append(Gpu(int(index), name, int(float(memory))))
        except (OSError, subprocess.SubprocessError, ValueError):
            gpus = []
    if not gpus:
        try:
            import torch

            if torch.cuda.is_available():  # torch already applies CUDA_VISIBLE_DEVICES
                return [Gpu(i, torch.cuda.get_device_name(i), torch.cuda.get_device_properties(i).total_memory // 2**20)
                        for i in range(torch.cuda.device_count())]
        except Exception:  # a CPU build of torch, or none: no GPU either way
            return []
    chosen = os.environ.get("CUDA_VISIBLE_DEVICES")
    if chosen is not None and not ignore_visible_devices:
        wanted = [d.strip() for d in chosen.split(",") if d.strip()]
        if all(d.isdigit() for d in wanted):
            by_index = {g.index: g for g in gpus}
            gpus = [by_index[int(d)] for d in wanted if int(d) in by_index]
        else:  # UUIDs or MIG names: only their number is known here
            gpus = gpus[: len(wanted)]
    return gpus


def pins() -> dict[str, list[tuple[str, str]]]:
    """extra -> [(package, pinned version)] from the installed lema-plugin's metadata."""
    from importlib.metadata import PackageNotFoundError, requires

    try:
        lines = requires("lema-plugin") or []
    except PackageNotFoundError:
        return {}
    found: dict[str, list[tuple[str, str]]] = {}
    for line in lines:
        match = re.match(r'^([A-Za-z0-9_.\-]+)(?:\[[^\]]*\])?==([^;\s]+)\s*;\s*extra\s*==\s*"([^"]+)"', line)
        if match and match.group(3) in EXTRAS:
            found.setdefault(match.group(3), []).append((match.group(1), match.group(2)))
    return found


def version_checks(report: Report, echo=None) -> None:
    """Each pinned package of the GPU and eval extras: installed at its pin, missing, or different."""
    from importlib.metadata import PackageNotFoundError, version

    for extra, packages in pins().items():
        try:
            version(ANCHORS[extra])
        except PackageNotFoundError:
            report.add(f"versions [{extra}]", "skip", f"not this environment ({ANCHORS[extra]} is not installed; "
                                                      f"pip install '.[{extra}]' sets it up)", echo)
            continue
        present, missing, different = [], [], []
        for name, pinned in packages:
            try:
                installed = version(name)
            except PackageNotFoundError:
                missing.append(name)
                continue
            (present if installed.split("+")[0] == pinned else different).append((name, pinned, installed))
        status = "warn" if different or missing else "ok"
        parts = [f"{n} {v}" for n, _, v in present]
        parts += [f"{n} {v} (pinned {p})" for n, p, v in different]
        parts += [f"{n} not installed" for n in missing]
        report.add(f"versions [{extra}]", status, ", ".join(parts), echo)

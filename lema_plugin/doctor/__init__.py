"""`lema doctor`: the checks worth five minutes before a GPU-day is spent.

For the machine: the installed versions of everything the extras pin, and the GPUs it shows (with
their memory). For each axolotl config (a shipped base config or a ready one): its batch layout
against the visible GPUs, a rough memory estimate against theirs, the attention backend (nothing
may be fetched at run time), the LoRA kernels and the merge method. Then the config's whole path
in miniature: a tiny randomly initialised model of the config's architecture, built here (nothing
downloaded), is trained a few steps by axolotl with the config's own settings (adapted to the CPU
where there is no GPU: no 4-bit weights, no bf16, a plain optimizer), merged by the printed merge
(`axolotl merge-lora --merge-method legacy`), and scored by the printed lm-eval task on a handful
of questions. On a machine without a GPU it runs the CPU part and says what it skipped.
"""
from __future__ import annotations

from .checks import Check, DoctorFailed, Gpu, Report
from .config import architecture, config_checks, memory_estimate_gb
from .machine import pins, version_checks, visible_gpus
from .miniature import miniature, tiny_model
from .run import run_doctor

__all__ = [
    "Check", "DoctorFailed", "Gpu", "Report", "architecture", "config_checks", "memory_estimate_gb", "miniature",
    "pins", "run_doctor", "tiny_model", "version_checks", "visible_gpus",
]

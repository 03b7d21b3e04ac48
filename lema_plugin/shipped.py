"""Folders shipped inside the package: the lm-eval tasks and the axolotl configs.

Both live at the top of the checkout (`lm_eval_tasks/`, `axolotl_configs/`), where users see
them; the package holds links to them that setuptools follows when it builds a wheel, so the
same files are found from a checkout, an editable install and a plain `pip install`.
"""
from __future__ import annotations

from pathlib import Path

PACKAGE = Path(__file__).resolve().parent


def tasks_path() -> Path:
    """The folder to pass to `lm_eval --include_path` (holds `lema/lema_gsm8k.yaml`, ...)."""
    return (PACKAGE / "lm_eval_tasks").resolve()


def configs_path() -> Path:
    """The folder of the shipped axolotl configs."""
    return (PACKAGE / "axolotl_configs").resolve()

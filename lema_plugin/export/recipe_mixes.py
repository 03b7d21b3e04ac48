"""Every mix a recipe asks for, built from the run folder's CoT and corrections (`lema run`'s build step).

The SFT mixes get the ready axolotl config of the recipe's base config (checked against the
export format before any paid stage runs: `base_config`); the step-level kinds are built from the
same corrections, optionally restricted to the corrections the first-error check confirmed, and,
when the recipe asks for ready configs at all, get theirs from the same writer and their kind's
shipped config (`step_kinds.DEFAULT_CONFIGS`), with the recipe's model and step count.
"""
from __future__ import annotations

from pathlib import Path

from lema_plugin.llm.embedded import base_model_path
from lema_plugin.recipe import Recipe


def base_config(recipe: Recipe) -> str | None:
    """The base of each mix's ready axolotl config, checked against the export format up front;
    a recipe that trains is also checked against this machine's GPUs, before any paid stage."""
    from .axolotl_config import find_base_config, gpu_count, load_base_config

    name = recipe.export.axolotl_config or (recipe.train.config if recipe.train else None)
    if name:
        path = find_base_config(name)
        load_base_config(path, recipe.export.format)
        if recipe.train:
            from lema_plugin.train_eval import train_environment

            train_environment(gpu_count(path), {}, lambda line: None)
    return name


def config_overrides(recipe: Recipe) -> dict:
    """What the recipe changes in the base config (the demo's local model and step count)."""
    overrides = {}
    if recipe.train and recipe.train.base_model:
        overrides["base_model"] = base_model_path(recipe.train.base_model)
    if recipe.train and recipe.train.max_steps:
        overrides["max_steps"] = recipe.train.max_steps
    return overrides


def build_mixes(recipe: Recipe, out: Path, corrections: Path, report) -> None:
    from .build import build_dataset
    from .step_kinds import DEFAULT_CONFIGS, STEP_KINDS, build_step_dataset

    base, overrides = base_config(recipe), config_overrides(recipe)
    for mix in recipe.export.mixes:
        if mix in STEP_KINDS:
            checks = out / "first-error" / "checks.jsonl" if recipe.first_error.confirmed_only else None
            info = build_step_dataset(out / "data" / mix, mix, out / "cot" / "cot.jsonl", corrections,
                                      val_fraction=recipe.export.val_fraction, seed=recipe.export.seed,
                                      checks_path=checks, axolotl_config=DEFAULT_CONFIGS[mix] if base else None,
                                      config_overrides=overrides)
            report.add(f"examples {mix}", count_line(info))
            _notes(report, mix, info)
            continue
        info = build_dataset(
            out / "data" / mix,
            out / "cot" / "cot.jsonl",
            corrections,
            mix=mix,
            fmt=recipe.export.format,
            val_fraction=recipe.export.val_fraction,
            seed=recipe.export.seed,
            bos_token=recipe.export.bos_token,
            eos_token=recipe.export.eos_token,
            axolotl_config=base,
            config_overrides=overrides,
        )
        report.add(f"examples {mix}", count_line(info))
        _notes(report, mix, info)


def _notes(report, mix: str, info: dict) -> None:
    """What the build warned about, in the run summary: rows over budget, missing special tokens."""
    if info.get("token_budget", {}).get("over"):
        budget = info["token_budget"]
        report.add(f"over budget {mix}", f"{budget['over']} rows over {budget['budget']} tokens "
                                         f"(axolotl will {budget['axolotl_excess_length_strategy']} them)")
    for warning in info.get("warnings", []):
        report.add(f"warning {mix}", warning)


def count_line(info: dict) -> str:
    train = info.get("counts", {}).get("train", info.get("train", {}))
    if isinstance(train, dict):
        total = train.get("total", sum(v for v in train.get("by_kind", {}).values()))
        kinds = ", ".join(f"{k} {v}" for k, v in train.get("by_kind", {}).items())
        return f"{total} train ({kinds})" if kinds else f"{total} train"
    return str(train)

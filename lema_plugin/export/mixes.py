"""The three training mixes, drawn from the same inputs so that they form a controlled comparison.

- `lema`: every CoT example plus every correction example (the paper's LeMa data).
- `cot-only`: the same CoT examples alone (the paper's CoT-alone baseline).
- `cot-size-matched`: CoT-alone grown to exactly as many examples as the LeMa mix (the paper's
  size-controlled ablation: is LeMa's gain just more data?). Extra distinct rationales (from
  `--extra-cot`, e.g. more samples of `lema cot`) are used first, as in the paper, which drew
  more CoT data; when those run out the CoT examples are repeated in whole seeded rounds, so
  every example appears either k or k+1 times and none is favoured by chance.

Validation holds out whole problems, chosen from the problem ids of all inputs, so a problem's
CoT and its corrections never straddle train and validation, and all three mixes built from the
same inputs and seed hold out the same problems.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field

from lema_plugin.errors import ConfigError
from .examples import Example

MIXES = ("lema", "cot-only", "cot-size-matched")


@dataclass
class Mix:
    train: list[Example]
    val: list[Example]
    padding: dict[str, int] = field(default_factory=dict)


def _rng(seed: int, purpose: str) -> random.Random:
    """An independent, reproducible stream per purpose (string seeds hash the same everywhere)."""
    return random.Random(f"{seed}:{purpose}")


def held_out_problems(problem_ids: set[str], fraction: float, seed: int) -> set[str]:
    """A seeded choice of round(fraction * n) problems (at least one, never all)."""
    if not 0 <= fraction < 1:
        raise ConfigError(f"val fraction must be in [0, 1), got {fraction}")
    ids = sorted(problem_ids)
    if fraction == 0 or len(ids) < 2:
        return set()
    count = min(len(ids) - 1, max(1, round(fraction * len(ids))))
    _rng(seed, "val").shuffle(ids)
    return set(ids[:count])


def _by_id(examples: list[Example]) -> list[Example]:
    return sorted(examples, key=lambda e: (e.kind, e.id))


def grow_to(pool: list[Example], target: int, extra: list[Example], seed: int) -> tuple[list[Example], dict[str, int]]:
    """`pool` plus extra distinct examples, then whole repeated rounds, up to `target` examples."""
    need = target - len(pool)
    chosen = list(pool)
    extra = _by_id(extra)
    _rng(seed, "extra").shuffle(extra)
    taken = extra[: max(0, need)]
    chosen += taken
    need -= len(taken)
    repeated = 0
    if need > 0 and not chosen:
        raise ConfigError("no CoT examples to grow to the size of the LeMa mix")
    rounds = _rng(seed, "repeat")
    base = _by_id(chosen)
    while need > 0:
        order = list(base)
        rounds.shuffle(order)
        batch = order[:need]
        chosen += batch
        repeated += len(batch)
        need -= len(batch)
    return chosen, {"target": target, "extra_cot": len(taken), "repeated": repeated}


def make_mix(
    mix: str,
    cot: list[Example],
    corrections: list[Example],
    extra_cot: list[Example] = (),
    val_fraction: float = 0.0,
    seed: int = 0,
) -> Mix:
    """Split by problem, assemble `mix`, and shuffle train and validation reproducibly."""
    if mix not in MIXES:
        raise ConfigError(f"unknown mix {mix!r}; choose one of {', '.join(MIXES)}")
    held = held_out_problems({e.problem_id for e in [*cot, *corrections]}, val_fraction, seed)

    def split(examples):
        return [e for e in examples if e.problem_id not in held], [e for e in examples if e.problem_id in held]

    cot_train, cot_val = split(cot)
    corr_train, corr_val = split(corrections)
    padding: dict[str, int] = {}
    if mix == "lema":
        train, val = cot_train + corr_train, cot_val + corr_val
    elif mix == "cot-only":
        train, val = cot_train, cot_val
    else:
        known = {e.id for e in cot}
        fresh = [e for e in extra_cot if e.id not in known and e.problem_id not in held]
        train, padding = grow_to(cot_train, len(cot_train) + len(corr_train), fresh, seed)
        val = cot_val
    train, val = _by_id(train), _by_id(val)
    _rng(seed, "train").shuffle(train)
    _rng(seed, "val-order").shuffle(val)
    return Mix(train=train, val=val, padding=padding)

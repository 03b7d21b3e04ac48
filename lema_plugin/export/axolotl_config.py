"""A ready axolotl config next to the built data, derived from a base config in `axolotl_configs/`.

Pasting a `datasets:` stanza by hand is where runs went wrong: the wrong folder, a format the
config cannot read, a prepared-data cache that still holds the tokens of an earlier build. So
`lema build --axolotl-config BASE` writes `OUT/axolotl.yml` itself:

- `datasets:` (and `test_datasets:` for held-out rows, evaluated every `eval_steps`) load this
  build's files;
- `output_dir` is `OUT/adapter`;
- `dataset_prepared_path` is `OUT/prepared/<hash of the built files>`: axolotl keys its cache by
  the config, not by the file's content, so a rebuild in place gets a new cache folder instead
  of silently training on the old tokens;

and the result is validated with axolotl's own schema before it is written.
"""
from __future__ import annotations

import copy
import hashlib
from pathlib import Path

import yaml

from lema_plugin.errors import ConfigError
from lema_plugin.shipped import configs_path

from .formats import FORMATS

# Base configs laid out for several GPUs on one node: how many, and how axolotl launches them.
MULTI_GPU_SUFFIXES = ("-ddp", "-fsdp")
MULTI_GPU_COUNT = 4


class AxolotlConfigError(ConfigError):
    """A base config that cannot become a ready config; the message is one line naming it."""


def shipped_configs() -> list[str]:
    return sorted(p.stem for p in configs_path().glob("*.yml"))


def find_base_config(name: str | Path) -> Path:
    """A path on disk, or a shipped config by name: `llama2-70b-gsm8k-lema`, `...lema.yml` or
    `axolotl_configs/llama2-70b-gsm8k-lema.yml` (found in the package wherever it is installed)."""
    shipped = configs_path()
    parts = Path(name).parts
    inside = shipped.joinpath(*parts[1:]) if parts[:1] == ("axolotl_configs",) and len(parts) > 1 else None
    for candidate in (Path(name), inside, shipped / str(name), shipped / f"{name}.yml"):
        if candidate is not None and candidate.is_file():
            return candidate
    raise AxolotlConfigError(
        f"axolotl config {name}: no such file, and not one of axolotl_configs/ ({', '.join(shipped_configs())})"
    )


def gpu_count(base_path: Path) -> int:
    """GPUs the base config's batch layout is written for (the total batch depends on it)."""
    return MULTI_GPU_COUNT if base_path.stem.endswith(MULTI_GPU_SUFFIXES) else 1


def load_base_config(path: Path, fmt: str) -> dict:
    """Read a base config and check it can train on rows of format `fmt`; raise a one-line error."""
    try:
        config = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise AxolotlConfigError(f"{where}: not valid YAML ({getattr(exc, 'problem', exc)})") from None
    if not isinstance(config, dict):
        raise AxolotlConfigError(f"{path}: expected a mapping of axolotl keys")
    if not (config.get("base_model") or config.get("tokenizer_config")):
        raise AxolotlConfigError(f"{path}: field 'base_model': missing (the model and its tokenizer come from it)")
    if fmt not in FORMATS:
        raise AxolotlConfigError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    for key in ("datasets", "test_datasets"):
        for index, entry in enumerate(config.get(key) or []):
            kind = entry.get("type") if isinstance(entry, dict) else None
            if kind != fmt:
                raise AxolotlConfigError(
                    f"{path}: field '{key}[{index}].type': the config reads {kind} rows but the data is built as "
                    f"{fmt} (build with --format {kind}, or pick a config that reads {fmt})"
                )
    if fmt == "chat_template" and not config.get("chat_template"):
        raise AxolotlConfigError(
            f"{path}: field 'chat_template': missing (chat_template rows need a template to render; "
            "'tokenizer_default' uses the model's own)"
        )
    return config


def prepared_key(files: dict) -> str:
    """A short hash of the built files' contents: the name of their prepared-data folder."""
    digest = hashlib.sha256()
    for split in sorted(files):
        digest.update(f"{split}:{files[split]['sha256']}\n".encode())
    return digest.hexdigest()[:16]


def ready_config(base: dict, info: dict, out_dir: Path, overrides: dict | None = None) -> dict:
    """The base config with this build's data, output folder and prepared-data folder filled in."""
    out_dir = Path(out_dir).resolve()
    config = copy.deepcopy(base)
    config.pop("test_datasets", None)
    config.update(copy.deepcopy(info["axolotl"]))
    config["val_set_size"] = 0  # held-out rows come from the build's own split, never a random one
    config["output_dir"] = str(out_dir / "adapter")
    config["dataset_prepared_path"] = str(out_dir / "prepared" / prepared_key(info["files"]))
    config.update(overrides or {})
    if "test_datasets" in config:
        # evaluated with every checkpoint (the official save_steps), and at least once in a short run
        every = min(config.get("save_steps") or 100, config.get("max_steps") or 100)
        config.pop("evals_per_epoch", None)
        config.update(eval_strategy="steps", eval_steps=every)
    else:
        for key in ("eval_strategy", "eval_steps", "evals_per_epoch"):
            config.pop(key, None)
    return config


def validate(config: dict, n_gpu: int = 1) -> str:
    """Validate with axolotl's own schema, as `axolotl train` would on the target machine.

    GPU configs (bf16) are checked against an 80 GB Hopper card, CPU configs against this CPU.
    Returns a note for the summary; raises AxolotlConfigError with axolotl's first complaint.
    """
    try:
        import torch
        from axolotl.utils.config import validate_config
        from axolotl.utils.dict import DictDefault
    except ImportError:
        return "not validated: axolotl is not installed here (pip install 'lema-plugin[train]')"
    gpu = bool(config.get("bf16"))
    capabilities = {
        "bf16": gpu, "fp8": False, "tf32": gpu, "n_gpu": n_gpu, "compute_capability": "sm_90" if gpu else None,
    }
    env = {"torch_version": torch.__version__.split("+")[0]}
    try:
        validate_config(DictDefault(copy.deepcopy(config)), capabilities=capabilities, env_capabilities=env)
    except Exception as exc:  # axolotl raises ValueError or pydantic's ValidationError
        first = str(exc).strip().splitlines()
        raise AxolotlConfigError(f"axolotl rejects the config: {' '.join(first[:3])}") from None
    return "validated with axolotl's schema"


def write_ready_config(
    base_path: Path, base: dict, info: dict, out_dir: Path, header: list[str], overrides: dict | None = None
) -> tuple[Path, str]:
    """Validate, then write OUT/axolotl.yml (with `header` as comments); return its path and the note."""
    from lema_plugin.store import write_atomic

    config = ready_config(base, info, out_dir, overrides)
    note = validate(config, gpu_count(base_path))
    target = Path(out_dir) / "axolotl.yml"
    lines = [f"# {line}" if line else "#" for line in header]
    text = "\n".join(lines) + "\n\n" + yaml.safe_dump(config, sort_keys=False, allow_unicode=True)
    write_atomic(target, text)
    return target, note

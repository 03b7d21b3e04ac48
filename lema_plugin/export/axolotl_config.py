"""The one ready-config writer: an axolotl config next to the built data, for every export kind.

Pasting a `datasets:` stanza by hand is where runs went wrong: the wrong folder, a format the
config cannot read, a prepared-data cache or an adapter folder left by an earlier build, a batch
that silently grew with the number of GPUs. So `lema build --axolotl-config BASE` (and `lema run`
for every mix it exports, SFT mixes and step-level kinds alike) writes `OUT/axolotl.yml` itself:

- `datasets:` (and `test_datasets:` for held-out rows, evaluated with every checkpoint) load this
  build's files;
- `dataset_prepared_path` is `OUT/prepared/<key>` and `output_dir` is `OUT/adapter/<key>`, where
  the key is a hash of the built files' contents and of the config itself: axolotl keys its
  cache by (part of) the config, not by the files, and `lema run` reuses an adapter that is
  already trained, so a rebuild or a changed setting must land in new folders;
- the effective batch of the base config is kept on the GPU count it is written for:
  `gradient_accumulation_steps` = batch / (micro batch x GPUs), and the printed train command
  starts exactly that many processes (`next_steps`);

and the result is validated with axolotl's own schema, for that many GPUs, before it is written.

Every config header (shipped or ready) states its effective batch in one line that this module
reads back: `# Effective batch: 96 = 6 per GPU x 16 accumulation x 1 GPU ...`, or
`... x 1 CPU process` for a CPU config.
"""
from __future__ import annotations

import copy
import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from lema_plugin.errors import ConfigError
from lema_plugin.shipped import configs_path


class AxolotlConfigError(ConfigError):
    """A base config that cannot become a ready config; the message is one line naming it."""


BATCH_LINE = re.compile(
    r"^#\s*Effective batch:\s*(?P<total>\d+)\s*=\s*(?P<micro>\d+) per (?:GPU|process)\s*x\s*(?P<accumulation>\d+) "
    r"accumulation\s*x\s*(?P<count>\d+) (?P<unit>GPUs?|CPU process)", re.M)
KERNELS = ("lora_mlp_kernel", "lora_qkv_kernel", "lora_o_kernel", "lora_embedding_kernel")


@dataclass(frozen=True)
class Layout:
    """How a config reaches its effective batch: micro batch x accumulation x GPUs (0: on CPU)."""

    micro: int
    accumulation: int
    gpus: int

    @property
    def total(self) -> int:
        return self.micro * self.accumulation * max(self.gpus, 1)

    def line(self, nodes: int = 1) -> str:
        if not self.gpus:
            return (f"Effective batch: {self.total} = {self.micro} per process x {self.accumulation} accumulation "
                    "x 1 CPU process.")
        per_node = self.gpus // nodes
        devices = "GPU 0" if per_node == 1 else f"GPUs 0-{per_node - 1}"
        where = f"exactly {self.gpus}, on {devices}" if nodes == 1 else \
            f"exactly {per_node} on each of {nodes} nodes, on {devices}"
        return (f"Effective batch: {self.total} = {self.micro} per GPU x {self.accumulation} accumulation x "
                f"{self.gpus} GPU{'s' if self.gpus > 1 else ''} (one process per GPU: the train command starts {where}).")


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


def read_layout(path: Path, config: dict | None = None) -> Layout:
    """The layout a config file states in its header; without that line, the config's own micro
    batch and accumulation on one GPU (a bf16 config) or on CPU."""
    text = Path(path).read_text(encoding="utf-8")
    config = config if config is not None else (yaml.safe_load(text) or {})
    micro = int(config.get("micro_batch_size") or 1)
    accumulation = int(config.get("gradient_accumulation_steps") or 1)
    match = BATCH_LINE.search(text)
    if match is None:
        return Layout(micro, accumulation, 1 if config.get("bf16") else 0)
    gpus = 0 if match["unit"] == "CPU process" else int(match["count"])
    stated = Layout(int(match["micro"]), int(match["accumulation"]), gpus)
    if (stated.micro, stated.accumulation, stated.total) != (micro, accumulation, int(match["total"])):
        raise AxolotlConfigError(
            f"{path}: the header's effective batch ({match[0].lstrip('# ')}) does not match micro_batch_size "
            f"{micro} x gradient_accumulation_steps {accumulation}")
    return stated


def gpu_count(path: Path) -> int:
    """GPUs the config's batch layout is written for (0 for a CPU config)."""
    return read_layout(path).gpus


def layout_for(base: Layout, gpus: int | None, where: str) -> Layout:
    """The base layout's effective batch on `gpus` GPUs: the same micro batch, the accumulation derived."""
    if gpus is None or gpus == base.gpus:
        return base
    if not base.gpus:
        raise AxolotlConfigError(f"--gpus {gpus}: {where} is a CPU config (it trains on no GPU)")
    if gpus < 1:
        raise AxolotlConfigError(f"--gpus {gpus}: at least one GPU")
    per_step = base.micro * gpus
    if base.total % per_step:
        fits = [n for n in range(1, base.total // base.micro + 1) if base.total % (base.micro * n) == 0]
        raise AxolotlConfigError(
            f"--gpus {gpus}: {where} keeps an effective batch of {base.total} with {base.micro} per GPU, which "
            f"{gpus} GPUs cannot divide evenly; use --gpus {', '.join(map(str, fits))}")
    return Layout(base.micro, base.total // per_step, gpus)


def load_base_config(path: Path, fmt: str, hint: str | None = None) -> dict:
    """Read a base config and check it can train on rows of axolotl type `fmt`; raise a one-line error.

    `hint` replaces the advice given when the config reads another type of rows."""
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
    for key in ("datasets", "test_datasets"):
        for index, entry in enumerate(config.get(key) or []):
            kind = entry.get("type") if isinstance(entry, dict) else None
            if kind != fmt:
                advice = hint or f"build with --format {kind}, or pick a config that reads {fmt}"
                raise AxolotlConfigError(
                    f"{path}: field '{key}[{index}].type': the config reads {kind} rows but the data is built as "
                    f"{fmt} ({advice})"
                )
    if fmt == "chat_template" and not config.get("chat_template"):
        raise AxolotlConfigError(
            f"{path}: field 'chat_template': missing (chat_template rows need a template to render; "
            "'tokenizer_default' uses the model's own)"
        )
    read_layout(path, config)  # a header that states another batch than the config holds is refused
    return config


def content_key(files: dict, config: dict) -> str:
    """A short hash of the built files' contents and of the config that trains on them (its
    data paths, output and cache folders left out: they are where, not what)."""
    keyed = copy.deepcopy(config)
    for name in ("output_dir", "dataset_prepared_path"):
        keyed.pop(name, None)
    for name in ("datasets", "test_datasets"):
        for entry in keyed.get(name) or []:
            entry.pop("path", None)
    digest = hashlib.sha256()
    for split in sorted(files):
        digest.update(f"{split}:{files[split]['sha256']}\n".encode())
    digest.update(json.dumps(keyed, sort_keys=True, default=str).encode())
    return digest.hexdigest()[:16]


def ready_config(base: dict, info: dict, out_dir: Path, overrides: dict | None = None,
                 layout: Layout | None = None) -> dict:
    """The base config with this build's data, its batch layout, and content-keyed folders."""
    out_dir = Path(out_dir).resolve()
    config = copy.deepcopy(base)
    config.pop("test_datasets", None)
    config.update(copy.deepcopy(info["axolotl"]))
    config["val_set_size"] = 0  # held-out rows come from the build's own split, never a random one
    config.update(overrides or {})
    if layout is not None:
        config["micro_batch_size"], config["gradient_accumulation_steps"] = layout.micro, layout.accumulation
    if "test_datasets" in config:
        # evaluated with every checkpoint (the official save_steps), and at least once in a short run
        every = min(config.get("save_steps") or 100, config.get("max_steps") or 100)
        config.pop("evals_per_epoch", None)
        config.update(eval_strategy="steps", eval_steps=every)
    else:
        for key in ("eval_strategy", "eval_steps", "evals_per_epoch"):
            config.pop(key, None)
    key = content_key(info["files"], config)
    config["output_dir"] = str(out_dir / "adapter" / key)
    config["dataset_prepared_path"] = str(out_dir / "prepared" / key)
    return config


def validate(config: dict, n_gpu: int = 1) -> str:
    """Validate with axolotl's own schema, as `axolotl train` would on the target machine.

    GPU configs (bf16) are checked against `n_gpu` 80 GB Hopper cards, CPU configs against this
    CPU. Returns a note for the summary; raises AxolotlConfigError with axolotl's first complaint.
    """
    try:
        import torch
        from axolotl.utils.config import validate_config
        from axolotl.utils.dict import DictDefault
    except ImportError:
        return "not validated: axolotl is not installed here (pip install 'lema-plugin[train]')"
    gpu = bool(config.get("bf16"))
    capabilities = {
        "bf16": gpu, "fp8": False, "tf32": gpu, "n_gpu": max(n_gpu, 1), "compute_capability": "sm_90" if gpu else None,
    }
    env = {"torch_version": torch.__version__.split("+")[0]}
    try:
        validate_config(DictDefault(copy.deepcopy(config)), capabilities=capabilities, env_capabilities=env)
    except Exception as exc:  # axolotl raises ValueError or pydantic's ValidationError
        first = str(exc).strip().splitlines()
        raise AxolotlConfigError(f"axolotl rejects the config: {' '.join(first[:3])}") from None
    return "validated with axolotl's schema"


def deviations(base_path: Path) -> list[str]:
    """The `differs:` notes of a config file, each with the key it sits on (YAML drops comments,
    so the ready config's header repeats them)."""
    notes: list[str] = []
    current = None
    for line in Path(base_path).read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if "differs:" in line:
            key = None if stripped.startswith("#") else stripped.split(":", 1)[0]
            text = line.split("differs:", 1)[1].strip()
            current = [f"{key}: {text}" if key else text]
            notes.append(current)
        elif current is not None and stripped.startswith("#") and line.startswith((" ", "\t")):
            current.append(stripped.lstrip("#").strip())  # a continuation comment under the key
        else:
            current = None
    return ["differs: " + " ".join(parts) for parts in notes]


def point_current(adapters: Path, key: str) -> Path | None:
    """`adapters/current`, a relative link to the folder of the newest ready config (`key`), so the
    printed and documented commands name one stable path; None where links cannot be made."""
    import os

    adapters.mkdir(parents=True, exist_ok=True)
    link = adapters / "current"
    staged = adapters / f".current-{os.getpid()}"
    try:
        if staged.is_symlink():
            staged.unlink()
        os.symlink(key, staged, target_is_directory=True)
        os.replace(staged, link)  # atomic: the link always names one build or the one before
    except OSError:
        return None
    return link


def write_ready(info: dict, base_path: Path, base: dict, out_dir: Path, overrides: dict | None = None,
                gpus: int | None = None, task: str | None = None, nodes: int = 1) -> None:
    """Validate, then write OUT/axolotl.yml with its commands in the header; record both in `info`
    (`axolotl_config`, `next_commands`, `environment`, `train_command`)."""
    from lema_plugin.store import write_atomic

    from .next_steps import next_commands, shown

    out = Path(out_dir)
    fmt = info["axolotl"]["datasets"][0]["type"]
    layout = layout_for(read_layout(base_path, base), gpus, shown(base_path))
    if nodes > 1 and (not layout.gpus or layout.gpus % nodes):
        raise AxolotlConfigError(f"--nodes {nodes}: the {layout.gpus} GPUs of the layout must split evenly over the nodes "
                                 "(--gpus counts the GPUs of all nodes together)")
    if overrides and {"micro_batch_size", "gradient_accumulation_steps"} & overrides.keys():  # the caller's own batch
        layout = Layout(int(overrides.get("micro_batch_size", layout.micro)),
                        int(overrides.get("gradient_accumulation_steps", layout.accumulation)), layout.gpus)
    config = ready_config(base, info, out, overrides, layout)
    note = validate(config, layout.gpus)
    config_path = out / "axolotl.yml"
    key = Path(config["output_dir"]).name
    current = point_current(out / "adapter", key)
    commands = next_commands(config, config_path, out, fmt, task, layout.gpus, current, nodes, f"lema-{key}")
    header = [
        f"Written by `lema build` from {shown(base_path)} for the {info['mix']} data in this folder ({fmt} rows).",
        layout.line(nodes),
        f"dataset_prepared_path and output_dir are named by a hash ({key}) of the built files and of this config: a",
        "rebuild or a changed setting trains from fresh tokens into a new adapter folder, never an old one"
        + (f" (adapter/current links to adapter/{key})." if current else "."),
    ]
    if "token_budget" in info:
        budget = info["token_budget"]
        header.append(f"Rows over sequence_len: {budget['over']} of {budget['rows']} ({budget['counted_with']}); "
                      f"axolotl will {budget['axolotl_excess_length_strategy']} them.")
    header += deviations(base_path)
    header += ["", *(line[2:] if line.startswith("# ") else f"$ {line}" for line in commands["lines"])]
    lines = [f"# {line}" if line else "#" for line in header]
    text = "\n".join(lines) + "\n\n" + yaml.safe_dump(config, sort_keys=False, allow_unicode=True)
    write_atomic(config_path, text)
    info["axolotl_config"] = {
        "path": str(config_path.resolve()), "base": str(base_path.resolve()), "check": note, "key": key,
        "gpus": layout.gpus, "nodes": nodes, "effective_batch": layout.total, "micro_batch_size": layout.micro,
        "gradient_accumulation_steps": layout.accumulation, "output_dir": config["output_dir"],
    }
    info["environment"] = commands["environment"]
    info["train_command"] = commands["train"]
    info["next_commands"] = commands["lines"]

"""What reading a config tells: its batch layout against the GPUs, a rough memory estimate,
the attention backend, the LoRA kernels and the merge method."""
from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from .checks import Gpu, Report

# Shapes of the models the shipped configs train (read from a local config.json when there is one).
ARCHITECTURES = {
    "llama-2-70b": dict(model_type="llama", hidden=8192, layers=80, heads=64, kv=8, inter=28672, vocab=32000, params=69.0),
    "metamath-70b": dict(model_type="llama", hidden=8192, layers=80, heads=64, kv=8, inter=28672, vocab=32001, params=69.0),
    "wizardmath-70b": dict(model_type="llama", hidden=8192, layers=80, heads=64, kv=8, inter=28672, vocab=32002, params=69.0),
    "codellama-34b": dict(model_type="llama", hidden=8192, layers=48, heads=64, kv=8, inter=22016, vocab=32000, params=33.7),
    "llama-2-13b": dict(model_type="llama", hidden=5120, layers=40, heads=40, kv=40, inter=13824, vocab=32000, params=13.0),
    "llama-2-7b": dict(model_type="llama", hidden=4096, layers=32, heads=32, kv=32, inter=11008, vocab=32000, params=6.7),
    "qwen2.5-1.5b": dict(model_type="qwen2", hidden=1536, layers=28, heads=12, kv=2, inter=8960, vocab=151936, params=1.5,
                         tie=True),
    "smollm2-135m": dict(model_type="llama", hidden=576, layers=30, heads=9, kv=3, inter=1536, vocab=49152, params=0.135,
                         tie=True),
}


def architecture(base_model: str) -> dict | None:
    """The shape of `base_model`: its local config.json, else the table of the shipped configs' models."""
    local = Path(str(base_model)) / "config.json"
    if local.is_file():
        c = json.loads(local.read_text(encoding="utf-8"))
        hidden, layers = c.get("hidden_size"), c.get("num_hidden_layers")
        if c.get("model_type") and hidden and layers:
            heads = c.get("num_attention_heads") or 1
            return dict(model_type=c["model_type"], hidden=hidden, layers=layers, heads=heads,
                        kv=c.get("num_key_value_heads") or heads, inter=c.get("intermediate_size") or 4 * hidden,
                        vocab=c.get("vocab_size") or 32000, tie=bool(c.get("tie_word_embeddings")),
                        params=None)
    name = str(base_model).lower().replace("_", "-")
    for key, shape in ARCHITECTURES.items():
        if key in name:
            return dict(shape)
    return None


def memory_estimate_gb(config: dict, shape: dict) -> float | None:
    """A rough training footprint per GPU: weights (4-bit or bf16), LoRA weights with their
    gradients and Adam state, and activations kept by gradient checkpointing plus the logits."""
    if not shape:
        return None
    params = shape.get("params")
    if params is None:
        h, n, i, v = shape["hidden"], shape["layers"], shape["inter"], shape["vocab"]
        params = (n * (4 * h * h + 3 * h * i) + 2 * v * h) / 1e9
    weights = params * (0.55 if config.get("load_in_4bit") else 2.0)
    r = int(config.get("lora_r") or 0)
    h, n, i = shape["hidden"], shape["layers"], shape["inter"]
    lora = n * r * (4 * 2 * h + 3 * (h + i)) / 1e9 * 16  # bf16 weights + fp32 grads and two Adam moments
    micro, seq = int(config.get("micro_batch_size") or 1), int(config.get("sequence_len") or 1024)
    per_layer = micro * seq * h * 2 / 1e9
    activations = per_layer * (n if config.get("gradient_checkpointing") else 16 * n)
    logits = micro * seq * shape["vocab"] * 4 * 2 / 1e9
    return round((weights + lora + activations + logits) * 1.2 + 1.0, 1)  # allocator slack and the CUDA context


def config_checks(path: Path, gpus: list[Gpu], report: Report, echo=None) -> dict:
    """What can be checked by reading a config: layout, memory, attention, kernels, merge."""
    from ..export.axolotl_config import KERNELS, find_base_config, read_layout

    path = find_base_config(path)
    config = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    name = path.stem if path.name != "axolotl.yml" else f"{path.parent.name}/axolotl.yml"
    layout = read_layout(path, config)
    spread = re.search(r"exactly (\d+) on each of (\d+) nodes", path.read_text(encoding="utf-8"))
    needed = int(spread.group(1)) if spread else layout.gpus  # GPUs this machine must show
    where = "CPU" if not layout.gpus else f"{layout.gpus} GPU{'s' if layout.gpus > 1 else ''}"
    where += f" over {spread.group(2)} nodes" if spread else ""
    report.add(f"{name} batch", "ok", f"effective batch {layout.total} = {layout.micro} x {layout.accumulation} "
                                      f"accumulation on {where}", echo)
    if layout.gpus:
        if not gpus:
            report.add(f"{name} GPUs", "skip", f"needs {needed}; none visible here (the CPU part runs below)", echo)
        elif len(gpus) < needed:
            report.add(f"{name} GPUs", "fail", f"needs {needed}, {len(gpus)} visible: "
                                               f"`lema build --gpus {len(gpus)}` keeps the batch on them", echo)
        else:
            extra = f"; {len(gpus) - needed} more idle (`lema build --gpus {len(gpus)}` uses them)" \
                if len(gpus) > needed and not spread else ""
            report.add(f"{name} GPUs", "ok", f"needs {needed}, {len(gpus)} visible{extra}", echo)
        shape = architecture(config.get("base_model", ""))
        need = memory_estimate_gb(config, shape)
        if need is None:
            report.add(f"{name} memory", "skip", f"unknown architecture for {config.get('base_model')}", echo)
        elif gpus:
            smallest = min(g.memory_mb for g in gpus[:needed]) / 1024
            status = "ok" if need <= smallest * 0.95 else "warn"
            report.add(f"{name} memory", status, f"about {need:g} GB per GPU for training (rough estimate), "
                                                 f"{smallest:.0f} GB on the smallest visible", echo)
        else:
            report.add(f"{name} memory", "skip", f"about {need:g} GB per GPU for training (rough estimate); no GPU to "
                                                 "compare with", echo)
    attention = config.get("attn_implementation") or "eager"
    if attention in ("sdpa", "eager"):
        report.add(f"{name} attention", "ok", f"{attention}: PyTorch's own, nothing fetched at run time", echo)
    elif attention.startswith("flash_attention"):
        try:
            import flash_attn  # noqa: F401

            report.add(f"{name} attention", "ok", f"{attention}: flash-attn is installed", echo)
        except ImportError:
            report.add(f"{name} attention", "warn", f"{attention}: flash-attn is not installed, so transformers would "
                                                    "fetch a kernel from the hub when the model loads", echo)
    else:
        report.add(f"{name} attention", "warn", f"{attention}: may be fetched from the hub at run time", echo)
    if config.get("adapter") in ("lora", "qlora"):
        unset = [k for k in KERNELS if k not in config]
        on = [k for k in KERNELS if config.get(k)]
        if unset:
            report.add(f"{name} LoRA kernels", "warn", f"{', '.join(unset)} unset: axolotl switches its fused kernels on "
                                                       "(no dropout on the down-projection input, unlike PEFT)", echo)
        else:
            report.add(f"{name} LoRA kernels", "ok", "set explicitly" + (f" ({', '.join(on)} on)" if on else ", off (PEFT)"),
                       echo)
        if config.get("merge_method") != "legacy" and not config.get("rl") and not config.get("process_reward_model"):
            report.add(f"{name} merge", "warn", "merge_method is not legacy: the printed merge passes "
                                               "--merge-method legacy, a bare `axolotl merge-lora` would not", echo)
    return {"path": path, "config": config, "layout": layout, "name": name}

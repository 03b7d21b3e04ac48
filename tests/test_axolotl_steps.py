"""The step-level kinds against real axolotl: the Step-DPO and PRM configs pass its validator, its
own loaders read and tokenize the written pairs and labels, and each config trains two CPU steps
of the embedded model."""
from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from lema_plugin.export import build_step_dataset

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("axolotl_env")]

REPO = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).parent / "fixtures"
DPO = REPO / "axolotl_configs" / "qwen2.5-1.5b-instruct-gsm8k-step-dpo.yml"
PRM = REPO / "axolotl_configs" / "qwen2.5-1.5b-instruct-gsm8k-prm.yml"
GPU = {"bf16": True, "fp8": False, "tf32": True, "n_gpu": 1, "compute_capability": "sm_90"}
# What turns a GPU config into a CPU smoke run of the embedded model (the configs' headers say so).
CPU_SMOKE = {
    "bf16": False, "tf32": False, "attn_implementation": "sdpa", "gradient_checkpointing": False,
    "lora_mlp_kernel": False, "lora_qkv_kernel": False, "lora_o_kernel": False, "optimizer": "adamw_torch",
    "max_steps": 2, "micro_batch_size": 1, "gradient_accumulation_steps": 1, "warmup_ratio": 0,
    "sequence_len": 1024, "logging_steps": 1, "save_strategy": "no", "dataset_num_proc": 1,
    "dataloader_num_workers": 0,
}


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict[str, dict]:
    root = tmp_path_factory.mktemp("steps")
    return {
        kind: build_step_dataset(root / kind, kind, FIXTURES / "cot.jsonl", FIXTURES / "corrections.jsonl")
        for kind in ("step-dpo", "prm")
    }


def rows(info: dict) -> list[dict]:
    path = Path(info["axolotl"]["datasets"][0]["path"])
    return [json.loads(line) for line in path.read_text().splitlines()]


def smoke_config(config: Path, info: dict, model_dir: str, tmp_path: Path) -> Path:
    """The shipped config on CPU: the built data pasted in, the embedded model, every path under tmp_path."""
    raw = yaml.safe_load(config.read_text())
    raw.update(info["axolotl"])
    raw.update(CPU_SMOKE, base_model=model_dir, output_dir=str(tmp_path / "out"),
               dataset_prepared_path=str(tmp_path / "prepared"))
    path = tmp_path / config.name
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


@pytest.mark.parametrize("config, kind", [(DPO, "step-dpo"), (PRM, "prm")], ids=["step-dpo", "prm"])
def test_gpu_config_passes_axolotl_validation(config, kind, built):
    import torch
    from axolotl.utils.config import validate_config
    from axolotl.utils.dict import DictDefault

    text = config.read_text()
    assert text.startswith("# ") and f"--axolotl-config {config.stem}" in text  # built into a ready config
    raw = yaml.safe_load(text)
    (dataset,) = raw["datasets"]
    stanza = built[kind]["axolotl"]
    assert {k: v for k, v in dataset.items() if k != "path"} == {k: v for k, v in stanza["datasets"][0].items() if k != "path"}
    dataset["path"] = stanza["datasets"][0]["path"]
    cfg = validate_config(DictDefault(raw), capabilities=GPU,
                          env_capabilities={"torch_version": torch.__version__.split("+")[0]})
    assert cfg.sample_packing is False and cfg.bf16 is True and cfg.adapter == "lora"
    if kind == "step-dpo":
        assert cfg.rl == "dpo" and cfg.datasets[0]["type"] == "chat_template.default"
    else:
        assert cfg.process_reward_model is True and cfg.num_labels == 2
        assert cfg.datasets[0]["type"] == "stepwise_supervised" and "score" in cfg.lora_modules_to_save


def test_axolotl_renders_the_step_pairs_with_the_models_chat_template(built, model_dir, tmp_path):
    from axolotl.cli.config import load_cfg
    from axolotl.loaders import load_tokenizer
    from axolotl.utils.data.rl import prepare_preference_datasets

    cfg = load_cfg(str(smoke_config(DPO, built["step-dpo"], model_dir, tmp_path)))
    tokenizer = load_tokenizer(cfg)
    train, _ = prepare_preference_datasets(cfg, tokenizer)
    written = {r["messages"][0]["content"]: r for r in rows(built["step-dpo"])}
    assert len(train) == len(written) == 4
    for pair in train:
        # the prompt is the user turn (solve prompt + shared steps) and an opened assistant turn
        assert pair["prompt"].endswith("<|im_start|>assistant\n")
        (row,) = [r for content, r in written.items() if content in pair["prompt"]]
        assert pair["chosen"].startswith(row["chosen"]["content"]) and pair["chosen"].endswith("<|im_end|>")
        assert pair["rejected"].startswith(row["rejected"]["content"]) and pair["rejected"].endswith("<|im_end|>")
        prompt_ids = tokenizer(pair["prompt"], add_special_tokens=False)["input_ids"]
        chosen_ids = tokenizer(pair["chosen"], add_special_tokens=False)["input_ids"]
        assert chosen_ids[-1] == tokenizer.convert_tokens_to_ids("<|im_end|>")
        assert len(prompt_ids) + len(chosen_ids) <= cfg.sequence_len


def test_axolotl_tokenizes_the_labels_one_per_step(built, model_dir, tmp_path):
    from axolotl.cli.config import load_cfg
    from axolotl.loaders import load_tokenizer
    from axolotl.utils.data.shared import load_dataset_with_config
    from axolotl.utils.data.wrappers import get_dataset_wrapper

    cfg = load_cfg(str(smoke_config(PRM, built["prm"], model_dir, tmp_path)))
    tokenizer = load_tokenizer(cfg)
    ds_cfg = cfg.datasets[0]
    raw = load_dataset_with_config(ds_cfg, cfg.hf_use_auth_token, streaming=False)
    tokenized, _ = get_dataset_wrapper(ds_cfg, tokenizer, cfg, ds_cfg.type, raw)
    written = rows(built["prm"])
    assert len(tokenized) == len(written) == 14
    separator = tokenizer.encode("\n", add_special_tokens=False)
    for row, example in zip(written, tokenized):
        ids, labels = example["input_ids"], example["labels"]
        labelled = [i for i, label in enumerate(labels) if label != -100]
        assert [labels[i] for i in labelled] == [int(label) for label in row["labels"]], "one label per step, in order"
        assert all(ids[i] == separator[-1] for i in labelled), "each label sits on its step's separator"
        head = tokenizer.decode(ids[: labelled[0]], skip_special_tokens=True)
        assert head == row["prompt"] + row["completions"][0], "the solve prompt, then the first step"
        for j in range(1, len(labelled)):
            assert tokenizer.decode(ids[labelled[j - 1] + 1 : labelled[j]]) == row["completions"][j]


def ready_smoke(config: Path, kind: str, model_dir: str, tmp_path: Path) -> tuple[Path, dict]:
    """The ready config `lema build --mix KIND --axolotl-config CONFIG` writes, with held-out rows
    (so its val.jsonl is evaluated) and the CPU settings and the embedded model as overrides."""
    info = build_step_dataset(tmp_path / "data", kind, FIXTURES / "cot.jsonl", FIXTURES / "corrections.jsonl",
                              val_fraction=0.25, axolotl_config=config,
                              config_overrides={**CPU_SMOKE, "base_model": model_dir})
    assert info["axolotl_config"]["check"] == "validated with axolotl's schema"
    assert (tmp_path / "data" / "val.jsonl").exists()
    return tmp_path / "data" / "axolotl.yml", info


def _train(config: Path, tmp_path: Path) -> str:
    command = [str(Path(sys.executable).parent / "axolotl"), "train", str(config), "--launcher", "python"]
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-3000:]
    losses = [float(v) for v in re.findall(r"'loss': '?([-+\w.]+)'?", log)]
    assert len(losses) == CPU_SMOKE["max_steps"]
    assert all(math.isfinite(loss) and loss > 0 for loss in losses)
    return log


def _adapter(out: Path, model_dir: str) -> dict:
    from safetensors.torch import load_file

    adapter_config = json.loads((out / "adapter_config.json").read_text())
    assert adapter_config["base_model_name_or_path"] == model_dir
    weights = load_file(out / "adapter_model.safetensors")
    assert weights and all(w.isfinite().all() for w in weights.values())
    assert any(w.abs().sum() > 0 for name, w in weights.items() if "lora_B" in name), "the adapter moved"
    return {"config": adapter_config, "weights": weights}


def test_step_dpo_ready_config_trains_on_cpu(model_dir, tmp_path):
    path, info = ready_smoke(DPO, "step-dpo", model_dir, tmp_path)
    log = _train(path, tmp_path)
    assert "rewards/chosen" in log, "the DPO trainer ran"
    assert "eval_loss" in log, "the held-out pairs (val.jsonl, test_datasets) are evaluated"
    _adapter(Path(info["axolotl_config"]["output_dir"]), model_dir)


def test_prm_ready_config_trains_on_cpu(model_dir, tmp_path):
    path, info = ready_smoke(PRM, "prm", model_dir, tmp_path)
    log = _train(path, tmp_path)
    assert "eval_loss" in log, "the held-out labels (val.jsonl, test_datasets) are evaluated"
    adapter = _adapter(Path(info["axolotl_config"]["output_dir"]), model_dir)
    assert adapter["config"]["task_type"] == "TOKEN_CLS"
    assert any("score" in name and "lora" not in name for name in adapter["weights"]), "the new score head is saved"

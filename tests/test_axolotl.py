"""The configs and the built data against real axolotl: its validator, its tokenizing strategies,
and two CPU training steps of the embedded model."""
from __future__ import annotations

import json
import math
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from lema_plugin.export import build_dataset

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("axolotl_env")]

REPO = Path(__file__).resolve().parent.parent
# The SFT configs; the Step-DPO and PRM ones are checked in test_axolotl_steps.py.
CONFIGS = sorted(
    p for p in (REPO / "axolotl_configs").glob("*.yml")
    if not {"rl", "process_reward_model"} & yaml.safe_load(p.read_text()).keys()
)
SMOKE = REPO / "axolotl_configs" / "smollm2-135m-cpu-smoke.yml"
FIXTURES = Path(__file__).parent / "fixtures"
FORMATS = ("chat_template", "input_output", "alpaca")
# What a config is validated against: an 80 GB Hopper card for the GPU configs, this CPU for the smoke one.
GPU = {"bf16": True, "fp8": False, "tf32": True, "n_gpu": 1, "compute_capability": "sm_90"}
CPU = {"bf16": False, "fp8": False, "tf32": False, "n_gpu": 1, "compute_capability": None}


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict[str, dict]:
    """The LeMa mix of the fixtures in every format (EOS text = the embedded model's EOS)."""
    root = tmp_path_factory.mktemp("built")
    return {
        fmt: build_dataset(
            root / fmt, FIXTURES / "cot.jsonl", FIXTURES / "corrections.jsonl", mix="lema", fmt=fmt,
            eos_token="<|im_end|>",
        )
        for fmt in FORMATS
    }


def smoke_config(tmp_path: Path, info: dict, model_dir: str) -> Path:
    """The smoke config with the built data pasted in and every path under `tmp_path`."""
    config = yaml.safe_load(SMOKE.read_text())
    config.update(info["axolotl"])
    config["base_model"] = model_dir
    config["output_dir"] = str(tmp_path / "out")
    config["dataset_prepared_path"] = str(tmp_path / "prepared")
    path = tmp_path / "smoke.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def train_path(info: dict) -> Path:
    """The train file named by the `datasets:` stanza of a build."""
    return Path(info["axolotl"]["datasets"][0]["path"])


def _billions(base_model: str) -> int:
    return int(re.search(r"(\d+(?:\.\d+)?)b", base_model.lower()).group(1).split(".")[0])


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_config_passes_axolotl_validation_and_keeps_the_recipe(path, built):
    import torch
    from axolotl.utils.config import validate_config
    from axolotl.utils.dict import DictDefault

    from lema_plugin.export.axolotl_config import gpu_count

    raw = yaml.safe_load(path.read_text())
    assert path.read_text().startswith("# "), "every config starts with a header comment"
    (dataset,) = raw["datasets"]
    dataset["path"] = str(train_path(built[dataset["type"]]))
    n_gpu = gpu_count(path)
    caps = CPU if path == SMOKE else {**GPU, "n_gpu": n_gpu}
    cfg = validate_config(
        DictDefault(raw), capabilities=caps, env_capabilities={"torch_version": torch.__version__.split("+")[0]}
    )
    assert Path(cfg.datasets[0]["path"]).is_file()
    assert cfg.train_on_inputs is False
    if path == SMOKE:
        assert cfg.max_steps <= 5 and cfg.adapter == "lora"
        assert not (cfg.lora_mlp_kernel or cfg.lora_qkv_kernel or cfg.lora_o_kernel)
        assert not (cfg.bf16 or cfg.fp16 or cfg.sample_packing or cfg.flash_attention)
        assert cfg.attn_implementation in ("sdpa", "eager")
        return
    # The paper's LoRA recipe (DESIGN.md) in every GPU config.
    assert (cfg.lora_r, cfg.lora_alpha, cfg.lora_dropout, cfg.lora_target_linear) == (64, 16, 0.05, True)
    assert (cfg.lr_scheduler, cfg.warmup_steps, cfg.weight_decay, cfg.max_grad_norm) == ("constant", 0, 0.01, 0.3)
    assert cfg.bf16 is True and cfg.attn_implementation == "sdpa"  # nothing fetched at run time
    # set explicitly, so axolotl's validator did not switch its fused kernels on (PEFT's LoRA, as the paper)
    assert not (cfg.lora_mlp_kernel or cfg.lora_qkv_kernel or cfg.lora_o_kernel or cfg.lora_embedding_kernel)
    assert cfg.merge_method == "legacy"
    assert cfg.learning_rate == (1e-4 if _billions(cfg.base_model) >= 34 else 2e-4)
    assert cfg.sequence_len >= (1536 if "-math-" in path.name else 1024)
    assert not cfg.sample_packing
    assert cfg.micro_batch_size * cfg.gradient_accumulation_steps * n_gpu == 96
    if "llama" in cfg.base_model.lower():
        assert cfg.adapter == "qlora" and cfg.load_in_4bit
        assert cfg.bnb_config_kwargs == {"bnb_4bit_quant_type": "nf4", "bnb_4bit_use_double_quant": True}
        assert cfg.datasets[0]["type"] == "input_output"
    assert cfg.excess_length_strategy in ("drop", "truncate")  # chosen, not axolotl's silent default
    assert (cfg.max_steps, cfg.save_steps, cfg.group_by_length) == (1000, 100, True)  # fixed steps: twins alike
    if "qwen" not in path.name:  # the paper configs: the official seed
        assert cfg.seed == 0
    if raw.get("fsdp_config"):
        assert cfg.fsdp_version == 2 and cfg.adapter == "qlora"


def test_axolotl_preprocess_never_reuses_the_tokens_of_an_earlier_build(model_dir, tmp_path):
    """The real `axolotl preprocess` on ready configs: a rebuild in place lands in a new prepared folder
    holding the new rows (axolotl keys its cache by the config, so the folder must change)."""
    from datasets import load_from_disk

    from lema_plugin.export import build_dataset

    axolotl = Path(sys.executable).parent / "axolotl"
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    out, prepared = tmp_path / "data", []
    for seed, corrections in ((0, FIXTURES / "corrections.jsonl"), (0, None)):
        info = build_dataset(out, FIXTURES / "cot.jsonl", corrections, mix="lema" if corrections else "cot-only",
                             fmt="chat_template", seed=seed, axolotl_config=SMOKE,
                             config_overrides={"base_model": model_dir})
        config = yaml.safe_load((out / "axolotl.yml").read_text())
        run = subprocess.run([str(axolotl), "preprocess", str(out / "axolotl.yml")], cwd=tmp_path, env=env,
                             capture_output=True, text=True, timeout=900)
        assert run.returncode == 0, (run.stdout + run.stderr)[-3000:]
        folder = Path(config["dataset_prepared_path"])
        [saved] = [p.parent for p in folder.rglob("dataset_info.json")]
        prepared.append((folder, len(load_from_disk(str(saved))), info["files"]["train"]["examples"]))
    (first, first_rows, first_built), (second, second_rows, second_built) = prepared
    assert first != second and first.parent == second.parent == out / "prepared"
    assert (first_rows, second_rows) == (first_built, second_built) == (11, 7)


@pytest.mark.parametrize("fmt", FORMATS)
def test_axolotl_tokenizes_every_format_with_loss_on_the_response_only(fmt, built, model_dir, tmp_path):
    from axolotl.cli.config import load_cfg
    from axolotl.loaders import load_tokenizer
    from axolotl.utils.data.shared import load_dataset_with_config
    from axolotl.utils.data.wrappers import get_dataset_wrapper

    info = built[fmt]
    cfg = load_cfg(str(smoke_config(tmp_path, info, model_dir)))  # axolotl's own loader + validation
    tokenizer = load_tokenizer(cfg)
    ds_cfg = cfg.datasets[0]
    raw = load_dataset_with_config(ds_cfg, cfg.hf_use_auth_token, streaming=False)
    tokenized, _ = get_dataset_wrapper(ds_cfg, tokenizer, cfg, ds_cfg.type, raw)

    rows = [json.loads(line) for line in train_path(info).read_text().splitlines()]
    assert len(tokenized) == len(rows) == 11
    eos = tokenizer.eos_token_id
    for row, example in zip(rows, tokenized):
        prompt, response = _prompt_and_response(row, fmt)
        ids, labels = example["input_ids"], example["labels"]
        trained = [i for i, label in enumerate(labels) if label != -100]
        assert trained == list(range(trained[0], trained[-1] + 1)), "one contiguous trained span"
        assert all(labels[i] == ids[i] for i in trained)
        assert ids[trained[-1]] == eos, "the model learns to stop"
        assert tokenizer.decode([ids[i] for i in trained], skip_special_tokens=True).strip() == response.strip()
        assert prompt.strip() in tokenizer.decode(ids[: trained[0]], skip_special_tokens=True)


def _prompt_and_response(row: dict, fmt: str) -> tuple[str, str]:
    if fmt == "chat_template":
        return row["messages"][0]["content"], row["messages"][1]["content"]
    if fmt == "alpaca":
        return row["instruction"], row["output"]
    prompt, response = (segment["text"] for segment in row["segments"])
    return prompt, response.removesuffix("<|im_end|>")


def test_cpu_smoke_training_runs_and_saves_the_adapter(model_dir, tmp_path, shared_data):
    """The command `lema build --axolotl-config` prints, run as printed, on its ready config."""
    from safetensors.torch import load_file

    info = build_dataset(tmp_path / "data", FIXTURES / "cot.jsonl", FIXTURES / "corrections.jsonl", mix="lema",
                         fmt="chat_template", axolotl_config=SMOKE, config_overrides={"base_model": model_dir},
                         val_fraction=0.2)
    train = info["next_commands"][1]
    assert train == f"axolotl train {tmp_path / 'data' / 'axolotl.yml'} --launcher python"
    axolotl = Path(sys.executable).parent / "axolotl"
    command = [str(axolotl), *train.split()[1:]]
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-3000:]

    losses = [float(v) for v in re.findall(r"'loss': '?([-+\w.]+)'?", log)]
    steps = yaml.safe_load(SMOKE.read_text())["max_steps"]
    assert len(losses) == steps <= 5  # logging_steps 1: one loss per optimizer step
    assert all(math.isfinite(loss) and loss > 0 for loss in losses)

    assert re.search(r"'eval_loss': '?[\d.]+", log), "the held-out rows are evaluated (test_datasets)"
    out = Path(info["axolotl_config"]["output_dir"])
    assert out.parent == tmp_path / "data" / "adapter"  # named by the content of the data and config
    adapter_config = json.loads((out / "adapter_config.json").read_text())
    assert adapter_config["base_model_name_or_path"] == model_dir and adapter_config["r"] == 8
    weights = load_file(out / "adapter_model.safetensors")
    assert weights and all(w.isfinite().all() for w in weights.values())
    # LoRA's B matrices start at zero: a trained adapter has moved them.
    assert any(w.abs().sum() > 0 for name, w in weights.items() if "lora_B" in name)

    # the printed eval command, as printed (a short run): lm-eval's hf class loads the adapter through peft=
    evaluate = shlex.split(info["next_commands"][2])
    assert evaluate[0] == "lm_eval" and "--apply_chat_template" in evaluate
    evaluate[0] = str(Path(sys.executable).parent / "lm_eval")
    evaluate += ["--limit", "1", "--gen_kwargs", "max_gen_toks=16"]
    env["OMP_NUM_THREADS"] = "1"
    env["LEMA_DATA_DIR"] = str(shared_data)  # what the printed `export` line sets: the tasks read it
    result = subprocess.run(evaluate, cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    [results] = (tmp_path / "data" / "eval").rglob("results_*.json")
    scores = json.loads(results.read_text())
    assert {"official_match,none", "strict_match,none"} <= set(scores["results"]["lema_gsm8k"])
    # the adapter the printed command names (adapter/current) is the one just trained
    assert str(out.parent / "current") in json.dumps(scores["config"]["model_args"])
    assert (out.parent / "current").resolve() == out.resolve()

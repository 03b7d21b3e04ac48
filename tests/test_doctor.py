"""`lema doctor`: what it reads from a config against the GPUs it is shown, the tiny model it
builds, and (slow) its whole CPU part on a paper config: train, merge and evaluate, as printed."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from lema_plugin.cli import main
from lema_plugin.doctor import Gpu, Report, architecture, config_checks, pins, tiny_model, version_checks

REPO = Path(__file__).resolve().parent.parent
PAPER = REPO / "axolotl_configs" / "llama2-70b-gsm8k-lema.yml"
H100 = Gpu(0, "NVIDIA H100 80GB HBM3", 81559)


def statuses(report: Report) -> dict[str, str]:
    return {check.name.split(" ", 1)[1] if " " in check.name else check.name: check.status for check in report.checks}


def test_a_paper_config_against_the_gpus_a_machine_shows():
    cases = [([], "skip"), ([H100], "ok"), ([Gpu(i, H100.name, H100.memory_mb) for i in range(8)], "ok")]
    for gpus, expected in cases:
        report = Report()
        config_checks(PAPER, gpus, report)
        found = statuses(report)
        assert found["GPUs"] == expected
        assert (found["batch"], found["attention"], found["LoRA kernels"]) == ("ok", "ok", "ok")
    # 8 visible for a 1-GPU layout: fine, and it says how to use the other 7 at the same batch
    assert "`lema build --gpus 8` uses them" in report.checks[1].detail
    # a 4-GPU layout on 2 GPUs fails, naming the rebuild that fits
    report = Report()
    config_checks(REPO / "axolotl_configs" / "llama2-70b-gsm8k-lema-ddp.yml", [H100, Gpu(1, H100.name, H100.memory_mb)], report)
    [gpus] = [c for c in report.checks if c.name.endswith(" GPUs")]
    assert gpus.status == "fail" and "needs 4, 2 visible: `lema build --gpus 2`" in gpus.detail
    # a 70B QLoRA layout is estimated under an 80 GB card, and over a 24 GB one
    for card, status in ((H100, "ok"), (Gpu(0, "RTX 4090", 24564), "warn")):
        report = Report()
        config_checks(PAPER, [card], report)
        assert statuses(report)["memory"] == status


def test_what_would_change_numbers_or_fetch_at_run_time_is_a_warning(tmp_path):
    config = yaml.safe_load(PAPER.read_text())
    for key in ("lora_mlp_kernel", "lora_qkv_kernel", "lora_o_kernel", "lora_embedding_kernel", "merge_method"):
        config.pop(key)
    config["attn_implementation"] = "flash_attention_2"
    path = tmp_path / "unpinned.yml"
    path.write_text(yaml.safe_dump(config))
    report = Report()
    config_checks(path, [H100], report)
    found = {c.name.split(" ", 1)[1]: c for c in report.checks}
    assert found["LoRA kernels"].status == "warn" and "switches its fused kernels on" in found["LoRA kernels"].detail
    assert found["merge"].status == "warn"
    try:
        import flash_attn  # noqa: F401
    except ImportError:
        assert found["attention"].status == "warn" and "fetch a kernel from the hub" in found["attention"].detail


def test_versions_are_checked_against_the_pins_of_each_environment():
    pinned = pins()
    assert ("axolotl", "0.19.0") in pinned["train"] and ("vllm", "0.32.0") in pinned["vllm"]
    report = Report()
    version_checks(report)
    by_extra = {c.name: c for c in report.checks}
    # this environment has axolotl (the test extra), not vLLM: the vllm environment is another one
    assert by_extra["versions [train]"].status == "ok" and "axolotl 0.19.0" in by_extra["versions [train]"].detail
    assert by_extra["versions [vllm]"].status == "skip"


@pytest.mark.parametrize("base_model, model_type, group, tied", [
    ("meta-llama/Llama-2-70b-hf", "llama", 8, False),
    ("meta-llama/Llama-2-7b-hf", "llama", 1, False),
    ("Qwen/Qwen2.5-1.5B-Instruct", "qwen2", 6, True),
])
def test_the_tiny_model_has_the_configs_architecture(base_model, model_type, group, tied, tmp_path, model_dir):
    from transformers import AutoConfig

    shape = architecture(base_model)
    folder = tiny_model(shape, tmp_path / "tiny", model_dir)
    config = AutoConfig.from_pretrained(folder, local_files_only=True)
    assert config.model_type == model_type and config.num_hidden_layers == 2
    assert config.num_attention_heads // config.num_key_value_heads == group  # grouped-query attention kept
    assert bool(config.tie_word_embeddings) == tied
    # built here, tiny: the vocabulary's embeddings are most of it
    assert sum(p.stat().st_size for p in folder.glob("*.safetensors")) < 64_000_000
    # a local model folder is read for its own shape
    assert architecture(str(folder))["model_type"] == model_type


@pytest.mark.slow
def test_doctor_runs_the_cpu_part_of_a_paper_config(tmp_path, monkeypatch):
    """The whole CPU part on llama2-70b-gsm8k-lema: a tiny LLaMA trained by axolotl with the config's
    settings, merged by the printed legacy merge, scored by the printed task; the GPU part skipped."""
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    result = CliRunner().invoke(main, ["doctor", "llama2-70b-gsm8k-lema", "--work-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    lines = {re.sub(r"^\w+\s+", "", line).split(":", 1)[0]: line.split()[0]
             for line in result.output.splitlines() if re.match(r"^(OK|WARN|FAIL|SKIP)\s", line)}
    name = "llama2-70b-gsm8k-lema"
    for check in ("tiny model", "train", "merge", "eval", "batch", "attention", "LoRA kernels"):
        assert lines[f"{name} {check}"] == "OK", (check, result.output)
    assert lines["GPUs"] == "SKIP" and lines[f"{name} GPUs"] == "SKIP"  # said, not silently passed
    work = tmp_path / f"1-{name}"
    cpu = yaml.safe_load((work / "cpu.yml").read_text())
    paper = yaml.safe_load(PAPER.read_text())
    # the config's own settings, only what a CPU cannot run changed
    for key in ("lora_r", "lora_alpha", "lora_dropout", "lora_target_linear", "learning_rate", "lr_scheduler",
                "weight_decay", "max_grad_norm", "sequence_len", "excess_length_strategy", "group_by_length",
                "train_on_inputs", "attn_implementation", "merge_method", "lora_mlp_kernel"):
        assert cpu[key] == paper[key], key
    assert (cpu["adapter"], cpu["bf16"], cpu["load_in_4bit"]) == ("lora", False, False)
    losses = re.findall(r"'loss': '?([\d.]+)'?", (work / "train.log").read_text())
    assert len(losses) == cpu["max_steps"]
    merged = json.loads((work / "adapter" / "merged" / "config.json").read_text())
    assert merged["model_type"] == "llama" and merged["num_hidden_layers"] == 2
    [results] = (work / "eval").rglob("results_*.json")
    scores = json.loads(results.read_text())["results"]["lema_gsm8k"]
    assert {"official_match,none", "strict_match,none", "exact_match,none"} <= set(scores)
    assert "vLLM (the printed backend) needs a GPU" in result.output

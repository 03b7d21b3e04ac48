"""The shipped axolotl configs against the official LeMa script, and the commands their headers
print against the real CLIs' arguments (lema's click commands, lm-eval's model classes).

Schema validation by axolotl itself is in test_axolotl.py (it imports axolotl: slow).
"""
from __future__ import annotations

import ast
import inspect
import re
import shlex
from pathlib import Path

import click
import pytest
import yaml

from lema_plugin.cli import main
from lema_plugin.export.axolotl_config import KERNELS, gpu_count, layout_for, read_layout

REPO = Path(__file__).resolve().parent.parent
CONFIGS = sorted((REPO / "axolotl_configs").glob("*.yml"))
# Built by the step-level kinds (`lema build --mix step-dpo|prm`), which write no ready config.
STEP_LEVEL = {"qwen2.5-1.5b-instruct-gsm8k-step-dpo", "qwen2.5-1.5b-instruct-gsm8k-prm"}
NOT_PAPER = {"qwen2.5-1.5b-instruct-gsm8k-lema", "smollm2-135m-cpu-smoke", "smollm2-135m-cpu-prm", *STEP_LEVEL}
PAPER = [p for p in CONFIGS if p.stem not in NOT_PAPER]


def header(path: Path) -> str:
    return path.read_text().split("\n\n", 1)[0]


def header_commands(path: Path) -> list[str]:
    """Command lines in a config header (comment markers and continuations removed)."""
    text = "\n".join(line[1:].strip() for line in header(path).splitlines())
    text = text.replace("\\\n", " ")
    commands = []
    for line in text.splitlines():
        line = re.sub(r"^(Data|Train|Eval):\s*", "", line.strip())
        line = re.sub(r"^([A-Z_]+=\S+\s+)+", "", line)  # environment settings before a command
        if line.startswith(("lema ", "axolotl ", "lm_eval ")):
            commands.append(line.split("  (", 1)[0].strip())
    return commands


def init_params(module_file: str, class_name: str) -> set[str]:
    """The named __init__ parameters of an lm-eval model class, read from the installed source
    (the vllm module imports vllm and ray, which a CPU machine does not have)."""
    import lm_eval

    source = Path(lm_eval.__file__).parent / "models" / module_file
    tree = ast.parse(source.read_text())
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == class_name)
    init = next(n for n in cls.body if isinstance(n, ast.FunctionDef) and n.name == "__init__")
    return {a.arg for a in init.args.args + init.args.kwonlyargs} - {"self"}


def model_args(command: str) -> tuple[str, dict[str, str]]:
    args = shlex.split(command)
    backend = args[args.index("--model") + 1]
    pairs = args[args.index("--model_args") + 1].split(",")
    return backend, dict(pair.split("=", 1) for pair in pairs)


def check_lm_eval_command(command: str) -> None:
    backend, kwargs = model_args(command)
    if backend == "vllm":
        allowed = init_params("vllm_causallms.py", "VLLM")
    elif backend == "local-completions":
        allowed = init_params("api_models.py", "TemplateAPI")
    else:
        assert backend == "hf", command
        from lm_eval.models.huggingface import HFLM

        allowed = set(inspect.signature(HFLM.__init__).parameters)
    assert set(kwargs) <= allowed, (command, set(kwargs) - allowed)
    if "lora_local_path" in kwargs:  # vLLM's default rank (16) cannot load the paper's r=64 adapter
        assert int(kwargs["max_lora_rank"]) >= 64


@pytest.mark.parametrize("path", PAPER, ids=[p.stem for p in PAPER])
def test_paper_config_follows_the_official_script(path):
    config = yaml.safe_load(path.read_text())
    math = "-math-" in path.name
    assert config["max_steps"] == 1000 and "num_epochs" not in config
    assert (config["save_strategy"], config["save_steps"]) == ("steps", 100)
    assert config["seed"] == 0 and config["group_by_length"] is True
    assert config["micro_batch_size"] == (3 if math else 6)
    assert config["micro_batch_size"] * config["gradient_accumulation_steps"] * gpu_count(path) == 96
    assert config["sequence_len"] == (1536 if math else 1024)
    assert config["sample_packing"] is False and config["excess_length_strategy"] == "truncate"
    assert config["optimizer"] == "paged_adamw_32bit"
    assert "deepspeed" not in config
    # PEFT's LoRA layers, as the official script: axolotl's fused kernels (no dropout on the
    # down-projection input) would switch on if these were left unset
    assert all(config[key] is False for key in KERNELS)
    # the adapter is merged into the bf16 base, as the official qlora_merge.py does
    assert config["merge_method"] == "legacy"
    # an attention backend that needs nothing installed or fetched at run time
    assert config["attn_implementation"] == "sdpa" and "batch_flattening" not in config
    text = path.read_text()
    for key in ("max_steps", "save_steps", "micro_batch_size", "learning_rate", "sequence_len", "seed"):
        line = next(line for line in text.splitlines() if line.startswith(f"{key}:"))
        assert "# official:" in line, f"{key} does not say which official setting it reproduces"
    assert "data_seed" in text  # the one official setting axolotl cannot take is named


def test_every_config_chooses_what_happens_to_over_long_rows():
    for path in CONFIGS:
        assert yaml.safe_load(path.read_text()).get("excess_length_strategy") in ("drop", "truncate"), path.name


def test_twins_differ_only_in_their_data():
    pairs = [(p, p.with_name(p.name.replace("-lema.yml", "-cot.yml"))) for p in PAPER if p.name.endswith("-lema.yml")]
    pairs = [(a, b) for a, b in pairs if b.exists()]
    assert {a.stem for a, _ in pairs} == {"llama2-70b-gsm8k-lema", "llama2-70b-math-lema", "metamath-70b-gsm8k-lema",
                                          "wizardmath-70b-gsm8k-lema", "wizardmath-70b-math-lema"}
    for lema, cot in pairs:
        a, b = yaml.safe_load(lema.read_text()), yaml.safe_load(cot.read_text())
        for config in (a, b):
            config.pop("datasets"), config.pop("output_dir")
        assert a == b, (lema.name, cot.name)


def test_specialized_rows_start_from_their_public_checkpoints():
    models = {p.stem: yaml.safe_load(p.read_text())["base_model"] for p in PAPER}
    assert models["metamath-70b-gsm8k-lema"] == models["metamath-70b-gsm8k-cot"] == "meta-math/MetaMath-70B-V1.0"
    for row in ("wizardmath-70b-math", "wizardmath-70b-gsm8k"):
        assert models[f"{row}-lema"] == models[f"{row}-cot"] == "WizardLMTeam/WizardMath-70B-V1.0"
    for stem in ("metamath-70b-gsm8k-lema", "wizardmath-70b-math-lema", "wizardmath-70b-gsm8k-lema"):
        text = header(REPO / "axolotl_configs" / f"{stem}.yml")
        assert "Prompt:" in text and "--tasks lema_" in text
        # WizardMath rows are built and asked with WizardMath's prompt, as the official evaluation asks them
        wizard = stem.startswith("wizardmath")
        assert ("--prompt wizardmath" in text) == wizard and ("_wizardmath --output_path" in text) == wizard
    assert "84.2" in header(REPO / "axolotl_configs" / "wizardmath-70b-gsm8k-lema.yml")


def test_multi_gpu_configs_are_plain_ddp_and_fsdp_qlora():
    ddp = yaml.safe_load((REPO / "axolotl_configs/llama2-70b-gsm8k-lema-ddp.yml").read_text())
    fsdp = yaml.safe_load((REPO / "axolotl_configs/llama2-70b-gsm8k-lema-fsdp.yml").read_text())
    assert ddp["load_in_4bit"] and not ddp.get("fsdp_config") and not ddp.get("deepspeed")
    assert (ddp["micro_batch_size"], ddp["gradient_accumulation_steps"]) == (6, 4)  # the official per-device layout
    assert fsdp["adapter"] == "qlora" and fsdp["fsdp_version"] == 2
    assert fsdp["fsdp_config"]["transformer_layer_cls_to_wrap"] == "LlamaDecoderLayer"
    for name in ("ddp", "fsdp"):
        text = header(REPO / f"axolotl_configs/llama2-70b-gsm8k-lema-{name}.yml")
        assert "--launcher torchrun -- --nproc_per_node 4" in text


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_header_commands_parse_against_the_real_clis(path, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    commands = header_commands(path)
    config = yaml.safe_load(path.read_text())
    reward_model = bool(config.get("process_reward_model"))  # scores steps, generates nothing to evaluate
    assert any(c.startswith("lema build") for c in commands)
    assert reward_model or (any(c.startswith("lm_eval") for c in commands) and "official_match" in header(path))
    chat = config["datasets"][0]["type"].startswith("chat_template")
    for command in commands:
        args = shlex.split(command)
        if args[0] == "lema":
            for value in args[2:]:
                if value.endswith(".jsonl"):
                    Path(value).parent.mkdir(parents=True, exist_ok=True)
                    Path(value).touch()
            build = main.get_command(click.Context(main), "build")
            with build.make_context("build", args[2:]) as ctx:
                if path.stem in STEP_LEVEL:
                    assert ctx.params["mix"] in ("step-dpo", "solution-dpo", "prm")
                assert ctx.params["axolotl_config"].endswith(path.name) or ctx.params["axolotl_config"] == path.stem
                assert ctx.params["prompt"] == ("wizardmath" if path.stem.startswith("wizardmath") else None)
        elif args[0] == "lm_eval":
            check_lm_eval_command(command)
            assert ("--apply_chat_template" in args) == chat, command
            task = "lema_math" if "-math-" in path.name else "lema_gsm8k"
            task += "_wizardmath" if path.stem.startswith("wizardmath") else ""
            assert args[args.index("--tasks") + 1] == task
        elif args[:2] == ["axolotl", "merge-lora"]:
            assert args[3:] == ["--merge-method", "legacy"], command  # the bf16 merge, as the paper merged
        elif args[:2] == ["axolotl", "train"] and config.get("bf16"):
            gpus = gpu_count(path)  # exactly as many processes as the config's batch is written for
            assert args[3:] == ["--launcher", "torchrun", "--", "--nproc_per_node", str(gpus)], command


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_every_config_header_states_its_effective_batch(path):
    """`# Effective batch: TOTAL = MICRO per GPU x ACCUMULATION accumulation x N GPUs`, read back and
    checked against the config's own keys (a header that disagrees is refused by the reader)."""
    config = yaml.safe_load(path.read_text())
    layout = read_layout(path)
    assert (layout.micro, layout.accumulation) == (config["micro_batch_size"], config["gradient_accumulation_steps"])
    assert layout.gpus == (4 if path.stem.endswith(("-ddp", "-fsdp")) else 1 if config.get("bf16") else 0)
    assert f"# Effective batch: {layout.total} = " in header(path)
    assert not config.get("sample_packing"), "a packed row holds a varying number of examples"
    if config.get("adapter") in ("lora", "qlora"):
        assert all(config.get(key) is False for key in KERNELS), "LoRA kernels set explicitly"
    assert config.get("attn_implementation") in ("sdpa", "eager"), "nothing fetched at run time"
    assert "dataset_prepared_path" not in config, "the ready config names it by content"
    if layout.gpus:  # the usual node sizes keep the batch: 1, 2, 4 and 8 GPUs divide it
        for gpus in (1, 2, 4, 8):
            moved = layout_for(layout, gpus, path.name)
            assert (moved.micro, moved.total) == (layout.micro, layout.total) and moved.accumulation >= 1


def test_the_small_model_twins_train_the_same_number_of_updates():
    config = yaml.safe_load((REPO / "axolotl_configs" / "qwen2.5-1.5b-instruct-gsm8k-lema.yml").read_text())
    assert config["max_steps"] == 1000 and "num_epochs" not in config and config["sample_packing"] is False
    assert read_layout(REPO / "axolotl_configs" / "qwen2.5-1.5b-instruct-gsm8k-lema.yml").total == 96


def test_the_vllm_lora_path_needs_the_adapter_rank():
    """vLLM's LoRA path (instead of merged weights) works only with max_lora_rank >= r."""
    assert "max_lora_rank" in init_params("vllm_causallms.py", "VLLM")
    check_lm_eval_command("lm_eval --model vllm --model_args pretrained=m,lora_local_path=a,max_lora_rank=64")
    with pytest.raises(AssertionError):
        check_lm_eval_command("lm_eval --model vllm --model_args pretrained=m,lora_local_path=a,max_lora_rank=16")
    with pytest.raises(AssertionError):
        check_lm_eval_command("lm_eval --model vllm --model_args pretrained=m,lora_path=a")

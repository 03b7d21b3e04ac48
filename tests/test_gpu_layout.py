"""The paper's batch on whatever GPUs a user has, and folders keyed by what they were made from.

A ready config is written for a stated GPU count: the effective batch stays the base config's,
the accumulation is derived, and the printed command starts exactly that many processes on that
many GPUs. Every export kind gets its ready config from the same writer, with the prepared-data
and adapter folders named by the content of the data and the config. (axolotl's own validator
checks these configs for 1 and 8 GPUs in test_ready_config's slow test.)
"""
from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from lema_plugin.cli import main
from lema_plugin.errors import ConfigError
from lema_plugin.export import build_dataset, build_step_dataset
from lema_plugin.export.axolotl_config import read_layout
from test_configs import check_lm_eval_command

FIXTURES = Path(__file__).parent / "fixtures"
COT, CORRECTIONS = FIXTURES / "cot.jsonl", FIXTURES / "corrections.jsonl"
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def no_validation(monkeypatch):
    """axolotl's schema check (slow to import) runs in test_ready_config's slow test."""
    monkeypatch.setattr("lema_plugin.export.axolotl_config.validate", lambda config, n_gpu=1: "checked")
    monkeypatch.delenv("LEMA_DATA_DIR", raising=False)


# base config -> (micro batch per GPU, effective batch)
BASES = {
    "llama2-70b-gsm8k-lema": (6, 96),
    "llama2-70b-math-lema": (3, 96),
    "llama2-70b-gsm8k-lema-ddp": (6, 96),
    "llama2-70b-gsm8k-lema-fsdp": (6, 96),
    "qwen2.5-1.5b-instruct-gsm8k-lema": (4, 96),
}


@pytest.mark.parametrize("base", sorted(BASES))
@pytest.mark.parametrize("gpus", [1, 4, 8])
def test_the_effective_batch_is_the_base_configs_on_1_4_and_8_gpus(base, gpus, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    micro, total = BASES[base]
    fmt = "chat_template" if base.startswith("qwen") else "input_output"
    info = build_dataset("o", COT, CORRECTIONS, mix="lema", fmt=fmt, bos_token="<s>", eos_token="</s>",
                         axolotl_config=base, gpus=gpus)
    config = yaml.safe_load((tmp_path / "o" / "axolotl.yml").read_text())
    accumulation = total // (micro * gpus)
    assert (config["micro_batch_size"], config["gradient_accumulation_steps"]) == (micro, accumulation)
    assert micro * accumulation * gpus == total
    # the header states it, in the line `lema doctor` and the readers take it from
    layout = read_layout(tmp_path / "o" / "axolotl.yml")
    assert (layout.micro, layout.accumulation, layout.gpus, layout.total) == (micro, accumulation, gpus, total)
    ready = info["axolotl_config"]
    assert (ready["gpus"], ready["effective_batch"], ready["gradient_accumulation_steps"]) == (gpus, total, accumulation)
    # the printed train command starts exactly `gpus` processes, on exactly `gpus` GPUs
    train = info["next_commands"][1]
    env, argv = info["train_command"]["env"], info["train_command"]["argv"]
    assert env == {"CUDA_VISIBLE_DEVICES": ",".join(str(i) for i in range(gpus))}
    assert argv[-3:] == ["--", "--nproc_per_node", str(gpus)] and argv[3:5] == ["--launcher", "torchrun"]
    assert train == f"CUDA_VISIBLE_DEVICES={env['CUDA_VISIBLE_DEVICES']} {shlex.join(argv)}"
    # evaluation: the merged model sharded for its size, the other GPUs running copies of it
    evaluate = next(line for line in info["next_commands"] if line.startswith("lm_eval"))
    check_lm_eval_command(evaluate)
    model_args = shlex.split(evaluate)[shlex.split(evaluate).index("--model_args") + 1]
    parallel = 4 if "70b" in base else 1
    assert f"tensor_parallel_size={parallel}" in model_args
    assert ("data_parallel_size" in model_args) == (gpus >= 2 * parallel)
    if gpus >= 2 * parallel:
        assert f"data_parallel_size={gpus // parallel}" in model_args


def test_a_gpu_count_that_cannot_keep_the_batch_is_one_line(tmp_path):
    base = ["build", "--cot", str(COT), "--corrections", str(CORRECTIONS), "--format", "input_output",
            "--eos-token", "</s>", "--out", str(tmp_path / "o")]
    result = CliRunner().invoke(main, [*base, "--axolotl-config", "llama2-70b-gsm8k-lema", "--gpus", "5"])
    assert result.exit_code == 1 and len(result.output.strip().splitlines()) == 1
    assert "--gpus 5: " in result.output and "use --gpus 1, 2, 4, 8, 16" in result.output
    assert not (tmp_path / "o" / "axolotl.yml").exists()
    cpu = CliRunner().invoke(main, [*base[:5], "--out", str(tmp_path / "c"), "--axolotl-config", "smollm2-135m-cpu-smoke",
                                    "--gpus", "2"])
    assert cpu.exit_code == 1 and "is a CPU config" in cpu.output


def test_a_header_that_states_another_batch_is_refused(tmp_path):
    path = tmp_path / "wrong.yml"
    text = (REPO / "axolotl_configs" / "llama2-70b-gsm8k-lema.yml").read_text()
    path.write_text(text.replace("gradient_accumulation_steps: 16", "gradient_accumulation_steps: 8"))
    with pytest.raises(ConfigError, match="does not match micro_batch_size 6 x gradient_accumulation_steps 8"):
        read_layout(path)


KINDS = ["lema", "cot-only", "cot-size-matched", "step-dpo", "solution-dpo", "prm"]


def _build(kind: str, out: Path, inputs: tuple[Path, Path] = (COT, CORRECTIONS), **options) -> dict:
    cot, corrections = inputs
    if kind in ("step-dpo", "solution-dpo", "prm"):
        base = "qwen2.5-1.5b-instruct-gsm8k-prm" if kind == "prm" else "qwen2.5-1.5b-instruct-gsm8k-step-dpo"
        return build_step_dataset(out, kind, cot, corrections, val_fraction=0.5, axolotl_config=base, **options)
    return build_dataset(out, cot, corrections, mix=kind, fmt="chat_template", val_fraction=0.5,
                         axolotl_config="qwen2.5-1.5b-instruct-gsm8k-lema", **options)


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_keys_its_prepared_data_and_adapter_by_data_and_config(kind, tmp_path):
    from lema_plugin.train_eval import is_trained

    out = tmp_path / kind
    first = _build(kind, out)
    ready = yaml.safe_load((out / "axolotl.yml").read_text())
    key = first["axolotl_config"]["key"]
    assert Path(ready["output_dir"]) == (out / "adapter" / key).resolve()
    assert Path(ready["dataset_prepared_path"]) == (out / "prepared" / key).resolve()
    # the held-out rows are read: test_datasets loads the build's val.jsonl
    assert [Path(d["path"]).name for d in ready["test_datasets"]] == ["val.jsonl"] and (out / "val.jsonl").exists()
    assert ready["eval_strategy"] == "steps"

    # an adapter trained from these files with this config is reused by the same build
    adapter = Path(ready["output_dir"])
    adapter.mkdir(parents=True)
    (adapter / "adapter_config.json").write_text("{}")
    (adapter / "adapter_model.safetensors").write_bytes(b"")
    assert _build(kind, out)["axolotl_config"]["key"] == key and is_trained(adapter)

    # changed data (a CoT rationale and a correction fewer): new folders, nothing trained there yet
    fewer = (tmp_path / "cot.jsonl", tmp_path / "corrections.jsonl")
    for source, target in zip((COT, CORRECTIONS), fewer):
        target.write_text("".join(source.read_text().splitlines(keepends=True)[:-1]))
    data_changed = _build(kind, out, fewer)
    assert data_changed["axolotl_config"]["key"] != key
    assert not is_trained(Path(data_changed["axolotl_config"]["output_dir"]))
    # a changed config (here: the GPU layout, so the accumulation): new folders too
    config_changed = _build(kind, out, fewer, gpus=2)
    assert len({key, data_changed["axolotl_config"]["key"], config_changed["axolotl_config"]["key"]}) == 3


def test_step_kinds_get_their_ready_config_and_next_commands(tmp_path, monkeypatch):
    """The same path as the SFT mixes: the CLI writes OUT/axolotl.yml and prints what to run."""
    monkeypatch.chdir(tmp_path)
    for kind, base in (("step-dpo", "qwen2.5-1.5b-instruct-gsm8k-step-dpo"), ("prm", "qwen2.5-1.5b-instruct-gsm8k-prm")):
        result = CliRunner().invoke(main, ["build", "--cot", str(COT), "--corrections", str(CORRECTIONS), "--mix", kind,
                                           "--val-fraction", "0.5", "--axolotl-config", base, "--out", kind])
        assert result.exit_code == 0, result.output
        ready = yaml.safe_load((tmp_path / kind / "axolotl.yml").read_text())
        assert Path(ready["datasets"][0]["path"]) == (tmp_path / kind / "train.jsonl").resolve()
        next_lines = [line.strip() for line in result.output.split("Next:\n", 1)[1].splitlines()]
        assert next_lines[:2] == ["export AXOLOTL_DO_NOT_TRACK=1",
                                  f"CUDA_VISIBLE_DEVICES=0 axolotl train {kind}/axolotl.yml --launcher torchrun -- --nproc_per_node 1"]
        if kind == "step-dpo":
            assert ready["rl"] == "dpo"
            evaluate = next(line for line in next_lines if line.startswith("lm_eval"))
            assert "--apply_chat_template" in evaluate and "--tasks lema_gsm8k" in evaluate
            check_lm_eval_command(evaluate)
        else:
            assert ready["process_reward_model"] is True
            assert not any(line.startswith(("lm_eval", "axolotl merge-lora")) for line in next_lines)
    # a config that reads other rows is one line naming the config the kind needs
    wrong = CliRunner().invoke(main, ["build", "--cot", str(COT), "--corrections", str(CORRECTIONS), "--mix", "prm",
                                      "--axolotl-config", "qwen2.5-1.5b-instruct-gsm8k-lema", "--out", "w"])
    assert wrong.exit_code == 1 and "e.g. qwen2.5-1.5b-instruct-gsm8k-prm" in wrong.output
    # rows over the budget are counted for the step kinds too (--max-row-tokens, not the old --max-tokens)
    budget = CliRunner().invoke(main, ["build", "--cot", str(COT), "--corrections", str(CORRECTIONS), "--mix", "step-dpo",
                                       "--max-row-tokens", "20", "--out", "b"])
    assert budget.exit_code == 0 and "rows longer than 20 tokens" in budget.output
    info = json.loads((tmp_path / "b" / "dataset_info.json").read_text())
    assert info["token_budget"]["over"] == info["token_budget"]["rows"] > 0


def test_wizardmath_rows_are_built_in_the_wizardmath_prompt(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    info = build_dataset("w", COT, CORRECTIONS, mix="lema", fmt="input_output", bos_token="<s>", eos_token="</s>",
                         axolotl_config="wizardmath-70b-gsm8k-lema")
    assert info["prompt"] == "wizardmath"
    rows = [json.loads(line) for line in (tmp_path / "w" / "train.jsonl").read_text().splitlines()]
    for row in rows:
        prompt = row["segments"][0]["text"]
        assert prompt.startswith("<s>Below is an instruction that describes a task.")
        ending = "### Response: Let's think step by step.\n" if row["kind"] == "cot" else "### Response:\n"
        assert prompt.endswith(ending) and "Please solve the following math problem" not in prompt
    assert "--tasks lema_gsm8k_wizardmath" in next(line for line in info["next_commands"] if line.startswith("lm_eval"))
    # the LeMa prompt is kept for every other model, and can be asked for
    plain = build_dataset("p", COT, CORRECTIONS, mix="lema", fmt="input_output", axolotl_config="metamath-70b-gsm8k-lema")
    assert plain["prompt"] == "lema" and "--tasks lema_gsm8k " in " ".join(plain["next_commands"])


def test_lema_run_refuses_a_gpu_layout_this_machine_cannot_run(monkeypatch):
    """The train step's check, against this machine as it is (the tests run where no GPU is)."""
    from lema_plugin.doctor import visible_gpus
    from lema_plugin.train_eval import train_environment

    notes = []
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    if not visible_gpus():
        with pytest.raises(ConfigError, match="trains on 4 GPUs and this machine shows none"):
            train_environment(4, {"CUDA_VISIBLE_DEVICES": "0,1,2,3"}, notes.append)
    # a CPU config runs with no GPU visible, whatever the machine has
    assert train_environment(0, {}, notes.append) == {"CUDA_VISIBLE_DEVICES": ""}
    # a scheduler's own choice of devices is kept only when it names the config's count
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "4,5")
    with pytest.raises(ConfigError, match=r"names 2 GPUs but the ready config is written for 4: rebuild it with `lema build --gpus 2`"):
        train_environment(4, {"CUDA_VISIBLE_DEVICES": "0,1,2,3"}, notes.append)


def test_lema_run_refuses_a_gpu_recipe_before_any_paid_stage(tmp_path, monkeypatch):
    """A recipe that trains a GPU config on a machine without the GPUs stops before its first request."""
    from lema_plugin.doctor import visible_gpus
    from lema_testing.scripted_server import ScriptedServer

    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    if visible_gpus():
        pytest.skip("this machine has GPUs: the refusal needs one without")
    with ScriptedServer(lambda body, attempt: "The answer is 1.") as server:
        recipe = {"dataset": "gsm8k", "split": "train", "limit": 2, "out": str(tmp_path / "run"),
                  "generators": [{"name": "g", "model": "m", "base_url": server.base_url, "samples": 1}],
                  "corrector": {"name": "c", "model": "m", "base_url": server.base_url},
                  "export": {"format": "input_output", "axolotl_config": "llama2-70b-gsm8k-lema"},
                  "train": {"config": "axolotl_configs/llama2-70b-gsm8k-lema.yml"}}
        path = tmp_path / "r.yaml"
        path.write_text(yaml.safe_dump(recipe))
        result = CliRunner().invoke(main, ["run", str(path)])
        assert result.exit_code == 1 and "trains on 1 GPU and this machine shows none" in result.output
        assert server.request_count == 0


def test_lema_run_reuses_an_adapter_trained_on_these_files_and_names_it_as_typed(tmp_path, monkeypatch):
    """The train step of `lema run` trains nothing when the ready config's adapter exists, and the
    summary row names that folder relative to the working folder, as the printed commands do."""
    from lema_plugin.train_eval import train

    monkeypatch.chdir(tmp_path)
    out = Path("runs") / "r"
    lema = out / "data" / "lema"
    adapter = (lema / "adapter" / "0123abcd").resolve()
    adapter.mkdir(parents=True)
    (adapter / "adapter_config.json").write_text("{}")
    (adapter / "adapter_model.safetensors").write_bytes(b"")
    (lema / "axolotl.yml").write_text(yaml.safe_dump({"output_dir": str(adapter)}))
    (lema / "dataset_info.json").write_text(json.dumps({"train_command": {"argv": ["false"], "env": {}}}))
    rows = []

    class Report:
        def add(self, name, value):
            rows.append((name, value))

    train(None, out, Report(), echo=lambda line: rows.append(("echo", line)))
    assert rows == [("adapter", "runs/r/data/lema/adapter/0123abcd (already trained on these files with this config)")]

"""`lema build --axolotl-config`: the ready config next to the data, its commands, its bad input,
and the rows over the token budget."""
from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from lema_plugin.cli import main
from lema_plugin.export import build_dataset
from lema_plugin.export.axolotl_config import AxolotlConfigError, find_base_config, load_base_config, ready_config
from lema_plugin.export.token_budget import check_budget
from test_configs import check_lm_eval_command

FIXTURES = Path(__file__).parent / "fixtures"
COT, CORRECTIONS = FIXTURES / "cot.jsonl", FIXTURES / "corrections.jsonl"
REPO = Path(__file__).resolve().parent.parent
SMOKE = REPO / "axolotl_configs" / "smollm2-135m-cpu-smoke.yml"
PAPER = REPO / "axolotl_configs" / "llama2-70b-gsm8k-lema.yml"


def no_validation(monkeypatch):
    """axolotl's schema check (slow to import) is exercised by the slow tests below."""
    monkeypatch.setattr("lema_plugin.export.axolotl_config.validate", lambda config, n_gpu=1: "checked")


def test_ready_config_points_at_this_build_and_keys_its_folders_by_content(tmp_path, monkeypatch):
    no_validation(monkeypatch)
    out = tmp_path / "lema"

    def build(**changes):
        options = dict(mix="lema", fmt="input_output", eos_token="</s>", axolotl_config="llama2-70b-gsm8k-lema",
                       val_fraction=0.2) | changes
        info = build_dataset(out, COT, CORRECTIONS, **options)
        return info, yaml.safe_load((out / "axolotl.yml").read_text())

    info, config = build()
    assert config["datasets"] == info["axolotl"]["datasets"] and config["test_datasets"] == info["axolotl"]["test_datasets"]
    assert Path(config["datasets"][0]["path"]) == (out / "train.jsonl").resolve()
    key = info["axolotl_config"]["key"]
    assert Path(config["output_dir"]) == (out / "adapter" / key).resolve()
    assert Path(config["dataset_prepared_path"]) == (out / "prepared" / key).resolve()
    # held-out rows are evaluated every save_steps (100), as the official script saves
    assert (config["val_set_size"], config["eval_strategy"], config["eval_steps"]) == (0, "steps", 100)
    base = yaml.safe_load(PAPER.read_text())
    for name in ("max_steps", "micro_batch_size", "gradient_accumulation_steps", "learning_rate", "seed", "base_model"):
        assert config[name] == base[name]
    # the same build again: the same folders; other data (a new split) or another config: new ones
    assert build()[1]["output_dir"] == config["output_dir"]
    other_data = build(seed=5)[1]
    other_config = build(config_overrides={"max_steps": 500})[1]
    folders = {c["output_dir"] for c in (config, other_data, other_config)}
    assert len(folders) == 3 and {Path(f).parent for f in folders} == {(out / "adapter").resolve()}
    assert len({c["dataset_prepared_path"] for c in (config, other_data, other_config)}) == 3
    # JSON holds the stanza as data, not as an escaped YAML string
    on_disk = json.loads((out / "dataset_info.json").read_text())
    assert isinstance(on_disk["axolotl"]["datasets"], list)
    assert on_disk["axolotl_config"]["path"] == str((out / "axolotl.yml").resolve())


def test_without_held_out_rows_no_eval_is_scheduled(tmp_path, monkeypatch):
    no_validation(monkeypatch)
    info = build_dataset(tmp_path / "o", COT, CORRECTIONS, mix="lema", fmt="chat_template", axolotl_config=SMOKE)
    config = ready_config(yaml.safe_load(SMOKE.read_text()), info, tmp_path / "o")
    assert "test_datasets" not in config and "eval_steps" not in config and config["val_set_size"] == 0


def test_next_commands_for_gpu_and_cpu_configs(tmp_path, monkeypatch):
    no_validation(monkeypatch)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("LEMA_DATA_DIR", raising=False)
    info = build_dataset("runs/x/data/lema", COT, CORRECTIONS, mix="lema", fmt="input_output", eos_token="</s>",
                         axolotl_config="llama2-70b-gsm8k-lema")
    export, train, merge, evaluate, merged_note, metric_note = info["next_commands"]
    # the environment the commands need: telemetry off (it waits on the network, and hangs offline)
    assert export == "export AXOLOTL_DO_NOT_TRACK=1" and info["environment"] == {"AXOLOTL_DO_NOT_TRACK": "1"}
    # exactly one process, on exactly one GPU: the batch the header states
    assert train == "CUDA_VISIBLE_DEVICES=0 axolotl train runs/x/data/lema/axolotl.yml --launcher torchrun -- --nproc_per_node 1"
    assert merge == "axolotl merge-lora runs/x/data/lema/axolotl.yml --merge-method legacy" and "bf16" in merged_note
    args = shlex.split(evaluate)
    assert args[:3] == ["lm_eval", "--model", "vllm"]
    key = info["axolotl_config"]["key"]
    assert args[args.index("--model_args") + 1] == \
        "pretrained=runs/x/data/lema/adapter/current/merged,tensor_parallel_size=4,dtype=bfloat16"
    # adapter/current: one stable name for the keyed folder of the newest build, what the README can print
    assert (tmp_path / "runs/x/data/lema/adapter/current").resolve() == (tmp_path / "runs/x/data/lema/adapter" / key).resolve()
    assert args[args.index("--tasks") + 1] == "lema_gsm8k" and "--apply_chat_template" not in args
    assert args[args.index("--output_path") + 1] == "runs/x/data/lema/eval" and "--metadata" not in args
    assert "official_match is the paper-comparable score" in metric_note
    check_lm_eval_command(evaluate)  # argument names against lm-eval's VLLM class
    header = (tmp_path / "runs/x/data/lema/axolotl.yml").read_text().split("\n\n")[0]
    assert f"$ {evaluate}" in header and f"$ {train}" in header and f"$ {export}" in header
    # the base config's deviations from the official script survive into the ready config's header
    assert "# differs: excess_length_strategy: the official script cuts source and target apart" in header
    assert "# differs: seed: axolotl has no data_seed (official 42)" in header

    ddp = build_dataset("runs/x/data/ddp", COT, CORRECTIONS, mix="cot-only", fmt="input_output", eos_token="</s>",
                        axolotl_config="llama2-70b-gsm8k-lema-ddp")
    assert ddp["next_commands"][1] == ("CUDA_VISIBLE_DEVICES=0,1,2,3 axolotl train runs/x/data/ddp/axolotl.yml "
                                       "--launcher torchrun -- --nproc_per_node 4")

    monkeypatch.setenv("LEMA_DATA_DIR", "/data")
    chat = build_dataset("runs/x/data/chat", COT, CORRECTIONS, mix="lema", fmt="chat_template", axolotl_config=SMOKE)
    export, train, evaluate, _ = chat["next_commands"]
    # the lm-eval tasks read LEMA_DATA_DIR themselves: exported, not passed as --metadata
    assert export == "export AXOLOTL_DO_NOT_TRACK=1 LEMA_DATA_DIR=/data"
    assert train == "axolotl train runs/x/data/chat/axolotl.yml --launcher python"
    args = shlex.split(evaluate)
    assert args[args.index("--model") + 1] == "hf" and "--apply_chat_template" in args and "--metadata" not in args
    assert args[args.index("--model_args") + 1] == "pretrained=HuggingFaceTB/SmolLM2-135M-Instruct,peft=runs/x/data/chat/adapter/current"
    check_lm_eval_command(evaluate)  # against lm-eval's HFLM signature


def test_a_local_base_model_and_the_offline_environment(tmp_path, monkeypatch, shared_data):
    """--base-model: a local folder becomes the ready config's model; with local data too, the
    printed environment runs everything offline."""
    no_validation(monkeypatch)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LEMA_DATA_DIR", str(shared_data))
    model = tmp_path / "models" / "llama"
    model.mkdir(parents=True)
    result = CliRunner().invoke(main, ["build", "--cot", str(COT), "--corrections", str(CORRECTIONS), "--format", "input_output",
                                       "--bos-token", "<s>", "--eos-token", "</s>", "--axolotl-config", "llama2-70b-gsm8k-lema",
                                       "--base-model", str(model), "--out", "o"])
    assert result.exit_code == 0, result.output
    assert yaml.safe_load((tmp_path / "o" / "axolotl.yml").read_text())["base_model"] == str(model)
    next_lines = result.output.split("Next:\n", 1)[1].splitlines()
    assert next_lines[0] == (f"  export AXOLOTL_DO_NOT_TRACK=1 LEMA_DATA_DIR={shared_data.resolve()} "
                             "HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1")
    assert "warning" not in result.stderr  # BOS and EOS both given
    # --base-model and --gpus shape a ready config: without one, a usage error
    bare = CliRunner().invoke(main, ["build", "--cot", str(COT), "--corrections", str(CORRECTIONS), "--base-model", "m",
                                     "--out", "p"])
    assert bare.exit_code == 2 and "give --axolotl-config too" in bare.output


def test_a_layout_over_several_nodes_prints_the_rendezvous_each_node_runs(tmp_path, monkeypatch):
    no_validation(monkeypatch)
    monkeypatch.chdir(tmp_path)
    info = build_dataset("o", COT, CORRECTIONS, mix="lema", fmt="input_output", bos_token="<s>", eos_token="</s>",
                         axolotl_config="llama2-70b-gsm8k-lema", gpus=16, nodes=2)
    config = yaml.safe_load((tmp_path / "o" / "axolotl.yml").read_text())
    assert config["micro_batch_size"] * config["gradient_accumulation_steps"] * 16 == 96  # 6 x 1 x 16
    key = info["axolotl_config"]["key"]
    assert info["next_commands"][1] == (
        "CUDA_VISIBLE_DEVICES=0,1,2,3,4,5,6,7 axolotl train o/axolotl.yml --launcher torchrun -- --nnodes 2 "
        f"--node_rank $NODE_RANK --rdzv_id lema-{key} --rdzv_backend c10d --rdzv_endpoint $HEAD_ADDR:29400 "
        "--nproc_per_node 8")
    header = (tmp_path / "o" / "axolotl.yml").read_text().split("\n\n")[0]
    assert "# Effective batch: 96 = 6 per GPU x 1 accumulation x 16 GPUs (one process per GPU: the train command " \
           "starts exactly 8 on each of 2 nodes, on GPUs 0-7)." in header
    with pytest.raises(AxolotlConfigError, match="--nodes 3: the 16 GPUs"):
        build_dataset("p", COT, CORRECTIONS, mix="lema", fmt="input_output", axolotl_config="llama2-70b-gsm8k-lema",
                      gpus=16, nodes=3)


def test_input_output_rows_without_bos_or_eos_are_warned_about(tmp_path):
    for given, missing in (([], ["--bos-token", "--eos-token"]), (["--eos-token", "</s>"], ["--bos-token"]),
                           (["--bos-token", "<s>"], ["--eos-token"])):
        result = CliRunner().invoke(main, ["build", "--cot", str(COT), "--corrections", str(CORRECTIONS), "--format",
                                           "input_output", *given, "--out", str(tmp_path / "o")])
        assert result.exit_code == 0, result.output
        warned = [line for line in result.stderr.splitlines() if line.startswith("warning: no ")]
        assert [line.split()[2].rstrip(":") for line in warned] == missing
    chat = CliRunner().invoke(main, ["build", "--cot", str(COT), "--corrections", str(CORRECTIONS), "--out", str(tmp_path / "c")])
    assert "warning" not in chat.stderr  # chat rows get their special tokens from the template


@pytest.mark.parametrize("name, fmt, message", [
    ("no-such-config", "chat_template", "axolotl config no-such-config: no such file, and not one of axolotl_configs/"),
    ("llama2-70b-gsm8k-lema", "chat_template", "field 'datasets[0].type': the config reads input_output rows but the data is built as chat_template"),
    ("smollm2-135m-cpu-smoke", "input_output", "field 'datasets[0].type': the config reads chat_template rows but the data is built as input_output"),
])
def test_a_config_that_cannot_read_the_build_is_one_line_before_anything_is_written(tmp_path, name, fmt, message):
    out = tmp_path / "o"
    result = CliRunner().invoke(main, ["build", "--cot", str(COT), "--corrections", str(CORRECTIONS), "--format", fmt,
                                       "--axolotl-config", name, "--out", str(out)])
    assert result.exit_code == 1
    assert len(result.output.strip().splitlines()) == 1 and message in result.output
    assert not out.exists()


def test_missing_tokenizer_fields_are_named(tmp_path):
    config = yaml.safe_load(SMOKE.read_text())
    for key, field in (("base_model", "base_model"), ("chat_template", "chat_template")):
        broken = {k: v for k, v in config.items() if k != key}
        path = tmp_path / f"no-{key}.yml"
        path.write_text(yaml.safe_dump(broken))
        with pytest.raises(AxolotlConfigError, match=rf"no-{key}.yml: field '{field}': missing"):
            load_base_config(find_base_config(path), "chat_template")
    path = tmp_path / "bad.yml"
    path.write_text("base_model: x\ndatasets: [\n")
    with pytest.raises(AxolotlConfigError, match=r"bad.yml:\d+: not valid YAML"):
        load_base_config(path, "chat_template")


def test_rows_over_the_budget_are_counted_with_the_local_tokenizer(tmp_path, monkeypatch):
    from lema_plugin.llm.embedded import ensure_model

    no_validation(monkeypatch)
    model = str(ensure_model(progress=False))
    info = build_dataset(tmp_path / "o", COT, CORRECTIONS, mix="lema", fmt="chat_template")
    rows = [json.loads(line) for line in (tmp_path / "o" / "train.jsonl").read_text().splitlines()]
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model)
    lengths = sorted(len(tokenizer.apply_chat_template(r["messages"], tokenize=True, return_dict=True)["input_ids"]) for r in rows)
    budget = lengths[len(lengths) // 2]
    report = check_budget(tmp_path / "o" / "train.jsonl", "chat_template", budget, model)
    assert (report.over, report.longest, report.rows) == (sum(n > budget for n in lengths), lengths[-1], len(rows))
    assert model in report.counted_with
    # no local tokenizer: an estimate, and it says so
    guess = check_budget(tmp_path / "o" / "train.jsonl", "chat_template", budget, "nobody/not-downloaded")
    assert guess.counted_with.startswith("estimated at 3 characters a token: no local tokenizer for nobody/not-downloaded")
    assert guess.rows == len(rows) and guess.longest > 0
    # lema build reports them, against the config's sequence_len unless told otherwise
    result = CliRunner().invoke(main, ["build", "--cot", str(COT), "--corrections", str(CORRECTIONS), "--out", str(tmp_path / "b"),
                                       "--axolotl-config", str(SMOKE), "--tokenizer", model, "--max-row-tokens", str(budget)])
    assert result.exit_code == 0, result.output
    assert f"{report.over} of {len(rows)} rows longer than {budget} tokens" in result.output
    assert "axolotl will drop them" in result.output
    saved = json.loads((tmp_path / "b" / "dataset_info.json").read_text())["token_budget"]
    assert (saved["over"], saved["axolotl_excess_length_strategy"]) == (report.over, "drop")
    assert info.get("token_budget") is None  # no config and no budget: nothing to report


@pytest.mark.slow
def test_every_shipped_config_becomes_a_ready_config_axolotl_accepts(tmp_path, monkeypatch):
    """Through axolotl's own validator, for each base config and the rows it reads (the step-level
    kinds' configs through the same writer), on the GPU count it is written for and on 8."""
    from lema_plugin.export import build_step_dataset
    from lema_plugin.export.axolotl_config import gpu_count

    monkeypatch.chdir(tmp_path)
    for path in sorted((REPO / "axolotl_configs").glob("*.yml")):
        config = yaml.safe_load(path.read_text())
        counts = [None, 8] if gpu_count(path) else [None]
        for gpus in counts:
            out = tmp_path / f"{path.stem}-{gpus}"
            if config.get("rl") or config.get("process_reward_model"):
                kind = "prm" if config.get("process_reward_model") else "step-dpo"
                info = build_step_dataset(out, kind, COT, CORRECTIONS, val_fraction=0.2, axolotl_config=path, gpus=gpus)
            else:
                fmt = config["datasets"][0]["type"]
                info = build_dataset(out, COT, CORRECTIONS, mix="lema", fmt=fmt, eos_token="</s>",
                                     axolotl_config=path, val_fraction=0.2, gpus=gpus)
            assert info["axolotl_config"]["check"] == "validated with axolotl's schema", path.name
            ready = yaml.safe_load((out / "axolotl.yml").read_text())
            assert all(ready.get(k) is False for k in ("lora_mlp_kernel", "lora_qkv_kernel", "lora_o_kernel")), \
                "axolotl left the kernels off"
    # and one axolotl rejects is refused before it is written
    broken = yaml.safe_load(SMOKE.read_text()) | {"learning_rate": "fast"}
    bad = tmp_path / "bad.yml"
    bad.write_text(yaml.safe_dump(broken))
    with pytest.raises(AxolotlConfigError, match="axolotl rejects the config"):
        build_dataset(tmp_path / "bad", COT, CORRECTIONS, mix="lema", fmt="chat_template", axolotl_config=bad, val_fraction=0.2)
    assert not (tmp_path / "bad" / "axolotl.yml").exists()

"""`lema build` step-level kinds: Step-DPO pairs, whole-solution pairs, PRM labels (no model, no axolotl)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from lema_plugin.cli import main
from lema_plugin.export import STEP_KINDS, build_dataset, build_step_dataset
from lema_plugin.prompts import render
from lema_plugin.records import RecordError
from lema_plugin.steps import split_steps
from lema_testing.files import write_jsonl

FIXTURES = Path(__file__).parent / "fixtures"
COT, CORRECTIONS = FIXTURES / "cot.jsonl", FIXTURES / "corrections.jsonl"


def read_rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def fixture_corrections() -> dict[str, dict]:
    return {r["id"]: r for r in read_rows(CORRECTIONS)}


def answer_closed(text: str, answer: str) -> list[str]:
    """The steps of `text`, closed by the gold answer line when it has none."""
    steps = split_steps(text)
    return steps if "The answer is" in steps[-1] else [*steps, f"The answer is {answer}."]


def corrected_steps(rec: dict) -> list[str]:
    return answer_closed(rec["corrected_solution"], rec["answer"])


def build(tmp_path: Path, kind: str, corrections: Path = CORRECTIONS, **kwargs) -> tuple[dict, list[dict]]:
    info = build_step_dataset(tmp_path / kind, kind, COT, corrections, **kwargs)
    return info, read_rows(tmp_path / kind / "train.jsonl")


def test_step_pair_shares_the_prefix_and_parts_at_the_first_wrong_step(tmp_path):
    info, rows = build(tmp_path, "step-dpo")
    source = fixture_corrections()
    assert {r["id"] for r in rows} == set(source)
    for row in rows:
        rec = source[row["id"]]
        k = rec["incorrect_step"]
        (user,) = row["messages"]
        assert user["role"] == "user"
        assert user["content"] == render("solve", question=rec["question"]) + "".join(s + "\n" for s in rec["steps"][: k - 1])
        assert row["chosen"] == {"role": "assistant", "content": "\n".join(corrected_steps(rec))}
        assert row["rejected"] == {"role": "assistant", "content": "\n".join(rec["steps"][k - 1 :])}
        assert (row["kind"], row["source"], row["mistake_model"]) == ("step-pair", rec["corrector"], rec["source_model"])
    # weng: step 2 is wrong, so step 1 is the shared prefix and step 2 onward is rejected
    weng = next(r for r in rows if r["id"] == "corr-weng-1")
    assert weng["messages"][0]["content"].endswith("Answer: Let's think step by step.\nShe earns $12 an hour.\n")
    assert weng["rejected"]["content"] == "She worked 50 minutes, so she earned 12 * 50 = $600.\nThe answer is 600."
    assert weng["chosen"]["content"].startswith("Per minute she earns 12 / 60 = $0.2.")
    assert info["counts"]["train"]["by_kind"] == {"step-pair": 4}


def test_solution_pair_is_the_corrected_solution_against_the_wrong_path(tmp_path):
    _, rows = build(tmp_path, "solution-dpo")
    source = fixture_corrections()
    for row in rows:
        rec = source[row["id"]]
        k = rec["incorrect_step"]
        assert row["messages"] == [{"role": "user", "content": render("solve", question=rec["question"])}]
        assert row["rejected"]["content"] == "\n".join(rec["steps"])
        assert row["chosen"]["content"] == "\n".join(rec["steps"][: k - 1] + corrected_steps(rec))
    # wallet's corrected solution has no answer line: the gold answer closes the chosen solution
    wallet = next(r for r in rows if r["id"] == "corr-wallet-1")
    assert wallet["chosen"]["content"].endswith("She needs 100 - 50 - 15 - 30 = $5.\nThe answer is 5.")


def test_process_labels_follow_the_stated_policy(tmp_path):
    info, rows = build(tmp_path, "prm")
    source = fixture_corrections()
    by_id = {r["id"]: r for r in rows}
    for rec in source.values():
        k = rec["incorrect_step"]
        error = by_id[f"{rec['id']}:first-error"]
        assert error["prompt"] == render("solve", question=rec["question"])
        assert error["completions"] == rec["steps"][:k], "nothing after the first error is labelled"
        assert error["labels"] == [True] * (k - 1) + [False]
        fixed = by_id[f"{rec['id']}:corrected"]
        assert fixed["completions"][: k - 1] == rec["steps"][: k - 1]
        assert fixed["completions"][k - 1 :] == corrected_steps(rec)
        assert fixed["labels"] == [True] * len(fixed["completions"])
    gold = [json.loads(line) for line in COT.read_text().splitlines() if json.loads(line)["source"] == "gold"]
    for rec in gold:
        row = by_id[rec["id"]]
        assert row["kind"] == "gold" and row["completions"] == answer_closed(rec["rationale"], rec["answer"])
        assert row["labels"] == [True] * len(row["completions"])
    assert info["counts"]["train"]["by_kind"] == {"corrected": 4, "first-error": 4, "gold": len(gold)}
    assert info["inputs"]["cot"]["skipped"]["not_gold"] == 1  # the gpt-4 rationale is not vouched for step by step
    assert all(isinstance(label, bool) for row in rows for label in row["labels"])


def test_bad_corrections_are_skipped_with_a_counted_reason(tmp_path):
    good = list(fixture_corrections().values())
    outside = {**good[0], "id": "outside", "incorrect_step": 9}
    zero = {**good[1], "id": "zero", "incorrect_step": 0}
    single = {**good[2], "id": "single", "steps": ["Betty needs 100 - 50 - 15 - 15 = $20."], "incorrect_step": 1}
    unverified = {**good[3], "id": "unverified", "correct": False}
    path = write_jsonl(tmp_path / "corrections.jsonl", [*good, outside, zero, single, unverified, good[0]])
    for kind in STEP_KINDS:
        info, rows = build(tmp_path, kind, path)
        skipped = info["inputs"]["corrections"]["skipped"]
        assert skipped["step_outside_path"] == 2 and skipped["single_step_path"] == 1
        assert skipped["not_verified"] == 1 and skipped["duplicate_id"] == 1
        assert info["inputs"]["corrections"]["examples"] == 4
        assert not {"outside", "zero", "single", "unverified"} & {r["id"].split(":")[0] for r in rows}

    result = CliRunner().invoke(main, ["build", "--cot", str(COT), "--corrections", str(path), "--mix", "step-dpo",
                                       "--out", str(tmp_path / "cli")])
    assert result.exit_code == 0, result.output
    assert "2 step outside path" in result.output and "1 single step path" in result.output


@pytest.mark.parametrize("change, field", [({"incorrect_step": "two"}, "incorrect_step"), ({"steps": "one step"}, "steps"),
                                           ({"question": ""}, "question")])
def test_a_malformed_correction_names_file_line_and_field(tmp_path, change, field):
    records = list(fixture_corrections().values())
    records[2] = {**records[2], **change}
    path = write_jsonl(tmp_path / "corrections.jsonl", records)
    with pytest.raises(RecordError) as error:
        build_step_dataset(tmp_path / "o", "prm", COT, path)
    assert (error.value.line, error.value.field) == (3, field)
    result = CliRunner().invoke(main, ["build", "--cot", str(COT), "--corrections", str(path), "--mix", "prm",
                                       "--out", str(tmp_path / "o")])
    assert result.exit_code != 0
    assert f"corrections.jsonl:3: field '{field}'" in result.output and len(result.output.strip().splitlines()) == 1


def test_repeated_content_is_written_once_and_identical_pairs_are_dropped(tmp_path):
    clips = fixture_corrections()["corr-clips-1"]
    again = {**clips, "id": "corr-clips-2", "attempt": 1}  # a second attempt that wrote the same fix
    same = {**clips, "id": "corr-clips-3", "corrected_solution": "\n".join(clips["steps"]), "incorrect_step": 1}
    path = write_jsonl(tmp_path / "corrections.jsonl", [clips, again, same])
    info, rows = build(tmp_path, "step-dpo", path)
    assert [r["id"] for r in rows] == ["corr-clips-1"]
    assert info["inputs"]["corrections"]["skipped"]["duplicate_row"] == 1
    assert info["inputs"]["corrections"]["skipped"]["identical_pair"] == 1


def test_validation_holds_out_the_same_problems_as_the_sft_mixes(tmp_path):
    lema = build_dataset(tmp_path / "lema", COT, CORRECTIONS, mix="lema", val_fraction=0.4, seed=3)
    val_sft = {r["problem_id"] for r in read_rows(tmp_path / "lema" / "val.jsonl")}
    for kind in STEP_KINDS:
        info, train = build(tmp_path, kind, val_fraction=0.4, seed=3)
        val = read_rows(tmp_path / kind / "val.jsonl") if (tmp_path / kind / "val.jsonl").exists() else []
        assert info["held_out_problems"] == lema["held_out_problems"]
        assert {r["problem_id"] for r in val} <= val_sft
        assert not {r["problem_id"] for r in train} & val_sft
    info, _ = build(tmp_path, "prm", val_fraction=0.4, seed=3)
    assert {r["problem_id"] for r in read_rows(tmp_path / "prm" / "val.jsonl")} == val_sft  # gold CoT covers them all


def test_dataset_info_has_provenance_and_the_axolotl_lines(tmp_path):
    for kind, setting, dtype in (("step-dpo", {"rl": "dpo"}, "chat_template.default"),
                                 ("prm", {"process_reward_model": True}, "stepwise_supervised")):
        info, rows = build(tmp_path, kind, val_fraction=0.3)
        out = tmp_path / kind
        assert json.loads((out / "dataset_info.json").read_text()) == info
        assert (info["label_policy"] is not None) == (kind == "prm")
        assert info["files"]["train"]["examples"] == len(rows) and info["files"]["val"]["examples"] > 0
        assert len(info["inputs"]["corrections"]["sha256"]) == 64
        stanza = info["axolotl"]
        assert setting.items() <= stanza.items()
        assert stanza["datasets"][0]["type"] == stanza["test_datasets"][0]["type"] == dtype
        assert Path(stanza["datasets"][0]["path"]) == (out / "train.jsonl").resolve()
        assert Path(stanza["test_datasets"][0]["path"]) == (out / "val.jsonl").resolve()
        for row in rows:
            assert {"id", "kind", "dataset", "source", "problem_id"} <= row.keys()


def test_build_help_lists_the_step_kinds():
    result = CliRunner().invoke(main, ["build", "--help"])
    assert result.exit_code == 0
    for kind in ("step-dpo", "solution-dpo", "prm"):
        assert kind in result.output

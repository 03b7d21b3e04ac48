"""`lema build`: examples, mixes, formats, provenance and bad input (no model, no axolotl)."""
from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner

from lema_plugin.cli import main
from lema_plugin.export import build_dataset, load_examples
from lema_plugin.prompts import render
from lema_plugin.records import RecordError
from lema_plugin.steps import render_steps

FIXTURES = Path(__file__).parent / "fixtures"
COT, CORRECTIONS, EXTRA = FIXTURES / "cot.jsonl", FIXTURES / "corrections.jsonl", FIXTURES / "extra_cot.jsonl"


def read_rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def records(path: Path) -> list[dict]:
    return read_rows(path)


def build(tmp_path: Path, name: str, **kwargs) -> tuple[dict, Path]:
    out = tmp_path / name
    kwargs.setdefault("corrections_path", CORRECTIONS)
    info = build_dataset(out, COT, **kwargs)
    return info, out


def test_correction_example_is_the_papers_input_and_three_part_output(tmp_path):
    info, out = build(tmp_path, "lema", mix="lema", fmt="alpaca")
    rows = {r["id"]: r for r in read_rows(out / "train.jsonl")}
    for rec in records(CORRECTIONS):
        row = rows[rec["id"]]
        assert row["kind"] == "correction" and row["source"] == rec["corrector"]
        assert row["instruction"] == render("fix_mistake", question=rec["question"], steps=render_steps(rec["steps"]))
        assert f"Step {len(rec['steps'])}: " in row["instruction"]
        head = f"Incorrect Step: Step {rec['incorrect_step']}.\nExplanation: {rec['explanation']}\nCorrect Solution:\n"
        assert row["output"].startswith(head)
        assert row["output"].rstrip().endswith(f"The answer is {rec['answer']}.")
    assert info["counts"]["train"]["by_kind"] == {"correction": 4, "cot": 7}
    assert info["counts"]["train"]["by_mistake_model"] == dict(Counter(r["source_model"] for r in records(CORRECTIONS)))


def test_cot_example_uses_the_solve_prompt_and_keeps_one_answer_line(tmp_path):
    _, out = build(tmp_path, "cot", mix="cot-only", fmt="alpaca")
    rows = {r["id"]: r for r in read_rows(out / "train.jsonl")}
    for rec in records(COT):
        row = rows[rec["id"]]
        assert row["instruction"] == render("solve", question=rec["question"])
        assert row["output"].startswith(rec["rationale"].strip().splitlines()[0])
        assert row["output"].count("The answer is") == 1
        assert row["output"].endswith(f"The answer is {rec['answer']}.")
    # the one rationale without an answer sentence got it from the gold answer
    assert rows["cot-pages-gold"]["output"].endswith("pages.\nThe answer is 42.")


def test_mixes_share_their_cot_and_size_match_to_lema(tmp_path):
    lema, lema_out = build(tmp_path, "lema", mix="lema", fmt="alpaca")
    cot, cot_out = build(tmp_path, "cot", mix="cot-only", fmt="alpaca")
    sized, sized_out = build(tmp_path, "sized", mix="cot-size-matched", fmt="alpaca")
    lema_rows, cot_rows, sized_rows = (read_rows(p / "train.jsonl") for p in (lema_out, cot_out, sized_out))
    assert {r["id"] for r in cot_rows} == {r["id"] for r in lema_rows if r["kind"] == "cot"}
    assert {r["kind"] for r in cot_rows} == {r["kind"] for r in sized_rows} == {"cot"}
    assert len(sized_rows) == len(lema_rows) == 11
    # without extra rationales, the 7 CoT examples are repeated in whole rounds: 4 of them twice
    uses = Counter(r["id"] for r in sized_rows)
    assert set(uses) == {r["id"] for r in cot_rows}
    assert sorted(uses.values()) == [1, 1, 1, 2, 2, 2, 2]
    assert sized["size_matching"] == {"target": 11, "extra_cot": 0, "repeated": 4}
    assert cot["size_matching"] is None and lema["size_matching"] is None


def test_size_matching_prefers_distinct_extra_rationales(tmp_path):
    info, out = build(tmp_path, "sized", mix="cot-size-matched", fmt="alpaca", extra_cot_path=EXTRA)
    uses = Counter(r["id"] for r in read_rows(out / "train.jsonl"))
    # the two new rationales come first; the duplicate of an existing one is not "extra"
    assert uses["cot-weng-m2"] == 1 and uses["cot-die-m2"] == 1
    assert sum(uses.values()) == 11 and sum(v - 1 for v in uses.values()) == 2
    assert info["size_matching"] == {"target": 11, "extra_cot": 2, "repeated": 2}
    assert info["inputs"]["extra_cot"]["skipped"]["duplicate_id"] == 0


def test_validation_holds_out_the_same_whole_problems_in_every_mix(tmp_path):
    held = []
    for mix in ("lema", "cot-only", "cot-size-matched"):
        info, out = build(tmp_path, mix, mix=mix, fmt="chat_template", val_fraction=0.34, seed=3)
        train, val = read_rows(out / "train.jsonl"), read_rows(out / "val.jsonl")
        val_problems = {r["problem_id"] for r in val}
        assert val_problems and not val_problems & {r["problem_id"] for r in train}
        assert info["held_out_problems"] == len(val_problems) == 2  # round(0.34 * 6)
        held.append(val_problems)
        if mix == "cot-size-matched":
            lema_info = json.loads((tmp_path / "lema" / "dataset_info.json").read_text())
            assert len(train) == lema_info["files"]["train"]["examples"]
    assert held[0] == held[1] == held[2]


def test_builds_are_reproducible_and_the_seed_matters(tmp_path):
    a, out_a = build(tmp_path, "a", mix="lema", fmt="input_output", seed=7, val_fraction=0.2)
    b, out_b = build(tmp_path, "b", mix="lema", fmt="input_output", seed=7, val_fraction=0.2)
    c, out_c = build(tmp_path, "c", mix="lema", fmt="input_output", seed=8, val_fraction=0.2)
    assert (out_a / "train.jsonl").read_bytes() == (out_b / "train.jsonl").read_bytes()
    assert (out_a / "val.jsonl").read_bytes() == (out_b / "val.jsonl").read_bytes()
    order = lambda out: [r["id"] for r in read_rows(out / "train.jsonl")]  # noqa: E731
    assert order(out_a) != order(out_c)
    assert a["files"]["train"]["sha256"] == hashlib.sha256((out_a / "train.jsonl").read_bytes()).hexdigest()


@pytest.mark.parametrize("fmt", ["chat_template", "input_output", "alpaca"])
def test_every_format_separates_prompt_from_response(tmp_path, fmt):
    _, out = build(tmp_path, fmt, mix="lema", fmt=fmt, bos_token="<s>", eos_token="</s>")
    _, ref = build(tmp_path, "ref", mix="lema", fmt="alpaca")
    expected = {r["id"]: (r["instruction"], r["output"]) for r in read_rows(ref / "train.jsonl")}
    rows = read_rows(out / "train.jsonl")
    assert [r["id"] for r in rows] == list(expected)  # same order whatever the format
    for row in rows:
        prompt, response = expected[row["id"]]
        if fmt == "chat_template":
            assert row["messages"] == [
                {"role": "user", "content": prompt},
                {"role": "assistant", "content": response},
            ]
        elif fmt == "input_output":
            assert row["segments"] == [
                {"label": False, "text": "<s>" + prompt},
                {"label": True, "text": response + "</s>"},
            ]
        else:
            assert (row["instruction"], row["input"], row["output"]) == (prompt, "", response)
            assert "<s>" not in prompt and "</s>" not in response  # special tokens only in input_output


@pytest.mark.parametrize("fmt", ["chat_template", "input_output", "alpaca"])
def test_dataset_info_has_provenance_and_a_stanza_that_loads_the_files(tmp_path, fmt):
    info, out = build(tmp_path, "lema", mix="lema", fmt=fmt, val_fraction=0.2)
    on_disk = json.loads((out / "dataset_info.json").read_text())
    assert on_disk == info
    for name, path in (("cot", COT), ("corrections", CORRECTIONS)):
        assert info["inputs"][name]["path"] == str(path.resolve())
        assert info["inputs"][name]["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    held = {r["problem_id"] for r in read_rows(out / "val.jsonl")}
    expected = Counter(f"cot:{r['source']}" for r in records(COT) if r["problem_id"] not in held)
    expected += Counter(f"correction:{r['corrector']}" for r in records(CORRECTIONS) if r["problem_id"] not in held)
    assert info["counts"]["train"]["by_source"] == dict(expected)
    assert info["counts"]["val"]["examples"] == info["files"]["val"]["examples"] == 11 - expected.total()
    stanza = info["axolotl"]
    assert stanza["train_on_inputs"] is False
    for key, split in (("datasets", "train"), ("test_datasets", "val")):
        (entry,) = stanza[key]
        assert Path(entry["path"]) == (out / f"{split}.jsonl").resolve()
        assert entry["type"] == fmt and entry["ds_type"] == "json"
    if fmt == "chat_template":
        assert stanza["datasets"][0]["roles_to_train"] == ["assistant"]


def test_a_rebuild_without_validation_removes_the_stale_split(tmp_path):
    _, out = build(tmp_path, "lema", mix="lema", fmt="alpaca", val_fraction=0.3)
    assert (out / "val.jsonl").exists()
    info, _ = build(tmp_path, "lema", mix="lema", fmt="alpaca")
    assert not (out / "val.jsonl").exists() and "test_datasets" not in info["axolotl"]


def test_unverified_and_repeated_records_are_skipped_and_counted(tmp_path):
    rows = records(CORRECTIONS)
    rejected = dict(rows[0], id="rejected-1", correct=False)
    path = tmp_path / "corrections.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in [*rows, rows[1], rejected]))
    examples, skipped = load_examples(path, "correction")
    assert [e.id for e in examples] == [r["id"] for r in rows]
    assert skipped == {"duplicate_id": 1, "not_verified": 1, "duplicate_correction": 0}


@pytest.mark.parametrize(
    "change, field",
    [
        ({"incorrect_step": 9}, "incorrect_step"),
        ({"incorrect_step": "2"}, "incorrect_step"),
        ({"steps": "Step 1: all at once"}, "steps"),
        ({"explanation": ""}, "explanation"),
        ({"explanation": ["not", "text"]}, "explanation"),
        ({"corrected_solution": 10}, "corrected_solution"),
        ({"corrected_solution": "no final sentence", "answer": None}, "corrected_solution"),
    ],
)
def test_bad_correction_names_file_line_and_field(tmp_path, change, field):
    rows = records(CORRECTIONS)
    rows[2] = {**rows[2], **change}
    path = tmp_path / "corrections.jsonl"
    path.write_text(json.dumps(rows[0]) + "\n\n" + "".join(json.dumps(r) + "\n" for r in rows[1:]))
    with pytest.raises(RecordError) as caught:
        load_examples(path, "correction")
    assert (caught.value.path, caught.value.line, caught.value.field) == (str(path), 4, field)


def test_cli_builds_and_prints_the_stanza(tmp_path):
    out = tmp_path / "out"
    result = CliRunner().invoke(main, [
        "build", "--cot", str(COT), "--corrections", str(CORRECTIONS), "--mix", "cot-size-matched",
        "--extra-cot", str(EXTRA), "--format", "input_output", "--eos-token", "</s>", "--out", str(out), "--seed", "1",
    ])
    assert result.exit_code == 0, result.output
    assert "size-matched to 11: 2 extra CoT, 2 repeated" in result.output
    assert f"path: {(out / 'train.jsonl').resolve()}" in result.output
    assert len(read_rows(out / "train.jsonl")) == 11


def test_cli_bad_input_is_one_line_and_nonzero(tmp_path):
    bad = tmp_path / "cot.jsonl"
    bad.write_text(COT.read_text() + '{"id": "x", "problem_id": "p", "question": "q"}\n')
    runner = CliRunner()
    result = runner.invoke(main, ["build", "--cot", str(bad), "--mix", "cot-only", "--out", str(tmp_path / "o")])
    assert result.exit_code == 1
    assert result.output.strip() == f"Error: {bad}:8: field 'rationale': missing or empty"
    result = runner.invoke(main, ["build", "--cot", str(COT), "--mix", "lema", "--out", str(tmp_path / "o")])
    assert result.exit_code == 1 and "needs a corrections file" in result.output
    assert not (tmp_path / "o").exists()


def test_a_lema_mix_without_a_verified_correction_says_it_is_the_cot_only_data(tmp_path):
    from click.testing import CliRunner

    from lema_plugin.cli import main

    fixtures = Path(__file__).parent / "fixtures"
    empty = tmp_path / "corrections.jsonl"
    empty.write_text("")
    result = CliRunner().invoke(main, ["build", "--cot", str(fixtures / "cot.jsonl"), "--corrections", str(empty),
                                       "--mix", "lema", "--out", str(tmp_path / "lema")])
    assert result.exit_code == 0, result.output
    assert f"warning: no verified correction in {empty}: the lema mix holds CoT examples only" in result.output
    with_corrections = CliRunner().invoke(main, ["build", "--cot", str(fixtures / "cot.jsonl"), "--corrections",
                                                 str(fixtures / "corrections.jsonl"), "--mix", "lema",
                                                 "--out", str(tmp_path / "real")])
    assert with_corrections.exit_code == 0 and "warning: no verified correction" not in with_corrections.output

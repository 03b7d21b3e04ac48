"""The report a practitioner wants: correctors apart, first-error results per item and by
generator and level, the training rows as axolotl reads them, long texts folded, share axes that
end at 1.0, flipped questions with both answers and the gold, and duplicates under their own code.
Run folders are written record by record here, as the stages would write them."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from lema_plugin.export import build_dataset, build_step_dataset
from lema_plugin.report import build_report, plots
from lema_plugin.report.compare import compare
from lema_plugin.report.figures import compute
from lema_plugin.report.gather import read_run
from lema_plugin.report.page import compare_section
from lema_plugin.report.rows import LONG
from lema_testing.files import write_jsonl

FIXTURES = Path(__file__).parent / "fixtures"
CORRECTIONS = [json.loads(line) for line in (FIXTURES / "corrections.jsonl").read_text().splitlines()]


def mistake_of(correction: dict) -> dict:
    return {"id": correction["path_id"], "problem_id": correction["problem_id"], "dataset": correction["dataset"],
            "question": correction["question"], "answer": correction["answer"], "model": correction["source_model"],
            "text": "\n".join(correction["steps"]), "steps": correction["steps"], "kind": "wrong", "correct": False,
            "prediction": "144", "level": 3 if correction["dataset"] == "math" else None}


@pytest.fixture
def run(tmp_path) -> Path:
    """Two correction folders (two correctors: every mistake verified by one, none by the other),
    a first-error check of the verified ones, and the exported mixes and step kinds."""
    root = tmp_path / "run"
    mistakes = [mistake_of(c) for c in CORRECTIONS]
    paths = mistakes + [{**mistakes[0], "id": "again", "text": mistakes[0]["text"].upper()},  # a duplicate
                        {**mistakes[1], "id": "right", "kind": "correct", "correct": True, "text": "The answer is 10."}]
    write_jsonl(root / "sample" / "paths.jsonl", paths)
    write_jsonl(root / "sample" / "mistakes.jsonl", mistakes)
    write_jsonl(root / "correct" / "corrections.jsonl", CORRECTIONS)
    weak = [{**c, "id": f"weak-{c['id']}", "corrector": "tiny", "correct": False, "reason": "wrong_answer",
             "corrected_solution": "I think it is 5. " * 200 + "The answer is 5.", "prediction": "5"} for c in CORRECTIONS[:3]]
    write_jsonl(root / "correct-tiny" / "rejected.jsonl", weak)
    checks = [{"id": f"check-{c['id']}", "correction_id": c["id"], "problem_id": c["problem_id"], "dataset": c["dataset"],
               "mistake_model": c["source_model"], "corrector": c["corrector"], "generator": "gen",
               "incorrect_step": c["incorrect_step"], "before": {"correct": 3, "samples": 4, "rate": 0.75},
               "including": {"correct": 0 if i % 2 == 0 else 3, "samples": 4, "rate": 0.0 if i % 2 == 0 else 0.75},
               "confirmed": i % 2 == 0, "reason": "confirmed" if i % 2 == 0 else "step_recovers",
               **({"level": 3} if c["dataset"] == "math" else {})} for i, c in enumerate(CORRECTIONS)]
    write_jsonl(root / "first-error" / "checks.jsonl", checks)
    build_dataset(root / "data" / "lema", FIXTURES / "cot.jsonl", FIXTURES / "corrections.jsonl", mix="lema")
    for kind in ("step-dpo", "prm"):
        build_step_dataset(root / "data" / kind, kind, FIXTURES / "cot.jsonl", FIXTURES / "corrections.jsonl")
    return root


def test_correctors_stay_apart(run):
    figures = compute(read_run(run))
    assert figures.correctors["gpt-4"] == {"replies": 4, "parsed": 4, "verified": 4, "failed": 0, "mistakes": 4, "corrected": 4}
    assert figures.correctors["tiny"] == {"replies": 3, "parsed": 3, "verified": 0, "failed": 0, "mistakes": 3, "corrected": 0}
    assert {item[figures.items["fields"].index("corrector")] for item in figures.items["items"]} == {"gpt-4", "tiny"}
    html = build_report(run).read_text()
    assert "<h4>By corrector</h4>" in html and "<td class=\"text\">tiny</td>" in html
    assert '"corrector", "level"' in html  # the viewer filters by corrector, as by generator


def test_first_error_results_per_item_and_by_generator_and_level(run):
    figures = compute(read_run(run))
    assert figures.first_error_reasons == {"confirmed": 2, "step_recovers": 2}
    by_generator = {name: (rate.hits, rate.total) for name, rate in figures.first_error["generator"].items()}
    assert by_generator == {"llama-2-7b": (1, 3), "mistral-7b": (1, 1)}
    assert {name: (rate.hits, rate.total) for name, rate in figures.first_error["level"].items()} == {"Level 3": (0, 1)}
    fields = figures.items["fields"]
    checked = {item[fields.index("check")] for item in figures.items["items"] if item[fields.index("corrector")] == "gpt-4"}
    assert checked == {"confirmed", "step_recovers"}
    rates = [item[fields.index("check_rates")] for item in figures.items["items"] if item[fields.index("check")] == "confirmed"]
    assert rates and all(r.startswith("3/4 continuations reached the answer") for r in rates)
    html = build_report(run).read_text()
    assert "id='first-error'" in html and "generator (made the mistake)" in html and '<td class="text">Level 3</td>' in html


def test_exported_rows_are_shown_as_axolotl_reads_them(run):
    html = build_report(run).read_text()
    assert "id='training'" in html
    section = html.split("id='training'", 1)[1].split("</section>", 1)[0]
    for mix in ("lema", "step-dpo", "prm"):
        assert f"<h3>{mix}</h3>" in section
    assert "<h4>user</h4>" in section and "<h4>assistant <em>(trained)</em></h4>" in section  # chat rows
    assert "<h4>chosen <em>(trained)</em></h4>" in section and "<h4>rejected <em>(trained)</em></h4>" in section  # DPO pairs
    assert "steps, labelled + / -" in section and "[-] " in section  # PRM labels
    assert "Incorrect Step: Step 1." in section  # a correction row's response


def test_long_texts_are_folded(run):
    html = build_report(run).read_text()
    assert "var LONG = 800" in html  # the viewer folds long replies (the tiny corrector's ramble)
    from lema_plugin.report.rows import _long

    short, folded = _long("x" * 10), _long("y" * (LONG + 1))
    assert "<details" not in short and folded.startswith("<details class='long'>")
    assert f"show all {LONG + 1:,} characters" in folded and "y" * (LONG + 1) in folded


def test_share_axes_end_at_one(run, monkeypatch):
    made = []
    monkeypatch.setattr(plots, "_svg", lambda fig: made.append(fig) or "<svg/>")
    figures = compute(read_run(run))
    plots.accuracy(figures)
    figures.by_level = {"Level 3": figures.first_error["level"]["Level 3"]}
    plots.success(figures.by_level, "by level")
    assert len(made) == 2
    for fig in made:
        assert fig.axes[0].get_xlim() == (0.0, 1.0)


def test_duplicates_have_their_own_drop_code(run):
    figures = compute(read_run(run))
    assert figures.dropped[("original", "llama-2-7b")] == {"duplicate": 1, "correct": 1, "wrong_answer": 2}
    html = build_report(run).read_text()
    assert "repeats a wrong path of its question" in html and '<td class="text">duplicate</td>' in html


def samples_file(folder: Path, answers: dict[int, str], right: dict[int, float]) -> Path:
    rows = [{"doc_id": i, "doc": {"question": f"What is {i} + {i}?", "answer": f"So.\n#### {2 * i}"},
             "target": f"So.\n#### {2 * i}", "resps": [[f"I get {answers[i]}. The answer is {answers[i]}."]],
             "filtered_resps": [answers[i]], "exact_match": right[i], "doc_hash": str(i)} for i in answers]
    return write_jsonl(folder / "samples_lema_gsm8k_2026-01-01T00-00-00.jsonl", rows)


def test_flipped_questions_show_both_answers_and_the_gold(tmp_path):
    a = samples_file(tmp_path / "a", {1: "2", 2: "5"}, {1: 1.0, 2: 0.0})
    b = samples_file(tmp_path / "b", {1: "3", 2: "4"}, {1: 0.0, 2: 1.0})
    result = compare(a, b, metric="exact_match", rounds=100)
    (won,), (lost,) = result.a_wins, result.b_wins
    assert (won.answer_a, won.answer_b, won.gold) == ("2", "3", "2")
    assert (lost.answer_a, lost.answer_b, lost.gold) == ("5", "4", "4")
    html = compare_section(result)
    assert '<th class="text">answer A</th>' in html and '<th class="text">gold</th>' in html
    assert '<td class="text">3</td>' in html

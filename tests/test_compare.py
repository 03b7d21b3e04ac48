"""`lema compare`: paired statistics on lm-eval `--log_samples` files, the real ones written by
`lm_eval` on the embedded model (slow) and hand-made ones whose answers are known."""
from __future__ import annotations

import json
import math
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from lema_plugin.cli import main
from lema_plugin.report.compare import compare

REPO = Path(__file__).resolve().parent.parent


def write_samples(path: Path, scores: list[int], docs: list[dict] | None = None, shuffle: bool = False) -> Path:
    """A samples file shaped like lm-eval 0.4's --log_samples output; `scores` are the paper-comparable
    official_match, the robust views are 0 (so a comparison of the wrong metric shows)."""
    rows = []
    for i, score in enumerate(scores):
        doc = (docs or [{}] * len(scores))[i] or {"question": f"question {i}?", "answer": str(i)}
        rows.append({"doc_id": i, "doc": doc, "target": doc.get("answer"), "arguments": [], "resps": [["..."]],
                     "filtered_resps": ["..."], "filter": "none", "metrics": ["official_match", "strict_match", "exact_match"],
                     "doc_hash": f"h{i}", "prompt_hash": "p", "target_hash": "t",
                     "official_match": float(score), "strict_match": 0.0, "exact_match": 0.0})
    if shuffle:
        random.Random(1).shuffle(rows)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def exact_mcnemar(b: int, c: int) -> float:
    """Two-sided exact binomial p for b of b + c discordant pairs, from the definition."""
    n, k = b + c, max(b, c)
    return min(1.0, 2 * sum(math.comb(n, j) for j in range(k, n + 1)) / 2 ** n)


def test_difference_interval_and_mcnemar_on_known_pairs(tmp_path):
    # 100 questions: 30 right only in A, 10 right only in B, 25 right in both, 35 in neither
    a = [1] * 30 + [0] * 10 + [1] * 25 + [0] * 35
    b = [0] * 30 + [1] * 10 + [1] * 25 + [0] * 35
    name = "samples_lema_gsm8k_2026-01-01T00-00-00.000000.jsonl"
    result = compare(write_samples(tmp_path / "a" / name, a), write_samples(tmp_path / "b" / name, b, shuffle=True))
    o = result.overall
    assert (o.n, o.a_only, o.b_only) == (100, 30, 10)
    assert (o.accuracy_a, o.accuracy_b) == (0.55, 0.35) and o.difference == pytest.approx(0.2)
    assert o.p_value == pytest.approx(exact_mcnemar(30, 10))  # about 0.0022
    # paired: the spread comes from the 40 discordant questions only (sd of the difference 0.06)
    assert 0.07 < o.low < 0.13 and 0.27 < o.high < 0.33
    again = compare(tmp_path / "a", tmp_path / "b").overall
    assert (again.low, again.high) == (o.low, o.high)  # seeded
    assert [q.doc_id for q in result.a_wins] == list(range(30)) and [q.doc_id for q in result.b_wins] == list(range(30, 40))


def test_no_discordant_question_gives_p_one(tmp_path):
    name = "samples_t_2026-01-01T00-00-00.jsonl"
    result = compare(write_samples(tmp_path / "a" / name, [1, 0, 1]), write_samples(tmp_path / "b" / name, [1, 0, 1]))
    assert (result.overall.p_value, result.overall.low, result.overall.high, result.overall.difference) == (1.0, 0.0, 0.0, 0.0)


def test_breakdown_by_level_and_subject(tmp_path):
    docs = [{"question": f"q{i}", "level": 1 + i % 2, "subject": "algebra" if i < 4 else "geometry"} for i in range(8)]
    name = "samples_lema_math500_2026-01-01T00-00-00.jsonl"
    result = compare(write_samples(tmp_path / "a" / name, [1, 1, 1, 1, 0, 0, 0, 0], docs),
                     write_samples(tmp_path / "b" / name, [0, 0, 0, 0, 0, 0, 0, 1], docs))
    levels = {p.label: p for p in result.groups["level"]}
    subjects = {p.label: p for p in result.groups["subject"]}
    assert set(levels) == {"Level 1", "Level 2"} and levels["Level 1"].n == 4
    assert (subjects["algebra"].a_only, subjects["algebra"].b_only) == (4, 0)
    assert (subjects["geometry"].a_only, subjects["geometry"].b_only) == (0, 1)
    assert "task" not in result.groups  # one task: nothing to break down


def test_cli_prints_interval_and_p_and_writes_html(tmp_path):
    name = "samples_lema_gsm8k_2026-01-01T00-00-00.jsonl"
    a = write_samples(tmp_path / "a" / name, [1] * 12 + [0] * 8)
    b = write_samples(tmp_path / "b" / name, [0] * 6 + [1] * 6 + [0] * 8)
    page = tmp_path / "cmp.html"
    result = CliRunner().invoke(main, ["compare", str(a), str(b), "--show", "2", "--html", str(page)])
    assert result.exit_code == 0, result.output
    assert "difference A - B +0.300, 95% paired-bootstrap interval [" in result.output
    assert f"McNemar exact test: 6 right only in A, 0 right only in B, p = {exact_mcnemar(6, 0):.3g}" in result.output
    assert "right in A, wrong in B: 6" in result.output and "... and 4 more" in result.output
    html = page.read_text()
    assert "id='compare'" in html and "McNemar" in html and "<script" in html  # the same page shell as the report


def test_outputs_of_different_questions_are_refused(tmp_path):
    name = "samples_lema_gsm8k_2026-01-01T00-00-00.jsonl"
    a = write_samples(tmp_path / "a" / name, [1, 0])
    b_path = write_samples(tmp_path / "b" / name, [1, 0])
    b_path.write_text(b_path.read_text().replace('"h1"', '"other"'))
    result = CliRunner().invoke(main, ["compare", str(a), str(b_path)])
    assert result.exit_code == 1
    assert result.output.strip() == "Error: task lema_gsm8k doc_id 1: the two outputs hold different questions (doc_hash differs)"
    other = write_samples(tmp_path / "c" / "samples_lema_math500_2026-01-01T00-00-00.jsonl", [1, 0])
    result = CliRunner().invoke(main, ["compare", str(a), str(other)])
    assert result.exit_code == 1 and "share no question" in result.output


def test_a_line_without_the_metric_names_file_and_line(tmp_path):
    name = "samples_lema_gsm8k_2026-01-01T00-00-00.jsonl"
    a = write_samples(tmp_path / "a" / name, [1, 0])
    b = write_samples(tmp_path / "b" / name, [1, 0])
    lines = b.read_text().splitlines()
    broken = json.loads(lines[1])
    del broken["official_match"]
    b.write_text(lines[0] + "\n" + json.dumps(broken) + "\n")
    result = CliRunner().invoke(main, ["compare", str(a), str(b)])
    assert result.exit_code == 1
    assert result.output.strip() == (f"Error: {b}:2: field 'official_match': missing; the task logs strict_match, "
                                     "exact_match (choose one with --metric)")
    # the robust views stay one option away
    result = CliRunner().invoke(main, ["compare", str(a), str(b), "--metric", "strict_match"])
    assert result.exit_code == 0 and "metric strict_match; 2 paired questions" in result.output


def test_compare_and_report_default_to_the_paper_comparable_metric():
    from lema_plugin.grading.official import PAPER_METRIC

    assert PAPER_METRIC == "official_match"
    for name in ("compare", "report"):
        command = main.get_command(None, name)
        [option] = [p for p in command.params if p.name == "metric"]
        assert option.default == PAPER_METRIC and list(option.type.choices)[0] == PAPER_METRIC


@pytest.mark.slow
def test_compare_two_real_lm_eval_runs(shared_data, tmp_path):
    """Two lm_eval runs of the embedded model on the same MATH questions, one allowed 64 new tokens and
    one 8: the comparison pairs every question, and its counts are the ones the files hold."""
    from lema_plugin.llm.embedded import ensure_model

    model = ensure_model()
    data_dir = tmp_path / "data"
    (data_dir / "math").mkdir(parents=True)
    (data_dir / "math" / "test.jsonl").symlink_to(shared_data / "math" / "test_sample1000.jsonl")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    outputs = {}
    for name, tokens in (("a", 64), ("b", 8)):
        outputs[name] = tmp_path / name
        command = [sys.executable, "-m", "lm_eval", "run", "--model", "hf", "--model_args", f"pretrained={model},dtype=float32",
                   "--include_path", str(REPO / "lm_eval_tasks"), "--tasks", "lema_math_algebra,lema_math_prealgebra",
                   "--limit", "4", "--batch_size", "8", "--gen_kwargs", f"max_gen_toks={tokens}",
                   "--metadata", json.dumps({"data_dir": str(data_dir)}), "--log_samples", "--output_path", str(outputs[name])]
        run = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
        assert run.returncode == 0, run.stderr[-3000:]

    result = CliRunner().invoke(main, ["compare", str(outputs["a"]), str(outputs["b"])])
    assert result.exit_code == 0, result.output
    print(result.output)
    scores = {}
    for name in ("a", "b"):
        for path in outputs[name].rglob("samples_*.jsonl"):
            task = path.name.split("_2")[0].removeprefix("samples_")
            for line in path.read_text().splitlines():
                row = json.loads(line)
                scores.setdefault(name, {})[(task, row["doc_id"])] = row["official_match"]
    assert len(scores["a"]) == len(scores["b"]) == 8
    a_only = sum(scores["a"][k] > scores["b"][k] for k in scores["a"])
    b_only = sum(scores["b"][k] > scores["a"][k] for k in scores["a"])
    assert "metric official_match; 8 paired questions" in result.output
    assert f"McNemar exact test: {a_only} right only in A, {b_only} right only in B, p = {exact_mcnemar(a_only, b_only):.3g}" in result.output
    assert "95% paired-bootstrap interval [" in result.output
    assert "by task:" in result.output and "by level:" in result.output and "by subject:" in result.output

    # the same results in a run folder's eval/ show in its report, with both metrics
    run_dir = tmp_path / "run"
    (run_dir / "sample").mkdir(parents=True)
    (run_dir / "sample" / "paths.jsonl").write_text("")
    import shutil

    shutil.copytree(outputs["a"], run_dir / "eval")
    [results_file] = (run_dir / "eval").rglob("results_*.json")
    results = json.loads(results_file.read_text())["results"]
    report = CliRunner().invoke(main, ["report", str(run_dir), "--compare", str(outputs["a"]), str(outputs["b"])])
    assert report.exit_code == 0, report.output
    html = (run_dir / "report.html").read_text()
    assert "id='eval'" in html and "id='compare'" in html
    assert f"<td>{results['lema_math_algebra']['strict_match,none']:.3f}</td>" in html

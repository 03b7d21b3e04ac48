"""`lema report`: a real `lema run` folder (MATH questions, two scripted generators, a priced
scripted corrector whose replies are verified, name a missing step, or cannot be parsed) turned
into one HTML page; the numbers checked against the records, the page opened in headless
chromium, and a single stage's folder, bad records and an empty folder handled."""
from __future__ import annotations

import asyncio
import json
import os
import re
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from lema_plugin.cli import main
from lema_testing.scripted_server import ScriptedServer, prompt_text
from lema_plugin.problems import load_problems
from lema_plugin.report.figures import compute, totals
from lema_plugin.report.gather import read_run
from lema_plugin.report.page import script_json

LIMIT = 6
WRONG = "-987654"  # no MATH answer in the first problems
INJECT = "<script>window.pwned = 1</script>"
BREAKOUT = "</script><script>window.pwned = 2</script>"


@pytest.fixture(scope="module")
def problems(shared_data):
    os.environ["LEMA_DATA_DIR"] = str(shared_data)
    found = load_problems("math", "test", limit=LIMIT)
    assert all(p.answer != WRONG for p in found)
    return found


def responder_for(problems):
    """Generator `small` is always wrong, `big` wrong on odd questions only; the corrector's reply
    to question i is verified (i % 3 == 0), names a step the path lacks (1) or is unparseable (2)."""

    def responder(body: dict, attempt: int) -> str:
        text = prompt_text(body)
        i, target = max(enumerate(problems), key=lambda ip: text.rfind(ip[1].question))
        if body["model"] == "c":
            if i % 3 == 0:
                return (f"Incorrect Step: Step 2.\nExplanation: the total is wrong {INJECT}.\n"
                        f"Correct Solution:\nStep 2: Redo it. The answer is {target.answer}.")
            if i % 3 == 1:
                return f"Incorrect Step: Step 9.\nExplanation: no.\nCorrect Solution:\nStep 9: The answer is {target.answer}."
            return f"I cannot help {BREAKOUT}"
        if body["model"] == "m2":
            answer = target.answer if i % 2 == 0 else WRONG  # its own wording: not a duplicate of m1's path
            return f"Step 1: Think.\nStep 2: Add up.\nStep 3: The answer is {answer}."
        return f"Step 1: Look {INJECT}.\nStep 2: So the answer is {WRONG}. The answer is {WRONG}."

    return responder


def make_run(folder: Path, problems) -> Path:
    with ScriptedServer(responder_for(problems)) as server:
        recipe = {
            "dataset": "math", "split": "test", "limit": LIMIT, "out": str(folder / "run"), "concurrency": 4,
            "generators": [
                {"name": "small", "model": "m1", "base_url": server.base_url, "samples": 2, "temperature": 0.7},
                {"name": "big", "model": "m2", "base_url": server.base_url, "samples": 2, "temperature": 0.7},
            ],
            "corrector": {"name": "fixer", "model": "c", "base_url": server.base_url, "price_prompt": 2.5, "price_completion": 10},
            "cot": {"source": "gold"},
            "export": {"format": "chat_template", "mixes": ["lema", "cot-only"]},
        }
        (folder / "r.yaml").write_text(yaml.safe_dump(recipe))
        result = CliRunner().invoke(main, ["run", str(folder / "r.yaml")])
    assert result.exit_code == 0, result.output
    # lema run writes the report last and says where
    assert result.output.rstrip().splitlines()[-1] == f"Report: {folder / 'run' / 'report.html'}"
    return folder / "run"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, problems) -> Path:
    return make_run(tmp_path_factory.mktemp("report"), problems)


def expected_replies():
    """(verified, bad_step, unparseable) over the mistakes: every question for `small`, odd ones for `big`."""
    mistakes = list(range(LIMIT)) + [i for i in range(LIMIT) if i % 2]
    return tuple(sum(i % 3 == k for i in mistakes) for k in range(3))


def test_funnel_counts_every_record(run_dir):
    figures = compute(read_run(run_dir))
    verified, bad_step, unparseable = expected_replies()
    small, big = figures.funnel[("original", "small")], figures.funnel[("original", "big")]
    assert small == {"problems": LIMIT, "paths": 2 * LIMIT, "mistakes": LIMIT, "correction replies": LIMIT,
                     "parsed": LIMIT - sum(i % 3 == 2 for i in range(LIMIT)),
                     "verified": sum(i % 3 == 0 for i in range(LIMIT)), "exported": sum(i % 3 == 0 for i in range(LIMIT))}
    assert big["paths"] == 2 * LIMIT and big["mistakes"] == LIMIT // 2
    assert totals(figures)["verified"] == totals(figures)["exported"] == verified
    assert totals(figures)["problems"] == LIMIT  # both generators answered the same questions
    # why records fell out: the second identical sample, right answers, and the corrector's failures
    assert figures.dropped[("original", "small")]["duplicate"] == LIMIT  # its own code, not "over the cap"
    assert figures.dropped[("original", "big")]["correct"] == LIMIT
    assert sum(d["bad_step"] for d in figures.dropped.values()) == bad_step
    assert sum(d["unparseable"] for d in figures.dropped.values()) == unparseable
    assert figures.accuracy["big"].rate == 0.5 and figures.accuracy["small"].rate == 0.0
    # corrections name step 2 (verified) or 9 (rejected); unparseable replies name none
    assert figures.first_step["verified"] == {2: verified} and figures.first_step["rejected"] == {9: bad_step}
    # success by MATH level and subject covers every mistake once
    assert sum(r.total for r in figures.by_level.values()) == LIMIT + LIMIT // 2
    assert sum(r.hits for r in figures.by_subject.values()) == verified
    assert all(k.startswith("Level ") for k in figures.by_level)
    # the priced corrector's cost is shown; tokens of both stages are counted
    assert figures.tokens["correct"]["cost"] > 0 and figures.tokens["sample"]["prompt"] > 0
    assert len(figures.items["items"]) == LIMIT + LIMIT // 2


def test_report_page_is_self_contained_and_escaped(run_dir):
    html = (run_dir / "report.html").read_text()
    for section in ("funnel", "generators", "corrections", "tokens", "viewer"):
        assert f"id='{section}'" in html
    assert html.count('data-plot="') == 7  # funnel, accuracy, mistakes/question, first step, level, subject, tokens
    paid = json.loads((run_dir / "run_summary.json").read_text())["usage"]["cost"]
    assert f"<td>${paid:.4f}</td>" in html and "lema run, last session" in html  # the client's own count
    assert "http://" not in html.replace("http://www.w3.org", "") and "https://" not in html  # nothing fetched
    # model text never appears as markup: only our two script elements exist
    assert html.count("<script") == 2 and "window.pwned" in html
    assert INJECT not in html and BREAKOUT not in html
    blob = re.search(r"<script type='application/json' id='viewer-data'>(.*?)</script>", html, re.S).group(1)
    assert any(INJECT in step for path in json.loads(blob)["paths"] for step in path[0])


def test_script_json_cannot_close_the_script_element():
    text = script_json({"a": "</script><!-- & \u2028"})
    assert "<" not in text and ">" not in text and "&" not in text and "\u2028" not in text
    assert json.loads(text) == {"a": "</script><!-- & \u2028"}


def test_single_stage_folder_reports_its_mistakes(tmp_path, problems):
    with ScriptedServer(responder_for(problems)) as server:
        result = CliRunner().invoke(main, [
            "sample", "--dataset", "math", "--split", "test", "--limit", "3", "--generator", f"small=m1@{server.base_url}",
            "--samples", "1", "--out", str(tmp_path / "s"), "--quiet"])
    assert result.exit_code == 0, result.output
    result = CliRunner().invoke(main, ["report", str(tmp_path / "s"), "--html", str(tmp_path / "s.html")])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"report: {tmp_path / 's.html'}"
    figures = compute(read_run(tmp_path / "s"))
    assert figures.stages == ["problems", "paths", "mistakes"]
    assert [item[5] for item in figures.items["items"]] == ["not corrected"] * 3
    html = (tmp_path / "s.html").read_text()
    assert "id='viewer'" in html and "id='corrections'" not in html


def test_bad_record_is_one_line_naming_file_and_line(run_dir, tmp_path):
    broken = tmp_path / "broken"
    (broken / "correct").mkdir(parents=True)
    good = (run_dir / "correct" / "rejected.jsonl").read_text().splitlines()[0]
    (broken / "correct" / "rejected.jsonl").write_text(good + "\n{not json\n")
    result = CliRunner().invoke(main, ["report", str(broken)])
    assert result.exit_code == 1
    assert result.output.strip() == f"Error: {broken / 'correct' / 'rejected.jsonl'}:2: not valid JSON (Expecting property name enclosed in double quotes)"
    empty = tmp_path / "empty"
    empty.mkdir()
    result = CliRunner().invoke(main, ["report", str(empty)])
    assert result.exit_code == 1 and "no LeMa records found" in result.output and len(result.output.strip().splitlines()) == 1


def test_eval_scores_show_per_results_file(run_dir, tmp_path):
    import shutil

    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy, ignore=shutil.ignore_patterns(".cache"))
    results = {"results": {"lema_gsm8k": {"alias": "lema_gsm8k", "official_match,none": 0.375, "exact_match,none": 0.25,
                                          "exact_match_stderr,none": 0.1, "strict_match,none": 0.125}},
               "config": {"model_args": {"pretrained": "base", "peft": "run/data/lema/adapter"}}}  # as lm-eval 0.4.11 logs it
    (copy / "eval" / "base__model").mkdir(parents=True)
    (copy / "eval" / "base__model" / "results_2026-01-01T00-00-00.json").write_text(json.dumps(results))
    # where the printed `Next:` commands write: data/<mix>/eval/<model>/ (named by the mix, not "data")
    cot = {**results, "config": {"model_args": "pretrained=run/data/cot-only/adapter/merged"}}
    (copy / "data" / "cot-only" / "eval" / "merged").mkdir(parents=True)
    (copy / "data" / "cot-only" / "eval" / "merged" / "results_2026-01-02T00-00-00.json").write_text(json.dumps(cot))
    rows = sorted(read_run(copy).evals, key=lambda r: r["file"])
    assert [row["source"] for row in rows] == ["cot-only", ""]
    row = rows[1]
    assert (row["task"], row["official_match"], row["strict_match"], row["exact_match"]) == ("lema_gsm8k", 0.375, 0.125, 0.25)
    assert row["model"] == "pretrained=base,peft=run/data/lema/adapter"
    result = CliRunner().invoke(main, ["report", str(copy)])
    assert result.exit_code == 0, result.output
    html = (copy / "report.html").read_text()
    assert "id='eval'" in html and "<td class=\"text\">lema (this run&#x27;s adapter)</td>" in html
    assert "<td class=\"text\">cot-only</td>" in html and "<td class=\"text\">data</td>" not in html
    # the paper-comparable score first, then the robust views
    assert "<th>official_match</th><th>strict_match</th><th>exact_match</th>" in html
    assert "<td>0.375</td><td>0.125</td><td>0.250</td>" in html


# -- in a real browser ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def chromium():
    from chromium import find_chromium

    found = find_chromium()
    if found is None:
        pytest.skip("chromium is not installed (apt-get install chromium; .ci/run installs it)")
    return found


def test_report_in_headless_chromium(run_dir, chromium, tmp_path):
    from chromium import open_browser
    from matplotlib.image import imread

    url = (run_dir / "report.html").resolve().as_uri()

    async def scenario():
        async with open_browser(chromium) as page:
            await page.goto(url)
            plots = await page.evaluate(
                "Array.from(document.querySelectorAll('figure.plot img')).map(i => [i.alt, i.complete && i.naturalWidth > 100])")
            count = await page.evaluate("document.getElementById('viewer-count').textContent")
            shot = await page.screenshot(tmp_path / "report.png")
            # record text shows as text: the injected tag is a step's words, and it never ran
            steps = await page.evaluate("Array.from(document.querySelectorAll('ol.steps li')).map(li => li.textContent)")
            explanations = await page.evaluate("Array.from(document.querySelectorAll('.explanation')).map(p => p.textContent)")
            pwned = await page.evaluate("typeof window.pwned")
            scripts = await page.evaluate("document.scripts.length")
            # filter the viewer as a person would: pick a generator, then a verdict
            await page.evaluate("(s => { s.value = 'big'; s.dispatchEvent(new Event('change')); })(document.getElementById('filter-generator'))")
            big = await page.evaluate("[document.getElementById('viewer-count').textContent, location.hash,"
                                      " Array.from(document.querySelectorAll('.item header .tag:first-child')).map(t => t.textContent)]")
            await page.evaluate("(s => { s.value = 'rejected'; s.dispatchEvent(new Event('change')); })(document.getElementById('filter-verdict'))")
            rejected = await page.evaluate("Array.from(document.querySelectorAll('.item .badge')).map(b => b.textContent)")
            # a filter in the URL is applied on load
            await page.goto("about:blank")
            await page.goto(url + "#reason=bad_step")
            from_hash = await page.evaluate("document.getElementById('viewer-count').textContent")
            return plots, count, shot, steps, explanations, pwned, scripts, big, rejected, from_hash, list(page.errors)

    plots, count, shot, steps, explanations, pwned, scripts, big, rejected, from_hash, errors = asyncio.run(scenario())
    verified, bad_step, unparseable = expected_replies()
    total = LIMIT + LIMIT // 2
    assert errors == []
    assert len(plots) == 7 and all(ok for _, ok in plots), plots
    assert count == f"{total} of {total} items; page 1 of 1"
    assert INJECT in " ".join(steps) and INJECT in " ".join(explanations)
    assert pwned == "undefined" and scripts == 2
    assert big[0].startswith(f"{LIMIT // 2} of {total} items") and big[1] == "#generator=big" and set(big[2]) == {"big"}
    assert rejected and all(b.startswith("rejected") for b in rejected)
    assert from_hash.startswith(f"{bad_step} of {total} items")
    image = imread(shot)
    assert image.shape[1] == 1200 and image.shape[0] > 1500
    assert image[..., :3].std() > 0.05  # not a blank page


def test_evolved_questions_count_apart(run_dir, tmp_path):
    """Records under evolve/ are the evolved questions' own funnel rows, and their stages' summaries
    their own token lines."""
    import shutil

    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy, ignore=shutil.ignore_patterns(".cache"))
    for stage, name in (("sample", "mistakes.jsonl"), ("correct", "rejected.jsonl"), ("correct", "corrections.jsonl")):
        records = [json.loads(line) for line in (run_dir / stage / name).read_text().splitlines()]
        for record in records:  # new questions: new ids
            record["id"] = "e" + record["id"]
            if "path_id" in record:
                record["path_id"] = "e" + record["path_id"]
        (copy / "evolve" / stage).mkdir(parents=True, exist_ok=True)
        (copy / "evolve" / stage / name).write_text("".join(json.dumps(r) + "\n" for r in records))
    for stage in ("sample", "correct"):  # each stage's ledger: its tokens as the client counted them
        shutil.copy(run_dir / stage / "usage.jsonl", copy / "evolve" / stage)
    figures = compute(read_run(copy))
    original = compute(read_run(run_dir))
    for generator in ("small", "big"):
        evolved = figures.funnel[("evolved", generator)]
        mine = original.funnel[("original", generator)]
        assert evolved["mistakes"] == mine["mistakes"] and evolved["verified"] == mine["verified"]
        assert evolved["exported"] == 0  # the copies are in no export
    assert figures.tokens["correct (evolved)"]["prompt"] == original.tokens["correct"]["prompt"]
    assert {item[7] for item in figures.items["items"]} == {"original", "evolved"}

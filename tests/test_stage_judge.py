"""The judge on every stage that grades: `--judge` on the commands and `judge:` in a recipe,
against the scripted test server. Only what the rules cannot decide reaches the judge; every
graded record says which path decided it; a re-run pays the judge for nothing twice."""
from __future__ import annotations

import json
import threading

import pytest
import yaml
from collections import Counter
from pathlib import Path

from click.testing import CliRunner

from lema_plugin.cli import main
from lema_testing.scripted_server import Reply, ScriptedServer, prompt_text

# MATH problems whose gold answers the rules settle for some replies and not for others
TRIANGLE = "What kind of triangle has angles of 45, 45 and 90 degrees?"
LINE = "Give the curve through (1, 0) on which y grows by 1 each time x doubles."
COUNT = "How many sides does a heptagon have?"
PROBLEMS = [
    {"problem": TRIANGLE, "solution": r"It is an $\boxed{\text{isosceles right triangle}}$.", "level": "Level 1", "type": "Geometry"},
    {"problem": LINE, "solution": r"The curve is $\boxed{2^{y} - x = 0}$.", "level": "Level 2", "type": "Algebra"},
    {"problem": COUNT, "solution": r"A heptagon has $\boxed{7}$ sides.", "level": "Level 1", "type": "Geometry"},
]
# the generator's two paths per question (sample k is asked with seed k)
PATHS = {
    TRIANGLE: ["Final answer: it is a right triangle whose two legs have the same length.",  # judge: correct
               "The answer is $5$."],  # the rules: a number is not the text answer
    LINE: ["So the answer is $y = \\log_2 x$.",  # an equation the rules cannot read (a log): judge, correct
           Reply(content="The line goes up by two for each step and then it", finish_reason="length")],  # never judged
    COUNT: ["A heptagon has 7 sides. The answer is 7.",  # the rules: correct
            "I am not sure how to go on from here."],  # no answer: judge, incorrect
}
JUDGED_CORRECT = ("right triangle whose", "y = \\log_2 x")
# the corrector's corrected answer per question: undecided and right, undecided and wrong, settled
FIXES = {LINE: "So the curve is $y = \\log_2 x$.", TRIANGLE: "I could not finish this one.",
         COUNT: "The answer is 8."}


class Scripted:
    """One server for generator, corrector and judge, told apart by the model name."""

    def __init__(self, paths: dict = PATHS):
        self.paths = paths
        self.asked: Counter[str] = Counter()
        self.lock = threading.Lock()

    def __call__(self, body: dict, attempt: int):
        with self.lock:
            self.asked[body["model"]] += 1
        prompt = prompt_text(body)
        if body["model"] == "judge-model":
            assert "Reference answer:" in prompt
            if any(marker in prompt for marker in JUDGED_CORRECT):
                return "Both say the same.\nVerdict: correct"
            return "They differ.\nVerdict: incorrect"
        if body["model"] == "gen":
            question = next(q for q in self.paths if q in prompt)
            return self.paths[question][body.get("seed") or 0]
        if body["model"] == "fixer":
            question = next(q for q in FIXES if q in prompt)
            return f"Incorrect Step: Step 1.\nExplanation: look again.\nCorrect Solution:\n{FIXES[question]}"
        raise AssertionError(f"unexpected model {body['model']}")


def _write(path: Path, rows) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def _read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _sample(tmp_path, server, *extra):
    data = _write(tmp_path / "math.jsonl", PROBLEMS)
    args = ["sample", "--dataset", "math", "--data-file", str(data), "--generator", f"gen@{server.base_url}",
            "-k", "2", "--seed", "0", "--temperature", "0", "--out", str(tmp_path / "run"), "--quiet", *extra]
    return CliRunner().invoke(main, args, catch_exceptions=False)


def test_sample_asks_the_judge_only_what_the_rules_cannot_decide(tmp_path):
    script = Scripted()
    with ScriptedServer(script) as server:
        result = _sample(tmp_path, server, "--judge", f"judge=judge-model@{server.base_url}")
        assert result.exit_code == 0, result.output
        # undecided: the free-form text answer, the equation, the no-answer path; the truncated
        # path states no answer and is not judged
        assert script.asked == {"gen": 6, "judge-model": 3}
        paths = {(p["question"], p["sample_index"]): p for p in _read(tmp_path / "run" / "paths.jsonl")}
        verdicts = {key: (p["correct"], p["decided_by"], p["kind"]) for key, p in paths.items()}
        assert verdicts == {
            (TRIANGLE, 0): (True, "judge", "correct"),
            (TRIANGLE, 1): (False, "rule", "wrong"),
            (LINE, 0): (True, "judge", "correct"),
            (LINE, 1): (False, "rule", "truncated"),
            (COUNT, 0): (True, "rule", "correct"),
            (COUNT, 1): (False, "judge", "unextractable"),
        }
        mistakes = _read(tmp_path / "run" / "mistakes.jsonl")
        assert [m["text"] for m in mistakes] == ["The answer is $5$."]
        summary = json.loads((tmp_path / "run" / "sample_summary.json").read_text())
        assert summary["total"]["judged"] == 3 and summary["total"]["correct"] == 3
        assert summary["usage"]["by_endpoint"]["judge"]["requests"] == 3  # the judge's usage, from the client
        assert "judge: 3 requests" in result.output

        again = _sample(tmp_path, server, "--judge", f"judge=judge-model@{server.base_url}")
        assert again.exit_code == 0, again.output
        assert script.asked == {"gen": 6, "judge-model": 3}  # nothing asked twice
        assert {(p["question"], p["sample_index"]): p["decided_by"] for p in _read(tmp_path / "run" / "paths.jsonl")} == {
            key: value[1] for key, value in verdicts.items()}


def test_sample_without_a_judge_leaves_the_rules_verdict(tmp_path):
    script = Scripted()
    with ScriptedServer(script) as server:
        result = _sample(tmp_path, server)
        assert result.exit_code == 0, result.output
    assert script.asked == {"gen": 6}
    paths = _read(tmp_path / "run" / "paths.jsonl")
    assert {p["decided_by"] for p in paths} == {"rule"}
    assert sum(p["correct"] for p in paths) == 1


def test_judge_spec_that_does_not_parse_is_a_one_line_usage_error(tmp_path):
    data = _write(tmp_path / "math.jsonl", PROBLEMS)
    result = CliRunner().invoke(main, ["sample", "--dataset", "math", "--data-file", str(data), "--judge", "x=",
                                       "--out", str(tmp_path / "run")])
    assert result.exit_code == 2 and "--judge" in result.output and "Traceback" not in result.output


def _correct(tmp_path, server, mistakes, *extra):
    args = ["correct", "--mistakes", str(mistakes), "--corrector", f"fixer@{server.base_url}",
            "--out", str(tmp_path / "fixed"), "--quiet", *extra]
    return CliRunner().invoke(main, args, catch_exceptions=False)


def test_correct_lets_the_judge_settle_what_the_rules_cannot(tmp_path):
    gold = {row["problem"]: row["solution"] for row in PROBLEMS}
    mistakes = _write(tmp_path / "mistakes.jsonl", [
        {"id": f"m{index}", "question": question, "answer": gold[question], "dataset": "math",
         "steps": ["Step one is wrong.", "So the answer is 0."]}
        for index, question in enumerate((LINE, TRIANGLE, COUNT))
    ])
    script = Scripted()
    judge = ["--judge", "judge=judge-model"]
    with ScriptedServer(script) as server:
        judge[1] += f"@{server.base_url}"
        result = _correct(tmp_path, server, mistakes, *judge)
        assert result.exit_code == 0, result.output
        assert script.asked == {"fixer": 3, "judge-model": 2}  # the line and the triangle; the 8 is settled
        kept = _read(tmp_path / "fixed" / "corrections.jsonl")
        rejected = _read(tmp_path / "fixed" / "rejected.jsonl")
        assert [(r["question"], r["decided_by"]) for r in kept] == [(LINE, "judge")]
        assert sorted((r["question"], r["reason"], r["decided_by"]) for r in rejected) == sorted([
            (TRIANGLE, "wrong_answer", "judge"), (COUNT, "wrong_answer", "rule")])
        summary = json.loads((tmp_path / "fixed" / "correct_summary.json").read_text())
        assert summary["verified"] == 1 and summary["judge_decided"] == 2
        assert "judge: 2 requests" in result.output  # the judge's usage, from the client

        again = _correct(tmp_path, server, mistakes, *judge)
        assert again.exit_code == 0, again.output
        assert script.asked == {"fixer": 3, "judge-model": 2}
        assert _read(tmp_path / "fixed" / "corrections.jsonl") == kept

    # without a judge the undecided line is rejected by the rules
    script = Scripted()
    with ScriptedServer(script) as server:
        result = _correct(tmp_path / "plain", server, mistakes)
        assert result.exit_code == 4, result.output  # no verified correction: nothing for the next stage
    assert script.asked == {"fixer": 3}
    assert not _read(tmp_path / "plain" / "fixed" / "corrections.jsonl")


def test_cot_keeps_a_rationale_the_judge_accepted(tmp_path):
    data = _write(tmp_path / "math.jsonl", PROBLEMS)
    script = Scripted()
    with ScriptedServer(script) as server:
        result = CliRunner().invoke(main, [
            "cot", "--source", "model", "--dataset", "math", "--data-file", str(data), "--model", f"gen@{server.base_url}",
            "--samples", "1", "--keep", "1", "--judge", f"judge=judge-model@{server.base_url}",
            "--out", str(tmp_path / "cot"), "--quiet"], catch_exceptions=False)
        assert result.exit_code == 0, result.output
    assert script.asked == {"gen": 3, "judge-model": 2}  # the text answer and the equation
    samples = {r["text"]: r["decided_by"] for r in _read(tmp_path / "cot" / "cot_samples.jsonl")}
    assert sorted(samples.values()) == ["judge", "judge", "rule"]
    targets = {r["question"]: r for r in _read(tmp_path / "cot" / "cot.jsonl")}
    assert set(targets) == {TRIANGLE, LINE, COUNT}
    # the accepted free-form rationale states no answer the rules read: it closes with the gold one
    text = "\n".join(value for value in targets[TRIANGLE].values() if isinstance(value, str))
    assert text.count("The answer is") == 1 and "same length.\nThe answer is \\text{isosceles right triangle}.\n" in text


def test_recipe_judge_key_reaches_sample_and_correct(tmp_path):
    data = _write(tmp_path / "math.jsonl", PROBLEMS)
    # one path per question: right in words (judge), a wrong line (judge), a wrong count (rules)
    script = Scripted({TRIANGLE: PATHS[TRIANGLE][:1], LINE: ["So the answer is $y = \\log_3 x$."], COUNT: ["The answer is 8."]})
    with ScriptedServer(script) as server:
        recipe = {
            "dataset": "math", "data_file": str(data), "out": str(tmp_path / "run"),
            "generators": [{"name": "gen", "model": "gen", "base_url": server.base_url, "samples": 1}],
            "corrector": {"name": "fixer", "model": "fixer", "base_url": server.base_url},
            "judge": {"name": "judge", "model": "judge-model", "base_url": server.base_url},
            "cot": {"source": "gold"}, "export": {"mixes": ["lema"]},
        }
        (tmp_path / "r.yaml").write_text(yaml.safe_dump(recipe))
        result = CliRunner().invoke(main, ["run", str(tmp_path / "r.yaml")], catch_exceptions=False)
        assert result.exit_code == 0, result.output
    # sample: the words and the wrong line go to the judge; correct: the corrected line does
    assert script.asked == {"gen": 3, "fixer": 2, "judge-model": 3}
    paths = {p["question"]: (p["correct"], p["decided_by"]) for p in _read(tmp_path / "run" / "sample" / "paths.jsonl")}
    assert paths == {TRIANGLE: (True, "judge"), LINE: (False, "judge"), COUNT: (False, "rule")}
    kept = _read(tmp_path / "run" / "correct" / "corrections.jsonl")
    assert [(r["question"], r["decided_by"]) for r in kept] == [(LINE, "judge")]


def test_recipe_judge_is_an_endpoint_built_field_by_field(tmp_path):
    from lema_plugin.recipe import RecipeError, load_recipe

    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump({"generators": [{"model": "embedded"}],
                                    "judge": {"model": "judge-model", "base_url": "http://127.0.0.1:9/v1;x"}}))
    assert load_recipe(str(path)).judge.endpoint().base_urls == ("http://127.0.0.1:9/v1;x",)
    path.write_text(yaml.safe_dump({"generators": [{"model": "embedded"}], "judge": {"modle": "x"}}))
    with pytest.raises(RecipeError, match=r"judge\.modle"):
        load_recipe(str(path))


def _outputs(tmp_path):
    """Three MATH outputs to import with their gold; the rules cannot settle `\\log_3 x`, a judge can."""
    gold = {row["problem"]: row["solution"] for row in PROBLEMS}
    return _write(tmp_path / "outputs.jsonl", [
        {"question": question, "solution": text, "gold": gold[question]}
        for question, text in ((TRIANGLE, PATHS[TRIANGLE][0]), (LINE, "The answer is $y = \\log_3 x$."), (COUNT, "The answer is 8."))
    ])


def test_import_judges_only_the_undecided_paths(tmp_path):
    outputs = _outputs(tmp_path)
    script = Scripted()
    with ScriptedServer(script) as server:
        args = ["import", str(outputs), "--format", "jsonl", "--dataset", "math", "--gold-field", "gold",
                "--judge", f"judge=judge-model@{server.base_url}", "--quiet", "--out", str(tmp_path / "run")]
        result = CliRunner().invoke(main, args, catch_exceptions=False)
        assert result.exit_code == 0, result.output
        assert script.asked == {"judge-model": 2}
        paths = {p["question"]: (p["correct"], p["decided_by"]) for p in _read(tmp_path / "run" / "paths.jsonl")}
        assert paths == {TRIANGLE: (True, "judge"), LINE: (False, "judge"), COUNT: (False, "rule")}
        assert json.loads((tmp_path / "run" / "import_summary.json").read_text())["usage"]["by_endpoint"]["judge"]["requests"] == 2
        assert "\njudge: 2 requests" in result.output
        again = CliRunner().invoke(main, args, catch_exceptions=False)
        assert again.exit_code == 0 and script.asked == {"judge-model": 2}


NEW_LINE = "Which curve passes through the point (1, 0) and rises one unit whenever x is multiplied by three?"
VOTES = ["The answer is $y = \\log_3 x$.", "So the curve is $3^{y} - x = 0$.", "I do not know."]


def _evolve(tmp_path, judge: bool):
    import asyncio

    from lema_plugin.evolve import EvolveInputs, EvolveSettings, evolve_questions, load_seeds
    from lema_plugin.llm import LLMClient

    asked: Counter[str] = Counter()
    answers = iter(VOTES)

    def responder(body, attempt):
        asked[body["model"]] += 1
        text = prompt_text(body)
        if body["model"] == "judge-model":
            return "Same curve.\nVerdict: correct" if "3^{y} - x = 0" in text else "No.\nVerdict: incorrect"
        return f"New problem: {NEW_LINE}" if "New problem:" in text else next(answers)

    seed = {"id": "c1", "problem_id": "p1", "dataset": "math", "question": LINE, "answer": "2^{y} - x = 0", "correct": True}
    with ScriptedServer(responder) as server:
        settings = EvolveSettings(per_seed=1, styles=("similar",), samples=3, min_agreement=0.6,
                                  judge=server.endpoint(model="judge-model", name="judge") if judge else None)
        client = LLMClient(cache_dir=tmp_path / ".cache", progress=False)

        async def run():
            async with client:
                return await evolve_questions(EvolveInputs(load_seeds([seed])), [server.endpoint(model="strong")],
                                              client, tmp_path, settings)

        summary = asyncio.run(run())
    return summary, asked, _read(tmp_path / "problems.jsonl")


def test_evolve_counts_an_answer_the_judge_finds_equal_as_a_vote(tmp_path):
    # the rules split the three answers 1-1 (two ways to write the curve) and one with no answer
    summary, asked, problems = _evolve(tmp_path / "plain", judge=False)
    assert (summary.no_majority, summary.kept) == (1, 0) and not problems
    # the judge finds the second curve equal to the first: 2 of 3 agree, a clear majority
    summary, asked, problems = _evolve(tmp_path / "judged", judge=True)
    assert asked == {"strong": 4, "judge-model": 2}  # the other curve and the non-answer
    assert (summary.no_majority, summary.kept, summary.judge_votes) == (0, 1, 1)
    assert [(p["question"], p["answer"], p["agreement"]) for p in problems] == [(NEW_LINE, "y = \\log_3 x", round(2 / 3, 4))]


# -- the judge is in the one request loop: budget, endpoint check, failures, preview -------------

SETTLED_BY_RULES = {(TRIANGLE, 1): "wrong", (LINE, 1): "truncated", (COUNT, 0): "correct"}


def _kinds(tmp_path) -> dict:
    path = tmp_path / "run" / "paths.jsonl"
    return {(p["question"], p["sample_index"]): p["kind"] for p in _read(path)} if path.exists() else {}


def test_a_judge_request_the_budget_refuses_is_never_stored_as_a_rule_verdict(tmp_path):
    script = Scripted()
    with ScriptedServer(script) as server:
        judge = f"judge=judge-model@{server.base_url};price=1000/1000"
        stopped = _sample(tmp_path, server, "--judge", judge, "--max-cost", "0.01")
        assert stopped.exit_code == 3, stopped.output
        assert "budget: stopped before this run folder's --max-cost $0.01" in stopped.output
        assert script.asked == {"gen": 6}  # the judge's worst case is over the cap: never asked
        assert _kinds(tmp_path) == SETTLED_BY_RULES  # the three it must decide wait, unstored
        done = _sample(tmp_path, server, "--judge", judge, "--max-cost", "5")
        assert done.exit_code == 0, done.output
        assert script.asked == {"gen": 6, "judge-model": 3}
    assert {key: p for key, p in _kinds(tmp_path).items()} == {
        **SETTLED_BY_RULES, (TRIANGLE, 0): "correct", (LINE, 0): "correct", (COUNT, 1): "unextractable"}


def test_a_dead_judge_gets_a_start_line_and_an_endpoint_check_before_any_verdict(tmp_path):
    script = Scripted()
    with ScriptedServer(script) as server:
        result = _sample(tmp_path, server, "--judge", "judge=judge-model@http://127.0.0.1:9/v1")
    assert result.exit_code == 1, result.output
    assert "judge judge (judge-model) -> http://127.0.0.1:9/v1 (chat)" in result.output  # its start line
    assert result.output.strip().splitlines()[-1].startswith("Error: judge judge at http://127.0.0.1:9/v1 does not answer")
    assert _kinds(tmp_path) == SETTLED_BY_RULES


def test_failing_judge_requests_make_no_false_mistakes_with_keep_unfinished(tmp_path):
    def failing_judge(body, attempt):
        return Reply(status=500) if body["model"] == "judge-model" else Scripted()(body, attempt)

    with ScriptedServer(failing_judge) as server:
        result = _sample(tmp_path, server, "--judge", f"judge=judge-model@{server.base_url}", "--keep-unfinished",
                         "--max-retries", "0")
    assert result.exit_code == 5, result.output
    assert "3 replies still wait for the judge" in result.output
    assert _kinds(tmp_path) == SETTLED_BY_RULES
    mistakes = {(m["question"], m["sample_index"]) for m in _read(tmp_path / "run" / "mistakes.jsonl")}
    assert mistakes == {(TRIANGLE, 1), (LINE, 1)}  # a wrong answer and a truncated path; no unjudged path


def test_the_cost_preview_counts_the_judge_and_writes_nothing(tmp_path):
    script = Scripted()
    with ScriptedServer(script) as server:
        result = _sample(tmp_path, server, "--judge", f"judge=judge-model@{server.base_url};price=1/2", "--estimate")
    assert result.exit_code == 0, result.output
    (row,) = [line.split() for line in result.output.splitlines() if line.startswith("judge ") and "counted" not in line]
    assert row[1] == "6" and row[-1].startswith("$")  # every path, as a bound
    assert "judge judge: counted as if every reply" in result.output
    assert script.asked == {} and not (tmp_path / "run").exists()


def test_import_takes_the_budget_and_the_preview(tmp_path):
    outputs = _outputs(tmp_path)
    script = Scripted()
    with ScriptedServer(script) as server:
        args = ["import", str(outputs), "--format", "jsonl", "--dataset", "math", "--gold-field", "gold", "--quiet",
                "--judge", f"judge=judge-model@{server.base_url};price=1000/1000", "--out", str(tmp_path / "run")]
        preview = CliRunner().invoke(main, [*args, "--estimate"])
        assert preview.exit_code == 0, preview.output
        assert [line.split()[1] for line in preview.output.splitlines() if line.startswith("judge ")] == ["2"]
        assert not (tmp_path / "run").exists()
        stopped = CliRunner().invoke(main, [*args, "--max-cost", "0.01"])
        assert stopped.exit_code == 3 and "budget: stopped" in stopped.output, stopped.output
        assert script.asked == {}
        assert {p["question"] for p in _read(tmp_path / "run" / "paths.jsonl")} == {COUNT}  # the rules settled it

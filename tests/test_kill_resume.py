"""A small `lema run` (a judge, a budget, a key the server echoes; the corrector online or through
the Batch API) killed with SIGKILL at random points and resumed, against one uninterrupted run:
the outputs are the same, the server never bills more than the cap in force, and the key is in
no file of the run folder and no message. Kill points are HTTP requests of any kind (completions,
endpoint checks, batch uploads, creations, polls, downloads), drawn with a fixed seed per variant
and printed, so a failure can be replayed."""
from __future__ import annotations

import os
import random
import re
import signal
from pathlib import Path

import pytest
import yaml

from lema_testing.forkserver import ForkServer
from lema_testing.scripted_server import Reply, ScriptedServer, prompt_text

KEY = "sk-kill-Resume-4Tq9ZxW2"
KILLS = 10  # per variant: 20 in all
LIMIT = 3
# files a stage writes whole, in a set order: byte for byte; stores appended as replies arrive: the
# same records, in whatever order they came
WHOLE = ("sample/paths.jsonl", "sample/mistakes.jsonl", "cot/cot.jsonl", "data/lema/train.jsonl")
APPENDED = ("correct/corrections.jsonl", "correct/rejected.jsonl")


def responder(problems):
    """Deterministic per request body, whatever the attempt: what a resumed run asks again gets
    the same answer. Sample 0 is wrong, sample 1 states no answer (the judge decides it); the
    corrector fixes step 1 and echoes the key, as does the judge."""

    def answer(body: dict, attempt: int):
        text = prompt_text(body)
        if body["model"] == "judge-model":
            return Reply(content="No final answer.\nVerdict: incorrect", echo_key=True)
        target = max(problems, key=lambda p: text.rfind(p.question))
        if "Incorrect Step" in text:
            return Reply(content=f"Incorrect Step: Step 1.\nExplanation: wrong sum.\nCorrect Solution:\n"
                                 f"Step 1: Redo it. The answer is {target.answer}.", echo_key=True)
        if body.get("seed") == 1:
            return "Step 1: I am not sure how to go on from here."
        return "Step 1: Add the numbers.\nStep 2: So the total is 1. The answer is 1."

    return answer


def write_recipe(path: Path, url: str, out: Path, batch: bool, cap: float | None) -> Path:
    endpoint = {"base_url": url, "key_env": "LEMA_KILL_KEY", "price": "0/1000"}
    path.write_text(yaml.safe_dump({
        "dataset": "gsm8k", "data_file": str(path.parent / "problems.jsonl"), "out": str(out), "concurrency": 2, "max_retries": 1, "max_cost": cap,
        "generators": [{"name": "gen", "model": "m", "samples": 2, "seed": 0, "temperature": 0.7, "max_tokens": 64,
                        **endpoint}],
        "corrector": {"name": "fixer", "model": "c", "samples": 1, "max_tokens": 96, "batch": batch, **endpoint},
        "judge": {"name": "judge", "model": "judge-model", **endpoint},
        "cot": {"source": "gold"},
        "export": {"format": "chat_template", "mixes": ["lema"]},
    }))
    return path


def read(out: Path, name: str) -> list[str]:
    path = out / name
    return sorted(path.read_text().splitlines()) if path.exists() else []


class Runner:
    """Runs `lema run RECIPE` in forked children until it is done, killing the child at the
    given HTTP request counts and finishing the server's batches when a pass exits 75."""

    def __init__(self, forks: ForkServer, server: ScriptedServer, folder: Path):
        self.forks, self.server, self.folder = forks, server, folder
        self.messages: list[str] = []
        self.statuses: list[int] = []

    def once(self, recipe: Path, kill_after: int | None = None) -> int:
        output = self.folder / f"child-{len(self.statuses)}.txt"
        child = None
        target = None if kill_after is None else self.server.hits + kill_after

        def kill(hits: int) -> None:
            if target is not None and hits >= target and child is not None:
                self.server.on_hit = None
                try:
                    os.kill(child, signal.SIGKILL)
                except ProcessLookupError:
                    pass

        self.server.on_hit = kill
        child = self.forks.start(["run", str(recipe), "-q"], output, env={"LEMA_KILL_KEY": KEY})
        status = self.forks.wait(child)
        self.server.on_hit = None
        self.statuses.append(status)
        self.messages.append(output.read_text(errors="replace"))
        if status == 75:
            self.server.finish_batches()
        return status


@pytest.mark.parametrize("batch", [False, True], ids=["online", "batch"])
def test_killed_at_random_points_and_resumed_the_run_is_the_same_and_within_its_cap(tmp_path, shared_data, batch):
    from lema_plugin.problems import load_problems

    data = tmp_path / "problems.jsonl"  # the first questions of the real training split
    data.write_text("".join((shared_data / "gsm8k" / "train.jsonl").read_text().splitlines(keepends=True)[:LIMIT]))
    problems = load_problems("gsm8k", data_file=str(data))
    seed = 24 + batch
    rng = random.Random(seed)
    with ScriptedServer(responder(problems), prices=(0.0, 1000.0)) as server, \
            ForkServer() as forks:
        whole = Runner(forks, server, tmp_path)
        recipe = write_recipe(tmp_path / "whole.yaml", server.base_url, tmp_path / "whole", batch, None)
        while whole.once(recipe) == 75:
            pass
        assert whole.statuses[-1] == 0, whole.messages[-1]
        whole_bill = server.billed

        # the killed run: a cap a little above what the whole run cost; each kill may leave the
        # worst case of the requests in flight reserved (the server may have billed them), and
        # when the cap is reached the test raises it, as a user would
        cap = round(whole_bill * 1.2 + 0.02, 4)
        cut = Runner(forks, server, tmp_path)
        spans = [rng.randint(1, 5) for _ in range(KILLS)]
        print(f"seed {seed}: kill after {spans} requests, cap ${cap}")
        billed_before = server.billed
        for span in [*spans, None, None, None, None, None, None, None, None]:
            recipe = write_recipe(tmp_path / "cut.yaml", server.base_url, tmp_path / "cut", batch, cap)
            status = cut.once(recipe, kill_after=span)
            assert server.billed - billed_before <= cap + 1e-9, (cut.statuses, cut.messages[-1])
            if status == 3:  # the cap was reached: raising it is the user's explicit choice
                assert "budget: stopped before this run folder's --max-cost" in cut.messages[-1]
                cap = round(cap + whole_bill * 0.5 + 0.3, 4)
            elif status == 0 and span is None:
                break
            else:
                assert status in (-signal.SIGKILL, 0, 75), (status, cut.messages[-1])
        assert cut.statuses.count(-signal.SIGKILL) >= KILLS // 2, cut.statuses  # most kills landed mid-run
        assert cut.statuses[-1] == 0, (cut.statuses, cut.messages[-1])

    for name in WHOLE:
        assert (tmp_path / "cut" / name).read_bytes() == (tmp_path / "whole" / name).read_bytes(), name
    for name in APPENDED:
        assert read(tmp_path / "cut", name) == read(tmp_path / "whole", name), name
    assert read(tmp_path / "whole", "correct/corrections.jsonl")  # the comparison compared something
    for folder in ("whole", "cut"):
        leaked = [str(p) for p in (tmp_path / folder).rglob("*") if p.is_file() and KEY.lower().encode() in p.read_bytes().lower()]
        assert leaked == [], leaked
    assert not [m for m in whole.messages + cut.messages if KEY.lower() in m.lower()]
    assert re.search(r"\*\*\*", (tmp_path / "cut" / "correct" / "corrections.jsonl").read_text())  # the echo was scrubbed

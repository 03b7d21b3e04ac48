"""The README's walkthrough (your own problems, your own model's outputs) runs as printed, offline,
with the embedded model: the block between the walkthrough markers is run by bash, line for line,
in an empty folder. One change: `embedded` names the embedded server the test session already
runs (the same model; each command would otherwise start its own)."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"
# exit statuses each command may end with: 4 is "nothing produced" (a 135M model may find no
# mistake in three easy questions, and verifies almost no correction), as the README says
ALLOWED = {"sample": {0, 4}, "import": {0}, "correct": {0, 4}, "cot": {0}, "build": {0}, "report": {0}, "axolotl": {0}}
STEPS = ["sample", "import", "correct", "cot", "build", "build", "axolotl", "report"]


def walkthrough() -> str:
    text = README.read_text(encoding="utf-8")
    block = re.search(r"<!-- walkthrough:start -->\n```bash\n(.*?)```\n<!-- walkthrough:end -->", text, re.S)
    assert block, "the README has no walkthrough block"
    return block.group(1)


def test_the_walkthrough_is_what_the_test_runs():
    script = walkthrough()
    commands = [line.split()[1] if line.startswith("lema ") else "axolotl" for line in script.splitlines()
                if line.startswith("lema ") or " axolotl train " in f" {line}"]
    assert commands == STEPS
    assert "--generator embedded" in script and "--corrector embedded" in script


@pytest.mark.slow
def test_the_walkthrough_runs_as_printed(tmp_path, embedded_endpoint):
    spec = (f"{embedded_endpoint.name}={embedded_endpoint.model}@{embedded_endpoint.base_urls[0]}"
            f";timeout={embedded_endpoint.timeout:g};concurrency={embedded_endpoint.max_concurrency}")  # as `embedded` has
    lines = []
    for line in walkthrough().splitlines():
        if line.startswith("lema "):
            line = line.replace("--generator embedded", f"--generator '{spec}'").replace("--corrector embedded",
                                                                                         f"--corrector '{spec}'")
            line += f' -q; echo "{line.split()[1]} $?" >> exits.txt'
        elif " axolotl train " in f" {line}":  # the printed train command of the step-level kind
            line += '; echo "axolotl $?" >> exits.txt'
        lines.append(line)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}", "HF_HUB_OFFLINE": "1",
           "WANDB_MODE": "disabled", "CUDA_VISIBLE_DEVICES": ""}
    env.pop("LEMA_DATA_DIR", None)  # nothing here reads a dataset: the problems are the walkthrough's own
    done = subprocess.run(["bash", "-c", "\n".join(lines)], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=1500)
    output = done.stdout + done.stderr
    exits = [line.split() for line in (tmp_path / "exits.txt").read_text().splitlines()]
    assert [name for name, _ in exits] == STEPS, output
    for name, status in exits:
        assert int(status) in ALLOWED[name], f"lema {name} exited {status}\n{output}"

    own = tmp_path / "runs" / "own"
    imported = [json.loads(line) for line in (own / "imported" / "paths.jsonl").read_text().splitlines()]
    assert [(p["answer"], p["correct"]) for p in imported] == [("5", False), ("3/8", True), ("24", False)]
    assert "1 line left out" in output and "my_outputs.jsonl:4: What is the capital of France?" in output
    assert [r["question"][:3] for r in map(json.loads, (own / "cot" / "cot.jsonl").read_text().splitlines())] == ["Tom"]
    assert (own / "data" / "lema" / "train.jsonl").read_text() and (own / "data" / "prm" / "train.jsonl").read_text()
    adapter = json.loads((own / "data" / "prm" / "adapter" / "current" / "adapter_config.json").read_text())
    assert adapter["task_type"] == "TOKEN_CLS"  # the printed command trained the process reward model
    assert "id='training'" in (own / "report.html").read_text()

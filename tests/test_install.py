"""The GPU install: pip's own resolver, run against the package index on this checkout's extras.

`pip install '.[train]'` (axolotl) and `pip install '.[vllm]'` (lm-eval with vLLM) are the two GPU
environments the README sets up. Each must resolve, on the index as it is today, to the versions
the extras pin and that the configs and tasks were written against, and the two must agree on what
tokenizes and loads a model. Nothing is installed: `--dry-run --report` only resolves.
"""
from __future__ import annotations

import json
import platform
import socket
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED = ("torch", "transformers", "datasets", "lm-eval")


def _index_reachable() -> bool:
    try:
        socket.create_connection(("pypi.org", 443), timeout=10).close()
        return True
    except OSError:
        return False


def resolve(extra: str, tmp_path: Path) -> dict[str, str]:
    """name -> version of everything `pip install '.[extra]'` would install on this platform."""
    report = tmp_path / f"{extra}.json"
    # --isolated: no user or site pip configuration (local wheel folders, constraint files)
    command = [sys.executable, "-m", "pip", "--isolated", "install", "--dry-run", "--ignore-installed", "--quiet",
               "--report", str(report), f"{REPO}[{extra}]"]
    run = subprocess.run(command, capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, f"pip could not resolve .[{extra}]:\n{run.stderr[-3000:]}"
    installs = json.loads(report.read_text())["install"]
    return {item["metadata"]["name"].lower().replace("_", "-"): item["metadata"]["version"] for item in installs}


@pytest.mark.slow
def test_gpu_extras_resolve_to_the_pinned_versions(tmp_path):
    if platform.system() != "Linux" or platform.machine() != "x86_64":
        pytest.skip("the GPU wheels (torch with CUDA, vLLM) are resolved for x86-64 Linux, the machines they run on")
    if not _index_reachable():
        pytest.skip("pypi.org cannot be reached from here: the resolver needs the index")
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(2) as pool:  # two independent resolutions, at once
        train, serve = pool.map(lambda extra: resolve(extra, tmp_path), ("train", "vllm"))
    assert (train["axolotl"], train["torch"], train["transformers"], train["lm-eval"]) == ("0.19.0", "2.13.0", "5.16.1", "0.4.11")
    assert "flash-attn" not in train, "the configs use sdpa: nothing to compile"
    assert "vllm" not in train

    assert (serve["vllm"], serve["torch"], serve["lm-eval"]) == ("0.32.0", "2.13.0", "0.4.11")
    assert "ray" in serve, "lm-eval's vLLM backend imports ray at load time"
    assert "axolotl" not in serve
    # the model is tokenized and loaded by the same libraries where it trains and where it is scored
    assert {name: train[name] for name in SHARED} == {name: serve[name] for name in SHARED}

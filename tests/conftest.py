"""Shared fixtures: the real data folder and the embedded model served once per session."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def _shared_data() -> Path | None:
    candidates = [os.environ.get("LEMA_DATA_DIR"), REPO.parent / "shared" / "data"]
    for candidate in candidates:
        if candidate and (Path(candidate) / "gsm8k" / "train.jsonl").exists():
            return Path(candidate)
    return None


@pytest.fixture(autouse=True)
def _endpoints_unchecked():
    """Each test starts with no endpoint checked. The client checks an endpoint once per process,
    keyed by URL and model; the scripted servers of two tests may get the same port from the OS,
    and the second test's check would then be skipped as already done."""
    from lema_plugin.llm import probe

    probe._checked.clear()
    yield


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data (or $LEMA_DATA_DIR): real GSM8K and MATH records."""
    path = _shared_data()
    if path is None:
        pytest.skip("real data folder not found (set LEMA_DATA_DIR)")
    return path


@pytest.fixture(scope="session")
def embedded_endpoint():
    """The embedded SmolLM2-135M-Instruct behind `transformers serve`, started once."""
    from lema_plugin.llm.embedded import embedded_server

    with embedded_server() as endpoint:
        yield endpoint


# The environment axolotl runs under in the tests: offline, no telemetry, no wandb.
AXOLOTL_ENV = {
    "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
    "AXOLOTL_DO_NOT_TRACK": "1", "WANDB_MODE": "disabled", "TOKENIZERS_PARALLELISM": "false",
}


@pytest.fixture(scope="module")
def axolotl_env():
    """Set AXOLOTL_ENV for a module's tests (and the processes they start); restored after it."""
    with pytest.MonkeyPatch.context() as patch:
        for key, value in AXOLOTL_ENV.items():
            patch.setenv(key, value)
        yield


@pytest.fixture(scope="module")
def model_dir() -> str:
    """The embedded model as a plain transformers folder (converted once into the cache)."""
    from lema_plugin.llm.embedded import ensure_model

    return str(ensure_model(progress=False))


_HOLD_STORE = """
import sys, time
from lema_plugin.store import RunStore
store = RunStore(sys.argv[1])
store.append({"id": "held"})
print("holding", flush=True)
time.sleep(120)
"""


@pytest.fixture
def hold_store():
    """Start another process that opens a store at PATH (taking its folder's lock), writes one
    record and waits; extra arguments end up in its command line. Killed at the end of the test
    (or earlier by the test, which then sees what a killed run leaves behind)."""
    processes = []

    def hold(path, *argv):
        process = subprocess.Popen([sys.executable, "-c", _HOLD_STORE, str(path), *argv], stdout=subprocess.PIPE, text=True)
        processes.append(process)
        assert process.stdout.readline().strip() == "holding"
        return process

    yield hold
    for process in processes:
        process.kill()
        process.wait()

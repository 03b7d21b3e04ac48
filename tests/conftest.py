"""Shared fixtures: the real data folder and the embedded model served once per session."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def _shared_data() -> Path | None:
    candidates = [os.environ.get("LEMA_DATA_DIR"), REPO.parent / "shared" / "data"]
    for candidate in candidates:
        if candidate and (Path(candidate) / "gsm8k" / "train.jsonl").exists():
            return Path(candidate)
    return None


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

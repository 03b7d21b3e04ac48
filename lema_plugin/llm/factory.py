"""The one way a command or a run makes its LLM client: its cache, Batch API ledger, budget and
cost preview all live in the run folder it writes, so a rerun of the same folder finds them."""
from __future__ import annotations

from pathlib import Path

from ..settings import ClientSettings


def make_client(run_dir: str | Path, settings: ClientSettings | None = None, *, cache_dir: str | Path | None = None,
                no_cache: bool = False, progress: bool = True, max_cost: float | None = None, estimate: bool = False):
    """An `LLMClient` for the run folder `run_dir`: responses cached in `run_dir/.cache` (or
    `cache_dir`; none with `no_cache`), batches recorded in `run_dir/.batches`, `max_cost` as a
    hard budget, and with `estimate` a preview that sends nothing."""
    from .client import LLMClient
    from .costs import Budget, Estimate

    settings = settings or ClientSettings()
    cache = False if no_cache else (cache_dir or Path(run_dir) / ".cache")
    return LLMClient(cache_dir=cache, progress=progress and not estimate, batch_dir=Path(run_dir) / ".batches",
                     budget=Budget(max_cost) if max_cost is not None else None,
                     estimate=Estimate() if estimate else None, **settings.model_dump())

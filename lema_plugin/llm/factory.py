"""The one way a command or a run makes its LLM client: its cache, Batch API ledger, budget and
cost preview all live in the run folder it writes, so a rerun of the same folder finds them."""
from __future__ import annotations

from pathlib import Path

from ..settings import ClientSettings


def make_client(run_dir: str | Path | None, settings: ClientSettings | None = None, *, cache_dir: str | Path | None = None,
                no_cache: bool = False, progress: bool = True, max_cost: float | None = None, estimate: bool = False):
    """An `LLMClient` for the run folder `run_dir`: responses cached in `run_dir/.cache` (or
    `cache_dir`; none with `no_cache`), batches recorded in `run_dir/.batches`, what it spends
    kept in the folder's spend ledger with `max_cost` as the folder's cap (`costs.Budget`), and
    with `estimate` a preview that sends and writes nothing. `run_dir` None: no folder (no
    ledger on disk, no batches)."""
    from .client import LLMClient
    from .costs import Budget, Estimate
    from .spend import SpendLedger

    settings = settings or ClientSettings()
    folder = Path(run_dir) if run_dir is not None else None
    cache = False if no_cache else (cache_dir or (folder / ".cache" if folder is not None else None))
    budget = Budget(max_cost, SpendLedger(folder, read_only=estimate))
    return LLMClient(cache_dir=cache, progress=progress and not estimate,
                     batch_dir=folder / ".batches" if folder is not None else None,
                     budget=budget, estimate=Estimate() if estimate else None, **settings.model_dump())

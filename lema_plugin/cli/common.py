"""Pieces every stage command shares: common options, error reporting, summary tables.

Stage commands stay thin: they declare their own options plus these, call one stage function and
print its summary. Bad input (a `RecordError` or `ValueError` from a stage) and a path that cannot
be written (a file in the way, no permission, a full disk) become one line on stderr and exit
status 1, never a traceback.
"""
from __future__ import annotations

import asyncio
import errno
import functools
from pathlib import Path
from typing import Callable, Sequence

import click

from lema_plugin.llm.embedded import EmbeddedModelError
from lema_plugin.records import RecordError

# OSErrors that describe the user's disk, not a bug: shown as "PATH: reason"
_PATH_ERRORS = (PermissionError, NotADirectoryError, IsADirectoryError, FileExistsError)
_DISK_ERRNOS = {errno.ENOSPC, errno.EROFS, errno.EDQUOT}


def friendly_errors(func: Callable) -> Callable:
    """Turn bad-input errors raised by a command into a one-line `click.ClickException`."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except click.ClickException:
            raise
        except (RecordError, ValueError, KeyError, FileNotFoundError, EmbeddedModelError) as exc:
            message = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
            raise click.ClickException(str(message)) from None
        except OSError as exc:
            if not (isinstance(exc, _PATH_ERRORS) or exc.errno in _DISK_ERRNOS):
                raise
            where = f"{exc.filename}: " if exc.filename else ""
            raise click.ClickException(f"{where}{exc.strerror or exc}") from None

    return wrapper


def run_async(coro, client=None):
    """Run a stage coroutine (closing `client`'s connections after it); Ctrl-C exits with
    status 130, keeping the records written so far."""

    async def run():
        try:
            return await coro
        finally:
            if client is not None:
                await client.aclose()

    try:
        return asyncio.run(run())
    except KeyboardInterrupt:
        click.echo("interrupted: records written so far are kept; run the same command again to resume", err=True)
        raise SystemExit(130) from None


def out_option(func: Callable) -> Callable:
    return click.option(
        "--out",
        "out_dir",
        required=True,
        type=click.Path(file_okay=False, path_type=Path),
        help="Run folder: outputs, summary and (by default) the response cache go here. Re-running with the same folder resumes.",
    )(func)


def client_options(func: Callable) -> Callable:
    """--concurrency, --cache-dir, --no-cache, --timeout, --max-retries, --quiet."""
    options = [
        click.option("--concurrency", default=16, show_default=True, type=click.IntRange(1), help="Requests in flight at once."),
        click.option(
            "--cache-dir",
            type=click.Path(file_okay=False, path_type=Path),
            help="Response cache folder (default: OUT/.cache).",
        ),
        click.option("--no-cache", is_flag=True, help="Do not read or write the response cache."),
        click.option("--timeout", default=120.0, show_default=True, type=click.FloatRange(0, min_open=True), help="Seconds per request."),
        click.option("--max-retries", default=5, show_default=True, type=click.IntRange(0), help="Retries per failed request."),
        click.option("--quiet", "-q", is_flag=True, help="No progress bar."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def make_client(out_dir: Path, concurrency: int, cache_dir: Path | None, no_cache: bool, timeout: float, max_retries: int, quiet: bool):
    """The one LLM client, with its cache in the run folder unless told otherwise."""
    from lema_plugin.llm import LLMClient

    cache = False if no_cache else (cache_dir or Path(out_dir) / ".cache")
    return LLMClient(cache_dir=cache, concurrency=concurrency, timeout=timeout, max_retries=max_retries, progress=not quiet)


def format_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A plain aligned text table (numbers right-aligned), for summaries printed at the end."""
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)]
    numeric = [all(_is_number(row[i]) for row in rows) and bool(rows) for i in range(len(headers))]

    def line(values: Sequence[str]) -> str:
        return "  ".join(v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric)).rstrip()

    return "\n".join([line(list(headers)), line(["-" * w for w in widths]), *(line(r) for r in cells)])


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) or value is None


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)

"""Pieces every stage command shares: common options, error reporting, running a stage.

Stage commands stay thin: they declare their options, open what they need, call one stage
function and print its summary. A `LemaError` (bad input, options, recipe or endpoint) becomes
one line on stderr (every API key scrubbed) and its exit status (1; 4 when nothing was produced, 5
when requests finally failed; 3 and 75 for the clean stops of a budget and of pending batches: see
`lema_plugin.errors`); Ctrl-C exits 130 and SIGTERM 143, keeping what was written; any other
exception is a bug and keeps its traceback. A path that cannot be read or written (missing, a
file in the way, no permission, a full disk) is the user's disk, not a bug: one line too.
"""
from __future__ import annotations

import asyncio
import contextlib
import errno
import functools
import math
import signal
import threading
from pathlib import Path
from typing import Callable

import click

from lema_plugin.cli.options import settings_options
from lema_plugin.errors import (CLEAN_STOPS, EXIT_INTERRUPTED, EXIT_TERMINATED, LemaError, NothingProduced,
                                RequestsFailed)

from lema_plugin.llm.types import SPEC_GRAMMAR

# shown under the options of every command that takes an endpoint spec; \b keeps it unwrapped
SPEC_EPILOG = f"""\b
SPEC, an OpenAI-compatible endpoint:
  {SPEC_GRAMMAR}
  NAME labels records and summaries. Keys: key_env=VAR sends $VAR, which must be set; a URL
  without key_env is a keyless server (vLLM, llama.cpp, embedded); without @URL the model is on
  $OPENAI_BASE_URL, else the OpenAI API, with $OPENAI_API_KEY, which must be set. price is USD
  per 1M prompt/completion tokens (the budget and --estimate use it); mode=batch (or
  completion+batch) goes through the OpenAI Batch API; concurrency, timeout, rpm and tpm limit
  this endpoint alone; `embedded` is the built-in SmolLM2-135M-Instruct."""

INTERRUPTED = "interrupted: records written so far are kept; run the same command again to resume"
TERMINATED = "terminated (SIGTERM): records written so far are kept; run the same command again to resume"


class Dollars(click.ParamType):
    """A budget in USD: a finite number of at least 0 (nan or inf would turn the budget off)."""

    name = "usd"

    def convert(self, value, param, ctx):
        try:
            amount = float(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not a number of USD", param, ctx)
        if not (math.isfinite(amount) and amount >= 0):
            self.fail(f"{value!r}: a budget must be a finite number of USD of at least 0", param, ctx)
        return amount


DOLLARS = Dollars()

# OSErrors that describe the user's disk, not a bug: shown as "PATH: reason"
_PATH_ERRORS = (FileNotFoundError, PermissionError, NotADirectoryError, IsADirectoryError, FileExistsError)
_DISK_ERRNOS = {errno.ENOSPC, errno.EROFS, errno.EDQUOT}


class Terminated(KeyboardInterrupt):
    """SIGTERM (a `kill`, a scheduler ending a job): handled like Ctrl-C, with its own status."""


def _terminate(signum, frame):
    raise Terminated()


@contextlib.contextmanager
def _sigterm_as_interrupt():
    """While a command runs, SIGTERM stops it the way Ctrl-C does: what was written is kept."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    before = signal.signal(signal.SIGTERM, _terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, before)


def friendly_errors(func: Callable) -> Callable:
    """Map the one user-error type to a one-line `click.ClickException` (no key in it), Ctrl-C
    to exit 130 and SIGTERM to exit 143, each with a message."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        from lema_plugin.keys import guard_logging, scrub

        guard_logging()
        try:
            with _sigterm_as_interrupt():
                return func(*args, **kwargs)
        except LemaError as exc:
            if exc.exit_code in CLEAN_STOPS:  # a clean stop, not a failure: batches pending, budget reached
                click.echo(scrub(str(exc)), err=True)
                raise SystemExit(exc.exit_code) from None
            error = click.ClickException(scrub(str(exc)))
            error.exit_code = exc.exit_code
            raise error from None
        except Terminated:
            click.echo(TERMINATED, err=True)
            raise SystemExit(EXIT_TERMINATED) from None
        except KeyboardInterrupt:
            click.echo(INTERRUPTED, err=True)
            raise SystemExit(EXIT_INTERRUPTED) from None
        except OSError as exc:
            if not (isinstance(exc, _PATH_ERRORS) or exc.errno in _DISK_ERRNOS):
                raise
            where = f"{exc.filename}: " if exc.filename else ""
            raise click.ClickException(scrub(f"{where}{exc.strerror or exc}")) from None

    return wrapper


def check_outcome(produced: int, what: str, failed: int = 0, judge_pending: int = 0, reasons: str = "") -> None:
    """After a command printed its summary: exit 5 when `failed` requests finally failed (or
    replies still wait for a judge whose requests failed), 4 when it produced no `what`, so
    `lema sample ... && lema correct ...` stops on an empty result."""
    if failed:
        raise RequestsFailed(f"{failed} request{'s' if failed != 1 else ''} finally failed{reasons or ' (their reasons are in the records: error, detail)'}; "
                             "run the same command again to retry only those")
    if judge_pending:
        raise RequestsFailed(f"{judge_pending} repl{'ies' if judge_pending != 1 else 'y'} still wait for the judge "
                             f"(its requests failed{reasons}); they are not stored: run the same command again to ask it again")
    if not produced:
        raise NothingProduced(f"no {what} produced")


def run_async(coro, client=None):
    """Run a stage coroutine, closing `client`'s connections after it."""

    async def run():
        try:
            return await coro
        finally:
            if client is not None:
                await client.aclose()

    return asyncio.run(run())


def out_option(func: Callable) -> Callable:
    return click.option(
        "--out",
        "out_dir",
        required=True,
        type=click.Path(file_okay=False, path_type=Path),
        help="Run folder: outputs, summary and (by default) the response cache go here. Re-running with the same folder resumes.",
    )(func)


def fresh_option(func: Callable | None = None, decisive: tuple[str, ...] = ()) -> Callable:
    """--fresh: start the run folder over (its outputs move aside; the response cache stays).
    `decisive` names the options whose values decide the records (`settings.decisive`): a rerun
    into the same folder with another value of one of them needs --fresh, and the help says so."""
    which = f" ({', '.join(decisive)})" if decisive else ""

    def decorate(func: Callable) -> Callable:
        return click.option(
            "--fresh", is_flag=True,
            help="Start OUT over: move its outputs to OUT/replaced-<time>/ first (the response cache stays). "
            f"Needed to rerun into a folder with other sampling settings{which}.",
        )(func)

    return decorate(func) if func is not None else decorate


def start_fresh(out_dir: Path, fresh: bool, everything: bool = False) -> None:
    """With --fresh, move what earlier runs wrote in `out_dir` aside and say where."""
    if fresh:
        from lema_plugin.manifest import start_over

        moved = start_over(out_dir, everything=everything)
        if moved is not None:
            click.echo(f"earlier outputs moved to {moved}", err=True)


def client_options(func: Callable) -> Callable:
    """The client's settings as options (--concurrency, --timeout, --max-retries, generated from
    `ClientSettings`), plus --cache-dir, --no-cache and --quiet; the command gets `client_settings`."""
    from lema_plugin.settings import ClientSettings

    options = [
        click.option(
            "--cache-dir",
            type=click.Path(file_okay=False, path_type=Path),
            help="Response cache folder.",
            show_default="OUT/.cache",
        ),
        click.option("--no-cache", is_flag=True, help="Do not read or write the response cache."),
        click.option("--quiet", "-q", is_flag=True, help="No progress bar."),
        click.option("--max-cost", type=DOLLARS, metavar="USD", show_default="no limit",
                     help="Hard budget of the run folder (OUT), over this command and every earlier one into it: stop "
                     "cleanly before the worst case of the next request or batch would cross it (endpoints priced "
                     "with ;price=). Run again with a larger one to continue."),
        click.option("--estimate", is_flag=True,
                     help="Send nothing and write nothing: print the requests, tokens and dollars (online and batch) this command "
                     "would spend."),
    ]
    for option in reversed(options):
        func = option(func)
    return settings_options(ClientSettings, into="client_settings")(func)


def make_client(out_dir: Path, client_settings, cache_dir: Path | None = None, no_cache: bool = False, quiet: bool = False,
                max_cost: float | None = None, estimate: bool = False):
    """The one LLM client (`llm.factory.make_client`), quiet when `lema -q` or `-q` asked."""
    from lema_plugin.llm.factory import make_client as factory

    ctx = click.get_current_context(silent=True)
    quiet = quiet or bool(ctx and ctx.find_root().meta.get("lema.quiet"))  # `lema -q CMD` as well as `lema CMD -q`
    return factory(out_dir, client_settings, cache_dir=cache_dir, no_cache=no_cache, progress=not quiet,
                   max_cost=max_cost, estimate=estimate)


def print_outcome(client, summary) -> None:
    """A stage's summary and this run's usage, or, with --estimate, the cost preview alone."""
    if client.estimate is not None:
        click.echo(client.estimate.table())
        return
    click.echo("\n".join(summary.lines()))
    for warning in getattr(summary, "warnings", lambda: [])():
        click.echo(warning, err=True)
    lines = client.usage_lines()
    if lines:
        click.echo("\nthis run:\n" + "\n".join(lines))

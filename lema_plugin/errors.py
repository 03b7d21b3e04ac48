"""The one error base for things a user can fix.

Every error that means "your input, your recipe, your options or your endpoint is wrong" derives
from `LemaError`; the CLI shows those as one line and exits non-zero. Anything else that escapes
a command is a bug in lema-plugin and keeps its traceback, so it can be reported and fixed rather
than mistaken for bad input.

The subclasses also derive from `ValueError` where they replace one, so library callers that
caught `ValueError` keep working.
"""
from __future__ import annotations

# Exit statuses of every `lema` command (listed in the README and in `lema --help`).
EXIT_OK = 0  # everything asked for is done
EXIT_ERROR = 1  # bad input, options, recipe, path or endpoint: one line names what to fix
EXIT_USAGE = 2  # a bad command line (click's own status)
EXIT_BUDGET = 3  # --max-cost reached: a clean stop, what was answered is kept; run again with more
EXIT_EMPTY = 4  # the command produced nothing (no mistakes, corrections, examples...)
EXIT_FAILED = 5  # some requests finally failed: what arrived is kept, run again to retry the rest
EXIT_PENDING = 75  # requests wait in Batch API batches: a clean stop; run again later to collect
EXIT_INTERRUPTED = 130  # Ctrl-C: what was written is kept
EXIT_TERMINATED = 143  # SIGTERM (128 + 15), handled like Ctrl-C: what was written is kept
CLEAN_STOPS = (EXIT_BUDGET, EXIT_PENDING)  # not failures: shown as a plain line, without "Error:"


class LemaError(Exception):
    """A user error: the message names what to fix (file, line, field, option or key)."""

    exit_code = EXIT_ERROR


class ConfigError(LemaError, ValueError):
    """Settings or options that cannot work together (a bad value, an unknown name)."""


class EndpointError(LemaError, ValueError):
    """An endpoint that is malformed or cannot be used."""


class ToolError(LemaError):
    """An external tool (axolotl, lm_eval) that the run hands on to failed or is missing."""


class RequestsFailed(LemaError):
    """Some requests of a stage finally failed (or its first ones all did): the records that
    arrived are kept and a rerun asks only for the rest."""

    exit_code = EXIT_FAILED


class NothingProduced(LemaError):
    """A command ran but produced nothing for the next stage to use, so `a && b` stops here.
    `report` is what the command had to show before it stopped (a run's summary), if anything."""

    exit_code = EXIT_EMPTY

    def __init__(self, message: str, report=None):
        super().__init__(message)
        self.report = report

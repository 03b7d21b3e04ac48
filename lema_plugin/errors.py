"""The one error base for things a user can fix.

Every error that means "your input, your recipe, your options or your endpoint is wrong" derives
from `LemaError`; the CLI shows those as one line and exits non-zero. Anything else that escapes
a command is a bug in lema-plugin and keeps its traceback, so it can be reported and fixed rather
than mistaken for bad input.

The subclasses also derive from `ValueError` where they replace one, so library callers that
caught `ValueError` keep working.
"""
from __future__ import annotations


class LemaError(Exception):
    """A user error: the message names what to fix (file, line, field, option or key)."""


class ConfigError(LemaError, ValueError):
    """Settings or options that cannot work together (a bad value, an unknown name)."""


class EndpointError(LemaError, ValueError):
    """An endpoint that is malformed or cannot be used."""


class ToolError(LemaError):
    """An external tool (axolotl, lm_eval) that the run hands on to failed or is missing."""

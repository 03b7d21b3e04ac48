"""Canonical text for a MATH-style final answer.

Two answers that differ only in presentation (`\\dfrac` vs `\\frac`, `$`, `\\text{ cm}`, `x = 3`,
`^\\circ`, `\\%`, thousands separators, `\\left(`, spacing commands) normalize to the same string,
so most correct answers are recognised by plain string equality without sympy.
"""
from __future__ import annotations

import re

MAX_ANSWER_CHARS = 500  # a final answer longer than this is not an answer we try to read

_REMOVE = (
    "\\displaystyle", "\\textstyle", "\\!", "\\,", "\\;", "\\:", "\\>", "\\qquad", "\\quad",
    "\\$", "$", "\\%", "%", "^{\\circ}", "^\\circ", "\\circ", "\\degree", "°", "^{\\prime}",
    "\\bigl", "\\bigr", "\\Bigl", "\\Bigr", "\\big", "\\Big",
)
_REPLACE = (
    ("\\dfrac", "\\frac"), ("\\tfrac", "\\frac"), ("\\cfrac", "\\frac"),
    ("\\dbinom", "\\binom"), ("\\tbinom", "\\binom"), ("{,}", ","), ("\u2212", "-"),
    ("\u221e", "\\infty"), ("\\infinity", "\\infty"), ("\u03c0", "\\pi"), ("\\le ", "\\leq "),
    ("\\ge ", "\\geq "), ("\\lbrace", "\\{"), ("\\rbrace", "\\}"), ("\\lvert", "|"), ("\\rvert", "|"),
    ("\\colon", ":"), ("~", " "), ("\n", " "),
)
_ESCAPED_SPACE = re.compile(r"(?<!\\)\\ ")  # "\ " but not the row break "\\ "
_LEFT_RIGHT = re.compile(r"\\(?:left|right)(?![a-zA-Z])")
_TEXT_CMD = re.compile(
    r"\\(?:text|textbf|textit|textrm|textnormal|textsf|texttt|mathrm|mathbf|mathit|mathsf|"
    r"mbox|hbox|boldsymbol|operatorname\*?)\s*\{([^{}]*)\}"
)
_CHOICE = re.compile(r"\(?([A-E])\)?")
# number followed by unit words ("5 cm", "12 square units", "3\text{ inches}^2")
_UNITS = re.compile(r"(?<=\s)(?:[a-zA-Z]{2,}\b\.?\s*)+(?:\^\{?[23]\}?)?\s*$")  # after a space: 3xy^2 keeps xy
_AND_OR = re.compile(r"\s+(?:and|or)\s+")
_VAR_EQ = re.compile(r"^\s*(?:[a-zA-Z](?:_\{?\w+\}?)?|\\[a-zA-Z]+)\s*(?:=|\\in(?![a-zA-Z]))(?!=)")
_SPACE = re.compile(r"(\\[a-zA-Z]+)\s+(?=[a-zA-Z])|\s+")
_FRAC_SHORT = (
    (re.compile(r"\\frac(\w)(\w)"), r"\\frac{\1}{\2}"),
    (re.compile(r"\\frac(\w)\{"), r"\\frac{\1}{"),
    (re.compile(r"\\frac\{([^{}]*)\}(\w)"), r"\\frac{\1}{\2}"),
    (re.compile(r"\\sqrt(\w)"), r"\\sqrt{\1}"),
)
_THOUSANDS = re.compile(r"-?\d{1,3}(?:,\d{3})+(?:\.\d+)?")
_LEADING_DOT = re.compile(r"(?<![\d}])\.(?=\d)")


def _space_or_command(match: re.Match) -> str:
    command = match.group(1)
    return command + " " if command else ""


def _strip_variables(text: str) -> str:
    """`x = 3` -> `3`; `x = 1, y = 2` -> `1, 2`; `x \\in [0, 1]` -> `[0, 1]`."""
    equals = text.count("=")
    if equals <= 1:
        return _VAR_EQ.sub("", text, count=1) if equals or "\\in" in text else text
    parts = text.split(",")
    if all(_VAR_EQ.match(part) for part in parts):
        return ",".join(_VAR_EQ.sub("", part, count=1) for part in parts)
    return text


def strip_delimiters(text: str) -> str:
    """Remove the math delimiters around a whole answer: `$..$`, `$$..$$`, `\\(..\\)`, `\\[..\\]`."""
    text = text.strip()
    changed = True
    while changed and text:
        changed = False
        for left, right in (("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]")):
            if len(text) > len(left) + len(right) and text.startswith(left) and text.endswith(right):
                text = text[len(left):-len(right)].strip()
                changed = True
                break
    return text


def normalize_math(answer: str) -> str:
    """Canonical string for a MATH final answer (already extracted from the solution)."""
    text = strip_delimiters(answer)
    if len(text) > MAX_ANSWER_CHARS:
        return text[:MAX_ANSWER_CHARS]
    if "\\boxed" in text or "\\fbox" in text:
        from .extract import last_boxed  # local: extract imports this module

        text = last_boxed(text) or text
    for old, new in _REPLACE:
        if old in text:
            text = text.replace(old, new)
    if "\\ " in text:
        text = _ESCAPED_SPACE.sub(" ", text)
    for old in _REMOVE:
        if old in text:
            text = text.replace(old, "")
    if "\\left" in text or "\\right" in text:
        text = _LEFT_RIGHT.sub("", text)
    if "\\" in text:
        for _ in range(3):  # \text{...} may nest inside \mathbf{...}
            unwrapped = _TEXT_CMD.sub(r" \1 ", text)
            if unwrapped == text:
                break
            text = unwrapped
    text = text.strip().rstrip(".").strip()
    choice = _CHOICE.fullmatch(text)
    if choice:
        return choice.group(1)
    if any(ch.isdigit() for ch in text) and re.search(r"[a-zA-Z]{2}", text):
        stripped = _UNITS.sub("", text).rstrip()
        if stripped and any(ch.isdigit() for ch in stripped):
            text = stripped
    if " and " in text or " or " in text:
        text = _AND_OR.sub(",", text)
    text = _strip_variables(text)
    text = _SPACE.sub(_space_or_command, text).strip()
    if "\\frac" in text or "\\sqrt" in text:
        for pattern, replacement in _FRAC_SHORT:
            text = pattern.sub(replacement, text)
    if "," in text and _THOUSANDS.fullmatch(text):
        text = text.replace(",", "")
    if "." in text:
        text = _LEADING_DOT.sub("0.", text)
    return text.rstrip(".")

"""LaTeX scanning shared by extraction, normalization and comparison.

One table of math delimiters, one reader for `\\boxed{}` arguments and one bracket scanner, so
the three stages of grading agree on where an answer starts and ends. Nothing here imports the
rest of the grader: every other module may import this one.
"""
from __future__ import annotations

import re
from typing import Iterator, NamedTuple

# Math delimiters, longest first so `$$` is never read as two `$`.
DELIMITERS = (("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]"))
# A whole math span, bounded in length (used to find the formula that closes a solution).
MATH_SPAN = re.compile(r"\$\$([^$]{1,400})\$\$|\$([^$]{1,400})\$|\\\((.{1,400}?)\\\)|\\\[(.{1,400}?)\\\]", re.S)

_BRACE_TOKENS = re.compile(r"\\.|[{}]", re.S)
_BOX = re.compile(r"\\(?:boxed|fbox)(?![a-zA-Z])")
_BOX_TOKEN = re.compile(r"[^\s$]+")
BRACKETS = re.compile(r"\\\{|\\\}|\\langle|\\rangle|\\\\|[()\[\]{},&;]|\\cup")
OPENERS = ("(", "[", "{", "\\{", "\\langle")
CLOSERS = (")", "]", "}", "\\}", "\\rangle")


def math_span(text: str) -> str | None:
    """`text` starts with a math delimiter: the content up to its closing delimiter."""
    for left, right in DELIMITERS:
        if text.startswith(left):
            return text[len(left):math_span_end(text, left, right)]
    return None


def math_span_end(text: str, left: str, right: str, start: int = 0) -> int:
    """Index of the delimiter closing the span that opens at `start` (len(text) if unclosed)."""
    close = text.find(right, start + len(left))
    while right == "$" and close > 0 and text[close - 1] == "\\":  # \$ is a dollar sign
        close = text.find(right, close + 1)
    return len(text) if close < 0 else close


def strip_delimiters(text: str) -> str:
    """Remove the math delimiters around a whole answer: `$..$`, `$$..$$`, `\\(..\\)`, `\\[..\\]`."""
    text = text.strip()
    changed = True
    while changed and text:
        changed = False
        for left, right in DELIMITERS:
            if len(text) > len(left) + len(right) and text.startswith(left) and text.endswith(right):
                text = text[len(left):-len(right)].strip()
                changed = True
                break
    return text


class Box(NamedTuple):
    start: int  # where `\boxed` starts
    end: int  # just past the closing brace
    content: str


def box_at(text: str, start: int) -> Box | None:
    """The `\\boxed`/`\\fbox` command that starts at `start` (nested braces handled)."""
    i = text.find("x", start + 1) + 1  # just past \box / \fbox
    if text.startswith("ed", i):
        i += 2
    n = len(text)
    while i < n and text[i] in " \t":
        i += 1
    if i >= n:
        return None
    if text[i] != "{":  # `\boxed 5`: one token
        match = _BOX_TOKEN.match(text, i)
        return Box(start, match.end(), match.group(0).rstrip(".")) if match else None
    depth = 0
    for token in _BRACE_TOKENS.finditer(text, i):
        ch = token.group(0)
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return Box(start, token.end(), text[i + 1:token.start()].strip())
    return None


def boxes(text: str) -> list[Box]:
    """Every readable box in `text`, in order (a box inside a box counts once, as the outer).

    One pass pairs every brace first, so a text full of unclosed `\\boxed{` costs linear time.
    """
    closing: dict[int, int] = {}
    stack: list[int] = []
    for token in _BRACE_TOKENS.finditer(text):
        ch = token.group(0)
        if ch == "{":
            stack.append(token.start())
        elif ch == "}" and stack:
            closing[stack.pop()] = token.start()
    found: list[Box] = []
    for match in _BOX.finditer(text):
        if found and match.start() < found[-1].end:
            continue
        i = match.end()
        while i < len(text) and text[i] in " \t":
            i += 1
        if i < len(text) and text[i] == "{":
            close = closing.get(i)
            if close is not None:
                found.append(Box(match.start(), close + 1, text[i + 1:close].strip()))
        else:
            box = box_at(text, match.start())
            if box is not None:
                found.append(box)
    return found


def last_box(text: str) -> Box | None:
    start = max(text.rfind("\\boxed"), text.rfind("\\fbox"))
    return box_at(text, start) if start >= 0 else None


def last_boxed(text: str) -> str | None:
    """Content of the last `\\boxed{...}` / `\\fbox{...}` in `text`, or None."""
    if not text:
        return None
    box = last_box(text)
    return box.content if box else None


def bracket_tokens(text: str) -> Iterator[re.Match]:
    return BRACKETS.finditer(text)


def split_top(text: str, separators: tuple[str, ...]) -> list[str] | None:
    """Split at separators outside any bracket; None if brackets do not balance."""
    parts, depth, last = [], 0, 0
    for token in BRACKETS.finditer(text):
        tok = token.group(0)
        if tok in OPENERS:
            depth += 1
        elif tok in CLOSERS:
            depth -= 1
            if depth < 0:
                return None
        elif depth == 0 and tok in separators:
            parts.append(text[last:token.start()])
            last = token.end()
    parts.append(text[last:])
    return parts


def enclosing(text: str) -> tuple[str, str, str] | None:
    """(open, close, inside) if the bracket that opens `text` closes at its very end.

    Bracket kinds may differ, as in the half-open interval `[0, 1)`.
    """
    left = next((b for b in ("\\{", "\\langle", "(", "[", "{") if text.startswith(b)), None)
    if left is None:
        return None
    depth = 0
    for token in BRACKETS.finditer(text):
        tok = token.group(0)
        if tok in OPENERS:
            depth += 1
        elif tok in CLOSERS:
            depth -= 1
            if depth == 0:
                if token.end() != len(text):
                    return None
                return left, tok, text[len(left):token.start()]
    return None

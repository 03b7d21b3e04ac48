"""Split a reasoning path into numbered steps, and render steps as "Step k: ...".

The corrector names the first wrong step by its number, so every path needs a stable list of
steps. Model output comes in several shapes, and the splitter handles each:

- paths that already label their steps ("Step 1: ...", "**Step 2.**", "### Step 3:") keep
  those steps, each whole, even across lines;
- otherwise every line is a unit, and a line holding several sentences is cut into sentences
  (so a one-paragraph answer still yields steps);
- bullet and numbered list markers are dropped, the item text is the unit;
- LaTeX display math (`$$...$$`, `\\[...\\]`, `\\begin{env}...\\end{env}`) and fenced code are
  kept whole; a display block that follows a line ending in ":" joins that line;
- a sentence cut never falls inside inline math, a number ("3.5", "1,000.25") or after a
  common abbreviation ("e.g.", "approx.").

Whitespace inside a step is collapsed to single spaces, so `render_steps` prints one step per
line and `split_steps(render_steps(s)) == s` for steps made by this module.
"""
from __future__ import annotations

import re

__all__ = ["split_steps", "render_steps"]

# "Step 3:" / "**Step 3.**" / "### Step 3)" at the start of a line.
_LABEL_AT_LINE_START = re.compile(r"^[ \t]*(?:#{1,6}[ \t]*)?(?:\*\*|__)?[ \t]*Step[ \t]+(\d+)[ \t]*[:.)](?:\*\*|__)?[ \t]*", re.I | re.M)
# "Step 3:" anywhere (only used when a paragraph carries several labels inline).
_LABEL_INLINE = re.compile(r"(?:(?<=\s)|^)(?:\*\*|__)?Step[ \t]+(\d+)[ \t]*:(?:\*\*|__)?[ \t]*")
_LIST_MARKER = re.compile(r"^[ \t]*(?:[-*+\u2022]|\d{1,3}[.)]|[a-z][.)])[ \t]+")
_DISPLAY_OPENERS = (
    (re.compile(r"^\s*\$\$"), re.compile(r"\$\$\s*$")),
    (re.compile(r"^\s*\\\["), re.compile(r"\\\]\s*$")),
    (re.compile(r"^\s*```"), re.compile(r"```\s*$")),
)
_BEGIN_ENV = re.compile(r"^\s*\\begin\{([^}]+)\}")
_ABBREVIATIONS = {
    "e.g", "i.e", "etc", "vs", "approx", "mr", "mrs", "ms", "dr", "st", "no", "fig", "eq", "cf",
    "jr", "sr", "inc", "ltd", "co", "mt", "min", "max", "hr", "hrs", "sec", "ft", "oz", "lb",
    "lbs", "pt", "pts",
}


def split_steps(text: str) -> list[str]:
    """Return the steps of a reasoning path, in order, each a non-empty single line."""
    if not text or not text.strip():
        return []
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    labelled = _split_labelled(text)
    if labelled is not None:
        return labelled
    steps: list[str] = []
    for unit, is_block, joins_previous in _units(text):
        if is_block:
            if joins_previous and steps:
                steps[-1] = f"{steps[-1]} {unit}"
            else:
                steps.append(unit)
        else:
            steps.extend(_sentences(unit))
    return [s for s in (_squash(s) for s in steps) if s]


def render_steps(steps: list[str]) -> str:
    """Render steps as "Step 1: ...\\nStep 2: ..." (one per line, numbered from 1)."""
    return "\n".join(f"Step {i}: {_squash(step)}" for i, step in enumerate(steps, 1))


def _squash(text: str) -> str:
    return " ".join(text.split())


def _split_labelled(text: str) -> list[str] | None:
    """Steps from existing "Step k" labels, or None when the text does not use them."""
    matches = list(_LABEL_AT_LINE_START.finditer(text))
    inline = list(_LABEL_INLINE.finditer(text))
    if len(inline) >= 2 and len(inline) > len(matches):
        matches = inline  # "Step 1: ... Step 2: ..." within one paragraph
    if not matches:
        return None
    steps: list[str] = []
    preamble = text[: matches[0].start()]
    if preamble.strip():
        steps.extend(split_steps(preamble))
    for match, following in zip(matches, matches[1:] + [None]):
        body = text[match.end() : following.start() if following else len(text)]
        if _squash(body):
            steps.append(_squash(body))
    return steps


def _units(text: str):
    """Yield (text, is_block, joins_previous): lines, or whole display-math / code blocks."""
    lines = text.split("\n")
    i = 0
    previous = ""
    while i < len(lines):
        line = lines[i]
        if not line.strip():
            i += 1
            continue
        end = _block_end(lines, i)
        if end is not None:
            block = "\n".join(lines[i : end + 1])
            yield _squash(block), True, previous.rstrip().endswith(":")
            previous = block
            i = end + 1
            continue
        item = _LIST_MARKER.sub("", line, count=1)
        yield item, False, False
        previous = line
        i += 1


def _block_end(lines: list[str], start: int) -> int | None:
    """If a display-math or code block opens at line `start`, return the index of its last line."""
    line = lines[start]
    for opener, closer in _DISPLAY_OPENERS:
        found = opener.search(line)
        if not found:
            continue
        rest = line[found.end() :]
        if closer.search(rest):
            return start  # opens and closes on one line
        for j in range(start + 1, len(lines)):
            if closer.search(lines[j]):
                return j
        return len(lines) - 1  # unclosed: keep the rest together rather than cut an equation
    env = _BEGIN_ENV.search(line)
    if env:
        end_marker = f"\\end{{{env.group(1)}}}"
        for j in range(start, len(lines)):
            if end_marker in lines[j]:
                return j
        return len(lines) - 1
    return None


def _sentences(unit: str) -> list[str]:
    """Cut one line into sentences without breaking inline math, numbers or abbreviations."""
    pieces: list[str] = []
    start = 0
    math_close: str | None = None  # closing delimiter while inside inline math
    depth = 0  # open (, [ outside math
    i, n = 0, len(unit)
    while i < n:
        ch = unit[i]
        if math_close is not None:
            if unit.startswith(math_close, i):
                i += len(math_close)
                math_close = None
                continue
            if ch == "\\":
                i += 2
                continue
            i += 1
            continue
        if unit.startswith("\\(", i):
            math_close, i = "\\)", i + 2
            continue
        if ch == "$":
            math_close, i = "$", i + 1
            if unit.startswith("$", i) or _is_currency(unit, i - 1):
                math_close = None  # "$$" inline, or "$5" money: not math
            continue
        if ch in "([":
            depth += 1
        elif ch in ")]" and depth:
            depth -= 1
        elif ch in ".!?" and depth == 0 and _ends_sentence(unit, i):
            j = i + 1
            while j < n and unit[j] in "\"')*.!?":
                j += 1
            pieces.append(unit[start:j])
            start = j
            i = j
            continue
        i += 1
    pieces.append(unit[start:])
    return [p.strip() for p in pieces if p.strip()]


def _is_currency(unit: str, dollar: int) -> bool:
    """`$` followed by a plain amount ("$12", "$0.20") and no closing `$` soon after it."""
    after = unit[dollar + 1 :]
    amount = re.match(r"\d[\d,]*(?:\.\d+)?", after)
    if not amount:
        return False
    rest = after[amount.end() :]
    # "$5$" is math holding a number; "$5 and $3" is money.
    return not rest.startswith("$")


def _ends_sentence(unit: str, i: int) -> bool:
    """Whether the mark at `i` ends a sentence: followed by a space and a sentence start."""
    j = i + 1
    while j < len(unit) and unit[j] in "\"')*.!?":
        j += 1
    if j >= len(unit) or not unit[j].isspace():
        return False  # "3.5", "e.g.," or the end of the line (handled by the caller)
    rest = unit[j:].lstrip()
    if not rest or not (rest[0].isupper() or rest[0].isdigit() or rest[0] in "$\\(\"'*"):
        return False
    if unit[i] == ".":
        word = re.search(r"([A-Za-z][A-Za-z.]*)$", unit[:i])
        if word:
            token = word.group(1).lower().rstrip(".")
            if token in _ABBREVIATIONS or "." in token:  # "approx.", "e.g." / "i.e."
                return False
    return True

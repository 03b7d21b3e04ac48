"""Canonical text for a MATH-style final answer.

Two answers that differ only in presentation (`\\dfrac` vs `\\frac`, `$`, `\\text{ cm}`, `x = 3`,
`(p, q) = (3, 2)`, `|AB| = 1`, labels that name the quantity (`A:B = 2:7`, `\\frac{PQ}{QR} = ...`,
`\\frac{dx}{dt} = ...`, `y' = ...`, `f(2) = ...`), `^\\circ`, `\\%`, thousands separators (commas
and spaces), `\\left(`, spacing commands, a bracketed `array`, `-2 \\le x \\le 7` for `[-2, 7]`,
`\\ne`/`!=` for `\\neq`, several answers split by semicolons, and labelled groups
`a=3,b=1;a=5,b=1` for `(3,1), (5,1)`) normalize to the same string, so most correct answers are
recognised by plain string equality without sympy. Every step is a linear scan, so an answer of
any length normalizes in bounded time. `normalize_relation` cleans an equation or inequality the
same way but keeps it whole, for `relations`.
"""
from __future__ import annotations

import re

from .latex import last_boxed, split_top, strip_delimiters

MAX_ANSWER_CHARS = 500  # longer text is never read as a sentence that states an answer

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
# a label before the answer: x =, \theta =, (p, q) =, |AB| =, AB =, \angle ABC =, f(x) =, x \approx, x \in
_NAME = r"(?:[a-zA-Z](?:_\{?\w+\}?)?|\\[a-zA-Z]+)"
_QUANTITY = rf"(?:[A-Z]{{1,3}}|{_NAME})"
# labels that name a quantity: A:B, AB:BC, \frac{PQ}{QR}, PQ/QR, \frac{dx}{dt}, \frac{d^2y}{dx^2}, y', f'(x),
# f(2), f^{-1}(3) (never a sum or a difference: `x + y = 5` is an equation, not a label)
_QUANTITY_LABEL = (
    rf"{_QUANTITY}(?:\s*:\s*{_QUANTITY})+|\\frac\{{\s*{_QUANTITY}\s*\}}\{{\s*{_QUANTITY}\s*\}}|[A-Z]{{1,3}}\s*/\s*[A-Z]{{1,3}}"
    rf"|\\frac\{{\s*d(?:\^\{{?\d\}}?)?\s*{_NAME}?\s*\}}\{{\s*d\s*{_NAME}(?:\^\{{?\d\}}?)?\s*\}}"
    rf"|{_NAME}'+(?:\(\s*[a-z]\s*\))?|[a-zA-Z](?:\^\{{-1\}})?\(\s*-?[\w.]{{1,6}}\s*\)"
)
_VAR_EQ = re.compile(
    rf"^\s*(?:{_NAME}|\(\s*{_NAME}(?:\s*,\s*{_NAME})+\s*\)|\|\s*[A-Z]{{1,3}}\s*\||[A-Z]{{2,3}}|\\overline\{{[A-Z]{{2,3}}\}}"
    rf"|m?\\angle\s*[A-Z]{{1,3}}|{_QUANTITY_LABEL})\s*(?:=|\\approx(?![a-zA-Z])|\\in(?![a-zA-Z]))(?!=)"
)
# a verdict word before the answer proper: `Yes. g(x) = x^2`, `\text{No}, 5`
_VERDICT = re.compile(r"\s*(?:\\text\{\s*)?(yes|no)\b\s*\}?\s*[.,;:!]?\s*\}?\s*(.+)", re.I | re.S)
# a trailing unit: 5\\text{ cm}, 1.07\\times 10^{16}\\text{ erg/s}, 3\\times10^8\\,\\mathrm{m} (not \\mathrm{i} or e)
_UNIT_TAIL = re.compile(
    r"\\(?:text|textrm|mathrm|mbox|textnormal|rm)\s*\{\s*(?!(?:i|e)\s*\})[a-zA-Z][a-zA-Z/.\-\s]*"
    r"(?:\^\{?-?\d\}?)?\s*\}(?:\s*\^\{?-?\d\}?)?\s*"
)
# `\\ne`, `!=`, `\\not=`, the sign itself: all `\\neq` (not `\\neg`, `\\newline`, `\\nexists`)
_NOT_EQUAL = re.compile(r"!=|\u2260|\\not\s*=|\\neq?(?![a-zA-Z])\s*")
_SPACING = ("\\,", "\\;", "\\:", "\\!", "\\ ", "\\quad", "\\qquad")
# a matrix written with outer brackets: \left[\begin{array}{cc}..\end{array}\right] after \left/\right go
_BRACKETED_MATRIX = re.compile(r"[\[(]\s*(\\begin\{(array|matrix)\}.*\\end\{\2\})\s*[\])]", re.S)
# inequalities: a chain `a < x <= b` or a one-sided `x > a`
_RELATION = re.compile(
    r"<=|>=|\\le(?:q(?:slant)?)?(?![a-zA-Z])|\\ge(?:q(?:slant)?)?(?![a-zA-Z])|\\lt(?![a-zA-Z])|\\gt(?![a-zA-Z])|<|>|\u2264|\u2265"
)
_LOWER = {"<": "(", "<=": "["}
_OR = re.compile(r"\s+or\s+|\\cup|\\vee")
_SPACE = re.compile(r"(\\[a-zA-Z]+)\s+(?=[a-zA-Z])|\s+")
_FRAC_SHORT = (
    (re.compile(r"\\frac(\w)(\w)"), r"\\frac{\1}{\2}"),
    (re.compile(r"\\frac(\w)\{"), r"\\frac{\1}{"),
    (re.compile(r"\\frac\{([^{}]*)\}(\w)"), r"\\frac{\1}{\2}"),
    (re.compile(r"\\sqrt(\w)"), r"\\sqrt{\1}"),
)
_THOUSANDS = re.compile(r"-?[1-9]\d{0,2}(?:,\d{3})+(?:\.\d+)?")  # not `0,125`
_LEADING_DOT = re.compile(r"(?<![\d}])\.(?=\d)")


def _space_or_command(match: re.Match) -> str:
    command = match.group(1)
    return command + " " if command else ""


def _drop_unit(text: str) -> str:
    """`5\\,\\mathrm{kg}` -> `5`: a unit command that ends an answer after a number."""
    start = max(text.rfind(command) for command in ("\\text", "\\mathrm", "\\mbox", "\\rm"))
    if start <= 0 or not _UNIT_TAIL.fullmatch(text, start):
        return text
    end = start
    while True:
        while end > 0 and text[end - 1] in " \t~":
            end -= 1
        gap = next((gap for gap in _SPACING if text.endswith(gap, 0, end)), None)
        if gap is None:
            break
        end -= len(gap)
    head = text[:end]
    if head and head[-1] in "0123456789})" and any(ch.isdigit() for ch in head):
        return head
    return text


def _relation(token: str) -> str:
    if token in ("<", "\\lt"):
        return "<"
    if token in (">", "\\gt"):
        return ">"
    return "<=" if token in ("<=", "\u2264") or token.startswith("\\le") else ">="


def _one_interval(piece: str, variable: list[str]) -> str | None:
    """`-2 <= x <= 7` -> `[-2,7]`, `x > 3` -> `(3,\\infty)`; None if `piece` is not such a chain."""
    tokens = _RELATION.split(piece)
    relations = [_relation(r) for r in _RELATION.findall(piece)]
    terms = [t.strip() for t in tokens]
    if len(terms) not in (2, 3) or not all(terms) or any("=" in t for t in terms):
        return None
    if len(terms) == 3:
        low, name, high = terms
        if relations[0][0] != relations[1][0]:
            return None
        if relations[0][0] == ">":  # 7 >= x >= -2
            low, high, relations = high, low, [r.replace(">", "<") for r in reversed(relations)]
        bounds = (_LOWER[relations[0]], low, high, ")" if relations[1] == "<" else "]")
    else:
        left, right = terms
        relation = relations[0]
        if re.fullmatch(_NAME, left):
            name, value = left, right
        elif re.fullmatch(_NAME, right):  # 3 < x reads x > 3
            name, value = right, left
            relation = relation.replace("<", "!").replace(">", "<").replace("!", ">")
        else:
            return None
        if relation.startswith("<"):
            bounds = ("(", "-\\infty", value, ")" if relation == "<" else "]")
        else:
            bounds = ("(" if relation == ">" else "[", value, "\\infty", ")")
    if not re.fullmatch(_NAME, name) or re.search(_RELATION, bounds[1] + bounds[2]):
        return None
    if variable and variable[0] != name:
        return None
    variable[:] = [name]
    return f"{bounds[0]}{bounds[1]},{bounds[2]}{bounds[3]}"


def _inequality_to_interval(text: str) -> str:
    """`x < 1 or x > 2` -> `(-\\infty,1)\\cup(2,\\infty)`; `-793 < a < 10` -> `(-793,10)`.

    Only chains in one variable with plain bounds; anything else is left as it is.
    """
    pieces = _OR.split(text)
    if len(pieces) == 1:
        pieces = split_top(text, (",",)) or [text]
    variable: list[str] = []
    intervals = []
    for piece in pieces:
        interval = _one_interval(piece, variable)
        if interval is None:
            return text
        intervals.append(interval)
    return "\\cup".join(intervals)


def _strip_variables(text: str) -> str:
    """`x = 3` -> `3`; `x = 1, y = 2` -> `1, 2`; `x \\in [0, 1]` -> `[0, 1]`."""
    equals = text.count("=")
    if equals <= 1:
        return _VAR_EQ.sub("", text, count=1) if equals or "\\in" in text or "\\approx" in text else text
    parts = text.split(",")
    if all(_VAR_EQ.match(part) for part in parts):
        return ",".join(_VAR_EQ.sub("", part, count=1) for part in parts)
    return text


def labelled_tuple(answer: str) -> str | None:
    """`a = 3, b = 1` -> `(3,1)`: values given one label each (labels all different), in order."""
    text = _clean(answer) if "=" in answer else ""
    parts = split_top(text, (",",)) if text.count("=") > 1 else None
    if not parts or len(parts) < 2:
        return None
    labels, values = [], []
    for part in parts:
        match = _VAR_EQ.match(part)
        if match is None or part.count("=") != 1:
            return None
        labels.append(part[:match.end()].replace(" ", ""))
        values.append(part[match.end():].strip())
    if len(set(labels)) != len(labels) or not all(values):
        return None
    return "(" + ",".join(values) + ")"


def _several_answers(text: str) -> str:
    """`a=3,b=1;a=5,b=1` -> `(3,1), (5,1)`; `3; 5` -> `3, 5`; labelled groups joined by `or`/`and`
    likewise. One labelled group alone stays a list (`k = 45, n = 2` is `45, 2`)."""
    pieces = split_top(text, (";",)) if ";" in text else None
    if not pieces or len(pieces) < 2 or not all(piece.strip() for piece in pieces):
        if "=" not in text or not (" or " in text or " and " in text):
            return text
        pieces = _AND_OR.split(text)
        if len(pieces) < 2 or not all(labelled_tuple(piece) for piece in pieces):
            return text
    return ", ".join(labelled_tuple(piece) or piece.strip() for piece in pieces)


def split_verdict(answer: str) -> tuple[str, str] | None:
    """(`yes`/`no`, the rest) for an answer that opens with a verdict word and goes on with a
    formula (`Yes. g(x) = x^2`), else None."""
    match = _VERDICT.fullmatch(answer.strip().strip("$").strip())
    if match is None or not any(ch in match.group(2) for ch in "=\\$0123456789^("):
        return None
    return match.group(1).lower(), match.group(2)


def _clean(answer: str) -> str:
    """The presentation-only steps shared by answers and relations: delimiters, boxes, spellings
    (`\\dfrac`, `\\ne`, `!=`), spacing commands, `\\left`/`\\right`, units in `\\text{}`, text wrappers."""
    text = strip_delimiters(answer)
    if "\\boxed" in text or "\\fbox" in text:
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
    if "\\begin" in text:  # [\begin{array}{cc}...\end{array}]: the brackets of an array matrix
        matrix = _BRACKETED_MATRIX.fullmatch(text.strip())
        text = matrix.group(1) if matrix else text
    if "!=" in text or "\u2260" in text or "\\n" in text:
        text = _NOT_EQUAL.sub(r"\\neq ", text)
    if "\\text" in text or "\\mathrm" in text or "\\mbox" in text or "\\rm" in text:
        text = _drop_unit(text)
    if "\\" in text:
        for _ in range(3):  # \text{...} may nest inside \mathbf{...}
            unwrapped = _TEXT_CMD.sub(r" \1 ", text)
            if unwrapped == text:
                break
            text = unwrapped
    return text.strip().rstrip(".").strip()


def normalize_relation(answer: str) -> str:
    """An equation or inequality cleaned like an answer, but whole: its labels and relation
    symbols stay (`y = \\dfrac{x}{2}` -> `y=\\frac{x}{2}`, `x \\ne 3` -> `x\\neq3`)."""
    text = _SPACE.sub(_space_or_command, _clean(answer)).strip()
    if "\\frac" in text or "\\sqrt" in text:
        for pattern, replacement in _FRAC_SHORT:
            text = pattern.sub(replacement, text)
    if "." in text:
        text = _LEADING_DOT.sub("0.", text)
    return text


def normalize_math(answer: str) -> str:
    """Canonical string for a MATH final answer (already extracted from the solution)."""
    text = _clean(answer)
    choice = _CHOICE.fullmatch(text)
    if choice:
        return choice.group(1)
    if any(ch.isdigit() for ch in text) and re.search(r"[a-zA-Z]{2}", text):
        stripped = _UNITS.sub("", text).rstrip()
        if stripped and any(ch.isdigit() for ch in stripped):
            text = stripped
    if "<" in text or ">" in text or "\\le" in text or "\\ge" in text or "\\lt" in text or "\\gt" in text:
        text = _inequality_to_interval(text)
    if ";" in text or ("=" in text and (" or " in text or " and " in text)):
        text = _several_answers(text)
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

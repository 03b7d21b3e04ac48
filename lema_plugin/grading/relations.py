"""Equations and inequalities compared as relations, not as text.

`3x-6y+9=0` and `y=\\frac{x}{2}+\\frac{3}{2}` are one line, `\\frac{x^2}{4}+\\frac{y^2}{9}=1` and
`9x^2+4y^2=36` one ellipse, `-y \\ge -4` and `y \\le 4` one half-plane, `2x > 6` and `(3, \\infty)`
one set. A relation `L op R` is read as `D = L - R op 0`, with `>` and `\\ge` turned round into
`<` and `\\le`. Two equations (or two `\\neq`) are the same when `D1 = c D2` for a constant `c != 0`;
two inequalities when `c > 0` and both are strict or both are not. `c` is found numerically at
independent points (`evaluate.POINTS`), so only relations that `evaluate` can read (polynomials,
fractions, roots, powers, common functions) in at most four variables are decided here; anything
else is left to the other rules, never guessed.

A linear inequality in one variable (`-2x + 1 \\ge 5`) also compares with an interval, and
`x \\neq a` with `(-\\infty, a) \\cup (a, \\infty)`.
"""
from __future__ import annotations

import math
import re
from typing import NamedTuple

from .evaluate import POINTS, close, names, numeric_value
from .latex import enclosing, split_top

MAX_NAMES = len(POINTS[0])

_TOKEN = re.compile(
    r"<=|>=|\\neq(?![a-zA-Z])|\\(?:le|ge)(?:q(?:slant)?)?(?![a-zA-Z])|\\[lg]t(?![a-zA-Z])|<|>|=|\u2264|\u2265"
)
_OPEN, _CLOSE = "({[", ")}]"
_INFINITY = {"\\infty": math.inf, "+\\infty": math.inf, "-\\infty": -math.inf}


class Relation(NamedTuple):
    left: str
    op: str  # "=", "!=", "<" or "<="
    right: str


def _op(token: str) -> tuple[str, bool]:
    """(operator, whether the sides swap): `>=` is `<=` read right to left."""
    if token == "=":
        return "=", False
    if token == "\\neq":
        return "!=", False
    if token in ("<", "\\lt"):
        return "<", False
    if token in (">", "\\gt"):
        return "<", True
    if token in ("<=", "\u2264") or token.startswith("\\le"):
        return "<=", False
    return "<=", True


def parse_relation(text: str) -> Relation | None:
    """`L op R` with exactly one relation symbol outside brackets, else None."""
    found = None
    for match in _TOKEN.finditer(text):
        before = text[:match.start()]
        if sum(before.count(ch) for ch in _OPEN) != sum(before.count(ch) for ch in _CLOSE):
            continue  # inside brackets: `f(x=1)` or a set-builder, not this answer's relation
        if found is not None:
            return None  # a chain or several relations: intervals and lists handle those
        found = match
    if found is None:
        return None
    left, right = text[:found.start()].strip(), text[found.end():].strip()
    if not left or not right:
        return None
    op, swap = _op(found.group(0))
    return Relation(right, op, left) if swap else Relation(left, op, right)


def _difference(relation: Relation, values: dict[str, float]) -> tuple[float, float] | None:
    """(L - R, the size of the larger side) at `values`, None when a side cannot be evaluated."""
    left, right = numeric_value(relation.left, values), numeric_value(relation.right, values)
    if left is None or right is None:
        return None
    return left - right, max(abs(left), abs(right), 1.0)


def _tiny(value: float, size: float) -> bool:
    return abs(value) <= 1e-9 * size


def _names(relation: Relation) -> frozenset[str]:
    return names(relation.left) | names(relation.right)


def same_relation(first: Relation, second: Relation) -> bool | None:
    """Whether two relations describe the same set (see the module docstring); None: undecided."""
    first_names, second_names = _names(first), _names(second)
    if first_names != second_names:
        for one, other in ((first, second), (second, first)):
            # `x = 2x + 3` is an equation in x, not a value labelled x: it is not `y = 2x + 3`
            if one.op == "=" and re.fullmatch(r"[a-zA-Z]", one.left) and one.left in names(one.right):
                return False
        return None
    if not first_names or len(first_names) > MAX_NAMES:
        return None
    if first.op != second.op:
        return False  # an equation is no inequality, and `<` is not `\le`
    order = sorted(first_names)
    ratios = []
    for point in POINTS:
        values = dict(zip(order, point))
        a, b = _difference(first, values), _difference(second, values)
        if a is None or b is None:
            return None
        (da, size_a), (db, size_b) = a, b
        if _tiny(da, size_a) and _tiny(db, size_b):
            continue
        if _tiny(da, size_a) or _tiny(db, size_b):
            return False
        ratios.append(da / db)
    if len(ratios) < 3:
        return None
    if not all(close(ratio, ratios[0]) for ratio in ratios[1:]):
        return False
    return ratios[0] > 0 if first.op in ("<", "<=") else True


Interval = tuple[float, float, bool, bool]  # low, high, low closed, high closed


def _solved(relation: Relation) -> list[Interval] | None:
    """The solution set of a relation linear in one variable, as intervals (None if it is not one)."""
    variables = _names(relation)
    if len(variables) != 1 or relation.op == "=":
        return None
    (name,) = variables
    samples = []
    for point in POINTS[:3]:
        value = _difference(relation, {name: point[0]})
        if value is None:
            return None
        samples.append((point[0], value[0]))
    (x1, d1), (x2, d2), (x3, d3) = samples
    slope = (d2 - d1) / (x2 - x1)
    if _tiny(slope, max(abs(d1), abs(d2), 1.0)) or not close(d3, d1 + slope * (x3 - x1)):
        return None
    root = x1 - d1 / slope
    if relation.op == "!=":
        return [(-math.inf, root, False, False), (root, math.inf, False, False)]
    closed = relation.op == "<="
    return [(-math.inf, root, False, closed)] if slope > 0 else [(root, math.inf, closed, False)]


def _bound(text: str) -> float | None:
    text = text.strip()
    if text in _INFINITY:
        return _INFINITY[text]
    return numeric_value(text)


def intervals(text: str) -> list[Interval] | None:
    """`(-\\infty,3)\\cup[5,7]` as numbers, None unless `text` is such a union of intervals."""
    pieces = split_top(text, ("\\cup",)) if "\\cup" in text else [text]
    if not pieces:
        return None
    found = []
    for piece in pieces:
        enclosed = enclosing(piece.strip())
        if enclosed is None or enclosed[0] not in "([" or enclosed[1] not in ")]":
            return None
        bounds = split_top(enclosed[2], (",",))
        if bounds is None or len(bounds) != 2:
            return None
        low, high = _bound(bounds[0]), _bound(bounds[1])
        if low is None or high is None:
            return None
        found.append((low, high, enclosed[0] == "[", enclosed[1] == "]"))
    return found


def _same_intervals(first: list[Interval], second: list[Interval]) -> bool:
    if len(first) != len(second):
        return False
    for (a, b, c, d), (e, f, g, h) in zip(sorted(first), sorted(second)):
        for x, y in ((a, e), (b, f)):
            if math.isinf(x) or math.isinf(y):
                if x != y:
                    return False
            elif not close(x, y):
                return False
        if (c, d) != (g, h):
            return False
    return True


def relation_as_intervals(relation: Relation, text: str) -> bool | None:
    """Whether a one-variable linear relation (`-2x+1 \\ge 5`, `x \\neq 3`) is the set of the
    intervals `text` (normalized); None when either is not of that kind."""
    solved = _solved(relation)
    if solved is None:
        return None
    written = intervals(text)
    if written is None:
        return None
    return _same_intervals(solved, written)

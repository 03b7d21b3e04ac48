"""Are two extracted answers the same answer?

Order of checks, cheapest first: normalized-string equality; then the rules that need the raw
answers or the other answer's kind (`_in_context`, each behind a substring test: a decimal
comma `3,5` where the gold is one number, a leading `Yes.` on the gold, labelled values
`a = 3, b = 1` against a tuple, equations and inequalities as relations (`relations`), a unit
symbol after a number (`units`)); exact numbers (`Fraction`, also in scientific notation, and
long digit strings compared as text); a decimal against an exact value (`numbers.rounds_to`) or
a reply at least as fine as a science-style gold states (`4.46` for `4.5`); structures (tuples,
intervals, sets, unordered answer lists, matrices, unions) compared element by element;
equations side by side; text answers as words; different variables (equal only through an
identity, or once arbitrary constants `C_1`, `C_2` are matched up); float evaluation (at a few
points when there are variables, common functions and `e` included); and only then sympy through
math-verify, under a time bound shared by the whole comparison. Plain numbers and string-equal
answers never import sympy.

Each comparison also says how it was decided (`Verdict`): by these rules, by the symbolic
check, or not at all, when the rules could not settle it (free-form text, equations that are
not written the same way, a symbolic check that timed out or could not parse). Only the last
kind is worth asking an LLM judge about.
"""
from __future__ import annotations

import re
import time
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from itertools import permutations

from .evaluate import names, numeric_value, numerically_equal
from .latex import enclosing, split_top
from .normalize import labelled_tuple, normalize_math, normalize_relation, split_verdict
from .numbers import (MIN_SIGNIFICANT_DIGITS, decimal_key, locale_decimal, number_in_text, parse_number, rounds_to,
                      stated_precision, within_precision, written_decimal)
from .relations import parse_relation, relation_as_intervals, same_relation
from .symbolic import symbolic_verdict
from .units import split_unit

MAX_PAIRED_PARTS = 50  # longer unordered lists must match part for part as text or numbers
TIME_BUDGET_S = 3.0  # hard bound on symbolic time for one answers_match call, all elements together

_MATRIX = re.compile(r"\\begin\{([pbBvV]?matrix|array)\}(?:\{[^{}]*\})?(.*)\\end\{\1\}", re.S)
_WORDS_ONLY = re.compile(r"[A-Za-z][A-Za-z ]*")
_COMMAND = re.compile(r"\\[a-zA-Z]+")
_LETTER = re.compile(r"[a-zA-Z]")
# `=`, `<`, `>`, `\\le`, `\\geq`, `\\neq`, `\\lt`, `!=`, the signs themselves (not `\\left`)
_RELATION_HINT = re.compile(r"[=<>\u2264\u2265\u2260]|\\(?:(?:le|ge|ne)(?:q|slant|(?![a-zA-Z]))|[lg]t(?![a-zA-Z]))")
_E_ALONE = re.compile(r"e(?!\s*\^)")  # after commands are removed: an e that is no base of a power
_CONSTANT = re.compile(r"C|C_\w+|c_\w+")  # how arbitrary constants are named (`C`, `C_1`, `c_2`)
_CONSTANT_HINT = re.compile(r"[Cc]_|C")
_CAPITAL = re.compile(r"[A-Z]")
MAX_RELATION_CHARS = 1_000  # longer answers are never read as one equation or inequality
MAX_RENAMED = 4  # at most 4! orders of arbitrary constants are tried
_COMMA_SPACE = re.compile(r",(?:\s|\\[ ,;:]|~|\\q?quad)")  # `3, 5` is a list, never a decimal comma


@dataclass(frozen=True)
class Structure:
    """A compound answer: `kind` says how its parts compare."""

    kind: str  # "ordered" (tuple, interval, vector), "unordered" (set, list), "matrix", "union"
    brackets: str  # the opening and closing bracket, "" for bare lists
    parts: tuple


@lru_cache(maxsize=65536)
def structure(text: str) -> Structure | None:
    """The structure of a normalized answer, or None for a single value."""
    matrix = _MATRIX.fullmatch(text)
    if matrix:
        rows = [row for row in matrix.group(2).split("\\\\") if row.strip()]
        return Structure("matrix", "", tuple(tuple(cell.strip() for cell in row.split("&")) for row in rows))
    if "\\cup" in text:
        pieces = split_top(text, ("\\cup",))
        if pieces and len(pieces) > 1:
            return Structure("union", "", tuple(piece.strip() for piece in pieces))
    enclosed = enclosing(text)
    if enclosed:
        left, right, inside = enclosed
        parts = split_top(inside, (",",))
        if parts and len(parts) > 1:
            kind = "unordered" if left in ("\\{", "{") else "ordered"
            return Structure(kind, left + right, tuple(part.strip() for part in parts))
        if left in ("\\{", "{"):  # a one-element set
            return Structure("unordered", left + right, (inside.strip(),))
        return None
    if "," in text:
        parts = split_top(text, (",",))
        if parts and len(parts) > 1 and all(part.strip() for part in parts):
            return Structure("unordered", "", tuple(part.strip() for part in parts))
    return None


def variables(text: str) -> frozenset[str]:
    """Letters used as variables (LaTeX commands such as \\pi or \\sqrt are not variables)."""
    return frozenset(_LETTER.findall(_COMMAND.sub(" ", text)))


@dataclass(frozen=True)
class Verdict:
    """The outcome of one comparison.

    decided_by: "rule" (normalization, numbers, structures, float evaluation) or "symbolic"
    (math-verify). settled: False when neither could decide, so `correct` is only "not shown
    equal"; those are the comparisons an LLM judge may settle.
    """

    correct: bool
    decided_by: str = "rule"
    settled: bool = True


class _Context:
    """Shared by every element of one comparison: the time budget and how it was decided."""

    def __init__(self, seconds: float):
        self.deadline = time.monotonic() + seconds
        self.symbolic = False
        self.unsettled = False

    def left(self) -> float:
        return self.deadline - time.monotonic()


def _part_key(part: str):
    number = parse_number(part)
    return part.strip() if number is None else number


def _parts_equal(left: tuple, right: tuple, ordered: bool, ctx: _Context) -> bool:
    if len(left) != len(right):
        return False
    if ordered:
        return all(_equal(a, b, ctx) for a, b in zip(left, right))
    if Counter(map(_part_key, left)) == Counter(map(_part_key, right)):
        return True
    if len(left) > MAX_PAIRED_PARTS:  # matching each part against each would be quadratic
        return False
    unmatched = list(right)
    for a in left:
        for index, b in enumerate(unmatched):
            if _equal(a, b, ctx):
                del unmatched[index]
                break
        else:
            return False
    return True


def _rounded_equal(pred: str, gold: str, pred_number, gold_number) -> bool | None:
    """A decimal against an exact value: see `numbers.rounds_to` (None: the rule does not apply)."""
    for decimal_side, exact_side, exact_number in ((pred, gold, gold_number), (gold, pred, pred_number)):
        written = written_decimal(decimal_side)
        if written is None or written_decimal(exact_side) is not None or decimal_key(exact_side) is not None:
            continue
        exact = exact_number if exact_number is not None else numeric_value(exact_side)
        if exact is not None:
            return rounds_to(written, exact)
    return None


# A plain decimal gold answer is read as rounded only with at least this many significant digits
# (`0.5` is an exact half); a gold in scientific notation always is.
MIN_ROUNDED_GOLD_DIGITS = 2


def _within_gold_precision(pred: str, gold: str, pred_number, gold_number) -> bool:
    """A science-style gold answer states its precision (`4.5`, `1.07 \\times 10^{16}`): a reply
    written more finely that agrees with it at that precision is right (`4.46`, `1.0734e16`); so
    is an exact reply (`\\frac{1}{3000}` for `3.3 \\times 10^{-4}`) when the gold is in
    scientific notation or has enough digits to stand for an exact value (see `numbers.rounds_to`).
    A reply written more coarsely than the gold (`4.5` for `4.46`) must equal it exactly."""
    stated = stated_precision(gold)
    if stated is None or (not stated.scientific and stated.digits < MIN_ROUNDED_GOLD_DIGITS):
        return False
    own = stated_precision(pred)
    if own is not None:
        if own.unit >= stated.unit:
            return False
        unit = own.unit
    elif stated.scientific or stated.digits >= MIN_SIGNIFICANT_DIGITS:
        unit = 0
    else:
        return False
    value = pred_number if pred_number is not None else numeric_value(pred)
    return value is not None and within_precision(value, gold_number, stated.unit, unit)


def _equation(text: str) -> tuple[str, str] | None:
    """(left, right) of an equation `y = 2x + 3` (one `=`, no inequality)."""
    parts = text.split("=")
    if len(parts) != 2 or "<" in text or ">" in text:
        return None
    left, right = parts[0].strip(), parts[1].strip()
    return (left, right) if left and right else None


def _variables(text: str) -> frozenset[str]:
    """The variable names of a normalized answer (`x`, `C_1`); `e` only where it is not the base
    of a power (`e^{x}` is Euler's number, as `evaluate` reads it)."""
    found = names(text)
    if "e" in found and not _E_ALONE.search(_COMMAND.sub(" ", text)):
        found -= {"e"}
    return found


def _renamed_constants(pred: str, gold: str, pred_variables: frozenset[str], gold_variables: frozenset[str]) -> bool | None:
    """Answers equal once their arbitrary constants are matched up: `C_2 e^{x} + C_1` is
    `C_1 e^{x} + C_2`, `c_1`/`C` name them too, and single capitals (`A e^{x} + B`) stand for the
    other answer's `C_k`. Never for letters that both answers use (given constants `A`, `B`)."""
    pred_constants = {name for name in pred_variables if _CONSTANT.fullmatch(name)}
    gold_constants = {name for name in gold_variables if _CONSTANT.fullmatch(name)}
    if gold_constants:
        pred_constants |= {name for name in pred_variables - gold_variables if _CAPITAL.fullmatch(name)}
    if pred_constants:
        gold_constants |= {name for name in gold_variables - pred_variables if _CAPITAL.fullmatch(name)}
    if (not pred_constants or len(pred_constants) != len(gold_constants) or len(pred_constants) > MAX_RENAMED
            or pred_variables - pred_constants != gold_variables - gold_constants or "i" in pred_variables):
        return None
    ordered = sorted(pred_constants)
    for order in permutations(sorted(gold_constants)):
        verdict = numerically_equal(pred, gold, pred_variables, dict(zip(order, ordered)))
        if verdict is None:
            return None
        if verdict:
            return True
    return False


def _equal(pred: str, gold: str, ctx: _Context) -> bool:
    """Equivalence of two normalized answers (or parts of answers)."""
    pred, gold = pred.strip(), gold.strip()
    if not pred or not gold:
        return False
    if pred == gold:
        return True
    pred_number, gold_number = parse_number(pred), parse_number(gold)
    if pred_number is not None and gold_number is not None:
        if pred_number == gold_number:
            return True
        return bool(_rounded_equal(pred, gold, pred_number, gold_number)) or _within_gold_precision(
            pred, gold, pred_number, gold_number)
    pred_key, gold_key = decimal_key(pred), decimal_key(gold)
    if pred_key is not None and gold_key is not None:  # digit strings too long for a Fraction
        return pred_key == gold_key
    rounded = _rounded_equal(pred, gold, pred_number, gold_number)
    if rounded is not None:
        return rounded
    if gold_number is not None and _within_gold_precision(pred, gold, None, gold_number):
        return True
    pred_shape, gold_shape = structure(pred), structure(gold)
    if pred_shape or gold_shape:
        if not (pred_shape and gold_shape):
            return False
        if pred_shape.kind == "matrix" or gold_shape.kind == "matrix":
            if pred_shape.kind != gold_shape.kind or len(pred_shape.parts) != len(gold_shape.parts):
                return False
            return all(_parts_equal(a, b, True, ctx) for a, b in zip(pred_shape.parts, gold_shape.parts))
        if pred_shape.kind == "union" or gold_shape.kind == "union":
            return pred_shape.kind == gold_shape.kind and _parts_equal(
                pred_shape.parts, gold_shape.parts, False, ctx)
        if pred_shape.kind != gold_shape.kind:
            return False
        if pred_shape.kind == "ordered" and pred_shape.brackets != gold_shape.brackets:
            return False  # (0, 1] is not [0, 1]
        return _parts_equal(pred_shape.parts, gold_shape.parts, pred_shape.kind == "ordered", ctx)
    pred_equation, gold_equation = _equation(pred), _equation(gold)
    if pred_equation or gold_equation:
        if pred_equation and gold_equation:
            (a, b), (c, d) = pred_equation, gold_equation
            if (_equal(a, c, ctx) and _equal(b, d, ctx)) or (_equal(a, d, ctx) and _equal(b, c, ctx)):
                return True
        ctx.unsettled = True  # y = 2x + 3 against 2x - y = -3: equal or not, rules cannot say
        return False
    pred_words, gold_words = _WORDS_ONLY.fullmatch(pred), _WORDS_ONLY.fullmatch(gold)
    if pred_words or gold_words:  # text answers ("odd", "Tuesday") compare as words
        if pred_words and gold_words and pred.replace(" ", "").lower() == gold.replace(" ", "").lower():
            return True
        if " " in pred.strip() or " " in gold.strip():  # free-form text: a judge may see it
            ctx.unsettled = True
        return False
    pred_variables, gold_variables = _variables(pred), _variables(gold)
    if pred_variables != gold_variables:  # x^2+1 is not 2y or 5, unless an identity says so
        if not (pred_variables | gold_variables) & {"e", "i"} and numerically_equal(
                pred, gold, pred_variables | gold_variables):
            return True  # \sin^2 x + \cos^2 x is 1
        return bool(_renamed_constants(pred, gold, pred_variables, gold_variables))
    if not pred_variables & {"e", "i"}:  # a variable e, and i, may be constants: leave those to sympy
        verdict = numerically_equal(pred, gold, pred_variables)
        if verdict is False and (_CONSTANT_HINT.search(pred)):
            return bool(_renamed_constants(pred, gold, pred_variables, gold_variables))
        if verdict is not None:
            return verdict
    ctx.symbolic = True
    verdict = symbolic_verdict(gold, pred, ctx.left())
    if verdict is None:
        ctx.unsettled = True
        return False
    return verdict


@lru_cache(maxsize=65536)
def math_verdict(pred: str, gold: str) -> Verdict:
    """MATH-style comparison of two extracted answers (LaTeX allowed), with how it was decided."""
    pred_norm, gold_norm = normalize_math(pred), normalize_math(gold)
    if not pred_norm or not gold_norm:
        return Verdict(False)
    if pred_norm == gold_norm:
        if "=" in pred and "=" in gold and pred != gold and _relation_verdict(pred, gold, pred_norm, gold_norm) is False:
            return Verdict(False)  # `x = 2x + 3` is an equation in x, not `y = 2x + 3` with its label dropped
        return Verdict(True)
    ctx = _Context(TIME_BUDGET_S)
    try:
        correct = _in_context(pred, gold, pred_norm, gold_norm, ctx)
        if correct is None:
            correct = _equal(pred_norm, gold_norm, ctx)
    except RecursionError:
        return Verdict(False, settled=False)
    return Verdict(correct, "symbolic" if ctx.symbolic else "rule", correct or not ctx.unsettled)


def _in_context(pred: str, gold: str, pred_norm: str, gold_norm: str, ctx: _Context) -> bool | None:
    """Rules that need more than the two normalized answers: what the raw text shows (a space
    after a comma, a unit symbol) and what the other answer is (one number). None: not decided.

    Each rule sits behind a test that costs a substring search, so answers that are neither
    equal as text nor touched by these rules pay next to nothing for them.
    """
    if "," in pred_norm and not _COMMA_SPACE.search(pred):
        value = locale_decimal(pred_norm)  # `3,5`: a decimal comma, when the gold is one number
        gold_number = parse_number(gold_norm) if value is not None else None
        if gold_number is not None:
            return value == gold_number or _within_gold_precision(
                pred_norm.replace(",", "."), gold_norm, value, gold_number)
    if gold_norm[:2].lower() in ("ye", "no") or pred_norm[:3].lower() == "yes":
        verdict = _verdict_word(pred, gold, ctx)
        if verdict is not None:
            return verdict
    if ("=" in pred and gold_norm[:1] == "(") or ("=" in gold and pred_norm[:1] == "("):
        pred_tuple, gold_tuple = labelled_tuple(pred), labelled_tuple(gold)
        if pred_tuple or gold_tuple:  # `a = 3, b = 1` is the pair `(3, 1)`
            return _equal(normalize_math(pred_tuple or pred), normalize_math(gold_tuple or gold), ctx)
    if _RELATION_HINT.search(pred) or _RELATION_HINT.search(gold):
        verdict = _relation_verdict(pred, gold, pred_norm, gold_norm)
        if verdict is not None:
            return verdict
    if _LETTER.search(pred_norm) or _LETTER.search(gold_norm):
        verdict = _unit_verdict(pred, gold, pred_norm, gold_norm, ctx)
        if verdict is not None:
            return verdict
    return None


def _verdict_word(pred: str, gold: str, ctx: _Context) -> bool | None:
    """A gold answer `Yes. g(x) = x^2` is right for `g(x) = x^2` and for `Yes, g(x) = x^2`, never
    for `No ...` or a bare `Yes`; a reply's own leading `Yes` is dropped."""
    gold_split, pred_split = split_verdict(gold), split_verdict(pred)
    if gold_split is None:
        if pred_split is None or pred_split[0] != "yes":
            return None
        return _nested(pred_split[1], gold, ctx)
    if pred_split is not None:
        return pred_split[0] == gold_split[0] and _nested(pred_split[1], gold_split[1], ctx)
    if normalize_math(pred).lower() in ("yes", "no"):
        return False  # the verdict without the answer that goes with it
    return _nested(pred, gold_split[1], ctx)


def _nested(pred: str, gold: str, ctx: _Context) -> bool:
    """`math_verdict` of parts of the answers, its way of deciding passed on to `ctx`."""
    verdict = math_verdict(pred, gold)
    ctx.symbolic |= verdict.decided_by == "symbolic"
    ctx.unsettled |= not verdict.settled
    return verdict.correct


def _relation_verdict(pred: str, gold: str, pred_norm: str, gold_norm: str) -> bool | None:
    """Equations and inequalities the same up to rearrangement or a factor, or a one-variable
    inequality against the intervals it describes (see `relations`)."""
    if len(pred) > MAX_RELATION_CHARS or len(gold) > MAX_RELATION_CHARS:
        return None
    pred_relation = parse_relation(normalize_relation(pred))
    gold_relation = parse_relation(normalize_relation(gold))
    if pred_relation is not None and gold_relation is not None:
        return same_relation(pred_relation, gold_relation)
    if pred_relation is not None:
        return relation_as_intervals(pred_relation, gold_norm)
    if gold_relation is not None:
        return relation_as_intervals(gold_relation, pred_norm)
    return None


def _unit_verdict(pred: str, gold: str, pred_norm: str, gold_norm: str, ctx: _Context) -> bool | None:
    """`4.5 m/s` against `4.5`: a unit symbol after a number, read only where the other answer
    is a number or carries a unit too (then both units must be the same)."""
    pred_unit, gold_unit = split_unit(pred), split_unit(gold)
    if pred_unit is None and gold_unit is None:
        return None
    if pred_unit is not None and gold_unit is not None:
        if pred_unit.unit != gold_unit.unit:
            return False
        return _equal(normalize_math(pred_unit.number), normalize_math(gold_unit.number), ctx)
    if pred_unit is not None and parse_number(gold_norm) is not None:
        return _equal(normalize_math(pred_unit.number), gold_norm, ctx)
    if gold_unit is not None and parse_number(pred_norm) is not None:
        return _equal(pred_norm, normalize_math(gold_unit.number), ctx)
    return None


def math_answers_match(pred: str, gold: str) -> bool:
    """MATH-style comparison of two extracted answers (LaTeX allowed)."""
    return math_verdict(pred, gold).correct


def gsm8k_verdict(pred: str, gold: str) -> Verdict:
    """GSM8K comparison: the numbers must be equal exactly; non-numeric golds fall back to MATH rules."""
    gold_number = number_in_text(gold)
    if gold_number is None:
        gold_key = decimal_key(gold)
        if gold_key is not None:  # a number too long for a Fraction
            return Verdict(decimal_key(pred) == gold_key)
        return math_verdict(pred, gold)
    pred_number = number_in_text(pred)
    return Verdict(pred_number is not None and pred_number == gold_number)


def gsm8k_answers_match(pred: str, gold: str) -> bool:
    return gsm8k_verdict(pred, gold).correct


def single_value(gold: str, dataset: str) -> bool:
    """Whether a gold answer is one value (not a list, set, tuple, interval union or matrix)."""
    if dataset == "gsm8k":
        return True
    return structure(normalize_math(gold)) is None

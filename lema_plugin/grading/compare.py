"""Are two extracted answers the same answer?

Order of checks, cheapest first: normalized-string equality; exact numbers (`Fraction`);
structures (tuples, intervals, sets, unordered answer lists, matrices, unions) compared element
by element; text answers as words; different variables (never equal); float evaluation (at a
few points when there are variables); and only then sympy through math-verify, under a time bound shared by
the whole comparison. Plain numbers and string-equal answers never import sympy.
"""
from __future__ import annotations

import re
import time
from dataclasses import dataclass
from functools import lru_cache

from .evaluate import numerically_equal
from .normalize import normalize_math
from .numbers import number_in_text, parse_number
from .symbolic import symbolic_equal

TIME_BUDGET_S = 3.0  # symbolic time allowed for one answers_match call, all elements together

_MATRIX = re.compile(r"\\begin\{([pbBvV]?matrix|array)\}(?:\{[^{}]*\})?(.*)\\end\{\1\}", re.S)
_WORDS_ONLY = re.compile(r"[A-Za-z][A-Za-z ]*")
_COMMAND = re.compile(r"\\[a-zA-Z]+")
_LETTER = re.compile(r"[a-zA-Z]")
_BRACKETS = re.compile(r"\\\{|\\\}|\\langle|\\rangle|\\\\|[()\[\]{},&]|\\cup")


@dataclass(frozen=True)
class Structure:
    """A compound answer: `kind` says how its parts compare."""

    kind: str  # "ordered" (tuple, interval, vector), "unordered" (set, list), "matrix", "union"
    brackets: str  # the opening and closing bracket, "" for bare lists
    parts: tuple


_OPENERS = ("(", "[", "{", "\\{", "\\langle")
_CLOSERS = (")", "]", "}", "\\}", "\\rangle")


def _split_top(text: str, separators: tuple[str, ...]) -> list[str] | None:
    """Split at separators outside any bracket; None if brackets do not balance."""
    parts, depth, last = [], 0, 0
    for token in _BRACKETS.finditer(text):
        tok = token.group(0)
        if tok in _OPENERS:
            depth += 1
        elif tok in _CLOSERS:
            depth -= 1
            if depth < 0:
                return None
        elif depth == 0 and tok in separators:
            parts.append(text[last:token.start()])
            last = token.end()
    parts.append(text[last:])
    return parts


def _enclosing(text: str) -> tuple[str, str, str] | None:
    """(open, close, inside) if the bracket that opens `text` closes at its very end.

    Bracket kinds may differ, as in the half-open interval `[0, 1)`.
    """
    left = next((b for b in ("\\{", "\\langle", "(", "[") if text.startswith(b)), None)
    if left is None:
        return None
    depth = 0
    for token in _BRACKETS.finditer(text):
        tok = token.group(0)
        if tok in _OPENERS:
            depth += 1
        elif tok in _CLOSERS:
            depth -= 1
            if depth == 0:
                if token.end() != len(text):
                    return None
                return left, tok, text[len(left):token.start()]
    return None


@lru_cache(maxsize=65536)
def structure(text: str) -> Structure | None:
    """The structure of a normalized answer, or None for a single value."""
    matrix = _MATRIX.fullmatch(text)
    if matrix:
        rows = [row for row in matrix.group(2).split("\\\\") if row.strip()]
        return Structure("matrix", "", tuple(tuple(cell.strip() for cell in row.split("&")) for row in rows))
    if "\\cup" in text:
        pieces = _split_top(text, ("\\cup",))
        if pieces and len(pieces) > 1:
            return Structure("union", "", tuple(piece.strip() for piece in pieces))
    enclosed = _enclosing(text)
    if enclosed:
        left, right, inside = enclosed
        parts = _split_top(inside, (",",))
        if parts and len(parts) > 1:
            kind = "unordered" if left == "\\{" else "ordered"
            return Structure(kind, left + right, tuple(part.strip() for part in parts))
        if left == "\\{":  # a one-element set
            return Structure("unordered", left + right, (inside.strip(),))
        return None
    if "," in text:
        parts = _split_top(text, (",",))
        if parts and len(parts) > 1 and all(part.strip() for part in parts):
            return Structure("unordered", "", tuple(part.strip() for part in parts))
    return None


def variables(text: str) -> frozenset[str]:
    """Letters used as variables (LaTeX commands such as \\pi or \\sqrt are not variables)."""
    return frozenset(_LETTER.findall(_COMMAND.sub(" ", text)))


class _Budget:
    def __init__(self, seconds: float):
        self.deadline = time.monotonic() + seconds

    def left(self) -> float:
        return self.deadline - time.monotonic()


def _parts_equal(left: tuple, right: tuple, ordered: bool, budget: _Budget) -> bool:
    if len(left) != len(right):
        return False
    if ordered:
        return all(_equal(a, b, budget) for a, b in zip(left, right))
    unmatched = list(right)
    for a in left:
        for index, b in enumerate(unmatched):
            if _equal(a, b, budget):
                del unmatched[index]
                break
        else:
            return False
    return True


def _equal(pred: str, gold: str, budget: _Budget) -> bool:
    """Equivalence of two normalized answers (or parts of answers)."""
    pred, gold = pred.strip(), gold.strip()
    if not pred or not gold:
        return False
    if pred == gold:
        return True
    pred_number, gold_number = parse_number(pred), parse_number(gold)
    if pred_number is not None and gold_number is not None:
        return pred_number == gold_number
    pred_shape, gold_shape = structure(pred), structure(gold)
    if pred_shape or gold_shape:
        if not (pred_shape and gold_shape):
            return False
        if pred_shape.kind == "matrix" or gold_shape.kind == "matrix":
            if pred_shape.kind != gold_shape.kind or len(pred_shape.parts) != len(gold_shape.parts):
                return False
            return all(_parts_equal(a, b, True, budget) for a, b in zip(pred_shape.parts, gold_shape.parts))
        if pred_shape.kind == "union" or gold_shape.kind == "union":
            return pred_shape.kind == gold_shape.kind and _parts_equal(
                pred_shape.parts, gold_shape.parts, False, budget)
        if pred_shape.kind != gold_shape.kind:
            return False
        if pred_shape.kind == "ordered" and pred_shape.brackets != gold_shape.brackets:
            return False  # (0, 1] is not [0, 1]
        return _parts_equal(pred_shape.parts, gold_shape.parts, pred_shape.kind == "ordered", budget)
    pred_words, gold_words = _WORDS_ONLY.fullmatch(pred), _WORDS_ONLY.fullmatch(gold)
    if pred_words or gold_words:  # text answers ("odd", "Tuesday") compare as words
        return bool(pred_words and gold_words) and pred.replace(" ", "").lower() == gold.replace(" ", "").lower()
    pred_variables = variables(pred)
    if pred_variables != variables(gold):  # x^2+1 can never equal 2y or 5
        return False
    if not pred_variables & {"e", "i"}:  # e and i may be constants: leave those to sympy
        verdict = numerically_equal(pred, gold, pred_variables)
        if verdict is not None:
            return verdict
    return symbolic_equal(gold, pred, budget.left())


@lru_cache(maxsize=65536)
def math_answers_match(pred: str, gold: str) -> bool:
    """MATH-style comparison of two extracted answers (LaTeX allowed)."""
    pred_norm, gold_norm = normalize_math(pred), normalize_math(gold)
    if not pred_norm or not gold_norm:
        return False
    if pred_norm == gold_norm:
        return True
    try:
        return _equal(pred_norm, gold_norm, _Budget(TIME_BUDGET_S))
    except RecursionError:
        return False


def gsm8k_answers_match(pred: str, gold: str) -> bool:
    """GSM8K comparison: the numbers must be equal exactly; non-numeric golds fall back to MATH rules."""
    gold_number = number_in_text(gold)
    if gold_number is None:
        return math_answers_match(pred, gold)
    pred_number = number_in_text(pred)
    return pred_number is not None and pred_number == gold_number

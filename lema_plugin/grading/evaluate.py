"""Numeric value of a LaTeX expression, without sympy and without `eval`.

A small recursive-descent reader for what most MATH answers are made of: numbers, `+ - * /`,
`\\cdot`, `\\times`, `^`, `\\frac`, `\\sqrt`, `\\sqrt[n]`, `\\pi`, `e` (Euler's number unless it is
given a value), brackets, common functions (`\\sin`, `\\cos`, `\\tan`, `\\sec`, `\\csc`,
`\\cot`, their hyperbolic and inverse forms, `\\ln`, `\\exp`; `\\sin^2 x`, `\\sin 2x`),
variables and subscripted names (`x`, `C_1`, given values) and implicit products
(`2\\sqrt{3}`, `3xy`, `12\\frac{3}{5}` read as a mixed number). Anything else (`\\log` without a
base, relations, intervals) gives None and the caller falls back to sympy. Floats only, so
nothing here can build a huge integer; overflow, division by zero and a value outside a
function's domain also give None.

Two expressions in the same variables that agree at several arbitrary points are equal (for
the polynomial, rational and elementary-function answers MATH asks for); one point where they
differ proves them different. Either way sympy is not needed.
"""
from __future__ import annotations

import math
import re

_TOKEN = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+|\\[a-zA-Z]+|[a-zA-Z]_(?:\{[a-zA-Z0-9]{1,8}\}|[a-zA-Z0-9])|\S)")
_NAME = re.compile(r"[a-zA-Z](?:_(?:\{[a-zA-Z0-9]{1,8}\}|[a-zA-Z0-9]))?")
_COMMAND = re.compile(r"\\[a-zA-Z]+")
_MAX_CHARS = 300
# functions of one argument: `\sin x`, `\cosh(2x)`, `\ln{x}`, `\sin^2 x` (a power of the value)
_FUNCTIONS = {
    "\\sin": math.sin, "\\cos": math.cos, "\\tan": math.tan,
    "\\sec": lambda v: 1 / math.cos(v), "\\csc": lambda v: 1 / math.sin(v), "\\cot": lambda v: 1 / math.tan(v),
    "\\sinh": math.sinh, "\\cosh": math.cosh, "\\tanh": math.tanh,
    "\\arcsin": math.asin, "\\arccos": math.acos, "\\arctan": math.atan,
    "\\ln": math.log, "\\exp": math.exp,
}
_ATOM_START = ("(", "{", "\\frac", "\\sqrt", "\\pi", *_FUNCTIONS)
# arbitrary, positive (so square roots stay real) and unrelated to each other
SAMPLE_POINTS = (1.3178, 0.7234, 2.1456)
_EXACT_LIMIT = 1e12


class _Unsupported(Exception):
    pass


class _Reader:
    def __init__(self, text: str, values: dict[str, float]):
        self.tokens = [token.replace("{", "").replace("}", "") if "_" in token else token
                       for token in _TOKEN.findall(text)]
        self.values = values
        self.pos = 0

    def peek(self) -> str | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self, expected: str | None = None) -> str:
        token = self.peek()
        if token is None or (expected is not None and token != expected):
            raise _Unsupported(token)
        self.pos += 1
        return token

    def expression(self) -> float:
        value = self.term()
        while self.peek() in ("+", "-"):
            value = value + self.term() if self.take() == "+" else value - self.term()
        return value

    def term(self) -> float:
        value = self.unary()
        while True:
            token = self.peek()
            if token in ("*", "\\cdot", "\\times"):
                self.take()
                value *= self.unary()
            elif token in ("/", "\\div"):
                self.take()
                value /= self.unary()
            elif token is not None and (token in _ATOM_START or token[0].isdigit() or token == "."
                                        or token in self.values or token == "e"):
                value *= self.power()  # implicit product: 2\sqrt{3}, 3xy
            else:
                return value

    def unary(self) -> float:
        if self.peek() == "-":
            self.take()
            return -self.unary()
        if self.peek() == "+":
            self.take()
            return self.unary()
        return self.power()

    def power(self) -> float:
        base = self.atom()
        if self.peek() == "^":
            self.take()
            token = self.peek()
            if token is not None and token.isdigit() and len(token) > 1:  # x^23 is x^{2}\cdot 3
                self.tokens[self.pos] = token[1:]
                return math.pow(base, float(token[0]))
            exponent = self.unary() if token != "{" else self.atom()
            return math.pow(base, exponent)
        return base

    def group(self) -> float:
        self.take("{")
        value = self.expression()
        self.take("}")
        return value

    def atom(self) -> float:
        token = self.take()
        if token[0].isdigit() or token[0] == ".":
            value = float(token)
            if self.peek() == "\\frac" and token.isdigit():  # mixed number 12\frac{3}{5}
                start = self.pos
                self.take()
                num, den = self.group(), self.group()
                if num.is_integer() and den.is_integer() and 0 <= num < den:
                    return value + num / den
                self.pos = start
            return value
        if token == "(":
            value = self.expression()
            self.take(")")
            return value
        if token == "{":
            self.pos -= 1
            return self.group()
        if token == "\\frac":  # \frac{a}{b}, also \frac\pi4
            num = self.group() if self.peek() == "{" else self.atom()
            return num / (self.group() if self.peek() == "{" else self.atom())
        if token == "\\sqrt":
            index = 2.0
            if self.peek() == "[":
                self.take()
                index = self.expression()
                self.take("]")
            radicand = self.group() if self.peek() == "{" else self.atom()
            if radicand < 0:
                raise _Unsupported("negative radicand")
            return radicand ** (1.0 / index)
        if token == "\\pi":
            return math.pi
        if token in self.values:
            return self.values[token]
        if token in _FUNCTIONS:
            return self.function(_FUNCTIONS[token])
        if token == "e":  # not given a value: Euler's number (`e^{x}`)
            return math.e
        raise _Unsupported(token)

    def function(self, apply) -> float:
        """`\\sin x`, `\\sin(2x)`, `\\sin^2 x`, `\\sin 2x \\cos x` (the argument of a function written
        without brackets is the product that follows, up to the next function or operator)."""
        power = None
        if self.peek() == "^":
            self.take()
            power = self.atom()
            if power < 0:  # \sin^{-1} x: an inverse, not a power
                raise _Unsupported("inverse function")
        token = self.peek()
        if token in ("(", "{"):
            argument = self.atom()
        else:
            argument = self.power()
            while True:
                token = self.peek()
                if token is None or token in _FUNCTIONS or not (
                        token in _ATOM_START or token[0].isdigit() or token in self.values or token == "e"):
                    break
                argument *= self.power()
        value = apply(argument)
        return value if power is None else math.pow(value, power)


def names(text: str) -> frozenset[str]:
    """The variable names in `text`: letters and subscripted letters (`x`, `C_1`, `a_{n}` as
    `a_n`), not LaTeX commands (`\\pi`, `\\cosh`)."""
    if "\\" in text:
        text = _COMMAND.sub(" ", text)
    return frozenset(name.replace("{", "").replace("}", "") for name in _NAME.findall(text))


def numeric_value(text: str, values: dict[str, float] | None = None) -> float | None:
    """The value of `\\frac{5\\sqrt{6}}{3}` (or of `x^2+1` given x), None if unsupported."""
    if len(text) > _MAX_CHARS:
        return None
    reader = _Reader(text, values or {})
    try:
        value = reader.expression()
        if reader.peek() is not None:
            return None
    except (_Unsupported, ArithmeticError, ValueError, RecursionError):
        return None
    return value if math.isfinite(value) else None


def numerically_equal(a: str, b: str, names: frozenset[str], renamed: dict[str, str] | None = None) -> bool | None:
    """Whether `a` and `b` (in the variables `names`) agree; None when either cannot be read.

    `renamed` maps names of `b` to the names of `a` they stand for (`C_2` in one answer is `C_1`
    in the other), so two answers with their arbitrary constants named differently compare.
    """
    rounds = [{}] if not names else [
        {name: point * (1 + 0.37 * k) for k, name in enumerate(sorted(names))} for point in SAMPLE_POINTS
    ]
    for values in rounds:
        other = values if not renamed else {**values, **{b_name: values[a_name] for b_name, a_name in renamed.items()}}
        left, right = numeric_value(a, values), numeric_value(b, other)
        if left is None or right is None or max(abs(left), abs(right)) > _EXACT_LIMIT:
            return None  # beyond 1e12 floats cannot tell 10^{20} from 10^{20}+1: sympy is exact
        if not close(left, right):
            return False
    return True


# independent values for up to four variables, one row per round (relations are compared on
# these: values that all grow together would lie on one line, where different curves can agree)
POINTS = (
    (1.3178, 0.6103, 2.0417, 0.8829),
    (0.7234, 1.8841, 0.9352, 2.3106),
    (2.1456, 1.1127, 0.5581, 1.6733),
    (0.9917, 2.4269, 1.7395, 0.6461),
    (1.7042, 0.8265, 2.3318, 1.2207),
    (0.5873, 1.4521, 1.1164, 2.0589),
)


def close(a: float, b: float) -> bool:
    """Equal up to float error (1e-9 relative): far tighter than any rounded decimal answer."""
    return abs(a - b) <= 1e-9 * max(abs(a), abs(b)) + 1e-14

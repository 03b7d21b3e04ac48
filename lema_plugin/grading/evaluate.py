"""Numeric value of a constant LaTeX expression, without sympy and without `eval`.

A small recursive-descent reader for what most MATH answers are made of: numbers, `+ - * /`,
`\\cdot`, `\\times`, `^`, `\\frac`, `\\sqrt`, `\\sqrt[n]`, `\\pi`, brackets and implicit products
(`2\\sqrt{3}`, `12\\frac{3}{5}` read as a mixed number). Anything else (variables, functions,
intervals) gives None and the caller falls back to sympy. Floats only, so nothing here can build
a huge integer; overflow and division by zero also give None.
"""
from __future__ import annotations

import math
import re

_TOKEN = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+|\\[a-zA-Z]+|\S)")
_MAX_CHARS = 300
_ATOM_START = ("(", "{", "\\frac", "\\sqrt", "\\pi")


class _Unsupported(Exception):
    pass


class _Reader:
    def __init__(self, text: str):
        self.tokens = [t for t in _TOKEN.findall(text)]
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
            elif token is not None and (token in _ATOM_START or token[0].isdigit() or token == "."):
                value *= self.power()  # implicit product: 2\sqrt{3}
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
            exponent = self.unary() if self.peek() != "{" else self.atom()
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
        raise _Unsupported(token)


def numeric_value(text: str) -> float | None:
    """The value of a constant expression like `\\frac{5\\sqrt{6}}{3}`, or None if unsupported."""
    if len(text) > _MAX_CHARS:
        return None
    reader = _Reader(text)
    try:
        value = reader.expression()
        if reader.peek() is not None:
            return None
    except (_Unsupported, ArithmeticError, ValueError, RecursionError):
        return None
    return value if math.isfinite(value) else None


def close(a: float, b: float) -> bool:
    """Equal up to float error (1e-9 relative): far tighter than any rounded decimal answer."""
    return abs(a - b) <= 1e-9 * max(1.0, abs(a), abs(b))

"""Exact numbers from answer strings.

Plain numbers are the common case for both GSM8K and MATH, so they are compared as exact
`Fraction`s here and never reach sympy. Every parser is bounded (digit counts, no exponents
beyond a few digits) so model text cannot make it build a huge integer.
"""
from __future__ import annotations

import re
from decimal import Decimal, localcontext
from fractions import Fraction

MAX_DIGITS = 80  # longer digit runs are not "plain numbers" and go to the slow path (or nowhere)

_MINUS = str.maketrans({"\u2212": "-", "\u2013": "-", "\u2014": "-"})
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")
_DECIMAL = r"(?:\d+(?:\.\d+)?|\.\d+)"
# a whole string that is one number: 12, -3.5, .5, 1/2, 2 1/4, \frac{1}{2}, -\frac34, 2\frac{1}{4}, 0.\overline{3}
_PLAIN = re.compile(rf"[+-]?{_DECIMAL}")
_SLASH = re.compile(rf"([+-]?)({_DECIMAL})/({_DECIMAL})")
_FRAC = re.compile(r"([+-]?)(?:(\d+))?\\frac\{([+-]?" + _DECIMAL + r")\}\{([+-]?" + _DECIMAL + r")\}")
_BASE = re.compile(r"([+-]?)([0-9A-Za-z]{1,40})_\{?(\d{1,2})\}?")
_REPEATING = re.compile(r"([+-]?)(\d*)\.(\d*)\\overline\{(\d+)\}")
# scientific notation: 1.07e16, 3E-4, 1.07\times10^{16}, 3\cdot10^8, 2*10^{-3}, 10^{-3}
MAX_EXPONENT = 999
_SCIENTIFIC = re.compile(
    rf"([+-]?{_DECIMAL})(?:[eE]([+-]?\d{{1,3}})|\s*(?:\\times|\\cdot|\*|\u00d7)\s*10\s*\^\s*(?:\{{\s*([+-]?\d{{1,3}})\s*\}}|(\d)))"
)
_POWER_OF_TEN = re.compile(r"([+-]?)10\s*\^\s*(?:\{\s*([+-]?\d{1,3})\s*\}|(\d))")
_LONG_DECIMAL = re.compile(r"([+-]?)(\d*)(?:\.(\d*))?")
_LONG_IN_TEXT = re.compile(rf"(?<![\w.])-?\d{{{MAX_DIGITS + 1},}}(?:\.\d+)?")
# a number inside free text (GSM8K answers): optional sign, optional fraction part
_IN_TEXT = re.compile(rf"(?<![\w.])-?{_DECIMAL}(?:/\d+(?![\d.])|[eE][+-]?\d{{1,3}}(?!\w))?")
_LATEX_FRAC_IN_TEXT = re.compile(r"\\[dt]?frac\{(-?\d+(?:\.\d+)?)\}\{(\d+(?:\.\d+)?)\}")

_WORDS = {
    word: value
    for value, word in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
        "fifteen sixteen seventeen eighteen nineteen twenty".split()
    )
}
_WORDS.update({"thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80,
               "ninety": 90, "hundred": 100, "thousand": 1000, "half": Fraction(1, 2)})
_WORD_RE = re.compile(r"\b(" + "|".join(sorted(_WORDS, key=len, reverse=True)) + r")\b", re.I)


def _fraction(text: str) -> Fraction | None:
    if len(text) > MAX_DIGITS:
        return None
    if text.isdigit() and text.isascii():  # the common case, without Fraction's string parser
        return Fraction(int(text))
    try:
        return Fraction(text)
    except (ValueError, ZeroDivisionError):
        return None


def parse_number(text: str) -> Fraction | None:
    """The exact value of `text` if the whole string is one plain number, else None.

    Accepts what normalized answers look like: `12`, `-3.5`, `.5`, `1/2`, `\\frac{1}{2}`,
    `-\\frac{3}{4}`, mixed numbers `2\\frac{1}{4}`, repeating decimals `0.\\overline{3}`,
    numerals in another base `3032_5`, scientific notation `1.07e16`, `3\\times 10^{8}`.
    """
    text = text.strip().translate(_MINUS)
    if not text or len(text) > 2 * MAX_DIGITS:
        return None
    if _PLAIN.fullmatch(text):
        return _fraction(text)
    match = _SLASH.fullmatch(text)
    if match:
        num, den = _fraction(match.group(2)), _fraction(match.group(3))
        if num is None or not den:
            return None
        value = num / den
        return -value if match.group(1) == "-" else value
    match = _FRAC.fullmatch(text)
    if match:
        sign, whole, num, den = match.groups()
        num, den = _fraction(num), _fraction(den)
        if num is None or not den:
            return None
        value = num / den
        if whole is not None:  # a mixed number like 2\frac{1}{4}
            if value < 0:
                return None
            value += int(whole)
        return -value if sign == "-" else value
    match = _BASE.fullmatch(text)
    if match:  # a numeral in another base, 3032_5
        sign, digits, base = match.group(1), match.group(2), int(match.group(3))
        try:
            value = Fraction(int(digits, base)) if 2 <= base <= 36 else None
            return -value if value is not None and sign == "-" else value
        except ValueError:
            return None
    match = _SCIENTIFIC.fullmatch(text)
    if match:
        mantissa = _fraction(match.group(1))
        exponent = int(next(g for g in match.groups()[1:] if g is not None))
        return None if mantissa is None else mantissa * Fraction(10) ** exponent
    match = _POWER_OF_TEN.fullmatch(text)
    if match:
        value = Fraction(10) ** int(match.group(2) or match.group(3))
        return -value if match.group(1) == "-" else value
    match = _REPEATING.fullmatch(text)
    if match:
        sign, whole, fixed, repeat = match.groups()
        if len(whole) + len(fixed) + len(repeat) > MAX_DIGITS:
            return None
        base = Fraction(int(whole or "0")) + (Fraction(int(fixed), 10 ** len(fixed)) if fixed else 0)
        value = base + Fraction(int(repeat), (10 ** len(repeat) - 1) * 10 ** len(fixed))
        return -value if sign == "-" else value
    return None


def number_in_text(text: str) -> Fraction | None:
    """The number a short free-text answer states (GSM8K style), or None.

    `$1,200.` -> 1200, `5 + 3 = 8 apples` -> 8 (what follows the last `=`), `50%` -> 50,
    `\\frac{1}{2}` -> 1/2, `twelve` -> 12. Percent signs are dropped, not divided: GSM8K golds
    are stated in the unit the question asks for.
    """
    text = text.translate(_MINUS)
    text = _THOUSANDS.sub("", text.replace("{,}", ","))
    if "=" in text:
        tail = text.rsplit("=", 1)[1]
        if any(ch.isdigit() for ch in tail) or _WORD_RE.search(tail):
            text = tail
    if "frac" in text:
        text = _LATEX_FRAC_IN_TEXT.sub(r"\1/\2", text)
    match = _IN_TEXT.search(text)
    if match:
        return parse_number(match.group(0))
    match = _WORD_RE.search(text)
    if match:
        return Fraction(_WORDS[match.group(1).lower()])
    return None


def format_number(value: Fraction) -> str:
    """Canonical text for an exact number: `12`, `-0.25`, `1/3`."""
    if value.denominator == 1:
        return str(value.numerator)
    den = value.denominator
    for prime in (2, 5):
        while den % prime == 0:
            den //= prime
    if den == 1:  # a terminating decimal
        with localcontext() as context:
            context.prec = 4 * MAX_DIGITS
            text = format(Decimal(value.numerator) / Decimal(value.denominator), "f")
        return text.rstrip("0").rstrip(".") if "." in text else text
    return f"{value.numerator}/{value.denominator}"


def decimal_key(text: str) -> str | None:
    """Canonical text of a plain decimal of any length (`007.50` -> `7.5`), else None.

    Exact and linear in the length: identical 20,000-digit answers are equal without building
    a huge integer (Python refuses to convert more than 4,300 digits).
    """
    match = _LONG_DECIMAL.fullmatch(text.strip())
    if match is None or not (match.group(2) or match.group(3)):
        return None
    whole = match.group(2).lstrip("0") or "0"
    fraction = (match.group(3) or "").rstrip("0")
    sign = "-" if match.group(1) == "-" and (whole != "0" or fraction) else ""
    return sign + whole + ("." + fraction if fraction else "")


def long_number_in_text(text: str) -> str | None:
    """`decimal_key` of a number too long for `number_in_text` (more than MAX_DIGITS digits)."""
    text = _THOUSANDS.sub("", text.translate(_MINUS))
    match = _LONG_IN_TEXT.search(text)
    return decimal_key(match.group(0)) if match else None


# A decimal stands for an exact value only when it carries at least this many significant
# digits: 0.3333 may be 1/3 written out, 0.33 is a different, rounded answer.
MIN_SIGNIFICANT_DIGITS = 4


def written_decimal(text: str) -> tuple[Fraction, int] | None:
    """(value, digits after the point) for a plain decimal with enough significant digits."""
    match = _LONG_DECIMAL.fullmatch(text.strip())
    if match is None or match.group(3) is None or len(text) > MAX_DIGITS:
        return None
    digits = (match.group(2) + match.group(3)).lstrip("0")
    if len(digits) < MIN_SIGNIFICANT_DIGITS:
        return None
    value = _fraction(text.strip())
    return None if value is None else (value, len(match.group(3)))


def rounds_to(written: tuple[Fraction, int], exact: Fraction | float) -> bool:
    """Whether the decimal `written` is `exact` rounded (half away from zero) or truncated to its places.

    `0.0833333333` is 1/12 at ten places; `0.0834` is not 1/12 (at four places that is 0.0833).
    A float `exact` (an irrational value such as pi) is allowed a 1e-9 relative slack.
    """
    value, places = written
    scale = 10 ** places
    if isinstance(exact, Fraction):
        scaled = abs(exact) * scale
        truncated = scaled.numerator // scaled.denominator
        rounded = truncated + (1 if scaled - truncated >= Fraction(1, 2) else 0)
        target = abs(value) * scale
        if (value < 0) != (exact < 0) and value != 0:
            return False
        return target in (truncated, rounded)
    if (value < 0) != (exact < 0):
        return False
    slack = 1e-9 * abs(exact) + 1e-15
    scaled = abs(exact) * scale
    target = float(abs(value) * scale)
    return abs(target - round(scaled)) <= slack * scale or int(scaled + slack * scale) == target

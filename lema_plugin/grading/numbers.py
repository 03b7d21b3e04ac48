"""Exact numbers from answer strings.

Plain numbers are the common case for both GSM8K and MATH, so they are compared as exact
`Fraction`s here and never reach sympy. Every parser is bounded (digit counts, no exponents
beyond a few digits) so model text cannot make it build a huge integer.

Locale forms are read where the context allows: thousands grouped by spaces, thin spaces or
LaTeX spaces (`12 500`, `12\\,500`), a decimal comma (`3,5`, `0,125`, `1.234,5`; never `12,500`,
a list `3,5,7` or a point `(3,5)`). Precision: `rounds_to` (a decimal standing for an exact
value) and `stated_precision`/`within_precision` (a reply as fine as a rounded gold, or finer).
"""
from __future__ import annotations

import re
from decimal import Decimal, localcontext
from fractions import Fraction
from typing import NamedTuple

MAX_DIGITS = 80  # longer digit runs are not "plain numbers" and go to the slow path (or nowhere)

_MINUS = str.maketrans({"\u2212": "-", "\u2013": "-", "\u2014": "-"})
# a thousands comma: 1,200 (not after a lone 0: `0,125` is a decimal comma)
_THOUSANDS = re.compile(r"(?<=\d)(?<![^\d.]0)(?<!^0),(?=\d{3}(?!\d))")
# locale forms in free text. Thousands grouped by a space, a thin or no-break space or a LaTeX
# space (`12 500`, `12\\,500`); a decimal comma: a comma followed by other than three digits, or
# after a lone 0 (`3,5`, `0,125`), never inside brackets (`(3,5)` is a point) nor in a list
# (`3,5,7`, `3, 5`); dot-grouped thousands before a decimal comma (`1.234,5`).
_GROUP_GAP = r"(?:[ \u00a0\u2009\u202f~]|\\[,;: ]|\{\\,\})"
_SPACE_GROUPS = re.compile(rf"(?<![\d.,])[1-9]\d{{0,2}}(?:{_GROUP_GAP}\d{{3}})+(?![\d\-])")
_GAP = re.compile(_GROUP_GAP)
_DECIMAL_COMMA = re.compile(r"(?<![\d.,(\[{])(-?(?:[1-9]\d{0,2}(?:\.\d{3})+|\d+)),(\d+)(?![\d,)\]}])")
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
    if " " in text or "\\" in text or "~" in text or "\u2009" in text or "\u202f" in text or "\u00a0" in text:
        text = _SPACE_GROUPS.sub(_joined_groups, text)
    if "," in text:
        text = text.replace("{,}", ",")
        text = _DECIMAL_COMMA.sub(_decimal_point, text)
        text = _THOUSANDS.sub("", text)
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


def _joined_groups(match: re.Match) -> str:
    return _GAP.sub("", match.group(0))


def _decimal_point(match: re.Match) -> str:
    """`3,5` -> `3.5`, `1.234,5` -> `1234.5`; `1,200` (three digits after a first group that
    is not a lone 0) stays for the thousands rule."""
    whole, fraction = match.group(1), match.group(2)
    if "." in whole:
        return whole.replace(".", "") + "." + fraction
    if len(fraction) == 3 and whole.lstrip("-") != "0":
        return match.group(0)
    return whole + "." + fraction


def locale_decimal(text: str) -> Fraction | None:
    """The value of a normalized answer that is one number written with a decimal comma
    (`3,5`, `0,125`, `12500,5`, `1.234,5`), else None. `12,500` is not one (English thousands).

    Whether a comma may be a decimal comma at all is the caller's to decide: a gold answer
    `0,1` lists two values, and a reply `3, 5` (a space after the comma) is a list.
    """
    match = _DECIMAL_COMMA.fullmatch(text.strip().translate(_MINUS))
    if match is None:
        return None
    point = _decimal_point(match)
    return None if point == match.group(0) else _fraction(point)


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
    """(value, digits after the point) for a plain decimal with enough significant digits; also
    for one in scientific notation (`3.333 \\times 10^{-4}`: 7 places; `1.234e5`: -2)."""
    match = _LONG_DECIMAL.fullmatch(text.strip())
    if match is None and len(text) <= MAX_DIGITS and ("e" in text or "E" in text or "10" in text):
        stated = stated_precision(text)
        if stated is None or not stated.scientific or stated.digits < MIN_SIGNIFICANT_DIGITS:
            return None
        value = parse_number(text)
        return None if value is None else (value, _places(stated.unit))
    if match is None or match.group(3) is None or len(text) > MAX_DIGITS:
        return None
    digits = (match.group(2) + match.group(3)).lstrip("0")
    if len(digits) < MIN_SIGNIFICANT_DIGITS:
        return None
    value = _fraction(text.strip())
    return None if value is None else (value, len(match.group(3)))


def _places(unit: Fraction) -> int:
    """10^-k -> k (a power of ten's decimal places, negative above 1)."""
    if unit.numerator == 1:
        return len(str(unit.denominator)) - 1
    return -(len(str(unit.numerator)) - 1)


class Precision(NamedTuple):
    """How precisely a decimal or scientific-notation number is written."""

    unit: Fraction  # the place value of its last digit: 4.5 -> 1/10, 1.07e16 -> 10^14
    digits: int  # significant digits
    scientific: bool


def stated_precision(text: str) -> Precision | None:
    """The precision a decimal (`4.5`, `0.0350`) or scientific-notation number (`1.07e16`,
    `3 \\times 10^{8}`) states; None for integers, fractions and anything else (exact values)."""
    text = text.strip().translate(_MINUS)
    if len(text) > MAX_DIGITS:
        return None
    match = _SCIENTIFIC.fullmatch(text)
    if match:
        mantissa = match.group(1).lstrip("+-")
        exponent = int(next(g for g in match.groups()[1:] if g is not None))
        scientific = True
    else:
        if "." not in text or not _PLAIN.fullmatch(text):
            return None
        mantissa, exponent, scientific = text.lstrip("+-"), 0, False
    whole, _, fraction = mantissa.partition(".")
    digits = len((whole + fraction).lstrip("0")) or 1
    return Precision(Fraction(10) ** (exponent - len(fraction)), digits, scientific)


def within_precision(value: Fraction | float, gold: Fraction, gold_unit: Fraction, unit: Fraction) -> bool:
    """Whether `value`, written to `unit` (0 when exact), agrees with `gold`, written to the
    coarser `gold_unit`: their rounding intervals overlap, |value - gold| <= (gold_unit + unit) / 2.

    A reply `4.46` or `4.449` is consistent with a gold `4.5` (both round to it, allowing for the
    reply's own rounding); `4.56` and `4.4` are not.
    """
    bound = (gold_unit + unit) / 2
    if isinstance(value, float):
        return abs(value - float(gold)) <= float(bound) * (1 + 1e-9) + 1e-15
    return abs(value - gold) <= bound


def rounds_to(written: tuple[Fraction, int], exact: Fraction | float) -> bool:
    """Whether the decimal `written` is `exact` rounded (half away from zero) or truncated to its places.

    `0.0833333333` is 1/12 at ten places; `0.0834` is not 1/12 (at four places that is 0.0833).
    A float `exact` (an irrational value such as pi) is allowed a 1e-9 relative slack.
    """
    value, places = written
    scale = Fraction(10) ** places
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

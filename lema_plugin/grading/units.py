"""A physical unit written after a number: `4.5 m/s`, `3\\times10^{8}\\,\\mathrm{m\\,s^{-1}}`, `12 kJ`.

`normalize` already drops unit *words* (`5 cm`, `12 square units`) and a unit in `\\text{}` after a
number. Abbreviated units (`m`, `J`, `K`, `m/s`, `\\mu m`, `kg m^2 s^{-2}`) look like variables, so
they are split off only here, where the other answer is one number: `split_unit` is called by the
comparison for a reply or gold answer that is not a number when the other one is, and a unit is
read only from a closed list of unit symbols (with SI prefixes), separated from the number by a
space. Letters that are mostly variables (`y`, `l`, `x`) are no unit symbols here. Nothing here
is called for answers that already compare as numbers.
"""
from __future__ import annotations

import re
from typing import NamedTuple

from .latex import strip_delimiters

_PREFIX = r"(?:da|[yzafpnmcdhkMGTPE]|\\mu\s*|\u03bc|\u00b5|u)?"
_SYMBOL = (
    r"(?:mol|cd|Hz|Pa|Wb|eV|min|hr|hrs|yr|yrs|day|days|erg|ergs|Jy|pc|AU|au|ly|rad|sr|atm|bar|cal|Cal|"
    r"dyn|Bq|Gy|Sv|lm|lx|dB|amu|Da|mph|ft|lb|oz|gal|\\AA|\u00c5|\\Omega|\u03a9|ohm|"
    r"(?:\\circ|\u00b0)\s*[CF]|[msgAKNJWCVFTHLhGMS])"
)
_POWER = r"(?:\s*\^\s*(?:\{\s*[-\u2212]?\d+\s*\}|[-\u2212]?\d))?"
_TOKEN = rf"{_PREFIX}{_SYMBOL}{_POWER}"
_JOIN = r"(?:\s*(?:/|\\cdot|\*|\u00b7|\\,|~)\s*|\s+)"
# the number, a gap, the unit (`\\text{...}` and `\\mathrm{...}` are unwrapped first)
_WITH_UNIT = re.compile(rf"(?P<number>.*?[\d}})])(?:\s+|\s*\\[,;: ]\s*|\s*~\s*)(?P<unit>{_TOKEN}(?:{_JOIN}{_TOKEN})*)\s*\.?")
_UNIT_ONLY = re.compile(rf"\s*{_TOKEN}(?:{_JOIN}{_TOKEN})*\s*[.!]?\s*")
_WRAPPED = re.compile(r"\\(?:text|mathrm|mbox|textrm|rm|operatorname)\s*\{([^{}]*)\}")
_SPACES = re.compile(r"\\[,;: ]|~|\s+")


class WithUnit(NamedTuple):
    number: str  # the text before the unit
    unit: str  # the unit, spacing removed (`m/s`, `kgm^2s^{-2}`)


def split_unit(answer: str) -> WithUnit | None:
    """(number, unit) when `answer` is something followed by a unit symbol, else None."""
    if len(answer) > 300 or not any(ch.isdigit() for ch in answer):
        return None
    text = strip_delimiters(answer)
    if "\\" in text:
        text = _WRAPPED.sub(lambda match: " " + match.group(1) + " ", text)
    match = _WITH_UNIT.fullmatch(text.strip())
    if match is None:
        return None
    return WithUnit(match.group("number").strip(), _SPACES.sub("", match.group("unit")))


def is_unit(text: str) -> bool:
    """Whether `text` is a unit and nothing else (`erg/s/cm^2.`, ` km s^{-1}`): what may follow
    a closing formula without making it a formula from the middle of the reasoning."""
    return len(text) <= 100 and _UNIT_ONLY.fullmatch(text) is not None

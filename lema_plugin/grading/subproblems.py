"""Questions with several sub-problems, and the part of a reply that answers the one asked.

Science-style questions (Minerva's OCW problems, textbook exercises) often state earlier
sub-problems with their solutions and end with the one asked:

    Preamble: ...  Subproblem 0: What is the ...?  Solution: ... Final answer: The final answer
    is 4.5.  Subproblem 1: What is the ...?

A chat model then solves every sub-problem again and boxes each answer. The box that counts is
the one in the reply's section for the sub-problem asked; boxes in the other sections answer
other questions and are not rival final answers. `asked_label` reads which sub-problem a
question asks: the last one it names, when it names it as a sub-problem or part (`Subproblem 1`,
`Part (b)`), or when the parts before it come with their solutions (`(a) ... Solution: ...
(b) ...`). `asked_section` finds that sub-problem's heading in the reply. Where either is
missing, nothing changes: the whole reply is graded, and differing boxes still get no credit.
"""
from __future__ import annotations

import re
from functools import lru_cache

_ID = r"(\d{1,2}|[a-hA-H]|i{1,3}|iv|vi{0,3})"
# a sub-problem or part named by a word: Subproblem 1, Sub-problem 2, Part (b), Part c:
_WORD_LABEL = re.compile(rf"\b(?:sub-?problem|sub-?question|part)\s*\(?{_ID}\)?(?![\w(])", re.I)
# a bare part label opening a line or a sentence: (a), (ii), b)
_BARE_LABEL = re.compile(rf"(?:^|\n|[.?!:]\s)[ \t]*(?:[#*>-]+[ \t]*)*\(?{_ID}\)(?=[\s*:.])")
# in a reply, a sub-problem named by a word (opening a line, or `Subproblem 1` anywhere) ...
_WORD_HEADING = re.compile(
    rf"(?:^|\n)[ \t]*(?:[#*>-]+[ \t]*)*(?:for[ \t]+)?(?:sub-?problem|sub-?question|part)[ \t]*\(?{_ID}\)?(?=[\s*:.,])"
    rf"|\b(?:sub-?problem|sub-?question)\s*{_ID}\b",
    re.I,
)
# ... or a bare label opening a line, `(b)` or `b)` (only for questions that label parts so)
_BARE_HEADING = re.compile(rf"(?:^|\n)[ \t]*(?:[#*>-]+[ \t]*)*\(?{_ID}\)(?=[\s*:.,])")
_SOLVED = re.compile(r"\b(?:solution|final answer|answer is|answer:)", re.I)
_HINT = ("ubproblem", "ub-problem", "ubquestion", "art", "(b)", "b)", "(ii)", "ii)", "(2)")


def _key(match: re.Match) -> str:
    return next(group for group in match.groups() if group is not None).lower()


@lru_cache(maxsize=4096)
def asked_label(question: str) -> tuple[str, bool] | None:
    """The id (`1`, `b`, `ii`) of the sub-problem `question` asks and whether the question names
    it with a word (`Subproblem 1`, `Part (b)`); None for a plain question."""
    if not question or not any(hint in question for hint in _HINT):
        return None
    words = list(_WORD_LABEL.finditer(question))
    if words:
        return _key(words[-1]), True
    bare = list(_BARE_LABEL.finditer(question))
    if len(bare) >= 2 and _SOLVED.search(question, bare[-2].end(), bare[-1].start()):
        return _key(bare[-1]), False
    return None


def asked_section(text: str, question: str | None) -> str | None:
    """The part of `text` that answers the sub-problem `question` asks (from its last heading to
    the next heading of another sub-problem), or None when there is no such part.

    A question that names its sub-problems with a word is matched with the reply's worded
    headings only, so a reply's numbered steps `1)`, `2)` are never taken for sub-problems.
    """
    asked = asked_label(question) if question else None
    if asked is None or not text:
        return None
    label, worded = asked
    found = list(_WORD_HEADING.finditer(text))
    if not worded:
        found = sorted(found + list(_BARE_HEADING.finditer(text)), key=lambda match: match.start())
    headings = [(match.start(), _key(match)) for match in found]
    starts = [index for index, (_, key) in enumerate(headings) if key == label]
    if not starts or all(key == label for _, key in headings):
        return None  # the reply is not split into sub-problems
    first = starts[-1]
    end = next((start for start, key in headings[first + 1:] if key != label), len(text))
    return text[headings[first][0]:end]

"""Find the final answer a model states in free text.

The final answer is the LAST explicit statement of one ("The answer is X", "Final Answer: X",
"#### X", "A: X", `\\boxed{X}`); bold text, a closing formula and finally the last number are
fallbacks for text with no explicit statement. Text after a hallucinated next "Question:" / "Q:"
is ignored first, so an answer to an invented follow-up question is never graded.

All patterns are linear-time: a 20,000-character garbage completion costs about a millisecond.
"""
from __future__ import annotations

import re
from typing import Callable, Iterator, NamedTuple

from .datasets import dataset_kind
from .latex import DELIMITERS, MATH_SPAN, Box, box_at, boxes, last_boxed, math_span_end, strip_delimiters
from .normalize import MAX_ANSWER_CHARS, normalize_math
from .numbers import format_number, long_number_in_text, number_in_text, parse_number
from .units import is_unit

MAX_TEXT_CHARS = 200_000  # longer completions are graded on their last 200,000 characters
MAX_STATED_CHARS = 30_000  # an answer stated after "The answer is" is read from at most this much of its line
MAX_LISTED = 100  # no real answer lists more values than this

_CONTINUATION = re.compile(r"\n[ \t]*(?:#+[ \t]*)?(?:Question|Q|Problem|Human|User)[ \t]*(\d*)[ \t]*[:\uff1a]")
_PHRASE = re.compile(
    r"(?:\b(?:the\s+)?(?:final\s+)?(?:answers?|solutions?)\s+(?:is|are|would\s+be|will\s+be|should\s+be)\b"
    r"|\b(?:final\s+)?answer\s*:|\bfinal\s+answer\b(?=[ \t*#]*\n))",
    re.I,
)
_STRICT_PHRASE = re.compile(r"\b(?:the\s+)?(?:final\s+)?answer\s+is\b", re.I)
# every match of a phrase contains one of these words: the phrase is looked for only near them
_KEYWORDS = {_PHRASE: ("nswer", "NSWER", "olution", "OLUTION"), _STRICT_PHRASE: ("nswer", "NSWER")}
_NEAR = 80  # characters around a keyword that a phrase may span ("the final answer is")
_HASH = re.compile(r"####[ \t]*([^\n]*)")
_A_COLON = re.compile(r"(?:^|\n)[ \t]*A[ \t]*:[ \t]*(\$?[ \t]*-?[\d,]*\.?\d+)[ \t]*\.?[ \t]*(?=\n|$)")
_A_COLON_HINT = re.compile(r"A[ \t]*:")  # a literal first: found at C speed, before the line-by-line regex
_BOLD = re.compile(r"\*\*([^*\n]{1,200})\*\*")
_NUMBER = re.compile(r"(?<![A-Za-z_\d])(?:-?\d[\d,]*(?:\.\d+)?|-?\.\d+)")  # not inside a word: AZYUK2A
_SENTENCE_END = re.compile(r"\.(?=\s|$)|;\s|\s+(?:because|since|which|so that)\s", re.I)
_NEXT_LINE = re.compile(r"[ \t*#:]*\n\s*([^\n]+)")
_WORD = re.compile(r"(?<![\\a-zA-Z])[a-zA-Z]{2,}")
_NUMBER_START = re.compile(r"[\s*:$\\({-]*(?:\\\$)?[\s$]*-?[\d.]")


def drop_continuation(text: str) -> str:
    """Cut the text at a hallucinated next question ("\\nQuestion:", "\\nQ:", "\\nProblem:").

    A numbered one ("Question 2:") only counts once an answer has been stated: solutions
    legitimately walk through "Question 1: ... Question 2: ..." before their final answer.
    """
    for match in _CONTINUATION.finditer(text):
        head = text[: match.start()]
        if not head.strip():
            continue
        if match.group(1) and not ("####" in head or "\\boxed" in head or _PHRASE.search(head)):
            continue
        return head
    return text


# between boxes that state one answer together: `\boxed{1}, \boxed{2}`, `\boxed{1} and \boxed{2}`
_BOX_GAP = re.compile(r"(?:[\s$,;.]|\\[,;:! ]|\\q?quad|\\\\|\b(?:and|or)\b|\\(?:text|mbox)\{\s*(?:and|or|,)?\s*\})*")
_EQUAL_GAP = re.compile(r"[\s$]*=[\s$]*")
# several math spans that state one answer together: `$x < 1$ or $x > 2$`, `$1$, $2$ and $3$`
_SPAN_GAP = re.compile(r"[ \t]*(?:,|;|,?[ \t]+(?:and|or))[ \t]*")
_SPAN_JOIN = re.compile(r"[ \t]*(,|;|,?[ \t]+(?:and|or)|)[ \t]*(?=\$|\\\(|\\\[)")
_STATEMENT = re.compile(
    r"^(?P<head>.*[a-zA-Z].*?)\s+(?:is|are|equals|was|will\s+be|would\s+be|must\s+be|should\s+be|becomes|=)\s+(?P<tail>.+)$",
    re.I | re.S,
)


class Answer(NamedTuple):
    """The final answer a text states, and the contents of the other boxes in it.

    `others` lets a caller refuse credit to a solution that boxes several different final
    answers when only one is asked for.
    """

    value: str | None
    others: tuple[str, ...] = ()


def _same_value(a: str, b: str) -> bool:
    """Cheap equality for de-duplicating boxes: equal after normalization, or equal numbers."""
    na, nb = normalize_math(a), normalize_math(b)
    if na == nb:
        return True
    x, y = parse_number(na), parse_number(nb)
    return x is not None and x == y


def _box_group(text: str, found: list[Box]) -> tuple[int, str | None]:
    """The final boxes that state one answer together, joined as a list; (index of the first)."""
    first = len(found) - 1
    values = [found[first].content]  # last first
    while first > 0 and len(values) <= MAX_LISTED:
        gap = text[found[first - 1].end:found[first].start]
        if len(gap) > 40:
            break
        if _EQUAL_GAP.fullmatch(gap):  # \boxed{25/13} = \boxed{1 12/13}: one value, stated twice
            first -= 1
            continue
        if not _BOX_GAP.fullmatch(gap):
            break
        first -= 1
        values.append(found[first].content)
    return first, joined_answers(reversed(values))


def joined_answers(values) -> str | None:
    """Several stated answers as one list answer `a, b`, repeats (also `15\\frac{39}{40}` and
    `\\frac{639}{40}`) counted once."""
    distinct: list[str] = []
    for value in dict.fromkeys(values):  # the same text once; equal values below
        if len(distinct) >= MAX_LISTED:
            return None
        if value and not any(_same_value(value, seen) for seen in distinct):
            distinct.append(value)
    return ", ".join(distinct) if distinct else None


def _joined_spans(value: str) -> str:
    """`$x < 1$ or $x > 2$` -> `x < 1 or x > 2`: consecutive math spans joined by `,`/and/or."""
    pieces: list[str] = []
    at = 0
    while True:
        left = next((left for left, _ in DELIMITERS if value.startswith(left, at)), None)
        if left is None:
            break
        right = dict(DELIMITERS)[left]
        end = math_span_end(value, left, right, at)
        pieces.append(value[at + len(left):end])
        at = end + len(right)
        joint = _SPAN_JOIN.match(value, at)
        if not joint or not joint.group(1):
            break
        word = joint.group(1).strip(" \t,;")
        pieces.append(f" {word} " if word else ", ")
        at = joint.end()
    return "".join(pieces)


def _clip(value: str) -> str | None:
    """Trim an answer statement's tail down to the answer itself."""
    value = value[:MAX_STATED_CHARS].strip().lstrip("*_:# \t").strip()
    if value.startswith(("\\boxed", "\\fbox")):
        box = box_at(value, 0)
        return box.content if box else None
    if value.startswith(("$", "\\(", "\\[")):
        value = _joined_spans(value)
    else:
        end = _SENTENCE_END.search(value)
        if end:
            value = value[: end.start()]
    value = value.strip().rstrip(".,;:!*_ \t").strip()
    return value or None


def _after_phrase(text: str, end: int) -> str | None:
    """The answer stated after a phrase ending at `end`: rest of the line, or the next line."""
    line_end = text.find("\n", end)
    line = text[end: line_end if line_end >= 0 else len(text)]
    if not line.strip(" \t*#:_"):
        match = _NEXT_LINE.match(text, end)
        line = match.group(1) if match else ""
    return _clip(line)


def _gsm8k_value(value: str | None) -> str | None:
    if not value:
        return None
    number = number_in_text(value)
    if number is None:
        return long_number_in_text(value)
    return format_number(number)


def _prose(value: str) -> str:
    """`value` without its LaTeX commands' arguments (words inside \\text{...} are answer words)."""
    if "\\" in value:
        value = re.sub(r"\\[a-zA-Z]+\s*\{[^{}]*\}", " ", value)
    if "$" in value:
        value = re.sub(r"\$[^$]*\$", " ", value)
    return value


def _statement_tail(value: str) -> str | None:
    """`The largest $n$ is 34` -> `34`: what a sentence says its subject is."""
    match = _STATEMENT.match(value)
    if match is None or len(_WORD.findall(_prose(match.group("head")))) == 0:
        return None
    return _clip(match.group("tail"))


def _math_value(value: str | None) -> str | None:
    """Keep `value` if it reads like a final answer (not a sentence); delimiters removed."""
    if not value:
        return None
    if len(value) <= MAX_ANSWER_CHARS and not value.startswith(("$", "\\(", "\\[")) and len(_WORD.findall(_prose(value))) > 1:
        tail = _statement_tail(value)
        if tail is not None:
            value = tail
    value = strip_delimiters(value)
    if "\\boxed" in value or "\\fbox" in value:
        value = last_boxed(value) or value
    if not value or len(value) > MAX_TEXT_CHARS:
        return None
    if len(_WORD.findall(_prose(value))) > 3 or not normalize_math(value):
        return None
    return value


def _phrase_matches(text: str, phrase: re.Pattern) -> Iterator[re.Match]:
    """`phrase.finditer(text)`, run only in windows around the keywords every match contains.

    A regex tried at every position of a long reply costs more than all the other grading work
    together; the keywords are found at C speed and are rare. A window never ends inside a word,
    so a `\\b` at its end is a real word boundary.
    """
    spots = []
    for word in _KEYWORDS[phrase]:
        at = text.find(word)
        while at >= 0:
            spots.append(at)
            at = text.find(word, at + 1)
    if not spots:
        return
    spots.sort()
    n = len(text)
    start, end = max(spots[0] - _NEAR, 0), spots[0] + _NEAR
    for spot in spots[1:]:
        if spot - _NEAR > end:
            yield from _window(text, phrase, start, end, n)
            start = spot - _NEAR
        end = spot + _NEAR
    yield from _window(text, phrase, start, end, n)


def _window(text: str, phrase: re.Pattern, start: int, end: int, n: int) -> Iterator[re.Match]:
    while end < n and (text[end].isalnum() or text[end] == "_"):
        end += 1
    return phrase.finditer(text, start, min(end, n))


def _strong_candidates(text: str, phrase: re.Pattern, with_hash: bool, found: list[Box]) -> Iterator[tuple[int, int, Callable[[], str | None]]]:
    """(position, index of the first box in the final group or -1, value getter)."""
    last = found[-1] if found else None
    for match in _phrase_matches(text, phrase):
        if last is not None and last.start < match.start() < last.end:
            continue  # \boxed{\text{The answer is } 5}: the box states the answer
        yield match.start(), -1, (lambda end=match.end(): _after_phrase(text, end))
    if found:
        first, content = _box_group(text, found)
        yield found[first].start, first, (lambda: content)
    if with_hash:
        hashes = list(_HASH.finditer(text))
        if hashes:
            yield hashes[-1].start(), -1, (lambda m=hashes[-1]: _clip(m.group(1)))
        colons = list(_A_COLON.finditer(text)) if _A_COLON_HINT.search(text) else None
        if colons:
            yield colons[-1].start(), -1, (lambda m=colons[-1]: _clip(m.group(1)))


_MORE_MATH = re.compile(r"[0-9$\\=]")


def _weak_candidates(text: str, dataset: str) -> Iterator[str | None]:
    bolds = [m.group(1) for m in _BOLD.finditer(text)]
    for bold in reversed(bolds):
        if _NUMBER_START.match(bold):
            yield _clip(bold)
            break
    if dataset == "math":
        tail = text[-2000:]
        spans = list(MATH_SPAN.finditer(tail))
        if spans:
            last = spans[-1]
            # only a formula that closes the reasoning, not one from its middle: what follows may
            # be sign-off chatter ("Hope this helps!") but no further number or math
            after = tail[last.end():]
            if len(after) <= 300 and (not _MORE_MATH.search(after) or is_unit(after)):
                first = len(spans) - 1  # `so $x = 2$ and $x = -3$.`: the closing run of formulas
                while first > 0 and _SPAN_GAP.fullmatch(tail, spans[first - 1].end(), spans[first].start()):
                    first -= 1
                if first < len(spans) - 1:
                    yield _joined_spans(tail[spans[first].start():last.end()])
                else:
                    yield next(g for g in last.groups() if g is not None)
    tail = text[-5000:]
    last = None
    for last in _NUMBER.finditer(tail):
        pass
    if last is not None:
        number = last.group(0).rstrip(",")
        if "," in number and (tail[last.start() - 1:last.start()] in ("(", "[") or tail[last.end():last.end() + 1] in (")", "]")):
            number = number.rsplit(",", 1)[1]  # a point `(3,5)`: its last coordinate, not a decimal comma
        yield number


def _prepare(text: object) -> str:
    if not isinstance(text, str):
        text = "" if text is None else str(text)
    if len(text) > MAX_TEXT_CHARS:
        text = text[-MAX_TEXT_CHARS:]
    return drop_continuation(text)


def _pick(text: str, phrase: re.Pattern, with_hash: bool, check) -> Answer | None:
    found = boxes(text) if ("\\boxed" in text or "\\fbox" in text) else []
    candidates = sorted(_strong_candidates(text, phrase, with_hash, found), key=lambda item: item[0], reverse=True)
    for position, first_box, value_of in candidates:
        value = check(value_of())
        if value is not None:
            if first_box >= 0:
                others = tuple(box.content for box in found[:first_box])
            else:
                others = tuple(box.content for box in found if box.start < position)
            return Answer(value, others)
    return None


def find_answer(text: object, dataset: str) -> Answer:
    """The final answer `text` states (value None if none) and the other boxed answers in it."""
    dataset = dataset_kind(dataset)
    text = _prepare(text)
    check = _gsm8k_value if dataset == "gsm8k" else _math_value
    answer = _pick(text, _PHRASE, True, check)
    if answer is not None:
        return answer
    for weak in _weak_candidates(text, dataset):
        value = check(weak)
        if value is not None:
            return Answer(value)
    return Answer(None)


def extract_answer(text: str, dataset: str) -> str | None:
    """The final answer `text` states, or None.

    GSM8K: a canonical number string ("1200", "0.5", "-3", "1/3"). MATH: the answer's LaTeX
    without `$` delimiters or `\\boxed{}` (compare it with `answers_match`).
    """
    return find_answer(text, dataset).value


def extract_strict(text: str, dataset: str) -> str | None:
    """Only an explicit "The answer is X" or a final `\\boxed{X}`; nothing else gets credit.

    This mirrors lm-eval's strict-match filter: a model that does not state its answer in the
    required format scores zero even when a number in its text happens to be right.
    """
    dataset = dataset_kind(dataset)
    text = _prepare(text)
    if dataset == "gsm8k":
        def check(value):
            return _gsm8k_value(value) if value and _NUMBER_START.match(value) else None
    else:
        check = _math_value
    answer = _pick(text, _STRICT_PHRASE, False, check)
    return answer.value if answer else None

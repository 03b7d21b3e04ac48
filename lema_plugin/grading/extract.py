"""Find the final answer a model states in free text.

The final answer is the LAST explicit statement of one ("The answer is X", "Final Answer: X",
"#### X", "A: X", `\\boxed{X}`); bold text, a closing formula and finally the last number are
fallbacks for text with no explicit statement. Text after a hallucinated next "Question:" / "Q:"
is ignored first, so an answer to an invented follow-up question is never graded.

All patterns are linear-time: a 20,000-character garbage completion costs about a millisecond.
"""
from __future__ import annotations

import re
from typing import Callable, Iterator

from .normalize import MAX_ANSWER_CHARS, normalize_math, strip_delimiters
from .numbers import format_number, number_in_text

MAX_TEXT_CHARS = 200_000  # longer completions are graded on their last 200,000 characters

_CONTINUATION = re.compile(r"\n[ \t]*(?:#+[ \t]*)?(?:Question|Q|Problem|Human|User)[ \t]*(\d*)[ \t]*[:\uff1a]")
_PHRASE = re.compile(
    r"(?:\b(?:the\s+)?(?:final\s+)?answer\s+(?:is|would\s+be|will\s+be|should\s+be)\b"
    r"|\b(?:final\s+)?answer\s*:|\bfinal\s+answer\b(?=[ \t*#]*\n))",
    re.I,
)
_STRICT_PHRASE = re.compile(r"\b(?:the\s+)?(?:final\s+)?answer\s+is\b", re.I)
_HASH = re.compile(r"####[ \t]*([^\n]*)")
_A_COLON = re.compile(r"(?:^|\n)[ \t]*A[ \t]*:[ \t]*(\$?[ \t]*-?[\d,]*\.?\d+)[ \t]*\.?[ \t]*(?=\n|$)")
_BOLD = re.compile(r"\*\*([^*\n]{1,200})\*\*")
_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?|-?\.\d+")
_CLOSING_MATH = re.compile(r"\$\$([^$]{1,400})\$\$|\$([^$]{1,400})\$|\\\((.{1,400}?)\\\)|\\\[(.{1,400}?)\\\]", re.S)
_BRACE_TOKENS = re.compile(r"\\.|[{}]", re.S)
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


def _boxed_content(text: str, start: int) -> str | None:
    """Content of the `\\boxed`/`\\fbox` command that starts at `start` (nested braces handled)."""
    i = text.find("x", start + 1) + 1  # just past \box / \fbox
    if text.startswith("ed", i):
        i += 2
    n = len(text)
    while i < n and text[i] in " \t":
        i += 1
    if i >= n:
        return None
    if text[i] != "{":  # `\boxed 5`: one token
        match = re.match(r"[^\s$]+", text[i:i + MAX_ANSWER_CHARS])
        return match.group(0).rstrip(".") if match else None
    depth = 0
    for token in _BRACE_TOKENS.finditer(text, i):
        ch = token.group(0)
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return text[i + 1:token.start()].strip()
    return None


def _last_boxed_at(text: str) -> tuple[int, str | None]:
    start = max(text.rfind("\\boxed"), text.rfind("\\fbox"))
    if start < 0:
        return -1, None
    return start, _boxed_content(text, start)


def last_boxed(text: str) -> str | None:
    """Content of the last `\\boxed{...}` / `\\fbox{...}` in `text`, or None."""
    if not text:
        return None
    return _last_boxed_at(text)[1]


def _math_span(text: str) -> str | None:
    """`text` starts with a math delimiter: the content up to its closing delimiter."""
    for left, right in (("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]")):
        if text.startswith(left):
            close = text.find(right, len(left))
            while right == "$" and close > 0 and text[close - 1] == "\\":  # \$ is a dollar sign
                close = text.find(right, close + 1)
            if close < 0:
                return text[len(left):]
            return text[len(left):close]
    return None


def _clip(value: str) -> str | None:
    """Trim an answer statement's tail down to the answer itself."""
    value = value[: 2 * MAX_ANSWER_CHARS].strip().lstrip("*_:# \t").strip()
    if value.startswith(("\\boxed", "\\fbox")):
        return _boxed_content(value, 0)
    span = _math_span(value)
    if span is not None:
        value = span
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
    return None if number is None else format_number(number)


def _math_value(value: str | None) -> str | None:
    """Keep `value` if it reads like a final answer (not a sentence); delimiters removed."""
    if not value:
        return None
    value = strip_delimiters(value)
    if "\\boxed" in value or "\\fbox" in value:
        value = last_boxed(value) or value
    if len(value) > MAX_ANSWER_CHARS or not value:
        return None
    prose = value
    if "\\" in prose:  # words inside \text{...} are part of the answer
        prose = re.sub(r"\\[a-zA-Z]+\s*\{[^{}]*\}", " ", prose)
    if len(_WORD.findall(prose)) > 3 or not normalize_math(value):
        return None
    return value


def _strong_candidates(text: str, phrase: re.Pattern, with_hash: bool) -> Iterator[tuple[int, Callable[[], str | None]]]:
    for match in phrase.finditer(text):
        yield match.start(), (lambda end=match.end(): _after_phrase(text, end))
    start, content = _last_boxed_at(text)
    if start >= 0:
        yield start, (lambda: content)
    if with_hash:
        hashes = list(_HASH.finditer(text))
        if hashes:
            yield hashes[-1].start(), (lambda m=hashes[-1]: _clip(m.group(1)))
        colons = list(_A_COLON.finditer(text))
        if colons:
            yield colons[-1].start(), (lambda m=colons[-1]: _clip(m.group(1)))


_MORE_MATH = re.compile(r"[0-9$\\=]")


def _weak_candidates(text: str, dataset: str) -> Iterator[str | None]:
    bolds = [m.group(1) for m in _BOLD.finditer(text)]
    for bold in reversed(bolds):
        if _NUMBER_START.match(bold):
            yield _clip(bold)
            break
    if dataset == "math":
        tail = text[-2000:]
        spans = list(_CLOSING_MATH.finditer(tail))
        if spans:
            last = spans[-1]
            # only a formula that closes the reasoning, not one from its middle: what follows may
            # be sign-off chatter ("Hope this helps!") but no further number or math
            after = tail[last.end():]
            if len(after) <= 300 and not _MORE_MATH.search(after):
                yield next(g for g in last.groups() if g is not None)
    numbers = _NUMBER.findall(text[-5000:])
    if numbers:
        yield numbers[-1].rstrip(",")


def dataset_kind(dataset: str) -> str:
    name = (dataset or "").lower()
    if name == "gsm8k":
        return "gsm8k"
    if name in ("math", "math500"):
        return "math"
    raise ValueError(f"unknown dataset {dataset!r} (expected gsm8k, math or math500)")


def _prepare(text: object) -> str:
    if not isinstance(text, str):
        text = "" if text is None else str(text)
    if len(text) > MAX_TEXT_CHARS:
        text = text[-MAX_TEXT_CHARS:]
    return drop_continuation(text)


def _pick(candidates, check) -> str | None:
    for _, value_of in sorted(candidates, key=lambda item: item[0], reverse=True):
        value = check(value_of())
        if value is not None:
            return value
    return None


def extract_answer(text: str, dataset: str) -> str | None:
    """The final answer `text` states, or None.

    GSM8K: a canonical number string ("1200", "0.5", "-3", "1/3"). MATH: the answer's LaTeX
    without `$` delimiters or `\\boxed{}` (compare it with `answers_match`).
    """
    dataset = dataset_kind(dataset)
    text = _prepare(text)
    check = _gsm8k_value if dataset == "gsm8k" else _math_value
    value = _pick(_strong_candidates(text, _PHRASE, with_hash=True), check)
    if value is not None:
        return value
    for weak in _weak_candidates(text, dataset):
        value = check(weak)
        if value is not None:
            return value
    return None


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
    return _pick(_strong_candidates(text, _STRICT_PHRASE, with_hash=False), check)

"""Read a corrector's reply: which step is wrong, why, and the corrected solution.

The prompts ask for::

    Incorrect Step: Step k.
    Explanation: ...
    Correct Solution:
    Step k: ... The answer is X.

Real replies drift from that shape, and a drifted reply is still a good correction, so the
parser accepts:

- markdown around the labels (`**Incorrect Step:** Step 2`, `### Correct Solution`, bullets);
- the step written as "Step 2", "step 2", "2", "#2", "(2)", "Step two" or "the second step",
  and the label spelled "Incorrect step", "First incorrect step", "Wrong step" or
  "The first incorrect step is ...";
- chatter before the first label, and after the corrected solution's answer line;
- a missing "Explanation:" label (the text after the step number is the explanation) and a
  missing "Correct Solution:" label (the solution starts at the first "Step k:" line after the
  explanation);
- a base model running on into another example ("Question: ...", a second "Incorrect Step:"),
  which is cut off.

Whatever cannot be read raises `UnparseableReply` with a short reason, which the stage records.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["ParsedCorrection", "UnparseableReply", "parse_correction"]

_NUMBER_WORDS = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9, "ten": 10, "eleven": 11, "twelve": 12,
}
_ORDINALS = {
    "first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "sixth": 6, "seventh": 7,
    "eighth": 8, "ninth": 9, "tenth": 10, "eleventh": 11, "twelfth": 12,
}
_WORDS = "|".join(_NUMBER_WORDS)
_ORDS = "|".join(_ORDINALS)

# Markdown that may wrap a label or a value: bold/italic markers, headings, quotes, bullets.
_DECOR = r"[ \t*_#>`-]*"
_STEP_LABEL = r"(?:the\s+)?(?:first\s+)?(?:incorrect|wrong|erroneous|mistaken|faulty)\s+step"
_STEP_VALUE = rf"(?:step\s*#?\s*\(?(?P<num>\d+)\)?|#?\(?(?P<bare>\d+)\)?(?!\s*[-+*/^=.,]\s*\d)|step\s+(?P<word>{_WORDS})\b|(?:the\s+)?(?P<ord>{_ORDS})\s+step)"

# "Incorrect Step: Step 2" / "The first incorrect step is step 2" / "**Wrong step** - 2"
_STEP = re.compile(
    rf"{_STEP_LABEL}{_DECOR}(?:[:=\-\u2013\u2014]|\s(?:is|was)\b:?){_DECOR}{_STEP_VALUE}",
    re.I,
)
# Fallback: "Step 2 is the first incorrect step" / "The error is in step 2"
_STEP_PROSE = re.compile(
    r"(?:step\s+(?P<num>\d+)\s+is\s+(?:the\s+first\s+)?(?:incorrect|wrong)"
    r"|(?:error|mistake)\s+is\s+in\s+step\s+(?P<num2>\d+))",
    re.I,
)
# Labels end with a colon (anywhere, so a one-line reply works) or stand alone on their line.
_EXPLANATION = re.compile(r"(?i)\b(?:explanation|reason)[ \t*_]*:[ \t*_]*")
_SOLUTION_WORDS = r"(?:(?:correct(?:ed)?|revised|fixed)\s+solution|correction)"
_SOLUTION = re.compile(
    rf"(?im)\b{_SOLUTION_WORDS}[ \t*_]*:[ \t*_]*|^{_DECOR}(?:the\s+)?{_SOLUTION_WORDS}[ \t*_]*$"
)
# Where a base model starts the next example, or repeats the format, the reply is over.
_RUN_ON = re.compile(rf"(?im)^{_DECOR}(?:question|original solution)\s*:|^{_DECOR}{_STEP_LABEL}[ \t*_]*:")
_ANSWER_LINE = re.compile(r"(?i)the\s+(?:final\s+)?answer\s+is\b")
_STEP_LINE = r"(?im)^{decor}step\s*{k}\b"


@dataclass(frozen=True)
class ParsedCorrection:
    incorrect_step: int
    explanation: str
    corrected_solution: str


class UnparseableReply(ValueError):
    """The reply does not contain a readable correction; `args[0]` says what is missing."""


def parse_correction(text: str) -> ParsedCorrection:
    """Read a corrector reply; raise UnparseableReply naming what could not be found."""
    if not text or not text.strip():
        raise UnparseableReply("empty reply")
    text = text.replace("\r\n", "\n").replace("\r", "\n")

    match = _STEP.search(text) or _STEP_PROSE.search(text)
    if match is None:
        raise UnparseableReply("no 'Incorrect Step: Step k' line")
    step = _step_number(match)
    rest = text[match.end():]

    solution_match = _SOLUTION.search(rest)
    if solution_match is not None:
        before, solution = rest[: solution_match.start()], rest[solution_match.end():]
    else:
        restart = re.search(_STEP_LINE.format(decor=_DECOR, k=step), rest)
        if restart is None:
            raise UnparseableReply("no 'Correct Solution:' section")
        before, solution = rest[: restart.start()], rest[restart.start():]

    explanation_match = _EXPLANATION.search(before)
    explanation = before[explanation_match.end():] if explanation_match else before
    explanation = _clean(re.sub(r"^[ \t*_]*[.):,;\-\u2013\u2014]*", "", explanation))
    if not explanation:
        raise UnparseableReply("no explanation")

    solution = _cut_solution(solution)
    if not solution:
        raise UnparseableReply("empty corrected solution")
    return ParsedCorrection(step, explanation, solution)


def _step_number(match: re.Match) -> int:
    groups = match.groupdict()
    for name in ("num", "bare", "num2"):
        if groups.get(name):
            return int(groups[name])
    if groups.get("word"):
        return _NUMBER_WORDS[groups["word"].lower()]
    return _ORDINALS[groups["ord"].lower()]


def _cut_solution(solution: str) -> str:
    """Drop a run-on into another example, and chatter after the answer line."""
    run_on = _RUN_ON.search(solution)
    if run_on is not None:
        solution = solution[: run_on.start()]
    answer = _ANSWER_LINE.search(solution)
    if answer is not None:
        line_end = solution.find("\n", answer.end())
        if line_end != -1:
            solution = solution[:line_end]
    return solution.strip()


def _clean(text: str) -> str:
    """Explanation text: markdown emphasis and a dangling bullet dropped, whitespace collapsed."""
    return " ".join(text.replace("**", "").split()).rstrip(" -*_#>")

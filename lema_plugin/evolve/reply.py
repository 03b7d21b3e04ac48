"""Reading the strong model's replies: a new question out of a generation, a majority answer out
of K solutions."""
from __future__ import annotations

import re
from collections import Counter

from lema_plugin.text import dedupe_key

_LABEL = re.compile(r"^\s*(?:#+\s*)?\**\s*(?:new\s+)?(?:problem|question)\s*\d*\s*\**\s*[:.]\s*\**\s*", re.IGNORECASE)
_STOP = re.compile(r"^\s*\**\s*(?:answer|solution|final answer|note|explanation)\b\s*\**\s*:", re.IGNORECASE | re.MULTILINE)


def parse_new_question(text: str) -> str | None:
    """The new question in a generator reply: labels and markdown removed, anything after an
    `Answer:`/`Solution:` line dropped. None when nothing usable is left."""
    text = text.strip()
    labelled = list(re.finditer(r"(?im)^.*?\b(?:new\s+)(?:problem|question)\s*\**\s*:", text))
    if labelled:
        text = text[labelled[-1].end():]
    text = _LABEL.sub("", text, count=1)
    stop = _STOP.search(text)
    if stop:
        text = text[: stop.start()]
    text = text.strip().strip('"').strip("*").strip()
    return text if len(dedupe_key(text).split()) >= 3 else None


def majority(predictions: list[str | None], dataset: str, answers_match) -> tuple[str | None, int, bool]:
    """Group predictions by equivalence; return (answer, votes, clear).

    `answer` is the most frequent spelling inside the largest group; `clear` is False when two
    groups tie for first place. Unextractable answers (None) vote for nothing.
    """
    groups: list[list[str]] = []
    for prediction in predictions:
        if prediction is None:
            continue
        for group in groups:
            if answers_match(prediction, group[0], dataset):
                group.append(prediction)
                break
        else:
            groups.append([prediction])
    if not groups:
        return None, 0, False
    groups.sort(key=len, reverse=True)
    clear = len(groups) == 1 or len(groups[0]) > len(groups[1])
    answer = Counter(groups[0]).most_common(1)[0][0]
    return answer, len(groups[0]), clear

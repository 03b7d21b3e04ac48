"""Read the index a corrector named from its reply, under either protocol.

Both return a `Reading`: the 0-based index of the paragraph named as the first wrong one (-1:
"no error", ProcessBench protocol only), or None with the reason the reply could not be read.

- LeMa protocol: the reply is read by `lema correct`'s own parser (`correct.parse`), so a reply
  counts as parsed exactly when `lema correct` could use it; the step it names is 1-based, the
  label 0-based, so "Step k" is index k - 1.
- ProcessBench protocol: the last `\\boxed{}` of the reply, holding a whole number (`$`,
  spaces, a trailing period or a "paragraph" prefix around it are tolerated).

An index outside the item's paragraphs is returned as named; the metric counts it as wrong and
reports it apart.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from lema_plugin.correct.parse import UnparseableReply, parse_correction
from lema_plugin.correct.prompt import reply_text
from lema_plugin.grading.latex import last_boxed
from lema_plugin.llm.types import Endpoint

_INDEX = re.compile(r"^(?:\\text\{)?\s*(?:paragraph[_\s]*)?(-?\d+)\s*\}?\.?$", re.I)


@dataclass(frozen=True)
class Reading:
    index: int | None  # the named paragraph, 0-based; -1 for "no error"; None: unreadable
    reason: str | None = None  # why it is None


def read_lema(raw: str, endpoint: Endpoint) -> Reading:
    try:
        parsed = parse_correction(reply_text(endpoint, raw))
    except UnparseableReply as exc:
        return Reading(None, str(exc))
    return Reading(parsed.incorrect_step - 1)


def read_processbench(raw: str) -> Reading:
    content = last_boxed(raw or "")
    if content is None:
        return Reading(None, "no \\boxed{} index")
    match = _INDEX.match(content.replace("$", "").strip())
    if match is None:
        return Reading(None, f"\\boxed{{{content[:40]}}} holds no whole number")
    return Reading(int(match.group(1)))


def read_reply(protocol: str, raw: str, endpoint: Endpoint) -> Reading:
    return read_lema(raw, endpoint) if protocol == "lema" else read_processbench(raw)

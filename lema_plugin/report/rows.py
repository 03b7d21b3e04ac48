"""The report's training-data section: what each exported mix trains on, row by row, as axolotl
reads it (chat turns, input/output segments, instruction/output, DPO chosen and rejected, PRM
steps and labels), the parts that carry loss marked, long texts folded. Every string is escaped.
"""
from __future__ import annotations

from html import escape

def training_section(data_rows: dict[str, list[dict]], formats: dict[str, str], counts: dict[str, dict]) -> str:
    """What each exported mix trains on: its format and, for each kind of row, the first rows as
    axolotl reads them (prompt and response, DPO chosen and rejected, PRM steps and labels)."""
    if not any(data_rows.values()):
        return ""
    html = ["<section id='training'><h2>Training data</h2>"
            "<p class='sub'>The first rows of each kind in every exported mix, as written to <code>train.jsonl</code>; "
            "only the parts marked <em>trained</em> carry loss.</p>"]
    for mix, rows in sorted(data_rows.items()):
        if not rows:
            continue
        total = ((counts.get(mix) or {}).get("train") or {}).get("examples")
        html.append(f"<h3>{escape(mix)}</h3><p class='meta'>format {escape(formats.get(mix) or '?')}"
                    + (f"; {total:,} train rows" if isinstance(total, int) else "") + "</p>")
        for row in rows:
            html.append(f"<article class='row'><header><span class='tag'>{escape(str(row.get('kind')))}</span>"
                        f"<span class='meta'>{escape(str(row.get('id')))} from {escape(str(row.get('source')))}</span></header>"
                        f"{_row_body(row)}</article>")
    return "".join(html) + "</section>"


def _row_body(row: dict) -> str:
    """One training row's text, by its axolotl format."""
    parts: list[tuple[str, object, bool]] = []  # (label, text, trained)
    if isinstance(row.get("messages"), list):
        for message in row["messages"]:
            if isinstance(message, dict):
                parts.append((str(message.get("role")), message.get("content"), message.get("role") == "assistant"
                              and "chosen" not in row))
    if isinstance(row.get("segments"), list):
        parts += [("prompt" if not seg.get("label") else "response", seg.get("text"), bool(seg.get("label")))
                  for seg in row["segments"] if isinstance(seg, dict)]
    if "instruction" in row:
        parts += [("instruction", row.get("instruction"), False), ("output", row.get("output"), True)]
    for side in ("chosen", "rejected"):
        if isinstance(row.get(side), dict):
            parts.append((side, row[side].get("content"), True))
    if isinstance(row.get("completions"), list):
        parts.append(("prompt", row.get("prompt"), False))
        labels = row.get("labels") or []
        steps = "\n".join(f"[{'+' if i < len(labels) and labels[i] else '-'}] {step}"
                          for i, step in enumerate(row["completions"]))
        parts.append(("steps, labelled + / -", steps, True))
    return "".join(f"<h4>{escape(label)}{' <em>(trained)</em>' if trained else ''}</h4>{_long(text)}"
                   for label, text, trained in parts)


LONG = 600  # characters shown before a text is folded


def _long(text) -> str:
    """A text in a <pre>; a long one folded, its start shown, the rest a click away."""
    text = "" if text is None else str(text)
    if len(text) <= LONG:
        return f"<pre class='text'>{escape(text)}</pre>"
    return (f"<details class='long'><summary><pre class='text'>{escape(text[:LONG // 2])}…</pre>"
            f"<span class='more'>show all {len(text):,} characters</span></summary><pre class='text'>{escape(text)}</pre></details>")

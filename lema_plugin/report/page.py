"""Lay the report out as one self-contained HTML page.

Everything is inline (style, script, plots as SVG images, the viewer's records as one JSON
blob), so the file opens offline and can be mailed around. Every string from a record goes
through `html.escape` here or through `textContent` in the viewer; the JSON blob escapes `<`,
`>` and `&` so a record holding `</script>` cannot end the script element early.
"""
from __future__ import annotations

import base64
import json
from datetime import datetime, timezone
from html import escape
from importlib import resources

from lema_plugin.grading.official import METRICS

from .figures import CHECK_LABELS, FUNNEL, REASON_LABELS, Figures, totals
from .rows import training_section


def _asset(name: str) -> str:
    return resources.files(__package__).joinpath("assets", name).read_text(encoding="utf-8")


def script_json(value) -> str:
    """JSON safe to place inside a <script> element."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    for char, code in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"), ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        text = text.replace(char, code)
    return text


def _table(headers: list[str], rows: list[list], text_columns: int | set[int] = 1) -> str:
    """Columns before `text_columns` (or those in it, when a set) are text, aligned left."""
    left = text_columns if isinstance(text_columns, set) else set(range(text_columns))

    def cell(tag: str, value, i: int) -> str:
        cls = ' class="text"' if i in left else ""
        if isinstance(value, float):
            value = f"{value:.3f}"
        elif isinstance(value, int):
            value = f"{value:,}"
        return f"<{tag}{cls}>{escape('-' if value is None else str(value))}</{tag}>"

    head = "".join(cell("th", h, i) for i, h in enumerate(headers)) if any(headers) else ""
    body = "".join("<tr>" + "".join(cell("td", v, i) for i, v in enumerate(row)) + "</tr>" for row in rows)
    return f"<table>{f'<thead><tr>{head}</tr></thead>' if head else ''}<tbody>{body}</tbody></table>"


def _plot(svgs: dict[str, str], name: str) -> str:
    if name not in svgs:
        return ""
    encoded = base64.b64encode(svgs[name].encode("utf-8")).decode("ascii")
    return f'<figure class="plot" data-plot="{name}"><img alt="{name.replace("_", " ")}" src="data:image/svg+xml;base64,{encoded}"></figure>'


def _pct(part: int, whole: int) -> str:
    return f"{part:,}/{whole:,} ({100 * part / whole:.1f}%)" if whole else "-"


def _stages_table(figures: Figures) -> str:
    """One row per stage that wrote this folder, in pipeline order: its steps from what went in to
    what came out, and why records fell out (every registered stage, a plugin's included)."""
    if not figures.stages_funnel:
        return ""
    rows = [[row.stage, " \u2192 ".join(f"{label} {count:,}" for label, count in row.steps),
             ", ".join(f"{REASON_LABELS.get(reason, reason.replace('_', ' '))} {count:,}" for reason, count in row.dropped.items())]
            for row in figures.stages_funnel]
    return "<h4>By stage</h4>" + _table(["stage", "in \u2192 out", "dropped"], rows, 3)


def _funnel_section(figures: Figures, svgs: dict[str, str]) -> str:
    if not figures.funnel:
        stages = _stages_table(figures)
        return f"<section id='funnel'><h2>Funnel</h2>{stages}</section>" if stages else ""
    steps = [s for s in FUNNEL if s in figures.stages]
    rows = [[stage, generator, *(counts[s] for s in steps)] for (stage, generator), counts in figures.funnel.items()]
    if len(figures.funnel) > 1:
        rows.append(["all", "", *(totals(figures)[s] for s in steps)])
    drops = []
    for (stage, generator), reasons in figures.dropped.items():
        for reason, count in sorted(reasons.items(), key=lambda kv: -kv[1]):
            drops.append([stage, generator, REASON_LABELS.get(reason, reason), reason, count])
    html = ["<section id='funnel'><h2>Funnel</h2>", f"<div class='plots'>{_plot(svgs, 'funnel')}</div>",
            _table(["questions", "generator", *steps], rows, 2), _stages_table(figures)]
    if drops:
        html += ["<h4>Dropped, and why</h4>", _table(["questions", "generator", "reason", "code", "records"], drops, 4)]
    html.append("<p class='note'>Paths and replies are counted per record: a question has several paths, a mistake "
                "may get several correction attempts.</p></section>")
    return "".join(html)


def _generators_section(figures: Figures, svgs: dict[str, str]) -> str:
    if not figures.accuracy and not figures.mistakes_per_question:
        return ""
    rows = []
    for generator in sorted(set(figures.accuracy) | set(figures.mistakes_per_question)):
        rate = figures.accuracy.get(generator)
        per_question = figures.mistakes_per_question.get(generator, {})
        mistakes = sum(per_question.values())
        rows.append([generator, rate.total if rate else None, rate.rate if rate else None, mistakes,
                     len(per_question), mistakes / len(per_question) if per_question else None])
    return ("<section id='generators'><h2>Generators</h2>"
            f"<div class='plots'>{_plot(svgs, 'accuracy')}{_plot(svgs, 'mistakes_per_question')}</div>"
            + _table(["generator", "answered paths", "accuracy", "mistakes kept", "questions with a mistake",
                      "mistakes per such question"], rows) + "</section>")


def _corrections_section(figures: Figures, svgs: dict[str, str]) -> str:
    if not any(figures.first_step.values()) and not figures.by_level and not figures.by_subject and not figures.correctors:
        return ""
    html = ["<section id='corrections'><h2>Corrections</h2><div class='plots'>",
            _plot(svgs, "first_step"), _plot(svgs, "by_level"), _plot(svgs, "by_subject"), "</div>"]
    if figures.correctors:
        html.append("<h4>By corrector</h4>" + _table(
            ["corrector", "mistakes asked", "replies", "parsed", "verified", "requests failed", "mistakes corrected", "success"],
            [[name, c["mistakes"], c["replies"], c["parsed"], c["verified"], c["failed"], c["corrected"],
              c["corrected"] / c["mistakes"] if c["mistakes"] else None] for name, c in figures.correctors.items()]))
    for title, rates in (("MATH level", figures.by_level), ("subject", figures.by_subject)):
        if rates:
            html.append(_table([title, "mistakes", "corrected", "success"],
                               [[k, r.total, r.hits, r.rate] for k, r in rates.items()]))
    if not figures.by_level and not figures.by_subject:
        html.append("<p class='note'>Success by level and subject needs MATH records (GSM8K has neither).</p>")
    return "".join(html) + "</section>"


def _first_error_section(figures: Figures) -> str:
    """The first-error checks: how often the named first wrong step is confirmed, by the generator
    that made the mistake, by MATH level and by corrector (each check is in the viewer too)."""
    if not figures.first_error_reasons:
        return ""
    checked = sum(figures.first_error_reasons.values())
    html = ["<section id='first-error'><h2>First-error checks</h2>",
            _table(["verdict", "meaning", "corrections"],
                   [[reason, CHECK_LABELS.get(reason, reason), count]
                    for reason, count in figures.first_error_reasons.most_common()], 2)]
    for group, rates in figures.first_error.items():
        title = {"generator": "generator (made the mistake)", "level": "MATH level"}.get(group, group)
        html.append(_table([title, "checked", "confirmed", "rate"], [[k, r.total, r.hits, r.rate] for k, r in rates.items()]))
    html.append(f"<p class='note'>{checked:,} corrections checked by sampled continuations (<code>lema first-error</code>); "
                "the viewer shows each one's verdict and success rates (filter by check).</p></section>")
    return "".join(html)


def _tokens_section(figures: Figures, svgs: dict[str, str], run_summary: dict | None) -> str:
    if not figures.tokens:
        return ""
    rows = [[stage, int(t["prompt"]), int(t["completion"]), f"${t['cost']:.4f}" if "cost" in t else None]
            for stage, t in figures.tokens.items()]
    usage = (run_summary or {}).get("usage") or {}
    if usage.get("prompt_tokens") is not None:  # what `lema run`'s client paid for, this session
        rows.append(["lema run, last session (client's count)", usage.get("prompt_tokens"), usage.get("completion_tokens"),
                     f"${usage['cost']:.4f}" if isinstance(usage.get("cost"), (int, float)) else None])
    return ("<section id='tokens'><h2>Tokens and cost</h2>"
            f"<div class='plots'>{_plot(svgs, 'tokens')}</div>"
            + _table(["stage", "prompt tokens", "completion tokens", "cost"], rows)
            + "<p class='note'>Tokens and dollars as the client counted them, over every run of each stage (the "
              "folder's usage.jsonl; answers from the cache cost nothing). Cost shows where the endpoint had a price "
              "(`;price=IN/OUT`; batch answers at the batch price).</p></section>")


def _stage_sections(figures: Figures) -> str:
    """The sections stages give of their own (`Stage.section`), each a title, a table and a note."""
    html = []
    for section in figures.stage_sections:
        anchor = "stage-" + "".join(c if c.isalnum() else "-" for c in section.title.lower())
        html.append(f"<section id='{escape(anchor)}'><h2>{escape(section.title)}</h2>"
                    + _table(section.headers, section.rows)
                    + (f"<p class='note'>{escape(section.note)}</p>" if section.note else "") + "</section>")
    return "".join(html)


def _eval_section(evals: list[dict]) -> str:
    if not evals:
        return ""
    rows = [[_evaluated(e), e["task"], *(e.get(metric) for metric in METRICS), e["model"], e["file"]] for e in evals]
    return ("<section id='eval'><h2>lm-eval scores</h2>"
            + _table(["evaluated", "task", *METRICS, "model_args", "results file"], rows, {0, 1, 5, 6})
            + "<p class='note'>official_match: the official LeMa scoring (the text after the last \"The answer is \", "
              "compared as a number for GSM8K and, after the Hendrycks normalization, as a string for MATH), "
              "the paper-comparable score; strict_match: \"The answer is X\" or a final \\boxed{}, judged by the robust "
              "grader; exact_match: flexible answer extraction. Results without official_match were written by an "
              "older version of the tasks. <code>lema run</code> trains and evaluates the LeMa mix; train the CoT-alone "
              "mix the same way and compare the two with <code>lema compare</code>.</p></section>")


def _evaluated(row: dict) -> str:
    """What a results file scored: the mix folder it sits in, else what its model_args say."""
    if row["source"]:
        return row["source"]
    if "peft=" in row["model"]:
        # data/lema/adapter: where `lema run` trains the LeMa mix's ready config (train/adapter: older runs)
        ours = ("data/lema/adapter", "train/adapter")
        return "lema (this run's adapter)" if any(part in row["model"] for part in ours) else "an adapter"
    return "base model"


def compare_section(result, show: int = 50) -> str:
    """A `lema compare` result (a `compare.Comparison`) as a section."""
    from .compare import HEADERS

    o = result.overall

    def row(p) -> list:
        return [p.label, p.n, p.accuracy_a, p.accuracy_b, f"{p.difference:+.3f}", f"[{p.low:+.3f}, {p.high:+.3f}]",
                p.a_only, p.b_only, f"{p.p_value:.3g}"]

    html = ["<section id='compare'><h2>Paired comparison</h2>",
            f"<p>A: <code>{escape(result.a)}</code><br>B: <code>{escape(result.b)}</code><br>"
            f"metric {escape(result.metric)}; {o.n:,} paired questions; 95% interval from {result.rounds:,} paired "
            f"bootstrap resamples (seed {result.seed}); p from McNemar's exact test (two-sided binomial test on the "
            "questions only one model got right).</p>",
            _table(HEADERS, [row(o)])]
    for group, rows in result.groups.items():
        html += [f"<h4>by {escape(group)}</h4>", _table([group, *HEADERS[1:]], [row(p) for p in rows])]
    for title, flipped in (("Right in A, wrong in B", result.a_wins), ("Right in B, wrong in A", result.b_wins)):
        html.append(f"<h4>{title}: {len(flipped):,}</h4>")
        if flipped:
            html.append(_table(["task", "doc_id", "level", "subject", "question", "answer A", "answer B", "gold"],
                               [[q.task, q.doc_id, q.level, q.subject, q.question[:300], q.answer_a, q.answer_b, q.gold]
                                for q in flipped[:show]], 8))
        if len(flipped) > show:
            html.append(f"<p class='note'>... and {len(flipped) - show:,} more</p>")
    return "".join(html) + "</section>"


def _viewer_section(figures: Figures) -> str:
    if not figures.items["items"]:
        return ""
    return ("<section id='viewer'><h2>Mistakes and corrections</h2>"
            "<p class='sub'>Each item: the question, the wrong path with the step the corrector named highlighted, "
            "the explanation, the corrected solution, both answers and the verdict. Filters are kept in the URL.</p>"
            "<div id='viewer-filters'></div>"
            "<div class='pager'><button id='viewer-prev' type='button'>previous</button>"
            "<span id='viewer-count'></span><button id='viewer-next' type='button'>next</button></div>"
            "<div id='viewer-items'></div>"
            f"<script type='application/json' id='viewer-data'>{script_json(figures.items)}</script>"
            "</section>")


def _overview(title: str, figures: Figures | None, run_summary: dict | None) -> str:
    parts = [f"<h1>{escape(title)}</h1>",
             f"<p class='sub'>LeMa report, written {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC"
             + (f"; datasets: {escape(', '.join(figures.datasets))}" if figures and figures.datasets else "")
             + (f"; {figures.cot:,} CoT examples" if figures and figures.cot else "") + "</p>"]
    for alert in (run_summary or {}).get("alerts") or []:
        parts.append(f"<p class='alert'>{escape(str(alert))}</p>")
    if run_summary and run_summary.get("rows"):
        rows = [[label, value] for label, value in run_summary["rows"].items()]
        timings = run_summary.get("timings") or {}
        if timings:
            rows.append(["time", ", ".join(f"{stage} {seconds:.0f}s" for stage, seconds in timings.items())])
        parts.append("<section id='summary'><h2>Run summary</h2>" + _table(["", ""], rows, 2) + "</section>")
    return "".join(parts)


def render(title: str, figures: Figures | None = None, svgs: dict[str, str] | None = None,
           evals: list[dict] | None = None, run_summary: dict | None = None,
           comparisons=(), training=None) -> str:
    """The page. `training` is (rows, formats, counts) of the exported mixes (`gather.RunData`)."""
    svgs = svgs or {}
    body = [_overview(title, figures, run_summary)]
    if figures is not None:
        body += [_funnel_section(figures, svgs), _generators_section(figures, svgs),
                 _corrections_section(figures, svgs), _first_error_section(figures), _stage_sections(figures),
                 _tokens_section(figures, svgs, run_summary)]
    if training is not None:
        body.append(training_section(*training))
    body.append(_eval_section(evals or []))
    body += [compare_section(c) for c in comparisons]
    if figures is not None:
        body.append(_viewer_section(figures))
    return ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            "<meta name='viewport' content='width=device-width, initial-scale=1'>"
            f"<title>{escape(title)}</title><style>{_asset('style.css')}</style></head>"
            f"<body><main>{''.join(body)}</main><script>{_asset('viewer.js')}</script></body></html>\n")

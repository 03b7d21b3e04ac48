"""The report's plots: matplotlib on the Agg backend, each figure rendered to an SVG string.

Figures are small and flat so they read at a glance; labels come from the data (generator
names, subjects) and are drawn as literal text, never parsed as mathtext.
"""
from __future__ import annotations

import io
from collections import Counter

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import EngFormatter, MaxNLocator  # noqa: E402

from .figures import FUNNEL, Figures, Rate, totals  # noqa: E402

STYLE = {
    "text.parse_math": False,  # a `$` in a model or subject name is just a character
    "svg.hashsalt": "lema-report",  # stable ids: the same run gives the same file
    "font.size": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.titlesize": 10,
    "axes.titleweight": "bold",
}
BLUE, ORANGE, GREY = "#3b6ea8", "#d9822b", "#9aa5b1"


def _svg(fig) -> str:
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg")
    plt.close(fig)
    text = buffer.getvalue()
    return text[text.index("<svg"):]  # drop the XML prolog and doctype: the page inlines it


def _figure(width: float = 4.9, height: float = 2.8):
    return plt.subplots(figsize=(width, height), layout="constrained")


def funnel(figures: Figures) -> str | None:
    counts = totals(figures)
    steps = [s for s in FUNNEL if s in figures.stages]
    if len(steps) < 2:
        return None
    with plt.rc_context(STYLE):
        fig, ax = _figure(4.9, 0.35 * len(steps) + 0.8)
        values = [counts[s] for s in steps]
        bars = ax.barh(steps[::-1], values[::-1], color=BLUE)
        ax.bar_label(bars, labels=[f"{v:,}" for v in values[::-1]], padding=3)
        ax.set_title("From problems to exported corrections")
        ax.set_xlabel("records")
        ax.xaxis.set_major_formatter(EngFormatter(sep=""))
        ax.margins(x=0.15)
        return _svg(fig)


def accuracy(figures: Figures) -> str | None:
    rates = {g: r for g, r in figures.accuracy.items() if r.total}
    if not rates:
        return None
    with plt.rc_context(STYLE):
        fig, ax = _figure(4.9, 0.35 * len(rates) + 0.9)
        names = list(rates)[::-1]
        ax.barh([f"{n}  {rates[n].rate:.1%} of {rates[n].total:,}" for n in names], [rates[n].rate for n in names], color=BLUE)
        _share_axis(ax)
        ax.set_title("Generator accuracy")
        ax.set_xlabel("share of answered paths that are right")
        return _svg(fig)


def _share_axis(ax) -> None:
    """An x axis of shares that ends at 1.0 (100%); the figures sit in the bar labels, not past the end."""
    ax.set_xlim(0, 1)
    ax.set_xticks([0, 0.25, 0.5, 0.75, 1])
    ax.set_xticklabels(["0", "25%", "50%", "75%", "100%"])


def mistakes_per_question(figures: Figures) -> str | None:
    groups = {g: Counter(c.values()) for g, c in figures.mistakes_per_question.items() if c}
    if not groups:
        return None
    with plt.rc_context(STYLE):
        fig, ax = _figure()
        top = max(max(c) for c in groups.values())
        xs = list(range(1, top + 1))
        width = 0.8 / len(groups)
        for i, (name, counts) in enumerate(groups.items()):
            ax.bar([x + (i - (len(groups) - 1) / 2) * width for x in xs], [counts.get(x, 0) for x in xs],
                   width=width, label=name, color=BLUE if len(groups) == 1 else None)
        ax.set_xticks(xs)
        ax.set_xlim(0.3, max(top, 4) + 0.7)
        ax.set_xlabel("mistakes kept on a question")
        ax.set_ylabel("questions")
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title("Mistakes per question")
        if len(groups) > 1:
            ax.legend(frameon=False)
        return _svg(fig)


def first_step(figures: Figures) -> str | None:
    verified, rejected = figures.first_step["verified"], figures.first_step["rejected"]
    if not verified and not rejected:
        return None
    with plt.rc_context(STYLE):
        fig, ax = _figure()
        top = min(max([*verified, *rejected]), 30)
        xs = list(range(1, top + 1))
        clip = lambda c: [c.get(x, 0) + (sum(v for k, v in c.items() if k > top) if x == top else 0) for x in xs]  # noqa: E731
        ax.bar(xs, clip(verified), color=BLUE, label="verified")
        ax.bar(xs, clip(rejected), bottom=clip(verified), color=GREY, label="rejected")
        ax.set_xticks(xs if top <= 15 else xs[::2])
        ax.set_xlim(0.3, max(top, 6) + 0.7)
        ax.set_xlabel("first incorrect step named by the corrector" + (f" ({top} = {top} or later)" if top == 30 else ""))
        ax.set_ylabel("replies")
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title("Position of the first incorrect step")
        ax.legend(frameon=False)
        return _svg(fig)


def success(rates: dict[str, Rate], title: str) -> str | None:
    if not rates:
        return None
    with plt.rc_context(STYLE):
        fig, ax = _figure(4.9, 0.32 * len(rates) + 0.9)
        names = list(rates)[::-1]
        ax.barh([f"{n}  {rates[n].hits}/{rates[n].total}" for n in names], [rates[n].rate or 0 for n in names], color=ORANGE)
        _share_axis(ax)
        ax.set_xlabel("mistakes with a verified correction")
        ax.set_title(title)
        return _svg(fig)


def tokens(figures: Figures) -> str | None:
    stages = {s: t for s, t in figures.tokens.items() if t["prompt"] or t["completion"]}
    if not stages:
        return None
    with plt.rc_context(STYLE):
        fig, ax = _figure(4.9, 0.35 * len(stages) + 0.9)
        names = list(stages)[::-1]
        prompt = [stages[n]["prompt"] for n in names]
        completion = [stages[n]["completion"] for n in names]
        ax.barh(names, prompt, color=BLUE, label="prompt")
        ax.barh(names, completion, left=prompt, color=ORANGE, label="completion")
        ax.set_xlabel("tokens")
        ax.xaxis.set_major_formatter(EngFormatter(sep=""))
        ax.set_title("Tokens per stage")
        ax.legend(frameon=False)
        return _svg(fig)


def all_plots(figures: Figures) -> dict[str, str]:
    """name -> SVG for every plot the data supports."""
    made = {
        "funnel": funnel(figures),
        "accuracy": accuracy(figures),
        "mistakes_per_question": mistakes_per_question(figures),
        "first_step": first_step(figures),
        "by_level": success(figures.by_level, "Correction success by MATH level"),
        "by_subject": success(figures.by_subject, "Correction success by subject"),
        "tokens": tokens(figures),
    }
    return {name: svg for name, svg in made.items() if svg}

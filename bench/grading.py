"""Grader throughput on the real gold solutions: items/s, p50/p99 ms per item, slowest items.

Each gold solution (1,319 GSM8K test rationales, 1,000 MATH test solutions) is graded against its
own gold answer with `is_correct`, the call every stage makes; then against another problem's
answer, where proving a mismatch can take the symbolic path (math-verify's one-off start-up is
timed apart, before the runs). A third set dresses each gold solution up as a long chat-model
reply (several hundred words: markdown headings, numbered steps, bold, display LaTeX, a closing
"Final Answer" in one of the styles chat models use) and grades it against its own answer; the
GSM8K rationales are dressed up the same way (numbered bold steps, dollar amounts, thousands
separators, an ending such as "The answer is X.", `\\boxed{X}` or "**Final Answer:** X").

Last, the same chat-style replies are graded in the same process by math-verify (`parse` of the
gold and of the reply with its default settings, then `verify`, as its README shows), and the CPU
time per item, the speed ratio and the agreement of the two verdicts are printed. The goal: the
grader stays at least 20x faster than math-verify on GSM8K chat replies (the common case, a
plain number after "The answer is" or in a box, must not pay for the rare answer forms).
Run:

    python bench/grading.py [--data DIR] [--repeat N] [--versus-limit N]

DIR defaults to $LEMA_DATA_DIR or ../shared/data. Goals on a 2-core machine: GSM8K >= 5,000
items/s, MATH >= 1,000 items/s, long chat-style solutions >= 300 items/s with p99 < 50 ms, and no
item over the hard time bound (`compare.TIME_BUDGET_S`, on the symbolic part). Wall-clock figures
depend on what else runs on the machine; CPU time per item is the grader's own cost.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import random
import re

from lema_plugin.grading import gold_answer, is_correct
from lema_plugin.grading.compare import TIME_BUDGET_S, math_verdict, structure


def _rows(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def _items(data: Path) -> dict[str, list[tuple[str, str]]]:
    gsm8k = [(row["answer"], row["answer"].rsplit("####", 1)[1].strip()) for row in _rows(data / "gsm8k" / "test.jsonl")]
    math = [(row["solution"], gold_answer(row["solution"], "math") or "") for row in _rows(data / "math" / "test_sample1000.jsonl")]
    return {"gsm8k": gsm8k, "math": math}


_FILLER = (
    "Let me make sure I understand what is being asked before computing anything.",
    "It helps to write down every quantity we know and what we want to find.",
    "We should double-check this step, because sign errors are easy to make here.",
    "Note that this is consistent with the constraints given in the problem statement.",
    "Let's verify the arithmetic once more to be safe.",
    "This is the key observation that makes the rest of the computation straightforward.",
)
_ENDINGS = (
    "**Final Answer**\n\n\\[\n\\boxed{{{answer}}}\n\\]",
    "### Final answer\n\nThe final answer is $\\boxed{{{answer}}}$. I hope it is correct.",
    "## Conclusion\n\nPutting everything together, the answer is $\\boxed{{{answer}}}$.\n\nLet me know if you'd like any step explained in more detail!",
    "Therefore, the final answer is: $\\boxed{{{answer}}}$",
)


def chat_style(solution: str, answer: str, rng: random.Random) -> str:
    """A gold solution rewritten the way chat models answer: long, markdown, LaTeX, boxed end."""
    body = re.sub(r"\\boxed\{", "{", solution)  # the only box is the closing one
    sentences = [part.strip() for part in re.split(r"(?<=[.!?])\s+", body) if part.strip()]
    lines = ["Let's solve this step by step.", "", "## Understanding the problem", "", rng.choice(_FILLER), ""]
    for number, sentence in enumerate(sentences, 1):
        lines += [f"### Step {number}", "", sentence, "", rng.choice(_FILLER)]
        if rng.random() < 0.4:
            lines += ["", "$$", f"x_{{{number}}} = \\frac{{{number}}}{{{number + 1}}} \\cdot \\sqrt{{{number + 2}}}", "$$"]
        if rng.random() < 0.3:
            lines += ["", f"- **Check {number}:** the value stays consistent with the previous step."]
        lines.append("")
    while len(" ".join(lines).split()) < 350:
        lines += [rng.choice(_FILLER), ""]
    lines.append(rng.choice(_ENDINGS).format(answer=answer))
    return "\n".join(lines)


def _chat_items(items: list[tuple[str, str]]) -> list[tuple[str, str]]:
    rng = random.Random(0)
    return [(chat_style(text, gold, rng), gold) for text, gold in items]


_GSM8K_OPENINGS = (
    "Let's break this problem down step by step.",
    "To solve this, I'll work through the quantities one at a time.",
    "Sure! Here's how to work it out.",
    "We need to find the final amount, so let's organise what we know first.",
)
_GSM8K_ENDINGS = (
    "The answer is {answer}.",
    "**Final Answer:** {answer}",
    "Therefore, the final answer is $\\boxed{{{answer}}}$.",
    "So the answer is **{answer}**.",
    "#### {answer}",
    "### Answer\n\nThe answer is: {answer}",
    "Putting it all together, the answer is {answer}. Let me know if you have any questions!",
)


def _grouped(answer: str, rng: random.Random) -> str:
    """`70000` -> `70,000` or `$70,000` now and then, as chat replies write amounts."""
    if re.fullmatch(r"\d{4,}", answer) and rng.random() < 0.5:
        answer = f"{int(answer):,}"
    if rng.random() < 0.2:
        answer = "$" + answer
    return answer


def gsm8k_chat_style(rationale: str, answer: str, rng: random.Random) -> str:
    """A GSM8K gold rationale rewritten the way chat models answer: numbered bold steps, the
    calculator annotations turned into plain arithmetic, filler, and one of the usual endings."""
    body = re.sub(r"<<[^>]*>>", "", rationale.rsplit("####", 1)[0])
    steps = [line.strip() for line in body.splitlines() if line.strip()]
    lines = [rng.choice(_GSM8K_OPENINGS), ""]
    for number, step in enumerate(steps, 1):
        lines += [f"{number}. **Step {number}:** {step}", ""]
        if rng.random() < 0.3:
            lines += [f"   - {rng.choice(_FILLER)}", ""]
    if rng.random() < 0.5:
        lines += [rng.choice(_FILLER), ""]
    ending = rng.choice(_GSM8K_ENDINGS)
    shown = answer if "boxed" in ending or ending.startswith("####") else _grouped(answer, rng)
    lines.append(ending.format(answer=shown))
    return "\n".join(lines)


def _gsm8k_chat_items(items: list[tuple[str, str]]) -> list[tuple[str, str]]:
    rng = random.Random(0)
    return [(gsm8k_chat_style(text, gold, rng), gold) for text, gold in items]


def _figures(label: str, seconds: list[float], total: float) -> str:
    millis = sorted(t * 1000 for t in seconds)
    p99 = millis[min(len(millis) - 1, int(0.99 * len(millis)))]
    return (f"  {label}: {len(millis) / total:,.0f} items/s, p50 {statistics.median(millis):.3f} ms, "
            f"p99 {p99:.3f} ms, max {millis[-1]:.1f} ms")


def _run(label: str, items: list[tuple[str, str]], repeat: int, dataset: str | None = None) -> None:
    """Grade every item `repeat` times and print wall and CPU figures (comparison caches start empty)."""
    math_verdict.cache_clear()
    structure.cache_clear()
    dataset = dataset or label
    timings: list[tuple[float, int]] = []
    cpu: list[float] = []
    correct = 0
    started, cpu_started = time.perf_counter(), time.process_time()
    for _ in range(repeat):
        for index, (text, gold) in enumerate(items):
            t0, c0 = time.perf_counter(), time.process_time()
            correct += is_correct(text, gold, dataset)
            cpu.append(time.process_time() - c0)
            timings.append((time.perf_counter() - t0, index))
    total, cpu_total = time.perf_counter() - started, time.process_time() - cpu_started
    print(f"{label}: {len(timings)} items, correct {correct}/{len(timings)}")
    print(_figures("wall", [t for t, _ in timings], total))
    # CPU time is what the grader costs; wall time also counts other processes on a busy machine
    print(_figures("cpu ", cpu, cpu_total))
    over = sum(seconds > TIME_BUDGET_S for seconds, _ in timings)
    print(f"  cpu per item {1000 * cpu_total / len(timings):.3f} ms; over the {TIME_BUDGET_S:g} s bound: {over}")
    slowest = sorted(zip(cpu, (index for _, index in timings)), reverse=True)[:5]
    print("  slowest (cpu):")
    for seconds, index in slowest:
        text, gold = items[index]
        print(f"  {seconds * 1000:8.2f} ms  item {index}  gold {gold!r}  ({len(text)} chars)")


def _versus_math_verify(label: str, items: list[tuple[str, str]], dataset: str) -> None:
    """Grade the same replies with this grader and with math-verify, one after the other in this
    process, and print CPU time per item, the speed ratio and how often the verdicts agree."""
    from math_verify import parse, verify

    def theirs(text: str, gold: str) -> bool:
        try:
            return bool(verify(parse(gold if dataset == "gsm8k" else f"${gold}$"), parse(text)))
        except Exception:  # math-verify raises on a few inputs; that counts as "not equal"
            return False

    math_verdict.cache_clear()
    structure.cache_clear()
    # one pass each over the same replies, so neither pays for the other's cache misses
    started = time.process_time()
    mine = [is_correct(text, gold, dataset) for text, gold in items]
    ours_total = time.process_time() - started
    started = time.process_time()
    other = [theirs(text, gold) for text, gold in items]
    theirs_total = time.process_time() - started
    verdicts = list(zip(mine, other))
    both = sum(a and b for a, b in verdicts)
    only_ours = sum(a and not b for a, b in verdicts)
    only_theirs = sum(b and not a for a, b in verdicts)
    print(f"{label}: {len(items)} chat-style replies, same process, CPU time")
    print(f"  lema grader  {1000 * ours_total / len(items):7.3f} ms/item  ({len(items) / ours_total:,.0f} items/s), "
          f"correct {sum(a for a, _ in verdicts)}/{len(items)}")
    print(f"  math-verify  {1000 * theirs_total / len(items):7.3f} ms/item  ({len(items) / theirs_total:,.0f} items/s), "
          f"correct {sum(b for _, b in verdicts)}/{len(items)}")
    print(f"  speed ratio {theirs_total / ours_total:.1f}x; verdicts agree on {len(items) - only_ours - only_theirs}"
          f"/{len(items)} (both right {both}, only lema {only_ours}, only math-verify {only_theirs})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = os.environ.get("LEMA_DATA_DIR") or Path(__file__).resolve().parents[1].parent / "shared" / "data"
    parser.add_argument("--data", type=Path, default=Path(default), help="folder laid out like ../shared/data")
    parser.add_argument("--repeat", type=int, default=1, help="passes over the data (the first includes warm-up)")
    parser.add_argument("--versus-limit", type=int, default=0,
                        help="chat replies per dataset in the math-verify comparison (0: all)")
    args = parser.parse_args()
    from lema_plugin.grading.symbolic import _math_verify

    started = time.perf_counter()
    _math_verify()  # the one-off import and parser build, paid once per process
    print(f"math-verify start-up (once per process, not counted below): {time.perf_counter() - started:.2f} s")
    items_by_dataset = _items(args.data)
    for dataset, items in items_by_dataset.items():
        _run(dataset, items, args.repeat)
    gsm8k_chat = _gsm8k_chat_items(items_by_dataset["gsm8k"])
    _run("gsm8k, chat-style replies", gsm8k_chat, args.repeat, "gsm8k")
    chat = _chat_items(items_by_dataset["math"])
    words = sorted(len(text.split()) for text, _ in chat)
    print(f"(chat-style solutions: {words[len(words) // 2]} words median, {words[0]}-{words[-1]})")
    _run("math, long chat-style solutions", chat, args.repeat, "math")
    # the slow path: another problem's answer is mostly wrong, and proving that may need sympy
    for label, dataset, items in [*((name, name, items) for name, items in items_by_dataset.items()),
                                  ("math, long chat-style solutions", "math", chat)]:
        golds = [gold for _, gold in items]
        shifted = [(text, next(g for g in golds[i + 1:] + golds if g != golds[i])) for i, (text, _) in enumerate(items)]
        _run(f"{label} vs another problem's answer", shifted, args.repeat, dataset)
    limit = args.versus_limit or None
    print("\nagainst math-verify (its one-off start-up excluded):")
    _versus_math_verify("gsm8k", gsm8k_chat[:limit], "gsm8k")
    _versus_math_verify("math", chat[:limit], "math")


if __name__ == "__main__":
    main()

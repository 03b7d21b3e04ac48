"""`lema score-corrector` on labelled GSM8K solutions made here, for a look without the hub.

ProcessBench cannot be downloaded on an offline machine, so this writes a small labelled file in
its fields from the GSM8K test set (`../shared/data` or $LEMA_DATA_DIR) and scores a corrector on
it (the embedded SmolLM2-135M-Instruct by default):

- a correct item is a gold solution, one paragraph a line, ending "The answer is X."; label -1;
- an erroneous item is another problem's gold solution with one calculation result changed (the
  step's label is its index) and the change carried through every later calculation by the
  dataset's own calculator annotations, so the steps after it follow from the wrong number and the
  final answer is wrong; label = the changed step. Problems alternate between the two kinds.

Run: python bench/score_corrector.py [--items 20] [--corrector SPEC] [--max-tokens 384] [--out DIR] [OPTION ...]
(any other option goes to `lema score-corrector`, e.g. `--style zeroshot`). The figures are those
of the corrector on these items, not ProcessBench's.
"""
from __future__ import annotations

import argparse
import ast
import json
import operator
import os
import random
import re
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

ANNOTATION = re.compile(r"<<([^=<>]+)=([^<>]+)>>")
NUMBER = re.compile(r"(?<![\w.])\d[\d,]*(?:\.\d+)?")
OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv}


def value(text: str) -> Fraction:
    return Fraction(text.replace(",", "").rstrip("."))


def shown(number: Fraction) -> str:
    return str(number.numerator) if number.denominator == 1 else f"{float(number):.4g}"


def evaluate(expression: str) -> Fraction:
    """Arithmetic of a gold calculator annotation (numbers and + - * / only; nothing else runs)."""

    def walk(node):
        if isinstance(node, ast.Expression):
            return walk(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
            return Fraction(str(node.value))
        if isinstance(node, ast.BinOp) and type(node.op) in OPS:
            return OPS[type(node.op)](walk(node.left), walk(node.right))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return -walk(node.operand)
        raise ValueError(f"not plain arithmetic: {expression}")

    return walk(ast.parse(expression.replace(",", ""), mode="eval"))


def gold_lines(answer: str) -> tuple[list[str], str]:
    body, final = answer.rsplit("####", 1)
    return [line.strip() for line in body.strip().splitlines() if line.strip()], final.strip()


def clean(line: str) -> str:
    return " ".join(ANNOTATION.sub("", line).split())


def correct_item(index: int, row: dict) -> dict:
    lines, final = gold_lines(row["answer"])
    steps = [clean(line) for line in lines]
    steps[-1] += f" The answer is {final}."
    return {"id": f"gsm8k-test-{index}", "generator": "gsm8k gold", "problem": row["question"], "steps": steps,
            "final_answer_correct": True, "label": -1}


def erroneous_item(index: int, row: dict) -> dict | None:
    """The gold solution with one result changed and carried through; None when it cannot be done."""
    lines, final = gold_lines(row["answer"])
    annotated = [k for k, line in enumerate(lines) if ANNOTATION.search(line)]
    if len(lines) < 2 or not annotated:
        return None
    rng = random.Random(index)
    k = rng.choice([a for a in annotated if a < len(lines) - 1] or annotated)
    changed: dict[Fraction, Fraction] = {}
    steps = []
    try:
        for number, line in enumerate(lines):
            if number < k:
                steps.append(clean(line))
                continue
            for expression, result in ANNOTATION.findall(line):
                old = value(result)
                if number == k:
                    new = old + rng.choice([1, 2, 3, 4, 5, 6, 7, 8, 9, 10])
                else:
                    new = evaluate(NUMBER.sub(lambda m: shown(changed.get(value(m.group()), value(m.group()))), expression))
                if new != old:
                    changed[old] = new
            text = clean(line)
            if number == k:  # the slip: only the stated result is wrong, the calculation before it is kept
                last = list(NUMBER.finditer(text))[-1]
                text = text[:last.start()] + shown(changed[value(last.group())]) + text[last.end():]
            else:
                text = NUMBER.sub(lambda m: shown(changed.get(value(m.group()), value(m.group()))), text)
            steps.append(text)
    except (ValueError, ZeroDivisionError, KeyError, IndexError, SyntaxError):
        return None
    answer = shown(changed.get(value(final), value(final)))
    if answer == final:
        return None  # the change did not reach the final answer
    steps[-1] += f" The answer is {answer}."
    return {"id": f"gsm8k-test-{index}", "generator": "gsm8k gold, one result changed", "problem": row["question"],
            "steps": steps, "final_answer_correct": False, "label": k}


def labelled_items(rows: list[dict], count: int) -> list[dict]:
    items, want_error = [], False
    for index, row in enumerate(rows):
        if len(items) >= count:
            break
        item = erroneous_item(index, row) if want_error else correct_item(index, row)
        if item is not None:
            items.append(item)
            want_error = not want_error
    return items


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=20)
    parser.add_argument("--corrector", default="embedded")
    parser.add_argument("--max-tokens", type=int, default=384)
    parser.add_argument("--out", type=Path, default=Path("runs/bench-score-corrector"))
    options, rest = parser.parse_known_args()
    data = Path(os.environ.get("LEMA_DATA_DIR") or Path(__file__).resolve().parents[2] / "shared" / "data")
    rows = [json.loads(line) for line in (data / "gsm8k" / "test.jsonl").read_text(encoding="utf-8").splitlines()]
    options.out.mkdir(parents=True, exist_ok=True)
    labelled = options.out / "gsm8k.jsonl"
    labelled.write_text("".join(json.dumps(item) + "\n" for item in labelled_items(rows, options.items)))
    command = [str(Path(sys.executable).parent / "lema"), "score-corrector", "--data-file", str(labelled),
               "--corrector", options.corrector, "--max-tokens", str(options.max_tokens), "--concurrency", "4",
               "--timeout", "600", "--out", str(options.out / "score"), "--quiet", *rest]
    print("$", " ".join(command[1:]), flush=True)
    sys.exit(subprocess.call(command))


if __name__ == "__main__":
    main()

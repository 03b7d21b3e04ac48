"""The official LeMa scoring, for numbers that compare with the paper's.

The paper's figures come from its release's evaluation (`inference_code/evaluation.py` and
`utils.py` in microsoft/LEMA), which is much stricter than this package's grader and differs from
it in ways that move a score by points, so it is reproduced here as its own metric
(`official_match` in the lm-eval tasks). It is written from the protocol's description:

GSM8K: the completion is cut before a blank line followed by "Q: " or "Question: "; the text after
the last "The answer is " (case-sensitive; "The answer is: " counts too) is read: a final period
dropped, pound and euro signs and commas dropped, the part after the last "=" or ">>" kept,
ASCII letters dropped, the part before a ":" kept, dollar signs and quotes dropped, a trailing
"%" dropped (a "%" anywhere else means no answer), a trailing "/" and spaces dropped; an
arithmetic expression (one holding + - * or /) is evaluated; the value is compared with the gold
value as a float, for exact equality.

MATH: the completion is cut before the first "Q:" and the first "Question:"; the answer is the
text after the last "The answer is " (a final period and every "$" dropped, the last `\\boxed{}`
unwrapped when it holds one), or, without that sentence, the content of the last `\\boxed{}`
(only `\\boxed{...}`: a `\\fbox` or a brace-less `\\boxed 5` reads as no answer). Both answer and
gold then go through the Hendrycks MATH normalization (`normalize`) and are compared as
*strings*: `\\frac{2}{4}` is not `\\frac12` and `\\sqrt8` is not `2\\sqrt2` here, where the robust
grader credits both. The gold is read the same way from the gold solution.

Two deliberate differences, neither of which changes a score on real completions: the official
code evaluates the GSM8K expression with Python's `eval`, while here only numbers and arithmetic
operators are evaluated (model text is never run as code; anything else reads as no answer, as
an `eval` error does there) and a power too large to compute in a moment reads as no answer; and
a gold answer the protocol cannot read, which stops the official script, scores 0 here.
"""
from __future__ import annotations

import ast
import operator
import string

from .datasets import dataset_kind

__all__ = ["METRICS", "PAPER_METRIC", "gsm8k_value", "math_answer", "normalize", "official_match"]

ANSWER = "The answer is "
# The per-question scores the lema lm-eval tasks log: the paper-comparable one first, then the
# robust views (strict: "The answer is X" or a final box, judged by the robust grader; exact:
# flexible extraction and equivalence). Every command that picks one defaults to PAPER_METRIC.
PAPER_METRIC = "official_match"
METRICS = (PAPER_METRIC, "strict_match", "exact_match")

# ----------------------------------------------------------------------------- GSM8K


def gsm8k_value(completion: str) -> float | None:
    """The value the official GSM8K scoring reads from a completion, or None for no answer."""
    text = str(completion or "")
    for stop in ("\n\nQ: ", "\n\nQuestion: "):
        text = text.split(stop, 1)[0]
    text = text.replace("The answer is: ", ANSWER)
    if ANSWER not in text:
        return None
    result = text.rsplit(ANSWER, 1)[1]
    if not result:
        return None
    result = result.removesuffix(".").replace("£", "").replace("€", "")
    if not result:
        return None
    result = result.removesuffix(".").replace(",", "")
    for marker in ("=", ">>"):
        if marker in result:
            result = result.rsplit(marker, 1)[1].strip()
    result = "".join(ch for ch in result.lower() if ch not in string.ascii_lowercase)
    result = result.split(":", 1)[0].replace("$", "").replace('"', "")
    if "%" in result:
        result = result.strip()
        if not result.endswith("%"):
            return None
        result = result[:-1]
    if not result:
        return None
    result = result.removesuffix("/").replace(" ", "")
    try:
        if any(op in result for op in "+-*/"):
            return float(_arithmetic(result))
        return float(result)
    except (ArithmeticError, ValueError, TypeError, SyntaxError, RecursionError, MemoryError):
        return None


_BINARY = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow,
    ast.BitAnd: operator.and_, ast.BitOr: operator.or_, ast.BitXor: operator.xor,
    ast.LShift: operator.lshift, ast.RShift: operator.rshift,
}
_UNARY = {ast.UAdd: operator.pos, ast.USub: operator.neg, ast.Invert: operator.invert}
_COMPARE = {ast.Lt: operator.lt, ast.LtE: operator.le, ast.Gt: operator.gt, ast.GtE: operator.ge,
            ast.Eq: operator.eq, ast.NotEq: operator.ne}
MAX_EXPONENT = 4096
MAX_SHIFT = 4096


def _arithmetic(text: str):
    """Evaluate numbers and operators as Python would (`7/2` is 3.5, `2**3` is 8, `3<4` is True);
    any other construct raises ValueError. Nothing is ever executed."""
    return _value(ast.parse(text, mode="eval").body)


def _value(node: ast.AST):
    if isinstance(node, ast.Constant) and type(node.value) in (int, float, complex):
        return node.value
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_value(node.operand))
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _value(node.left), _value(node.right)
        if isinstance(node.op, ast.Pow) and isinstance(right, (int, float)) and abs(right) > MAX_EXPONENT \
                and isinstance(left, (int, float)) and abs(left) > 1:
            raise ValueError("power too large")
        if isinstance(node.op, (ast.LShift, ast.RShift)) and isinstance(right, int) and right > MAX_SHIFT:
            raise ValueError("shift too large")
        return _BINARY[type(node.op)](left, right)
    if isinstance(node, ast.Compare) and all(type(op) in _COMPARE for op in node.ops):
        left = _value(node.left)
        for op, comparator in zip(node.ops, node.comparators):
            right = _value(comparator)
            if not _COMPARE[type(op)](left, right):
                return False
            left = right
        return True
    raise ValueError(f"not arithmetic: {type(node).__name__}")


# ----------------------------------------------------------------------------- MATH


def math_answer(completion: str) -> str:
    """The normalized answer the official MATH scoring reads from a completion ('' for none)."""
    text = str(completion or "")
    for stop in ("Q:", "Question:"):
        if stop in text:
            text = text.split(stop, 1)[0].strip()
    text = text.replace("The answer is: ", ANSWER)
    if ANSWER not in text:
        result = _unbox(_last_box(text))
    else:
        result = text.rsplit(ANSWER, 1)[1].strip()
        if not result:
            return ""
        result = result.removesuffix(".").replace("$", "").strip()
        if "boxed{" in result:
            result = _unbox(_last_box(result))
    if not result:
        return ""
    try:
        return normalize(result)
    except (IndexError, ValueError):
        return ""


def _last_box(text: str) -> str | None:
    """The last `\\boxed...` (else `\\fbox...`) up to the brace that closes its first one."""
    start = text.rfind("\\boxed")
    if start < 0:
        start = text.rfind("\\fbox")
        if start < 0:
            return None
    depth = 0
    for index in range(start, len(text)):
        if text[index] == "{":
            depth += 1
        elif text[index] == "}":
            depth -= 1
            if depth == 0:
                return text[start:index + 1]
    return None


def _unbox(box: str | None) -> str | None:
    if box and box.startswith("\\boxed{") and box.endswith("}"):
        return box[len("\\boxed{"):-1]
    return None


def normalize(answer: str) -> str:
    """The Hendrycks MATH normalization the official scoring applies to both sides.

    Raises IndexError or ValueError where the original code fails (a `\\frac` or `\\sqrt` with
    nothing after it, several `\\text{ ` units); the official scoring then reads no answer.
    """
    s = answer.replace("\n", "").replace("\\!", "").replace("\\\\", "\\")
    s = s.replace("tfrac", "frac").replace("dfrac", "frac")
    s = s.replace("\\left", "").replace("\\right", "")
    s = s.replace("^{\\circ}", "").replace("^\\circ", "")
    s = s.replace("\\$", "")
    if "\\text{ " in s:  # a unit after the value ("5\\text{ cm}")
        parts = s.split("\\text{ ")
        if len(parts) != 2:
            raise ValueError("more than one unit")
        s = parts[0]
    s = s.replace("\\%", "")
    s = s.replace(" .", " 0.").replace("{.", "{0.")
    if not s:
        return s
    if s[0] == ".":
        s = "0" + s
    sides = s.split("=")
    if len(sides) == 2 and len(sides[0]) <= 2:  # "x = 5", "k=3"
        s = sides[1]
    s = _braced_sqrt(s)
    s = s.replace(" ", "")
    s = _braced_fracs(s)
    if s == "0.5":
        s = "\\frac{1}{2}"
    return _slash_fraction(s)


def _braced_sqrt(s: str) -> str:
    """`\\sqrt3` -> `\\sqrt{3}` (one character taken as the argument)."""
    if "\\sqrt" not in s:
        return s
    head, *rest = s.split("\\sqrt")
    out = head
    for part in rest:
        out += "\\sqrt" + (part if part[0] == "{" else "{" + part[0] + "}" + part[1:])  # IndexError on an empty part
    return out


def _braced_fracs(s: str) -> str:
    """`\\frac12` -> `\\frac{1}{2}`, `\\frac1{72}` -> `\\frac{1}{72}`; a `\\frac` with fewer
    than two characters after it leaves the whole string unchanged."""
    head, *rest = s.split("\\frac")
    out = head
    for part in rest:
        out += "\\frac"
        if part[0] == "{":  # IndexError on an empty part, as the original
            out += part
            continue
        if len(part) < 2:
            return s
        a, b, tail = part[0], part[1], part[2:]
        out += "{" + a + "}" + ("{" + b + "}" if b != "{" else b) + tail
    return out


def _slash_fraction(s: str) -> str:
    """`3/4` -> `\\frac{3}{4}` when both sides are plain integers written as such."""
    parts = s.split("/")
    if len(parts) != 2:
        return s
    try:
        a, b = int(parts[0]), int(parts[1])
    except ValueError:
        return s
    return f"\\frac{{{a}}}{{{b}}}" if s == f"{a}/{b}" else s


# ----------------------------------------------------------------------------- both


def official_match(completion: str, gold: object, dataset: str, solution: str | None = None) -> bool:
    """Whether the official LeMa scoring credits `completion` against the gold answer.

    GSM8K's gold is a final answer ("18", "1,000"); MATH's comes from the gold `solution` (its
    last `\\boxed{}`, read as the official script reads its labels) when one is given, else from
    the bare gold answer, normalized.
    """
    if dataset_kind(dataset) == "gsm8k":
        value = gsm8k_value(completion)
        reference = gsm8k_value(f"{ANSWER}{gold}.") if gold is not None else None
        return value is not None and reference is not None and value == reference
    predicted = math_answer(completion)
    reference = math_answer(solution) if solution and "\\boxed" in solution else ""
    if not reference and gold is not None and str(gold).strip():
        try:
            reference = normalize(str(gold).strip())
        except (IndexError, ValueError):
            reference = ""
    return bool(predicted) and predicted == reference

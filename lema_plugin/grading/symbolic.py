"""Symbolic equivalence through math-verify, under a hard time bound.

math-verify's own timeouts use `signal.alarm` (whole seconds, main thread only, and its
`TimeoutException` is an ordinary Exception that library code may swallow). Here instead:

* Inputs that could make sympy build a gigantic integer inside one C call, which no signal can
  interrupt (`10^{10^{10}}`, `100000!`, `\\binom{10^6}{3}`), never reach sympy.
* In the main thread a real-time interval timer raises `_Deadline`, a BaseException, so a broad
  `except Exception` inside the libraries cannot swallow it; the timer re-fires until it lands.
  A caller's own timer (pytest-timeout uses the same signal) is restored afterwards.
* In other threads the comparison runs in a helper process (`python -m
  lema_plugin.grading.symbolic`) that is killed when it overruns and restarted on the next call.
"""
from __future__ import annotations

import json
import logging
import os
import re
import select
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

MAX_SYMBOLIC_CHARS = 300
_BIG_FACTORIAL = re.compile(r"\d{5}\s*!|[})]\s*!")
_BIG_BINOM = re.compile(r"\\(?:binom|choose)\s*\{?\s*[^}]*\d{5}")
_SPECIAL = re.compile(r"\\(?:prod|sum|lim|int|Gamma|operatorname)(?![a-zA-Z])")
_TOKEN = re.compile(r"\s*(\\[a-zA-Z]+|\d+|.)", re.S)

log = logging.getLogger(__name__)
_active = threading.local()


class _Deadline(BaseException):
    """Raised by the interval timer; BaseException so library `except Exception` lets it through."""


def _exponents_safe(text: str) -> bool:
    """No exponent holds another exponent, a factorial or more than four digits."""
    at = text.find("^")
    while at >= 0:
        start = at + 1
        while start < len(text) and text[start] in " \t":
            start += 1
        if text.startswith("{", start):
            depth, end = 0, start
            while end < len(text):
                depth += {"{": 1, "}": -1}.get(text[end], 0)
                if depth == 0:
                    break
                end += 1
            exponent, after = text[start:end + 1], end + 1
        else:
            token = _TOKEN.match(text, start)
            exponent, after = (token.group(1), token.end()) if token else ("", start)
        if "^" in exponent or "!" in exponent or sum(ch.isdigit() for ch in exponent) > 4:
            return False
        if text[after:].lstrip().startswith(("^", "!")):  # 10^10^10, 10^{10}!
            return False
        at = text.find("^", at + 1)
    return True


def is_safe(text: str) -> bool:
    """Whether sympy may see `text` without risking an uninterruptible huge computation."""
    if len(text) > MAX_SYMBOLIC_CHARS:
        return False
    if ("^" in text or "**" in text) and not _exponents_safe(text.replace("**", "^")):
        return False
    if "!" in text and _BIG_FACTORIAL.search(text):
        return False
    if ("binom" in text or "choose" in text) and _BIG_BINOM.search(text):
        return False
    if "\\" in text and _SPECIAL.search(text):
        return False
    return True


_warm = False


def _math_verify():
    """Import math-verify and run one parse, so the one-off start-up cost (imports, building the
    LaTeX parser: a second or more on a busy machine) never counts against a comparison's bound."""
    global _warm
    import math_verify

    if not _warm:
        logging.getLogger("math_verify").setLevel(logging.ERROR)  # we bound time ourselves
        math_verify.verify(math_verify.parse("$x+1$", parsing_timeout=None),
                           math_verify.parse("$1+x$", parsing_timeout=None), timeout_seconds=None)
        _warm = True
    return math_verify


def verify_latex(gold: str, pred: str) -> bool | None:
    """math-verify's verdict on two LaTeX answers, None when either cannot be parsed (no time
    bound: call through `symbolic_verdict`)."""
    mv = _math_verify()
    config = [mv.LatexExtractionConfig(), mv.ExprExtractionConfig()]
    gold_parsed = mv.parse(f"${gold}$", config, parsing_timeout=None)
    pred_parsed = mv.parse(f"${pred}$", config, parsing_timeout=None)
    if not gold_parsed or not pred_parsed:
        return None
    return bool(mv.verify(gold_parsed, pred_parsed, timeout_seconds=None))


def _on_timer(signum, frame):
    if getattr(_active, "on", False):
        raise _Deadline()


def _with_timer(gold: str, pred: str, seconds: float) -> bool | None:
    _math_verify()  # import outside the timer: an interrupted import would leave a broken module
    old_handler = signal.signal(signal.SIGALRM, _on_timer)
    started = time.monotonic()
    _active.on = True
    old_delay, _ = signal.setitimer(signal.ITIMER_REAL, seconds, 0.05)
    result = None
    try:
        try:
            result = verify_latex(gold, pred)
        except _Deadline:
            log.debug("symbolic comparison timed out after %.1fs", seconds)
        finally:
            _active.on = False  # from here on the handler ignores late ticks
    except _Deadline:  # a tick that landed while unwinding the first one
        _active.on = False
    finally:
        _active.on = False
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old_handler)
        if old_delay:  # give the caller's own timer (e.g. pytest-timeout) its remaining time
            remaining = old_delay - (time.monotonic() - started)
            signal.setitimer(signal.ITIMER_REAL, max(remaining, 0.001))
    return result


class _Helper:
    """One helper process, shared by all non-main threads (one request at a time)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.process: subprocess.Popen | None = None

    def _start(self) -> None:
        root = str(Path(__file__).resolve().parents[2])
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([root, os.environ.get("PYTHONPATH", "")]))
        self.process = subprocess.Popen(
            [sys.executable, "-m", "lema_plugin.grading.symbolic"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            text=True, bufsize=1, env=env,
        )
        if self._read(60.0) != "ready":
            self._stop()
            raise RuntimeError("symbolic helper process did not start")

    def _read(self, seconds: float) -> str | None:
        ready, _, _ = select.select([self.process.stdout], [], [], max(seconds, 0.0))
        if not ready:
            return None
        line = self.process.stdout.readline()
        return line.strip() if line else None

    def _stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None

    def compare(self, gold: str, pred: str, seconds: float) -> bool | None:
        with self.lock:
            try:
                if self.process is None or self.process.poll() is not None:
                    self._start()
                self.process.stdin.write(json.dumps([gold, pred]) + "\n")
                self.process.stdin.flush()
                answer = self._read(seconds)
            except (OSError, RuntimeError, ValueError) as exc:
                log.debug("symbolic helper failed: %s", exc)
                self._stop()
                return None
            if answer is None:  # overran: kill it, the next call starts a fresh one
                self._stop()
                return None
            return {"true": True, "false": False}.get(answer)


_helper = _Helper()


def symbolic_verdict(gold: str, pred: str, seconds: float = 2.0) -> bool | None:
    """Whether two normalized LaTeX answers are equivalent, decided within `seconds`; None when
    it could not be decided (unsafe input, no time left, a timeout, an answer sympy cannot read)."""
    if seconds <= 0 or not (is_safe(gold) and is_safe(pred)):
        return None
    if getattr(_active, "on", False):  # already inside a bounded comparison
        return verify_latex(gold, pred)
    in_main = threading.current_thread() is threading.main_thread()
    if in_main and hasattr(signal, "setitimer"):
        try:
            return _with_timer(gold, pred, seconds)
        except _Deadline:
            return None
        except ValueError:  # signals unavailable (e.g. a sub-interpreter)
            pass
    if os.name == "posix":
        return _helper.compare(gold, pred, seconds)
    return None


def symbolic_equal(gold: str, pred: str, seconds: float = 2.0) -> bool:
    """`symbolic_verdict` as a plain yes/no: undecided counts as not equal."""
    return bool(symbolic_verdict(gold, pred, seconds))


def _serve() -> None:
    """Helper-process loop: one JSON [gold, pred] per line in, `true`/`false` per line out."""
    _math_verify()
    print("ready", flush=True)
    for line in sys.stdin:
        try:
            gold, pred = json.loads(line)
            result = verify_latex(str(gold), str(pred))
        except Exception:  # a bad comparison is undecided, never a crash
            result = None
        print({True: "true", False: "false"}.get(result, "none"), flush=True)


if __name__ == "__main__":
    _serve()

"""Start many real `lema` processes cheaply: a process that imports lema-plugin once, then forks
one child per command, so a test can run (and SIGKILL) dozens of command processes without paying
the interpreter's start and imports each time (seconds apiece on a busy 2-core machine).

    with ForkServer() as forks:
        child = forks.start(["run", "recipe.yaml"], tmp_path / "out.txt", env={"KEY": "..."})
        os.kill(child, signal.SIGKILL)      # or let it end
        status = forks.wait(child)          # the exit status; -9 when killed

Each child runs `lema ARGS` exactly as the console script does (its stdout and stderr go to the
file given), from a state where nothing has run yet: the fork server itself runs no command and
starts no thread.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

_SERVE = """
import json, os, sys, traceback
import lema_plugin.cli, lema_plugin.cli.run, lema_plugin.cli.stage_command, lema_plugin.pipeline, lema_plugin.stage_run
import lema_plugin.llm.client, lema_plugin.llm.batch, lema_plugin.recipe, lema_plugin.report, lema_plugin.report.plots
import lema_plugin.export.build, lema_plugin.export.recipe_mixes, lema_plugin.grading, lema_plugin.sample.paths
import lema_plugin.correct.stage, lema_plugin.cot.spec, lema_plugin.problems
from lema_plugin import stage
stage.load(); lema_plugin.recipe.recipe_model()
from lema_plugin.cli import main
print(json.dumps({"ready": True}), flush=True)
for line in sys.stdin:
    request = json.loads(line)
    pid = os.fork()
    if pid == 0:
        os.environ.update(request["env"])
        fd = os.open(request["output"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(fd, 1); os.dup2(fd, 2)
        code = 0
        try:
            main.main(request["args"], prog_name="lema")
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        except BaseException:
            traceback.print_exc(); code = 1
        sys.stdout.flush(); sys.stderr.flush()
        os._exit(code)
    print(json.dumps({"pid": pid}), flush=True)
    _, status = os.waitpid(pid, 0)
    print(json.dumps({"status": os.waitstatus_to_exitcode(status)}), flush=True)
"""


class ForkServer:
    """See the module docstring. One child at a time."""

    def __init__(self, env: dict | None = None):
        self.env = {**os.environ, **(env or {})}
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> "ForkServer":
        self.process = subprocess.Popen([sys.executable, "-c", _SERVE], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        text=True, env=self.env)
        assert json.loads(self.process.stdout.readline()) == {"ready": True}
        return self

    def __exit__(self, *exc) -> None:
        self.process.stdin.close()
        self.process.wait(timeout=60)

    def start(self, args: list[str], output: Path, env: dict | None = None) -> int:
        """Fork `lema ARGS`; its pid."""
        request = {"args": list(args), "output": str(output), "env": dict(env or {})}
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        return json.loads(self.process.stdout.readline())["pid"]

    def wait(self, pid: int) -> int:
        """The exit status of the child started last (negative: the signal that ended it)."""
        return json.loads(self.process.stdout.readline())["status"]

"""The `lema` click group: the registered stages' commands, then the tools, each imported on first use."""
from __future__ import annotations

import importlib
import inspect
import logging

import click

from lema_plugin.llm.types import SPEC_GRAMMAR

# The commands that are not stages: name -> "module:attribute" (module relative to lema_plugin.cli).
# Every registered stage (`lema_plugin.stage`) is a command too, listed first in registry order.
TOOLS = {
    "build": "build:build",
    "run": "run:run",
    "grade": "grade:grade",
    "serve": "serve:serve",
    "report": "report:report",
    "compare": "compare:compare",
    "recipes": "recipes:recipes",
    "doctor": "doctor:doctor",
    "tasks-path": "tasks_path:tasks_path",
}


def command_names() -> list[str]:
    """Every command, in pipeline order: the registered stages, then the tools."""
    from lema_plugin import stage

    return [s.name for s in stage.stages()] + [name for name in TOOLS if name not in {s.name for s in stage.stages()}]


def _verbose(ctx: click.Context, param, value: bool) -> None:
    if value:
        logging.getLogger().setLevel(logging.DEBUG)


def _everywhere(command: click.Command) -> click.Command:
    """Give a command `-v/--verbose` and `-q/--quiet` when it does not declare them itself."""
    names = {opt for param in command.params for opt in getattr(param, "opts", ())}
    if "--verbose" not in names:
        command.params.append(click.Option(["-v", "--verbose"], is_flag=True, expose_value=False, is_eager=True,
                                           callback=_verbose, help="Log debug details to stderr."))
    if "--quiet" not in names:
        command.params.append(click.Option(["-q", "--quiet"], is_flag=True, expose_value=False,
                                           help="No progress bars (this command shows none)."))
    return command


class LazyGroup(click.Group):
    """A click group that imports a subcommand's module on first use and lists commands in
    pipeline order with their full first help line."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return command_names()

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        from lema_plugin import stage

        if name in {s.name for s in stage.stages()}:
            from .stage_command import stage_command

            return _everywhere(stage_command(stage.get(name)))
        target = TOOLS.get(name)
        if target is None:
            return None
        module_name, attr = target.split(":")
        module = importlib.import_module(f"{__package__}.{module_name}")
        return _everywhere(getattr(module, attr))

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = []
        for name in self.list_commands(ctx):
            command = self.get_command(ctx, name)
            rows.append((name, " ".join(inspect.cleandoc(command.help or "").split("\n\n")[0].split())))
        with formatter.section("Commands (in pipeline order)"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 120},
             epilog=f"""\b
Every model is an OpenAI-compatible endpoint, written as one spec:
  {SPEC_GRAMMAR}
e.g. llama=meta-llama/Llama-2-7b-hf@http://gpu1:8000/v1;mode=completion
     gpt4=gpt-4o;key_env=OPENAI_API_KEY;price=2.5/10
`embedded` is the built-in SmolLM2-135M-Instruct. Record formats: see docs/records.md.""")
@click.option("-v", "--verbose", is_flag=True, help="Log debug details to stderr.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bars.")
@click.version_option(package_name="lema-plugin")
@click.pass_context
def main(ctx: click.Context, verbose: bool, quiet: bool) -> None:
    """Build Learning-from-Mistakes (LeMa) datasets for axolotl and score them with lm-eval.

    Typical order: sample (or import) -> correct -> cot -> (evolve) -> (first-error) -> build, or all
    at once with `lema run RECIPE`. Every stage writes a run folder (--out) and resumes from it.

    \b
    Exit status of every command:
      0    everything asked for is done
      1    bad input, options, recipe, path or endpoint (one line names what to fix)
      2    bad command line
      3    --max-cost reached (what was answered is kept; run again with more to continue)
      4    nothing produced (no problems, mistakes, corrections or examples)
      5    some requests finally failed (what arrived is kept; run again to retry the rest)
      75   requests wait in Batch API batches (run the same command again later to collect)
      130  interrupted by Ctrl-C (what was written is kept; run again to resume)
      143  stopped by SIGTERM, handled like Ctrl-C
    """
    ctx.meta["lema.quiet"] = quiet
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    from lema_plugin.keys import guard_logging

    guard_logging()  # no API key in any log line

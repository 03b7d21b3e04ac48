"""`lema doctor [CONFIG...]`: check this machine and each axolotl config before a GPU-day is spent."""
from __future__ import annotations

from pathlib import Path

import click

from lema_plugin.cli.common import friendly_errors


@click.command("doctor")
@click.argument("configs", nargs=-1, metavar="[CONFIG]...")
@click.option("--no-smoke", "no_smoke", is_flag=True,
              help="Only read the configs: skip training, merging and evaluating a tiny model of each.")
@click.option("--work-dir", type=click.Path(file_okay=False, path_type=Path), show_default="a temporary folder, removed",
              help="Keep the tiny models, configs, logs and results here.")
@friendly_errors
def doctor(configs: tuple[str, ...], no_smoke: bool, work_dir: Path | None) -> None:
    """Check this machine and each axolotl CONFIG before a long run (a few minutes).

    The machine: installed versions against the pins of the train, vllm and eval extras; the
    GPUs it shows and their memory. Each CONFIG (a shipped name such as llama2-70b-gsm8k-lema, a
    file, or a ready OUT/axolotl.yml): its effective batch against the visible GPUs, a rough memory
    estimate, the attention backend, the LoRA kernels and the merge. Then a tiny randomly
    initialised model of the config's architecture, built here, is trained a few steps by axolotl
    with the config's settings (on CPU where there is no GPU), merged by the printed merge and
    scored by the printed lm-eval task on a handful of questions. Exits 1 when a check fails.
    """
    from lema_plugin.doctor import run_doctor

    report = run_doctor(list(configs), echo=click.echo, work_dir=work_dir, smoke=not no_smoke)
    skipped = [c for c in report.checks if c.status == "skip"]
    warned = [c for c in report.checks if c.status == "warn"]
    click.echo(f"\n{len(report.checks)} checks: {len(report.checks) - len(skipped) - len(warned)} ok, "
               f"{len(warned)} warnings, {len(skipped)} skipped")

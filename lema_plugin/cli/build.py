"""`lema build`: write an axolotl training set from CoT and correction records."""
from __future__ import annotations

from pathlib import Path

import click
import yaml

from lema_plugin.cli.common import check_outcome, friendly_errors
from lema_plugin.cli.options import old_spellings
from lema_plugin.tables import format_table

_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)


@click.command()
@old_spellings(max_tokens=("--max-tokens",))
@click.option("--cot", "cot_path", required=True, type=_FILE, help="CoT records (cot.jsonl from `lema cot`).")
@click.option(
    "--corrections", "corrections_path", type=_FILE,
    help="Verified corrections (corrections.jsonl from `lema correct`). Needed by lema and cot-size-matched; "
    "give it to cot-only too so that all mixes hold out the same validation problems.", show_default="none",
)
@click.option(
    "--mix", type=click.Choice(["lema", "cot-only", "cot-size-matched", "step-dpo", "solution-dpo", "prm"]),
    default="lema", show_default=True,
    help="lema: CoT + corrections. cot-only: the CoT alone. cot-size-matched: CoT alone grown to the size of the "
    "lema mix (extra distinct rationales from --extra-cot first, then whole seeded repeats). Step-level kinds "
    "(--format does not apply): step-dpo: Step-DPO pairs (prompt + steps before the first error; chosen = corrected "
    "steps, rejected = the wrong step onward) for `rl: dpo`; solution-dpo: corrected solution vs wrong path; "
    "prm: per-step labels (axolotl stepwise_supervised) for `process_reward_model: true`.",
)
@click.option(
    "--format", "fmt", type=click.Choice(["chat_template", "input_output", "alpaca"]), default="chat_template",
    show_default=True,
    help="axolotl dataset type. chat_template: chat models; input_output: raw prompt -> completion (the paper's "
    "style, for base models); alpaca: instruction/output. The loss is on the response only in every format.",
)
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder for train.jsonl, val.jsonl and dataset_info.json.")
@click.option("--val-fraction", default=0.0, show_default=True, type=click.FloatRange(0, 1, max_open=True),
              help="Fraction of problems (all their examples) held out for validation.")
@click.option("--seed", default=0, show_default=True, type=int, help="Seed for the split, the padding and the shuffle.")
@click.option("--extra-cot", "extra_cot_path", type=_FILE,
              help="More CoT records, used only to grow cot-size-matched with distinct rationales.", show_default="none")
@click.option("--bos-token", default="", help="input_output only: text put before each prompt, e.g. '<s>' for LLaMA-2.",
              show_default="nothing")
@click.option("--eos-token", default="", help="input_output only: text put after each response, e.g. '</s>' for LLaMA-2.",
              show_default="nothing")
@click.option(
    "--axolotl-config", "axolotl_config", show_default="none",
    help="Base axolotl config (a file, or a name from axolotl_configs/ such as llama2-70b-gsm8k-lema): write "
    "OUT/axolotl.yml from it, ready to train on this build, validated with axolotl's schema.",
)
@click.option("--max-row-tokens", "max_tokens", type=click.IntRange(1), show_default="the axolotl config's sequence_len",
              help="Report rows longer than this many tokens.")
@click.option("--tokenizer", help="Tokenizer that counts row tokens, read offline.", show_default="the config's base_model")
@click.option("--confirmed", "checks_path", type=_FILE, show_default="all",
              help="Step-level kinds only: keep the corrections whose first error this check confirmed "
              "(checks.jsonl from `lema first-error`).")
@click.option("--base-model", show_default="the axolotl config's",
              help="With --axolotl-config: the model to fine-tune, a local folder or a hub name (written as the "
              "ready config's base_model; its tokenizer also counts the row tokens); `embedded` is the embedded model's folder.")
@click.option("--gpus", type=click.IntRange(1), show_default="the axolotl config's layout",
              help="With --axolotl-config: train on this many GPUs. The effective batch stays the config's "
              "(gradient accumulation is derived), and the printed command starts exactly this many processes.")
@click.option("--nodes", type=click.IntRange(1), default=1, show_default=True,
              help="With --axolotl-config: spread the --gpus GPUs over this many machines; each runs the printed "
              "command with its NODE_RANK (0 on the head) and the head's HEAD_ADDR set.")
@click.option("--prompt", type=click.Choice(["lema", "wizardmath"]), show_default="wizardmath for a WizardMath model, else lema",
              help="SFT mixes: the prompt every example is written in. lema: the LeMa solve and correction prompts; "
              "wizardmath: WizardMath's Alpaca frame, as the official evaluation asks WizardMath models.")
@friendly_errors
def build(cot_path, corrections_path, mix, fmt, out_dir, val_fraction, seed, extra_cot_path, bos_token, eos_token,
          axolotl_config, max_tokens, tokenizer, checks_path, base_model, gpus, nodes, prompt):
    """Build one training mix (an SFT mix or a step-level kind) in an axolotl dataset format.

    Correction examples teach: given a question and a wrong solution in numbered steps, name the
    first wrong step, explain it, and solve from there. CoT examples teach: the zero-shot solve
    prompt -> a rationale ending in "The answer is X.". The step-level kinds turn the same
    corrections into preference pairs (`rl: dpo`) or per-step labels for a process reward model.
    With --axolotl-config, OUT/axolotl.yml is the config to train (for every mix and kind), and
    the commands that train and evaluate it are printed with the environment they need; without
    it, the printed `datasets:` lines go into your own config.
    """
    from lema_plugin.export import STEP_KINDS, build_step_dataset
    from lema_plugin.export.build import build_dataset, count_rows

    if checks_path and mix not in STEP_KINDS:
        raise click.UsageError(f"--confirmed applies to the step-level kinds ({', '.join(STEP_KINDS)}), not to {mix}")
    if (base_model or gpus or nodes > 1) and not axolotl_config:
        raise click.UsageError("--base-model, --gpus and --nodes shape the ready axolotl config: give --axolotl-config too")
    if prompt and mix in STEP_KINDS:
        raise click.UsageError(f"--prompt applies to the SFT mixes, not to {mix} (its rows use the LeMa solve prompt)")
    if base_model == "embedded":  # the cached folder of the embedded model, as a recipe's train.base_model
        from lema_plugin.llm.embedded import base_model_path

        base_model = base_model_path(base_model)
    overrides = {"base_model": base_model} if base_model else None
    if mix in STEP_KINDS:
        info = build_step_dataset(out_dir, mix, cot_path, corrections_path, val_fraction=val_fraction, seed=seed,
                                  checks_path=checks_path, axolotl_config=axolotl_config, config_overrides=overrides,
                                  gpus=gpus, max_tokens=max_tokens, tokenizer=tokenizer, nodes=nodes)
    else:
        info = build_dataset(
            out_dir, cot_path, corrections_path, mix=mix, fmt=fmt, val_fraction=val_fraction, seed=seed,
            extra_cot_path=extra_cot_path, bos_token=bos_token, eos_token=eos_token,
            axolotl_config=axolotl_config, max_tokens=max_tokens, tokenizer=tokenizer,
            config_overrides=overrides, gpus=gpus, prompt=prompt, nodes=nodes,
        )
    click.echo(format_table(("split", "kind", "source", "examples"), count_rows(info)))
    for name, spec in info["inputs"].items():
        skipped = {k: v for k, v in spec["skipped"].items() if v}
        if skipped:
            click.echo(f"skipped in {name}: " + ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in skipped.items()))
    if info.get("size_matching"):
        pad = info["size_matching"]
        click.echo(f"size-matched to {pad['target']}: {pad['extra_cot']} extra CoT, {pad['repeated']} repeated")
    for warning in info.get("warnings", []):
        click.echo(f"warning: {warning}", err=True)
    if mix in ("lema", "cot-size-matched") and not any(
            info["counts"][split]["by_kind"].get("correction") for split in ("train", "val") if split in info["counts"]):
        click.echo(f"warning: no verified correction in {corrections_path or '(no --corrections)'}: the {mix} mix holds "
                   "CoT examples only, the same data as cot-only", err=True)
    check_outcome(info["counts"]["train"]["examples"], "training examples")  # before any "Next:" to train on nothing
    if "token_budget" in info:
        report = info["token_budget"]
        line = (f"{report['over']} of {report['rows']} rows longer than {report['budget']} tokens "
                f"(longest {report['longest']}; {report['counted_with']})")
        if report["axolotl_excess_length_strategy"] and report["over"]:
            line += f"; axolotl will {report['axolotl_excess_length_strategy']} them (excess_length_strategy)"
        click.echo(line, err=bool(report["over"]))
    if "axolotl_config" in info:
        ready = info["axolotl_config"]
        click.echo(f"wrote {Path(out_dir) / 'train.jsonl'} and {Path(out_dir) / 'axolotl.yml'} ({ready['check']}; "
                   f"effective batch {ready['effective_batch']} on {_devices(ready['gpus'])})")
        click.echo("Next:")
        for line in info["next_commands"]:
            click.echo(f"  {line}")
        return
    click.echo(f"wrote {Path(out_dir) / 'train.jsonl'}; axolotl config lines:\n")
    click.echo(yaml.safe_dump(info["axolotl"], sort_keys=False), nl=False)


def _devices(gpus: int) -> str:
    return "CPU" if not gpus else f"{gpus} GPU{'s' if gpus > 1 else ''}"

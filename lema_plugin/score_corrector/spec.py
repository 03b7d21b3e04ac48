"""Scoring a corrector before paying for corrections, as registered: labelled items in, one
reply per (corrector, protocol, item) stored, verdicts and the score table out.

Not a step of `lema run`: it answers a question asked before a run (which corrector?), on a
benchmark rather than the run's problems, and its requests should not be spent again on every
run. Several `--corrector` specs are scored side by side in one table; `--runs` puts the dollars
per verified correction of run folders you made with them next to the scores.
"""
from __future__ import annotations

from typing import Literal

from pydantic import Field

from ..correct.stage import corrector_spec
from ..llm.types import Ask
from ..records import make_id
from ..settings import Settings, decisive
from ..stage import Funnel, Input, Role, Section, Stage
from .items import ProcessBenchSource
from .metric import lema_items
from .prompt import PROTOCOLS, score_request

REPLIES = "replies.jsonl"
VERDICTS = "verdicts.jsonl"
SUMMARY = "score_corrector_summary.json"
REPLY_FIELDS = {"id": (str,), "protocol": (str,), "split": (str,), "item_id": (str,), "raw": (str,)}


class ScoreSettings(Settings):
    """Which protocols score the correctors, and how they are asked."""

    protocols: tuple[Literal["lema", "processbench"], ...] = Field(
        PROTOCOLS, description="lema: the correction prompt `lema correct` sends, on the erroneous items whose final answer "
        "is wrong; processbench: a critique prompt that allows 'no error', on every item (F1 as published).")
    style: Literal["fewshot", "zeroshot"] = decisive(
        "fewshot", description="The LeMa protocol's correction prompt, as `lema correct --style`: score the style you will "
        "correct with.")
    temperature: float = decisive(0.0, ge=0, description="Sampling temperature.")
    max_tokens: int = decisive(1024, ge=1, description="Longest reply.")
    runs: tuple[str, ...] = Field((), description="Run folders made with these correctors (`lema run`, or `lema correct` "
                                  "and `lema build`): their dollars per verified correction and per exported example, "
                                  "by MATH level, go next to the scores.", json_schema_extra={"default_text": "none"})


def _corrector() -> str:
    return corrector_spec()


class ScoreCorrectorStage(Stage):
    name = "score-corrector"
    verb = "score"
    help = """Score correctors on ProcessBench before paying for corrections: do they find the first wrong step?

    Two protocols, both by default. LeMa: the corrector gets the correction prompt `lema
    correct` sends (steps numbered from 1) for each erroneous item whose final answer is wrong,
    and the score is the share whose named step is the labelled one (and the share not parsed).
    ProcessBench: a critique prompt that allows "no error", on every item; accuracy on the
    erroneous and on the correct items and their harmonic mean, F1, per split and averaged, as
    in the published table (o1-mini 87.9, QwQ-32B-Preview 71.5). Give --corrector twice to see
    two side by side, and --runs to add the dollars per verified correction of your own runs.
    Items come from the hub dataset Qwen/ProcessBench, or from your labelled file in its fields
    (--data-file). Writes OUT/replies.jsonl, OUT/verdicts.jsonl and
    OUT/score_corrector_summary.json; run again with the same OUT to resume."""
    examples = """\
  lema score-corrector --splits gsm8k --limit 50 --corrector "mini=gpt-4o-mini;price=0.15/0.6" --corrector "4o=gpt-4o;price=2.5/10" --out runs/score
  lema score-corrector --data-file my_labelled.jsonl --corrector embedded --runs runs/demo --out runs/score-embedded"""
    settings = ScoreSettings
    roles = (Role("corrector", "--corrector", "A corrector to score (SPEC below); repeat it to score several side by side.",
                  many=True, default=_corrector,
                  default_text="$LEMA_CORRECTOR; else gpt-4o on the OpenAI API when OPENAI_API_KEY is set; else embedded"),)
    input = Input("labelled items", help="ProcessBench items.", options=ProcessBenchSource)
    outputs = (REPLIES, VERDICTS, SUMMARY)
    store_fields = {REPLIES: REPLY_FIELDS}
    product_file = VERDICTS
    product_name = "scored replies"
    in_pipeline = False

    def ask_id(self, protocol: str, corrector, settings, request) -> str:
        """Everything that decides a reply: the protocol, the corrector and settings, the prompt."""
        return make_id("score-corrector", protocol, self.decisive(corrector, settings), request.messages, request.prompt)

    def plan(self, items, endpoints, settings) -> list[Ask]:
        asks = []
        for corrector in endpoints["corrector"]:
            for protocol in settings.protocols:
                for item in (lema_items(items) if protocol == "lema" else items):
                    request = score_request(protocol, item, corrector, settings)
                    asks.append(Ask(self.ask_id(protocol, corrector, settings, request), corrector, request,
                                    (protocol, item)))
        return asks

    def to_record(self, run, ask: Ask, completion) -> None:
        from .parse import read_reply

        if not completion.ok:
            return  # not stored: asked again on the next run (the loop keeps the reason: run.failures)
        protocol, item = ask.owner
        reading = read_reply(protocol, completion.text, ask.endpoint)
        run.store(REPLIES).append({
            "id": ask.id, "protocol": protocol, "split": item.split, "item_id": item.id, "corrector": ask.endpoint.label,
            "model": ask.endpoint.model, "raw": completion.text, "finish_reason": completion.finish_reason,
            "index": reading.index, "reason": reading.reason,
            "usage": {"prompt_tokens": completion.prompt_tokens, "completion_tokens": completion.completion_tokens},
        })

    async def run(self, run) -> None:
        """Cost the run folders first (a wrong folder stops the command before any request), then
        ask what the folder does not hold, then score every stored reply against today's labels."""
        from .costs import run_cost
        from .score import score_run

        costs = [run_cost(folder, {c.label: c for c in run.endpoints["corrector"]}) for folder in run.settings.runs]
        await run.ask(self.plan(run.items, run.endpoints, run.settings),
                      lambda ask, completion: self.to_record(run, ask, completion))
        run.result = score_run(self, run, costs)

    def summarize(self, run):
        return run.result

    def funnel(self, summary: dict) -> Funnel:
        replies = read = right = unread = outside = 0
        for corrector in summary.get("correctors") or []:
            for protocol in ("processbench", "lema"):
                for split in (corrector.get(protocol) or {}).values():
                    n = split.get("items", 0)
                    replies += n
                    unread += split.get("unparsed", 0)
                    outside += split.get("outside", 0)
                    right += split.get("exact", split.get("erroneous_right", 0) + split.get("correct_right", 0))
        read = replies - unread
        return Funnel(self.name, [("replies", replies), ("read", read), ("named the labelled step", right)],
                      {k: v for k, v in (("unparsed", unread), ("index outside the item", outside)) if v})

    def section(self, summary: dict) -> Section | None:
        from .summary import GUIDE

        table = summary.get("table") or {}
        if not table.get("rows"):
            return None
        return Section("Corrector scores (ProcessBench)", list(table["headers"]), [list(r) for r in table["rows"]], GUIDE)

    def compare(self, a: dict, b: dict, a_name: str, b_name: str) -> Section:
        from .summary import side_by_side

        return side_by_side(a, b, a_name, b_name)


SCORE_CORRECTOR = ScoreCorrectorStage()


def register_stages(register) -> None:
    register(SCORE_CORRECTOR)


async def score_correctors(items, endpoints, client, out_dir, settings: ScoreSettings | None = None):
    """The score as a library call (`run_stage(SCORE_CORRECTOR, ...)`): returns its summary. `items`
    come from `items.load_items`; `endpoints` are the correctors."""
    from ..stage_run import run_stage

    return await run_stage(SCORE_CORRECTOR, items, endpoints, client, out_dir, settings or ScoreSettings())

"""Score a corrector before paying for it: does it name the first wrong step of a solution?

On ProcessBench (or your own items in its fields), under two protocols: the LeMa one (the
correction prompt `lema correct` sends) and ProcessBench's own (a critique that allows "no
error", F1 as published). `items` reads the labelled items, `prompt` builds the two requests,
`parse` reads the index a reply names, `metric` counts, `costs` prices (per split, and per
verified correction of a run folder), `score` joins the stored replies with the labels,
`summary` lays out the table, `spec` is the registered stage.
"""
from .items import Item, ProcessBenchSource, load_items
from .spec import REPLIES, SCORE_CORRECTOR, SUMMARY, VERDICTS, ScoreCorrectorStage, ScoreSettings, score_correctors

__all__ = ["Item", "ProcessBenchSource", "REPLIES", "SCORE_CORRECTOR", "SUMMARY", "VERDICTS", "ScoreCorrectorStage",
           "ScoreSettings", "load_items", "score_correctors"]

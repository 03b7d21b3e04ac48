"""Collect mistakes: sample reasoning paths, grade them, keep the wrong ones (`spec`: the stage;
`paths`: path records and the finalized run folder, shared with `lema import`)."""
from .paths import (KINDS, MISTAKES_FILE, PATH_FIELDS, PATHS_FILE, SUMMARY_FILE, SampleSummary, current_paths,
                    failed_record, finalize_run, path_grade, path_record, select_mistakes, summarize, write_summary)
from .spec import SAMPLE, SampleSettings, SampleStage, sample_paths
from ..solving import solve_request

__all__ = ["KINDS", "MISTAKES_FILE", "PATH_FIELDS", "PATHS_FILE", "SUMMARY_FILE", "SAMPLE", "SampleSettings",
           "SampleStage", "SampleSummary", "current_paths", "failed_record", "finalize_run", "path_grade", "path_record",
           "sample_paths", "select_mistakes", "solve_request", "summarize", "write_summary"]

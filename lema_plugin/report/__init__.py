"""`lema report` and `lema compare`: see a run's data and judge a fine-tune's gain.

gather (read a run folder) -> figures (count) -> plots (matplotlib SVG) -> page (one HTML file);
compare pairs two lm-eval sample files question by question.
"""
from .build import REPORT_FILE, build_report, write_comparison

__all__ = ["REPORT_FILE", "build_report", "write_comparison"]

"""`lema import`: outputs a user already has, graded and kept like sampled paths (`read`: the
file formats and matching; `spec`: the registered stage)."""
from .read import RawPath, detect_format, matched_paths, read_raw_paths
from .spec import FORMATS, IMPORT, ImportOptions, ImportSettings, ImportStage, import_paths

__all__ = ["FORMATS", "IMPORT", "ImportOptions", "ImportSettings", "ImportStage", "RawPath", "detect_format",
           "import_paths", "matched_paths", "read_raw_paths"]

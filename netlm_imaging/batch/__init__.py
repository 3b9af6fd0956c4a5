"""Cohort analysis: study discovery, input fingerprints and the resumable runner (local processes or Dask)."""

from __future__ import annotations

from .cohort import Study, discover_cohort, studies_from_csv, studies_from_folder
from .fingerprint import study_fingerprint
from .runner import CSV_COLUMNS, RUN_COLUMNS, BatchOptions, CohortResult, analyze_one, run_cohort

__all__ = [
    "CSV_COLUMNS",
    "RUN_COLUMNS",
    "BatchOptions",
    "CohortResult",
    "Study",
    "analyze_one",
    "discover_cohort",
    "run_cohort",
    "studies_from_csv",
    "studies_from_folder",
    "study_fingerprint",
]

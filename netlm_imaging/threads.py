"""How many threads one analysis may use: its file reads (io) and its memory passes (measure).

An analysis runs on the caller's thread and, where the work releases the GIL, on one more
(:mod:`netlm_imaging.io._threads` for a DICOM series' pixel read, :mod:`netlm_imaging.measure.threads`
for the liver's memory pass): ``min(2, cores)`` by default. A ``netlm batch -j k`` worker shares the
cores with ``k - 1`` others and caps it at ``cores // k`` (:func:`set_analysis_threads`, called by the
pool's worker initialiser, the way it caps BLAS), so k workers never start more threads than cores.
Which thread runs a piece never changes a number: each threaded step writes its own part of a result.
"""

from __future__ import annotations

import os

__all__ = ["MAX_ANALYSIS_THREADS", "analysis_threads", "set_analysis_threads"]

#: At most this many threads work on one analysis (the caller's included).
MAX_ANALYSIS_THREADS = 2
_THREADS: int | None = None


def set_analysis_threads(n: int | None) -> None:
    """Set how many threads one analysis may use (``None``: the default, ``min(2, cores)``)."""
    global _THREADS
    _THREADS = None if n is None else max(1, int(n))


def analysis_threads() -> int:
    """The threads one analysis may use: 1 (everything on the caller's thread) or more."""
    if _THREADS is not None:
        return _THREADS
    return max(1, min(MAX_ANALYSIS_THREADS, os.cpu_count() or 1))

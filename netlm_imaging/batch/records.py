"""The stored results of a batch study: its report paths, resume by fingerprint, failure records.

With ``--resume`` a study whose stored report (or kept failure) carries the same input
fingerprint (:mod:`netlm_imaging.batch.fingerprint`) is not analysed again: :func:`previous_row`
rebuilds its ``cohort.csv`` row from the stored file. A failure is recorded in
``reports/<id>.failed.json`` (:func:`record_failure`); failures caused by the input (a
:class:`~netlm_imaging.errors.NetlmError`) are kept as they are, any other is retried.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

from ..atomic import atomic_write_text
from ..report.tables import failure_row, one_line, row_from_report
from .cohort import Study
from .fingerprint import study_fingerprint
from .options import BatchOptions

__all__ = ["fingerprint_of", "previous_row", "record_failure", "report_path"]


def report_path(out_dir: Path, study_id: str, suffix: str = ".json") -> Path:
    """``<out>/reports/<study_id><suffix>``."""
    return out_dir / "reports" / f"{study_id}{suffix}"


def fingerprint_of(study: Study, options: BatchOptions) -> str:
    """The input fingerprint of a study under the batch's options (its clinical columns included)."""
    from .._version import __version__

    opts = options.fingerprint_options()
    opts["clinical"] = dict(sorted(study.clinical.items()))
    exclude = (options.out_dir,) if options.out_dir else ()
    return study_fingerprint(study.path, opts, tool_version=__version__, rules=options.rules, exclude=exclude)


def previous_row(out_dir: Path, study_id: str, fingerprint: str) -> dict[str, Any] | None:
    """Row rebuilt from a stored report or kept failure with this fingerprint, else None."""
    ok_path = report_path(out_dir, study_id)
    if ok_path.is_file():
        with contextlib.suppress(OSError, ValueError):
            data = json.loads(ok_path.read_text(encoding="utf-8"))
            if (data.get("batch") or {}).get("fingerprint") == fingerprint:
                return row_from_report(study_id, data, fingerprint)
    failed_path = report_path(out_dir, study_id, ".failed.json")
    if failed_path.is_file():
        with contextlib.suppress(OSError, ValueError):
            data = json.loads(failed_path.read_text(encoding="utf-8"))
            if data.get("fingerprint") == fingerprint and not data.get("retry", True):
                return failure_row(study_id, data.get("error", ""), fingerprint)
    return None


def record_failure(out: Path, study_id: str, error: str, fingerprint: str, retry: bool) -> None:
    """Write ``reports/<id>.failed.json`` (the one-line error; ``retry``: redo it on ``--resume``) and
    remove a stale report beside it."""
    with contextlib.suppress(FileNotFoundError):
        report_path(out, study_id).unlink()  # never leave a stale result beside a failure
    record = {"study_id": study_id, "error": one_line(error), "fingerprint": fingerprint, "retry": retry}
    atomic_write_text(report_path(out, study_id, ".failed.json"), json.dumps(record, indent=2) + "\n")

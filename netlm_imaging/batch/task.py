"""The per-study task of a batch: analyse one study, write its outputs, return its ``cohort.csv`` row.

:func:`analyze_one` is what every execution mode runs (in process, the process pool of
:mod:`netlm_imaging.batch.pool`, a Dask cluster): a module-level function of picklable
arguments that never raises for a bad study. With ``resume`` a study whose stored report or
kept failure carries the same input fingerprint (:mod:`netlm_imaging.batch.fingerprint`) is
not analysed again; its row is rebuilt from the stored file. A failure is recorded in
``reports/<id>.failed.json``; failures caused by the input (a
:class:`~netlm_imaging.errors.NetlmError`) are kept, any other is retried by ``--resume``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..atomic import atomic_write_text
from ..errors import NetlmError, OutputError, only_accepted_flags
from ..report.tables import failure_row, one_line, row_from_report
from .cohort import Study
from .fingerprint import study_fingerprint
from .options import BatchOptions
from .pseudonym import scrub_study_path

__all__ = ["analyze_one", "record_failure"]

logger = logging.getLogger(__name__)


def _report_path(out_dir: Path, study_id: str, suffix: str = ".json") -> Path:
    return out_dir / "reports" / f"{study_id}{suffix}"


def _fingerprint(study: Study, options: BatchOptions) -> str:
    from .._version import __version__

    opts = options.fingerprint_options()
    opts["clinical"] = dict(sorted(study.clinical.items()))
    return study_fingerprint(study.path, opts, tool_version=__version__, rules=options.rules)


def _previous_row(out_dir: Path, study_id: str, fingerprint: str) -> dict[str, Any] | None:
    """Row rebuilt from a stored report or kept failure with this fingerprint, else None."""
    ok_path = _report_path(out_dir, study_id)
    if ok_path.is_file():
        with contextlib.suppress(OSError, ValueError):
            data = json.loads(ok_path.read_text(encoding="utf-8"))
            if (data.get("batch") or {}).get("fingerprint") == fingerprint:
                return row_from_report(study_id, data, fingerprint)
    failed_path = _report_path(out_dir, study_id, ".failed.json")
    if failed_path.is_file():
        with contextlib.suppress(OSError, ValueError):
            data = json.loads(failed_path.read_text(encoding="utf-8"))
            if data.get("fingerprint") == fingerprint and not data.get("retry", True):
                return failure_row(study_id, data.get("error", ""), fingerprint)
    return None


def _clinical(study: Study) -> Any:
    """The study's clinical columns for the load stage to validate (None when the row has none)."""
    if not study.clinical or not any(study.clinical.values()):
        return None
    from ..classify.clinical import ClinicalRow

    return ClinicalRow(study.clinical, f"cohort row of study {study.study_id}")


def _analyze(study: Study, out_dir: Path, options: BatchOptions, fingerprint: str) -> dict[str, Any]:
    from .. import api

    kwargs: dict[str, Any] = {"labels": options.labels, "rules": options.rules, "clinical": _clinical(study)}
    if options.analyze_options or options.include_identifiers:
        aopts = dict(options.analyze_options)
        if options.include_identifiers:
            aopts["include_identifiers"] = True
        kwargs["options"] = api.AnalyzeOptions(**aopts)
    report, ctx = api.analyze_with_context(study.path, **kwargs)
    from ..report.dicom_outputs import has_dicom_source
    from ..report.outputs import OutputSet, write_outputs

    sr = options.sr
    if sr and not has_dicom_source(ctx):  # the study's report stands; the SR is skipped with a note
        note = "no DICOM SR written: the image is not a DICOM series (an SR references the DICOM images measured)"
        report = replace(report, extra={**report.extra, "notes": [*report.extra.get("notes", []), note]})
        logger.info("study %s: %s", study.study_id, note)
        sr = False
    batch = {"study_id": study.study_id, "fingerprint": fingerprint}
    outputs = OutputSet.batch(
        study.study_id, html=options.html, sr=sr, json_extra={"batch": batch}, html_budget_mb=options.html_budget_mb
    )
    data = report.to_dict()
    write_outputs(data, ctx, out_dir, outputs, include_identifiers=options.include_identifiers)
    data["batch"] = batch
    return row_from_report(study.study_id, data, fingerprint)


def analyze_one(study: Study, out_dir: str | os.PathLike[str], options: BatchOptions) -> dict[str, Any]:
    """Analyse one study and write its outputs; never raises for a bad study.

    This is the per-study task of every execution mode (in process, process
    pool, Dask). It is a module-level function of picklable arguments.

    Parameters
    ----------
    study : Study
        The study.
    out_dir : path-like
        Batch output folder.
    options : BatchOptions
        Analysis options (``options.resume`` enables skipping).

    Returns
    -------
    dict
        The study's cohort.csv row; ``status`` is ``"ok"`` or ``"failed"`` and
        ``resumed`` tells whether the stored result was reused.
    """
    t0 = time.perf_counter()
    out = Path(out_dir)
    fingerprint = ""
    failed_path = _report_path(out, study.study_id, ".failed.json")
    retry = False
    try:
        fingerprint = _fingerprint(study, options)
        if options.resume:
            prev = _previous_row(out, study.study_id, fingerprint)
            if prev is not None:
                prev.update(resumed=True, elapsed_s=round(time.perf_counter() - t0, 3))
                return prev
        row = _analyze(study, out, options, fingerprint)
        with contextlib.suppress(FileNotFoundError):
            failed_path.unlink()
    except OutputError:
        raise  # the output folder or disk failed, not this study: the cohort stops (see run_cohort)
    except NetlmError as exc:
        error = only_accepted_flags(str(exc), options.accepted_flags, "batch") if options.accepted_flags else str(exc)
        row = failure_row(study.study_id, error, fingerprint)
    except MemoryError:
        error, retry = "out of memory; lower -j or --max-voxels", True
        row = failure_row(study.study_id, error, fingerprint)
    except Exception as exc:  # one study's bug never stops the cohort
        logger.debug("internal error on study %s", study.study_id, exc_info=True)
        error, retry = f"internal error: {type(exc).__name__}: {exc} (a bug in netlm-imaging; please report it)", True
        row = failure_row(study.study_id, error, fingerprint)
    if row["status"] == "failed":
        if study.pseudonymized:  # name files as <pseudonym>/..., never by the real folder name
            row["error"] = scrub_study_path(row["error"], study)
        record_failure(out, study.study_id, row["error"], fingerprint, retry)
    row["elapsed_s"] = round(time.perf_counter() - t0, 3)
    return row


def record_failure(out: Path, study_id: str, error: str, fingerprint: str, retry: bool) -> None:
    """Write ``reports/<id>.failed.json`` (the one-line error; ``retry``: redo it on ``--resume``) and
    remove a stale report beside it."""
    with contextlib.suppress(FileNotFoundError):
        _report_path(out, study_id).unlink()  # never leave a stale result beside a failure
    record = {"study_id": study_id, "error": one_line(error), "fingerprint": fingerprint, "retry": retry}
    atomic_write_text(_report_path(out, study_id, ".failed.json"), json.dumps(record, indent=2) + "\n")

"""Run the analysis over a cohort: resumable, local processes or a Dask cluster.

The process pool (:mod:`netlm_imaging.batch.pool`) and the Dask cluster
(:mod:`netlm_imaging.batch.dask_mode`) run the same per-study task, :func:`analyze_one`, which
is here with the run itself; the stored results (resume by fingerprint, failure records) are
:mod:`netlm_imaging.batch.records` and the crash-safe cohort tables :mod:`netlm_imaging.batch.tables`.

One function, :func:`analyze_one`, analyses one study and returns its
``cohort.csv`` row. :func:`run_cohort` calls it in this process (``jobs=1``),
in a :class:`concurrent.futures.ProcessPoolExecutor` (``jobs > 1``) or on a
Dask distributed cluster (``scheduler=ADDRESS``, via ``Client.map``); the
rows are the same whichever way it ran.

Outputs under ``out_dir`` (every file written atomically: temp file + rename)
-----------------------------------------------------------------------------
``lesions.csv``
    One row per lesion of every finished study (:data:`~netlm_imaging.report.tables.LESION_COLUMNS`:
    study, lesion id, location, Couinaud segment, volume, diameters, SUVs),
    rewritten with cohort.csv.
``cohort.csv``
    One row per study, sorted by study id, rewritten after every finished
    study (unfinished studies have status ``pending``), so a kill loses
    nothing already finished. Columns: :data:`CSV_COLUMNS`; the run columns
    (:data:`RUN_COLUMNS`: ``elapsed_s``, ``resumed``) come last and are the only
    ones that differ between two runs over the same inputs.
``reports/<study_id>.json``
    The study report plus a ``batch`` object (study id, fingerprint).
``reports/<study_id>.failed.json``
    For a failed study: the one-line error and the fingerprint.
``reports/<study_id>.sr.dcm`` + ``.seg.dcm`` / ``.html``
    With ``sr`` (the SR and the derived SEG whose segments it references;
    a study without DICOM images gets a note in its report instead) / ``html``.

Resume: with ``resume=True`` a study whose report (or failure record) carries
the same input fingerprint (:mod:`netlm_imaging.batch.fingerprint`) is not
analysed again; its row is rebuilt from the stored file. Failures caused by the
input (a :class:`~netlm_imaging.errors.NetlmError`) are kept as they are; any
other failure (internal error, out of memory, a worker that died) is retried.

With a Dask scheduler, workers write the reports themselves, so ``out_dir``
and the study folders must be on a file system every worker sees.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ..atomic import remove_stale_temp_files
from ..errors import InputError, NetlmError, OutputError, for_command
from ..outdir import OutputLock, prepare_output_dir
from ..report.tables import CSV_COLUMNS, LESIONS_KEY, NUMBER_COLUMNS, RUN_COLUMNS, failure_row, row_from_report
from .cohort import Study, archive_error, archive_kind
from .interrupt import Interrupted, signum_of
from .options import BatchOptions
from .pool import StudyTimedOut, WorkerDied, executor_results
from .progress import Progress
from .pseudonym import scrub_study_path
from .records import fingerprint_of, previous_row, record_failure, report_path
from .tables import CohortTables, OutputFolderGone, format_csv

__all__ = [
    "CSV_COLUMNS",
    "LESIONS_KEY",
    "NUMBER_COLUMNS",
    "RUN_COLUMNS",
    "BatchOptions",
    "CohortResult",
    "analyze_one",
    "format_csv",
    "row_from_report",
    "run_cohort",
]

logger = logging.getLogger(__name__)

_PENDING = "pending"


@dataclass
class CohortResult:
    """Outcome of :func:`run_cohort`.

    Attributes
    ----------
    rows : list of dict
        ``cohort.csv`` rows, sorted by study id.
    csv_path : pathlib.Path
        Where ``cohort.csv`` was written.
    analysed, resumed, failed : int
        Studies analysed in this run, skipped because their inputs were
        unchanged (``--resume``), and failed (this run or a kept earlier failure).
    elapsed_s : float
        Wall time of the run.
    """

    rows: list[dict[str, Any]]
    csv_path: Path
    analysed: int = 0
    resumed: int = 0
    failed: int = 0
    elapsed_s: float = 0.0

    @property
    def ok(self) -> int:
        """Studies with a report."""
        return sum(1 for r in self.rows if r["status"] == "ok")

    @property
    def exit_code(self) -> int:
        """4 when any study failed, else 0."""
        return 4 if self.failed else 0


# ----------------------------------------------------------------------------- one study


def _clinical(study: Study) -> Any:
    """The study's clinical columns for the load stage to validate (None when the row has none)."""
    if not study.clinical or not any(study.clinical.values()):
        return None
    from ..clinical.inputs import ClinicalRow

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
    failed_path = report_path(out, study.study_id, ".failed.json")
    retry = False
    try:
        fingerprint = fingerprint_of(study, options)
        if options.resume:
            prev = previous_row(out, study.study_id, fingerprint)
            if prev is not None:
                prev.update(resumed=True, elapsed_s=round(time.perf_counter() - t0, 3))
                return prev
        row = _analyze(study, out, options, fingerprint)
        with contextlib.suppress(FileNotFoundError):
            failed_path.unlink()
    except OutputError:
        raise  # the output folder or disk failed, not this study: the cohort stops (see run_cohort)
    except NetlmError as exc:
        error = for_command(exc, options.accepted_flags or None, "batch")
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


# ----------------------------------------------------------------------------- cohort


def _in_process_results(
    studies: Sequence[Study], out_dir: Path, options: BatchOptions
) -> Iterable[tuple[Study, dict[str, Any] | BaseException]]:
    """(study, row) in cohort order, analysed in this process; the inflate buffers kept while it runs."""
    from ..io._gzip import buffers_kept

    with buffers_kept():
        for s in studies:
            yield s, analyze_one(s, out_dir, options)


def run_cohort(
    studies: Sequence[Study],
    out_dir: str | os.PathLike[str],
    *,
    jobs: int = 1,
    scheduler: Any = None,
    resume: bool = False,
    options: BatchOptions | None = None,
    progress: bool = False,
    progress_stream: Any = None,
    on_row: Callable[[dict[str, Any]], None] | None = None,
    connect_timeout_s: float = 20.0,
    timeout_s: float | None = None,
) -> CohortResult:
    """Analyse every study; write ``cohort.csv`` and ``reports/`` atomically as studies finish.

    Parameters
    ----------
    studies : sequence of Study
        From :func:`netlm_imaging.batch.cohort.discover_cohort`.
    out_dir : path-like
        Output folder (created).
    jobs : int
        Local worker processes (1: in this process). Ignored with ``scheduler``.
    scheduler : str or distributed.Client, optional
        Dask scheduler address (``tcp://host:8786``) or a client.
    resume : bool
        Skip studies whose stored result has the same input fingerprint.
    options : BatchOptions, optional
        Analysis options.
    progress : bool
        Show a progress bar with ETA (terminal) or one line per study (not a terminal).
    progress_stream : file-like, optional
        Where progress goes (default ``sys.stderr``).
    on_row : callable, optional
        Called with each finished row (in completion order).
    connect_timeout_s : float
        How long to try reaching the Dask scheduler.
    timeout_s : float, optional
        Longest time one study may run (local processes only; ``jobs=1`` then runs in one worker
        process): a study still running is stopped and recorded as failed ("timed out", retried by
        ``resume``), and the others go on.

    Returns
    -------
    CohortResult
        Rows and counts; ``exit_code`` is 4 when any study failed.

    Raises
    ------
    InputError
        Duplicate study ids, ``jobs < 1`` or an unreachable scheduler.
    """
    t0 = time.perf_counter()
    if jobs < 1:
        raise InputError(f"-j {jobs}: the number of local processes must be at least 1")
    if timeout_s is not None and (not timeout_s > 0 or scheduler is not None):
        raise InputError(
            f"--timeout {timeout_s}: give a positive number of seconds, for local processes (-j N); "
            "on a Dask cluster use its own limits"
        )
    ids = [s.study_id for s in studies]
    if len(set(ids)) != len(ids):
        dup = sorted({i for i in ids if ids.count(i) > 1})
        raise InputError(f"duplicate study ids {dup}: give every study a unique folder name or study_id")
    out = prepare_output_dir(out_dir)
    with OutputLock(out, command="netlm batch"):
        result = _run_locked(
            studies,
            out,
            jobs,
            scheduler,
            replace(options or BatchOptions(), resume=resume, out_dir=str(out.resolve())),
            progress,
            progress_stream,
            on_row,
            connect_timeout_s,
            timeout_s,
        )
    result.elapsed_s = time.perf_counter() - t0
    logger.info(
        "cohort: %d studies, %d analysed, %d resumed, %d failed in %.1f s",
        len(studies),
        result.analysed,
        result.resumed,
        result.failed,
        result.elapsed_s,
    )
    return result


def _finished_meanwhile(out: Path, study_id: str, since: float) -> dict[str, Any] | None:
    """The row of a study whose worker wrote its report (or failure record) during this run but was
    stopped before the result reached this process, so the tables agree with ``reports/``.

    Only this run writes in the locked folder, so a file newer than its start is this run's.
    """
    for suffix in (".json", ".failed.json"):
        path = report_path(out, study_id, suffix)
        try:
            if path.stat().st_mtime < since:
                continue
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if suffix == ".json":
            fingerprint = str((data.get("batch") or {}).get("fingerprint") or "")
            return {**row_from_report(study_id, data, fingerprint), "resumed": False}
        return failure_row(study_id, str(data.get("error", "")), str(data.get("fingerprint", "")))
    return None


def _close(results: Iterable[Any]) -> None:
    """Stop the pool (its workers killed) or cancel the Dask futures behind ``results``."""
    close = getattr(results, "close", None)
    if close is not None:
        close()


def _record_archives(
    studies: Sequence[Study], out: Path, rows: dict[str, dict[str, Any]], tables: CohortTables, bar: Progress
) -> list[Study]:
    """Record each study exported as one archive file as failed, with how to unpack it; the others."""
    archives = {s.study_id: kind for s in studies if (kind := archive_kind(s.path))}
    if not archives:
        return list(studies)
    for s in studies:
        if s.study_id in archives:
            msg = archive_error(s.path, archives[s.study_id], private_label=s.study_id if s.pseudonymized else None)
            rows[s.study_id] = failure_row(s.study_id, msg, "")
            record_failure(out, s.study_id, msg, "", retry=True)
            bar.update(rows[s.study_id])
    tables.write(out, rows.values())
    return [s for s in studies if s.study_id not in archives]


def _worker_failure(outcome: BaseException) -> str:
    """The recorded error of a study whose worker raised ``outcome`` (died, timed out, or a bug)."""
    if isinstance(outcome, (WorkerDied, StudyTimedOut)):
        return str(outcome)
    return f"the worker running this study failed ({type(outcome).__name__}: {outcome}); rerun with --resume"


def _stopped(
    exc: BaseException, out: Path, rows: dict[str, dict[str, Any]], tables: CohortTables, started: float
) -> Interrupted:
    """After a stop signal (the pool already stopped): record what finished, and the one-line summary."""
    remove_stale_temp_files(out)  # the stopped workers' (or this process's) unfinished files
    for sid, row in rows.items():
        if row["status"] == _PENDING:
            rows[sid] = _finished_meanwhile(out, sid, started) or row
    done = sum(1 for r in rows.values() if r["status"] != _PENDING)
    tables.write(out, rows.values())
    return Interrupted(
        signum_of(exc),
        f"{done} of {len(rows)} studies had finished and are recorded in {out / 'cohort.csv'} "
        f"(the other {len(rows) - done} are 'pending'); rerun with --resume to finish them",
    )


def _run_locked(
    studies: Sequence[Study],
    out: Path,
    jobs: int,
    scheduler: Any,
    opts: BatchOptions,
    progress: bool,
    progress_stream: Any,
    on_row: Callable[[dict[str, Any]], None] | None,
    connect_timeout_s: float,
    timeout_s: float | None = None,
) -> CohortResult:
    """The body of :func:`run_cohort`, run while holding the output folder's lock."""
    started = time.time()
    prepare_output_dir(out / "reports", "--out")
    rows: dict[str, dict[str, Any]] = {s.study_id: failure_row(s.study_id, "", "", _PENDING) for s in studies}
    csv_path = out / "cohort.csv"
    tables = CohortTables()
    tables.write(out, rows.values())
    result = CohortResult(rows=[], csv_path=csv_path)
    bar = Progress(len(studies), progress, progress_stream)

    studies = _record_archives(studies, out, rows, tables, bar)
    results: Iterable[tuple[Study, dict[str, Any] | BaseException]]
    if scheduler is not None:
        from .dask_mode import dask_results

        results = dask_results(analyze_one, studies, out, opts, scheduler, connect_timeout_s)
    elif (jobs > 1 and len(studies) > 1) or timeout_s is not None:  # a hung study's process can be killed
        results = executor_results(analyze_one, studies, out, opts, min(jobs, len(studies)), timeout_s)
    else:
        results = _in_process_results(studies, out, opts)

    try:
        for study, outcome in results:
            if isinstance(outcome, OutputError):
                raise outcome
            if isinstance(outcome, BaseException):
                if isinstance(outcome, KeyboardInterrupt):
                    raise outcome
                msg = _worker_failure(outcome)
                row = failure_row(study.study_id, msg, "")
                record_failure(out, study.study_id, msg, "", retry=True)
            else:
                row = outcome
            rows[study.study_id] = row
            if row.get("resumed"):
                result.resumed += 1
            elif row["status"] == "ok" or row["status"] == "failed":
                result.analysed += 1
            tables.write(out, rows.values())
            bar.update(row)
            if on_row is not None:
                on_row(row)
    except KeyboardInterrupt as exc:  # Ctrl-C, SIGTERM, SIGHUP (batch.interrupt): keep what finished
        _close(results)
        raise _stopped(exc, out, rows, tables, started) from None
    except OutputError as exc:
        _close(results)
        done = sum(1 for r in rows.values() if r["status"] != _PENDING)
        with contextlib.suppress(OutputError):
            tables.write(out, rows.values())
        where = (
            ""
            if isinstance(exc, OutputFolderGone)
            else f" and are recorded in {out / 'reports'} (and {csv_path} where it could be written)"
        )
        raise OutputError(
            f"{exc}. The batch stopped; {done} of {len(rows)} studies had finished{where}",
            path=exc.path,
            disk_full=exc.disk_full,
        ) from None
    finally:
        bar.close()
    result.rows = sorted(rows.values(), key=lambda r: r["study_id"])
    result.failed = sum(1 for r in result.rows if r["status"] != "ok")
    return result

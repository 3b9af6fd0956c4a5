"""Run the analysis over a cohort: resumable, local processes or a Dask cluster.

Why one module (~770 lines): the three execution modes (in process, process pool, Dask) share
the per-study task, resume by fingerprint and the crash-safe cohort tables; splitting the
modes apart is the next step if it grows.

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
import csv
import io
import json
import logging
import os
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from ..atomic import atomic_write_text, remove_stale_temp_files
from ..errors import InputError, NetlmError, OutputError, only_accepted_flags
from ..outdir import OutputLock, prepare_output_dir
from ..report.tables import (
    CSV_COLUMNS,
    LESION_COLUMNS,
    LESIONS_KEY,
    NUMBER_COLUMNS,
    RUN_COLUMNS,
    csv_cell,
    failure_row,
    one_line,
    row_from_report,
)
from .cohort import Study
from .fingerprint import study_fingerprint

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
#: A study whose worker process dies this many times is recorded as failed (the others go on).
MAX_WORKER_DEATHS = 2
#: The failure recorded for it (retried by ``--resume``).
WORKER_DIED = (
    "worker died: out of memory? (the process analysing this study was killed {n} times, "
    "as the out-of-memory killer does; lower -j or --max-voxels, then rerun with --resume)"
)
#: multiprocessing start method of the local pool (NETLM_START_METHOD overrides: fork, forkserver, spawn).
_START_METHOD = os.environ.get("NETLM_START_METHOD", "fork")


@dataclass(frozen=True)
class BatchOptions:
    """What every study of a cohort is analysed with (picklable, sent to workers).

    Attributes
    ----------
    labels : str, optional
        ``--labels`` mapping (e.g. ``"liver=1,lesion=2"``).
    rules : str, optional
        ``--rules`` file (absolute path).
    sr : bool
        Also write ``reports/<id>.sr.dcm`` (DICOM studies only).
    html : bool
        Also write ``reports/<id>.html`` (QA page), when the HTML writer is available.
    html_budget_mb : float
        Size budget of the image data embedded in each QA page.
    include_identifiers : bool
        Copy patient identifiers into the SR (off by default).
    analyze_options : dict
        Keyword arguments of ``netlm_imaging.api.AnalyzeOptions``.
    resume : bool
        Skip studies with an unchanged fingerprint (not part of the fingerprint).
    accepted_flags : tuple of str
        Options of the running command: error messages naming other options
        are rewritten to name ``netlm analyze`` (not part of the fingerprint).
    """

    labels: str | None = None
    rules: str | None = None
    sr: bool = False
    html: bool = False
    html_budget_mb: float = 25.0
    include_identifiers: bool = False
    analyze_options: dict[str, Any] = field(default_factory=dict)
    resume: bool = False
    accepted_flags: tuple[str, ...] = ()

    def fingerprint_options(self) -> dict[str, Any]:
        """The options that change a study's outputs (hashed into its fingerprint)."""
        from ..api import AnalyzeOptions

        d = asdict(self)
        d.pop("resume")
        d.pop("accepted_flags")
        d.pop("rules")  # the rules file is hashed by content instead
        # defaults filled in, so the API's BatchOptions() and the CLI's explicit defaults hash alike
        d["analyze_options"] = asdict(AnalyzeOptions(**self.analyze_options))
        return d


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


# ----------------------------------------------------------------------------- rows


class _Tables:
    """Writes cohort.csv and lesions.csv after every finished study, formatting each row once.

    The text is that of :func:`format_csv` and :func:`format_lesions_csv` over
    all rows (rows sorted by study id; a study's lesions by lesion id): the
    lines of a row are kept until the row object changes, so the parent's
    rewrite after each of n studies formats one row, not all n again.
    """

    def __init__(self) -> None:
        self._lines: dict[str, tuple[dict[str, Any], str, str]] = {}

    def _row_lines(self, row: dict[str, Any]) -> tuple[str, str]:
        sid = row["study_id"]
        kept = self._lines.get(sid)
        if kept is not None and kept[0] is row:
            return kept[1], kept[2]
        study_line = _csv_lines([row], CSV_COLUMNS, key=None)
        lesions = sorted(row.get(LESIONS_KEY) or [], key=lambda r: (str(r["study_id"]), int(r["lesion_id"] or 0)))
        lesion_lines = _csv_lines(lesions, LESION_COLUMNS, key=None)
        self._lines[sid] = (row, study_line, lesion_lines)
        return study_line, lesion_lines

    def write(self, out: Path, rows: Iterable[dict[str, Any]]) -> None:
        ordered = sorted(rows, key=lambda r: r["study_id"])
        lines = [self._row_lines(r) for r in ordered]
        atomic_write_text(
            out / "cohort.csv", _csv_lines([], CSV_COLUMNS, key=None, header=True) + "".join(a for a, _ in lines)
        )
        atomic_write_text(
            out / "lesions.csv", _csv_lines([], LESION_COLUMNS, key=None, header=True) + "".join(b for _, b in lines)
        )


def _csv_lines(rows: Iterable[dict[str, Any]], columns: Sequence[str], *, key: Any, header: bool = False) -> str:
    """CSV text of ``rows`` (in the given order, or sorted by ``key``) under ``columns``, optionally with the header."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    if header:
        w.writerow(columns)
    for row in rows if key is None else sorted(rows, key=key):
        w.writerow([csv_cell(row.get(c)) for c in columns])
    return buf.getvalue()


def format_csv(rows: Iterable[dict[str, Any]]) -> str:
    """cohort.csv text: header :data:`CSV_COLUMNS`, rows sorted by study id, floats as shortest repr.

    Parameters
    ----------
    rows : iterable of dict
        Rows keyed by column name.

    Returns
    -------
    str
        CSV text with ``\\n`` line ends.
    """
    return _csv_lines(rows, CSV_COLUMNS, key=lambda r: r["study_id"], header=True)


# ----------------------------------------------------------------------------- one study


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
            row["error"] = _scrub(row["error"], study)
        _record_failure(out, study.study_id, row["error"], fingerprint, retry)
    row["elapsed_s"] = round(time.perf_counter() - t0, 3)
    return row


def _scrub(text: str, study: Study) -> str:
    """``text`` with the study folder (any spelling) replaced by the study id."""
    for form in sorted({str(study.path), os.path.abspath(study.path), str(Path(study.path).resolve())}, key=len)[::-1]:
        text = text.replace(form, study.study_id)
    return text


def _record_failure(out: Path, study_id: str, error: str, fingerprint: str, retry: bool) -> None:
    """Write ``reports/<id>.failed.json`` and remove a stale report beside it."""
    with contextlib.suppress(FileNotFoundError):
        _report_path(out, study_id).unlink()  # never leave a stale result beside a failure
    record = {"study_id": study_id, "error": one_line(error), "fingerprint": fingerprint, "retry": retry}
    atomic_write_text(_report_path(out, study_id, ".failed.json"), json.dumps(record, indent=2) + "\n")


# ----------------------------------------------------------------------------- progress


class _Progress:
    """tqdm bar with ETA on a terminal, one plain line per study otherwise, nothing when disabled."""

    def __init__(self, total: int, enabled: bool, stream: Any = None) -> None:
        self.total, self.done, self.enabled = total, 0, enabled
        self.stream = stream if stream is not None else sys.stderr
        self.t0 = time.perf_counter()
        self.bar = None
        if enabled and hasattr(self.stream, "isatty") and self.stream.isatty():
            from tqdm import tqdm

            tqdm.monitor_interval = 0  # no monitor thread: the local pool forks workers
            self.bar = tqdm(total=total, unit="study", file=self.stream, dynamic_ncols=True)

    def update(self, row: dict[str, Any]) -> None:
        self.done += 1
        if not self.enabled:
            return
        state = "resumed" if row.get("resumed") else row["status"]
        if self.bar is not None:
            self.bar.set_postfix_str(f"{row['study_id']} {state}", refresh=False)
            self.bar.update(1)
            return
        elapsed = time.perf_counter() - self.t0
        eta = elapsed / self.done * (self.total - self.done)
        msg = f"netlm batch: {self.done}/{self.total} {row['study_id']} {state}"
        if row["status"] == "failed":
            msg += f": {row['error']}"
        self.stream.write(f"{msg} (elapsed {elapsed:.0f} s, ETA {eta:.0f} s)\n")
        self.stream.flush()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


# ----------------------------------------------------------------------------- cohort


_STARTED: Any = None


#: Modules every analysis imports: loaded by the parent before a fork pool starts, so that the k
#: workers inherit them instead of each importing them again (``test_pool_preload_covers_...``
#: checks that a NIfTI and a DICOM analysis import nothing more of the package or its libraries).
_PRELOAD = (
    "numpy",
    "pydicom",
    "nibabel",
    "cc3d",
    "isal.isal_zlib",
    "netlm_imaging.api",
    "netlm_imaging.creator",
    "netlm_imaging.stages.load",
    "netlm_imaging.stages.measure",
    "netlm_imaging.stages.classify",
    "netlm_imaging.stages.report",
    "netlm_imaging.stages.report_mr",
    "netlm_imaging.io.loader",
    "netlm_imaging.io.study",
    "netlm_imaging.io.discover",
    "netlm_imaging.io.nnunet",
    "netlm_imaging.io.nifti",
    "netlm_imaging.io._gzip",
    "netlm_imaging.io.dicom_series",
    "netlm_imaging.io.dicom_seg",
    "netlm_imaging.io.pet",
    "netlm_imaging.measure.burden",
    "netlm_imaging.measure.grid",
    "netlm_imaging.measure.pet",
    "netlm_imaging.measure.remnant",
    "netlm_imaging.measure.summary",
    "netlm_imaging.classify.surgical",
    "netlm_imaging.report.outputs",
    "netlm_imaging.report.console",
    "netlm_imaging.report.dicom_outputs",
    "netlm_imaging.report.paths",
)


def _preload() -> None:
    """Import :data:`_PRELOAD` and freeze what is loaded, before the fork pool starts.

    ``gc.freeze`` moves every object the parent holds into the collector's
    permanent generation, so a worker's garbage collections never walk (and
    so never copy, page by page) the objects it inherited.
    """
    import gc
    import importlib

    for name in _PRELOAD:
        with contextlib.suppress(ImportError):
            importlib.import_module(name)
    gc.freeze()


def _input_bytes(path: Path) -> int:
    """Bytes of the files of a study folder (recursively; hidden entries skipped), or of a study file."""
    try:
        if not path.is_dir():
            return path.stat().st_size
        total, folders = 0, [str(path)]
        while folders:
            with os.scandir(folders.pop()) as entries:
                for e in entries:
                    if e.name.startswith("."):
                        continue
                    if e.is_dir(follow_symlinks=True):
                        folders.append(e.path)
                    elif e.is_file(follow_symlinks=True):
                        total += e.stat(follow_symlinks=True).st_size
        return total
    except OSError:  # a missing study fails in its worker, with its own message
        return 0


def _largest_first(studies: Sequence[Study]) -> list[Study]:
    """The studies by the bytes of their input files, largest first (the given order among equals).

    A pool that starts the longest studies first ends on the shortest ones, so
    its workers finish close together instead of one running a long study
    while the others idle (longest-processing-time-first scheduling; the bytes
    stand in for the time). The rows do not depend on the order.
    """
    size = {s.study_id: _input_bytes(Path(s.path)) for s in studies}
    return sorted(studies, key=lambda s: -size[s.study_id])


def _pool_init(started: Any, jobs: int = 1) -> None:
    """Worker initializer: keep the queue on which each task announces (study id, pid); share the cores.

    The ``jobs`` processes already use the cores, so each measures its lesions
    with at most ``cores // jobs`` threads (one on a 2-core machine with ``-j 2``), as
    many for the memory passes and the DICOM pixel read of one analysis (:mod:`netlm_imaging.threads`),
    and its BLAS library (numpy's OpenBLAS) gets as many threads: OpenBLAS
    starts one thread per core, and after each threaded call they spin for a
    while waiting for more work, on the cores the other workers are using
    (about 8 % of a worker's CPU time on the benchmark cohort).
    """
    global _STARTED
    _STARTED = started
    from ..io._gzip import keep_buffers

    _share_cores(jobs)
    keep_buffers()  # a worker reads study after study: the next .nii.gz inflates into the last one's memory


def _share_cores(parallel: int) -> int:
    """Cap one analysis's threads at its share of the cores when ``parallel`` analyses run at once.

    The lesion threads, the reads and memory passes (:mod:`netlm_imaging.threads`) and BLAS each
    get at most ``cores // parallel`` (at least 1). Returns the share.
    """
    from threadpoolctl import threadpool_limits

    from ..measure.burden import lesion_threads, set_lesion_threads
    from ..measure.threads import analysis_threads, set_analysis_threads

    share = max(1, (os.cpu_count() or 1) // max(1, parallel))
    set_lesion_threads(max(1, min(lesion_threads(), share)))
    set_analysis_threads(max(1, min(analysis_threads(), share)))  # its reads and memory passes (threads.py)
    threadpool_limits(limits=share, user_api="blas")
    return share


def _dask_task(study: Study, out_dir: str, options: BatchOptions, threads_by_host: dict[str, int]) -> dict[str, Any]:
    """:func:`analyze_one` on a Dask worker, its threads capped at the worker's share of its host's cores.

    ``threads_by_host`` is the scheduler's count of worker threads per host (every worker process
    on a host runs that many analyses at once); a worker that joined later counts its own threads.
    """
    from distributed import get_worker

    worker = get_worker()
    host = str(worker.address).rsplit(":", 1)[0]
    own = int(getattr(getattr(worker, "state", None), "nthreads", 0) or getattr(worker, "nthreads", 1) or 1)
    _share_cores(max(own, threads_by_host.get(host, own)))
    return analyze_one(study, out_dir, options)


def _threads_by_host(client: Any) -> dict[str, int]:
    """Worker threads per host address (``tcp://10.0.0.5``) as the scheduler knows them now."""
    out: dict[str, int] = {}
    with contextlib.suppress(Exception):  # an older scheduler without this info: each worker counts itself
        for address, info in client.scheduler_info().get("workers", {}).items():
            host = str(address).rsplit(":", 1)[0]
            out[host] = out.get(host, 0) + int(info.get("nthreads", 1) or 1)
    return out


def _pool_task(study: Study, out_dir: str, options: BatchOptions) -> dict[str, Any]:
    """:func:`analyze_one` in a pool worker, announcing first which process runs which study."""
    if _STARTED is not None:
        _STARTED.put((study.study_id, os.getpid()))
    return analyze_one(study, out_dir, options)


def _drain(queue: Any) -> dict[str, int]:
    started: dict[str, int] = {}
    with contextlib.suppress(OSError, EOFError):
        while not queue.empty():
            sid, pid = queue.get()
            started[sid] = pid
    return started


def _pool_round(
    todo: Sequence[Study], out_dir: Path, options: BatchOptions, jobs: int, ctx: Any
) -> Iterable[tuple[Study, dict[str, Any] | BaseException | None, int | None]]:
    """One process pool over ``todo``: (study, outcome, None) per finished study, then, if the pool
    broke, (study, None, exit code of its worker or None if it was not running) per unfinished one."""
    from concurrent.futures import as_completed
    from concurrent.futures.process import BrokenProcessPool, ProcessPoolExecutor

    started_q = ctx.SimpleQueue()
    pool = ProcessPoolExecutor(max_workers=jobs, mp_context=ctx, initializer=_pool_init, initargs=(started_q, jobs))
    unfinished: list[Study] = []
    try:
        futures = {pool.submit(_pool_task, s, str(out_dir), options): s for s in todo}
        procs = dict(getattr(pool, "_processes", None) or {})  # pid -> Process, to tell which one died
        for fut in as_completed(futures):
            try:
                yield futures[fut], fut.result(), None
            except BrokenProcessPool:
                unfinished.append(futures[fut])
            except Exception as exc:  # e.g. an OutputError raised in the worker
                yield futures[fut], exc, None
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    if not unfinished:
        return
    started = _drain(started_q)
    procs.update(getattr(pool, "_processes", None) or {})
    for s in unfinished:
        pid = started.get(s.study_id)
        proc = procs.get(pid) if pid is not None else None
        yield s, None, (proc.exitcode if proc is not None else (0 if pid is not None else None))


def _in_process_results(
    studies: Sequence[Study], out_dir: Path, options: BatchOptions
) -> Iterable[tuple[Study, dict[str, Any] | BaseException]]:
    """(study, row) in cohort order, analysed in this process; the inflate buffers kept while it runs."""
    from ..io._gzip import buffers_kept

    with buffers_kept():
        for s in studies:
            yield s, analyze_one(s, out_dir, options)


def _executor_results(
    studies: Sequence[Study], out_dir: Path, options: BatchOptions, jobs: int
) -> Iterable[tuple[Study, dict[str, Any] | BaseException]]:
    """(study, row or exception) in completion order, from a process pool that survives dying workers.

    When a worker dies (SIGKILL from the out-of-memory killer, a crash in a C
    library), :class:`~concurrent.futures.ProcessPoolExecutor` fails every
    pending study. Here the pool is rebuilt and the unfinished studies are
    queued again. The study the dead process was running (the one whose
    worker ended by a signal other than the pool's own SIGTERM, or the only
    one running) earns a strike; when that cannot be told, the studies that
    were running are re-run one at a time, where it can. A study with
    :data:`MAX_WORKER_DEATHS` strikes is recorded as failed with
    :data:`WORKER_DIED`; every other study completes.
    """
    import collections
    import multiprocessing
    import signal

    ctx = multiprocessing.get_context(_START_METHOD)
    if _START_METHOD == "forkserver":
        ctx.set_forkserver_preload(["netlm_imaging.batch.runner", *_PRELOAD])
    elif _START_METHOD == "fork":
        _preload()
    queue: collections.deque[Study] = collections.deque(_largest_first(studies))
    solo: collections.deque[Study] = collections.deque()
    deaths: collections.Counter[str] = collections.Counter()
    rounds = 0
    while queue or solo:
        rounds += 1
        if rounds > 4 * len(studies) + 8:  # workers die for reasons no study explains: stop retrying
            for s in [*queue, *solo]:
                yield s, RuntimeError("worker processes keep dying; check the machine (memory, ulimits)")
            return
        if solo:
            todo, n = [solo.popleft()], 1
        else:
            todo, n = list(queue), min(jobs, len(queue))
            queue.clear()
        lost: list[tuple[Study, int | None]] = []
        for study, outcome, exitcode in _pool_round(todo, out_dir, options, n, ctx):
            if outcome is None:
                lost.append((study, exitcode))
            else:
                yield study, outcome
        if not lost:
            continue
        # every worker of the broken pool is gone: the temp files the pool's SIGTERM cut short are stale
        remove_stale_temp_files(out_dir)
        running = [(s, code) for s, code in lost if code is not None]
        culprits = [s for s, code in running if code not in (0, -signal.SIGTERM)]
        if not culprits and len(running) == 1:
            culprits = [running[0][0]]
        logger.warning(
            "a worker process died (%s); rebuilding the pool and re-queuing %d unfinished studies",
            ", ".join(f"study {s.study_id}" for s in culprits) or "no study identified",
            len(lost),
        )
        for s, code in lost:
            if s in culprits:
                deaths[s.study_id] += 1
                if deaths[s.study_id] >= MAX_WORKER_DEATHS:
                    yield s, _WorkerDied(deaths[s.study_id])
                else:
                    solo.append(s)  # its second try runs alone, so a second death is surely its own
            elif code is not None and not culprits:
                solo.append(s)  # was running when an unidentified worker died: retry alone
            else:
                queue.append(s)


class _WorkerDied(Exception):
    """The worker analysing a study died :data:`MAX_WORKER_DEATHS` times."""

    def __init__(self, n: int) -> None:
        super().__init__(WORKER_DIED.format(n=n))


def _dask_results(
    studies: Sequence[Study], out_dir: Path, options: BatchOptions, scheduler: Any, connect_timeout_s: float
) -> Iterable[tuple[Study, dict[str, Any] | BaseException]]:
    """(study, row or exception) in completion order, from a Dask distributed cluster."""
    import uuid

    from distributed import Client, as_completed

    own = not isinstance(scheduler, Client)
    try:
        client = Client(scheduler, set_as_default=False, timeout=connect_timeout_s) if own else scheduler
    except OSError as exc:
        raise InputError(
            f"cannot reach the Dask scheduler at {scheduler} ({exc}); check --scheduler ADDRESS "
            "(e.g. tcp://host:8786) and that the scheduler is running"
        ) from None
    try:
        with client.as_current():
            run_id = uuid.uuid4().hex[:8]
            keys = [f"netlm-analyze-{s.study_id}-{run_id}" for s in studies]
            hosts = _threads_by_host(client)
            futures = client.map(
                _dask_task, list(studies), out_dir=str(out_dir), options=options, threads_by_host=hosts, key=keys
            )
            by_key = {f.key: s for f, s in zip(futures, studies)}
            try:
                for fut in as_completed(futures):
                    try:
                        yield by_key[fut.key], fut.result()
                    except Exception as exc:  # KilledWorker, lost connection: recorded, retried on resume
                        if type(exc).__name__ == "KilledWorker":  # the scheduler's allowed-failures ran out
                            exc = _WorkerDied(_allowed_failures(client) + 1)
                        yield by_key[fut.key], exc
            except BaseException:
                client.cancel(futures)
                raise
    finally:
        if own:
            client.close()


def _allowed_failures(client: Any) -> int:
    """The scheduler's ``distributed.scheduler.allowed-failures`` (worker deaths a task survives)."""
    try:
        return int(client.run_on_scheduler(lambda dask_scheduler: dask_scheduler.allowed_failures))
    except Exception:
        import dask

        return int(dask.config.get("distributed.scheduler.allowed-failures", 3))


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
            replace(options or BatchOptions(), resume=resume),
            progress,
            progress_stream,
            on_row,
            connect_timeout_s,
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
) -> CohortResult:
    """The body of :func:`run_cohort`, run while holding the output folder's lock."""
    prepare_output_dir(out / "reports", "--out")
    rows: dict[str, dict[str, Any]] = {s.study_id: failure_row(s.study_id, "", "", _PENDING) for s in studies}
    csv_path = out / "cohort.csv"
    tables = _Tables()
    tables.write(out, rows.values())
    result = CohortResult(rows=[], csv_path=csv_path)
    bar = _Progress(len(studies), progress, progress_stream)

    results: Iterable[tuple[Study, dict[str, Any] | BaseException]]
    if scheduler is not None:
        results = _dask_results(studies, out, opts, scheduler, connect_timeout_s)
    elif jobs > 1 and len(studies) > 1:
        results = _executor_results(studies, out, opts, min(jobs, len(studies)))
    else:
        results = _in_process_results(studies, out, opts)

    try:
        for study, outcome in results:
            if isinstance(outcome, OutputError):
                raise outcome
            if isinstance(outcome, BaseException):
                if isinstance(outcome, KeyboardInterrupt):
                    raise outcome
                if isinstance(outcome, _WorkerDied):
                    msg = str(outcome)
                else:
                    why = f"{type(outcome).__name__}: {outcome}"
                    msg = f"the worker running this study failed ({why}); rerun with --resume"
                row = failure_row(study.study_id, msg, "")
                _record_failure(out, study.study_id, msg, "", retry=True)
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
    except OutputError as exc:
        close = getattr(results, "close", None)
        if close is not None:
            close()  # stops the pool / cancels the Dask futures
        done = sum(1 for r in rows.values() if r["status"] != _PENDING)
        with contextlib.suppress(OutputError):
            tables.write(out, rows.values())
        raise OutputError(
            f"{exc}. The batch stopped; {done} of {len(rows)} studies had finished and are recorded in "
            f"{out / 'reports'} (and {csv_path} where it could be written)",
            path=exc.path,
            disk_full=exc.disk_full,
        ) from None
    finally:
        bar.close()
    result.rows = sorted(rows.values(), key=lambda r: r["study_id"])
    result.failed = sum(1 for r in result.rows if r["status"] != "ok")
    return result

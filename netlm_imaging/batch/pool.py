"""The process-pool mode of ``netlm batch -j k``: workers that share the cores and survive dying.

:func:`executor_results` runs a task (:func:`netlm_imaging.batch.runner.analyze_one`) over the
studies in a :class:`concurrent.futures.ProcessPoolExecutor` of ``k`` forked workers, largest
studies first, and rebuilds the pool when a worker dies (the out-of-memory killer), so every
other study completes. Each worker caps its threads at its share of the cores
(:func:`share_cores`); the parent imports what every analysis imports before it forks
(:data:`PRELOAD`), so the workers inherit it.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from ..atomic import remove_stale_temp_files
from .cohort import Study
from .interrupt import DeferredSignals
from .options import BatchOptions

__all__ = [
    "DICOM_PRELOAD",
    "MAX_WORKER_DEATHS",
    "PRELOAD",
    "START_METHOD",
    "TIMED_OUT",
    "WORKER_DIED",
    "StudyTimedOut",
    "WorkerDied",
    "executor_results",
    "init_worker",
    "largest_first",
    "may_hold_dicom",
    "preload",
    "share_cores",
]

logger = logging.getLogger(__name__)

#: The per-study task a worker runs: (study, out_dir, options) -> cohort row.
Task = Callable[[Study, str, BatchOptions], dict[str, Any]]

#: A study whose worker process dies this many times is recorded as failed (the others go on).
MAX_WORKER_DEATHS = 2
#: The failure recorded for it (retried by ``--resume``).
WORKER_DIED = (
    "worker died: out of memory? (the process analysing this study was killed {n} times, "
    "as the out-of-memory killer does; lower -j or --max-voxels, then rerun with --resume)"
)
#: multiprocessing start method of the local pool (NETLM_START_METHOD overrides: fork, forkserver, spawn).
START_METHOD = os.environ.get("NETLM_START_METHOD", "fork")


_STARTED: Any = None


#: Modules every analysis imports: loaded by the parent before a fork pool starts, so that the k
#: workers inherit them instead of each importing them again (``test_pool_preload_covers_...``
#: checks that a NIfTI and a DICOM analysis import nothing more of the package or its libraries).
PRELOAD = (
    "numpy",
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
    "netlm_imaging.io.label_tables",
    "netlm_imaging.io.nifti",
    "netlm_imaging.io._gzip",
    "netlm_imaging.io.dicom_series",
    "netlm_imaging.io.dicom_series_groups",
    "netlm_imaging.io.dicom_series_enhanced",
    "netlm_imaging.io.dicom_series_header",
    "netlm_imaging.io.dicom_series_geometry",
    "netlm_imaging.io.dicom_series_plan",
    "netlm_imaging.io.dicom_series_pixels",
    "netlm_imaging.io.dicom_seg",
    "netlm_imaging.io.dicom_seg_header",
    "netlm_imaging.io.dicom_seg_geometry",
    "netlm_imaging.io.dicom_seg_decode",
    "netlm_imaging.io.dicom_seg_own_grid",
    "netlm_imaging.io.dicom_seg_layers",
    "netlm_imaging.io.pet",
    "netlm_imaging.io.pet_half_life",
    "netlm_imaging.io.suv_inputs",
    "netlm_imaging.measure.burden",
    "netlm_imaging.placement",
    "netlm_imaging.measure.pet",
    "netlm_imaging.measure.remnant",
    "netlm_imaging.measure.summary",
    "netlm_imaging.classify.surgical",
    "netlm_imaging.report.outputs",
    "netlm_imaging.report.console",
    "netlm_imaging.report.dicom_outputs",
    "netlm_imaging.report.paths",
    "netlm_imaging.report.ownership",
)


#: Imported by :func:`preload` only for a cohort that may hold DICOM files (a NIfTI/NRRD cohort never needs them).
DICOM_PRELOAD = ("pydicom",)
#: Files with these name endings are never DICOM (volumes and the sidecars a study folder may hold).
_NOT_DICOM = (
    *(".nii", ".nii.gz", ".nrrd", ".nhdr", ".mha", ".mhd", ".raw", ".raw.gz", ".img", ".hdr"),
    *(".json", ".toml", ".csv", ".tsv", ".txt", ".md", ".ctbl", ".label", ".xml", ".yaml", ".yml"),
    *(".png", ".jpg", ".jpeg", ".html", ".pdf", ".log"),
)


def preload(dicom: bool = True) -> None:
    """Import :data:`PRELOAD` (and :data:`DICOM_PRELOAD` when ``dicom``) and freeze what is loaded,
    before the fork pool starts.

    nibabel comes without pydicom (:mod:`netlm_imaging.io._nibabel`), so a cohort of NIfTI
    studies never loads the DICOM stack; a worker that meets a DICOM file after all imports it then.
    ``gc.freeze`` moves every object the parent holds into the collector's
    permanent generation, so a worker's garbage collections never walk (and
    so never copy, page by page) the objects it inherited.
    """
    import gc
    import importlib

    from ..io._nibabel import import_nibabel

    for name in (*PRELOAD, *(DICOM_PRELOAD if dicom else ())):
        with contextlib.suppress(ImportError):
            if name == "nibabel":
                import_nibabel()
            else:
                importlib.import_module(name)
    gc.freeze()


def _study_files(path: Path) -> Iterator[os.DirEntry[str]]:
    """The files of a study folder, recursively (hidden entries skipped). Raises OSError."""
    folders = [str(path)]
    while folders:
        with os.scandir(folders.pop()) as entries:
            for e in entries:
                if e.name.startswith("."):
                    continue
                if e.is_dir(follow_symlinks=True):
                    folders.append(e.path)
                elif e.is_file(follow_symlinks=True):
                    yield e


def may_hold_dicom(path: Path) -> bool:
    """Whether a study (folder or file) has a file that may be DICOM: any name not ending as a volume or
    sidecar file does (``.dcm``, no suffix, a UID as name ...); hidden entries are skipped."""
    try:
        if not path.is_dir():
            return not path.name.lower().endswith(_NOT_DICOM)
        return any(not e.name.lower().endswith(_NOT_DICOM) for e in _study_files(path))
    except OSError:  # unreadable: its worker says so; preload as for DICOM
        return True


def input_bytes(path: Path) -> int:
    """Bytes of the files of a study folder (recursively; hidden entries skipped), or of a study file."""
    try:
        if not path.is_dir():
            return path.stat().st_size
        return sum(e.stat(follow_symlinks=True).st_size for e in _study_files(path))
    except OSError:  # a missing study fails in its worker, with its own message
        return 0


def largest_first(studies: Sequence[Study]) -> list[Study]:
    """The studies by the bytes of their input files, largest first (the given order among equals).

    A pool that starts the longest studies first ends on the shortest ones, so
    its workers finish close together instead of one running a long study
    while the others idle (longest-processing-time-first scheduling; the bytes
    stand in for the time). The rows do not depend on the order.
    """
    size = {s.study_id: input_bytes(Path(s.path)) for s in studies}
    return sorted(studies, key=lambda s: -size[s.study_id])


def init_worker(started: Any, jobs: int = 1) -> None:
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
    from ..outdir import close_inherited_locks

    close_inherited_locks()
    _follow_parent()

    share_cores(jobs)
    keep_buffers()  # a worker reads study after study: the next .nii.gz inflates into the last one's memory


def _follow_parent() -> None:
    """A worker stops with its parent: Ctrl-C and SIGTERM are the parent's to handle, and it dies
    when the parent dies.

    The parent stops the workers itself when it is interrupted (SIGINT of the terminal's process
    group is ignored here; SIGTERM, inherited as the parent's clean-up handler, is reset to its
    default). When the parent is killed (``kill -9``, the out-of-memory killer), the kernel kills
    the worker too (Linux ``PR_SET_PDEATHSIG``; elsewhere a thread watches the parent PID): an
    orphaned worker would otherwise wait on the pool's pipe for ever.
    """
    import signal
    import threading
    import time

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for name in ("SIGTERM", "SIGHUP"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), signal.SIG_DFL)
    parent = os.getppid()
    with contextlib.suppress(Exception):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(1, int(signal.SIGKILL), 0, 0, 0) == 0:  # PR_SET_PDEATHSIG = 1
            if os.getppid() != parent:  # the parent died before the call
                os._exit(1)
            return

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, name="netlm-parent-watch", daemon=True).start()


def share_cores(parallel: int) -> int:
    """Cap one analysis's threads at its share of the cores when ``parallel`` analyses run at once.

    The lesion threads, the reads and memory passes (:mod:`netlm_imaging.threads`) and BLAS each
    get at most ``cores // parallel`` (at least 1). Returns the share.
    """
    from threadpoolctl import threadpool_limits

    from ..measure.burden import lesion_threads, set_lesion_threads
    from ..threads import analysis_threads, set_analysis_threads

    share = max(1, (os.cpu_count() or 1) // max(1, parallel))
    set_lesion_threads(max(1, min(lesion_threads(), share)))
    set_analysis_threads(max(1, min(analysis_threads(), share)))  # its reads and memory passes (threads.py)
    threadpool_limits(limits=share, user_api="blas")
    return share


def _pool_task(task: Task, study: Study, out_dir: str, options: BatchOptions) -> dict[str, Any]:
    """``task`` (:func:`~netlm_imaging.batch.runner.analyze_one`) in a pool worker, announcing first
    which process runs which study."""
    if _STARTED is not None:
        _STARTED.put((study.study_id, os.getpid()))
    return task(study, out_dir, options)


def _drain(queue: Any, started: dict[str, tuple[int, float]]) -> dict[str, tuple[int, float]]:
    """Add to ``started`` the (pid, time first seen here) of each study a worker announced."""
    import time

    now = time.monotonic()
    with contextlib.suppress(OSError, EOFError):
        while not queue.empty():
            sid, pid = queue.get()
            started[sid] = (pid, now)
    return started


class StudyTimedOut(Exception):
    """A study ran longer than ``batch --timeout`` and its worker was killed."""

    def __init__(self, seconds: float) -> None:
        super().__init__(TIMED_OUT.format(s=f"{seconds:g}"))


#: The failure recorded for a study stopped by ``--timeout`` (retried by ``--resume``).
TIMED_OUT = (
    "timed out: still running after {s} s (--timeout), so its worker was stopped; a read that hangs "
    "(an unreachable network folder, a FIFO or device file in the study) or a study too large for the "
    "limit; check the study's files or raise --timeout, then rerun with --resume"
)


def _pool_round(
    task: Task,
    todo: Sequence[Study],
    out_dir: Path,
    options: BatchOptions,
    jobs: int,
    ctx: Any,
    timeout_s: float | None = None,
    signals: DeferredSignals | None = None,
) -> Generator[tuple[Study, dict[str, Any] | BaseException | None, int | None], None, None]:
    """One process pool over ``todo``: (study, outcome, None) per finished study, then, if the pool
    broke, (study, None, exit code of its worker or None if it was not running) per unfinished one.

    With ``timeout_s``, the worker of a study running longer is killed (SIGKILL: a read blocked in the
    kernel ignores everything else); the study's outcome is a :class:`StudyTimedOut`, and the pool,
    broken by the kill, hands back the other unfinished studies as above.
    """
    import signal
    import time
    from concurrent.futures import FIRST_COMPLETED, wait
    from concurrent.futures.process import BrokenProcessPool, ProcessPoolExecutor

    started_q = ctx.SimpleQueue()
    pool = ProcessPoolExecutor(max_workers=jobs, mp_context=ctx, initializer=init_worker, initargs=(started_q, jobs))
    unfinished: list[Study] = []
    started: dict[str, tuple[int, float]] = {}
    timed_out: set[str] = set()
    poll = 0.25 if timeout_s is None else min(0.25, max(0.05, timeout_s / 4))
    try:
        futures = {pool.submit(_pool_task, task, s, str(out_dir), options): s for s in todo}
        procs = dict(getattr(pool, "_processes", None) or {})  # pid -> Process, to tell which one died
        pending = set(futures)
        while pending:
            if signals is not None:
                signals.check()  # Ctrl-C / SIGTERM raise here, never inside the executor's locks
            done, pending = wait(pending, timeout=poll, return_when=FIRST_COMPLETED)
            for fut in done:
                study = futures[fut]
                if study.study_id in timed_out:
                    yield study, StudyTimedOut(float(timeout_s or 0)), None
                    continue
                try:
                    yield study, fut.result(), None
                except BrokenProcessPool:
                    unfinished.append(study)
                except Exception as exc:  # e.g. an OutputError raised in the worker
                    yield study, exc, None
            if timeout_s is None or not pending:
                continue
            now = time.monotonic()
            for fut in pending:
                sid = futures[fut].study_id
                pid, t0 = _drain(started_q, started).get(sid, (0, now))
                if pid and sid not in timed_out and now - t0 > timeout_s:
                    logger.warning(
                        "study %s: still running after %g s (--timeout); stopping its worker", sid, timeout_s
                    )
                    timed_out.add(sid)
                    with contextlib.suppress(OSError):
                        os.kill(pid, signal.SIGKILL)
    except BaseException:  # interrupted (Ctrl-C, SIGTERM) or the output failed: stop every worker now
        _stop_workers(pool)
        raise
    pool.shutdown(wait=True)
    if not unfinished:
        return
    _drain(started_q, started)
    procs.update(getattr(pool, "_processes", None) or {})
    for s in unfinished:
        run = started.get(s.study_id)
        proc = procs.get(run[0]) if run is not None else None
        yield s, None, (proc.exitcode if proc is not None else (0 if run is not None else None))


def _stop_workers(pool: Any) -> None:
    """Kill the pool's workers and wait for them, so no study is still writing when the run stops.

    ``shutdown(cancel_futures=True)`` only cancels studies not yet started: the running ones
    would go on writing reports the stopped run never records. Their temporary files are
    removed by the caller, which holds the output folder.
    """
    import time

    procs = list((getattr(pool, "_processes", None) or {}).values())
    for proc in procs:
        with contextlib.suppress(Exception):
            proc.kill()
    deadline = time.monotonic() + 10  # for all of them: -j 8 workers stuck in the kernel wait 10 s, not 80
    for proc in procs:
        with contextlib.suppress(Exception):
            proc.join(max(0.0, deadline - time.monotonic()))
    pool.shutdown(wait=False, cancel_futures=True)


def executor_results(
    task: Task,
    studies: Sequence[Study],
    out_dir: Path,
    options: BatchOptions,
    jobs: int,
    timeout_s: float | None = None,
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

    With ``timeout_s`` (``batch --timeout``), a study running longer has its worker killed and is
    recorded as :class:`StudyTimedOut`; the studies the broken pool did not finish are queued again
    without a strike. Stop signals are deferred to the wait loop (:class:`DeferredSignals`).
    """
    import multiprocessing

    with DeferredSignals() as signals:  # also over the preload: an import cut by Ctrl-C is left half done
        ctx = multiprocessing.get_context(START_METHOD)
        if START_METHOD == "forkserver":
            ctx.set_forkserver_preload(["netlm_imaging.batch.runner", *PRELOAD, *DICOM_PRELOAD])
        elif START_METHOD == "fork":
            preload(dicom=any(may_hold_dicom(Path(s.path)) for s in studies))
        yield from _rounds(task, studies, out_dir, options, jobs, timeout_s, ctx, signals)


def _rounds(
    task: Task,
    studies: Sequence[Study],
    out_dir: Path,
    options: BatchOptions,
    jobs: int,
    timeout_s: float | None,
    ctx: Any,
    signals: DeferredSignals,
) -> Iterator[tuple[Study, dict[str, Any] | BaseException]]:
    """The rounds of :func:`executor_results`: one pool each, until no study is left to run."""
    import collections
    import signal

    queue: collections.deque[Study] = collections.deque(largest_first(studies))
    solo: collections.deque[Study] = collections.deque()
    deaths: collections.Counter[str] = collections.Counter()
    rounds = 0
    while queue or solo:
        signals.check()
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
        stopped = False  # a worker was killed here for --timeout: the broken pool is no study's fault
        pool_round = _pool_round(task, todo, out_dir, options, n, ctx, timeout_s, signals)
        try:
            for study, outcome, exitcode in pool_round:
                if outcome is None:
                    lost.append((study, exitcode))
                else:
                    stopped = stopped or isinstance(outcome, StudyTimedOut)
                    yield study, outcome
        finally:
            pool_round.close()  # when this generator is closed (interrupt), the pool's workers are stopped
        if stopped or lost:
            # every worker of the broken pool is gone: the temp files the pool's SIGTERM cut short are stale
            remove_stale_temp_files(out_dir)
        if stopped:
            queue.extend(s for s, _ in lost)
            continue
        if not lost:
            continue
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
                    yield s, WorkerDied(deaths[s.study_id])
                else:
                    solo.append(s)  # its second try runs alone, so a second death is surely its own
            elif code is not None and not culprits:
                solo.append(s)  # was running when an unidentified worker died: retry alone
            else:
                queue.append(s)


class WorkerDied(Exception):
    """The worker analysing a study died :data:`MAX_WORKER_DEATHS` times."""

    def __init__(self, n: int) -> None:
        super().__init__(WORKER_DIED.format(n=n))

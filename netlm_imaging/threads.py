"""The threads of one analysis: how many it may use, and the two ways it uses a second one.

An analysis runs on the caller's thread and, where the work releases the GIL, on one more:
``min(2, cores)`` by default (:func:`analysis_threads`). A ``netlm batch -j k`` worker shares the
cores with ``k - 1`` others and caps it at ``cores // k`` (:func:`set_analysis_threads`, called by
the pool's worker initialiser and by each Dask task, the way they cap BLAS), so k workers never
start more threads than cores.

* :class:`PendingTasks` shares independent tasks between background threads and the caller (the
  DICOM series' pixel read, :mod:`netlm_imaging.io.dicom_series_pixels`: ``readinto`` from the page cache,
  the fresh buffer's page faults and the in-place rescale release the GIL).
* :func:`in_background` runs one memory-bound pass beside the caller's GIL-bound work (the liver's
  box copy and masked sums, :mod:`netlm_imaging.measure.burden`).

Which thread runs a piece never changes a number: each threaded step writes its own part of a
result, and the one-thread path runs the same code.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

__all__ = [
    "MAX_ANALYSIS_THREADS",
    "Pending",
    "PendingTasks",
    "analysis_threads",
    "in_background",
    "set_analysis_threads",
]

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


class PendingTasks:
    """Tasks run by ``helpers`` background threads, then by the caller too in :meth:`finish`.

    The threads take the tasks in order from a shared counter, so the caller can
    do other work while they run, and joins in on what is
    left when it calls :meth:`finish`. After a task raises, no new task starts.

    Parameters
    ----------
    tasks : sequence of callable
        Independent tasks (each writes its own part of the result).
    helpers : int
        Background threads to start (0: everything runs in :meth:`finish`).
    """

    def __init__(self, tasks: Sequence[Callable[[], object]], helpers: int) -> None:
        self._tasks = list(tasks)
        self._next = 0
        self._lock = threading.Lock()
        self._errors: dict[int, BaseException] = {}
        self._threads = [
            threading.Thread(target=self._work, name=f"netlm-read-{n}", daemon=True)
            for n in range(min(helpers, len(self._tasks)))
        ]
        for t in self._threads:
            t.start()

    def _work(self) -> None:
        while True:
            with self._lock:
                i = self._next
                if i >= len(self._tasks) or self._errors:
                    return
                self._next = i + 1
            try:
                self._tasks[i]()
            except BaseException as exc:  # handed to the caller by finish()
                with self._lock:
                    self._errors[i] = exc

    def finish(self) -> BaseException | None:
        """Run what is left, wait for the threads; the error of the first failed task (by order), or None."""
        self._work()
        for t in self._threads:
            t.join()
        return self._errors[min(self._errors)] if self._errors else None


_T = TypeVar("_T")


class Pending(Generic[_T]):
    """The result of :func:`in_background`: :meth:`result` waits for it (and raises what the pass raised)."""

    def __init__(self, fn: Callable[[], _T], threaded: bool) -> None:
        self._fn = fn
        self._value: _T | None = None
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None
        if threaded:
            self._thread = threading.Thread(target=self._run, name="netlm-analysis", daemon=True)
            self._thread.start()
        else:
            self._run()

    def _run(self) -> None:
        try:
            self._value = self._fn()
        except BaseException as exc:  # re-raised on the caller's thread by result()
            self._error = exc

    def result(self) -> _T:
        """The pass's return value, once it is done."""
        if self._thread is not None:
            self._thread.join()
        if self._error is not None:
            raise self._error
        return self._value  # type: ignore[return-value]


def in_background(fn: Callable[[], _T]) -> Pending[_T]:
    """Run ``fn`` on a second thread when :func:`analysis_threads` allows it, else now on this one.

    ``fn`` must only read arrays the caller does not write meanwhile, and write only arrays the
    caller does not touch before :meth:`Pending.result`.
    """
    return Pending(fn, analysis_threads() > 1)

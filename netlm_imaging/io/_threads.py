"""The threads one analysis may use to read its files, and a small work-sharing runner for them.

Reading a DICOM series is memory work the kernel and numpy do without the GIL
(``readinto`` from the page cache, the page faults of the fresh buffer, the
in-place rescale and its range check), so a second core halves it. Each task
writes its own slices of one buffer: which thread runs a task never changes a
byte of the result.

A ``batch -j k`` worker already shares the cores with ``k - 1`` others, so it
caps this at its share (:func:`set_read_threads`, called by the pool's worker
initialiser, the way it caps BLAS).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence

__all__ = ["PendingTasks", "available_cores", "read_threads", "set_read_threads"]

#: At most this many threads read one study (the main thread included).
MAX_READ_THREADS = 2
_READ_THREADS: int | None = None


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity, else ``os.cpu_count()``)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not Linux
        return max(1, os.cpu_count() or 1)


def set_read_threads(n: int | None) -> None:
    """Set how many threads read one study's files (``None``: the default, see :func:`read_threads`)."""
    global _READ_THREADS
    _READ_THREADS = None if n is None else max(1, int(n))


def read_threads() -> int:
    """Threads that read one study: as set, else ``min(MAX_READ_THREADS, available cores)``."""
    if _READ_THREADS is not None:
        return _READ_THREADS
    return min(MAX_READ_THREADS, available_cores())


class PendingTasks:
    """Tasks run by ``helpers`` background threads, then by the caller too in :meth:`finish`.

    The threads take the tasks in order from a shared counter, so the caller can
    do other work (the segmentation read) while they run, and joins in on what is
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

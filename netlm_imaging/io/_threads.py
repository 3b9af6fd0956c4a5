"""The threads one analysis may use to read its files, and a small work-sharing runner for them.

Reading a DICOM series is memory work the kernel and numpy do without the GIL
(``readinto`` from the page cache, the page faults of the fresh buffer, the
in-place rescale and its range check), so a second core halves it. Each task
writes its own slices of one buffer: which thread runs a task never changes a
byte of the result.

How many threads read one study is :func:`netlm_imaging.threads.analysis_threads` (``min(2, cores)``;
a ``batch -j k`` worker caps it at its share of the cores, the way it caps BLAS).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

__all__ = ["PendingTasks"]


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

"""A second thread for the memory-bound work of one analysis, capped at the process's share of the cores.

The measurement of one study is mostly many small numpy calls on lesion boxes, which hold the
GIL; a few steps are large array passes that release it (a box copy into a fresh mask, a masked
sum over the liver's box). :func:`in_background` runs such a pass on a second thread while the
caller goes on with the GIL-bound work, when :func:`~netlm_imaging.threads.analysis_threads` allows
two threads (the default on a machine with two cores or more; a ``netlm batch -j k`` worker caps it
at ``cores // k``, see :mod:`netlm_imaging.threads`).
The result is the same value on either path: the pass is the same code, only where it runs differs.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

from ..threads import analysis_threads, set_analysis_threads

__all__ = ["Pending", "analysis_threads", "in_background", "set_analysis_threads"]

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

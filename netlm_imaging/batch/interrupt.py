"""Stopping a run cleanly on Ctrl-C (SIGINT) or ``kill`` (SIGTERM, SIGHUP): one exception for both.

Python turns SIGINT into :class:`KeyboardInterrupt`, but SIGTERM (what ``kill``, job schedulers and
``systemctl stop`` send) and SIGHUP (a closed terminal) end the process at once: no ``finally``
block runs, temporary files stay, and the pool workers of ``batch -j N`` outlive their parent.
:func:`signals_interrupt` makes those signals raise :class:`Interrupted` (a ``KeyboardInterrupt``)
in the main thread instead, so the same clean-up runs as for Ctrl-C; the exit code is
``128 + signal number`` (130 for SIGINT, 143 for SIGTERM, 129 for SIGHUP), the shell convention.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from typing import Any, NoReturn

from ..errors import InputError

__all__ = [
    "STOP_SIGNALS",
    "DeferredSignals",
    "Interrupted",
    "TimeLimitExceeded",
    "exit_stopped",
    "ignore_stop_signals",
    "interrupt_line",
    "run_until_stopped",
    "signals_interrupt",
    "signum_of",
    "time_limit",
]

#: Signals that stop a run like Ctrl-C does (SIGINT already raises KeyboardInterrupt).
STOP_SIGNALS = tuple(getattr(signal, n) for n in ("SIGTERM", "SIGHUP") if hasattr(signal, n))


class Interrupted(KeyboardInterrupt):
    """The run was stopped by a signal.

    Parameters
    ----------
    signum : int
        The signal (``signal.SIGINT`` for Ctrl-C).
    summary : str
        What was kept, for the one line the command prints (may be empty).

    Attributes
    ----------
    exit_code : int
        ``128 + signum``.
    """

    def __init__(self, signum: int = signal.SIGINT, summary: str = "") -> None:
        super().__init__(summary or _name(signum))
        self.signum = int(signum)
        self.summary = summary

    @property
    def exit_code(self) -> int:
        """``128 + signum`` (130 for SIGINT, 143 for SIGTERM)."""
        return 128 + self.signum

    @property
    def signal_name(self) -> str:
        """``SIGINT``, ``SIGTERM`` ..."""
        return _name(self.signum)

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.signum, self.summary))


def _name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def signum_of(exc: BaseException) -> int:
    """The signal behind a ``KeyboardInterrupt`` (SIGINT unless it is an :class:`Interrupted`)."""
    return exc.signum if isinstance(exc, Interrupted) else int(signal.SIGINT)


def _raise(signum: int, frame: Any) -> None:
    raise Interrupted(signum)


@contextlib.contextmanager
def signals_interrupt() -> Iterator[None]:
    """While the block runs, SIGTERM and SIGHUP raise :class:`Interrupted` in the main thread.

    Outside the main thread (where Python cannot set handlers) this does nothing. The previous
    handlers are restored on leaving.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.signal(s, _raise) for s in STOP_SIGNALS}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h if h is not None else signal.SIG_DFL)


def interrupt_line(exc: BaseException) -> tuple[str, int]:
    """The one stderr line and the exit code of a run stopped by ``exc`` (a ``KeyboardInterrupt``).

    Examples
    --------
    >>> interrupt_line(Interrupted(15, "3 of 9 studies had finished"))
    ('netlm: interrupted by SIGTERM: 3 of 9 studies had finished', 143)
    >>> interrupt_line(KeyboardInterrupt())
    ('netlm: interrupted by SIGINT', 130)
    """
    stop = exc if isinstance(exc, Interrupted) else Interrupted(signum_of(exc))
    line = f"netlm: interrupted by {stop.signal_name}" + (f": {stop.summary}" if stop.summary else "")
    return line, stop.exit_code


class DeferredSignals:
    """While active, SIGINT, SIGTERM and SIGHUP only note themselves; :meth:`check` raises
    :class:`Interrupted` at a point the caller chose.

    The parent of a process pool must not be interrupted at an arbitrary point: a
    ``KeyboardInterrupt`` raised while it holds one of the executor's internal locks (inside
    ``concurrent.futures.wait`` or ``submit``) leaves the lock held, and the executor's manager
    thread, which the interpreter joins at exit, then waits for ever. The pool's wait loop polls
    :meth:`check` instead. Leaving the block normally with a signal noted but not yet raised
    raises it then. Outside the main thread this does nothing.
    """

    def __init__(self) -> None:
        self.signum = 0
        self._previous: dict[int, Any] = {}

    def _note(self, signum: int, frame: Any) -> None:
        self.signum = self.signum or signum

    def check(self) -> None:
        """Raise :class:`Interrupted` if a stop signal came."""
        if self.signum:
            raise Interrupted(self.signum)

    def __enter__(self) -> DeferredSignals:
        if threading.current_thread() is threading.main_thread():
            self._previous = {s: signal.signal(s, self._note) for s in (signal.SIGINT, *STOP_SIGNALS)}
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        for s, h in self._previous.items():
            signal.signal(s, h if h is not None else signal.SIG_DFL)
        self._previous = {}
        if exc_type is None:
            self.check()


def ignore_stop_signals() -> None:
    """After a run was interrupted: ignore further stop signals while the process exits, so a second
    Ctrl-C cannot cut its clean-up short (and the exit code stays 128 + the first signal)."""
    if threading.current_thread() is threading.main_thread():
        for s in (signal.SIGINT, *STOP_SIGNALS):
            signal.signal(s, signal.SIG_IGN)


def run_until_stopped(body: Callable[[], int]) -> tuple[int, str | None]:
    """Run a command's ``body`` with SIGTERM and SIGHUP raising like Ctrl-C.

    Returns
    -------
    tuple of (int, str or None)
        ``body``'s exit code and None; or, when a stop signal ended it, ``128 + signal`` and the one
        line for stderr (:func:`interrupt_line`), further stop signals then being ignored
        (:func:`ignore_stop_signals`) while the process exits.
    """
    try:
        with signals_interrupt():
            return body(), None
    except KeyboardInterrupt as exc:
        ignore_stop_signals()  # a second Ctrl-C must not cut the exit short
        line, code = interrupt_line(exc)
        return code, line


def exit_stopped(code: int) -> NoReturn:
    """End the process of a stopped command at once with ``code`` (its clean-up is done).

    A Ctrl-C that came while a module was being imported leaves CPython marked as "interrupted"
    even after the command handled it, and the interpreter then ends by killing itself with SIGINT
    (exit status -2, not 130); its exit hooks would also join the process pool's manager thread.
    Standard streams and logging are flushed first.
    """
    import logging
    import os
    import sys

    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            if stream is not None:
                stream.flush()
    with contextlib.suppress(Exception):
        logging.shutdown()
    os._exit(code)


#: A longer ``--timeout`` (``inf``) is no limit: the interval timer takes at most a ``time_t`` of seconds.
_LONGEST_TIMER_S = 10.0**8


class _TimeUp(BaseException):
    """Raised by the timer of :func:`time_limit`."""


class TimeLimitExceeded(InputError):
    """``analyze --timeout`` ran out (exit 3). A thread may still hang in a read: end with :func:`exit_stopped`."""


@contextlib.contextmanager
def time_limit(seconds: float | None, message: str) -> Iterator[None]:
    """Raise :class:`~netlm_imaging.errors.InputError` with ``message`` when the block is still running
    after ``seconds`` (``analyze --timeout``).

    A read blocked in the kernel (a FIFO, an unreachable network folder) is cut by the timer's
    SIGALRM. ``None``, infinity or more than :data:`_LONGEST_TIMER_S` (beyond what the timer takes),
    or outside the main thread, or without SIGALRM, sets no limit.
    """
    if (
        seconds is None
        or not seconds <= _LONGEST_TIMER_S
        or threading.current_thread() is not threading.main_thread()
        or not hasattr(signal, "SIGALRM")
    ):
        yield
        return

    def _expired(signum: int, frame: Any) -> None:
        raise _TimeUp  # a BaseException: the readers' own error handling cannot turn it into another message

    previous = signal.signal(signal.SIGALRM, _expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    except _TimeUp:
        raise TimeLimitExceeded(message) from None
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous if previous is not None else signal.SIG_DFL)

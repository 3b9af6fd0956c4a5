"""An output folder owned by one run: created or refused up front, locked, cleaned of stale temp files.

:func:`prepare_output_dir` turns every environment problem (a file named as
the folder, no permission, a read-only disk) into one
:class:`~netlm_imaging.errors.OutputError` before any work starts.
:class:`OutputLock` makes a second run into the same folder fail at once with
the holder's PID and start time (exit 3), instead of two runs overwriting each
other's ``cohort.csv``. The lock is an advisory ``flock`` on ``<dir>/.netlm.lock``:
the kernel releases it when the holder dies, so the lock of a killed run
(``kill -9``, OOM killer) is stale and simply taken over. The file's text (PID,
start time, host) is only there to name the holder in the message.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from pathlib import Path
from types import TracebackType
from typing import Any

from .atomic import output_error, remove_stale_temp_files
from .errors import OutputError


def _hostname() -> str:
    """``socket.gethostname()``: the uname node name on POSIX (no ``socket`` import, ~3 ms of a fresh analysis)."""
    uname = getattr(os, "uname", None)
    if uname is not None:
        return str(uname().nodename)
    import socket

    return socket.gethostname()


__all__ = ["LOCK_NAME", "OutputLock", "close_inherited_locks", "prepare_output_dir"]

logger = logging.getLogger(__name__)

#: Name of the lock file inside a locked output folder.
LOCK_NAME = ".netlm.lock"

#: Descriptors of the locks this process holds (a forked worker closes its copies: :func:`close_inherited_locks`).
_HELD: set[int] = set()


def close_inherited_locks() -> None:
    """In a forked child: close the copies of the parent's lock descriptors.

    ``flock`` locks belong to the open file, which a fork shares: a pool worker that kept its copy
    would hold the output folder's lock after its parent died, and every later run (``--resume``)
    would be refused as "in use" by a PID that no longer runs.
    """
    for fd in list(_HELD):
        with contextlib.suppress(OSError):
            os.close(fd)
    _HELD.clear()


def prepare_output_dir(path: str | os.PathLike[str], option: str = "--out") -> Path:
    """Create ``path`` (and parents) and check it is a folder this process can write.

    Parameters
    ----------
    path : path-like
        Output folder.
    option : str
        The option that named it, for the message.

    Returns
    -------
    pathlib.Path
        The folder.

    Raises
    ------
    OutputError
        ``path`` is a file, cannot be created, or is not writable.
    """
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise OutputError(f"{option} {p}: is an existing file, not a folder; give {option} a folder path", path=str(p))
    try:
        p.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise output_error(p, exc, f"{option}: cannot create the folder") from None
    probe = p / f".netlm-write-test.{os.getpid()}.tmp"
    try:
        with open(probe, "wb") as fh:
            fh.write(b"x")
    except OSError as exc:
        raise output_error(p, exc, f"{option}: cannot write in the folder") from None
    finally:
        with contextlib.suppress(OSError):
            probe.unlink()
    return p


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except (OverflowError, ValueError):
        return False
    return True


class OutputLock:
    """Exclusive lock on an output folder for the life of one run (a context manager).

    Parameters
    ----------
    folder : path-like
        The output folder (must exist; see :func:`prepare_output_dir`).
    command : str
        What holds it (shown to a second run).
    clean : bool
        On acquiring, delete stale temporary files a killed writer left
        (:func:`netlm_imaging.atomic.remove_stale_temp_files`).

    Raises
    ------
    OutputError
        On ``__enter__``, when another live process holds the folder.
    """

    def __init__(self, folder: str | os.PathLike[str], command: str = "netlm", clean: bool = True) -> None:
        self.folder = Path(folder)
        self.path = self.folder / LOCK_NAME
        self.command = command
        self.clean = clean
        self.removed: list[Path] = []
        self._fd: int | None = None

    def _holder(self) -> dict[str, Any]:
        with contextlib.suppress(OSError, ValueError):
            data = json.loads(self.path.read_text(encoding="utf-8") or "{}")
            if isinstance(data, dict):
                return data
        return {}

    def _busy(self) -> OutputError:
        h = self._holder()
        who = f"PID {h.get('pid', '?')}, started {h.get('started', '?')}"
        if h.get("host") and h.get("host") != _hostname():
            who += f" on {h['host']}"
        return OutputError(
            f"{self.folder}: this output folder is in use by another {h.get('command', 'netlm')} run ({who}); "
            "wait for it to finish or choose another --out",
            path=str(self.folder),
        )

    def acquire(self) -> OutputLock:
        """Take the lock (see the class)."""
        import fcntl

        for _ in range(5):
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as exc:
                raise output_error(self.path, exc, "cannot create the lock file") from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise self._busy() from None
            except OSError:  # no flock on this file system (some NFS): fall back to the PID in the file
                h = self._holder()
                pid = h.get("pid")
                if (
                    isinstance(pid, int)
                    and pid != os.getpid()
                    and _pid_alive(pid)
                    and h.get("host") in (None, _hostname())
                ):
                    os.close(fd)
                    raise self._busy() from None
            # the file may have been unlinked by its previous holder between open and flock: retry on the new one
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if not same:
                os.close(fd)
                continue
            self._fd = fd
            _HELD.add(fd)
            break
        else:  # pragma: no cover - five lost races in a row
            raise self._busy()
        old = self._holder()
        if old.get("pid") not in (None, os.getpid()):
            logger.info("%s: took over the stale lock of PID %s (no longer running)", self.folder, old.get("pid"))
        text = json.dumps(
            {
                "pid": os.getpid(),
                "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "host": _hostname(),
                "command": self.command,
            }
        )
        try:
            # written, then cut to its length: a truncation to 0 followed by a write makes ext4 flush the
            # file to disk when it is closed (auto_da_alloc), 1-4 ms per run for a lock file
            data = text.encode("utf-8")
            os.pwrite(self._fd, data, 0)
            os.ftruncate(self._fd, len(data))
        except OSError as exc:
            self.release()
            raise output_error(self.path, exc) from None
        if self.clean:
            self.removed = [p for p in remove_stale_temp_files(self.folder) if p.name != LOCK_NAME]
            if self.removed:
                logger.info(
                    "%s: removed %d stale temporary file(s) of an interrupted run", self.folder, len(self.removed)
                )
        return self

    def release(self) -> None:
        """Drop the lock and remove the lock file."""
        if self._fd is None:
            return
        with contextlib.suppress(OSError):
            self.path.unlink()
        with contextlib.suppress(OSError):
            os.close(self._fd)
        _HELD.discard(self._fd)
        self._fd = None

    def __enter__(self) -> OutputLock:
        return self.acquire()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()

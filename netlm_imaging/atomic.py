"""Atomic file output: write to a temporary file in the same folder, fsync, rename.

A crash or kill at any point leaves either the previous file or the complete
new one, never a partial file. A killed writer can leave its hidden temporary
sibling (``.<name>.<random>.tmp``); :func:`remove_stale_temp_files` deletes
those once the output folder is locked (:mod:`netlm_imaging.outdir`).

Every operating-system refusal (permission denied, read-only file system,
a file where a folder is needed, a full disk) becomes an
:class:`~netlm_imaging.errors.OutputError` naming the path and the fix
(:func:`output_error`), never an internal error.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO

from .errors import OutputError

__all__ = [
    "ENVIRONMENT_ERRNOS",
    "TEMP_PATTERN",
    "atomic_open",
    "atomic_write_bytes",
    "atomic_write_text",
    "atomic_write_texts",
    "output_error",
    "remove_stale_temp_files",
]

#: Names of the temporary siblings :func:`atomic_open` writes (``.<final name>.<random>.tmp``) and the
#: staged files of :func:`netlm_imaging.report.outputs.write_outputs` (``.<final name>.<8 hex>.part``).
TEMP_PATTERN = re.compile(r"^\..+\.([A-Za-z0-9_]{6,}\.tmp|[0-9a-f]{8}\.part)$")

_DISK_FULL = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC), errno.EFBIG}
#: errno values that mean "the environment refused" (disk, permissions, file system), never a bug.
ENVIRONMENT_ERRNOS = frozenset(
    {
        *_DISK_FULL,
        errno.EROFS,
        errno.EACCES,
        errno.EPERM,
        errno.ENOTDIR,
        errno.EISDIR,
        errno.EEXIST,
        errno.EMFILE,
        errno.ENFILE,
        errno.ENOMEM,
        errno.EIO,
        errno.EPIPE,
        errno.ENAMETOOLONG,
        errno.ELOOP,
    }
)


def output_error(path: str | os.PathLike[str], exc: OSError, what: str = "cannot write") -> OutputError:
    """The one-line :class:`OutputError` for an operating-system refusal to write ``path``.

    Parameters
    ----------
    path : path-like
        The output file or folder.
    exc : OSError
        What the operating system said.
    what : str
        The operation (``"cannot write"``, ``"cannot create the folder"``).

    Returns
    -------
    OutputError
        Message ``<path>: <what> (<reason>); <fix>``; ``disk_full`` set for ENOSPC/EDQUOT/EFBIG.
    """
    p = str(path)
    code = exc.errno
    reason = exc.strerror or type(exc).__name__
    if code in _DISK_FULL:
        fix = "free space on that disk (or choose another output folder), then rerun (batch: with --resume)"
    elif code == errno.EROFS:
        fix = "the file system is read-only; choose an output folder on a writable disk"
    elif code in (errno.EACCES, errno.EPERM):
        fix = "you may not write there; choose a writable output folder or fix its permissions"
    elif code in (errno.ENOTDIR, errno.EEXIST, errno.EISDIR):
        fix = "a file stands where a folder is needed (or the reverse); choose another output path"
    elif code == errno.ENOENT:
        fix = "a parent folder is missing or was removed; choose an existing output folder"
    else:
        fix = "check that the output folder exists, is writable and has free space"
    return OutputError(f"{p}: {what} ({reason}); {fix}", path=p, disk_full=code in _DISK_FULL)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike[str], mode: str = "w", encoding: str | None = "utf-8") -> Iterator[IO]:
    """Open a temporary sibling of ``path`` for writing; rename it over ``path`` on success.

    Parameters
    ----------
    path : path-like
        Final file name.
    mode : {"w", "wb"}
        Text or binary.
    encoding : str or None
        Text encoding (ignored in binary mode).

    Raises
    ------
    OutputError
        The folder cannot be created or written, or the disk is full (the
        previous file, if any, is left as it was).
    """
    if mode not in ("w", "wb"):
        raise ValueError("atomic_open supports modes 'w' and 'wb'")
    final = Path(path)
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent)
    except OSError as exc:
        raise output_error(final.parent if not final.parent.is_dir() else final, exc) from None
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600 files; outputs get the usual permissions
        with os.fdopen(fd, mode, encoding=None if "b" in mode else encoding, newline=None) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, final)
        with contextlib.suppress(OSError):  # make the rename durable where the OS allows
            dfd = os.open(final.parent, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise output_error(final, exc) from None
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` to ``path`` atomically (UTF-8)."""
    with atomic_open(path, "w") as fh:
        fh.write(text)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_open(path, "wb") as fh:
        fh.write(data)


def atomic_write_texts(files: Mapping[str | os.PathLike[str], str]) -> None:
    """Write several text files (UTF-8) all or none: every temporary file is written and synced
    before the first is renamed into place.

    A full disk while writing the second file leaves every file as it was, so tables that must
    agree (``cohort.csv`` and ``lesions.csv``) never disagree after a failure. (A kill between the
    renames, a few microseconds, can still leave the first renamed and not the second.)

    Raises
    ------
    OutputError
        As :func:`atomic_open`; no file was changed.
    """
    with contextlib.ExitStack() as stack:
        handles = [(Path(path), text, stack.enter_context(_staged(Path(path)))) for path, text in files.items()]
        for final, text, (fh, _tmp) in handles:
            try:
                fh.write(text)
                fh.flush()
                os.fsync(fh.fileno())
                fh.close()
            except OSError as exc:
                raise output_error(final, exc) from None
        try:
            for final, _text, (_fh, tmp) in handles:
                os.replace(tmp, final)
        except OSError as exc:
            raise output_error(final, exc) from None


@contextlib.contextmanager
def _staged(final: Path) -> Iterator[tuple[IO, str]]:
    """A temporary sibling of ``final`` open for text writing; removed on leaving unless renamed."""
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent)
    except OSError as exc:
        raise output_error(final.parent if not final.parent.is_dir() else final, exc) from None
    os.chmod(tmp, 0o666 & ~_umask())
    fh = os.fdopen(fd, "w", encoding="utf-8")
    try:
        yield fh, tmp
    finally:
        with contextlib.suppress(OSError):
            fh.close()
        with contextlib.suppress(OSError):
            os.unlink(tmp)  # gone already when it was renamed into place


def remove_stale_temp_files(folder: str | os.PathLike[str], recursive: bool = True) -> list[Path]:
    """Delete the temporary siblings a killed :func:`atomic_open` left in ``folder``.

    Call it only while no other process writes there (e.g. holding the
    :class:`~netlm_imaging.outdir.OutputLock` of the folder).

    Parameters
    ----------
    folder : path-like
        Output folder.
    recursive : bool
        Also its sub-folders (``reports/``).

    Returns
    -------
    list of pathlib.Path
        The files removed.
    """
    root = Path(folder)
    if not root.is_dir():
        return []
    removed = []
    candidates = root.rglob(".*") if recursive else root.glob(".*")
    for p in sorted(candidates):
        if TEMP_PATTERN.match(p.name) and p.is_file() and not p.is_symlink():
            with contextlib.suppress(OSError):
                p.unlink()
                removed.append(p)
    return removed

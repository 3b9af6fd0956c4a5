"""Exception hierarchy of netlm-imaging.

Every error a user can cause with bad input is a :class:`NetlmError`. The CLI
turns it into one line on stderr and the exit code stored on the class, so no
traceback ever reaches the user. Messages name the file, what is wrong and how
to fix it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from types import MappingProxyType

__all__ = [
    "DicomError",
    "GeometryError",
    "InputError",
    "LabelError",
    "NetlmError",
    "OutputError",
    "ResourceLimitError",
    "UnsupportedError",
    "UsageError",
    "for_command",
    "only_accepted_flags",
    "readable",
]


def readable(text: str) -> str:
    """``text`` with the bytes of a file name that are not UTF-8 shown as U+FFFD.

    Python keeps such bytes (a folder unpacked from a zip made on Windows: ``pat\\xe9``) as lone
    surrogates, which no UTF-8 file (cohort.csv, report.json, the QA page) can hold; every text
    naming a user's path passes through here before it is written.

    Examples
    --------
    >>> readable("pat\\udce9_x") == "pat\\ufffd_x"
    True
    """
    if text.isascii():
        return text
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


class NetlmError(Exception):
    """Base class of all errors the tool reports to the user.

    Parameters
    ----------
    message : str
        One line: the file, what is wrong and the fix.
    """

    exit_code: int = 3
    #: Advice that depends on the running command, appended by :func:`for_command` (the library that
    #: raises does not know whether ``analyze``, ``batch``, ``pacs`` or ``listen`` runs): command -> text.
    advice_by_command: Mapping[str, str] = MappingProxyType({})

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).split()))


class InputError(NetlmError, ValueError):
    """Unreadable, corrupt, inconsistent or missing input (exit code 3)."""


class GeometryError(InputError):
    """Affine or grid that cannot be used (singular, non-orthogonal, mismatched)."""


class LabelError(InputError):
    """Label values or segment names that cannot be mapped to roles."""


class DicomError(InputError):
    """A DICOM object that is broken, incomplete or inconsistent."""


class UnsupportedError(InputError):
    """A valid input that this tool does not support (e.g. an encoding)."""


class ResourceLimitError(InputError):
    """Declared sizes above the configured memory limit (``--max-voxels``)."""


class OutputError(NetlmError):
    """The environment refuses an output: unwritable or read-only folder, a file where a folder
    is needed, a full disk, a closed stdout, an output folder locked by another run (exit code 3).

    Attributes
    ----------
    path : str
        The output path concerned.
    disk_full : bool
        True when the cause is a full disk (ENOSPC / EDQUOT): a batch stops instead of going on.
    """

    def __init__(self, message: str, path: str = "", disk_full: bool = False) -> None:
        super().__init__(message)
        self.path = str(path)
        self.disk_full = bool(disk_full)

    def __reduce__(self) -> tuple:  # picklable across process-pool and Dask workers
        return (type(self), (str(self), self.path, self.disk_full))


class UsageError(NetlmError):
    """Wrong command-line usage (exit code 2)."""

    exit_code = 2


_FLAG_RE = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")


def only_accepted_flags(message: str, accepted: Iterable[str], command: str) -> str:
    """Rewrite a message so that it suggests only options the running command accepts.

    An error raised deep in the library may name an option of ``netlm analyze``
    (e.g. ``--seg-choice``); under ``netlm pacs`` or ``netlm batch`` such an
    option is shown as ``netlm analyze --seg-choice``, i.e. a command that does
    accept it, instead of a flag the user cannot pass.

    Parameters
    ----------
    message : str
        The error text.
    accepted : iterable of str
        Option strings of the running command (``--out``, ...).
    command : str
        The running command (``batch``, ``pacs``, ...); ``analyze`` accepts its own options.

    Returns
    -------
    str
        The message, with foreign options prefixed by ``netlm analyze``.

    Examples
    --------
    >>> only_accepted_flags("choose with --seg-choice N", {"--out"}, "pacs")
    'choose with `netlm analyze --seg-choice` N'
    >>> only_accepted_flags("choose with --seg-choice N", {"--seg-choice"}, "pacs")
    'choose with --seg-choice N'
    """
    known = set(accepted)
    if command == "analyze":
        return message
    return _FLAG_RE.sub(lambda m: m.group(0) if m.group(0) in known else f"`netlm analyze {m.group(0)}`", message)


def for_command(exc: BaseException, accepted: Iterable[str] | None, command: str) -> str:
    """The message of ``exc`` as the running command shows it.

    Its :attr:`NetlmError.advice_by_command` text for ``command`` is appended, then the options are
    those ``command`` accepts (:func:`only_accepted_flags`; ``accepted`` None: left as they are).

    Parameters
    ----------
    exc : BaseException
        The error.
    accepted : iterable of str or None
        Option strings of the running command.
    command : str
        The running command (``analyze``, ``batch``, ``pacs``, ``listen``).

    Returns
    -------
    str

    Examples
    --------
    >>> err = InputError("pass --pet-half-life 4069.8")
    >>> err.advice_by_command = {"listen": " (for every study received)"}
    >>> for_command(err, {"--pet-half-life"}, "listen")
    'pass --pet-half-life 4069.8 (for every study received)'
    >>> for_command(err, {"--out"}, "batch")
    'pass `netlm analyze --pet-half-life` 4069.8'
    """
    message = str(exc) + str(getattr(exc, "advice_by_command", {}).get(command, ""))
    return message if accepted is None else only_accepted_flags(message, accepted, command)

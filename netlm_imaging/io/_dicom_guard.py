"""Malformed DICOM values become one :class:`~netlm_imaging.errors.DicomError` naming the file.

One concept: the guard around every DICOM parse of the io readers (:func:`guard_malformed`).
A value that pydicom, highdicom or numpy cannot parse (a cut element, a non-numeric DS, a
missing element) means a corrupt or non-standard file, reported as one line naming it; an
AttributeError or KeyError raised by the project's own code is a bug and stays visible.
pydicom is not imported here: its exceptions are recognised by their module name.
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Callable
from typing import Any, TypeVar

from ..errors import DicomError, InputError

__all__ = ["MALFORMED_ERRORS", "guard_malformed"]

F = TypeVar("F", bound=Callable[..., Any])


#: Exceptions that malformed header values raise inside pydicom / numpy parsing (pydicom's own
#: exception classes, e.g. ``BytesLengthException``, are recognised by :func:`_is_pydicom_error`).
MALFORMED_ERRORS: tuple[type[BaseException], ...] = (
    ValueError,
    TypeError,
    KeyError,
    IndexError,
    AttributeError,
    NotImplementedError,
    OverflowError,
    ZeroDivisionError,
    EOFError,
    struct.error,
    UnicodeDecodeError,
)


def _is_pydicom_error(exc: BaseException) -> bool:
    """pydicom's own exception classes (``BytesLengthException``, ``InvalidDicomError``...).

    Checked by module name so that this module does not import pydicom.
    """
    return type(exc).__module__.startswith("pydicom.")


#: Libraries whose AttributeError / KeyError mean "this file lacks an element" (raised inside them).
_FILE_PARSERS = frozenset({"pydicom", "highdicom", "numpy"})


def _raised_by_parser(exc: BaseException) -> bool:
    """Whether ``exc`` was raised inside a DICOM parsing library (its innermost frame is theirs).

    An AttributeError or KeyError raised by the project's own code is a bug and
    must not be reported as a corrupt file.
    """
    tb = exc.__traceback__
    if tb is None:
        return False
    while tb.tb_next is not None:
        tb = tb.tb_next
    module = str(tb.tb_frame.f_globals.get("__name__", ""))
    return module.split(".", 1)[0] in _FILE_PARSERS


def guard_malformed(what: str) -> Callable[[F], F]:
    """Decorator: a malformed value inside a DICOM file becomes a :class:`DicomError` naming the file.

    The first positional argument of the decorated function is the file (or
    folder) named in the message. NetlmErrors pass through unchanged, and so
    does an AttributeError / KeyError raised by the project's own code (a bug,
    not a corrupt file); only those raised inside pydicom / highdicom / numpy
    become a DicomError.

    Parameters
    ----------
    what : str
        What was being read, e.g. ``"DICOM header"``.
    """

    def deco(fn: F) -> F:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return fn(*args, **kwargs)
            except InputError:
                raise
            except Exception as exc:
                if not isinstance(exc, MALFORMED_ERRORS) and not _is_pydicom_error(exc):
                    raise
                if isinstance(exc, (AttributeError, KeyError)) and not _raised_by_parser(exc):
                    raise  # our own bug (a typo, a missing key), not a corrupt file
                src = args[0] if args else kwargs.get("path", kwargs.get("source", "DICOM input"))
                if isinstance(src, (list, tuple)):
                    src = src[0] if src else "DICOM input"
                detail = " ".join(str(exc).split())[:100]
                raise DicomError(
                    f"{src}: malformed {what} ({type(exc).__name__}: {detail}); the file is corrupt or not "
                    "standard: re-export it from the PACS, or remove it from the folder."
                ) from exc

        return wrapper  # type: ignore[return-value]

    return deco

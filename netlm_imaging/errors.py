"""Exception hierarchy of netlm-imaging.

Every error a user can cause with bad input is a :class:`NetlmError`. The CLI
turns it into one line on stderr and the exit code stored on the class, so no
traceback ever reaches the user. Messages name the file, what is wrong and how
to fix it.
"""

from __future__ import annotations

__all__ = [
    "DicomError",
    "GeometryError",
    "InputError",
    "LabelError",
    "NetlmError",
    "ResourceLimitError",
    "UnsupportedError",
    "UsageError",
]


class NetlmError(Exception):
    """Base class of all errors the tool reports to the user.

    Parameters
    ----------
    message : str
        One line: the file, what is wrong and the fix.
    """

    exit_code: int = 3

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


class UsageError(NetlmError):
    """Wrong command-line usage (exit code 2)."""

    exit_code = 2

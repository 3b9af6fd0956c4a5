"""gzip decoding of NIfTI data straight into the final array, with the fastest inflater installed.

nibabel inflates ``.nii.gz`` files through Python's :mod:`gzip` (zlib), which
takes most of the time of a NIfTI analysis. :func:`read_gzip_array` inflates
the file with python-isal (``isal``, Intel ISA-L: about 2-3x faster than
zlib) when it is installed, else with :mod:`zlib`, chunk by chunk into one
preallocated buffer that becomes the array (no second copy), and stops as
soon as the declared array bytes are there: what is read is bounded by the
header's declared size, which the voxel budget has already checked.

The bytes are the same whichever inflater runs (DEFLATE is lossless), so the
array is byte for byte what nibabel returns for unscaled data.
"""

from __future__ import annotations

import zlib
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["inflater_name", "read_gzip_array"]

_CHUNK = 1 << 20
#: Most inflated bytes produced per call (keeps the transient copy small).
_OUT_CHUNK = 16 << 20


def _inflater() -> tuple[Any, tuple[type[BaseException], ...]]:
    """(module with ``decompressobj``, its stream error classes): ISA-L when installed, else zlib."""
    try:
        from isal import isal_zlib
    except ImportError:  # optional speed-up: zlib gives the same bytes
        return zlib, (zlib.error,)
    isal_error: type[BaseException] = isal_zlib.error  # type: ignore[assignment]
    return isal_zlib, (isal_error, zlib.error)


def inflater_name() -> str:
    """``"isal"`` when python-isal is installed, else ``"zlib"``."""
    try:
        import isal  # noqa: F401
    except ImportError:
        return "zlib"
    return "isal"


def read_gzip_array(
    path: str | Path, offset: int, shape: tuple[int, ...], dtype: np.dtype, order: str = "F"
) -> np.ndarray | None:
    """The array stored at ``offset`` of the inflated gzip file ``path``; ``None`` if the file ends first.

    Parameters
    ----------
    path : str or Path
        A gzip file (one or more gzip members).
    offset : int
        Byte offset of the array in the inflated stream (NIfTI ``vox_offset``).
    shape, dtype, order
        The array as the header declares it.

    Returns
    -------
    numpy.ndarray or None
        A writeable array owning its buffer, or ``None`` when the inflated
        stream is shorter than ``offset`` + the array bytes or is not a valid
        gzip stream (the caller's reader then reports the damaged file).
    """
    mod, errors = _inflater()
    try:
        return _inflate_into(path, offset, shape, np.dtype(dtype), order, mod)
    except errors:
        return None


def _inflate_into(
    path: str | Path, offset: int, shape: tuple[int, ...], dt: np.dtype, order: str, mod: Any
) -> np.ndarray | None:
    nbytes = int(np.prod(shape, dtype=np.int64)) * dt.itemsize
    total = offset + nbytes
    buf = bytearray(nbytes)
    view = memoryview(buf)
    pos = 0  # bytes of the inflated stream seen so far
    d = mod.decompressobj(31)
    with open(path, "rb") as fh:
        pending = b""
        while pos < total:
            chunk = pending or fh.read(_CHUNK)
            pending = b""
            if not chunk:
                return None
            out = d.decompress(chunk, min(total - pos, _OUT_CHUNK))
            pending = d.unconsumed_tail
            if d.eof:  # a new gzip member may follow
                rest = d.unused_data
                d = mod.decompressobj(31)
                pending = rest
            if out:
                lo, hi = pos, pos + len(out)
                a, b = max(lo, offset), min(hi, total)
                if b > a:
                    view[a - offset : b - offset] = memoryview(out)[a - lo : b - lo]
                pos = hi
    return np.ndarray(shape, dtype=dt, buffer=buf, order="F" if order == "F" else "C")

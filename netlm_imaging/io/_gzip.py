"""gzip decoding of NIfTI data straight into the final array, with the fastest inflater installed.

nibabel inflates ``.nii.gz`` files through Python's :mod:`gzip` (zlib), which
takes most of the time of a NIfTI analysis. :func:`read_gzip_array` inflates
the file with python-isal (``isal``, Intel ISA-L: about 2-3x faster than
zlib) when it is installed, else with :mod:`zlib`, from a memory map of the
file in one call per gzip member, so the inflater writes into one growing
buffer that becomes the array (no chunk copies, no zero-filled buffer), and
stops as soon as the declared array bytes are there: what is inflated is
bounded by the header's declared size, which the voxel budget has already
checked. ISA-L releases the GIL while it inflates.

The bytes are the same whichever inflater runs (DEFLATE is lossless), so the
array is byte for byte what nibabel returns for unscaled data.
"""

from __future__ import annotations

import mmap
import zlib
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["inflater_name", "read_gzip_array"]


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
        A read-only array over the inflated bytes, or ``None`` when the inflated
        stream is shorter than ``offset`` + the array bytes or is not a valid
        gzip stream (the caller's reader then reports the damaged file).
    """
    mod, errors = _inflater()
    try:
        return _inflate_into(path, offset, shape, np.dtype(dtype), order, mod)
    except errors:
        return None


def _compressed(fh: Any) -> Any:
    """The file's bytes as a read-only buffer: a memory map (no copy; page cache) when possible."""
    try:
        return mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
    except (OSError, ValueError):  # empty files, file systems without mmap
        return fh.read()


def _inflate_into(
    path: str | Path, offset: int, shape: tuple[int, ...], dt: np.dtype, order: str, mod: Any
) -> np.ndarray | None:
    count = int(np.prod(shape, dtype=np.int64))
    total = offset + count * dt.itemsize
    parts: list[bytes] = []
    have = 0  # bytes of the inflated stream produced so far
    with open(path, "rb") as fh:
        data = _compressed(fh)
        try:
            src = memoryview(data)
            try:
                while have < total and len(src):
                    d = mod.decompressobj(31)
                    # one call: the inflater writes into one growing buffer that becomes the array
                    # (no chunk copies), and never produces more than the declared bytes
                    out = d.decompress(src, total - have)
                    parts.append(out)
                    have += len(out)
                    if not d.eof:
                        break  # the declared bytes are there, or the stream is cut short
                    src = src[len(src) - len(d.unused_data) :]  # a new gzip member may follow
            finally:
                src.release()
        finally:
            if isinstance(data, mmap.mmap):
                data.close()
    if have < total:
        return None
    buf = parts[0] if len(parts) == 1 else b"".join(parts)
    flat = np.frombuffer(buf, dtype=dt, count=count, offset=offset)
    return flat.reshape(shape, order="F" if order == "F" else "C")

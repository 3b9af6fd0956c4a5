"""gzip decoding of NIfTI data straight into the final array, with the fastest inflater installed.

nibabel inflates ``.nii.gz`` files through Python's :mod:`gzip` (zlib), which
takes most of the time of a NIfTI analysis. :func:`read_gzip_array` inflates
the file with python-isal (``isal``, Intel ISA-L: about 2-3x faster than
zlib) when it is installed, else with :mod:`zlib`:

* with python-isal, its C gzip reader inflates straight into the array,
  allocated once by numpy at its declared size (``readinto``: no growing
  buffer, no copy; numpy asks the kernel for transparent huge pages for large
  arrays, so the 400 MB of an 800-slice CT take ~800 page faults instead of
  ~100 000 four-KiB ones), and it can never write more than the declared bytes;
* otherwise each gzip member is inflated in one call from a memory map of the
  file, so the inflater writes into one growing buffer that becomes the array
  (no chunk copies, no zero-filled buffer), and stops as soon as the declared
  array bytes are there.

Either way what is inflated is bounded by the header's declared size, which
the voxel budget has already checked. ISA-L releases the GIL while it inflates.

The bytes are the same whichever inflater runs (DEFLATE is lossless), so the
array is byte for byte what nibabel returns for unscaled data.
"""

from __future__ import annotations

import contextlib
import mmap
import sys
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["buffers_kept", "inflater_name", "keep_buffers", "read_gzip_array"]


def _inflater() -> tuple[Any, tuple[type[BaseException], ...]]:
    """(module with ``decompressobj``, its stream error classes): ISA-L when installed, else zlib."""
    try:
        from isal import isal_zlib
    except ImportError:  # optional speed-up: zlib gives the same bytes
        return zlib, (zlib.error,)
    isal_error: type[BaseException] = isal_zlib.error  # type: ignore[assignment]
    return isal_zlib, (isal_error, zlib.error)


def _gzip_reader() -> Any:
    """python-isal's C gzip reader class (``readinto`` inflates into the caller's buffer), or None.

    ``isal_zlib._GzipReader`` (python-isal >= 1.6) is what ``isal.igzip`` reads
    with; it is looked up defensively so that a release without it falls back
    to :func:`_inflater`'s one-call inflate.
    """
    try:
        from isal import isal_zlib
    except ImportError:
        return None
    reader = getattr(isal_zlib, "_GzipReader", None)
    return reader if callable(getattr(reader, "readinto", None)) else None


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
    dt = np.dtype(dtype)
    reader = _gzip_reader()
    mod, errors = _inflater()
    if reader is not None:
        # cut short, not gzip, a bad CRC or deflate data
        damaged: tuple[type[BaseException], ...] = (EOFError, OSError, *errors)
        try:
            return _read_into(path, offset, shape, dt, order, reader)
        except damaged:
            return None
    try:
        return _inflate_into(path, offset, shape, dt, order, mod)
    except errors:
        return None


#: Compressed bytes the gzip reader reads from the file at a time.
_READ_CHUNK = 1 << 20


def _fill(reader: Any, view: memoryview) -> bool:
    """Inflate into all of ``view``; False when the stream ends first."""
    got, n = 0, len(view)
    while got < n:
        k = reader.readinto(view[got:])
        if not k:
            return False
        got += k
    return True


#: Buffers kept by :func:`keep_buffers` for the next reads (None: every read allocates its own).
_KEPT: list[np.ndarray] | None = None
#: At most this many buffers are kept (a study reads an image and a label map).
_MAX_KEPT = 2


def keep_buffers(on: bool = True) -> None:
    """Reuse the memory of inflated arrays that nothing holds any more (a batch worker, study after study).

    Every fresh 100-400 MB array costs the kernel a page fault and the zeroing
    of each page, and two workers of ``batch -j 2`` zeroing pages at the same
    time share the memory bandwidth. With buffers kept, the next read inflates
    into the memory of an earlier array once no array over it is alive (its
    reference count says so), so an array still held is never overwritten.
    Off by default: a process that analyses one study would keep the memory
    after it.

    Parameters
    ----------
    on : bool
        Keep (True) or release (False) the buffers.
    """
    global _KEPT
    _KEPT = [] if on else None


@contextlib.contextmanager
def buffers_kept() -> Iterator[None]:
    """:func:`keep_buffers` for the duration of a ``with`` block (a cohort analysed in this process).

    The buffers are released at its end (arrays still held keep their own memory).
    """
    global _KEPT
    before = _KEPT
    if before is None:
        _KEPT = []
    try:
        yield
    finally:
        _KEPT = before


def _fresh(nbytes: int) -> np.ndarray:
    """New uint8 memory of ``nbytes`` in 4 KiB pages: private anonymous memory, transparent huge pages off.

    numpy asks for huge pages for large arrays; on a virtual machine whose free
    memory is handed back to the host (free page reporting), a fresh 2 MiB page
    can cost the host's fault and zeroing on first touch: inflating the 400 MB
    of an 800-slice CT measured 0.42-1.73 s (median 1.1 s) into huge pages and
    0.53-0.98 s (median 0.70 s) into 4 KiB pages, whose faults take recently
    freed memory first.
    """
    if nbytes == 0:
        return np.empty(0, np.uint8)
    try:
        region = mmap.mmap(-1, nbytes, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    except (AttributeError, OSError, ValueError):  # not a POSIX mmap
        return np.empty(nbytes, np.uint8)
    with contextlib.suppress(AttributeError, OSError):
        region.madvise(mmap.MADV_NOHUGEPAGE)
    return np.frombuffer(region, np.uint8)


def _buffer(nbytes: int) -> np.ndarray:
    """``nbytes`` of uint8 memory: an idle kept buffer when one is large enough, else a new one (kept)."""
    kept = _KEPT
    if kept is None:
        return _fresh(nbytes)
    # an idle buffer is referenced only by the list (and getrefcount's own argument)
    idle = [i for i in range(len(kept)) if sys.getrefcount(kept[i]) == 2]
    fits = [i for i in idle if kept[i].nbytes >= nbytes]
    if fits:
        return kept[min(fits, key=lambda i: kept[i].nbytes)][:nbytes]
    for i in sorted(idle, reverse=True):
        del kept[i]  # too small: released before more memory is taken
    buf = _fresh(nbytes)
    if len(kept) < _MAX_KEPT:
        kept.append(buf)
    return buf


def _read_into(
    path: str | Path, offset: int, shape: tuple[int, ...], dt: np.dtype, order: str, reader_cls: Any
) -> np.ndarray | None:
    """The array inflated by ``reader_cls`` (isal's gzip reader) straight into its own memory."""
    count = int(np.prod(shape, dtype=np.int64))
    raw = _buffer(count * dt.itemsize)
    with open(path, "rb") as fh:
        reader = reader_cls(fh, _READ_CHUNK)
        if offset and not _fill(reader, memoryview(bytearray(offset))):  # the header before the voxels
            return None
        if not _fill(reader, memoryview(raw.data)):
            return None
    flat = raw.view(dt)
    flat.flags.writeable = False  # as the one-call path's array over immutable bytes
    return flat.reshape(shape, order="F" if order == "F" else "C")


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

"""Memory for a DICOM series' pixels that the next series of the process reuses (private).

A 512 x 512 x 200 CT is 100 MiB of fresh memory per read, and the kernel zeroes every page of
it on first touch (about a tenth of an analysis of that study), only for the read to overwrite
every byte. A process that analyses study after study (a PACS script calling ``analyze``, a
``batch`` worker, ``netlm listen``) reads each series into the memory the last one left:

* :func:`pixel_buffer` hands out the memory of an earlier buffer once no array over it is alive
  (a weak-reference finalizer on the buffer's base array says so), and never while one is;
* a released buffer is marked ``MADV_FREE``: the kernel takes its pages back under memory
  pressure (they then come back zeroed), and otherwise leaves them where the next read finds
  them without a page fault;
* the buffer is only for a read that writes every byte of it (:func:`~.dicom_series_pixels.start_native_read`:
  every slice of the series is read whole into its own rows, or the buffer is dropped), so
  nothing of an earlier study can remain in a new one.

At most :data:`MAX_KEPT` regions are kept; a request that fits none of the idle ones (or more
than twice its size) gets a new region, and the idle ones that do not fit are unmapped first.
"""

from __future__ import annotations

import contextlib
import mmap
import threading
import weakref
from dataclasses import dataclass

import numpy as np

__all__ = ["MAX_KEPT", "pixel_buffer"]

#: Regions kept for reuse (a read holds one; a second covers an image read while another is alive).
MAX_KEPT = 2

_LOCK = threading.Lock()


@dataclass(eq=False)
class _Region:
    memory: mmap.mmap
    nbytes: int
    idle: bool = False


_KEPT: list[_Region] = []


def _release(region: _Region) -> None:
    """The last array over ``region`` is gone: its pages may be taken back lazily; it may be handed out again.

    A finalizer may run inside any allocation, the garbage collector's included, so also while this
    thread holds :data:`_LOCK` in :func:`pixel_buffer`: it takes no lock (one attribute set under the GIL).
    """
    with contextlib.suppress(AttributeError, OSError, ValueError):
        region.memory.madvise(mmap.MADV_FREE)
    region.idle = True


def _new_region(nbytes: int) -> _Region | None:
    try:
        memory = mmap.mmap(-1, nbytes, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    except (AttributeError, OSError, ValueError):  # not a POSIX mmap: plain numpy memory instead
        return None
    with contextlib.suppress(AttributeError, OSError):
        memory.madvise(mmap.MADV_HUGEPAGE)  # as numpy asks for its large arrays
    return _Region(memory, nbytes)


def pixel_buffer(shape: tuple[int, ...], dtype: np.dtype | type) -> np.ndarray:
    """An uninitialised C-ordered array of ``shape`` and ``dtype``, in reused memory when an idle region fits.

    The caller must write every element before reading any (the memory may hold an earlier
    series' pixels). Thread-safe.

    Parameters
    ----------
    shape : tuple of int
    dtype : numpy dtype

    Returns
    -------
    numpy.ndarray
    """
    dt = np.dtype(dtype)
    nbytes = int(np.prod(shape, dtype=np.int64)) * dt.itemsize
    if nbytes == 0:
        return np.empty(shape, dtype=dt)
    region: _Region | None = None
    with _LOCK:
        fits = [r for r in _KEPT if r.idle and nbytes <= r.nbytes <= 2 * nbytes]
        if fits:
            region = min(fits, key=lambda r: r.nbytes)
            region.idle = False
        else:
            for r in [r for r in _KEPT if r.idle]:  # too small or too large: unmapped before more is taken
                _KEPT.remove(r)
                with contextlib.suppress(BufferError, ValueError):
                    r.memory.close()
    if region is None:
        region = _new_region(nbytes)
        if region is None:
            return np.empty(shape, dtype=dt)
        with _LOCK:
            if len(_KEPT) < MAX_KEPT:
                _KEPT.append(region)
    base = np.frombuffer(region.memory, dtype=np.uint8, count=nbytes)
    weakref.finalize(base, _release, region)
    return base.view(dt).reshape(shape)

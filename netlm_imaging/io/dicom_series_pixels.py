"""The pixel read of a DICOM image series: the sorted slices' modality values into one array.

Part of the DICOM series reader (:mod:`netlm_imaging.io.dicom_series`). :func:`read_pixels` fills a
``(k, row, col)`` buffer with the slices in order (threads for a single-frame native series,
:func:`start_native_read`; one thread otherwise), RescaleSlope / RescaleIntercept applied per slice
(per frame for Enhanced images) by the decoders of :mod:`._dicom_pixels`; :func:`resample_linear`
interpolates a series with irregular steps onto a regular grid.

Array dtype (the smallest exact one)
------------------------------------
Modality values are integers whenever every slice's RescaleSlope and
RescaleIntercept are integers (CT: slope 1, intercept -1024), so they are kept
exactly in an integer array, half the memory of float32:

* **int16** when every value fits: either the range the headers declare
  (BitsStored, PixelRepresentation, slope, intercept) fits, or, when it does
  not (e.g. BitsStored 16 with intercept -1024), every slice's actual values
  are checked while reading;
* **int32** when some slice's values do not fit int16 but fit int32 (the
  buffer is widened once, while reading);
* **float32** (``stored * slope + intercept`` in float32, as before) for PET
  (``Modality`` PT; SUV conversion multiplies anyway), for any fractional or
  non-finite slope or intercept, for a Modality LUT Sequence, and when the
  declared range exceeds int32.

A series resampled onto a regular grid (``nonuniform="resample"``) is float32
(linear interpolation). Consumers that need floats cast themselves
(``np.asarray(vol.array, dtype=np.float32)``); sums and means should
accumulate in float64 (``arr.mean(dtype=np.float64)``), which the measurement
code does.
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..threads import PendingTasks, analysis_threads
from ._dicom_guard import guard_malformed
from ._dicom_info import DicomFileInfo
from ._dicom_pixels import (
    decode_frames,
    native_into_applies,
    plain_intercept,
    read_native_into,
    read_plain_into,
    stored_value_range,
    write_modality_frame,
)
from ._pixel_buffers import pixel_buffer
from .dicom_series_geometry import SeriesSlice

__all__ = ["PendingRead", "output_dtype", "read_pixels", "resample_linear", "start_native_read"]

logger = logging.getLogger(__name__)


def resample_linear(array: np.ndarray, positions: np.ndarray, n_out: int, step: float) -> tuple[np.ndarray, np.ndarray]:
    """Linear interpolation along k onto ``positions[0] + step * arange(n_out)``."""
    target = positions[0] + step * np.arange(n_out)
    target[-1] = min(target[-1], positions[-1])
    idx = np.clip(np.searchsorted(positions, target, side="right") - 1, 0, len(positions) - 2)
    w = ((target - positions[idx]) / (positions[idx + 1] - positions[idx])).astype(np.float32)
    out = np.empty((*array.shape[:2], n_out), dtype=np.float32, order="F")
    for t in range(n_out):
        a = array[:, :, idx[t]].astype(np.float32)  # integer input: no wrap-around in b - a
        b = array[:, :, idx[t] + 1].astype(np.float32)
        out[:, :, t] = a + (b - a) * w[t]
    return out, target


def _is_integer(x: float) -> bool:
    return math.isfinite(x) and float(x).is_integer()


def _files_of(slices: Sequence[SeriesSlice]) -> list[DicomFileInfo]:
    """The files of the slices, once each, in slice order (by identity: a frozen DicomFileInfo hashes every field)."""
    return list({id(s.info): s.info for s in slices}.values())


def output_dtype(modality: str, slices: Sequence[SeriesSlice]) -> tuple[np.dtype, bool]:
    """(array dtype, values must be checked per slice); see "Array dtype" in the module docstring."""
    files = _files_of(slices)
    if (
        modality == "PT"
        or any(f.has_modality_lut_sequence for f in files)
        or not all(_is_integer(s.frame.slope) and _is_integer(s.frame.intercept) for s in slices)
    ):
        return np.dtype(np.float32), False
    ranges = {id(f): stored_value_range(f) for f in files}
    ends = [v * int(s.frame.slope) + int(s.frame.intercept) for s in slices for v in ranges[id(s.info)]]
    lo, hi = min(ends), max(ends)
    if lo >= np.iinfo(np.int16).min and hi <= np.iinfo(np.int16).max:
        return np.dtype(np.int16), False
    if lo >= np.iinfo(np.int32).min and hi <= np.iinfo(np.int32).max:
        return np.dtype(np.int16), True
    return np.dtype(np.float32), False


class _Widen(Exception):
    """An integer buffer cannot hold a slice's values exactly."""


@guard_malformed("DICOM pixel data")
def _fill_slices(
    path: Path, info: DicomFileInfo, buf: np.ndarray, k_of: dict[tuple[Path, int], int], check_range: bool
) -> None:
    """Decode one file's frames into their slices of ``buf`` (``path`` names the file in errors).

    Raises :class:`_Widen` when ``buf`` is an integer array too narrow for this file's values.
    """
    if len(info.frames) == 1 and info.number_of_frames == 1:  # a plain single-frame native file: its slice
        k = k_of.get((path, info.frames[0].frame_index))
        if k is None:
            return
        fr = info.frames[0]
        done = read_native_into(info, fr.slope, fr.intercept, buf[k], check_range=check_range)
        if done is False:
            raise _Widen
        if done:
            return
    frames, ds = decode_frames(info)
    for fr in info.frames:
        k = k_of.get((path, fr.frame_index))
        if k is None:
            continue
        ok = write_modality_frame(
            frames[fr.frame_index],
            fr.slope,
            fr.intercept,
            buf[k],
            ds,
            use_lut_sequence=info.has_modality_lut_sequence,
            check_range=check_range or ds is not None,  # pydicom-decoded values are not masked to BitsStored
        )
        if not ok:
            raise _Widen


def read_pixels(
    slices: Sequence[SeriesSlice], dtype: np.dtype, check_range: bool, shape: tuple[int, int, int]
) -> np.ndarray:
    """Pixel buffer ``(k, row, col)`` of the sorted slices, widened int16 -> int32 -> float32 if needed."""
    k_of: dict[tuple[Path, int], int] = {(s.info.path, s.frame.frame_index): k for k, s in enumerate(slices)}
    pending = start_native_read(slices, dtype, check_range, shape, k_of)
    if pending is not None:
        buf = pending.finish()  # this thread reads slices too until every task is done
        if buf is not None:
            return buf
    return _read_pixels_in_order(slices, dtype, check_range, shape, k_of)


#: Slices per task of a threaded read (4 MiB of a 512 x 512 int16 series).
_SLICES_PER_TASK = 8


class PendingRead:
    """A series' native pixels being read by :func:`start_native_read`'s threads; :meth:`finish` waits for them."""

    def __init__(self, buf: np.ndarray, tasks: PendingTasks) -> None:
        self.buf = buf
        self._tasks = tasks

    def finish(self) -> np.ndarray | None:
        """The filled buffer, or ``None`` when a slice needs the one-thread reader (wider values, an error)."""
        if self._tasks.finish() is not None:
            return None  # read again in order: it widens the buffer, or raises what the first bad file warrants
        return self.buf


def start_native_read(
    slices: Sequence[SeriesSlice],
    dtype: np.dtype,
    check_range: bool,
    shape: tuple[int, int, int],
    k_of: dict[tuple[Path, int], int],
) -> PendingRead | None:
    """Start reading a single-frame native series into a fresh buffer with the analysis' threads.

    ``None`` when it does not apply (multi-frame or encoded files, a float
    buffer; one thread unless every file is plain, see
    :func:`~._dicom_pixels.plain_intercept`): the caller reads in order. Each task reads whole
    slices into their own rows of the buffer, so the bytes do not depend on the
    threads; any slice that does not fit ``dtype``, or any error, makes
    :meth:`PendingRead.finish` return ``None`` (the in-order reader then widens
    the buffer or raises the first file's error, as without threads).
    """
    threads = analysis_threads()  # netlm_imaging.threads: min(2, cores), a batch worker's share
    if len(slices) < 2 * _SLICES_PER_TASK:
        threads = 1
    if not all(
        len(s.info.frames) == 1 and native_into_applies(s.info, s.frame.slope, s.frame.intercept, dtype) for s in slices
    ):
        return None
    intercepts = [plain_intercept(s.info, s.frame.slope, s.frame.intercept, dtype) for s in slices]
    plain = all(c is not None for c in intercepts)
    if threads < 2 and not plain:
        return None
    # (k, row, col): F-order view as (i, j, k). Every slice is read whole into its own rows, or the
    # buffer is dropped: the memory an earlier series left can be reused without zeroing it first
    buf = pixel_buffer(shape, dtype)
    if plain:  # a CT's usual encoding: the lean per-slice loop (on this thread alone when threads is 1)
        items = [(s.info.path, s.info.pixel_data_offset, k, c) for k, (s, c) in enumerate(zip(slices, intercepts))]

        def plain_task(part: list[Any]) -> None:
            if not read_plain_into(part, buf, check_range):
                raise _Widen

        parts: list[Any] = [items[i : i + _SLICES_PER_TASK] for i in range(0, len(items), _SLICES_PER_TASK)]
        return PendingRead(buf, PendingTasks([functools.partial(plain_task, p) for p in parts], threads - 1))
    infos = _files_of(slices)

    def task(part: list[DicomFileInfo]) -> None:
        for info in part:
            _fill_slices(info.path, info, buf, k_of, check_range)

    parts = [infos[i : i + _SLICES_PER_TASK] for i in range(0, len(infos), _SLICES_PER_TASK)]
    return PendingRead(buf, PendingTasks([functools.partial(task, p) for p in parts], threads - 1))


def _read_pixels_in_order(
    slices: Sequence[SeriesSlice],
    dtype: np.dtype,
    check_range: bool,
    shape: tuple[int, int, int],
    k_of: dict[tuple[Path, int], int],
) -> np.ndarray:
    """The pixel buffer ``(k, row, col)`` of the sorted slices in one thread, widened int16 -> int32 -> float32."""
    buf = np.empty(shape, dtype=dtype)  # (k, row, col): F-order view as (i, j, k)
    done: list[DicomFileInfo] = []
    for info in _files_of(slices):
        while True:
            try:
                _fill_slices(info.path, info, buf, k_of, check_range)
                break
            except _Widen:
                wider = np.int32 if buf.dtype == np.int16 else np.float32
                logger.debug("%s: values exceed %s; widening the image to %s", info.path, buf.dtype, np.dtype(wider))
                new = np.empty(shape, dtype=wider)
                for f in done:  # only slices already written are copied
                    for fr in f.frames:
                        k = k_of.get((f.path, fr.frame_index))
                        if k is not None:
                            new[k] = buf[k]
                buf = new
        done.append(info)
    return buf

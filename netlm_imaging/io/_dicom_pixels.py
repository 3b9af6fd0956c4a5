"""Decode the stored pixel values of one DICOM image file, read-only.

Native little-endian pixel data is read straight from the file at the offset
recorded by the header scan (one header parse per file); everything else
(big endian, RLE, JPEG, JPEG-LS, JPEG 2000, deflate) goes through pydicom's
pixel plugins (pylibjpeg with libjpeg/openjpeg/rle, or GDCM when installed).
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DicomError, ResourceLimitError, UnsupportedError
from ._dicom_header import with_transfer_syntax
from ._dicom_info import DicomFileInfo
from ._inflate import dcmread as bounded_dcmread

__all__ = [
    "apply_modality_lut_frame",
    "check_native_length",
    "decode_frames",
    "native_into_applies",
    "plain_intercept",
    "read_native_into",
    "read_plain_into",
    "stored_value_range",
    "transfer_syntax_name",
    "write_modality_frame",
]

logger = logging.getLogger(__name__)

_NATIVE_LE = {"1.2.840.10008.1.2", "1.2.840.10008.1.2.1"}


def transfer_syntax_name(uid: str) -> str:
    """Human-readable name of a transfer syntax UID (the UID itself if unknown)."""
    from pydicom.uid import UID

    name = UID(uid).name if uid else "unknown transfer syntax"
    return name if name and name != uid else f"transfer syntax {uid}"


def _truncated(path: Path) -> DicomError:
    return DicomError(f"{path}: pixel data is truncated (the file is shorter than declared); re-export the series.")


def check_native_length(info: DicomFileInfo) -> None:
    """Refuse native pixel data holding a whole frame or more beyond what the header describes.

    Native (uncompressed little-endian) PixelData holds exactly Rows x Columns x
    frames x SamplesPerPixel x BitsAllocated / 8 bytes, plus at most a pad byte.
    A longer buffer (one frame or more of excess) means the header does not
    describe the bytes: BitsAllocated 8 on 16-bit data, Rows or NumberOfFrames too
    small. Reading the first bytes as the header says would give wrong values
    without any sign (pydicom drops the excess with a warning).

    Parameters
    ----------
    info : DicomFileInfo
        Header facts of one image file.

    Raises
    ------
    DicomError
        If the pixel data is at least one frame longer than the header declares.
    """
    if (
        info.transfer_syntax_uid not in _NATIVE_LE
        or info.pixel_data_length is None
        or info.bits_allocated not in (8, 16, 32)
    ):
        return
    frame = info.rows * info.columns * max(info.samples_per_pixel, 1) * (info.bits_allocated // 8)
    needed = frame * max(info.number_of_frames, 1)
    if frame > 0 and info.pixel_data_length - needed >= frame:
        raise DicomError(
            f"{info.path}: PixelData holds {info.pixel_data_length} bytes, {info.pixel_data_length / needed:.3g} "
            f"times the {needed} that Rows {info.rows} x Columns {info.columns} x {max(info.number_of_frames, 1)} "
            f"frame(s) at BitsAllocated {info.bits_allocated} need; the header does not describe the pixel data "
            "(a wrong BitsAllocated, Rows/Columns or NumberOfFrames). Re-export the series, or remove the file "
            "from the folder."
        )


def _fast_native(info: DicomFileInfo) -> np.ndarray | None:
    """Read native little-endian pixels by offset, or ``None`` when not applicable."""
    if (
        info.transfer_syntax_uid not in _NATIVE_LE
        or info.pixel_data_offset is None
        or info.samples_per_pixel != 1
        or info.bits_allocated not in (8, 16, 32)
    ):
        return None
    signed = info.pixel_representation == 1
    dtype = np.dtype(f"<{'i' if signed else 'u'}{info.bits_allocated // 8}")
    count = info.rows * info.columns * info.number_of_frames
    if info.pixel_data_length is not None and info.pixel_data_length < count * dtype.itemsize:
        raise DicomError(
            f"{info.path}: PixelData holds {info.pixel_data_length} bytes but Rows x Columns x frames needs "
            f"{count * dtype.itemsize}; the file is corrupt, re-export the series."
        )
    with info.path.open("rb") as fh:
        fh.seek(info.pixel_data_offset)
        data = np.fromfile(fh, dtype=dtype, count=count)
    if data.size != count:
        raise _truncated(info.path)
    spare = info.bits_allocated - info.bits_stored
    if 0 < spare < info.bits_allocated:
        if signed:  # sign-extend from BitsStored
            data = (data << spare) >> spare
        else:
            data = data & np.array((1 << info.bits_stored) - 1, dtype=dtype)
    return data.reshape(info.number_of_frames, info.rows, info.columns)


def native_into_applies(info: DicomFileInfo, slope: float, intercept: float, dtype: np.dtype) -> bool:
    """Whether :func:`read_native_into` reads this file into a C-contiguous ``(Rows, Columns)`` slice of ``dtype``.

    Single-frame native little-endian greyscale pixels whose BitsAllocated is the
    item size of the integer ``dtype``, with an integer slope and intercept and no
    Modality LUT Sequence.
    """
    return (
        info.transfer_syntax_uid in _NATIVE_LE
        and info.pixel_data_offset is not None
        and info.samples_per_pixel == 1
        and info.number_of_frames == 1
        and not info.has_modality_lut_sequence
        and dtype.kind in "iu"
        and dtype.itemsize * 8 == info.bits_allocated
        and _is_int(slope)
        and _is_int(intercept)
    )


def read_native_into(
    info: DicomFileInfo, slope: float, intercept: float, out: np.ndarray, *, check_range: bool
) -> bool | None:
    """Read one single-frame native image straight into ``out`` (a slice of the volume) and rescale it there.

    The stored values are read into ``out``'s own bytes (no per-slice array),
    masked or sign-extended to BitsStored, and turned into modality values in
    place. Integer arithmetic in ``out``'s dtype is modular, so the result is
    exact whenever the true ``stored * slope + intercept`` fits ``out``'s dtype,
    which is checked first (on the declared range, or on the slice's actual
    values when ``check_range``).

    Parameters
    ----------
    info : DicomFileInfo
        Header facts of the file.
    slope, intercept : float
        Integer modality LUT of its frame.
    out : numpy.ndarray
        C-contiguous integer destination ``(Rows, Columns)`` whose item size is BitsAllocated / 8.
    check_range : bool
        Check the slice's actual values (the declared range does not fit ``out``).

    Returns
    -------
    bool or None
        True: written. False: the values do not fit ``out``'s dtype (the caller widens).
        None: not applicable (use :func:`decode_frames` + :func:`write_modality_frame`).

    Raises
    ------
    DicomError
        Truncated or short pixel data.
    """
    offset = info.pixel_data_offset
    if (
        offset is None
        or not native_into_applies(info, slope, intercept, out.dtype)
        or out.shape != (info.rows, info.columns)
        or not out.flags.c_contiguous
    ):
        return None
    if info.truncated:
        raise _truncated(info.path)
    check_native_length(info)
    signed = info.pixel_representation == 1
    stored = _stored_dtype(signed, out.dtype.itemsize)
    if info.pixel_data_length is not None and info.pixel_data_length < out.nbytes:
        raise DicomError(
            f"{info.path}: PixelData holds {info.pixel_data_length} bytes but Rows x Columns x frames needs "
            f"{out.nbytes}; the file is corrupt, re-export the series."
        )
    with open(info.path, "rb", buffering=0) as fh:
        fh.seek(offset)
        got = fh.readinto(memoryview(out).cast("B"))  # type: ignore[arg-type]
    if got != out.nbytes:
        raise _truncated(info.path)
    raw = out.view(stored)
    spare = info.bits_allocated - info.bits_stored
    if 0 < spare < info.bits_allocated:
        if signed:  # sign-extend from BitsStored
            raw <<= spare
            raw >>= spare
        else:
            raw &= stored.type((1 << info.bits_stored) - 1)
    islope, iintercept = int(slope), int(intercept)
    limits = _limits(out.dtype)
    # CT's usual case (stored int16, slope 1, intercept -1024, BitsStored 16): one pass checks after the add
    check_after = check_range and stored == out.dtype and islope == 1 and limits.min <= iintercept <= limits.max
    if not check_after:
        if check_range:
            lo, hi = (int(raw.min()), int(raw.max())) if raw.size else (0, 0)
        else:
            lo, hi = stored_value_range(info)
        ends = (lo * islope + iintercept, hi * islope + iintercept)
        if min(ends) < limits.min or max(ends) > limits.max:
            return False
    work = out if stored == out.dtype else raw.view(out.dtype)  # the same bytes; arithmetic modulo 2**bits
    bits = out.dtype.itemsize * 8
    if islope != 1:
        np.multiply(work, _wrapped(islope, out.dtype, bits), out=work)
    if iintercept != 0:
        np.add(work, _wrapped(iintercept, out.dtype, bits), out=work)
        if check_after and out.size and _wrapped_add(out, iintercept, limits):
            return False
    return True


def plain_intercept(info: DicomFileInfo, slope: float, intercept: float, out_dtype: np.dtype) -> int | None:
    """The integer intercept when :func:`read_plain_into` reads this file, else ``None``.

    The plain case of :func:`read_native_into` (a CT's usual encoding): stored values in
    ``out_dtype`` itself with every allocated bit stored (nothing to mask or sign-extend), slope 1,
    an intercept within ``out_dtype``, and a header that declares all the pixel bytes.
    """
    if not native_into_applies(info, slope, intercept, out_dtype) or info.truncated or info.pixel_data_offset is None:
        return None
    if _stored_dtype(info.pixel_representation == 1, out_dtype.itemsize) != out_dtype:
        return None
    nbytes = info.rows * info.columns * out_dtype.itemsize
    if info.bits_stored != info.bits_allocated or int(slope) != 1:
        return None
    if info.pixel_data_length is not None and info.pixel_data_length < nbytes:
        return None
    check_native_length(info)
    limits = _limits(out_dtype)
    c = int(intercept)
    return c if limits.min <= c <= limits.max else None


def read_plain_into(items: Sequence[tuple[Path, int, int, int]], buf: np.ndarray, check_range: bool) -> bool:
    """Read plain slices (:func:`plain_intercept`) into ``buf[k]`` and add their intercepts in place.

    ``items`` are ``(path, pixel data offset, k, intercept)``. The bytes are those
    :func:`read_native_into` writes (the same read and the same in-place add), with
    little Python per slice, so that read threads seldom wait for the GIL.

    Returns
    -------
    bool
        False as soon as a slice's values do not fit ``buf``'s dtype (only checked with
        ``check_range``, after the add: :func:`_wrapped_add`).

    Raises
    ------
    OSError
        A file that cannot be read, or holds fewer bytes than a slice (the caller reads in order to say which).
    """
    limits = _limits(buf.dtype)
    scalar = buf.dtype.type
    for path, offset, k, c in items:
        out = buf[k]
        with open(path, "rb", buffering=0) as fh:
            fh.seek(offset)
            if fh.readinto(memoryview(out).cast("B")) != out.nbytes:
                raise OSError(f"{path}: short read")
        if c:
            np.add(out, scalar(c), out=out)
            if check_range and _wrapped_add(out, c, limits):
                return False
    return True


def _wrapped_add(out: np.ndarray, intercept: int, limits: np.iinfo) -> bool:
    """Whether ``out = stored + intercept``, added in place in ``out``'s dtype, wrapped around for some voxel.

    With ``limits.min <= intercept <= limits.max``: for ``intercept < 0`` an exact sum
    lies in ``[min, max + intercept]`` and a wrapped one in ``[max + 1 + intercept, max]``
    (for ``intercept > 0``: exact in ``[min + intercept, max]``, wrapped in
    ``[min, min + intercept - 1]``), so one maximum (minimum) tells them apart.
    """
    if intercept < 0:
        return int(out.max()) > limits.max + intercept
    return int(out.min()) < limits.min + intercept


def _is_int(x: float) -> bool:
    return math.isfinite(x) and float(x).is_integer()


@functools.cache
def _stored_dtype(signed: bool, itemsize: int) -> np.dtype:
    """The little-endian integer dtype of stored values (PixelRepresentation, BitsAllocated / 8)."""
    return np.dtype(f"<{'i' if signed else 'u'}{itemsize}")


@functools.cache
def _limits(dtype: np.dtype) -> np.iinfo:
    """``np.iinfo(dtype)``, built once per dtype (it is looked up for every slice)."""
    return np.iinfo(dtype)


def _wrapped(value: int, dtype: np.dtype, bits: int) -> Any:
    """``value`` modulo ``2**bits`` as a scalar of ``dtype`` (integer arithmetic in ``dtype`` wraps alike)."""
    value %= 1 << bits
    if dtype.kind == "i" and value >= 1 << (bits - 1):
        value -= 1 << bits
    return dtype.type(value)


def _unsupported(info: DicomFileInfo, exc: Exception) -> UnsupportedError:
    name = transfer_syntax_name(info.transfer_syntax_uid)
    reason = " ".join(str(exc).split())[:160]
    return UnsupportedError(
        f"{info.path}: cannot decode pixel data in {name} ({info.transfer_syntax_uid}): {reason}; "
        "install the pydicom plugin for it (pylibjpeg-libjpeg, pylibjpeg-openjpeg, pylibjpeg-rle or python-gdcm) "
        "or decompress the files first (gdcmconv --raw IN OUT, or dcmdjpeg IN OUT)."
    )


def decode_frames(info: DicomFileInfo) -> tuple[np.ndarray, Any]:
    """Stored pixel values of every frame of one file.

    Parameters
    ----------
    info : DicomFileInfo
        Header facts from :func:`~netlm_imaging.io._dicom_common.scan_dicom_folder`.

    Returns
    -------
    frames : numpy.ndarray
        Integer array ``(n_frames, Rows, Columns)`` of stored values.
    dataset : pydicom.Dataset or None
        The full dataset when pydicom decoded it (``None`` on the fast path).

    Raises
    ------
    DicomError
        Truncated or corrupt pixel data.
    UnsupportedError
        No installed plugin decodes the transfer syntax, or colour images.
    """
    if info.samples_per_pixel != 1:
        raise UnsupportedError(
            f"{info.path}: colour image (SamplesPerPixel {info.samples_per_pixel}); "
            "only greyscale CT, MR and PET series can be measured."
        )
    if info.truncated:
        raise _truncated(info.path)
    check_native_length(info)
    # a Modality LUT Sequence is applied by pydicom from the dataset, so that file needs the full read
    fast = None if info.has_modality_lut_sequence else _fast_native(info)
    if fast is not None:
        return fast, None

    try:
        ds = with_transfer_syntax(bounded_dcmread(info.path, force=True))  # the scan took it for an image
    except ResourceLimitError:  # a deflate bomb or an oversized header: say so
        raise
    except Exception as exc:
        raise DicomError(
            f"{info.path}: cannot read the file ({type(exc).__name__}); it is truncated or corrupt, re-export it."
        ) from None
    if "PixelData" not in ds:
        raise DicomError(f"{info.path}: image without PixelData; re-export the series.")
    try:
        arr = ds.pixel_array
    except (NotImplementedError, RuntimeError, ImportError) as exc:
        text = str(exc).lower()
        if "plugin" in text or "decod" in text or "support" in text or isinstance(exc, NotImplementedError):
            raise _unsupported(info, exc) from None
        raise DicomError(
            f"{info.path}: pixel data cannot be decoded ({' '.join(str(exc).split())[:160]}); "
            "the file is truncated or corrupt, re-export the series."
        ) from None
    except (ValueError, EOFError, OSError, KeyError) as exc:
        raise DicomError(
            f"{info.path}: pixel data cannot be decoded ({' '.join(str(exc).split())[:160]}); "
            "the file is truncated or corrupt, re-export the series."
        ) from None
    arr = np.asarray(arr)
    if arr.ndim == 2:
        arr = arr[np.newaxis]
    if arr.shape != (info.number_of_frames, info.rows, info.columns):
        raise DicomError(
            f"{info.path}: decoded pixel shape {arr.shape} differs from the header's "
            f"{(info.number_of_frames, info.rows, info.columns)}; the file is corrupt, re-export the series."
        )
    return arr, ds


def stored_value_range(info: DicomFileInfo) -> tuple[int, int]:
    """Range of stored values the header declares (BitsStored, or BitsAllocated, and PixelRepresentation).

    Parameters
    ----------
    info : DicomFileInfo
        Header facts.

    Returns
    -------
    tuple of int
        ``(lowest, highest)`` stored value.
    """
    bits = info.bits_stored if 0 < info.bits_stored <= 32 else info.bits_allocated
    bits = min(max(bits, 1), 32)
    if info.pixel_representation == 1:
        return -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    return 0, (1 << bits) - 1


def write_modality_frame(
    frame: np.ndarray,
    slope: float,
    intercept: float,
    out: np.ndarray,
    dataset: Any = None,
    *,
    use_lut_sequence: bool = False,
    check_range: bool = True,
) -> bool:
    """Write one frame's modality values (HU, Bq/mL, ...) into ``out``, a slice of the volume buffer.

    A float ``out`` receives ``float32(stored) * slope + intercept`` (the
    Modality LUT Sequence instead when ``use_lut_sequence``). An integer
    ``out`` (the caller chose it because slope and intercept are integers)
    receives the exact integer values, unless they do not fit its dtype.

    Parameters
    ----------
    frame : numpy.ndarray
        Stored values ``(Rows, Columns)``.
    slope, intercept : float
        This frame's modality LUT (integers when ``out`` is an integer array).
    out : numpy.ndarray
        Destination ``(Rows, Columns)``.
    dataset : pydicom.Dataset, optional
        Needed only with ``use_lut_sequence``.
    use_lut_sequence : bool
        Apply the dataset's Modality LUT Sequence (float ``out`` only).
    check_range : bool
        For an integer ``out``: compare the frame's actual values with the
        dtype's range first. ``False`` when the header's declared range is
        already known to fit (stored values masked to BitsStored).

    Returns
    -------
    bool
        ``False`` (nothing written) when an integer ``out`` cannot hold the
        values exactly; the caller widens the buffer and writes again.

    References
    ----------
    DICOM PS3.3 C.11.1 Modality LUT Module.
    """
    if out.dtype.kind == "f":
        if use_lut_sequence and dataset is not None:
            from pydicom.pixels import apply_modality_lut

            out[...] = np.asarray(apply_modality_lut(frame, dataset), dtype=np.float32)
            return True
        if slope != 1.0:
            np.multiply(frame, np.float32(slope), out=out, casting="unsafe")
        else:
            out[...] = frame
        if intercept != 0.0:
            out += np.float32(intercept)
        return True
    islope, iintercept = int(slope), int(intercept)
    if check_range and frame.size:
        ends = (int(frame.min()) * islope + iintercept, int(frame.max()) * islope + iintercept)
        limits = np.iinfo(out.dtype)
        if min(ends) < limits.min or max(ends) > limits.max:
            return False
    if islope == 1:
        if iintercept == 0:
            out[...] = frame
        elif np.can_cast(frame.dtype, out.dtype) and np.iinfo(out.dtype).min <= iintercept <= np.iinfo(out.dtype).max:
            # operands and the exact result fit out's dtype, so the sum cannot wrap
            np.add(frame, out.dtype.type(iintercept), out=out)
        else:
            np.add(frame, np.int64(iintercept), out=out, casting="unsafe")
    else:
        np.add(frame.astype(np.int64) * islope, iintercept, out=out, casting="unsafe")
    return True


def apply_modality_lut_frame(
    frame: np.ndarray, slope: float, intercept: float, dataset: Any = None, *, use_lut_sequence: bool = False
) -> np.ndarray:
    """Stored values -> modality values (HU, Bq/mL, ...) as float32.

    RescaleSlope/RescaleIntercept are applied per frame, since they may
    differ between slices. A Modality LUT Sequence, when present, goes through
    :func:`pydicom.pixels.apply_modality_lut`.

    Parameters
    ----------
    frame : numpy.ndarray
        Stored values ``(Rows, Columns)``.
    slope, intercept : float
        This frame's modality LUT.
    dataset : pydicom.Dataset, optional
        Needed only with ``use_lut_sequence``.
    use_lut_sequence : bool
        Apply the dataset's Modality LUT Sequence instead of slope/intercept.

    Returns
    -------
    numpy.ndarray
        float32 array, never cast back to integers.

    References
    ----------
    DICOM PS3.3 C.11.1 Modality LUT Module.
    """
    if use_lut_sequence and dataset is not None:
        from pydicom.pixels import apply_modality_lut

        return np.asarray(apply_modality_lut(frame, dataset), dtype=np.float32)
    out = frame.astype(np.float32)
    if slope != 1.0:
        out *= np.float32(slope)
    if intercept != 0.0:
        out += np.float32(intercept)
    return out

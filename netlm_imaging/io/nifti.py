"""NIfTI reader (nibabel): index->RAS affine converted to LPS here, and only here."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import GeometryError, InputError, ResourceLimitError
from ..volume import Volume, ras_to_lps
from ._nibabel import import_nibabel
from .budget import check_voxel_budget

__all__ = ["nifti_grid", "one_hot_labels", "read_nifti"]

logger = logging.getLogger(__name__)

#: A first axis up to this long, shorter than the last, is named as the likely channels of a channel-first array.
_MAX_CHANNELS_FIRST = 16

#: sform and qform disagreeing by more than this (mm, or direction cosine) earn a warning.
QFORM_SFORM_TOLERANCE = 1e-3


def _fast_gzip_data(img: Any) -> np.ndarray | None:
    """The unscaled data of a ``.nii.gz`` inflated by :mod:`._gzip` (ISA-L when installed); ``None`` otherwise.

    Scaled data (scl_slope / scl_inter) and anything that is not a plain
    nibabel array proxy on one gzip file go through nibabel.
    """
    nib = import_nibabel()

    proxy = img.dataobj
    file_like = getattr(proxy, "file_like", None)
    if not (nib.is_proxy(proxy) and isinstance(file_like, str) and file_like.lower().endswith(".gz")):
        return None
    try:
        if float(proxy.slope) != 1.0 or float(proxy.inter) != 0.0:
            return None
        from ._gzip import read_gzip_array

        return read_gzip_array(file_like, int(proxy.offset), tuple(proxy.shape), proxy.dtype, proxy.order)
    except (AttributeError, OSError, ValueError, TypeError):  # unusual proxies: nibabel decides
        return None


def _scaling(img: Any) -> tuple[float, float] | None:
    """(scl_slope, scl_inter) nibabel applies to the stored values, or None when it applies none."""
    proxy = img.dataobj
    try:
        slope, inter = float(proxy.slope), float(proxy.inter)
    except (AttributeError, TypeError, ValueError):
        return None
    return None if (slope, inter) == (1.0, 0.0) else (slope, inter)


def _channel_count(shape: tuple[int, ...]) -> int | None:
    """The channels of a segmentation stored with one channel per class after its 3 spatial axes, else None.

    MONAI's NIfTI writer puts a channel-first output's channels last, ``(x, y, z, C)``; ITK and the NIfTI
    vector intent put them in the 5th dimension, ``(x, y, z, 1, C)``.

    Examples
    --------
    >>> [_channel_count(s) for s in [(4, 5, 6, 3), (4, 5, 6, 1, 3), (4, 5, 6), (3, 4, 5, 6), (4, 5, 6, 2, 3)]]
    [3, 3, None, 6, None]
    """
    if len(shape) == 4 and shape[3] > 1:
        return shape[3]
    if len(shape) == 5 and shape[3] == 1 and shape[4] > 1:
        return shape[4]
    return None


def one_hot_labels(data: np.ndarray, path: Path) -> tuple[np.ndarray, str]:
    """The label map of a one-hot segmentation ``(x, y, z, C)``: each voxel the number of its one channel.

    Channel ``c`` is the class ``c`` (channel 0 the background, as MONAI's ``AsDiscrete(to_onehot=C)``
    writes it), so the label map is that of the model before its one-hot encoding. Anything else (a
    softmax / sigmoid output, channels that overlap, voxels in no channel) is not a label map: it is
    refused with what to save instead.

    Raises
    ------
    InputError
        When the channels are not one-hot.
    """
    n = data.shape[3]
    finite = np.isfinite(data).all()
    binary = finite and bool(np.isin(data, (0, 1)).all())
    total = data.sum(axis=3, dtype=np.int64) if binary else None
    if total is None or (total != 1).any():
        if not binary:
            lo, hi = (float(np.nanmin(data)), float(np.nanmax(data))) if data.size else (0.0, 0.0)
            what = f"values {lo:g}..{hi:g}, not only 0 and 1: a probability map?"
        else:
            assert total is not None
            what = (
                f"{int((total > 1).sum())} voxel(s) in several channels and {int((total == 0).sum())} in none: "
                "not one class per voxel"
            )
        if data.shape[0] < n and data.shape[0] <= _MAX_CHANNELS_FIRST:
            what += (
                f"; its first axis of {data.shape[0]} looks like the channels of a channel-first array, whose "
                "spatial axes the header does not place"
            )
        raise InputError(
            f"{path}: a segmentation of {n} channels along its last axis that is not one-hot ({what}); save "
            "one label map (the argmax over the channels, thresholded probabilities first) or one mask per "
            "structure (--seg ROLE=PATH)."
        )
    labels = np.argmax(data, axis=3).astype(np.uint8 if n <= 256 else np.uint16)
    note = (
        f"{path.name}: a one-hot segmentation of {n} channels along its last axis (as MONAI writes a "
        f"channel-first output); read as the label map of its channel numbers 0..{n - 1} (channel 0 background)"
    )
    return labels, note


def _raw_header(img: Any, p: Path) -> Any:
    """The header as stored in the file, before nibabel's fixes (it sets a zero pixdim to 1 when loading)."""
    nib = import_nibabel()
    try:
        with nib.openers.ImageOpener(str(p)) as fh:
            return type(img.header).from_fileobj(fh, check=False)
    except Exception:  # nibabel read it once already; its fixed header is the fallback
        return img.header


def _check_pixdim(img: Any, p: Path) -> None:
    """Refuse a zero or non-finite voxel size when pixdim, not the sform, gives the spacing.

    Without an sform (sform_code 0) the spacing comes from pixdim[1:4], through
    the qform or alone. nibabel replaces a zero pixdim by 1 with a logged warning,
    which turns 3 mm slices into 1 mm ones: every volume a third of the truth.
    """
    if "pixdim" not in img.header or int(img.header["sform_code"]) > 0:
        return  # the sform gives the spacing; pixdim is not read (nor a second source)
    raw = _raw_header(img, p)
    zooms = [float(v) for v in raw["pixdim"][1:4]]
    bad = [(axis + 1, v) for axis, v in enumerate(zooms) if not np.isfinite(v) or v == 0.0]
    if bad:
        which = ", ".join(f"pixdim[{axis}] = {v:g}" for axis, v in bad)
        raise GeometryError(
            f"{p}: {which}: a voxel size of zero (no sform gives the spacing instead), so no volume can be "
            "measured; re-save the file with its voxel size (nibabel: img.header.set_zooms) or convert the "
            "series again."
        )


def _open(p: Path, max_voxels: int | None, as_float: bool) -> tuple[Any, tuple[int, ...], int | None]:
    """The file's nibabel image (header read, data not), its 3-D shape and its channels (None, or one-hot ones)."""
    nib = import_nibabel()

    img: Any  # a nibabel spatial image (nib.load is typed as returning the file-based base class)
    try:
        img = nib.load(str(p))
    except FileNotFoundError as exc:
        raise InputError(f"{p}: file not found; check the path.") from exc
    except Exception as exc:
        what = "image" if as_float else "segmentation"
        raise InputError(
            f"{p}: not a readable NIfTI file ({type(exc).__name__}: {str(exc)[:120]}); re-export the {what} as NIfTI."
        ) from exc
    shape = tuple(int(s) for s in img.shape)
    if len(shape) > 3 and all(s == 1 for s in shape[3:]):  # (x, y, z, 1) or ITK's (x, y, z, 1, 1)
        shape = shape[:3]
    channels = None if as_float else _channel_count(shape)
    if len(shape) != 3 and channels is None:
        if not as_float:
            raise InputError(
                f"{p}: expected a 3-D segmentation, got shape {tuple(img.shape)}; save one label map (the argmax "
                "over its channels) or one mask per structure (--seg ROLE=PATH)."
            )
        raise InputError(f"{p}: expected a 3-D image, got shape {tuple(img.shape)}; split 4-D series first.")
    check_voxel_budget(shape, max_voxels, str(p))
    return img, shape, channels


def nifti_grid(path: str | Path, *, max_voxels: int | None = None) -> Volume:
    """The grid of a NIfTI segmentation from its header alone: the data block is not read.

    The grid :func:`read_nifti` gives the file read as a segmentation (``as_float=False``): the same shape
    (the 3 spatial axes of a one-hot file), LPS affine and refusals of the header (unreadable header, not
    3-D, voxel budget, zero pixdim, invalid affine); a truncated or corrupt data block is found by the read.

    Returns
    -------
    Volume
        A pixel-less Volume (:meth:`~netlm_imaging.volume.Volume.header_grid`).
    """
    p = Path(path)
    img, shape, _channels = _open(p, max_voxels, as_float=False)
    _check_pixdim(img, p)
    try:
        return Volume.header_grid(shape[:3], ras_to_lps(img.affine), source=str(p))
    except GeometryError:
        raise
    except ValueError as exc:
        raise InputError(f"{p}: {exc}") from exc


def read_nifti(path: str | Path, *, max_voxels: int | None = None, as_float: bool = True) -> Volume:
    """Read a .nii / .nii.gz file into a :class:`Volume` with an LPS affine.

    The affine is nibabel's best affine: the sform when its code is set, else
    the qform, else pixdim scaling (then ``meta["geometry_known"]`` is False).

    Parameters
    ----------
    path : str or Path
        NIfTI file.
    max_voxels : int, optional
        Refuse larger declared sizes before reading the data.
    as_float : bool
        Images: float32, except integer data without scaling (scl_slope 1,
        scl_inter 0), which keeps its exact stored type. False keeps the data
        as nibabel returns it (label maps).

    Returns
    -------
    Volume

    Raises
    ------
    InputError
        If the file cannot be parsed as NIfTI, is not 3-D, or holds no data.
    """
    p = Path(path)
    img, shape, channels = _open(p, max_voxels, as_float)
    hdr = img.header
    sform_code = int(hdr["sform_code"]) if "sform_code" in hdr else 0
    qform_code = int(hdr["qform_code"]) if "qform_code" in hdr else 0
    warnings: list[str] = []
    if sform_code > 0 and qform_code > 0:
        sform = hdr.get_sform()
        qform = hdr.get_qform()
        if not np.allclose(sform, qform, atol=QFORM_SFORM_TOLERANCE):
            warnings.append(f"{p.name}: sform and qform disagree; the sform (code {sform_code}) was used")
    _check_pixdim(img, p)
    scaling = _scaling(img)
    if scaling is not None and not as_float:
        warnings.append(
            f"{p.name}: its header scales the stored values (scl_slope {scaling[0]:g}, scl_inter {scaling[1]:g}); "
            "the labels are the scaled values, as nibabel and SimpleITK read them"
        )
    try:
        data = _fast_gzip_data(img)
        if data is None:
            data = np.asanyarray(img.dataobj)
        if channels is not None:
            data, note = one_hot_labels(np.asarray(data).reshape((*shape[:3], channels), order="A"), p)
            warnings.append(note)
            shape = shape[:3]
        if data.ndim > 3:
            data = data.reshape(shape, order="A")
        # integer data without scaling stays in its stored type (exact, and half the memory of float32
        # for int16 CT); scaled or float data becomes float32
        if as_float and not (data.dtype.kind in "iu" and data.dtype.itemsize <= 4):
            data = np.asarray(data, dtype=np.float32)
    except InputError:
        raise
    except MemoryError:
        raise ResourceLimitError(
            f"{p}: out of memory reading its {'x'.join(map(str, shape))} voxels; lower --max-voxels to refuse "
            "such files up front, or use a machine with more memory."
        ) from None
    except Exception as exc:
        raise InputError(
            f"{p}: image data cannot be read ({type(exc).__name__}: {str(exc)[:120]}); truncated or corrupt file."
        ) from exc
    meta = {
        "format": "nifti",
        "geometry_known": bool(sform_code > 0 or qform_code > 0),
        "warnings": warnings,
        "files": [str(p)],
        "scaling": None if scaling is None else list(scaling),
    }
    try:
        return Volume(data, ras_to_lps(img.affine), source=str(p), meta=meta)
    except GeometryError:
        raise
    except ValueError as exc:
        raise InputError(f"{p}: {exc}") from exc

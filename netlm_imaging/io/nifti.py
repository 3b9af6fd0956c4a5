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

__all__ = ["read_nifti"]

logger = logging.getLogger(__name__)

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
    nib = import_nibabel()

    p = Path(path)
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
    if len(shape) != 3:
        raise InputError(f"{p}: expected a 3-D image, got shape {tuple(img.shape)}; split 4-D series first.")
    check_voxel_budget(shape, max_voxels, str(p))
    hdr = img.header
    sform_code = int(hdr["sform_code"]) if "sform_code" in hdr else 0
    qform_code = int(hdr["qform_code"]) if "qform_code" in hdr else 0
    warnings: list[str] = []
    if sform_code > 0 and qform_code > 0:
        sform = hdr.get_sform()
        qform = hdr.get_qform()
        if not np.allclose(sform, qform, atol=QFORM_SFORM_TOLERANCE):
            warnings.append(f"{p.name}: sform and qform disagree; the sform (code {sform_code}) was used")
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
        if data.ndim > 3:
            data = data.reshape(shape, order="A")
        # integer data without scaling stays in its stored type (exact, and half the memory of float32
        # for int16 CT); scaled or float data becomes float32
        if as_float and not (data.dtype.kind in "iu" and data.dtype.itemsize <= 4):
            data = np.asarray(data, dtype=np.float32)
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

"""ITK formats (NRRD, .seg.nrrd, MHA/MHD) via SimpleITK.

SimpleITK images are LPS already; the Volume <-> SimpleITK conversion (array
order) is :mod:`netlm_imaging.geometry`'s, used through ``Volume.to_sitk`` /
``Volume.from_sitk``.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from ..geometry import array_from_sitk, sitk_affine
from ..volume import Volume
from .budget import check_voxel_budget

__all__ = ["itk_grid", "read_itk", "read_itk_segments"]

logger = logging.getLogger(__name__)


def _reader(p: Path, max_voxels: int | None) -> Any:
    import SimpleITK as sitk

    if not p.exists():
        raise InputError(f"{p}: file not found; check the path.")
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(p))
    try:
        reader.ReadImageInformation()
    except RuntimeError as exc:
        raise InputError(
            f"{p}: not a readable NRRD/MHA/MHD image ({str(exc).strip().splitlines()[-1][:120]})."
        ) from exc
    size = tuple(int(s) for s in reader.GetSize())
    if len(size) != 3:
        raise InputError(f"{p}: expected a 3-D image, got {len(size)}-D size {size}.")
    check_voxel_budget((*size, max(1, int(reader.GetNumberOfComponents()))), max_voxels, str(p))
    return reader


#: Header fields that place an image in patient space (NRRD: PS of the teem format; MetaImage: its keys).
_NRRD_GEOMETRY = ("space directions", "space origin")
_META_GEOMETRY = ("offset", "origin", "position", "transformmatrix", "orientation", "rotation")


def _geometry_declared(p: Path) -> bool:
    """Whether a NRRD / MetaImage header places the image in space; False for a bare ``spacings`` NRRD.

    SimpleITK gives such an image origin 0 and identity directions, a placement nobody declared: the
    file's masks are then treated like a NIfTI without sform / qform (assumed on the image grid when
    the shapes agree, with a warning; refused otherwise).
    """
    name = p.name.lower()
    if not name.endswith((".nrrd", ".nhdr", ".mha", ".mhd")):
        return True
    try:
        with p.open("rb") as f:
            head = f.read(65536)
    except OSError:
        return True
    if name.endswith((".nrrd", ".nhdr")):
        text = head.split(b"\n\n", 1)[0].decode("latin-1").lower()
        keys = {line.split(":", 1)[0].strip() for line in text.splitlines() if ":" in line}
        return any(k in keys for k in _NRRD_GEOMETRY)
    text = head.split(b"ElementDataFile", 1)[0].decode("latin-1").lower()
    keys = {line.split("=", 1)[0].strip() for line in text.splitlines() if "=" in line}
    return any(k in keys for k in _META_GEOMETRY)


def itk_grid(path: str | Path, *, max_voxels: int | None = None) -> Volume:
    """The grid of a NRRD / MHA / MHD file from its header alone (SimpleITK's ReadImageInformation).

    The grid :func:`read_itk` and :func:`read_itk_segments` give (shape, LPS affine), and the refusals
    of the header (unreadable, not 3-D, voxel budget, invalid affine); the pixel data is not read.

    Returns
    -------
    Volume
        A pixel-less Volume (:meth:`~netlm_imaging.volume.Volume.header_grid`).
    """
    p = Path(path)
    reader = _reader(p, max_voxels)
    return Volume.header_grid(tuple(int(s) for s in reader.GetSize()), sitk_affine(reader), source=str(p))


def read_itk(path: str | Path, *, max_voxels: int | None = None, as_float: bool = True) -> Volume:
    """Read a NRRD / MHA / MHD scalar image into a Volume (LPS).

    Parameters
    ----------
    path : str or Path
        Image file.
    max_voxels : int, optional
        Declared-size limit checked before the pixel data is read.
    as_float : bool
        Cast to float32 (images) or keep the stored type (label maps).

    Returns
    -------
    Volume
    """
    p = Path(path)
    reader = _reader(p, max_voxels)
    try:
        img = reader.Execute()
    except RuntimeError as exc:
        raise InputError(f"{p}: pixel data cannot be read; the file is truncated or corrupt.") from exc
    if img.GetNumberOfComponentsPerPixel() != 1:
        raise InputError(f"{p}: has {img.GetNumberOfComponentsPerPixel()} components per voxel; expected one.")
    meta = {"format": "itk", "geometry_known": _geometry_declared(p), "files": [str(p)]}
    vol = Volume.from_sitk(img, source=str(p), meta=meta)
    if as_float:
        vol = vol.with_array(vol.array.astype(np.float32))
    return vol


_SEG_KEY = re.compile(r"^Segment(\d+)_(\w+)$")
#: MITK's multilabel segmentation NRRD: its label groups (one layer each) and their labels, as JSON.
_MITK_GROUPS = "org.mitk.multilabel.segmentation.labelgroups"
#: Slicer's default name of a new segment (``Segment_1``, ``Segment_2`` ...), the same text as its default ID.
_SLICER_DEFAULT_NAME = re.compile(r"Segment_\d+")


def _named(info: dict[str, str]) -> bool:
    """Whether a segment's ``Name`` is a name someone gave it, not Slicer's default ``Segment_N``.

    Slicer names a new segment ``Segment_N`` and marks it ``SegmentN_NameAutoGenerated:=1`` (files before
    Slicer 4.11 have no such key; their default name equals the segment's ``ID``). Such a name says nothing
    about the structure: read as a name it matched the Couinaud pattern of segment N, so a segment coded
    Liver named ``Segment_1`` was taken as Couinaud segment I and the study had no liver. Its terminology
    code decides instead, or the user's ``--labels``.
    """
    name = info.get("Name", "").strip()
    if not name:
        return False
    if not _SLICER_DEFAULT_NAME.fullmatch(name):
        return True
    auto = info.get("NameAutoGenerated")
    if auto is not None:
        return auto.strip() != "1"
    return info.get("ID", "").strip() != name


def _mitk_segments(p: Path, text: str, layers: int) -> dict[int, dict[str, str]]:
    """The labels of a MITK multilabel NRRD (``[{"labels": [{"name": ..., "value": ...}]}, ...]``, a group per layer).

    Its values are the order the labels were made in, not LiTS's: read as a plain label map, a tumour
    drawn first (value 1) was the liver, and the groups after the first were dropped.
    """
    try:
        groups = json.loads(text)
        found: dict[int, dict[str, str]] = {}
        for layer, group in enumerate(groups):
            for label in group.get("labels") or []:
                value = int(label.get("value", 1))
                if value != 0:  # MITK's "unlabeled" value
                    found[len(found)] = {
                        "Name": str(label.get("name", "")),
                        "LabelValue": str(value),
                        "Layer": str(layer),
                    }
    except (ValueError, TypeError, AttributeError) as exc:
        raise InputError(
            f"{p}: its MITK label groups ({_MITK_GROUPS}) cannot be read ({exc}); re-save it in MITK."
        ) from exc
    if len(groups) != layers:
        raise InputError(f"{p}: its MITK header declares {len(groups)} label groups but the file has {layers} layers.")
    return found


def read_itk_segments(path: str | Path, *, max_voxels: int | None = None) -> tuple[Volume, list[dict[str, Any]]]:
    """Read a Slicer ``.seg.nrrd`` (possibly layered) and its segment table.

    Returns
    -------
    (Volume, list of dict)
        The label array (for layered files, shape ``(i, j, k, layers)`` is
        returned as separate per-segment boolean arrays in the dicts under
        ``"mask"``) and one dict per segment with ``name``, ``label_value``,
        ``layer`` and ``mask`` (bool array on the Volume grid).
        An empty list means the file has no Slicer segment metadata.
    """
    import SimpleITK as sitk

    p = Path(path)
    reader = _reader(p, max_voxels)
    keys = {k: reader.GetMetaData(k) for k in reader.GetMetaDataKeys()}
    segs: dict[int, dict[str, str]] = {}
    for k, v in keys.items():
        m = _SEG_KEY.match(k)
        if m:
            segs.setdefault(int(m.group(1)), {})[m.group(2)] = v
    img = reader.Execute()
    ncomp = img.GetNumberOfComponentsPerPixel()
    arr = array_from_sitk(img)
    arr = arr if ncomp > 1 else arr[..., None]
    if not segs and _MITK_GROUPS in keys:
        segs = _mitk_segments(p, keys[_MITK_GROUPS], arr.shape[3])
    base = img if ncomp == 1 else sitk.VectorIndexSelectionCast(img, 0)
    meta = {"format": "itk", "geometry_known": _geometry_declared(p), "files": [str(p)]}
    grid = Volume.from_sitk(base, source=str(p), meta=meta)
    out: list[dict[str, Any]] = []
    for idx in sorted(segs):
        info = segs[idx]
        try:
            # as Slicer reads them: a segment without a Layer has the layer of its index, without a
            # LabelValue the value 1 (Slicer before 4.11 and slicerio-style writers store one segment
            # per layer, 0/1); a single-layer file without the keys keeps the values 1, 2, ... in order
            own_layer = "Layer" not in info and arr.shape[3] > 1
            value = int(info.get("LabelValue", 1 if own_layer else idx + 1))
            layer = int(info.get("Layer", idx if own_layer else 0))
        except ValueError as exc:
            raise InputError(f"{p}: segment {idx} has a non-integer LabelValue/Layer; the file is corrupt.") from exc
        if layer >= arr.shape[3]:
            raise InputError(f"{p}: segment {idx} refers to layer {layer} but the file has {arr.shape[3]} layers.")
        out.append(
            {
                "name": info.get("Name", "").strip() or f"Segment_{idx}",
                "named": _named(info),
                "tags": info.get("Tags", ""),
                "label_value": value,
                "layer": layer,
                "mask": np.ascontiguousarray(arr[..., layer] == value),
            }
        )
    if not out and arr.shape[3] > 1:
        # components without a segment table: a one-hot map (MONAI's ITKWriter writes a channel-first output's
        # channels as vector components) is the label map of its channel numbers; component 0 alone was its
        # background, read as the liver
        from .nifti import one_hot_labels

        labels, note = one_hot_labels(arr, p)
        grid = grid.with_array(labels, meta={**grid.meta, "warnings": [note]})
    elif not out:
        grid = grid.with_array(np.ascontiguousarray(arr[..., 0]))
    return grid, out

"""Gadoxetic-acid MR phantoms with known signal per region, for tests.

Regions are boxes in index space on an oblique grid (never an identity affine),
so every truth is box arithmetic done in the test: voxel counts are products of
box sides, signals are the constants written here.

Layout of ``array[i, j, k]`` (shape ``SHAPE``):

* liver: ``i in [4, 28)``, ``j in [4, 36)``, ``k in [2, 22)``, split into the eight
  Couinaud segments as a 2 x 2 x 2 block pattern (segment ``1 + a + 2 b + 4 c`` for
  the halves ``a`` along i, ``b`` along j, ``c`` along k);
* spleen: ``i in [34, 44)``, ``j in [10, 30)``, ``k in [6, 18)``;
* lesions: two boxes inside the liver, ``LESION_BOXES``;
* background elsewhere.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from conftest import oblique_affine
from phantoms import write_nifti

SHAPE = (48, 40, 24)
SPACING = (1.5, 1.25, 3.0)
AFFINE = oblique_affine(spacing=SPACING, angles_deg=(6.0, -4.0, 12.0), origin=(-60.0, -20.0, -30.0))

LIVER_BOX = ((4, 28), (4, 36), (2, 22))
SPLEEN_BOX = ((34, 44), (10, 30), (6, 18))
#: Lesion boxes (inside segments 1 and 8 of the block pattern).
LESION_BOXES = (((6, 11), (6, 12), (4, 9)), ((19, 25), (22, 30), (14, 20)))


def box(b: Sequence[tuple[int, int]]) -> tuple[slice, slice, slice]:
    """Index slices of a box."""
    return tuple(slice(lo, hi) for lo, hi in b)  # type: ignore[return-value]


def box_voxels(b: Sequence[tuple[int, int]]) -> int:
    """Voxel count of a box (the product of its sides)."""
    return int(np.prod([hi - lo for lo, hi in b]))


def segment_boxes() -> dict[int, tuple[tuple[int, int], ...]]:
    """The eight Couinaud blocks of the liver box."""
    (i0, i1), (j0, j1), (k0, k1) = LIVER_BOX
    im, jm, km = (i0 + i1) // 2, (j0 + j1) // 2, (k0 + k1) // 2
    out = {}
    for a, (ia, ib) in enumerate(((i0, im), (im, i1))):
        for b, (ja, jb) in enumerate(((j0, jm), (jm, j1))):
            for c, (ka, kb) in enumerate(((k0, km), (km, k1))):
                out[1 + a + 2 * b + 4 * c] = ((ia, ib), (ja, jb), (ka, kb))
    return out


def lesion_segment(n: int) -> int:
    """The Couinaud block a lesion box lies in."""
    lb = LESION_BOXES[n]
    for seg, sb in segment_boxes().items():
        if all(s[0] <= lo and hi <= s[1] for (lo, hi), s in zip(lb, sb)):
            return seg
    raise AssertionError("lesion box crosses segments")


def signal_image(
    liver: float | Mapping[int, float], spleen: float, lesion: float, background: float = 10.0
) -> np.ndarray:
    """Piecewise-constant signal: one value per region (per segment when ``liver`` is a mapping)."""
    arr = np.full(SHAPE, background, dtype=np.float32)
    for seg, sb in segment_boxes().items():
        arr[box(sb)] = liver[seg] if isinstance(liver, Mapping) else liver
    arr[box(SPLEEN_BOX)] = spleen
    for lb in LESION_BOXES:
        arr[box(lb)] = lesion
    return arr


def label_map() -> np.ndarray:
    """1 liver, 2 lesion, 3 spleen (``--labels liver=1,lesion=2,spleen=3``)."""
    lab = np.zeros(SHAPE, dtype=np.uint8)
    lab[box(LIVER_BOX)] = 1
    lab[box(SPLEEN_BOX)] = 3
    for lb in LESION_BOXES:
        lab[box(lb)] = 2
    return lab


def couinaud_map() -> np.ndarray:
    """Values 1..8 over the liver box."""
    seg = np.zeros(SHAPE, dtype=np.uint8)
    for n, sb in segment_boxes().items():
        seg[box(sb)] = n
    return seg


def linear_bias(strength: float = 0.4) -> np.ndarray:
    """A multiplicative field ramping from ``1 - strength/2`` to ``1 + strength/2`` along i."""
    ramp = 1.0 + strength * (np.arange(SHAPE[0]) / (SHAPE[0] - 1) - 0.5)
    return np.broadcast_to(ramp[:, None, None], SHAPE).astype(np.float32)


MR_HEADERS: dict[str, Any] = {
    "ContrastBolusAgent": "Gd-EOB-DTPA (Primovist)",
    "ContrastBolusRoute": "IV",
    "ContrastBolusVolume": "7.5",
    "ScanningSequence": "GR",
    "SequenceVariant": "SP\\SK",
    "ScanOptions": "FS",
    "MRAcquisitionType": "3D",
    "FlipAngle": "10",
    "RepetitionTime": "3.9",
    "EchoTime": "1.8",
    "MagneticFieldStrength": "1.5",
}


def mr_headers(start: str | None, acquisition: str | None, **more: Any) -> dict[str, Any]:
    """Header keywords for a gadoxetic series injected at ``start`` and acquired at ``acquisition`` (TM)."""
    tags = dict(MR_HEADERS)
    if start is not None:
        tags["ContrastBolusStartTime"] = start
    if acquisition is not None:
        tags["AcquisitionTime"] = acquisition
    tags.update(more)
    return tags


def write_nifti_study(
    folder: Path,
    image: np.ndarray,
    *,
    sidecar: Mapping[str, Any] | None = None,
    pre: np.ndarray | None = None,
    pre_affine: np.ndarray | None = None,
) -> dict[str, Path]:
    """``mr.nii.gz`` (+ ``mr.json`` sidecar), ``seg.nii.gz``, ``couinaud.nii.gz`` and optional ``pre.nii.gz``."""
    folder.mkdir(parents=True, exist_ok=True)
    out = {
        "image": write_nifti(folder / "mr.nii.gz", image, AFFINE),
        "seg": write_nifti(folder / "seg.nii.gz", label_map(), AFFINE),
        "segments": write_nifti(folder / "couinaud.nii.gz", couinaud_map(), AFFINE),
    }
    if sidecar is not None:
        (folder / "mr.json").write_text(json.dumps(dict(sidecar)), encoding="utf-8")
    if pre is not None:
        out["pre"] = write_nifti(folder / "pre.nii.gz", pre, AFFINE if pre_affine is None else pre_affine)
    return out

"""Studies written as NIfTI files and analysed by ``netlm analyze``, for the clinical-rule boundary tests.

A study is a liver mask, a lesion mask (each connected component one lesion), an
optional Couinaud map, an optional clinical sidecar and an optional user rules
file, on the oblique anisotropic grid of ``surgical_phantoms.SlabLiver``. The
voxel volume the tests use as truth is ``|det|`` of the affine as NIfTI stores it
(float32), read back with nibabel, not from the code under test.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
from phantoms import write_nifti

from netlm_imaging.cli import main

__all__ = ["fill", "run_analyze", "stored_voxel_ml"]


def fill(shape: tuple[int, ...], box: tuple[slice, ...], n: int) -> np.ndarray:
    """Mask of the first ``n`` voxels of ``box`` in C order: one face-connected lesion of exactly ``n`` voxels."""
    mask = np.zeros(shape, dtype=bool)
    idx = np.argwhere(np.ones(tuple(s.stop - s.start for s in box), dtype=bool))[:n]
    if len(idx) != n:
        raise ValueError(f"box too small for {n} voxels")
    idx += np.array([s.start for s in box])
    mask[tuple(idx.T)] = True
    return mask


def stored_voxel_ml(d: Path, affine: np.ndarray) -> float:
    """Voxel volume (mL) of ``affine`` as a NIfTI file stores it (float32), read back with nibabel."""
    d.mkdir(parents=True, exist_ok=True)
    path = write_nifti(d / "grid.nii.gz", np.zeros((2, 2, 2), dtype=np.uint8), affine)
    return abs(float(np.linalg.det(nib.load(str(path)).affine[:3, :3]))) / 1000.0


def run_analyze(
    d: Path,
    affine: np.ndarray,
    liver: np.ndarray,
    lesions: np.ndarray,
    *,
    segments: np.ndarray | None = None,
    clinical: Mapping[str, Any] | None = None,
    rules: str | None = None,
    args: Sequence[str] = (),
    label_map: np.ndarray | None = None,
) -> dict[str, Any]:
    """Write the study under ``d``, run ``netlm analyze`` (exit 0 asserted) and return report.json.

    ``label_map`` replaces the liver=1 / lesion=2 map built from the masks (then pass ``--labels``
    in ``args``).
    """
    d.mkdir(parents=True, exist_ok=True)
    labels = label_map if label_map is not None else np.where(lesions, 2, np.where(liver, 1, 0)).astype(np.uint8)
    write_nifti(d / "ct.nii.gz", np.where(liver | lesions, 60, -100).astype(np.int16), affine)
    write_nifti(d / "seg.nii.gz", labels, affine)
    argv = ["analyze", "--image", str(d / "ct.nii.gz"), "--seg", str(d / "seg.nii.gz"), "--modality", "CT"]
    if segments is not None:
        write_nifti(d / "couinaud.nii.gz", segments.astype(np.uint8), affine)
        argv += ["--seg", f"segments={d / 'couinaud.nii.gz'}"]
    if clinical is not None:
        (d / "clinical.json").write_text(json.dumps(dict(clinical)))
        argv += ["--clinical", str(d / "clinical.json")]
    if rules is not None:
        (d / "rules.toml").write_text(rules)
        argv += ["--rules", str(d / "rules.toml")]
    argv += [*args, "--out", str(d / "out"), "--quiet"]
    assert main(argv) == 0
    return json.loads((d / "out" / "report.json").read_text())

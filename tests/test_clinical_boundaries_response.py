"""clinical_rules.md section 8 (RECIST 1.1 response) at its boundaries, through ``netlm compare``.

One intrahepatic target, a one-voxel-wide line of n voxels along the first axis of a 0.5 mm grid
rotated in the axial plane, so its edge-to-edge longest diameter is n x 0.5 mm (counted here).
Baseline and follow-up are NIfTI studies on that grid. The rule: PR is a decrease of the target sum
of >= 30 % from baseline; PD an increase of >= 20 % over the nadir AND >= 5 mm absolute; CR when the
targets disappeared; else SD. A target still present but below 5 mm counts 5 mm.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from phantoms import write_nifti

from netlm_imaging.cli import main

SHAPE = (120, 60, 6)


def _affine(angle_deg: float) -> np.ndarray:
    c, s = np.cos(np.radians(angle_deg)), np.sin(np.radians(angle_deg))
    a = np.eye(4)
    a[:3, :3] = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]]) @ np.diag([0.5, 0.5, 2.5])
    a[:3, 3] = (-30.0, 20.0, 100.0)
    return a


@pytest.mark.parametrize("angle_deg", [30.0, 12.0])
@pytest.mark.parametrize(
    ("base_n", "fu_n", "category"),
    [
        (50, 34, "PR"),  # 25 -> 17 mm: -32 %
        (50, 35, "PR"),  # 25 -> 17.5 mm: -30 % exactly
        (50, 36, "SD"),  # -28 %
        (50, 59, "SD"),  # 25 -> 29.5 mm: +18 %
        (50, 60, "PD"),  # 25 -> 30 mm: +20 % and +5 mm exactly
        (50, 61, "PD"),  # +22 %
        (40, 48, "SD"),  # 20 -> 24 mm: +20 % but +4 mm
        (40, 49, "SD"),  # +22.5 %, +4.5 mm
        (40, 50, "PD"),  # 20 -> 25 mm: +25 %, +5 mm exactly
        (50, 9, "PR"),  # 4.5 mm: present but too small to measure, counted as 5 mm (EORTC clarification)
        (50, 11, "PR"),  # 5.5 mm: measured
        (50, 0, "CR"),  # the target disappeared
    ],
)
def test_recist_response_at_30_percent_20_percent_and_5_mm(tmp_path, base_n, fu_n, category, angle_deg):
    aff = _affine(angle_deg)
    for name, n in (("b", base_n), ("f", fu_n)):
        labels = np.ones(SHAPE, dtype=np.uint8)
        labels[10 : 10 + n, 30, 3] = 2  # n = 0: no lesion left
        write_nifti(tmp_path / f"{name}_ct.nii.gz", np.full(SHAPE, 60, np.int16), aff)
        write_nifti(tmp_path / f"{name}_seg.nii.gz", labels, aff)
    argv = ["compare", str(tmp_path / "b_ct.nii.gz"), str(tmp_path / "f_ct.nii.gz")]
    argv += ["--baseline-seg", str(tmp_path / "b_seg.nii.gz"), "--followup-seg", str(tmp_path / "f_seg.nii.gz")]
    assert main([*argv, "--out", str(tmp_path / "out")]) == 0
    r = json.loads((tmp_path / "out" / "comparison.json").read_text())["recist_1_1"]
    assert r["baseline_sum_mm"] == pytest.approx(base_n * 0.5, abs=1e-4)
    assert r["followup_sum_mm"] == pytest.approx(max(fu_n * 0.5, 5.0) if fu_n else 0.0, abs=1e-4)
    assert r["new_lesions"] == 0
    assert r["category"] == category

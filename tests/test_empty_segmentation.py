"""Empty segmentations: an all-zero map is refused in one line that says it is empty; an empty lesion mask is not.

An nnU-Net or TotalSegmentator run that found nothing writes an all-zero label map. With no
liver there is no burden to measure, so the study is refused (exit 3), and the line says the map
is empty rather than asking to check label numbers. A lesion mask that is empty beside a liver
mask is a valid finding: 0 lesions, 0 mL, the liver's volume unchanged (counted here by hand).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np

from tests.conftest import analyze_json, oblique_affine

SHAPE = (24, 20, 10)
AFFINE = oblique_affine(spacing=(0.9, 1.1, 2.5), angles_deg=(8.0, -5.0, 12.0), origin=(-30.0, 15.0, 200.0))


def _write(path: Path, arr: np.ndarray) -> None:
    nib.save(nib.Nifti1Image(arr, AFFINE), str(path))


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "netlm_imaging.cli", *args], capture_output=True, text=True)


def _study(tmp_path: Path) -> Path:
    study = tmp_path / "study"
    study.mkdir()
    _write(study / "ct.nii.gz", np.full(SHAPE, 50, np.int16))
    _write(study / "seg.nii.gz", np.zeros(SHAPE, np.uint8))
    return study


def _refusal(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 3, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


def test_an_all_zero_map_is_refused_as_empty(tmp_path):
    study = _study(tmp_path)
    line = _refusal(_run("analyze", str(study), "--out", str(tmp_path / "out")))
    assert "seg.nii.gz" in line
    assert "no voxel with a liver or lesion label" in line
    assert not (tmp_path / "out" / "report.json").exists()


def test_an_all_zero_map_with_labels_says_it_is_empty_not_wrong_numbers(tmp_path):
    study = _study(tmp_path)
    line = _refusal(_run("analyze", str(study), "--out", str(tmp_path / "out"), "--labels", "liver=1,lesion=2"))
    assert "seg.nii.gz" in line
    assert "the map is empty (every voxel is 0)" in line
    assert "check the label numbers" not in line


def test_an_empty_lesion_mask_beside_a_liver_is_zero_lesions(tmp_path):
    study = tmp_path / "study"
    study.mkdir()
    liver = np.zeros(SHAPE, np.uint8)
    liver[3:20, 4:17, 2:8] = 1
    _write(study / "ct.nii.gz", np.full(SHAPE, 50, np.int16))
    _write(study / "liver.nii.gz", liver)
    _write(study / "lesions.nii.gz", np.zeros(SHAPE, np.uint8))
    report = analyze_json(str(study), "--out", str(tmp_path / "out"))
    voxel_ml = abs(np.linalg.det(AFFINE[:3, :3])) / 1000.0
    assert abs(report["liver"]["volume_ml"] - 17 * 13 * 6 * voxel_ml) < 1e-5
    assert report["tumor"]["lesion_count"] == 0
    assert report["tumor"]["intrahepatic_volume_ml"] == 0.0
    assert report["involvement_percent"] == 0.0
    assert report["lesions"] == []

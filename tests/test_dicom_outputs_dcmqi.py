"""The SR and SEG `netlm analyze --sr` writes, read back by dcmqi (PyPI ``dcmqi``) to the phantom's numbers.

dcmqi is what 3D Slicer's QuantitativeReporting uses to load DICOM SEG and TID 1500 SR. Its
``segimage2itkimage`` turns each segment of our derived SEG into an image; its ``tid1500reader``
turns the SR into JSON measurements. Phantoms:

- tests/test_sr.py's CT + SEG on an oblique, anisotropic grid (liver box without two lesion
  spheres). Truth from voxel counts and the affine, computed here: each dcmqi segment holds the
  same voxels at the same physical (LPS) positions (within 0.01 voxel) as the phantom's total liver / sphere, and every
  volume and the involvement dcmqi reads from the SR are the truth (to the SR's rounding).
- tests/test_pet_integration.py's PET/CT (lesion activity set to SUVbw 20 by the QIBA formula):
  the SUVbw maximum dcmqi reads is 20.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from netlm_imaging.cli import main
from tests.dicom_tools import tid1500_measurements
from tests.test_pet_integration import petct  # noqa: F401 - fixture
from tests.test_sr import AFFINE, VOXEL_ML, phantom_masks, write_phantom_study


def _segimage2itkimage(seg: Path, workdir: Path) -> tuple[dict, dict[int, Path]]:
    exe = shutil.which("segimage2itkimage")
    if exe is None:
        pytest.skip("dcmqi's segimage2itkimage not installed (pip install dcmqi)")
    workdir.mkdir(parents=True, exist_ok=True)
    cmd = [exe, "--inputDICOM", str(seg), "--outputDirectory", str(workdir), "--outputType", "nifti"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    assert r.returncode == 0, r.stdout + r.stderr
    meta = json.loads((workdir / "meta.json").read_text())
    return meta, {int(p.name.split(".")[0]): p for p in workdir.glob("*.nii.gz")}


def _phantom_indices(path: Path) -> set[tuple[int, int, int]]:
    """The non-zero voxels of an image written by dcmqi, placed by SimpleITK's geometry (LPS) and
    expressed as voxel indices of the phantom's affine; each lands within 0.01 voxel of one."""
    import SimpleITK as sitk

    img = sitk.ReadImage(str(path))
    kji = np.argwhere(sitk.GetArrayFromImage(img) != 0)
    direction = np.array(img.GetDirection()).reshape(3, 3)
    lps = np.asarray(img.GetOrigin()) + (kji[:, ::-1] * np.asarray(img.GetSpacing())) @ direction.T
    ijk = (lps - AFFINE[:3, 3]) @ np.linalg.inv(AFFINE[:3, :3]).T
    assert np.abs(ijk - np.round(ijk)).max() < 0.01
    return {tuple(int(x) for x in v) for v in np.round(ijk)}


def _indices(mask: np.ndarray) -> set[tuple[int, int, int]]:
    return {tuple(int(x) for x in v) for v in np.argwhere(mask)}


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> dict:
    base = tmp_path_factory.mktemp("dcmqi_outputs")
    d = write_phantom_study(base / "study", seed=41)
    out = base / "out"
    assert main(["analyze", "--image", str(d["ct"]), "--seg", str(d["seg"]), "--sr", "--out", str(out), "--quiet"]) == 0
    d.update(out=out, base=base)
    return d


def test_dcmqi_reads_each_derived_segment_as_the_phantoms_voxels_in_place(written: dict) -> None:
    liver, spheres = phantom_masks()
    total = liver | np.any(spheres, axis=0)
    meta, images = _segimage2itkimage(written["out"] / "derived_seg.dcm", written["base"] / "dcmqi_seg")
    labels = {int(a["labelID"]): str(a["SegmentLabel"]) for (a,) in meta["segmentAttributes"]}
    assert sorted(labels.values()) == ["Lesion 1 (intrahepatic)", "Lesion 2 (intrahepatic)", "Liver"]
    by_label = {labels[n]: _phantom_indices(p) for n, p in images.items()}
    assert by_label["Liver"] == _indices(total)  # the total liver the report measured
    lesions = [v for k, v in by_label.items() if k.startswith("Lesion")]
    assert sorted(map(len, lesions)) == sorted(int(s.sum()) for s in spheres)
    assert {frozenset(x) for x in lesions} == {frozenset(_indices(s)) for s in spheres}


def _value(group: dict, meaning: str) -> float:
    (item,) = [m for m in group["measurementItems"] if m["quantity"]["CodeMeaning"] == meaning]
    return float(item["value"])


def test_dcmqi_reads_the_sr_volumes_and_involvement_of_the_phantom(written: dict) -> None:
    liver, spheres = phantom_masks()
    total = int((liver | np.any(spheres, axis=0)).sum())
    tumour = int(np.any(spheres, axis=0).sum())
    groups = {
        g["TrackingIdentifier"]: g for g in tid1500_measurements(written["out"] / "report_sr.dcm", written["base"])
    }
    assert _value(groups["Total liver"], "Volume") == pytest.approx(total * VOXEL_ML, abs=1e-3)
    assert _value(groups["Intrahepatic tumour"], "Volume") == pytest.approx(tumour * VOXEL_ML, abs=1e-3)
    assert _value(groups["Intrahepatic tumour"], "Hepatic tumour involvement") == pytest.approx(
        100.0 * tumour / total, abs=1e-3
    )
    lesion_volumes = sorted(_value(g, "Volume") for t, g in groups.items() if t.startswith("Lesion "))
    assert lesion_volumes == pytest.approx(sorted(int(s.sum()) * VOXEL_ML for s in spheres), abs=1e-3)


def test_dcmqi_reads_the_pet_suv_of_the_phantom(petct, tmp_path: Path) -> None:  # noqa: F811
    out = tmp_path / "out"
    assert main(["analyze", str(petct), "--sr", "--out", str(out), "--quiet"]) == 0
    groups = tid1500_measurements(out / "report_sr.dcm", tmp_path)
    (lesion,) = [g for g in groups if g["TrackingIdentifier"].startswith("Lesion ")]
    suv_max = [
        float(m["value"])
        for m in lesion["measurementItems"]
        if m["quantity"]["CodeValue"] == "126401" and m.get("derivationModifier", {}).get("CodeValue") == "56851009"
    ]
    assert suv_max == [pytest.approx(20.0, rel=2e-3)]
    assert all(m["units"]["CodeValue"] == "{SUVbw}g/ml" for m in lesion["measurementItems"] if "SUV" in str(m))

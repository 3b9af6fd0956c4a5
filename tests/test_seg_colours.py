"""The derived SEG recommends a display colour per segment, so viewers tell the lesions from the liver.

Without RecommendedDisplayCIELabValue, dcmqi (3D Slicer) gives every segment the same colour
(128, 174, 128) and the lesions vanish inside the liver. Independent checks: highdicom's sRGB -> CIELab
conversion for the stored triplets, and dcmqi's ``segimage2itkimage`` reading the colours back as sRGB.
Phantom: tests/test_sr.py's CT + SEG (liver box, two lesion spheres).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import highdicom as hd
import pydicom
import pytest

from netlm_imaging.cli import main
from netlm_imaging.report import dicom_seg_out
from tests.test_sr import write_phantom_study

LIVER_RGB = (221, 130, 101)  # 3D Slicer's liver colour


def test_the_stored_cielab_triplets_are_highdicoms_conversion_of_the_srgb_colours() -> None:
    table = [*dicom_seg_out._ORGAN_COLOURS.values(), *dicom_seg_out._LESION_COLOURS]
    for rgb, lab in table:
        assert hd.color.CIELabColor.from_rgb(*rgb).value == lab, rgb


def test_lesion_colours_cycle_and_differ_from_the_organs() -> None:
    roles = ["liver", *["lesion"] * 8, "spleen"]
    rgbs = [rgb for rgb, _ in dicom_seg_out.display_colours(roles)]
    assert rgbs[0] == LIVER_RGB
    lesions = rgbs[1:9]
    assert len(set(lesions[:6])) == 6
    assert lesions[6:] == lesions[:2]  # the 7th lesion takes the 1st colour again
    assert not {rgbs[0], rgbs[-1]} & set(lesions)


@pytest.fixture(scope="module")
def derived(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("seg_colours")
    d = write_phantom_study(base / "study", seed=71)
    out = base / "out"
    assert (
        main(["analyze", "--image", str(d["ct"]), "--seg", str(d["seg"]), "--seg-out", "--out", str(out), "--quiet"])
        == 0
    )
    return out / "derived_seg.dcm"


def test_every_derived_segment_recommends_its_colour(derived: Path) -> None:
    seg = pydicom.dcmread(derived, stop_before_pixels=True)
    colours = {str(s.SegmentLabel): tuple(int(v) for v in s.RecommendedDisplayCIELabValue) for s in seg.SegmentSequence}
    assert colours["Liver"] == hd.color.CIELabColor.from_rgb(*LIVER_RGB).value
    lesion_colours = [v for k, v in colours.items() if k.startswith("Lesion")]
    assert len(lesion_colours) == 2
    assert len({*lesion_colours, colours["Liver"]}) == 3  # the two lesions and the liver each their own


def test_dcmqi_reads_the_colours_back(derived: Path, tmp_path: Path) -> None:
    exe = shutil.which("segimage2itkimage")
    if exe is None:
        pytest.skip("dcmqi's segimage2itkimage not installed (pip install dcmqi)")
    cmd = [exe, "--inputDICOM", str(derived), "--outputDirectory", str(tmp_path), "--outputType", "nifti"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    assert r.returncode == 0, r.stdout + r.stderr
    meta = json.loads((tmp_path / "meta.json").read_text())
    got = {str(a["SegmentLabel"]): tuple(a["recommendedDisplayRGBValue"]) for (a,) in meta["segmentAttributes"]}
    expected = dict(
        zip(["Liver", "Lesion 1 (intrahepatic)", "Lesion 2 (intrahepatic)"], [LIVER_RGB, (255, 255, 0), (0, 200, 255)])
    )
    assert set(got) == set(expected)
    for label, rgb in expected.items():  # CIELab -> sRGB round trip: within 2 of 255
        assert max(abs(a - b) for a, b in zip(got[label], rgb)) <= 2, (label, got[label])

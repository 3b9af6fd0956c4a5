"""--segment-pattern: user regular expressions give roles to segment names, before codes and built-ins."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pydicom
import pytest
from conftest import oblique_affine
from dicom_factory import write_image_series
from seg_factory import SegmentSpec, write_seg


@pytest.fixture
def study(tmp_path):
    aff = oblique_affine(spacing=(1.0, 1.0, 2.0))
    shape = (30, 28, 12)
    ijk = np.indices(shape)
    liver = (ijk[0] >= 3) & (ijk[0] < 27) & (ijk[1] >= 3) & (ijk[1] < 25) & (ijk[2] >= 2) & (ijk[2] < 10)
    lesion = (ijk[0] >= 10) & (ijk[0] < 14) & (ijk[1] >= 10) & (ijk[1] < 15) & (ijk[2] >= 4) & (ijk[2] < 7)
    files = write_image_series(tmp_path / "s" / "ct", np.where(liver, 50.0, -50.0), aff, seed=3)
    tissue = pydicom.sr.codedict.codes.SCT.Tissue
    write_seg(
        tmp_path / "s" / "seg.dcm",
        files,
        [
            SegmentSpec("Liver", liver),
            SegmentSpec("Target A", lesion, property_type=tissue),  # neither its code nor its name gives a role
        ],
    )
    return tmp_path / "s", int(lesion.sum())


def _run(*args):
    return subprocess.run(
        [sys.executable, "-m", "netlm_imaging.cli", *args], capture_output=True, text=True, timeout=120
    )


def test_unmatched_segment_is_ignored_with_a_note_then_mapped_by_a_user_pattern(study):
    folder, n_lesion = study
    res = _run("analyze", str(folder), "--json", "-")
    assert res.returncode == 0, res.stderr  # a liver was found: the unmatched segment is ignored, not fatal
    rep = json.loads(res.stdout)
    assert rep["tumor"]["lesion_count"] == 0
    # the example flag keeps the liver the rules found (a user mapping is exclusive)
    assert any('--labels liver="Liver",lesion="Target A"' in w for w in rep["warnings"])
    roles = {r["name"]: (r["role"], r["reason"]) for r in rep["study"]["segment_roles"]}
    assert roles == {"Liver": ("liver", "code"), "Target A": (None, "unmatched-ignored")}
    # user patterns are exclusive: the liver needs one too
    res = _run(
        "analyze",
        str(folder),
        "--json",
        "-",
        "--segment-pattern",
        "^target=lesion",
        "--segment-pattern",
        "^liver$=liver",
    )
    assert res.returncode == 0, res.stderr
    rep = json.loads(res.stdout)
    assert {r["name"]: r["reason"] for r in rep["study"]["segment_roles"]} == {"Liver": "user", "Target A": "user"}
    assert rep["tumor"]["intrahepatic_volume_ml"] == pytest.approx(n_lesion * 2.0 / 1000)
    assert rep["lesions"][0]["label"] == "Target A"


@pytest.mark.parametrize(
    ("pattern", "needle"),
    [("target", "REGEX=ROLE"), ("x=pancreas", "unknown role"), ("(=lesion", "invalid regular expression")],
)
def test_bad_segment_patterns_are_usage_errors(study, pattern, needle):
    folder, _ = study
    res = _run("analyze", str(folder), "--segment-pattern", pattern)
    assert res.returncode == 2
    assert needle in res.stderr

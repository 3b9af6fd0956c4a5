"""CLI contract of `netlm analyze`: sample data against its independent truth, exit codes, bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT, oblique_affine
from phantoms import write_nifti

from netlm_imaging.cli import main

DEMO = ROOT / "sample_data" / "netlm_demo"


def test_sample_data_matches_its_truth(tmp_path, capsys):
    truth = json.loads((DEMO / "truth.json").read_text())
    rc = main(["analyze", str(DEMO), "--out", str(tmp_path), "--modality", "CT"])
    assert rc == 0
    out = capsys.readouterr().out
    assert "Liver volume" in out
    assert "report.json" in out
    rep = json.loads((tmp_path / "report.json").read_text())
    assert rep["liver"]["voxel_count"] == truth["liver_voxel_count"]
    assert rep["liver"]["volume_ml"] == pytest.approx(truth["liver_volume_ml"], rel=1e-6)
    assert rep["tumor"]["intrahepatic_volume_ml"] == pytest.approx(truth["intrahepatic_tumor_ml"], rel=1e-6)
    assert rep["tumor"]["extrahepatic_volume_ml"] == pytest.approx(truth["extrahepatic_tumor_ml"], rel=1e-6)
    assert rep["tumor"]["lesion_count"] == truth["intrahepatic_lesion_count"]
    assert rep["tumor"]["extrahepatic_lesion_count"] == truth["extrahepatic_lesion_count"]
    assert rep["involvement_percent"] == pytest.approx(truth["involvement_percent"], abs=1e-4)
    by_centre = {tuple(np.round(le["centre_lps_mm"])): le for le in truth["lesions"]}
    for les in rep["lesions"]:
        t = min(
            by_centre.values(), key=lambda t: np.linalg.norm(np.subtract(t["centre_lps_mm"], les["centroid_lps_mm"]))
        )
        assert np.linalg.norm(np.subtract(t["centre_lps_mm"], les["centroid_lps_mm"])) < 0.5
        assert les["voxel_count"] == t["voxel_count"]
        assert les["max_3d_diameter_mm"] == pytest.approx(t["max_3d_diameter_mm"], abs=1e-3)
        assert les["longest_axial_diameter_mm"] == pytest.approx(t["longest_axial_diameter_mm"], abs=1e-3)
        assert les["location"] == ("intrahepatic" if t["intrahepatic"] else "extrahepatic")


def test_json_to_stdout(tmp_path, capsys):
    rc = main(["analyze", str(DEMO), "--json", "-"])
    assert rc == 0
    data = json.loads(capsys.readouterr().out)
    assert data["tool"]["name"] == "netlm-imaging"


def _run(args: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    return subprocess.run(
        [sys.executable, "-m", "netlm_imaging.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=120,
    )


def _assert_input_error(res: subprocess.CompletedProcess, *needles: str) -> None:
    assert res.returncode == 3, res.stderr
    lines = [ln for ln in res.stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, res.stderr
    assert "Traceback" not in res.stderr
    for n in needles:
        assert n in lines[0], lines[0]


@pytest.fixture
def study(tmp_path):
    aff = oblique_affine(spacing=(1.0, 1.2, 2.5))
    shape = (24, 20, 10)
    img = np.zeros(shape, np.int16)
    seg = np.zeros(shape, np.uint8)
    seg[4:20, 4:16, 2:8] = 1
    seg[8:12, 8:12, 4:6] = 2
    write_nifti(tmp_path / "img.nii.gz", img, aff)
    write_nifti(tmp_path / "seg.nii.gz", seg, aff)
    return tmp_path, aff, shape


def test_random_bytes_named_nifti(study):
    d, _, _ = study
    rng = np.random.default_rng(3)
    (d / "bad.nii.gz").write_bytes(rng.integers(0, 256, 5000, dtype=np.uint8).tobytes())
    res = _run(["analyze", "--image", str(d / "bad.nii.gz"), "--seg", str(d / "seg.nii.gz"), "--out", str(d / "o")])
    _assert_input_error(res, "bad.nii.gz", "NIfTI")
    assert not (d / "o" / "report.json").exists()


def test_shapes_differ_without_usable_geometry(study):
    d, aff, shape = study
    write_nifti(d / "img_nogeo.nii.gz", np.zeros(shape, np.int16), aff, geometry=False)
    write_nifti(d / "seg_small.nii.gz", np.ones((10, 10, 5), np.uint8), aff, geometry=False)
    res = _run(["analyze", "--image", str(d / "img_nogeo.nii.gz"), "--seg", str(d / "seg_small.nii.gz")])
    _assert_input_error(res, "seg_small.nii.gz", "no usable geometry")


def test_empty_liver_mask(study):
    d, aff, shape = study
    seg = np.zeros(shape, np.uint8)
    seg[1:3, 1:3, 1:3] = 2
    write_nifti(d / "seg_noliver.nii.gz", seg, aff)
    res = _run(
        [
            "analyze",
            "--image",
            str(d / "img.nii.gz"),
            "--seg",
            f"liver={d / 'empty.nii.gz'}",
            "--seg",
            f"lesion={d / 'seg_noliver.nii.gz'}",
        ]
    )
    _assert_input_error(res, "empty.nii.gz", "not found")
    write_nifti(d / "empty.nii.gz", np.zeros(shape, np.uint8), aff)
    res = _run(
        [
            "analyze",
            "--image",
            str(d / "img.nii.gz"),
            "--seg",
            f"liver={d / 'empty.nii.gz'}",
            "--seg",
            f"lesion={d / 'seg_noliver.nii.gz'}",
        ]
    )
    _assert_input_error(res, "empty.nii.gz", "liver mask is empty")


def test_unmapped_label_values(study):
    d, aff, shape = study
    seg = np.zeros(shape, np.uint8)
    seg[4:20, 4:16, 2:8] = 1
    seg[0:2, 0:2, 0:2] = 7
    write_nifti(d / "seg7.nii.gz", seg, aff)
    res = _run(["analyze", "--image", str(d / "img.nii.gz"), "--seg", str(d / "seg7.nii.gz")])
    _assert_input_error(res, "seg7.nii.gz", "[7]", "--labels")


def test_nan_in_image(study):
    d, aff, shape = study
    img = np.zeros(shape, np.float32)
    img[3, 3, 3] = np.nan
    write_nifti(d / "nan.nii.gz", img, aff)
    res = _run(["analyze", "--image", str(d / "nan.nii.gz"), "--seg", str(d / "seg.nii.gz")])
    _assert_input_error(res, "nan.nii.gz", "NaN")


def test_lesion_without_liver_is_allowed(study):
    d, aff, shape = study
    les = np.zeros(shape, np.uint8)
    les[8:12, 8:12, 4:6] = 1
    write_nifti(d / "les.nii.gz", les, aff)
    res = _run(["analyze", "--image", str(d / "img.nii.gz"), "--seg", f"lesion={d / 'les.nii.gz'}", "--json", "-"])
    assert res.returncode == 0, res.stderr
    data = json.loads(res.stdout)
    assert data["involvement_percent"] is None
    assert data["tumor"]["intrahepatic_volume_ml"] == pytest.approx(32 * 1.0 * 1.2 * 2.5 / 1000)
    assert any("no liver mask" in w for w in data["warnings"])


def test_usage_errors_exit_2(study):
    d, _, _ = study
    assert _run(["analyze"]).returncode == 2
    assert _run(["analyze", "--image", str(d / "img.nii.gz")]).returncode == 2
    assert _run(["analyze", "--bogus"]).returncode == 2
    res = _run(["analyze", "--image", str(d / "img.nii.gz"), "--seg", str(d / "seg.nii.gz"), "--labels", "pancreas=3"])
    assert res.returncode == 2
    assert "unknown role" in res.stderr


def test_existing_report_is_not_lost_on_a_failed_rerun(study):
    d, _, _ = study
    out = d / "o"
    assert (
        _run(
            ["analyze", "--image", str(d / "img.nii.gz"), "--seg", str(d / "seg.nii.gz"), "--out", str(out), "--quiet"]
        ).returncode
        == 0
    )
    before = (out / "report.json").read_bytes()
    (d / "broken.nii.gz").write_bytes(b"\x1f\x8b garbage")
    res = _run(["analyze", "--image", str(d / "broken.nii.gz"), "--seg", str(d / "seg.nii.gz"), "--out", str(out)])
    assert res.returncode == 3
    assert (out / "report.json").read_bytes() == before


def test_help_is_fast_and_lists_commands():
    res = _run(["--help"])
    assert res.returncode == 0
    assert "analyze" in res.stdout


def test_sr_needs_a_dicom_image(tmp_path):
    res = _run(["analyze", str(DEMO), "--out", str(tmp_path / "o"), "--sr"])
    _assert_input_error(res, "ct.nii.gz", "not DICOM")
    assert not (tmp_path / "o" / "report.json").exists()


def test_html_page_and_output_permissions(tmp_path):
    out = tmp_path / "o"
    assert main(["analyze", str(DEMO), "--out", str(out), "--html", "--quiet"]) == 0
    html = (out / "report.html").read_text()
    report = json.loads((out / "report.json").read_text())
    # one clickable lesion row (viewer jump) per reported lesion
    assert html.count('class="lesion-row"') == len(report["lesions"]) >= 5
    assert 'id="netlm-data"' in html
    assert "Mahuron" in html
    mode = (out / "report.json").stat().st_mode & 0o777
    assert mode & 0o044 == 0o044 & ~_umask_value()  # readable like any other output, not mkstemp's 0600


def _umask_value() -> int:
    m = os.umask(0)
    os.umask(m)
    return m

"""Environment failures and misleading messages (issue 16 items 4, 6 and 8), walked end to end in subprocesses.

Every environment case must end with exit 3 and one stderr line naming the path and the fix, never the
internal-error exit 70 (which stays for real bugs). Every message case must name the file that is actually
wrong and say what is wrong. The study is the synthetic oblique CT + SEG of tests/test_cli_analyze_errors.py
(tests/dicom_factory.py, tests/seg_factory.py); NIfTI cases are written with nibabel here.
"""

from __future__ import annotations

import json
import os
import resource
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
from conftest import ROOT, oblique_affine
from dicom_factory import write_image_series
from seg_factory import SegmentSpec, write_seg

SHAPE = (16, 14, 6)
AFF = oblique_affine(spacing=(1.5, 1.5, 3.0), angles_deg=(10.0, 0.0, 0.0), origin=(-20.0, -15.0, 100.0))
RAS = np.diag([-1.0, -1.0, 1.0, 1.0]) @ AFF
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def _liver() -> np.ndarray:
    m = np.zeros(SHAPE, bool)
    m[3:13, 3:11, 1:5] = True
    return m


def netlm(*args, close_stdout: bool = False, preexec=None) -> subprocess.CompletedProcess:
    """``python -m netlm_imaging.cli ARGS`` (with stdout closed: through ``sh -c '... >&-'``)."""
    argv = [sys.executable, "-m", "netlm_imaging.cli", *map(str, args)]
    if close_stdout:
        argv = ["sh", "-c", " ".join(shlex.quote(a) for a in argv) + " >&-"]
    return subprocess.run(argv, capture_output=True, text=True, cwd=ROOT, env=ENV, timeout=300, preexec_fn=preexec)


def one_line(r: subprocess.CompletedProcess, code: int = 3) -> str:
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert r.returncode == code, r.stderr
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("netlm: error: "), lines[0]
    assert "internal error" not in lines[0]
    assert "Traceback" not in r.stderr
    return lines[0]


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("msgs") / "base"
    ct = write_image_series(d / "ct", np.where(_liver(), 60.0, -50.0), AFF, seed=5)
    write_seg(d / "seg.dcm", ct, [SegmentSpec("Liver", _liver())])
    return d


def _variant(study: Path, root: Path, name: str, keyword: str, index: int, value) -> tuple[Path, Path]:
    d = root / name
    shutil.copytree(study, d)
    f = sorted((d / "ct").iterdir())[index]
    ds = pydicom.dcmread(f)
    setattr(ds, keyword, value)
    ds.save_as(f)
    return d, f


@pytest.fixture
def ro_dir(tmp_path):
    """A read-only folder: a read-only tmpfs (root) or a 0555 folder (other users)."""
    d = tmp_path / "ro"
    d.mkdir()
    if os.geteuid() == 0:
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(d)], capture_output=True)
        if r.returncode != 0:
            pytest.skip("root without mount rights: no read-only folder can be made here")
        yield d
        subprocess.run(["umount", "-l", str(d)], check=False)
    else:
        d.chmod(0o555)
        yield d
        d.chmod(0o755)


# ----------------------------------------------------------------------------- environment (item 4)


def test_out_naming_a_file(study, tmp_path):
    f = tmp_path / "report.txt"
    f.write_text("keep me")
    for cmd in (["analyze", study], ["batch", study.parent]):
        line = one_line(netlm(*cmd, "--out", f))
        assert f"--out {f}: is an existing file, not a folder" in line
    assert f.read_text() == "keep me"


def test_out_read_only(study, ro_dir):
    for cmd, target in ((["analyze", study], ro_dir / "sub"), (["batch", study.parent], ro_dir)):
        line = one_line(netlm(*cmd, "--out", target))
        assert str(target) in line
        assert "Read-only file system" in line or "Permission denied" in line
        assert "choose" in line


def test_out_on_a_full_disk_analyze(study, tmp_path):
    mnt = tmp_path / "full"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4k", "tmpfs", str(mnt)], capture_output=True).returncode:
        pytest.skip("cannot mount a small tmpfs here (the /dev/full batch test covers ENOSPC)")
    try:
        line = one_line(netlm("analyze", study, "--out", mnt, "--quiet"))
        assert f"{mnt}/report.json" in line
        assert "No space left on device" in line
        assert "free space" in line
        assert [p.name for p in mnt.iterdir()] == []  # no partial report, no temp file
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_json_to_a_closed_stdout(study):
    r = netlm("analyze", study, "--json", "-", close_stdout=True)
    line = one_line(r)
    assert "--json -: standard output is closed" in line
    assert "--out DIR" in line


def test_allow_resample_with_an_infinite_position_names_the_file(study, tmp_path):
    d, f = _variant(study, tmp_path, "inf_ipp", "ImagePositionPatient", 2, [-20.0, "inf", 105.9])
    for extra in ([], ["--allow-resample"]):
        line = one_line(netlm("analyze", d, "--out", tmp_path / "o", *extra))
        assert f"{f}: ImagePositionPatient (0020,0032) holds a non-finite value" in line
        assert "missing slice" not in line
        assert "OverflowError" not in line


# ----------------------------------------------------------------------------- messages (item 6)


def test_nan_orientation_is_named_not_called_mixed_stacks(study, tmp_path):
    d, f = _variant(study, tmp_path, "nan_iop", "ImageOrientationPatient", 2, ["nan", 0, 0, 0, 1, 0])
    line = one_line(netlm("analyze", d, "--out", tmp_path / "o"))
    assert f"{f}: ImageOrientationPatient (0020,0037) holds a non-finite value" in line
    assert "mixes image stacks" not in line


def test_empty_label_map_is_blamed_on_the_segmentation(tmp_path):
    ct, seg = tmp_path / "ct.nii.gz", tmp_path / "seg.nii.gz"
    nib.save(nib.Nifti1Image(np.full(SHAPE, 40, np.int16), RAS), ct)
    nib.save(nib.Nifti1Image(np.zeros(SHAPE, np.uint8), RAS), seg)
    line = one_line(netlm("analyze", "--image", ct, "--seg", seg, "--out", tmp_path / "o"))
    assert line.startswith(f"netlm: error: {seg}: ")
    assert str(ct) not in line
    assert "empty" in line


def test_broken_seg_nifti_says_re_export_the_segmentation(tmp_path):
    ct, seg = tmp_path / "ct.nii.gz", tmp_path / "seg.nii.gz"
    nib.save(nib.Nifti1Image(np.full(SHAPE, 40, np.int16), RAS), ct)
    seg.write_bytes(b"\x1f\x8b" + bytes(range(200)))
    line = one_line(netlm("analyze", "--image", ct, "--seg", seg, "--out", tmp_path / "o"))
    assert f"{seg}: not a readable NIfTI file" in line
    assert "re-export the segmentation" in line
    assert "re-export the image" not in line


def test_warnings_go_to_stderr_not_stdout(study, tmp_path):
    d = tmp_path / "gap"
    shutil.copytree(study, d)
    sorted((d / "ct").iterdir())[3].unlink()
    r = netlm("analyze", d, "--out", tmp_path / "o", "--allow-resample")
    assert r.returncode == 0, r.stderr
    assert "missing slice" not in r.stdout
    assert "warning:" not in r.stdout.lower()
    assert "missing slice" in r.stderr
    assert "resampled onto a regular grid" in r.stderr
    assert r.stderr.count("missing slice") == 1  # logged once, not repeated from the report
    assert "Liver volume" in r.stdout


def test_usage_errors_have_one_prefix():
    line = one_line(netlm("batch", "somewhere"), code=2)
    assert line.startswith("netlm: error: batch: ")
    assert "netlm batch:" not in line


def test_out_of_memory_names_the_file(tmp_path):
    """A real MemoryError: a 512x512x400 study under an address-space limit (several limits, as the
    interpreter's own footprint varies); each run ends either with a report or with the file named."""
    lab = np.zeros((512, 512, 400), np.uint8)
    lab[100:400, 100:400, 50:350] = 1
    aff = np.diag([-0.8, -0.8, 1.0, 1.0])
    ct, seg = tmp_path / "ct.nii.gz", tmp_path / "seg.nii.gz"
    nib.save(nib.Nifti1Image(np.where(lab > 0, 60, -50).astype(np.int16), aff), ct)
    nib.save(nib.Nifti1Image(lab, aff), seg)
    del lab
    oom = 0
    for mib in (650, 800, 950):

        def limit(mib=mib):
            resource.setrlimit(resource.RLIMIT_AS, (mib << 20, mib << 20))

        r = netlm("analyze", "--image", ct, "--seg", seg, "--out", tmp_path / f"o{mib}", "--quiet", preexec=limit)
        if r.returncode == 0:
            continue
        line = one_line(r)
        assert "out of memory" in line, line
        assert str(ct) in line or str(seg) in line, line
        assert "--max-voxels" in line
        oom += 1
    assert oom >= 1


# ----------------------------------------------------------------------------- up-front checks (item 8)


def test_batch_bad_labels_is_a_usage_error_before_any_study(study, tmp_path):
    out = tmp_path / "out"
    line = one_line(netlm("batch", study.parent, "--out", out, "--labels", "lver=1"), code=2)
    assert "--labels" in line
    assert "unknown role 'lver'" in line
    assert not out.exists()  # nothing started


def test_float_label_map_within_tolerance_is_rounded_with_a_warning(tmp_path):
    from netlm_imaging.io.label_values import LABEL_ROUNDING_TOLERANCE

    lab = np.where(_liver(), 1.0000001, 0.0).astype(np.float64)
    lab[6:9, 5:8, 2:4] = 2.0000002
    ct, seg = tmp_path / "ct.nii.gz", tmp_path / "seg.nii.gz"
    nib.save(nib.Nifti1Image(np.full(SHAPE, 40, np.int16), RAS), ct)
    nib.save(nib.Nifti1Image(lab, RAS), seg)
    r = netlm("analyze", "--image", ct, "--seg", seg, "--out", tmp_path / "o")
    assert r.returncode == 0, r.stderr
    assert "rounded to the nearest integer" in r.stderr
    assert str(LABEL_ROUNDING_TOLERANCE) in r.stderr
    rep = json.loads((tmp_path / "o" / "report.json").read_text())
    vox_ml = 1.5 * 1.5 * 3.0 / 1000.0
    assert rep["liver"]["volume_ml"] == pytest.approx(_liver().sum() * vox_ml, rel=1e-6)
    assert rep["tumor"]["intrahepatic_volume_ml"] == pytest.approx(3 * 3 * 2 * vox_ml, rel=1e-6)
    assert any("rounded" in w for w in rep["warnings"])
    # beyond the tolerance: refused, naming the file and the tolerance
    nib.save(nib.Nifti1Image(np.where(_liver(), 1.2, 0.0), RAS), seg)
    line = one_line(netlm("analyze", "--image", ct, "--seg", seg, "--out", tmp_path / "o2"))
    assert f"{seg}: label map holds non-integer values (up to 0.2" in line

"""``--pet-half-life`` of ``netlm pacs`` and ``netlm listen``: a Ga-68 PET study whose header carries F-18's
half-life, retrieved from a real Orthanc on loopback (DICOMweb) or C-STOREd into the listener (pynetdicom).

The study is tests/test_batch_pet_half_life.py's PET-only 68Ga-DOTATATE study (pydicom series on an oblique,
anisotropic grid, a DICOM SEG of liver and lesion on it) whose Radionuclide Half Life is F-18's 6586.2 s. The
expected lesion SUVmax is the QIBA formula written out in tests/test_suv_half_life.py (``suv``) with the Ga-68
half-life of clinical_rules.md 7.2 (67.83 min), from the activity written, weight, dose and the 3600 s uptake.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pydicom
import pytest
from test_batch_pet_half_life import LESION, _pet_study
from test_suv_half_life import F18_T, GA68_T, suv

from netlm_imaging.cli import main
from tests.orthanc_server import _free_port, orthanc  # noqa: F401 - fixture

ROOT = Path(__file__).resolve().parents[1]
GA68_SUV_MAX = float(suv(LESION["f18hl"], GA68_T))  # 5.8255; the header's F-18 half-life gives 4.6093


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("ga68_f18_half_life")
    _pet_study(folder, LESION["f18hl"], F18_T)
    files = [*sorted((folder / "pet").glob("*.dcm")), folder / "seg.dcm"]
    uid = str(pydicom.dcmread(files[0], stop_before_pixels=True).StudyInstanceUID)
    return {"files": files, "uid": uid}


@pytest.fixture(scope="module")
def stored(orthanc, study) -> dict:  # noqa: F811
    for f in study["files"]:
        orthanc.upload(f)
    return {**study, "server": orthanc}


def _pacs(stored: dict, monkeypatch, *extra: str) -> int:
    server = stored["server"]
    monkeypatch.setenv("NETLM_PACS_USER", server.user)
    monkeypatch.setenv("NETLM_PACS_PASSWORD", server.password)
    return main(["pacs", "--url", server.dicomweb_url, "--study", stored["uid"], "--quiet", *extra])


def test_pacs_refuses_the_contradicting_header_and_names_its_own_option(stored, tmp_path, monkeypatch, capsys):
    # before: pacs had no --pet-half-life, and the message said "pass `netlm analyze --pet-half-life` 4069.8
    # ... (for one study of a batch: ...)", a command the study fetched from the PACS was not run with
    assert _pacs(stored, monkeypatch, "--out", str(tmp_path / "out")) == 3
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert "6586.2 s (the half-life of F-18) contradicts the radionuclide Ga-68" in err, err
    assert err.endswith("or pass --pet-half-life 4069.8 if the tracer is Ga-68 (--pet-half-life 6586.2 if it is F-18)")
    for foreign in ("netlm analyze", "batch", "clinical"):
        assert foreign not in err, err
    assert not (tmp_path / "out" / "report.json").exists()


def test_pacs_with_the_stated_half_life_measures_the_ga68_suv(stored, tmp_path, monkeypatch, capsys):
    out = tmp_path / "out"
    assert _pacs(stored, monkeypatch, "--out", str(out), "--pet-half-life", "4069.8") == 0, capsys.readouterr().err
    rep = json.loads((out / "report.json").read_text())
    (lesion,) = rep["lesions"]
    assert lesion["suv_max"] == pytest.approx(GA68_SUV_MAX, rel=1e-4)
    assert rep["pet"]["suv_inputs"]["half_life_s"] == pytest.approx(GA68_T)
    assert rep["pet"]["suv_inputs"]["half_life_source"] == "user (--pet-half-life)"


@pytest.mark.parametrize("bad", ["-5", "0", "nan"])
def test_pacs_refuses_a_half_life_that_is_no_duration_as_analyze_does(bad, capsys):
    # the same check as analyze (AnalyzeOptions), before any PACS is asked
    code = main(["pacs", "--url", "http://127.0.0.1:9/dicom-web", "--study", "1.2.3", "--pet-half-life", bad])
    err = capsys.readouterr().err
    assert code == 2, err
    assert f"--pet-half-life {float(bad)}: give the radionuclide half-life in seconds (Ga-68: 4069.8)" in err, err


def _listen(out: Path, port: int, *extra: str) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "netlm_imaging.cli", "listen", "--port", str(port), "--bind", "127.0.0.1"]
    cmd += ["--ae-title", "LISTENER", "--out", str(out), "--quiet-seconds", "0.5", "--max-studies", "1", *extra]
    return subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _send(files: list[Path], port: int, deadline_s: float = 30.0) -> list[int]:
    """C-STORE ``files`` into the listener on ``port`` (pynetdicom), once it accepts an association."""
    from pynetdicom import AE

    datasets = [pydicom.dcmread(f) for f in files]
    ae = AE(ae_title="MODALITY")
    for ds in {str(d.SOPClassUID): d for d in datasets}.values():
        ae.add_requested_context(str(ds.SOPClassUID), [str(ds.file_meta.TransferSyntaxUID)])
    deadline = time.monotonic() + deadline_s
    while True:
        assoc = ae.associate("127.0.0.1", port, ae_title="LISTENER")
        if assoc.is_established:
            break
        assert time.monotonic() < deadline, "the listener never accepted an association"
        time.sleep(0.2)
    statuses = [assoc.send_c_store(ds).Status for ds in datasets]
    assoc.release()
    return statuses


def _listened(study: dict, out: Path, *extra: str) -> str:
    """The listen.log line of the study, sent to a ``netlm listen --max-studies 1`` started with ``extra``."""
    port = _free_port()
    proc = _listen(out, port, *extra)
    try:
        assert _send(study["files"], port) == [0x0000] * len(study["files"])
        assert proc.wait(timeout=120) == 0, proc.stdout.read() if proc.stdout else ""
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=30)
        if proc.stdout:
            proc.stdout.close()
    (line,) = (out / "listen.log").read_text().splitlines()
    return line


def test_listen_applies_the_stated_half_life_and_refuses_without_it(study, tmp_path):
    refused = _listened(study, tmp_path / "plain")
    assert f"study {study['uid']}: {len(study['files'])} instances: failed:" in refused, refused
    assert "6586.2 s (the half-life of F-18) contradicts the radionuclide Ga-68" in refused, refused
    # the advice is listen's own option, and what it means for a listener
    assert "pass --pet-half-life 4069.8 if the tracer is Ga-68" in refused, refused
    assert refused.endswith(
        "to netlm listen (it applies to every study received), or `netlm analyze` the study's incoming folder "
        "with --pet-half-life"
    ), refused
    assert "batch" not in refused, refused
    line = _listened(study, tmp_path / "ga68", "--pet-half-life", "4069.8")
    assert f"study {study['uid']}: {len(study['files'])} instances: ok" in line, line
    rep = json.loads((tmp_path / "ga68" / study["uid"] / "report.json").read_text())
    (lesion,) = rep["lesions"]
    assert lesion["suv_max"] == pytest.approx(GA68_SUV_MAX, rel=1e-4)
    assert rep["pet"]["suv_inputs"]["half_life_source"] == "user (--pet-half-life)"

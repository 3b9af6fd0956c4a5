"""pipelines/ run end to end: the Orthanc Lua example inside a real Orthanc, and the hook's --folder mode.

The Lua test starts Orthanc (loopback, free port) with
pipelines/orthanc_on_stable_study.lua, uploads tests/test_sr.py's CT + SEG
phantom, and waits for the SR to arrive in the same study; Orthanc must keep
answering while the analysis runs (the callback starts the hook in the
background), and the study is analysed once. Truth: the phantom's voxel counts.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pydicom
import pytest
import requests

from netlm_imaging.report.dicom_sr import read_sr_measurements
from tests.dicom_tools import assert_dciodvfy_clean
from tests.orthanc_server import _free_port, require_orthanc, start_orthanc
from tests.test_batch import write_study
from tests.test_sr import write_phantom_study

ROOT = Path(__file__).resolve().parents[1]
HOOK = ROOT / "pipelines" / "pacs_export_hook.py"


def _sr_series(server) -> list[dict]:
    return [s for s in server.get_json("/series?expand") if s["MainDicomTags"].get("Modality") == "SR"]


def test_orthanc_lua_pipeline_analyses_a_stable_study_without_blocking_orthanc(tmp_path: Path) -> None:
    require_orthanc()
    port = _free_port()
    results = tmp_path / "results"
    env = {
        "NETLM_PYTHON": sys.executable,
        "NETLM_HOOK": str(HOOK),
        "NETLM_RESULTS": str(results),
        "NETLM_DICOMWEB": f"http://127.0.0.1:{port}/dicom-web",
        "NETLM_PACS_USER": "netlm-test",
        "NETLM_PACS_PASSWORD": "s3cret-Pa55-word",
        "PYTHONPATH": str(ROOT),
    }
    server = start_orthanc(
        tmp_path / "orthanc",
        lua_scripts=[ROOT / "pipelines" / "orthanc_on_stable_study.lua"],
        env=env,
        http_port=port,
    )
    try:
        d = write_phantom_study(tmp_path / "study", seed=31)
        for f in [*d["files"], d["seg"]]:
            server.upload(f)
        deadline = time.monotonic() + 180
        slowest = 0.0
        while time.monotonic() < deadline and not _sr_series(server):
            t0 = time.perf_counter()
            r = requests.get(f"{server.url}/system", auth=server.auth, timeout=10)  # Orthanc keeps answering
            slowest = max(slowest, time.perf_counter() - t0)
            assert r.status_code == 200
            time.sleep(0.3)
        log = results / "netlm-hook.log"
        srs = _sr_series(server)
        assert srs, (log.read_text() if log.exists() else "no hook log") + server.log_path.read_text()[-3000:]
        assert slowest < 5.0  # never blocked by the analysis
        # the SR (and the derived SEG) are in the original study of the original patient
        assert len(server.get_json("/studies")) == 1
        assert len(server.get_json("/patients")) == 1
        sr_file = tmp_path / "sr.dcm"
        sr_file.write_bytes(server.get_bytes(f"/instances/{srs[0]['Instances'][0]}/file"))
        assert_dciodvfy_clean(sr_file)
        got = read_sr_measurements(sr_file)
        for key in ("liver_volume_ml", "tumor_volume_ml", "involvement_percent"):
            assert got[key] == pytest.approx(d["truth"][key], rel=1e-4), key
        ct = pydicom.dcmread(d["files"][0], stop_before_pixels=True)
        assert pydicom.dcmread(sr_file, stop_before_pixels=True).StudyInstanceUID == ct.StudyInstanceUID
        # the SR + SEG made the study stable again: the callback sees our SR and does not analyse again
        n = len(server.get_json("/instances"))
        time.sleep(4.0)  # > StableAge (1 s) + a hook start
        assert len(server.get_json("/instances")) == n
        assert len(_sr_series(server)) == 1
        assert (results / ct.StudyInstanceUID / "report.json").is_file()
        assert "s3cret-Pa55-word" not in log.read_text()
    finally:
        server.stop()


def _hook(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(HOOK), *args],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_hook_folder_mode(tmp_path: Path) -> None:
    d = write_phantom_study(tmp_path / "export" / "study1", seed=32)
    out = tmp_path / "out"
    r = _hook("--folder", str(tmp_path / "export" / "study1"), "--out", str(out))
    assert r.returncode == 0, r.stderr
    study_out = out / "study1"
    for name in ("report_sr.dcm", "derived_seg.dcm"):
        assert_dciodvfy_clean(study_out / name)
    got = read_sr_measurements(study_out / "report_sr.dcm")
    assert got["liver_volume_ml"] == pytest.approx(d["truth"]["liver_volume_ml"], rel=1e-4)
    assert got["liver_referenced_segment"] is not None  # the derived SEG's total liver
    # run again on the folder now holding our own outputs: same result, our SEG is not a second candidate
    (tmp_path / "export" / "study1" / "derived_seg.dcm").write_bytes((study_out / "derived_seg.dcm").read_bytes())
    r = _hook("--folder", str(tmp_path / "export" / "study1"), "--out", str(tmp_path / "out2"))
    assert r.returncode == 0, r.stderr
    again = read_sr_measurements(tmp_path / "out2" / "study1" / "report_sr.dcm")
    assert again["liver_volume_ml"] == got["liver_volume_ml"]
    sop = [pydicom.dcmread(p / "study1" / "report_sr.dcm").SOPInstanceUID for p in (out, tmp_path / "out2")]
    assert sop[0] == sop[1]
    # a NIfTI export: the JSON report stands alone (no SR without DICOM images), exit 0
    write_study(tmp_path / "export" / "nifti1", 1)
    r = _hook("--folder", str(tmp_path / "export" / "nifti1"), "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert (out / "nifti1" / "report.json").is_file()
    assert not (out / "nifti1" / "report_sr.dcm").exists()
    assert "no DICOM SR/SEG" in r.stderr
    # --push with a folder: usage error naming the options it needs
    r = _hook("--folder", str(tmp_path / "export" / "study1"), "--out", str(out), "--push")
    assert r.returncode == 2
    assert "--study-uid" in r.stderr


def test_hook_errors_suggest_only_its_own_options(tmp_path: Path) -> None:
    """Two candidate segmentations: the message names --seg-choice, which the hook accepts."""
    d = write_phantom_study(tmp_path / "export" / "two", seed=33)
    other = write_phantom_study(tmp_path / "scratch", seed=33)  # same images, a second SEG object
    (tmp_path / "export" / "two" / "seg" / "seg2.dcm").write_bytes(Path(other["seg"]).read_bytes())
    r = _hook("--folder", str(tmp_path / "export" / "two"), "--out", str(tmp_path / "out"))
    if r.returncode == 0:  # identical SEG objects are one candidate: nothing to choose
        pytest.skip("the two SEG copies are the same object")
    assert r.returncode == 3
    assert "Traceback" not in r.stderr
    hook_options = {"--folder", "--study-uid", "--url", "--out", "--push", "--seg-out", "--pacs-config"}
    hook_options |= {"--labels", "--rules", "--seg-choice", "--image-series", "--help", "-h"}
    import re

    named = set(re.findall(r"(?<![\w`-])--[a-z][a-z0-9-]*", r.stderr.replace("`netlm analyze --", "")))
    assert named <= hook_options, named
    r = _hook("--folder", str(tmp_path / "export" / "two"), "--out", str(tmp_path / "out"), "--seg-choice", "1")
    assert r.returncode == 0, r.stderr
    assert read_sr_measurements(tmp_path / "out" / "two" / "report_sr.dcm")["liver_volume_ml"] == pytest.approx(
        d["truth"]["liver_volume_ml"], rel=1e-4
    )


def test_hook_errors_are_one_line_naming_its_own_flag_and_the_real_cause(tmp_path: Path) -> None:
    """A bad --study-uid names --study-uid (not a flag of another command); an output folder that
    cannot be written is one error line, not also a warning that blames the image."""
    r = _hook("--study-uid", "../../system", "--url", "http://127.0.0.1:9/dicom-web", "--out", str(tmp_path / "o"))
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert lines == [
        "netlm-hook: error: --study-uid '../../system' is not a DICOM UID (digits and dots, "
        "e.g. 1.2.840.113619.2.55.3.1234); give the Study Instance UID"
    ]
    write_phantom_study(tmp_path / "export" / "study1", seed=34)
    (tmp_path / "taken").write_text("a file where the results folder should be")
    r = _hook("--folder", str(tmp_path / "export" / "study1"), "--out", str(tmp_path / "taken"))
    assert r.returncode == 3
    problems = [ln for ln in r.stderr.splitlines() if ": INFO: " not in ln]
    assert len(problems) == 1, r.stderr
    assert problems[0].startswith(f"netlm-hook: error: {tmp_path / 'taken' / 'study1'}: cannot write (Not a directory)")
    assert "Traceback" not in r.stderr


def test_hook_bug_is_one_line_with_exit_70(tmp_path: Path, monkeypatch, capsys) -> None:
    """An unexpected exception (a bug) never prints a traceback into the PACS's log."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("pacs_export_hook", HOOK)
    assert spec is not None
    assert spec.loader is not None
    hook = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hook)

    def broken(*args, **kwargs):
        raise ZeroDivisionError("float division by zero")

    monkeypatch.setattr(hook, "analyze_with_context", broken)
    write_study(tmp_path / "nifti1", 1)
    assert hook.run(["--folder", str(tmp_path / "nifti1"), "--out", str(tmp_path / "o")]) == 70
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["netlm-hook: internal error: ZeroDivisionError: float division by zero (a bug: please report it)"]

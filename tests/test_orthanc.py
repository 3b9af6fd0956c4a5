"""Pull-analyse-push round trip against a real Orthanc (Debian orthanc + orthanc-dicomweb) on loopback.

The study is the CT + SEG phantom of tests/test_sr.py (truth computed there from
voxel counts). It is uploaded through Orthanc's REST API (POST /instances);
``netlm pacs --push`` retrieves it with WADO-RS and stores the SR with STOW-RS;
the SR is read back from Orthanc's REST API and parsed with highdicom.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pydicom
import pytest

from netlm_imaging.cli import main
from netlm_imaging.report.dicom_sr import read_sr_measurements
from tests.dicom_tools import assert_dciodvfy_clean
from tests.orthanc_server import orthanc  # noqa: F401 - fixture
from tests.test_sr import write_phantom_study

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def uploaded(orthanc, tmp_path_factory: pytest.TempPathFactory) -> dict:  # noqa: F811
    d = write_phantom_study(tmp_path_factory.mktemp("pacs_study"), seed=11)
    for f in [*d["files"], d["seg"]]:
        orthanc.upload(f)
    d["study_uid"] = str(pydicom.dcmread(d["files"][0], stop_before_pixels=True).StudyInstanceUID)
    return d


def _sr_instances(orthanc) -> list[str]:  # noqa: F811
    return [
        inst
        for s in orthanc.get_json("/series?expand")
        if s["MainDicomTags"].get("Modality") == "SR"
        for inst in s["Instances"]
    ]


def test_round_trip_push_sr(orthanc, uploaded, tmp_path: Path, monkeypatch, capsys, caplog) -> None:  # noqa: F811
    monkeypatch.setenv("NETLM_PACS_USER", orthanc.user)
    monkeypatch.setenv("NETLM_PACS_PASSWORD", orthanc.password)
    caplog.set_level(logging.DEBUG)
    out = tmp_path / "out"
    code = main(
        ["-vv", "pacs", "--url", orthanc.dicomweb_url, "--study", uploaded["study_uid"], "--push", "--out", str(out)]
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    srs = _sr_instances(orthanc)
    assert len(srs) == 1
    sr_file = tmp_path / "from_orthanc.dcm"
    sr_file.write_bytes(orthanc.get_bytes(f"/instances/{srs[0]}/file"))
    got = read_sr_measurements(sr_file)
    truth = uploaded["truth"]
    for key in ("liver_volume_ml", "tumor_volume_ml", "involvement_percent", "remnant_volume_ml"):
        assert got[key] == pytest.approx(truth[key], rel=1e-3), key
    assert sorted(les["volume_ml"] for les in got["lesions"]) == pytest.approx(truth["lesion_volumes_ml"], rel=1e-3)
    # the total-liver group references the "Liver" segment of the derived SEG pushed with it (the input
    # "Liver" segment excludes the lesions, so it is not the region measured)
    ref = got["liver_referenced_segment"]
    seg_in_pacs = orthanc.get_json("/instances?expand")
    derived = [i for i in seg_in_pacs if i["MainDicomTags"].get("SOPInstanceUID") == ref["sop_instance_uid"]]
    assert len(derived) == 1
    seg_file = tmp_path / "derived_from_orthanc.dcm"
    seg_file.write_bytes(orthanc.get_bytes(f"/instances/{derived[0]['ID']}/file"))
    seg = pydicom.dcmread(seg_file, stop_before_pixels=True)
    labels = {int(s.SegmentNumber): str(s.SegmentLabel) for s in seg.SegmentSequence}
    assert labels[ref["segment_number"]] == "Liver"
    assert_dciodvfy_clean(sr_file)
    assert_dciodvfy_clean(seg_file)
    # filed in the same patient and study (the pushed copy keeps the patient module)
    assert len(orthanc.get_json("/studies")) == 1
    assert len(orthanc.get_json("/patients")) == 1
    # the local copies carry no identifiers; the password is nowhere
    secret = orthanc.password
    for p in out.iterdir():
        data = p.read_bytes()
        assert b"SECRET-ID-123" not in data
        assert secret.encode() not in data
    assert secret not in captured.out + captured.err + caplog.text
    assert "DICOMweb" in caplog.text  # the run was logged, without the secret
    local = read_sr_measurements(out / "report_sr.dcm")
    assert local["liver_volume_ml"] == got["liver_volume_ml"]


def test_credentials_from_private_config_file(orthanc, uploaded, tmp_path: Path, monkeypatch, capsys) -> None:  # noqa: F811
    for var in ("NETLM_PACS_USER", "NETLM_PACS_PASSWORD", "NETLM_PACS_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    cfg = tmp_path / "pacs.toml"
    cfg.write_text(f'user = "{orthanc.user}"\npassword = "{orthanc.password}"\n')
    cfg.chmod(0o644)
    args = [
        "pacs",
        "--url",
        orthanc.dicomweb_url,
        "--study",
        uploaded["study_uid"],
        "--pacs-config",
        str(cfg),
        "--out",
        str(tmp_path / "o"),
        "--quiet",
    ]
    assert main(args) == 3
    err = capsys.readouterr().err
    assert "chmod 600" in err
    assert orthanc.password not in err
    cfg.chmod(0o600)
    assert main(args) == 0
    assert read_sr_measurements(tmp_path / "o" / "report_sr.dcm")["liver_volume_ml"] == pytest.approx(
        uploaded["truth"]["liver_volume_ml"], rel=1e-3
    )


def test_refusals(orthanc, uploaded, tmp_path: Path, monkeypatch, capsys) -> None:  # noqa: F811
    monkeypatch.setenv("NETLM_PACS_USER", orthanc.user)
    monkeypatch.setenv("NETLM_PACS_PASSWORD", "wrong-password-xyz")
    base = ["pacs", "--url", orthanc.dicomweb_url, "--study", uploaded["study_uid"], "--quiet"]
    assert main(["-vv", *base]) == 3
    err = capsys.readouterr().err
    assert "refused (HTTP 401): authentication failed with the user name and password from the environment" in err
    assert "check NETLM_PACS_USER / NETLM_PACS_PASSWORD" in err
    assert "wrong-password-xyz" not in err
    assert len([line for line in err.splitlines() if line.startswith("netlm: error:")]) == 1
    assert "Traceback" not in err
    # the same wrong password from a private config file: the file is named
    cfg = tmp_path / "pacs.toml"
    cfg.write_text(f'user = "{orthanc.user}"\npassword = "wrong-password-xyz"\n')
    cfg.chmod(0o600)
    monkeypatch.delenv("NETLM_PACS_USER")
    monkeypatch.delenv("NETLM_PACS_PASSWORD")
    assert main([*base, "--pacs-config", str(cfg)]) == 3
    err = capsys.readouterr().err
    assert f"with the user name and password from {cfg}; check user / password in {cfg}" in err
    assert "wrong-password-xyz" not in err
    # no credentials at all (no config file in HOME): says that the PACS wants some and how to give them
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert main(base) == 3
    err = capsys.readouterr().err
    assert "the PACS requires authentication and no credentials are set; set NETLM_PACS_USER" in err
    # a refused bearer token
    monkeypatch.setenv("NETLM_PACS_TOKEN", "expired-token-abc")
    assert main(base) == 3
    err = capsys.readouterr().err
    assert (
        "authentication failed with the token from the environment (expired or wrong?); check NETLM_PACS_TOKEN" in err
    )
    assert "expired-token-abc" not in err
    monkeypatch.delenv("NETLM_PACS_TOKEN")
    monkeypatch.setenv("NETLM_PACS_USER", orthanc.user)
    monkeypatch.setenv("NETLM_PACS_PASSWORD", orthanc.password)
    assert main(["pacs", "--url", orthanc.dicomweb_url, "--study", "1.2.3.4.5.404", "--quiet"]) == 3
    assert "not found" in capsys.readouterr().err
    # a path in --study is not a UID: refused before any request (it would GET /system with the credentials)
    assert main(["pacs", "--url", orthanc.dicomweb_url, "--study", "../../system", "--quiet"]) == 2
    assert "not a DICOM UID" in capsys.readouterr().err
    # a token in the URL's query is refused and never echoed
    token_url = orthanc.dicomweb_url + "?access_token=TOKEN-abc-987"
    assert main(["pacs", "--url", token_url, "--study", uploaded["study_uid"], "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "TOKEN-abc-987" not in err
    assert "query string" in err
    url_with_pw = orthanc.dicomweb_url.replace("http://", f"http://{orthanc.user}:{orthanc.password}@")
    assert main(["pacs", "--url", url_with_pw, "--study", uploaded["study_uid"], "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "must not contain credentials" in err
    assert orthanc.password not in err
    monkeypatch.delenv("NETLM_PACS_PASSWORD")
    assert main(base) == 3
    assert "must be set together" in capsys.readouterr().err


def test_export_hook_with_study_uid(orthanc, uploaded, tmp_path: Path) -> None:  # noqa: F811
    """pipelines/pacs_export_hook.py as Orthanc's Lua callback runs it: study UID, push, password via env only."""
    env = {
        **os.environ,
        "NETLM_PACS_USER": orthanc.user,
        "NETLM_PACS_PASSWORD": orthanc.password,
        "PYTHONPATH": str(ROOT),
    }
    before = len(_sr_instances(orthanc))
    instances_before = len(orthanc.get_json("/instances"))
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "pipelines" / "pacs_export_hook.py"),
            "--study-uid",
            uploaded["study_uid"],
            "--url",
            orthanc.dicomweb_url,
            "--out",
            str(tmp_path / "hook"),
            "--push",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert orthanc.password not in proc.stdout + proc.stderr
    # the study was analysed and pushed before (it now holds our derived SEG, which is not taken as a second
    # candidate segmentation): the same SR and SEG (same SOP Instance UIDs) are stored again, nothing new
    assert len(_sr_instances(orthanc)) == before == 1
    assert len(orthanc.get_json("/instances")) == instances_before
    study_out = tmp_path / "hook" / uploaded["study_uid"]
    got = read_sr_measurements(study_out / "report_sr.dcm")
    assert got["tumor_volume_ml"] == pytest.approx(uploaded["truth"]["tumor_volume_ml"], rel=1e-3)


def test_retrieval_streams_to_disk(orthanc, tmp_path: Path) -> None:  # noqa: F811
    """WADO-RS retrieval holds one instance at a time: its peak Python memory stays below half the study's bytes
    (dicomweb-client's whole-study retrieve_study needs about four times the study's bytes)."""
    import tracemalloc

    import numpy as np

    from netlm_imaging.pacs.dicomweb import PacsCredentials, make_client, retrieve_study
    from tests.conftest import oblique_affine
    from tests.dicom_factory import write_image_series

    arr = np.random.default_rng(5).normal(40.0, 20.0, (256, 256, 80))
    files = write_image_series(
        tmp_path / "big", arr, oblique_affine(spacing=(0.9, 0.9, 2.0), angles_deg=(3.0, -2.0, 5.0)), seed=9
    )
    for f in files:
        orthanc.upload(f)
    total = sum(f.stat().st_size for f in files)
    uid = str(pydicom.dcmread(files[0], stop_before_pixels=True).StudyInstanceUID)
    client = make_client(orthanc.dicomweb_url, PacsCredentials(user=orthanc.user, password=orthanc.password))
    tracemalloc.start()
    try:
        got = retrieve_study(client, uid, tmp_path / "got")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(got) == 80
    assert sorted(p.stat().st_size for p in got) == pytest.approx(sorted(f.stat().st_size for f in files), abs=512)
    assert peak < total / 2, (peak, total)

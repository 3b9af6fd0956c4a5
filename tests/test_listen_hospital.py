"""`netlm listen` behind a real PACS routing rule, as a hospital runs it.

A real Orthanc (Debian package, DICOM on a free 127.0.0.1 port) forwards every
instance it stores to the listener (a Lua ``OnStoredInstance`` auto-routing
rule, one C-STORE per instance, as PACS routing rules do), and the listener
C-STOREs its SR and SEG back to that Orthanc, which forwards them to the
listener again (they must be dropped, not analysed). Scanners send with
dcmtk's storescu. Scenarios:

- two studies of two patients arriving at once (two scanners sending
  concurrently): each analysed once, with its own numbers, and its SR and SEG
  filed by Orthanc under its own patient and study;
- a partial series (the scanner sent half the CT with the SEG, the rest
  later): a failure that says the study is incomplete, then the result;
- a study resent by the PACS administrator: analysed again, nothing new in
  Orthanc;
- two studies interleaved instance by instance in one association (a PACS
  moving a worklist; pynetdicom sender, no Orthanc): each measured once;
- a restart of the listener after a study arrived and before it settled: the
  study is analysed after the restart, once.

Studies: CT + SEG phantoms built here (liver box, one lesion sphere, on an
oblique anisotropic grid), different per patient; truth from voxel counts and
the spacing, computed here. The SR and SEG fetched back from Orthanc pass
dciodvfy and read back (highdicom: the lesion segment's voxels) to the truth.
"""

from __future__ import annotations

import json
import logging
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import highdicom as hd
import numpy as np
import pydicom
import pytest
from pydicom.sr.codedict import codes

from netlm_imaging.pacs.dimse import DimseEndpoint
from netlm_imaging.pacs.listener import ListenerConfig, StudyListener
from netlm_imaging.report.dicom_sr import read_sr_measurements
from tests.conftest import oblique_affine
from tests.dicom_factory import write_image_series
from tests.dicom_tools import assert_dciodvfy_clean, dcmtk
from tests.orthanc_server import OrthancServer, _free_port, require_orthanc, start_orthanc
from tests.seg_factory import SegmentSpec, write_seg

SHAPE = (30, 28, 20)
SPACING = (0.9, 0.8, 2.0)
VOXEL_ML = SPACING[0] * SPACING[1] * SPACING[2] / 1000.0
AFFINE = oblique_affine(spacing=SPACING, angles_deg=(-6.0, 4.0, 12.0), origin=(-60.0, 35.0, 210.0))
QUIET_S = 1.0

ROUTING_LUA = """
function OnStoredInstance(instanceId, tags, metadata, origin)
  SendToModality(instanceId, 'LISTENER')
end
"""


def _write_study(folder: Path, *, seed: int, box: tuple[slice, slice, slice], lesion: tuple, patient: str) -> dict:
    """CT + SEG (Liver without the lesion, Lesion 1); the truth from voxel counts."""
    liver = np.zeros(SHAPE, bool)
    liver[box] = True
    ii, jj, kk = np.indices(SHAPE)
    (ci, cj, ck), r = lesion
    sphere = (ii - ci) ** 2 + (jj - cj) ** 2 + (kk - ck) ** 2 <= r * r
    liver &= ~sphere
    hu = np.full(SHAPE, -40.0)
    hu[liver], hu[sphere] = 55.0, 110.0
    files = write_image_series(folder / "ct", hu, AFFINE, seed=seed, patient_id=patient, patient_name=f"{patient}^X")
    segs = [
        SegmentSpec("Liver", liver),
        SegmentSpec(
            "Lesion 1",
            sphere,
            property_type=codes.SCT.Neoplasm,
            property_category=codes.SCT.MorphologicallyAbnormalStructure,
        ),
    ]
    (folder / "seg").mkdir(parents=True, exist_ok=True)
    seg = write_seg(folder / "seg" / "seg.dcm", files, segs, seed=seed)
    total = int((liver | sphere).sum())
    ct = pydicom.dcmread(files[0], stop_before_pixels=True)
    return {
        "files": files,
        "seg": seg,
        "study_uid": str(ct.StudyInstanceUID),
        "patient_id": patient,
        "sphere": sphere,
        "truth": {
            "liver_volume_ml": total * VOXEL_ML,
            "tumor_volume_ml": int(sphere.sum()) * VOXEL_ML,
            "involvement_percent": 100.0 * int(sphere.sum()) / total,
        },
    }


@pytest.fixture(scope="module")
def studies(tmp_path_factory: pytest.TempPathFactory) -> dict:
    base = tmp_path_factory.mktemp("hospital_studies")
    a = _write_study(
        base / "a", seed=301, box=(slice(4, 26), slice(3, 25), slice(2, 17)), lesion=((12, 11, 8), 3.6), patient="PAT-A"
    )
    b = _write_study(
        base / "b",
        seed=302,
        box=(slice(6, 22), slice(5, 20), slice(4, 15)),
        lesion=((15, 12, 10), 4.4),
        patient="PAT-B",
    )
    c = _write_study(
        base / "c", seed=303, box=(slice(3, 27), slice(4, 26), slice(3, 18)), lesion=((18, 14, 9), 2.9), patient="PAT-C"
    )
    # the truths differ, so a study measured on another's instances cannot pass
    for x, y in ((a, b), (a, c), (b, c)):
        assert abs(x["truth"]["liver_volume_ml"] - y["truth"]["liver_volume_ml"]) > 0.1
        assert abs(x["truth"]["tumor_volume_ml"] - y["truth"]["tumor_volume_ml"]) > 0.01
    return {"a": a, "b": b, "c": c}


@pytest.fixture(scope="module")
def hospital(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """Orthanc routing everything it stores to a running listener, which sends its results back to Orthanc."""
    require_orthanc()
    work = tmp_path_factory.mktemp("hospital")
    lua = work / "route.lua"
    lua.write_text(ROUTING_LUA)
    listen_port = _free_port()
    server = start_orthanc(
        work / "orthanc",
        dicom=True,
        modalities={"LISTENER": ("LISTENER", listen_port), "SCANNER": ("SCANNER", _free_port())},
        lua_scripts=[lua],
    )
    config = ListenerConfig(
        port=listen_port,
        ae_title="LISTENER",
        out_dir=work / "listen",
        bind="127.0.0.1",
        quiet_s=QUIET_S,
        destination=DimseEndpoint("127.0.0.1", int(server.dicom_port or 0), "ORTHANC", "LISTENER"),
    )
    listener = StudyListener(config, on_line=lambda line: None)
    try:
        listener.start()
        yield {"server": server, "listener": listener, "out": config.out_dir}
    finally:
        listener.stop()
        server.stop()


def _send(server: OrthancServer, files: list[Path]) -> subprocess.Popen:
    """A scanner (AE SCANNER) C-STOREs ``files`` to Orthanc with dcmtk's storescu."""
    cmd = [dcmtk("storescu"), "-R", "-aet", "SCANNER", "-aec", "ORTHANC", "127.0.0.1", str(server.dicom_port)]
    return subprocess.Popen([*cmd, *map(str, files)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _sent(proc: subprocess.Popen) -> None:
    out, _ = proc.communicate(timeout=180)
    assert proc.returncode == 0, out


def _log_lines(out: Path) -> list[str]:
    log = out / "listen.log"
    return log.read_text().splitlines() if log.exists() else []


def _wait(condition, what: str, timeout_s: float = 180.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        got = condition()
        if got:
            return got
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}")


def _lines_for(out: Path, study_uid: str) -> list[str]:
    return [line for line in _log_lines(out) if f"study {study_uid}:" in line]


def _orthanc_study(server: OrthancServer, study_uid: str) -> dict | None:
    found = [s for s in server.get_json("/studies?expand") if s["MainDicomTags"]["StudyInstanceUID"] == study_uid]
    return found[0] if found else None


def _results_in_orthanc(server: OrthancServer, study_uid: str) -> dict[str, str]:
    """Modality (SR, SEG) -> Orthanc instance id of the listener's results filed in that study."""
    study = _orthanc_study(server, study_uid)
    found: dict[str, str] = {}
    for series_id in study["Series"] if study else []:
        series = server.get_json(f"/series/{series_id}")
        if series["MainDicomTags"].get("Manufacturer") == "netlm-imaging":
            found[series["MainDicomTags"]["Modality"]] = series["Instances"][0]
    return found


def _assert_truth(report: dict, truth: dict) -> None:
    """The report's numbers (rounded to 3 decimals in report.json) against the voxel-count truth."""
    assert report["liver"]["volume_ml"] == pytest.approx(truth["liver_volume_ml"], abs=1e-3)
    assert report["tumor"]["intrahepatic_volume_ml"] == pytest.approx(truth["tumor_volume_ml"], abs=1e-3)
    assert report["involvement_percent"] == pytest.approx(truth["involvement_percent"], abs=1e-3)


def _dropped_own(caplog: pytest.LogCaptureFixture) -> int:
    return sum("dropped our own" in r.getMessage() for r in caplog.records)


def test_two_studies_arriving_at_once_are_each_measured_and_filed_under_their_own_patient(
    hospital: dict, studies: dict, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="netlm_imaging.pacs.listener")
    server, out = hospital["server"], hospital["out"]
    a, b = studies["a"], studies["b"]
    scanners = [_send(server, [*d["files"], d["seg"]]) for d in (a, b)]  # both scanners at the same time
    for proc in scanners:
        _sent(proc)
    _wait(lambda: _lines_for(out, a["study_uid"]) and _lines_for(out, b["study_uid"]), "both studies' lines")
    # the SR and SEG of each came back through the routing rule and were dropped, not analysed
    _wait(lambda: _dropped_own(caplog) >= 4, "our 2 SR + 2 SEG forwarded back and dropped")
    time.sleep(3 * QUIET_S)
    for d in (a, b):
        lines = _lines_for(out, d["study_uid"])
        assert len(lines) == 1, _log_lines(out)  # one analysis per study, none of its own outputs
        assert "21 instances: ok" in lines[0], lines[0]
        assert "sent 2 object(s) to ORTHANC@" in lines[0], lines[0]
        report = json.loads((out / d["study_uid"] / "report.json").read_text())
        _assert_truth(report, d["truth"])
        kept = list((out / "incoming" / d["study_uid"]).glob("*.dcm"))
        assert len(kept) == 21
        assert not any(pydicom.dcmread(f, stop_before_pixels=True).get("Manufacturer") == "netlm-imaging" for f in kept)
    # Orthanc holds two patients, each with one study, in which the SR and SEG measured on it are filed
    assert sorted(p["MainDicomTags"]["PatientID"] for p in server.get_json("/patients?expand")) == ["PAT-A", "PAT-B"]
    assert len(server.get_json("/studies")) == 2
    for d in (a, b):
        results = _results_in_orthanc(server, d["study_uid"])
        assert sorted(results) == ["SEG", "SR"]
        for modality, inst in results.items():
            path = tmp_path / f"{d['patient_id']}_{modality}.dcm"
            path.write_bytes(server.get_bytes(f"/instances/{inst}/file"))
            assert_dciodvfy_clean(path)
            ds = pydicom.dcmread(path, stop_before_pixels=True)
            assert (ds.PatientID, ds.StudyInstanceUID) == (d["patient_id"], d["study_uid"])
        sr = read_sr_measurements(tmp_path / f"{d['patient_id']}_SR.dcm")
        assert sr["liver_volume_ml"] == pytest.approx(d["truth"]["liver_volume_ml"], rel=1e-6)
        assert sr["tumor_volume_ml"] == pytest.approx(d["truth"]["tumor_volume_ml"], rel=1e-6)
        # the SEG Orthanc holds: the segment the lesion group references is this patient's sphere, voxel for voxel
        (lesion,) = sr["lesions"]
        seg = hd.seg.segread(tmp_path / f"{d['patient_id']}_SEG.dcm")
        uids = [str(pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID) for f in d["files"]]
        number = lesion["referenced_segment"]["segment_number"]
        arr = seg.get_pixels_by_source_instance(uids, segment_numbers=[number], ignore_spatial_locations=True)
        mask = arr[..., 0].transpose(2, 1, 0).astype(bool)
        assert np.array_equal(mask, d["sphere"])
        assert lesion["volume_ml"] == pytest.approx(int(d["sphere"].sum()) * VOXEL_ML, rel=1e-6)


def test_a_partial_series_says_the_study_is_incomplete_then_the_rest_gives_the_result(
    hospital: dict, studies: dict
) -> None:
    server, out = hospital["server"], hospital["out"]
    c = studies["c"]
    first, rest = c["files"][:12], c["files"][12:]  # the liver and its SEG frames reach slice 17
    _sent(_send(server, [c["seg"], *first]))
    (line,) = _wait(lambda: _lines_for(out, c["study_uid"]), "the partial study's line")
    seg_uid = str(pydicom.dcmread(c["seg"], stop_before_pixels=True).SOPInstanceUID)
    said = f"13 instances: failed: the study is incomplete: the SEG {seg_uid} names 20 image instance(s), 8 of them"
    assert said in line, line
    assert "it is analysed again when the missing instances arrive" in line
    failed = json.loads((out / c["study_uid"] / "failed.json").read_text())
    assert "incomplete" in failed["error"]
    assert not (out / c["study_uid"] / "report.json").exists()  # no number from half a liver
    assert _results_in_orthanc(server, c["study_uid"]) == {}
    _sent(_send(server, rest))
    lines = _wait(lambda: (x := _lines_for(out, c["study_uid"]))[1:] and x, "the complete study's line")
    assert "21 instances: ok" in lines[1], lines
    assert not (out / c["study_uid"] / "failed.json").exists()
    _assert_truth(json.loads((out / c["study_uid"] / "report.json").read_text()), c["truth"])
    assert sorted(_results_in_orthanc(server, c["study_uid"])) == ["SEG", "SR"]


def test_a_study_resent_by_the_pacs_is_analysed_again_and_changes_nothing_in_it(hospital: dict, studies: dict) -> None:
    server, out = hospital["server"], hospital["out"]
    a = studies["a"]
    if not _lines_for(out, a["study_uid"]):  # run alone: the study arrives first
        _sent(_send(server, [*a["files"], a["seg"]]))
        _wait(lambda: _lines_for(out, a["study_uid"]), "the first analysis")
    before_lines = len(_lines_for(out, a["study_uid"]))
    before = sorted(server.get_json("/instances"))
    first_report = json.loads((out / a["study_uid"] / "report.json").read_text())
    study = _orthanc_study(server, a["study_uid"])
    assert study is not None
    # the administrator resends the study (its CT, SEG and our results) to the listener
    job = server.post_json("/modalities/LISTENER/store", {"Resources": [study["ID"]], "Synchronous": True})
    assert job.get("FailedInstancesCount", 0) == 0, job
    lines = _wait(lambda: (x := _lines_for(out, a["study_uid"]))[before_lines:] and x, "the second analysis")
    assert "21 instances: ok" in lines[-1], lines  # our SR and SEG in the resent study are not counted
    time.sleep(3 * QUIET_S)
    assert len(_lines_for(out, a["study_uid"])) == before_lines + 1
    report = json.loads((out / a["study_uid"] / "report.json").read_text())
    assert report["liver"] == first_report["liver"]
    assert report["lesions"] == first_report["lesions"]
    assert sorted(server.get_json("/instances")) == before  # same SR and SEG UIDs: Orthanc stored nothing new


def _send_all(port: int, files: list[Path]) -> None:
    from pynetdicom import AE

    datasets = [pydicom.dcmread(f) for f in files]
    ae = AE(ae_title="ARCHIVE")
    for sop in sorted({str(ds.SOPClassUID) for ds in datasets}):
        ae.add_requested_context(sop, str(datasets[0].file_meta.TransferSyntaxUID))
    assoc = ae.associate("127.0.0.1", port, ae_title="LISTENER")
    assert assoc.is_established
    assert [assoc.send_c_store(ds).Status for ds in datasets] == [0x0000] * len(datasets)
    assoc.release()


def test_two_studies_interleaved_in_one_association_are_each_measured_once(studies: dict, tmp_path: Path) -> None:
    """A PACS moving a worklist sends both studies over one association, instance by instance alternately."""
    a, b = studies["a"], studies["b"]
    listener = StudyListener(
        ListenerConfig(
            port=_free_port(), ae_title="LISTENER", out_dir=tmp_path / "listen", bind="127.0.0.1", quiet_s=QUIET_S
        ),
        on_line=lambda line: None,
    )
    listener.start()
    try:
        _send_all(
            listener.config.port, [f for pair in zip([*a["files"], a["seg"]], [*b["files"], b["seg"]]) for f in pair]
        )
        out = tmp_path / "listen"
        _wait(lambda: len(_log_lines(out)) >= 2, "both studies' lines")
        time.sleep(3 * QUIET_S)
    finally:
        listener.stop()
    assert len(_log_lines(out)) == 2, _log_lines(out)
    for d in (a, b):
        (line,) = _lines_for(out, d["study_uid"])
        assert "21 instances: ok" in line, line
        _assert_truth(json.loads((out / d["study_uid"] / "report.json").read_text()), d["truth"])


def test_a_study_received_before_a_restart_is_analysed_after_it_once(studies: dict, tmp_path: Path) -> None:
    """The service is restarted (an update, a reboot) after a study arrived and before it settled."""
    a = studies["a"]
    out = tmp_path / "listen"

    def listener(quiet_s: float) -> StudyListener:
        config = ListenerConfig(port=_free_port(), ae_title="LISTENER", out_dir=out, bind="127.0.0.1", quiet_s=quiet_s)
        started = StudyListener(config, on_line=lambda line: None)
        started.start()
        return started

    before = listener(600.0)  # it would wait 10 min for more instances
    try:
        _send_all(before.config.port, [*a["files"], a["seg"]])
    finally:
        before.stop()  # stopped before the study settled: received, not analysed
    assert _log_lines(out) == []
    after = listener(QUIET_S)
    try:
        (line,) = _wait(lambda: _lines_for(out, a["study_uid"]), "the resumed study's line")
    finally:
        after.stop()
    assert "21 instances: ok" in line, line
    _assert_truth(json.loads((out / a["study_uid"] / "report.json").read_text()), a["truth"])
    again = listener(QUIET_S)  # restarted once more: the study was analysed, nothing to resume
    try:
        time.sleep(4 * QUIET_S)
    finally:
        again.stop()
    assert len(_log_lines(out)) == 1, _log_lines(out)

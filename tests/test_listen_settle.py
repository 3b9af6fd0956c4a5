"""When `netlm listen` takes a study as complete: a real pynetdicom sender on loopback pausing inside its
association, and a SEG that comes in a second association or much later.

The listener runs in-process (its SCP on a free 127.0.0.1 port, stopped at the end). The study is
tests/test_sr.py's CT + SEG phantom; its truth is the phantom's voxel counts.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pydicom
import pytest

from netlm_imaging.pacs.listener import ListenerConfig, StudyListener
from tests.orthanc_server import _free_port
from tests.test_sr import write_phantom_study

QUIET_S = 1.0


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> dict:
    d = write_phantom_study(tmp_path_factory.mktemp("settle_study"), seed=91)
    d["study_uid"] = str(pydicom.dcmread(d["files"][0], stop_before_pixels=True).StudyInstanceUID)
    return d


class _Sender:
    """A C-STORE SCU (pynetdicom) holding its association open between calls."""

    def __init__(self, port: int, files: list[Path]) -> None:
        from pynetdicom import AE

        self.datasets = [pydicom.dcmread(f) for f in files]
        ae = AE(ae_title="SENDER")
        for sop in sorted({str(ds.SOPClassUID) for ds in self.datasets}):
            ae.add_requested_context(sop, str(self.datasets[0].file_meta.TransferSyntaxUID))
        self.assoc = ae.associate("127.0.0.1", port, ae_title="LISTENER")
        assert self.assoc.is_established

    def send(self, datasets: list) -> None:
        for ds in datasets:
            assert self.assoc.send_c_store(ds).Status == 0x0000

    def release(self) -> None:
        self.assoc.release()


def _listener(out: Path) -> StudyListener:
    lines: list[str] = []
    listener = StudyListener(
        ListenerConfig(port=_free_port(), ae_title="LISTENER", out_dir=out, bind="127.0.0.1", quiet_s=QUIET_S),
        on_line=lines.append,
    )
    listener.start()
    return listener


def _wait_lines(listener: StudyListener, n: int, timeout_s: float = 120.0) -> list[str]:
    log = listener.config.out_dir / "listen.log"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        lines = log.read_text().splitlines() if log.exists() else []
        if len(lines) >= n:
            return lines
        time.sleep(0.1)
    pytest.fail(f"{n} line(s) expected in listen.log; got {log.read_text() if log.exists() else 'none'}")


def test_a_pause_inside_an_association_does_not_analyse_half_a_study(study: dict, tmp_path: Path) -> None:
    listener = _listener(tmp_path / "listen")
    try:
        sender = _Sender(listener.config.port, [*study["files"], study["seg"]])
        half = len(sender.datasets) // 2
        sender.send(sender.datasets[:half])  # half the CT slices ...
        time.sleep(4 * QUIET_S)  # ... then the PACS pauses (transcoding, a slow archive tier)
        assert not (tmp_path / "listen" / "listen.log").exists(), "analysed while the association was open"
        sender.send(sender.datasets[half:])
        sender.release()
        lines = _wait_lines(listener, 1)
        time.sleep(3 * QUIET_S)  # nothing more comes
        lines = (tmp_path / "listen" / "listen.log").read_text().splitlines()
    finally:
        listener.stop()
    assert len(lines) == 1, lines
    assert f"study {study['study_uid']}: 21 instances: ok" in lines[0]
    report = json.loads((tmp_path / "listen" / study["study_uid"] / "report.json").read_text())
    assert report["liver"]["volume_ml"] == pytest.approx(study["truth"]["liver_volume_ml"], rel=1e-4)


def test_seg_in_a_second_association_within_the_quiet_time_is_one_analysis(study: dict, tmp_path: Path) -> None:
    listener = _listener(tmp_path / "listen")
    try:
        ct = _Sender(listener.config.port, study["files"])
        ct.send(ct.datasets)
        ct.release()
        time.sleep(QUIET_S / 4)
        seg = _Sender(listener.config.port, [study["seg"]])
        seg.send(seg.datasets)
        seg.release()
        lines = _wait_lines(listener, 1)
        time.sleep(3 * QUIET_S)
        lines = (tmp_path / "listen" / "listen.log").read_text().splitlines()
    finally:
        listener.stop()
    assert len(lines) == 1, lines
    assert "21 instances: ok" in lines[0]


def test_seg_arriving_much_later_gives_a_failure_then_the_result(study: dict, tmp_path: Path) -> None:
    """The CT alone is analysed once settled (no segmentation: a failure line and failed.json); the SEG sent
    later makes the study due again: the result, and failed.json is gone."""
    out = tmp_path / "listen"
    listener = _listener(out)
    try:
        ct = _Sender(listener.config.port, study["files"])
        ct.send(ct.datasets)
        ct.release()
        first = _wait_lines(listener, 1)
        assert "20 instances: failed" in first[0]
        assert "no DICOM SEG or RTSTRUCT" in first[0]
        assert (out / study["study_uid"] / "failed.json").exists()
        seg = _Sender(listener.config.port, [study["seg"]])
        seg.send(seg.datasets)
        seg.release()
        lines = _wait_lines(listener, 2)
    finally:
        listener.stop()
    assert "21 instances: ok" in lines[1]
    assert not (out / study["study_uid"] / "failed.json").exists()
    report = json.loads((out / study["study_uid"] / "report.json").read_text())
    assert report["involvement_percent"] == pytest.approx(study["truth"]["involvement_percent"], rel=1e-4)

"""A PACS that cannot read one instance of the study from its archive (a real Orthanc on loopback).

Orthanc runs without its storage cache and the file of one CT slice is removed from its storage folder, as
when an archive volume is offline. A C-MOVE then connects to our C-STORE SCP and fails before the first
sub-operation: status 0xC000, 0 sent, 0 failed, which `netlm pacs` read as 'NETLM is not registered as a
move destination'. A C-GET sends some instances and ends with 0xC000, which it read as 'refused: check that
the PACS allows C-GET'. Both must say the PACS failed on the way and to check its log.
"""

from __future__ import annotations

from collections.abc import Iterator

import pydicom
import pytest

from netlm_imaging.cli import main
from tests.orthanc_server import _free_port, require_orthanc, start_orthanc
from tests.test_sr import write_phantom_study


@pytest.fixture(scope="module")
def pacs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    require_orthanc()
    move_port = _free_port()
    work = tmp_path_factory.mktemp("orthanc_archive_fault")
    server = start_orthanc(
        work,
        dicom=True,
        modalities={"NETLM": ("NETLM", move_port)},
        settings={"MaximumStorageCacheSize": 0},  # every read goes to the storage folder
    )
    try:
        d = write_phantom_study(tmp_path_factory.mktemp("archive_fault_study"), seed=247)
        ids = [server.upload(f)["ID"] for f in [*d["files"], d["seg"]]]
        uuid = server.get_json(f"/instances/{ids[10]}/attachments/dicom/info")["Uuid"]  # a CT slice in the middle
        lost = list((work / "storage").rglob(uuid))
        assert len(lost) == 1
        lost[0].unlink()
        ct = pydicom.dcmread(d["files"][0], stop_before_pixels=True)
        d.update(server=server, move_port=move_port, study_uid=str(ct.StudyInstanceUID))
        yield d
    finally:
        server.stop()


def _run(pacs: dict, capsys: pytest.CaptureFixture[str], *extra: str) -> str:
    server = pacs["server"]
    args = ["pacs", "--dimse", f"127.0.0.1:{server.dicom_port}", "--called-ae", "ORTHANC", "--study", pacs["study_uid"]]
    assert main([*args, "--quiet", *extra]) == 3
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err
    return err


def test_cmove_that_fails_after_connecting_to_us_does_not_blame_the_registration(pacs: dict, capsys) -> None:
    port = pacs["move_port"]
    err = _run(pacs, capsys, "--retrieve", "move", "--port", str(port), "--bind", "127.0.0.1")
    assert f"the PACS connected to our C-STORE SCP (--port {port}) for the C-MOVE of study {pacs['study_uid']}" in err
    assert "(status 0xC000, 0 instance(s) sent, 0 failed)" in err
    assert "check the PACS log" in err
    assert "not registered" not in err


def test_cget_that_fails_after_sending_some_does_not_call_it_a_refusal(pacs: dict, capsys) -> None:
    import re

    err = _run(pacs, capsys)
    sent = re.search(rf"the PACS ended the C-GET of study {pacs['study_uid']} with a failure after sending (\d+) ", err)
    assert sent is not None, err
    assert 1 <= int(sent.group(1)) <= 20  # of the 21 instances, not the one it cannot read
    assert "check the PACS log" in err
    assert "allows C-GET" not in err

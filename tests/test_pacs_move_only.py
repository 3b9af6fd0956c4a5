"""A PACS that serves C-MOVE only, and only to the AE titles it knows (a real Orthanc on loopback).

Orthanc runs with ``AllowGet: false`` for its one registered modality (NETLM, at 127.0.0.1 and a free
port) and ``DicomAlwaysAllowFind`` / ``DicomAlwaysAllowMove`` on, so an unregistered AE title may query and
ask for a C-MOVE, but Orthanc has nowhere to send the study. What the user of ``netlm pacs --dimse`` is
told in each case (exit 3, one line, the fix named) and that the registered C-MOVE measures the phantom's
truth (voxel counts of tests/test_sr.py's study).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pydicom
import pytest

from netlm_imaging.cli import main
from netlm_imaging.report.dicom_sr import read_sr_measurements
from tests.orthanc_server import _free_port, require_orthanc, start_orthanc
from tests.test_sr import write_phantom_study


@pytest.fixture(scope="module")
def pacs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    require_orthanc()
    move_port = _free_port()
    server = start_orthanc(
        tmp_path_factory.mktemp("orthanc_move_only"),
        dicom=True,
        modalities={"NETLM": ("NETLM", move_port)},
        modality_permissions={"AllowGet": False},
        settings={"DicomAlwaysAllowFind": True, "DicomAlwaysAllowMove": True},
    )
    try:
        d = write_phantom_study(tmp_path_factory.mktemp("move_only_study"), seed=31)
        for f in [*d["files"], d["seg"]]:
            server.upload(f)
        d.update(
            server=server,
            move_port=move_port,
            study_uid=str(pydicom.dcmread(d["files"][0], stop_before_pixels=True).StudyInstanceUID),
        )
        yield d
    finally:
        server.stop()


def _run(pacs: dict, tmp_path: Path, capsys, *extra: str) -> tuple[int, str]:
    server = pacs["server"]
    args = ["pacs", "--dimse", f"127.0.0.1:{server.dicom_port}", "--called-ae", "ORTHANC", "--study", pacs["study_uid"]]
    code = main([*args, "--out", str(tmp_path / "out"), "--quiet", *extra])
    return code, capsys.readouterr().err


def test_cget_refused_says_to_use_cmove(pacs: dict, tmp_path: Path, capsys) -> None:
    for ae in ("NETLM", "VISITOR"):  # registered without C-GET, or not registered at all
        code, err = _run(pacs, tmp_path, capsys, "--calling-ae", ae)
        assert code == 3, err
        assert f"does not allow C-GET for AE {ae!r}" in err
        assert "retry with --retrieve move --port P" in err
        assert len(err.strip().splitlines()) == 1
        assert "Traceback" not in err
        assert not (tmp_path / "out").exists()


def test_a_refused_cget_falls_back_to_cmove_when_a_port_is_given(pacs: dict, tmp_path: Path, capsys, caplog) -> None:
    """The default C-GET is refused (AllowGet false); with --port the C-MOVE is tried instead, logged."""
    extra = ("--calling-ae", "NETLM", "--port", str(pacs["move_port"]), "--bind", "127.0.0.1")
    with caplog.at_level(logging.WARNING, logger="netlm_imaging"):
        code, err = _run(pacs, tmp_path, capsys, *extra)
    assert code == 0, err
    warned = [r.getMessage() for r in caplog.records if "instead" in r.getMessage()]
    assert len(warned) == 1, warned
    assert "does not allow C-GET for AE 'NETLM'" in warned[0]
    assert warned[0].endswith("; retrieving the study with C-MOVE instead")
    got = read_sr_measurements(tmp_path / "out" / "report_sr.dcm")
    for key in ("liver_volume_ml", "tumor_volume_ml", "involvement_percent"):
        assert got[key] == pytest.approx(pacs["truth"][key], rel=1e-4), key


def test_cmove_to_an_unregistered_ae_title_says_so_and_how_to_register_it(pacs: dict, tmp_path: Path, capsys) -> None:
    port = _free_port()
    code, err = _run(pacs, tmp_path, capsys, "--calling-ae", "VISITOR", "--retrieve", "move", "--port", str(port))
    assert code == 3, err
    assert "the PACS refused to send study" in err
    assert "'VISITOR' is not registered in the PACS as a move destination" in err
    assert f'DicomModalities, e.g. "VISITOR": ["VISITOR", "<this host>", {port}]' in err
    assert "--calling-ae" in err
    assert "; C-GET instead: the PACS gave no answer to the C-GET" in err  # the fallback was refused too
    assert len(err.strip().splitlines()) == 1


def test_cmove_to_the_registered_ae_title_measures_the_truth(pacs: dict, tmp_path: Path, capsys) -> None:
    code, err = _run(
        pacs, tmp_path, capsys, "--calling-ae", "NETLM", "--retrieve", "move", "--port", str(pacs["move_port"]),
        "--bind", "127.0.0.1",
    )  # fmt: skip
    assert code == 0, err
    got = read_sr_measurements(tmp_path / "out" / "report_sr.dcm")
    truth = pacs["truth"]
    for key in ("liver_volume_ml", "tumor_volume_ml", "involvement_percent"):
        assert got[key] == pytest.approx(truth[key], rel=1e-4), key


def test_cmove_with_a_port_the_pacs_does_not_have_for_us_says_so(pacs: dict, tmp_path: Path, capsys) -> None:
    """NETLM is registered at another port than the --port our SCP listens on: Orthanc cannot reach it."""
    port = _free_port()
    assert port != pacs["move_port"]
    code, err = _run(pacs, tmp_path, capsys, "--calling-ae", "NETLM", "--retrieve", "move", "--port", str(port))
    assert code == 3, err
    assert "'NETLM' is not registered in the PACS as a move destination (or not at this host and port)" in err
    assert f'"NETLM": ["NETLM", "<this host>", {port}]' in err


def test_cmove_to_a_move_ae_other_than_the_calling_ae_measures_the_truth(pacs: dict, tmp_path: Path, capsys) -> None:
    """A PACS that knows this computer's C-STORE SCP as NETLM while we query as VISITOR (a workstation whose
    SCU and SCP titles differ): ``--move-ae NETLM`` sends the study there; without it the study goes nowhere."""
    args = ("--calling-ae", "VISITOR", "--retrieve", "move", "--port", str(pacs["move_port"]), "--bind", "127.0.0.1")
    code, err = _run(pacs, tmp_path, capsys, *args)
    assert code == 3, err
    assert "'VISITOR' is not registered in the PACS as a move destination" in err
    assert "--move-ae" in err
    code, err = _run(pacs, tmp_path, capsys, *args, "--move-ae", "NETLM")
    assert code == 0, err
    got = read_sr_measurements(tmp_path / "out" / "report_sr.dcm")
    for key in ("liver_volume_ml", "tumor_volume_ml", "involvement_percent"):
        assert got[key] == pytest.approx(pacs["truth"][key], rel=1e-4), key


def test_an_unregistered_move_ae_is_named_in_the_refusal(pacs: dict, tmp_path: Path, capsys) -> None:
    port = _free_port()
    code, err = _run(pacs, tmp_path, capsys, "--retrieve", "move", "--port", str(port), "--move-ae", "NETLM_SCP")
    assert code == 3, err
    assert "the PACS refused to send study" in err
    assert "to AE 'NETLM_SCP'" in err
    assert f'"NETLM_SCP": ["NETLM_SCP", "<this host>", {port}]' in err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (("--move-ae", "NETLM"), "--move-ae is the C-MOVE destination: use it with --retrieve move --port P"),
        (("--retrieve", "move", "--port", "4242", "--move-ae", "A\\B"), "--move-ae 'A\\\\B': an AE title is 1 to 16"),
        (("--timeout", "0"), "--timeout 0.0: give the seconds to wait for each PACS answer, a number above 0"),
        (("--timeout", "nan"), "--timeout nan: give the seconds to wait"),
        (("--timeout", "-5"), "--timeout -5.0: give the seconds to wait"),
    ],
)
def test_move_ae_and_timeout_misuse_is_a_usage_error(tmp_path: Path, capsys, extra, message) -> None:
    """Checked before any association: no PACS is needed (nothing listens on the address)."""
    port = _free_port()
    args = ["pacs", "--dimse", f"127.0.0.1:{port}", "--called-ae", "ORTHANC", "--study", "1.2.3", *extra]
    assert main([*args, "--out", str(tmp_path / "out"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert message in err, err
    assert len(err.strip().splitlines()) == 1
    assert "Traceback" not in err


def test_move_ae_with_dicomweb_is_refused(tmp_path: Path, capsys) -> None:
    args = ["pacs", "--url", "http://127.0.0.1:1/dicom-web", "--study", "1.2.3", "--move-ae", "NETLM", "--quiet"]
    assert main(args) == 2
    assert "--move-ae is for --dimse" in capsys.readouterr().err


def test_a_pacs_that_never_answers_fails_after_the_timeout(tmp_path: Path, capsys) -> None:
    """A PACS that takes the TCP connection and then says nothing (a hung server, a firewall that holds the
    connection): ``--timeout 2`` ends the wait with one line naming the PACS, long before the 60 s default."""
    import socket
    import threading
    import time

    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(4)
    held: list[socket.socket] = []
    stop = threading.Event()

    def hold() -> None:
        srv.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(srv.accept()[0])
            except OSError:
                continue

    t = threading.Thread(target=hold, daemon=True)
    t.start()
    try:
        port = srv.getsockname()[1]
        args = ["pacs", "--dimse", f"127.0.0.1:{port}", "--called-ae", "ORTHANC", "--study", "1.2.3", "--quiet"]
        start = time.monotonic()
        code = main([*args, "--timeout", "2"])
        elapsed = time.monotonic() - start
    finally:
        stop.set()
        t.join()
        for c in held:
            c.close()
        srv.close()
    err = capsys.readouterr().err
    assert code == 3, err
    assert elapsed < 20, elapsed
    assert f"ORTHANC@127.0.0.1:{port}: no DICOM association" in err
    assert len(err.strip().splitlines()) == 1
    assert "Traceback" not in err

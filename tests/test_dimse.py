"""DIMSE against a real Orthanc on loopback: `netlm pacs --dimse` (C-FIND, C-GET / C-MOVE, C-STORE)
and `netlm listen` receiving a study from dcmtk's storescu and C-STOREing the SR + SEG to Orthanc.

Orthanc (Debian package) runs with its DICOM port on a free 127.0.0.1 port and
our AE titles registered as modalities. The study is tests/test_sr.py's CT +
SEG phantom (truth from voxel counts). Every server and listener started here
uses free 127.0.0.1 ports and is stopped.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pydicom
import pytest

from netlm_imaging.cli import main
from netlm_imaging.report.dicom_sr import read_sr_measurements
from tests.dicom_tools import assert_dciodvfy_clean, dcmtk
from tests.orthanc_server import OrthancServer, _free_port, require_orthanc, start_orthanc
from tests.test_sr import write_phantom_study

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def pacs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    require_orthanc()
    move_port, listen_port = _free_port(), _free_port()
    server = start_orthanc(
        tmp_path_factory.mktemp("orthanc_dimse"),
        dicom=True,
        modalities={"NETLM": ("NETLM", move_port), "LISTENER": ("LISTENER", listen_port)},
    )
    try:
        d = write_phantom_study(tmp_path_factory.mktemp("dimse_study"), seed=21)
        for f in [*d["files"], d["seg"]]:
            server.upload(f)
        ct = pydicom.dcmread(d["files"][0], stop_before_pixels=True)
        d.update(
            server=server,
            study_uid=str(ct.StudyInstanceUID),
            patient_id=str(ct.PatientID),
            move_port=move_port,
            listen_port=listen_port,
        )
        yield d
    finally:
        server.stop()


def _address(server: OrthancServer) -> str:
    return f"127.0.0.1:{server.dicom_port}"


def _sr_instances(server: OrthancServer) -> list[str]:
    return [
        inst
        for s in server.get_json("/series?expand")
        if s["MainDicomTags"].get("Modality") == "SR"
        for inst in s["Instances"]
    ]


def test_pacs_dimse_cget_analyses_and_pushes_sr_and_seg_into_the_same_study(pacs: dict, tmp_path: Path, capsys) -> None:
    server = pacs["server"]
    args = ["pacs", "--dimse", _address(server), "--called-ae", "ORTHANC", "--calling-ae", "NETLM"]
    code = main([*args, "--study", pacs["study_uid"], "--push", "--out", str(tmp_path / "out"), "--quiet"])
    assert code == 0, capsys.readouterr().err
    srs = _sr_instances(server)
    assert len(srs) == 1
    sr_file = tmp_path / "sr_from_orthanc.dcm"
    sr_file.write_bytes(server.get_bytes(f"/instances/{srs[0]}/file"))
    assert_dciodvfy_clean(sr_file)
    got = read_sr_measurements(sr_file)
    truth = pacs["truth"]
    for key in ("liver_volume_ml", "tumor_volume_ml", "involvement_percent", "remnant_volume_ml"):
        assert got[key] == pytest.approx(truth[key], rel=1e-4), key
    # filed under the original patient and study (the pushed SR carries the source Patient / Study modules)
    assert len(server.get_json("/patients")) == 1
    assert len(server.get_json("/studies")) == 1
    sr = pydicom.dcmread(sr_file, stop_before_pixels=True)
    assert (sr.PatientID, sr.StudyInstanceUID) == (pacs["patient_id"], pacs["study_uid"])
    # the local copies are de-identified
    for p in (tmp_path / "out").iterdir():
        assert b"SECRET-ID-123" not in p.read_bytes()
    # a re-run (the study now holds our SR and SEG) changes nothing in the PACS
    before = len(server.get_json("/instances"))
    code = main([*args, "--study", pacs["study_uid"], "--push", "--quiet"])
    assert code == 0, capsys.readouterr().err
    assert len(server.get_json("/instances")) == before
    assert len(_sr_instances(server)) == 1


def test_pacs_dimse_cmove_to_our_scp(pacs: dict, tmp_path: Path, capsys) -> None:
    server = pacs["server"]
    code = main(
        [
            "pacs",
            "--dimse",
            _address(server),
            "--called-ae",
            "ORTHANC",
            "--calling-ae",
            "NETLM",
            "--retrieve",
            "move",
            "--port",
            str(pacs["move_port"]),
            "--bind",
            "127.0.0.1",
            "--study",
            pacs["study_uid"],
            "--out",
            str(tmp_path / "out"),
            "--quiet",
        ]
    )
    assert code == 0, capsys.readouterr().err
    got = read_sr_measurements(tmp_path / "out" / "report_sr.dcm")
    assert got["liver_volume_ml"] == pytest.approx(pacs["truth"]["liver_volume_ml"], rel=1e-4)


def test_an_unknown_move_destination_falls_back_to_cget(pacs: dict, tmp_path: Path, capsys, caplog) -> None:
    """C-MOVE to an AE title Orthanc does not know: refused before sending anything, so the study comes by
    C-GET instead (logged), and is measured."""
    import logging

    server = pacs["server"]
    args = ["pacs", "--dimse", _address(server), "--called-ae", "ORTHANC", "--calling-ae", "NETLM"]
    args += ["--retrieve", "move", "--port", str(_free_port()), "--move-ae", "NOBODY", "--bind", "127.0.0.1"]
    with caplog.at_level(logging.WARNING, logger="netlm_imaging"):
        code = main([*args, "--study", pacs["study_uid"], "--out", str(tmp_path / "out"), "--quiet"])
    assert code == 0, capsys.readouterr().err
    warned = [r.getMessage() for r in caplog.records if "instead" in r.getMessage()]
    assert len(warned) == 1, warned
    assert "'NOBODY' is not registered in the PACS as a move destination" in warned[0]
    assert warned[0].endswith("; retrieving the study with C-GET instead")
    got = read_sr_measurements(tmp_path / "out" / "report_sr.dcm")
    assert got["liver_volume_ml"] == pytest.approx(pacs["truth"]["liver_volume_ml"], rel=1e-4)


def test_pacs_dimse_refusals(pacs: dict, tmp_path: Path, capsys) -> None:
    server = pacs["server"]
    base = ["pacs", "--dimse", _address(server), "--calling-ae", "NETLM", "--quiet"]
    assert main([*base, "--called-ae", "ORTHANC", "--study", "1.2.3.4.404"]) == 3
    assert "not found" in capsys.readouterr().err
    assert main([*base, "--called-ae", "WRONG_AE", "--study", pacs["study_uid"]]) == 3
    err = capsys.readouterr().err
    assert "rejected the association (Called AE title not recognised): 'WRONG_AE' is not" in err
    assert "check --called-ae" in err
    assert "Traceback" not in err
    # an AE title the PACS does not know (Orthanc: not in DicomModalities) is named, with the fix
    stranger_args = ["pacs", "--dimse", _address(server), "--called-ae", "ORTHANC", "--calling-ae", "STRANGER"]
    assert main([*stranger_args, "--study", pacs["study_uid"], "--quiet"]) == 3
    err = capsys.readouterr().err
    assert "does not know our AE title 'STRANGER'" in err
    assert "DicomModalities" in err
    assert len(err.strip().splitlines()) == 1
    assert main([*base, "--study", pacs["study_uid"]]) == 2  # no --called-ae
    assert "--called-ae" in capsys.readouterr().err
    assert main(["pacs", "--dimse", "nohostport", "--called-ae", "X", "--study", pacs["study_uid"]]) == 2
    assert main([*base, "--called-ae", "ORTHANC", "--study", "../../system"]) == 2
    assert "not a DICOM UID" in capsys.readouterr().err
    # the test Orthanc talks only to the AE titles registered for 127.0.0.1 (it cannot bind DICOM to loopback)
    stranger = subprocess.run(
        [
            dcmtk("storescu"),
            "-aet",
            "STRANGER",
            "-aec",
            "ORTHANC",
            "127.0.0.1",
            str(server.dicom_port),
            str(pacs["seg"]),
        ],
        capture_output=True,
        timeout=60,
    )
    assert stranger.returncode != 0
    free = _free_port()  # nobody listens there
    assert main(["pacs", "--dimse", f"127.0.0.1:{free}", "--called-ae", "X", "--study", pacs["study_uid"]]) == 3
    assert "no DICOM association" in capsys.readouterr().err


def _wait_lines(path: Path, n: int, proc: subprocess.Popen, timeout_s: float = 180.0) -> list[str]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        lines = path.read_text().splitlines() if path.exists() else []
        if len(lines) >= n:
            return lines
        if proc.poll() is not None:
            break
        time.sleep(0.2)
    out = proc.stdout.read() if proc.stdout and proc.poll() is not None else ""
    pytest.fail(f"listener wrote {path.read_text() if path.exists() else 'nothing'}; {out}")


def test_listener_receives_from_storescu_and_sends_the_sr_to_orthanc(pacs: dict, tmp_path: Path) -> None:
    storescu = dcmtk("storescu")
    server = pacs["server"]
    bad = write_phantom_study(tmp_path / "bad", seed=22)  # its CT without any segmentation: a bad study
    out = tmp_path / "listen"
    port = pacs["listen_port"]
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "netlm_imaging.cli",
            "listen",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--ae-title",
            "LISTENER",
            "--out",
            str(out),
            "--quiet-seconds",
            "1",
            "--dest",
            _address(server),
            "--dest-ae",
            "ORTHANC",
            "--max-studies",
            "3",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # wait until the SCP answers a C-ECHO
            echo = subprocess.run(
                [dcmtk("echoscu"), "-aec", "LISTENER", "127.0.0.1", str(port)], capture_output=True, timeout=30
            )
            if echo.returncode == 0:
                break
            time.sleep(0.2)
        send = [
            storescu,
            "-R",
            "-aec",
            "LISTENER",
            "-aet",
            "STORESCU",
            "127.0.0.1",
            str(port),
        ]  # -R: the files' classes
        r = subprocess.run([*send, *map(str, bad["files"])], capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        log = out / "listen.log"
        lines = _wait_lines(log, 1, proc)
        assert "failed:" in lines[0]  # the bad study is logged and the listener goes on
        assert "no DICOM SEG or RTSTRUCT" in lines[0]
        assert "`netlm analyze --image`" in lines[0]  # listen has no --image: the line says where it is
        good = [*map(str, pacs["files"]), str(pacs["seg"])]
        before = len(server.get_json("/instances"))
        srs_before = len(_sr_instances(server))
        r = subprocess.run([*send, *good], capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        lines = _wait_lines(log, 2, proc)
        assert f"study {pacs['study_uid']}: 21 instances: ok" in lines[1]
        assert "sent 2 object(s) to ORTHANC@" in lines[1]
        # Orthanc files the SR under the original patient and study
        assert len(server.get_json("/patients")) == 1
        assert len(server.get_json("/studies")) == 1
        got = read_sr_measurements(out / pacs["study_uid"] / "report_sr.dcm")
        assert got["liver_volume_ml"] == pytest.approx(pacs["truth"]["liver_volume_ml"], rel=1e-4)
        after_first = len(server.get_json("/instances"))
        assert after_first - before in (0, 2)  # 0 when an earlier test pushed the same SR + SEG already
        assert len(_sr_instances(server)) in (srs_before, srs_before + 1)
        # the same study again: analysed again, same SR / SEG UIDs: Orthanc changes nothing
        r = subprocess.run([*send, *good], capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        lines = _wait_lines(log, 3, proc)
        assert "ok" in lines[2]
        assert len(server.get_json("/instances")) == after_first
        assert proc.wait(timeout=60) == 0  # --max-studies 3 reached
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=30)
        if proc.stdout:
            proc.stdout.close()
    assert len(lines) == 3  # one line per study


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["listen", "--port", "0", "--ae-title", "A", "--out", "{tmp}"], "TCP port"),
        (["listen", "--port", "11112", "--ae-title", "A", "--out", "{tmp}", "--quiet-seconds", "-1"], "quiet"),
        (["listen", "--port", "11112", "--ae-title", "A", "--out", "{tmp}", "--max-studies", "0"], "max-studies"),
        (["listen", "--port", "11112", "--ae-title", "A", "--out", "{tmp}", "--dest", "h:104"], "--dest-ae"),
        (["listen", "--port", "11112", "--ae-title", "A", "--out", "{tmp}", "--dest-ae", "X"], "--dest HOST:PORT"),
        (
            ["listen", "--port", "11112", "--ae-title", "A", "--out", "{tmp}", "--dest", "h", "--dest-ae", "X"],
            "HOST:PORT",
        ),
        (["pacs", "--dimse", "h:104", "--called-ae", "X" * 17, "--study", "1.2"], "AE title"),
        (["pacs", "--dimse", "h:104", "--called-ae", "X", "--study", "1.2", "--pacs-config", "f"], "--pacs-config"),
        (["pacs", "--url", "http://h/dicom-web", "--called-ae", "X", "--study", "1.2"], "--called-ae is for --dimse"),
        (["pacs", "--dimse", "h:99999", "--called-ae", "X", "--study", "1.2"], "HOST:PORT"),
        (["pacs", "--url", "http://h/x", "--dimse", "h:104", "--study", "1.2"], "not allowed with"),
    ],
)
def test_usage_errors(args: list[str], needle: str, tmp_path: Path, capsys) -> None:
    code = main([a.replace("{tmp}", str(tmp_path)) for a in args])
    err = capsys.readouterr().err
    assert code == 2, err
    assert needle in err
    assert "Traceback" not in err


def test_retrieve_move_needs_a_port_and_a_busy_listen_port_is_an_input_error(pacs: dict, tmp_path: Path, capsys):
    import socket

    server = pacs["server"]
    base = ["pacs", "--dimse", _address(server), "--called-ae", "ORTHANC", "--study", pacs["study_uid"], "--quiet"]
    assert main([*base, "--retrieve", "move"]) == 2
    assert "--port" in capsys.readouterr().err
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        args = ["listen", "--port", str(port), "--bind", "127.0.0.1", "--ae-title", "L", "--out", str(tmp_path)]
        assert main(args) == 3
        assert "choose a free port" in capsys.readouterr().err


def test_listen_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    """A service manager's SIGTERM ends `netlm listen`: the SCP answered a C-ECHO before, exit 0, port released."""
    import signal
    import socket

    port = _free_port()
    cmd = [sys.executable, "-m", "netlm_imaging.cli", "listen", "--port", str(port), "--bind", "127.0.0.1"]
    cmd += ["--ae-title", "LISTENER", "--out", str(tmp_path / "listen")]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 30
        answered = False
        while time.monotonic() < deadline and not answered:
            echo = subprocess.run(
                [dcmtk("echoscu"), "-aec", "LISTENER", "127.0.0.1", str(port)], capture_output=True, timeout=30
            )
            answered = echo.returncode == 0
            time.sleep(0 if answered else 0.2)
        assert answered, "the listener never answered a C-ECHO"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    assert "Traceback" not in (proc.stdout.read() if proc.stdout else "")
    with socket.socket() as s:  # nothing listens on the port any more (connections may linger in TIME_WAIT)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))
        s.listen()

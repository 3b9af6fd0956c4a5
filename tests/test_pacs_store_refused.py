"""Storing the SR + SEG back into a PACS that refuses or discards them (a real Orthanc on loopback).

- Orthanc with a ``ReceivedInstanceFilter`` (Lua) that drops our SEG: it answers success to the C-STORE /
  STOW-RS and keeps nothing; `netlm pacs --push` must say so (exit 3, one line) and keep the local outputs;
- Orthanc accepting only JPEG Baseline over DIMSE (``AcceptedTransferSyntaxes``): the association for
  the results has no presentation context; `netlm listen --dest` writes the outputs, logs that they
  were not sent and why, and records it in failed.json.

Truth: the phantom's voxel counts (tests/test_sr.py), read back from the kept local SR with highdicom.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pydicom
import pytest
from pydicom import uid
from pynetdicom import sop_class

from netlm_imaging.cli import main
from netlm_imaging.errors import InputError
from netlm_imaging.pacs import dimse
from netlm_imaging.pacs.dimse import DimseEndpoint
from netlm_imaging.pacs.listener import ListenerConfig, StudyListener
from netlm_imaging.report.dicom_sr import read_sr_measurements
from tests.orthanc_server import _free_port, require_orthanc, start_orthanc
from tests.test_listen_settle import _Sender, _wait_lines
from tests.test_sr import write_phantom_study

DROP_OUR_SEG = """
function ReceivedInstanceFilter(dicom, origin, info)
   if dicom.Modality == "SEG" and dicom.Manufacturer == "netlm-imaging" then
      return false
   end
   return true
end
"""


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> dict:
    d = write_phantom_study(tmp_path_factory.mktemp("refused_study"), seed=51)
    d["study_uid"] = str(pydicom.dcmread(d["files"][0], stop_before_pixels=True).StudyInstanceUID)
    return d


@pytest.fixture(scope="module")
def filtering(tmp_path_factory: pytest.TempPathFactory, study: dict) -> Iterator:
    require_orthanc()
    work = tmp_path_factory.mktemp("orthanc_filter")
    lua = work / "filter.lua"
    lua.write_text(DROP_OUR_SEG)
    server = start_orthanc(work / "o", dicom=True, modalities={"NETLM": ("NETLM", _free_port())}, lua_scripts=[lua])
    try:
        for f in [*study["files"], study["seg"]]:
            server.upload(f)
        yield server
    finally:
        server.stop()


def _seg_series(server) -> int:
    return sum(s["MainDicomTags"].get("Modality") == "SEG" for s in server.get_json("/series?expand"))


def _check_kept(out: Path, study: dict) -> None:
    assert {"derived_seg.dcm", "report.json", "report_sr.dcm"} <= {p.name for p in out.iterdir()}
    got = read_sr_measurements(out / "report_sr.dcm")
    for key in ("liver_volume_ml", "tumor_volume_ml", "involvement_percent"):
        assert got[key] == pytest.approx(study["truth"][key], rel=1e-4), key


@pytest.mark.parametrize("how", ["dimse", "web"])
def test_a_discarded_seg_is_an_error_and_the_local_outputs_are_kept(
    filtering, study: dict, how: str, tmp_path: Path, capsys, monkeypatch
) -> None:
    if how == "web":
        monkeypatch.setenv("NETLM_PACS_USER", filtering.user)
        monkeypatch.setenv("NETLM_PACS_PASSWORD", filtering.password)
        args = ["pacs", "--url", filtering.dicomweb_url]
    else:
        args = ["pacs", "--dimse", f"127.0.0.1:{filtering.dicom_port}", "--called-ae", "ORTHANC"]
    args += ["--study", study["study_uid"], "--push", "--quiet"]
    seg_series = _seg_series(filtering)
    out = tmp_path / "out"
    assert main([*args, "--out", str(out)]) == 3
    err = capsys.readouterr().err
    assert "answered success to the" in err
    assert "of the SEG result" in err
    assert "does not hold it" in err
    # what is stored is said: the SR came through
    assert re.search(r"; SR stored \([0-9.]+\) and held: only the SEG is missing", err), err
    assert f"the local outputs are kept in {out}" in err
    assert len(err.strip().splitlines()) == 1
    assert filtering.password not in err
    assert _seg_series(filtering) == seg_series  # Orthanc really holds no derived SEG
    _check_kept(out, study)
    assert main(args) == 3  # without --out: says how to keep the outputs
    assert "add --out DIR" in capsys.readouterr().err


def _listen_and_send(study: dict, out: Path, listen_port: int, dest: DimseEndpoint) -> list[str]:
    """An in-process `netlm listen` with ``dest``, sent the study by a pynetdicom SCU; its log lines."""
    config = ListenerConfig(
        port=listen_port, ae_title="LISTENER", out_dir=out, bind="127.0.0.1", quiet_s=0.5, destination=dest
    )
    listener = StudyListener(config, on_line=lambda line: None)
    listener.start()
    try:
        sender = _Sender(listen_port, [*study["files"], study["seg"]])
        sender.send(sender.datasets)
        sender.release()
        _wait_lines(listener, 1)
        time.sleep(1.0)  # nothing more comes
    finally:
        listener.stop()
    return (out / "listen.log").read_text().splitlines()


def test_listen_dest_refusing_every_transfer_syntax_keeps_the_outputs_and_says_why(
    tmp_path_factory: pytest.TempPathFactory, study: dict, tmp_path: Path
) -> None:
    require_orthanc()
    listen_port = _free_port()
    server = start_orthanc(
        tmp_path_factory.mktemp("orthanc_jpeg_only"),
        dicom=True,
        modalities={"LISTENER": ("LISTENER", listen_port)},
        settings={"AcceptedTransferSyntaxes": [uid.JPEGBaseline8Bit]},
    )
    out = tmp_path / "listen"
    try:
        dest = DimseEndpoint("127.0.0.1", int(server.dicom_port or 0), "ORTHANC", "LISTENER")
        lines = _listen_and_send(study, out, listen_port, dest)
        # an association whose every presentation context the PACS rejects (pynetdicom aborts it) says so
        ae = dimse._ae(dest)
        ae.add_requested_context(sop_class.CTImageStorage, uid.ExplicitVRLittleEndian)
        with pytest.raises(InputError, match=r"accepts none of the SOP classes / transfer syntaxes offered for the x"):
            dimse._associate(ae, dest, what="x")
    finally:
        server.stop()
    assert len(lines) == 1, lines
    line = lines[0]
    assert "21 instances: ok: liver" in line
    assert "not sent: " in line
    assert (
        "the PACS does not accept the SEG result (Segmentation Storage) in any transfer syntax offered "
        "(Explicit VR Little Endian, Implicit VR Little Endian)" in line
    )
    assert f"the outputs are kept in {out / study['study_uid']}" in line
    failed = json.loads((out / study["study_uid"] / "failed.json").read_text())
    assert failed["error"].startswith("analysed, not sent: ")
    _check_kept(out / study["study_uid"], study)


def test_listen_dest_nobody_listening_names_listen_options(study: dict, tmp_path: Path) -> None:
    """The error of the destination names --dest / --dest-ae / --ae-title (what `netlm listen` accepts), not
    the --dimse / --called-ae / --calling-ae of `netlm pacs` (nor `netlm analyze --called-ae`)."""
    out, listen_port = tmp_path / "listen", _free_port()
    dest = DimseEndpoint("127.0.0.1", _free_port(), "NOBODY", "LISTENER")  # nothing listens there
    lines = _listen_and_send(study, out, listen_port, dest)
    assert len(lines) == 1, lines
    line = lines[0]
    assert "ok: liver" in line
    assert "not sent: NOBODY@127.0.0.1:" in line
    assert "(nobody listening at 127.0.0.1:" in line
    assert "check --dest HOST:PORT" in line
    for flag in ("--dimse", "--called-ae", "--calling-ae", "netlm analyze"):
        assert flag not in line
    _check_kept(out / study["study_uid"], study)

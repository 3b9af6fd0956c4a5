"""A STOW-RS answer that refuses some of the results: every refused object is named, and what was stored.

The push's STOW-RS answer (PS3.18 10.5.3) lists the objects stored (Referenced SOP Sequence) and those
refused (Failed SOP Sequence, each with a Failure Reason). `store_files` raised on the first refused item:
with the SEG and the SR both refused, the line named the SEG only, and never said what the PACS kept. It
now says it as the C-STORE push does: ``CT stored (UID), SEG (UID) refused with 0xA900 (...), SR (UID)
refused with 0xC000 (...): only the SEG and SR are missing in the PACS``.

The PACS: Orthanc 1.10's DICOMweb plugin (1.7) answers a STOW-RS with both sequences empty, even for a
part its Lua filter made fail (checked by hand: a ``ReceivedInstanceFilter`` that calls ``error()`` for a
SEG); it cannot give this answer. So the server here is a real HTTP server on loopback that reads each
posted part (pydicom) and answers a real Store Instances Response, refusing by modality with the codes
each test gives; in the CLI test it stores the other parts in a real Orthanc (REST ``/instances``) and
forwards every GET (WADO-RS, QIDO-RS) to it. Expected lines are built from the test's own objects (their
modality and SOP Instance UID) and pynetdicom's table of C-STORE status meanings.
"""

from __future__ import annotations

import http.server
import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from io import BytesIO
from pathlib import Path
from typing import Any, ClassVar

import pydicom
import pytest
import requests
from pynetdicom.status import GENERAL_STATUS, STORAGE_SERVICE_CLASS_STATUS

from netlm_imaging.api import analyze_with_context
from netlm_imaging.cli import main
from netlm_imaging.errors import InputError
from netlm_imaging.pacs.dicomweb import PacsCredentials, make_client, store_files
from netlm_imaging.pacs.stow_answer import read_stow_answer, refusal
from netlm_imaging.report.dicom_sr import write_sr
from tests.orthanc_server import OrthancServer, require_orthanc, start_orthanc
from tests.test_sr import write_phantom_study


def _said(code: int) -> str:
    """``0xCODE (meaning)`` with pynetdicom's meaning of a C-STORE status (PS3.4 B.2.3)."""
    return f"0x{code:04X} ({({**GENERAL_STATUS, **STORAGE_SERVICE_CLASS_STATUS})[code][1]})"


class _StowPacs(http.server.BaseHTTPRequestHandler):
    """STOW-RS: refuses each part whose Modality ``refuse`` names (with its code), leaves out of the answer
    those ``unnamed`` names, stores the others (in ``upstream`` Orthanc when set) and answers ``status``.
    A GET goes to ``upstream``; without one, a QIDO-RS query finds nothing."""

    refuse: ClassVar[dict[str, int]] = {}
    unnamed: ClassVar[set[str]] = set()
    status: ClassVar[int] = 202
    upstream: ClassVar[OrthancServer | None] = None

    def _parts(self) -> list[bytes]:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        boundary = re.search(r'boundary="?([^";]+)"?', self.headers["Content-Type"])
        assert boundary is not None
        parts = body.split(b"--" + boundary.group(1).encode())[1:-1]
        return [p.partition(b"\r\n\r\n")[2].removesuffix(b"\r\n") for p in parts]

    def do_POST(self) -> None:
        answer = pydicom.Dataset()
        answer.FailedSOPSequence, answer.ReferencedSOPSequence = [], []
        for data in self._parts():
            ds = pydicom.dcmread(BytesIO(data))
            item = pydicom.Dataset()
            item.ReferencedSOPClassUID, item.ReferencedSOPInstanceUID = ds.SOPClassUID, ds.SOPInstanceUID
            if ds.Modality in self.refuse:
                item.FailureReason = self.refuse[ds.Modality]
                answer.FailedSOPSequence.append(item)
            elif ds.Modality not in self.unnamed:
                if self.upstream is not None:
                    requests.post(
                        f"{self.upstream.url}/instances", data=data, auth=self.upstream.auth
                    ).raise_for_status()
                answer.ReferencedSOPSequence.append(item)
        self._send(self.status, json.dumps(answer.to_json_dict()).encode(), "application/dicom+json")

    def do_GET(self) -> None:
        if self.upstream is None:
            self._send(200, b"[]", "application/dicom+json")
            return
        headers = {k: self.headers[k] for k in ("Accept", "Authorization") if self.headers[k]}
        r = requests.get(f"{self.upstream.url}{self.path}", headers=headers, timeout=30)
        self._send(r.status_code, r.content, r.headers.get("Content-Type", "application/octet-stream"))

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@contextmanager
def _pacs(**policy: Any) -> Iterator[str]:
    handler = type("H", (_StowPacs,), policy)
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}/dicom-web"
    finally:
        srv.shutdown()
        srv.server_close()


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The phantom study (CT + SEG) and its SR: three real objects, one of each modality."""
    d = write_phantom_study(tmp_path_factory.mktemp("stow_refused"), seed=63)
    report, ctx = analyze_with_context(image=d["ct"], segs=[str(d["seg"])])
    d["sr"] = write_sr(report, ctx, d["ct"].parent / "sr.dcm")
    d["objects"] = {"CT": d["files"][0], "SEG": d["seg"], "SR": d["sr"]}
    d["uid"] = {m: str(pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID) for m, p in d["objects"].items()}
    d["study_uid"] = str(pydicom.dcmread(d["files"][0], stop_before_pixels=True).StudyInstanceUID)
    return d


def _store(url: str, study: dict, modalities: tuple[str, ...]) -> str:
    client = make_client(url, PacsCredentials(), timeout_s=10)
    with pytest.raises(InputError) as err:
        store_files(client, [study["objects"][m] for m in modalities], held_pauses_s=(0.1,))
    said = str(err.value)
    assert "\n" not in said
    return said


def test_two_of_three_refused_names_both_and_what_was_stored(study: dict) -> None:
    """HTTP 202 (some stored): it said 'the PACS refused the SEG object UID (STOW-RS failure reason
    0xA900)' and nothing of the SR, also refused, nor of the CT, stored."""
    uid = study["uid"]
    with _pacs(refuse={"SEG": 0xA900, "SR": 0xC000}, status=202) as url:
        said = _store(url, study, ("CT", "SEG", "SR"))
    assert said == (
        f"{url}: STOW-RS of the results: CT stored ({uid['CT']}), SEG ({uid['SEG']}) refused with "
        f"{_said(0xA900)}, SR ({uid['SR']}) refused with {_said(0xC000)}: only the SEG and SR are missing "
        "in the PACS; check the PACS log"
    )


def test_all_refused_with_http_409_names_each_reason(study: dict) -> None:
    """HTTP 409 (none stored, PS3.18 10.5.3) with the answer saying why: it said 'it does not accept the
    SEG / SR objects (SOP class or transfer syntax)' whatever the reasons were."""
    uid = study["uid"]
    with _pacs(refuse={"SEG": 0xA700, "SR": 0x0110}, status=409) as url:
        said = _store(url, study, ("SEG", "SR"))
    assert said == (
        f"{url}: STOW-RS of the results: SEG ({uid['SEG']}) refused with {_said(0xA700)}, SR ({uid['SR']}) "
        f"refused with {_said(0x0110)}: nothing is stored in the PACS; check the PACS log"
    )


def test_an_object_the_answer_leaves_out_is_looked_up(study: dict) -> None:
    """An object in neither sequence is asked for by QIDO-RS (this server finds nothing): it is said not held."""
    uid = study["uid"]
    with _pacs(refuse={"SEG": 0xA900}, unnamed={"SR"}, status=202) as url:
        said = _store(url, study, ("CT", "SEG", "SR"))
    assert said == (
        f"{url}: STOW-RS of the results: CT stored ({uid['CT']}), SEG ({uid['SEG']}) refused with "
        f"{_said(0xA900)}, SR ({uid['SR']}) not named in the answer and not held: only the SEG and SR are "
        "missing in the PACS; check the PACS log"
    )


def test_the_answer_read_from_a_dataset(study: dict) -> None:
    """The interpretation alone, on a Store Instances Response built here: refused, stored, left out."""
    objects = {m: pydicom.dcmread(p, stop_before_pixels=True) for m, p in study["objects"].items()}
    answer = pydicom.Dataset()
    answer.FailedSOPSequence, answer.ReferencedSOPSequence = [pydicom.Dataset()], [pydicom.Dataset()]
    answer.FailedSOPSequence[0].ReferencedSOPInstanceUID = objects["SR"].SOPInstanceUID
    answer.FailedSOPSequence[0].FailureReason = 0xA900
    answer.ReferencedSOPSequence[0].ReferencedSOPInstanceUID = objects["CT"].SOPInstanceUID
    got = read_stow_answer(answer, [objects["CT"], objects["SEG"], objects["SR"]])
    assert got.stored == [objects["CT"]]
    assert got.refused == [(objects["SR"], f"({objects['SR'].SOPInstanceUID}) refused with {_said(0xA900)}")]
    assert got.unnamed == [objects["SEG"]]
    err = refusal("URL", got, lambda ds: ds is objects["SEG"])  # the SEG is held after all
    assert str(err) == (
        f"URL: STOW-RS of the results: CT stored ({objects['CT'].SOPInstanceUID}), SEG stored "
        f"({objects['SEG'].SOPInstanceUID}), SR ({objects['SR'].SOPInstanceUID}) refused with {_said(0xA900)}: "
        "only the SR is missing in the PACS; check the PACS log"
    )
    assert refusal("URL", read_stow_answer(pydicom.Dataset(), list(objects.values())), lambda ds: None) is None


@pytest.fixture(scope="module")
def orthanc_with_study(tmp_path_factory: pytest.TempPathFactory, study: dict) -> Iterator[OrthancServer]:
    require_orthanc()
    server = start_orthanc(tmp_path_factory.mktemp("orthanc_stow_refused"))
    try:
        for f in [*study["files"], study["seg"]]:
            server.upload(f)
        yield server
    finally:
        server.stop()


def test_cli_push_with_the_seg_refused_says_the_sr_is_stored(
    orthanc_with_study: OrthancServer, study: dict, tmp_path: Path, capsys, monkeypatch
) -> None:
    """`netlm pacs --push` through the refusing server in front of Orthanc: exit 3, one line naming the SEG
    refused and the SR stored (the UIDs of the local copies kept in --out), and Orthanc holds that SR."""
    server = orthanc_with_study
    monkeypatch.setenv("NETLM_PACS_USER", server.user)
    monkeypatch.setenv("NETLM_PACS_PASSWORD", server.password)
    out = tmp_path / "out"
    with _pacs(refuse={"SEG": 0xA900}, status=202, upstream=server) as url:
        code = main(["pacs", "--url", url, "--study", study["study_uid"], "--push", "--quiet", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 3, err
    sr, seg = (pydicom.dcmread(out / name, stop_before_pixels=True) for name in ("report_sr.dcm", "derived_seg.dcm"))
    assert err.strip() == (
        f"netlm: error: {url}: STOW-RS of the results: SR stored ({sr.SOPInstanceUID}), SEG ({seg.SOPInstanceUID}) "
        f"refused with {_said(0xA900)}: only the SEG is missing in the PACS; check the PACS log; the local "
        f"outputs are kept in {out}"
    )
    held = server.post_json("/tools/find", {"Level": "Instance", "Query": {"SOPInstanceUID": str(sr.SOPInstanceUID)}})
    assert len(held) == 1
    assert (
        server.post_json("/tools/find", {"Level": "Instance", "Query": {"SOPInstanceUID": str(seg.SOPInstanceUID)}})
        == []
    )

"""DICOMweb servers that frame their answers differently from Orthanc.

A small HTTP server on loopback (the standard library's ``http.server``) answers WADO-RS and QIDO-RS for
tests/test_sr.py's phantom study the way other vendors do: a multipart/related preamble (RFC 2046 5.1.1),
a quoted boundary with ``:`` and ``=``, parameters in another order and case, part headers with
parameters, an epilogue; a QIDO-RS answer with a partial attribute set (no
NumberOfStudyRelatedInstances); a WADO-RS answer that stops early; a part that is not DICOM. Orthanc
cannot be configured to answer like this, so this server stands in for those PACS. The numbers must be
those of `netlm analyze` on the same files (and the phantom's voxel counts).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pydicom
import pytest

from netlm_imaging.cli import main
from tests.pacs_reports import measured
from tests.test_sr import write_phantom_study


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("web_variants")
    d = write_phantom_study(root, seed=41)
    d["study_uid"] = str(pydicom.dcmread(d["files"][0], stop_before_pixels=True).StudyInstanceUID)
    d["blobs"] = [Path(f).read_bytes() for f in [*d["files"], d["seg"]]]
    out = tmp_path_factory.mktemp("web_variants_local")
    assert main(["analyze", str(root), "--out", str(out), "--quiet"]) == 0
    d["local"] = json.loads((out / "report.json").read_text())
    return d


def _server(study: dict, **variant: object) -> ThreadingHTTPServer:
    boundary = str(variant.get("boundary", "b0undary"))
    ctype = str(variant.get("content_type", f'multipart/related; type="application/dicom"; boundary={boundary}'))
    blobs = list(study["blobs"])[: int(variant.get("send", len(study["blobs"])))]  # type: ignore[call-overload]
    if variant.get("garbage"):
        blobs[3] = b"this is not a DICOM file"
    qido = {"0020000D": {"vr": "UI", "Value": [study["study_uid"]]}}
    if variant.get("count", True):
        qido["00201208"] = {"vr": "IS", "Value": [len(study["blobs"])]}

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def _send(self, body: bytes, content_type: str) -> None:
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            path = self.path.split("?")[0]
            if path == "/dicom-web/studies":
                self._send(json.dumps([qido]).encode(), "application/dicom+json")
            elif path == f"/dicom-web/studies/{study['study_uid']}":
                body = bytes(variant.get("preamble", b""))  # type: ignore[call-overload]
                part_type = str(variant.get("part_type", "application/dicom"))
                for blob in blobs:
                    body += f"--{boundary}\r\nContent-Type: {part_type}\r\n\r\n".encode() + blob + b"\r\n"
                body += f"--{boundary}--\r\n".encode() + bytes(variant.get("epilogue", b""))  # type: ignore[call-overload]
                self._send(body, ctype)
            else:
                self.send_response(404)
                self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture
def run(study: dict, tmp_path: Path, capsys, monkeypatch) -> Iterator:
    for var in ("NETLM_PACS_USER", "NETLM_PACS_PASSWORD", "NETLM_PACS_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.config/netlm/pacs.toml
    servers = []

    def go(**variant: object) -> tuple[int, str, dict | None]:
        server = _server(study, **variant)
        servers.append(server)
        out = tmp_path / f"out{len(servers)}"
        url = f"http://127.0.0.1:{server.server_port}/dicom-web"
        code = main(["pacs", "--url", url, "--study", study["study_uid"], "--out", str(out), "--quiet"])
        report = json.loads((out / "report.json").read_text()) if (out / "report.json").exists() else None
        return code, capsys.readouterr().err, report

    yield go
    for s in servers:
        s.shutdown()
        s.server_close()


@pytest.mark.parametrize(
    "variant",
    [
        {"preamble": b"This is a multi-part message in MIME format.\r\n"},
        {"boundary": "a:b=c", "content_type": 'multipart/related; boundary="a:b=c"; type="application/dicom"'},
        {"boundary": "QQ", "content_type": "Multipart/Related; Boundary=QQ; transfer-syntax=1.2.840.10008.1.2.1"},
        {"part_type": "application/dicom; transfer-syntax=1.2.840.10008.1.2.1", "epilogue": b"end\r\n"},
        {"count": False},  # QIDO-RS without NumberOfStudyRelatedInstances
    ],
    ids=["preamble", "quoted-boundary", "params-case-order", "part-params-epilogue", "qido-partial"],
)
def test_framing_variants_give_the_local_numbers(run, study: dict, variant: dict) -> None:
    code, err, report = run(**variant)
    assert code == 0, err
    assert report is not None
    assert report["liver"]["volume_ml"] == pytest.approx(study["truth"]["liver_volume_ml"], rel=1e-4)
    assert measured(report) == measured(study["local"])


def test_an_answer_that_stops_early_is_an_error(run, study: dict) -> None:
    code, err, report = run(send=15)
    assert code == 3, err
    assert f"WADO-RS sent 15 of the {len(study['blobs'])} instances" in err
    assert report is None
    assert len(err.strip().splitlines()) == 1


def test_a_part_that_is_not_dicom_is_one_line(run) -> None:
    code, err, _ = run(garbage=True)
    assert code == 3, err
    assert "could not be decoded" in err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1

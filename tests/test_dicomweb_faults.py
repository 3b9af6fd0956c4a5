"""``netlm pacs --url``: TLS failures, HTTP errors, a busy server and a silent one, against real HTTP(S) servers.

A TLS certificate not trusted here, and a port without TLS, are one line each.

Real HTTPS on loopback (Python's ``http.server`` wrapped in ``ssl`` with a certificate made by openssl
for 127.0.0.1). Both said "cannot connect ...; check that the PACS is running" though the PACS answered.
The advice is checked to work: with REQUESTS_CA_BUNDLE naming the certificate, the request reaches
the server (which knows no DICOMweb study: HTTP 404).
"""

from __future__ import annotations

import http.server
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import ClassVar

import pytest

from netlm_imaging.cli import main


class _Quiet(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_error(404)

    def log_message(self, *args: object) -> None:
        pass


@contextmanager
def _server(tls: Path | None) -> Iterator[int]:
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Quiet)
    if tls is not None:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(tls / "cert.pem", tls / "key.pem")
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        yield int(srv.server_address[1])
    finally:
        srv.shutdown()
        srv.server_close()


def _pacs(url: str, capsys: pytest.CaptureFixture[str]) -> str:
    code = main(["pacs", "--url", url, "--study", "1.2.3.4", "--timeout", "10", "--quiet"])
    err = capsys.readouterr().err
    assert code == 3, err
    assert "Traceback" not in err
    return err


def test_an_untrusted_certificate_says_how_to_trust_it(certificate: Path, monkeypatch, capsys) -> None:
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    with _server(certificate) as port:
        url = f"https://127.0.0.1:{port}/dicom-web"
        err = _pacs(url, capsys)
        assert f"{url}: retrieving study 1.2.3.4: the PACS's TLS certificate is not trusted (self-signed" in err
        assert "REQUESTS_CA_BUNDLE=FILE" in err
        assert "cannot connect" not in err
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(certificate / "cert.pem"))  # the advice, followed
        err = _pacs(url, capsys)
    assert "not found (HTTP 404)" in err
    assert "TLS" not in err


def test_https_to_a_port_without_tls_says_so(capsys) -> None:
    with _server(None) as port:
        err = _pacs(f"https://127.0.0.1:{port}/dicom-web", capsys)
    assert "the TLS handshake failed (wrong version number: the port may not speak TLS)" in err
    assert "http:// for a PACS port without TLS" in err


class _Scripted(http.server.BaseHTTPRequestHandler):
    """Answers each GET with the next status of ``script`` (its last one for ever); ``0`` = never answer."""

    script: ClassVar[list[int]] = []
    seen: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        type(self).seen.append(self.path)
        status = self.script[min(len(self.seen), len(self.script)) - 1]
        if status == 0:
            time.sleep(30)
            return
        self.send_error(status)

    def log_message(self, *args: object) -> None:
        pass


@pytest.mark.parametrize(
    ("script", "requests_made", "said"),
    [
        ([500], 1, "failed (HTTPError, HTTP 500); check the PACS log"),
        ([403], 1, "refused (HTTP 403): the credentials were accepted but are not allowed"),
        ([503], 4, "failed (HTTPError, HTTP 503); check the PACS log"),  # busy: asked again 3 times
        ([503, 503, 404], 3, "not found (HTTP 404)"),  # busy, then the answer
    ],
)
def test_http_errors_are_asked_again_only_when_the_server_is_busy(script, requests_made, said, capsys) -> None:
    """dicomweb-client's own retrying asked 5 times over 30 s whatever the error (a 500, a refused
    connection, a TLS error); only a busy server's 429 / 503 / 504 deserves another request."""
    handler = type("H", (_Scripted,), {"script": script, "seen": []})
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        start = time.monotonic()
        err = _pacs(f"http://127.0.0.1:{srv.server_address[1]}/dicom-web", capsys)
        elapsed = time.monotonic() - start
    finally:
        srv.shutdown()
        srv.server_close()
    assert said in err
    assert len(handler.seen) == requests_made, handler.seen
    assert elapsed < 12, elapsed


def test_a_dicomweb_server_that_never_answers_fails_after_the_timeout(capsys) -> None:
    handler = type("H", (_Scripted,), {"script": [0], "seen": []})
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        start = time.monotonic()
        url = f"http://127.0.0.1:{srv.server_address[1]}/dicom-web"
        code = main(["pacs", "--url", url, "--study", "1.2.3", "--timeout", "2", "--quiet"])
        elapsed = time.monotonic() - start
    finally:
        srv.shutdown()
        srv.server_close()
    err = capsys.readouterr().err
    assert code == 3, err
    assert len(handler.seen) == 1
    assert elapsed < 6, elapsed  # it took 5 x 2 s + 30 s

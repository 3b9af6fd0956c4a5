"""``netlm pacs --dimse`` at a port that gives no DICOM association: one line saying which of three it was.

Real sockets on loopback: a DICOM TLS port (Python's ``ssl`` server with a self-signed certificate:
the TLS handshake fails on our plain A-ASSOCIATE-RQ and it closes the connection), a port that takes
the connection and never answers, and a port nobody listens on. The CLI runs as a process, so
pynetdicom's own log records (a reset's traceback, "Association Aborted") would show on its stderr.
"""

from __future__ import annotations

import os
import socket
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.orthanc_server import _free_port

ROOT = Path(__file__).resolve().parents[1]


@contextmanager
def _server(tls: Path | None) -> Iterator[int]:
    """A loopback server: with ``tls`` (a folder with cert.pem / key.pem) it speaks TLS only, else it holds
    each connection and says nothing."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(4)
    srv.settimeout(0.2)
    ctx = None
    if tls is not None:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(tls / "cert.pem", tls / "key.pem")
    held: list[socket.socket] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn = srv.accept()[0]
            except OSError:
                continue
            if ctx is None:
                held.append(conn)
                continue
            try:
                conn.settimeout(5)
                held.append(ctx.wrap_socket(conn, server_side=True))
            except (OSError, ssl.SSLError):  # not a TLS ClientHello: the handshake fails, the connection closes
                conn.close()

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    try:
        yield int(srv.getsockname()[1])
    finally:
        stop.set()
        t.join()
        for c in held:
            c.close()
        srv.close()


def _pacs(port: int) -> subprocess.CompletedProcess[str]:
    args = ["pacs", "--dimse", f"127.0.0.1:{port}", "--called-ae", "PACS", "--study", "1.2.3", "--timeout", "2"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "netlm_imaging.cli", *args], capture_output=True, text=True, env=env, timeout=60
    )


def _one_line(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 3, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


def test_a_dicom_tls_port_is_named_as_such(certificate: Path) -> None:
    with _server(certificate) as port:
        line = _one_line(_pacs(port))
    assert line.startswith(f"netlm: error: PACS@127.0.0.1:{port}: no DICOM association (the port took the connection")
    assert "netlm speaks DIMSE without TLS" in line
    assert "plain DICOM port" in line


def test_a_port_that_never_answers_names_the_timeout() -> None:
    with _server(None) as port:
        line = _one_line(_pacs(port))
    assert "gave no DICOM answer within 2 s" in line
    assert "raise --timeout" in line
    assert "TLS" not in line


def test_nobody_listening_is_said_so() -> None:
    port = _free_port()
    line = _one_line(_pacs(port))
    assert f"no DICOM association (nobody listening at 127.0.0.1:{port})" in line
    assert "TLS" not in line

"""A real Orthanc server on loopback for tests (Debian packages ``orthanc`` and ``orthanc-dicomweb``).

:func:`start_orthanc` writes a JSON configuration into a temporary folder:
HTTP on a free 127.0.0.1 port, the DICOM (DIMSE) server disabled unless
``dicom=True`` (then on another free port, AE title ``ORTHANC``, with the
given ``modalities`` allowed to query / retrieve / store), optional Lua
scripts (``lua_scripts``, with ``env`` for the process), storage
and index in the temporary folder, the DICOMweb plugin enabled under
``/dicom-web/``, ``RemoteAccessAllowed`` false and HTTP basic authentication on
with one test user (so the credential handling of the client is exercised).
It waits until ``/system`` answers and stops the server afterwards.

Absent binary: the ``orthanc`` fixture skips with the reason outside CI and
fails when ``CI=true`` (``.ci/install_orthanc.sh`` installs the packages).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

__all__ = ["OrthancServer", "find_dicomweb_plugin", "find_orthanc", "orthanc", "require_orthanc", "start_orthanc"]

_PLUGIN_CANDIDATES = (
    "/usr/share/orthanc/plugins/libOrthancDicomWeb.so",
    "/usr/lib/orthanc/libOrthancDicomWeb.so",
)


def find_orthanc() -> str | None:
    """Path of the Orthanc binary, or None."""
    return shutil.which("Orthanc") or next((p for p in ("/usr/sbin/Orthanc",) if os.access(p, os.X_OK)), None)


def find_dicomweb_plugin() -> str | None:
    """Path of the DICOMweb plugin shared library, or None."""
    for p in _PLUGIN_CANDIDATES:
        if os.path.exists(p):
            return p
    found = sorted(Path("/usr/lib/orthanc").glob("libOrthancDicomWeb.so*")) if Path("/usr/lib/orthanc").is_dir() else []
    return str(found[0]) if found else None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class OrthancServer:
    """A running test Orthanc."""

    url: str
    user: str
    password: str
    process: subprocess.Popen
    log_path: Path
    dicom_port: int | None = None
    aet: str = "ORTHANC"

    @property
    def dicomweb_url(self) -> str:
        """DICOMweb root (QIDO/WADO/STOW)."""
        return f"{self.url}/dicom-web"

    @property
    def auth(self) -> tuple[str, str]:
        """requests basic-auth tuple."""
        return (self.user, self.password)

    def upload(self, path: str | os.PathLike[str]) -> dict:
        """POST one DICOM file to /instances; returns Orthanc's answer."""
        r = requests.post(f"{self.url}/instances", data=Path(path).read_bytes(), auth=self.auth, timeout=30)
        r.raise_for_status()
        return r.json()

    def get_json(self, route: str) -> object:
        """GET a REST route and decode JSON."""
        r = requests.get(f"{self.url}{route}", auth=self.auth, timeout=30)
        r.raise_for_status()
        return r.json()

    def post_json(self, route: str, body: object) -> dict:
        """POST a JSON body to a REST route and decode the JSON answer."""
        r = requests.post(f"{self.url}{route}", json=body, auth=self.auth, timeout=300)
        r.raise_for_status()
        return r.json()

    def get_bytes(self, route: str) -> bytes:
        """GET a REST route's raw body."""
        r = requests.get(f"{self.url}{route}", auth=self.auth, timeout=30)
        r.raise_for_status()
        return r.content

    def stop(self) -> None:
        """Terminate the server (kill after 10 s)."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def start_orthanc(
    workdir: Path,
    *,
    user: str = "netlm-test",
    password: str = "s3cret-Pa55-word",
    timeout_s: float = 30.0,
    dicom: bool = False,
    modalities: dict[str, tuple[str, int]] | None = None,
    lua_scripts: list[Path] | None = None,
    env: dict[str, str] | None = None,
    http_port: int | None = None,
    settings: dict[str, object] | None = None,
    modality_permissions: dict[str, bool] | None = None,
) -> OrthancServer:
    """Start Orthanc with a generated configuration in ``workdir``.

    ``settings`` overrides top-level options (e.g. ``DicomAlwaysAllowMove``);
    ``modality_permissions`` the ``Allow*`` flags of every registered modality
    (e.g. ``{"AllowGet": False}`` for a PACS that serves C-MOVE only).

    Raises
    ------
    FileNotFoundError
        Orthanc or its DICOMweb plugin is not installed.
    RuntimeError
        The server did not answer ``/system`` within ``timeout_s``.
    """
    binary, plugin = find_orthanc(), find_dicomweb_plugin()
    if binary is None or plugin is None:
        raise FileNotFoundError("Orthanc or its DICOMweb plugin is missing (apt-get install orthanc orthanc-dicomweb)")
    workdir.mkdir(parents=True, exist_ok=True)
    port = http_port or _free_port()
    dicom_port = _free_port()
    config = {
        "Name": "netlm-test",
        "StorageDirectory": str(workdir / "storage"),
        "IndexDirectory": str(workdir / "index"),
        "HttpServerEnabled": True,
        "HttpPort": port,
        "DicomServerEnabled": dicom,
        "DicomPort": dicom_port,
        "DicomAet": "ORTHANC",
        "DicomCheckCalledAet": True,
        # Orthanc 1.10 cannot bind its DICOM port to loopback: only the registered modalities, from
        # 127.0.0.1, may talk to it (no anonymous echo / store from the network)
        "DicomAlwaysAllowEcho": False,
        "DicomAlwaysAllowStore": False,
        "DicomCheckModalityHost": True,
        "DicomModalities": {
            name: {
                "AET": name,
                "Host": "127.0.0.1",
                "Port": mport,
                "AllowEcho": True,
                "AllowFind": True,
                "AllowMove": True,
                "AllowGet": True,
                "AllowStore": True,
                **(modality_permissions or {}),
            }
            for name, (_, mport) in (modalities or {}).items()
        },
        "RemoteAccessAllowed": False,
        "AuthenticationEnabled": True,
        "RegisteredUsers": {user: password},
        "Plugins": [plugin],
        "DicomWeb": {"Enable": True, "Root": "/dicom-web/", "EnableWado": False, "Ssl": False},
        "StableAge": 1,
        "ConcurrentJobs": 1,
        "HttpThreadsCount": 10,
        "SaveJobs": False,
        "LuaScripts": [str(p) for p in lua_scripts or []],
        **(settings or {}),
    }
    cfg_path = workdir / "orthanc.json"
    cfg_path.write_text(json.dumps(config, indent=2))
    log_path = workdir / "orthanc.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [binary, str(cfg_path)],
            cwd=workdir,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
        )
    server = OrthancServer(
        f"http://127.0.0.1:{port}", user, password, proc, log_path, dicom_port=dicom_port if dicom else None
    )
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"Orthanc exited with code {proc.returncode}: {log_path.read_text()[-2000:]}")
        try:
            r = requests.get(f"{server.url}/system", auth=server.auth, timeout=2)
            if r.status_code == 200:
                return server
        except requests.ConnectionError:
            pass
        time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"Orthanc did not answer /system within {timeout_s} s: {log_path.read_text()[-2000:]}")


def require_orthanc() -> None:
    """Skip (fail under CI=true) when Orthanc or its DICOMweb plugin is not installed."""
    if find_orthanc() is None or find_dicomweb_plugin() is None:
        reason = "Orthanc / orthanc-dicomweb not installed (run .ci/install_orthanc.sh)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true but {reason}")
        pytest.skip(reason)


@pytest.fixture(scope="module")
def orthanc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OrthancServer]:
    """A running Orthanc with DICOMweb and basic auth; skipped (fails under CI=true) when not installed."""
    require_orthanc()
    server = start_orthanc(tmp_path_factory.mktemp("orthanc"))
    try:
        yield server
    finally:
        server.stop()

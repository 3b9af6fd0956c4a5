"""Shared fixtures: where the read-only real data lives, and phantom helpers."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("NETLM_SHARED", ROOT.parent / "shared"))
SHARED_DATA = SHARED / "data"
#: Every report made in the tests (in-process and by CLI subprocesses) is validated against the schema.
os.environ["NETLM_VALIDATE_REPORTS"] = "1"


def shared_file(*parts: str) -> Path:
    """Path under ../shared (NETLM_SHARED overrides); skip when absent outside CI, fail in CI.

    The one gate of every test that needs the shared, read-only project files (the report contract
    ``report.schema.json`` and the real data under ``data/``, cited in data/MANIFEST.md with their
    licenses). README.md ("Tests and the shared data") says where ../shared comes from.
    """
    p = SHARED.joinpath(*parts)
    if not p.exists():
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true but the shared file {p} is missing (../shared must be checked out beside the repo)")
        pytest.skip(f"shared file not present: {p} (../shared beside the repository, or set NETLM_SHARED)")
    return p


def shared_path(*parts: str) -> Path:
    """Path under ../shared/data (see :func:`shared_file`)."""
    return shared_file("data", *parts)


def shared_schema() -> dict:
    """The shared report contract ../shared/report.schema.json (see :func:`shared_file`)."""
    return json.loads(shared_file("report.schema.json").read_text())


@pytest.fixture
def shared():
    """Function returning paths under ../shared/data (skip/fail as documented in :func:`shared_file`)."""
    return shared_path


def analyze_json(*args: str) -> dict:
    """The report of ``netlm analyze ARGS --json -`` run as a user runs it (exit 0 asserted, stderr shown)."""
    res = subprocess.run(
        [sys.executable, "-m", "netlm_imaging.cli", "analyze", *args, "--json", "-"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


def compare_seg_json(*args: str) -> dict:
    """The comparison of ``netlm compare-seg ARGS --json -`` run as a user runs it (exit 0 asserted)."""
    res = subprocess.run(
        [sys.executable, "-m", "netlm_imaging.cli", "compare-seg", *args, "--json", "-"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


def oblique_affine(spacing=(0.8, 0.9, 2.5), angles_deg=(10.0, -7.0, 20.0), origin=(-120.5, 33.2, 410.0)) -> np.ndarray:
    """An index->LPS affine with anisotropic spacing and a rotation (never identity)."""
    ax, ay, az = np.deg2rad(angles_deg)
    rx = np.array([[1, 0, 0], [0, np.cos(ax), -np.sin(ax)], [0, np.sin(ax), np.cos(ax)]])
    ry = np.array([[np.cos(ay), 0, np.sin(ay)], [0, 1, 0], [-np.sin(ay), 0, np.cos(ay)]])
    rz = np.array([[np.cos(az), -np.sin(az), 0], [np.sin(az), np.cos(az), 0], [0, 0, 1]])
    a = np.eye(4)
    a[:3, :3] = (rz @ ry @ rx) @ np.diag(spacing)
    a[:3, 3] = origin
    return a


def tilted_affine(tilt_deg: float = 30.0, step: float = 1.5) -> np.ndarray:
    """A gantry-tilted CT grid (index->LPS): 0.8 mm rows along x, columns leaning ``tilt_deg`` off y towards -z,
    slices ``step`` mm apart along the table (z), off the planes' normal by ``tilt_deg``."""
    c, s = np.cos(np.radians(tilt_deg)), np.sin(np.radians(tilt_deg))
    a = np.eye(4)
    a[:3, 0], a[:3, 1], a[:3, 2] = [0.8, 0.0, 0.0], [0.0, 0.8 * c, -0.8 * s], [0.0, 0.0, step]
    a[:3, 3] = [-40.0, 20.0, 300.0]
    return a


@pytest.fixture(scope="session")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A self-signed TLS certificate for 127.0.0.1 (the folder holding ``key.pem`` and ``cert.pem``), by openssl."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl not installed")
    folder = tmp_path_factory.mktemp("tls")
    key, cert = str(folder / "key.pem"), str(folder / "cert.pem")
    req = ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=pacs.test"]
    subprocess.run(
        [*req, "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", key, "-out", cert], check=True, capture_output=True
    )
    return folder

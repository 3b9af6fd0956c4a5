"""External DICOM validators and tools for tests: dciodvfy (dicom3tools), dcmtk, dcmqi.

Absent tool: the test skips with the reason outside CI and fails when
``CI=true`` (tools/setup_test_env.sh installs them).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

__all__ = ["assert_dciodvfy_clean", "dcmtk", "require_tool", "tid1500_measurements"]

#: Debian locations first: a Python package may put a same-named script earlier on PATH
#: (pynetdicom's apps are not dcmtk's).
_DEBIAN_BIN = "/usr/bin"


def require_tool(name: str, package: str) -> str:
    """Path of an executable; skip (or fail under CI=true) when it is missing."""
    debian = Path(_DEBIAN_BIN) / name
    path = str(debian) if debian.is_file() and os.access(debian, os.X_OK) else shutil.which(name)
    if path is None:
        reason = f"{name} not installed ({package}; run tools/setup_test_env.sh)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true but {reason}")
        pytest.skip(reason)
    return path


def dcmtk(name: str) -> str:
    """A dcmtk executable (Debian ``dcmtk``), e.g. ``storescu``."""
    return require_tool(name, "Debian package dcmtk")


def assert_dciodvfy_clean(path: str | os.PathLike[str]) -> str:
    """Run dciodvfy (dicom3tools) on a file; fail on any ``Error`` line. Returns its output."""
    exe = require_tool("dciodvfy", "Debian package dicom3tools")
    r = subprocess.run([exe, str(path)], capture_output=True, text=True, timeout=120, check=False)
    text = r.stdout + r.stderr
    errors = [line for line in text.splitlines() if line.startswith("Error")]
    assert errors == [], f"dciodvfy {path}:\n" + "\n".join(errors)
    return text


def tid1500_measurements(path: str | os.PathLike[str], workdir: Path) -> list[dict]:
    """The measurement groups of a TID 1500 SR as dcmqi's tid1500reader reads them (PyPI ``dcmqi``)."""
    exe = shutil.which("tid1500reader")
    if exe is None:
        reason = "dcmqi's tid1500reader not installed (pip install dcmqi)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true but {reason}")
        pytest.skip(reason)
    out = workdir / f"{Path(path).stem}.tid1500.json"
    r = subprocess.run(
        [exe, "--inputDICOM", str(path), "--outputMetadata", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    return list(json.loads(out.read_text())["Measurements"])

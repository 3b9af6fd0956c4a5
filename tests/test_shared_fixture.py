"""The one gate on ../shared (tests/conftest.py ``shared_file``): skip with a reason outside CI, fail in CI.

Two real tests that need ../shared (the schema and a data file) run in a child pytest with NETLM_SHARED
pointing at a folder that does not exist, once without CI and once with CI=true.
"""

from __future__ import annotations

import os
import subprocess
import sys

from conftest import ROOT

TESTS = [
    "tests/test_classifications.py::test_blocks_validate_against_the_report_schema",
    "tests/test_core_real_data.py::test_totalsegmentator_ct_liver_label_5",
]


def _pytest(tmp_path, ci: bool) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env["NETLM_SHARED"] = str(tmp_path / "no_shared_here")
    if ci:
        env["CI"] = "true"
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", *TESTS],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=300,
    )


def test_absent_shared_skips_with_a_reason_outside_ci(tmp_path):
    r = _pytest(tmp_path, ci=False)
    assert r.returncode == 0, r.stdout[-2000:]
    assert "2 skipped" in r.stdout
    assert r.stdout.count("shared file not present") == 2
    assert "NETLM_SHARED" in r.stdout


def test_absent_shared_fails_in_ci(tmp_path):
    r = _pytest(tmp_path, ci=True)
    assert r.returncode == 1
    assert "2 failed" in r.stdout
    assert "CI=true but the shared file" in r.stdout

"""cohort.csv and lesions.csv agree after a full disk: both are written, or neither is.

The disk fills while lesions.csv (the larger table) is written, after cohort.csv's new text would
fit. A real EFBIG from a file-size limit (``RLIMIT_FSIZE``, set in a child process; what a quota or
a full disk gives as ENOSPC is mapped the same way) stops the write; cohort.csv must still be the
previous version, so no study is listed as finished in one table and missing from the other.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

CHILD = r"""
import json, resource, signal, sys
from pathlib import Path
from netlm_imaging.batch.tables import CohortTables
from netlm_imaging.errors import OutputError
from netlm_imaging.report.tables import LESIONS_KEY, failure_row

out = Path(sys.argv[1])
def row(sid, n_lesions):
    r = failure_row(sid, "", "", "ok")
    r[LESIONS_KEY] = [{"study_id": sid, "lesion_id": i + 1, "location": "intrahepatic", "volume_ml": 1.5 * i}
                      for i in range(n_lesions)]
    return r
tables = CohortTables()
rows = {"a": row("a", 3)}
tables.write(out, rows.values())
first = {n: (out / n).read_text() for n in ("cohort.csv", "lesions.csv")}
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of the signal
resource.setrlimit(resource.RLIMIT_FSIZE, (20000, 20000))
rows["b"] = row("b", 2000)  # lesions.csv grows far past the limit; cohort.csv stays small
try:
    tables.write(out, rows.values())
    result = {"raised": None}
except OutputError as exc:
    result = {"raised": str(exc), "disk_full": exc.disk_full}
result["unchanged"] = {n: (out / n).read_text() == first[n] for n in first}
result["left"] = sorted(p.name for p in out.iterdir())
print(json.dumps(result))
"""


@pytest.mark.skipif(sys.platform == "win32", reason="RLIMIT_FSIZE is POSIX")
def test_a_full_disk_while_writing_lesions_csv_leaves_both_tables_as_they_were(tmp_path):
    r = subprocess.run(
        [sys.executable, "-c", CHILD, str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout)
    assert got["raised"] is not None
    assert got["raised"].startswith(f"{tmp_path / 'lesions.csv'}: cannot write (File too large)")
    assert got["disk_full"] is True
    assert got["unchanged"] == {"cohort.csv": True, "lesions.csv": True}
    assert got["left"] == ["cohort.csv", "lesions.csv"]  # no temporary file either

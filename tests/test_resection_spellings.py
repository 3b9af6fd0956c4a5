"""``--resection`` written as surgeons write it: ranges (5-8), S-prefixes, Roman numerals, 4a + 4b.

Truth: the demo's own voxel counts (sample_data/netlm_demo/truth.json, written when the phantom was
drawn): the FLR of a resection is the non-tumorous liver of the kept segments (clinical_rules.md
section 10: V_FLR = vol(remnant segments ∩ liver) - vol(lesions ∩ remnant segments)); the NIfTI affine is
float32, so volumes agree to a relative 1e-6.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from netlm_imaging.api import AnalyzeOptions
from netlm_imaging.classify.anatomy import parse_segments
from netlm_imaging.cli import main
from netlm_imaging.errors import UsageError

DEMO = Path(__file__).resolve().parents[1] / "sample_data" / "netlm_demo"
TRUTH = json.loads((DEMO / "truth.json").read_text())


def _flr_ml(removed: set[int]) -> float:
    kept = [s for s in range(1, 9) if s not in removed]
    return sum(TRUTH["segments"][str(s)]["liver_voxels_excluding_lesions"] for s in kept) * TRUTH["voxel_volume_ml"]


@pytest.mark.parametrize(
    ("text", "segments"),
    [
        ("5-8", (5, 6, 7, 8)),
        ("S5-S8", (5, 6, 7, 8)),
        ("5 - 8", (5, 6, 7, 8)),
        ("segments 2-4", (2, 3, 4)),
        ("V-VIII", (5, 6, 7, 8)),
        ("Segments VI and VII", (6, 7)),
        ("s6, s7", (6, 7)),
        ("S2/S3", (2, 3)),
        ("4a,4b", (4,)),
        ("IVa+IVb, V", (4, 5)),
        ("4-8 + 1", (1, 4, 5, 6, 7, 8)),
        ("5,6,7,8", (5, 6, 7, 8)),
    ],
)
def test_segment_lists_as_written(text, segments):
    assert parse_segments(text) == segments


@pytest.mark.parametrize(
    ("text", "why"),
    [("4b", "segment 4b alone cannot be evaluated"), ("5,x", "'x' is not a Couinaud segment"), ("", "no segment")],
)
def test_what_cannot_be_read_is_refused_with_the_reason(text, why):
    with pytest.raises(ValueError, match=why):
        parse_segments(text)


def test_the_cli_evaluates_ranges_and_roman_numerals_on_the_demo(tmp_path):
    out = tmp_path / "out"
    argv = ["analyze", str(DEMO), "--out", str(out), "--quiet", "--resection", "VI-VII", "--resection", "S4-S8"]
    assert main(argv) == 0
    rows = {r["name"]: r for r in json.loads((out / "report.json").read_text())["remnant"]["standard_resections"]}
    assert rows["custom:6+7"]["removed_segments"] == [6, 7]
    assert rows["custom:6+7"]["flr_ml"] == pytest.approx(_flr_ml({6, 7}), rel=1e-6)
    assert rows["custom:4+5+6+7+8"]["flr_ml"] == pytest.approx(_flr_ml({4, 5, 6, 7, 8}), rel=1e-6)


def test_the_cli_refuses_segment_4b_alone_with_exit_2(tmp_path, capsys):
    assert main(["analyze", str(DEMO), "--out", str(tmp_path / "o"), "--quiet", "--resection", "4b,5"]) == 2
    err = capsys.readouterr().err
    assert "--resection 4b,5: segment 4b alone cannot be evaluated" in err
    assert "Traceback" not in err


def test_the_python_api_reads_the_same_texts():
    assert AnalyzeOptions(resections=("5-8", (2, 3), "VI,VII")).resections == ((5, 6, 7, 8), (2, 3), (6, 7))
    with pytest.raises(UsageError, match="--resection 4a: segment 4a alone cannot be evaluated"):
        AnalyzeOptions(resections=("4a",))
    with pytest.raises(UsageError, match=r"--resection 9,10: segments must be 1\.\.8"):
        AnalyzeOptions(resections=("9-10",))

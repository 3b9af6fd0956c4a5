"""AnalyzeOptions validates itself: the Python API and ``netlm analyze`` refuse a bad value with one message."""

from __future__ import annotations

from pathlib import Path

import pytest

from netlm_imaging.api import AnalyzeOptions
from netlm_imaging.cli import main
from netlm_imaging.errors import UsageError

DEMO = Path(__file__).resolve().parents[1] / "sample_data" / "netlm_demo"

#: (AnalyzeOptions keyword, value, CLI arguments, message pattern)
BAD = [
    ("connectivity", 7, ["--connectivity", "7"], r"--connectivity 7: lesion instances are 6- or 26-connected"),
    ("fractional_threshold", 5.0, ["--fractional-threshold", "5"], r"--fractional-threshold 5\.0: must be in \(0, 1\]"),
    ("fractional_threshold", 0.0, ["--fractional-threshold", "0"], r"--fractional-threshold 0\.0: must be in"),
    ("weight_kg", -5.0, ["--weight", "-5"], r"--weight -5\.0: give the patient weight in kg \(0-700\)"),
    ("weight_kg", 700.0, ["--weight", "700"], r"--weight 700\.0: give the patient weight"),
    ("max_voxels", 0, ["--max-voxels", "0"], r"--max-voxels 0: must be positive"),
    ("resections", ((9, 10),), ["--resection", "9,10"], r"--resection 9,10: segments must be 1\.\.8"),
    ("modality", "XR", ["--modality", "XR"], r"--modality XR: use one of CT, MR, NM, OT, PT"),
]


@pytest.mark.parametrize(("key", "value", "argv", "pattern"), BAD, ids=[f"{b[0]}={b[1]}" for b in BAD])
def test_api_and_cli_refuse_with_the_same_message(key, value, argv, pattern, capsys):
    with pytest.raises(UsageError, match=pattern) as api_error:
        AnalyzeOptions(**{key: value})
    rc = main(["analyze", str(DEMO), "--json", "-", *argv])
    err = capsys.readouterr().err
    assert rc == 2
    assert str(api_error.value) in err


def test_margin_must_be_a_distance():
    with pytest.raises(UsageError, match=r"margin_mm -3: the intrahepatic margin is a distance"):
        AnalyzeOptions(margin_mm=-3)
    with pytest.raises(UsageError, match=r"margin_mm nan"):
        AnalyzeOptions(margin_mm=float("nan"))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"connectivity": 6},
        {"fractional_threshold": 1.0},
        {"weight_kg": 70.0},
        {"max_voxels": 1},
        {"margin_mm": 0.0},
        {"resections": ((1,), (5, 6, 7, 8))},
        {"modality": "ct"},
    ],
)
def test_boundary_values_are_accepted(kwargs):
    assert AnalyzeOptions(**kwargs) is not None


def test_mr_only_options_on_a_ct_are_ignored_with_a_warning(tmp_path):
    """--mr-phase and --n4 on the CT demo: the numbers are those of the plain run, and the report says the
    options were ignored (they used to vanish silently)."""
    import json

    assert main(["analyze", str(DEMO), "--out", str(tmp_path / "plain"), "--quiet"]) == 0
    assert main(["analyze", str(DEMO), "--out", str(tmp_path / "mr"), "--quiet", "--mr-phase", "hbp", "--n4"]) == 0
    plain = json.loads((tmp_path / "plain" / "report.json").read_text())
    mr = json.loads((tmp_path / "mr" / "report.json").read_text())
    assert plain["study"]["modality"] == "CT"
    for key in ("liver", "tumor", "involvement_percent", "remnant", "lesions", "classification"):
        assert mr[key] == plain[key], key
    added = [w for w in mr["warnings"] if w not in plain["warnings"]]
    assert len(added) == 1, added
    assert added[0].endswith("--mr-phase, --n4 apply to MR images only and this image is CT: ignored")

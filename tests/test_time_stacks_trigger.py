"""_time_stacks' TriggerTime split on header records (no pixels): which series it splits, and why not.

Each series is written here as (slice position mm, TriggerTime ms) per image, so the expected phases
and the counts in the reasons are those of the lists below.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from netlm_imaging.io._dicom_common import DicomFileInfo
from netlm_imaging.io._time_stacks import split_by_trigger_time, trigger_time_reason


def _series(images: list[tuple[float, float | None]]) -> tuple[list[DicomFileInfo], np.ndarray]:
    files = [
        DicomFileInfo(path=Path(f"im{i:03d}.dcm"), kind="image", trigger_time=t) for i, (_, t) in enumerate(images)
    ]
    return files, np.array([p for p, _ in images])


def test_two_phases_of_two_slices_split():
    files, pos = _series([(0.0, 0.0), (2.5, 0.0), (0.0, 20000.0), (2.5, 20000.0)])
    phases = split_by_trigger_time(files, pos)
    assert phases is not None
    assert [(label, [f.path.name for f in stack]) for label, stack in phases] == [
        ("TriggerTime 0 ms", ["im000.dcm", "im001.dcm"]),
        ("TriggerTime 20000 ms", ["im002.dcm", "im003.dcm"]),
    ]
    assert trigger_time_reason(files, pos) is None


def test_two_phases_of_one_slice_split():
    files, pos = _series([(4.0, 0.0), (4.0, 30000.0)])
    phases = split_by_trigger_time(files, pos)
    assert phases is not None
    assert [label for label, _ in phases] == ["TriggerTime 0 ms", "TriggerTime 30000 ms"]


def test_one_trigger_time_states_no_phases():
    files, pos = _series([(0.0, 500.0), (0.0, 500.0)])
    assert split_by_trigger_time(files, pos) is None
    assert trigger_time_reason(files, pos) is None


def test_a_trigger_time_missing_in_some_images_is_the_reason():
    files, pos = _series([(0.0, 0.0), (2.5, 0.0), (0.0, 20000.0), (2.5, None)])
    assert split_by_trigger_time(files, pos) is None
    assert trigger_time_reason(files, pos) == "TriggerTime states 2 values but is missing in 1 of 4 images"


def test_one_position_twice_in_a_phase_is_the_reason():
    files, pos = _series([(0.0, 0.0), (0.0, 0.0), (0.0, 20000.0), (2.5, 20000.0)])
    assert split_by_trigger_time(files, pos) is None
    assert trigger_time_reason(files, pos) == (
        "TriggerTime tells 2 groups apart, but TriggerTime 0 ms holds 2 images at 1 positions (one position twice)"
    )

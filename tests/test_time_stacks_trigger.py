"""_time_stacks' TriggerTime split on header records (no pixels): which series it splits, and why not.

Each series is written here as (slice position mm, TriggerTime ms) per image, so the expected phases
and the counts in the reasons are those of the lists below.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from netlm_imaging.io._dicom_info import DicomFileInfo
from netlm_imaging.io._time_stacks import split_by_trigger_time, trigger_time_phases, trigger_time_reason


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


def _stacks(times: list[str | None], triggers: list[float | None], ntp: int | None = None) -> list[list[DicomFileInfo]]:
    """One stack of two images per phase: phase n acquired at ``times[n]`` with TriggerTime ``triggers[n]``."""
    return [
        [
            DicomFileInfo(
                path=Path(f"p{n}s{k}.dcm"),
                kind="image",
                acquisition_time=t or "",
                trigger_time=trig,
                temporal_positions=ntp,
            )
            for k in range(2)
        ]
        for n, (t, trig) in enumerate(zip(times, triggers, strict=True))
    ]


def test_trigger_time_phases_sharing_one_acquisition_time_have_no_delay():
    stacks = _stacks(["101400", "101400", "101400"], [0.0, 18000.0, 55000.0])
    assert trigger_time_phases(stacks) == ([0.0, 18000.0, 55000.0], None)


def test_trigger_time_phases_each_with_its_own_acquisition_time_keep_it():
    stacks = _stacks(["101400", "101530", "101620"], [0.0, 18000.0, 55000.0])
    assert trigger_time_phases(stacks) == ([None, None, None], None)


def test_two_of_three_phases_sharing_a_time_or_a_missing_time_leave_every_phase_without_delay():
    assert trigger_time_phases(_stacks(["101400", "101400", "101620"], [0.0, 1.0, 2.0]))[0] == [0.0, 1.0, 2.0]
    assert trigger_time_phases(_stacks(["101400", None, "101620"], [0.0, 1.0, 2.0]))[0] == [0.0, 1.0, 2.0]


def test_stacks_not_told_apart_by_trigger_time_are_not_its_phases():
    # one TriggerTime for both stacks (Dixon water / fat), or none at all
    assert trigger_time_phases(_stacks(["101400", "101400"], [0.0, 0.0])) == ([None, None], None)
    assert trigger_time_phases(_stacks(["101400", "101400"], [None, None])) == ([None, None], None)


def test_number_of_temporal_positions_below_the_trigger_time_stacks_is_noted():
    _, note = trigger_time_phases(_stacks(["101400"] * 3, [0.0, 1.0, 2.0], ntp=2))
    assert note == (
        "NumberOfTemporalPositions (0020,0105) states 2 phases but TriggerTime tells 3 stacks apart: "
        "some TriggerTime stacks are not phases of the dynamic; check the series"
    )
    assert trigger_time_phases(_stacks(["101400"] * 3, [0.0, 1.0, 2.0], ntp=3))[1] is None

"""The stacks one Enhanced (multi-frame) image file holds at the same positions.

Part of the DICOM series reader (:mod:`netlm_imaging.io.dicom_series`). A Philips or Siemens
Enhanced MR file can hold every dynamic phase (TemporalPositionIndex) or every Dixon image
(FrameType) of an acquisition in one file; :func:`split_enhanced_frames` splits its frames into
one stack per value when the stacks repeat positions (:data:`FRAME_STACK_KEYS`), as
:func:`~netlm_imaging.io.dicom_series_groups.split_reconstructions` splits the files of a series.
"""

from __future__ import annotations

import itertools
from dataclasses import replace
from typing import Any

import numpy as np

from ._dicom_info import DicomFileInfo, FrameGeometry

__all__ = ["FRAME_STACK_KEYS", "split_enhanced_frames"]


#: What tells the stacks of one Enhanced file apart (FrameGeometry attribute, label in messages).
FRAME_STACK_KEYS: tuple[tuple[str, str], ...] = (
    ("temporal_position", "TemporalPositionIndex"),
    ("frame_type", "FrameType"),
)


#: Frame positions closer than this (mm, each coordinate) are one position.
_SAME_POSITION_MM = 0.01


def _share_a_position(a: np.ndarray, b: np.ndarray) -> bool:
    """Do two (n, 3) position lists hold a common position (within :data:`_SAME_POSITION_MM` per coordinate)?

    A tolerance, not rounding: 10.004999 and 10.005001 mm are one position, though they round apart.
    """
    if a.size == 0 or b.size == 0:
        return False
    from scipy.spatial import cKDTree

    dist, _ = cKDTree(b).query(a, k=1, p=np.inf, distance_upper_bound=_SAME_POSITION_MM * (1 + 1e-9))
    return bool(np.isfinite(dist).any())


def split_enhanced_frames(info: DicomFileInfo) -> list[tuple[str, list[DicomFileInfo]]]:
    """Split one Enhanced file into the stacks its frames hold at the same positions.

    A Philips or Siemens Enhanced MR file can hold every dynamic phase (TemporalPositionIndex) or
    every Dixon image (FrameType) of an acquisition. Frames are grouped by those attributes when
    the groups **repeat** positions; each stack is the file with only its frames.
    """
    for attr, name in FRAME_STACK_KEYS:
        groups: dict[Any, list[FrameGeometry]] = {}
        for fr in info.frames:
            groups.setdefault(getattr(fr, attr), []).append(fr)
        if len(groups) < 2:
            continue
        seen = [np.array([fr.position for fr in g], dtype=np.float64) for g in groups.values()]
        if not any(_share_a_position(a, b) for a, b in itertools.combinations(seen, 2)):
            continue
        out = []
        for value, frames in sorted(groups.items(), key=lambda kv: str(kv[0])):
            text = chr(92).join(value) if isinstance(value, tuple) else str(value)
            out.append((f"{name} {text}", [replace(info, frames=tuple(frames))]))
        return out
    return [("", [info])]

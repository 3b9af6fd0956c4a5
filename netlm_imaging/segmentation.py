"""Masks with roles: what every segmentation loader returns.

A segmentation file (label map, DICOM SEG, RTSTRUCT, binary mask) becomes a
list of :class:`MaskLayer` objects, each a boolean (or fractional) mask
:class:`~netlm_imaging.volume.Volume` with a role. Roles are the fixed
vocabulary in :data:`ROLES`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .volume import Volume

__all__ = ["ROLES", "SEGMENT_ROLES", "MaskLayer", "role_union", "segment_number"]

SEGMENT_ROLES: tuple[str, ...] = tuple(f"segment{i}" for i in range(1, 9))
#: The roles a mask can take.
ROLES: tuple[str, ...] = ("liver", "lesion", "spleen", "kidney", *SEGMENT_ROLES, "ignore")


def segment_number(role: str) -> int | None:
    """Couinaud segment number of a ``segmentN`` role, else ``None``."""
    if role in SEGMENT_ROLES:
        return int(role[len("segment") :])
    return None


@dataclass(frozen=True, eq=False)
class MaskLayer:
    """One mask with a role.

    Parameters
    ----------
    role : str
        One of :data:`ROLES`.
    mask : Volume
        Boolean array (binary) or float array in [0, 1] (fractional occupancy).
    label : str or None
        Segment / ROI name or label value as text, for the report.
    source : str
        File it came from.
    fractional : bool
        True if ``mask.array`` holds fractions (DICOM SEG FRACTIONAL).
    """

    role: str
    mask: Volume
    label: str | None = None
    source: str = "<array>"
    fractional: bool = False

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise ValueError(f"unknown role {self.role!r}; expected one of {', '.join(ROLES)}")

    def binary(self, threshold: float = 0.5) -> np.ndarray:
        """Boolean mask (fractional masks thresholded at ``>= threshold``)."""
        arr = self.mask.array
        if self.fractional:
            return np.asarray(arr >= threshold)
        return np.asarray(arr, dtype=bool)

    def with_mask(self, mask: Volume) -> MaskLayer:
        """Same layer on another grid (after resampling)."""
        return MaskLayer(self.role, mask, self.label, self.source, self.fractional)


def role_union(layers: Sequence[MaskLayer], role: str, shape: tuple[int, ...]) -> np.ndarray | None:
    """The union of the binary masks of one role's layers (all on one grid of ``shape``); None when none has it.

    Examples
    --------
    >>> v = Volume(np.array([[[1, 0]]], dtype=bool), np.eye(4))
    >>> w = Volume(np.array([[[0, 1]]], dtype=bool), np.eye(4))
    >>> role_union([MaskLayer("liver", v), MaskLayer("liver", w)], "liver", (1, 1, 2)).tolist()
    [[[True, True]]]
    >>> role_union([MaskLayer("liver", v)], "spleen", (1, 1, 2)) is None
    True
    """
    chosen = [la for la in layers if la.role == role]
    if not chosen:
        return None
    out = np.zeros(shape, dtype=bool)
    for la in chosen:
        out |= la.binary()
    return out

"""Masks drawn on the slices of a series that was resampled onto a regular grid.

Private helper of :mod:`netlm_imaging.io.dicom_seg` and :mod:`netlm_imaging.io.rtstruct`.
A DICOM series with a missing slice or non-uniform steps is read with
``nonuniform="resample"`` (``--allow-resample``): its image is interpolated onto
a regular grid (``meta["resampled"]``), while ``meta["slice_positions_mm"]`` and
``meta["sop_instance_uids"]`` keep the **original** slices. A SEG or RTSTRUCT made
on that series has frames / contours on the original slices only, so a grid slice
with no original slice near it (the missing one) would stay empty: a hole that
splits a lesion in two and lowers every volume. The masks are resampled the way
the image was, by nearest neighbour along the slice normal: every grid slice takes
the mask of the original slice nearest to it (ties: the lower one).
"""

from __future__ import annotations

import numpy as np

from ..volume import Volume

__all__ = ["grid_slice_of_original", "nearest_original_slices", "resampled_note"]


def _positions(reference: Volume) -> np.ndarray | None:
    if not reference.meta.get("resampled"):
        return None
    pos = reference.meta.get("slice_positions_mm")
    if not pos or len(pos) < 2:
        return None
    return np.asarray(pos, dtype=np.float64)


def grid_slice_of_original(reference: Volume) -> np.ndarray | None:
    """Grid slice nearest to each original slice (``meta["slice_positions_mm"]`` order), or ``None``.

    ``None`` when the reference was not resampled (its slices are the original ones).
    """
    pos = _positions(reference)
    if pos is None:
        return None
    step = reference.slice_separation_mm  # the positions are along the normal, as the planes' separation
    nk = reference.shape[2]
    return np.clip(np.rint((pos - pos[0]) / step).astype(np.int64), 0, nk - 1)


def nearest_original_slices(reference: Volume) -> np.ndarray | None:
    """For each grid slice, the grid slice holding the original slice nearest to it; ``None`` if not resampled.

    Indexing a mask ``m[:, :, map]`` gives it on the resampled grid by nearest neighbour
    along the normal, as the image was resampled (linearly) from the same original slices.
    """
    pos = _positions(reference)
    g = grid_slice_of_original(reference)
    if pos is None or g is None:
        return None
    target = pos[0] + reference.slice_separation_mm * np.arange(reference.shape[2])
    nearest = np.argmin(np.abs(target[:, None] - pos[None, :]), axis=1)  # first (lower) on ties
    return g[nearest]


def resampled_note(kmap: np.ndarray) -> str | None:
    """The warning for masks whose grid slices were filled from neighbours, or ``None`` if none was."""
    filled = np.flatnonzero(kmap != np.arange(kmap.size))
    if filled.size == 0:
        return None
    pairs = ", ".join(f"{int(t)} <- {int(kmap[t])}" for t in filled[:5])
    more = "" if filled.size <= 5 else f" and {filled.size - 5} more"
    return (
        f"the image was resampled onto a regular grid; {filled.size} of its slice(s) had no original slice, so the "
        f"mask there was taken from the nearest original slice (nearest neighbour along the normal: {pairs}{more})"
    )

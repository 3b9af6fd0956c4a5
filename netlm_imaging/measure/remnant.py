"""The future liver remnant of a resection of whole Couinaud segments, measured on the segment map.

Definitions (clinical_rules.md section 6):

- FLR = non-tumorous liver in the segments left after the resection (tumour
  inside the remnant is subtracted, liver voxels without a segment label are
  not counted);
- measured FLR% = FLR / non-tumorous liver.

The standardized FLR (FLR / TELV, the TELV estimated from body size) and whether an FLR is
adequate are the classify stage's (:mod:`netlm_imaging.classify.body_size`,
:func:`netlm_imaging.classify.surgical.flr_adequacy`); this module only measures.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

from ..errors import InputError
from .segments import N_SEGMENTS, SegmentTable

__all__ = ["remnant_for_resection", "standard_resections"]

logger = logging.getLogger(__name__)


def _check_segments(segments: Iterable[int]) -> list[int]:
    out = sorted({int(s) for s in segments})
    bad = [s for s in out if not 1 <= s <= N_SEGMENTS]
    if bad:
        raise InputError(f"resection segments must be Couinaud segments 1-8, got {bad}")
    return out


def remnant_for_resection(
    table: SegmentTable, removed_segments: Iterable[int], *, non_tumorous_total_ml: float | None = None
) -> dict[str, Any]:
    """FLR after resecting whole Couinaud segments (measured; adequacy is classify's).

    Parameters
    ----------
    table : SegmentTable
        From :func:`~netlm_imaging.measure.segments.compute_segment_table`.
    removed_segments : iterable of int
        Segments resected (1..8).
    non_tumorous_total_ml : float or None
        Denominator of the measured FLR%; default: all non-tumorous liver
        voxels of the table (including those without a segment label).

    Returns
    -------
    dict
        ``removed_segments``, ``remnant_segments``, ``flr_ml``,
        ``tumor_in_remnant_ml`` and ``flr_percent_of_non_tumorous``.
    """
    removed = _check_segments(removed_segments)
    kept = [s for s in range(1, N_SEGMENTS + 1) if s not in removed]
    flr = table.non_tumorous_ml(kept)
    total_nt = (
        non_tumorous_total_ml
        if non_tumorous_total_ml is not None
        else float(table.non_tumorous_voxels.sum()) * table.voxel_volume_ml
    )
    pct_nt = 100.0 * flr / total_nt if total_nt > 0 else None
    return {
        "removed_segments": removed,
        "remnant_segments": kept,
        "flr_ml": flr,
        "tumor_in_remnant_ml": table.tumor_ml(kept),
        "flr_percent_of_non_tumorous": pct_nt,
    }


def standard_resections(
    table: SegmentTable | None,
    resections: Mapping[str, Mapping[str, Any]],
    *,
    extra: Iterable[Iterable[int]] = (),
    non_tumorous_total_ml: float | None = None,
) -> list[dict[str, Any]]:
    """FLR for every standard resection of the rules and any user-given segment sets.

    Parameters
    ----------
    table : SegmentTable or None
        None (no segment map): no resection can be measured, the list is empty.
    resections : Mapping
        ``rules["resections"]``: name -> {label, segments, source}.
    extra : iterable of iterable of int
        User-given segment sets (named ``"segments 2+3"`` in the output).
    non_tumorous_total_ml
        As :func:`remnant_for_resection`.

    Returns
    -------
    list of dict
        One :func:`remnant_for_resection` dict per resection plus ``name``,
        ``label`` and ``source``.
    """
    if table is None:
        return []
    out = []
    items: list[tuple[str, str, str, list[int]]] = [
        (name, str(r["label"]), str(r["source"]), list(r["segments"])) for name, r in resections.items()
    ]
    for segs in extra:
        segs_l = _check_segments(segs)
        label = "segments " + "+".join(map(str, segs_l))
        items.append(("custom:" + "+".join(map(str, segs_l)), label, "user", segs_l))
    for name, label, source, segs in items:
        res = remnant_for_resection(table, segs, non_tumorous_total_ml=non_tumorous_total_ml)
        out.append({"name": name, "label": label, "source": source, **res})
    return out

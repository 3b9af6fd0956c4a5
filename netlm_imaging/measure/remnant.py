"""Body surface area, total estimated liver volume and the future liver remnant.

Formulas (clinical_rules.md sections 6 and 10):

- Mosteller BSA = sqrt(height_cm x weight_kg / 3600) [C];
  DuBois BSA = 0.007184 x height_cm^0.725 x weight_kg^0.425 [C];
- TELV (Vauthey) = -794.41 + 1267.28 x BSA (mL) [S]/[C];
- FLR = non-tumorous liver in the segments left after the resection (tumour
  inside the remnant is subtracted, liver voxels without a segment label are
  not counted);
- sFLR = FLR / TELV; measured FLR% = FLR / non-tumorous liver.

Whether an FLR is adequate is a classification
(:func:`netlm_imaging.classify.surgical.flr_adequacy`); this module only measures.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping
from typing import Any

from ..errors import InputError
from ..rules_data import default_section
from .segments import N_SEGMENTS, SegmentTable

__all__ = ["bsa_m2", "remnant_for_resection", "standard_resections", "telv_ml"]

logger = logging.getLogger(__name__)


def bsa_m2(height_cm: float, weight_kg: float, formula: str = "mosteller") -> float:
    """Body surface area (m²).

    Parameters
    ----------
    height_cm : float
    weight_kg : float
    formula : {"mosteller", "dubois"}

    Returns
    -------
    float

    Raises
    ------
    InputError
        Unknown formula or non-positive height/weight.

    Examples
    --------
    >>> round(bsa_m2(180, 81), 4)  # sqrt(180 * 81 / 3600) = sqrt(4.05)
    2.0125
    """
    if not (height_cm > 0 and weight_kg > 0):
        raise InputError(f"BSA needs positive height and weight, got {height_cm!r} cm and {weight_kg!r} kg")
    if formula == "mosteller":
        return math.sqrt(height_cm * weight_kg / 3600.0)
    if formula == "dubois":
        return 0.007184 * height_cm**0.725 * weight_kg**0.425
    raise InputError(f"unknown BSA formula {formula!r}; use mosteller or dubois (rules key body.bsa_formula)")


def telv_ml(bsa: float, *, intercept_ml: float | None = None, slope_ml_per_m2: float | None = None) -> float:
    """Total estimated liver volume (Vauthey): ``intercept + slope x BSA`` (mL).

    ``intercept_ml`` and ``slope_ml_per_m2`` default to the shipped rules keys
    ``body.telv_intercept_ml`` and ``body.telv_slope_ml_per_m2``.

    Examples
    --------
    >>> round(telv_ml(2.0), 2)
    1740.15
    """
    body = default_section("body")
    a = float(body["telv_intercept_ml"]) if intercept_ml is None else intercept_ml
    b = float(body["telv_slope_ml_per_m2"]) if slope_ml_per_m2 is None else slope_ml_per_m2
    value = a + b * bsa
    if value <= 0:
        raise InputError(f"TELV {value:.1f} mL from BSA {bsa:.3f} m² is not positive; check height and weight")
    return value


def _check_segments(segments: Iterable[int]) -> list[int]:
    out = sorted({int(s) for s in segments})
    bad = [s for s in out if not 1 <= s <= N_SEGMENTS]
    if bad:
        raise InputError(f"resection segments must be Couinaud segments 1-8, got {bad}")
    return out


def remnant_for_resection(
    table: SegmentTable,
    removed_segments: Iterable[int],
    *,
    telv: float | None = None,
    non_tumorous_total_ml: float | None = None,
) -> dict[str, Any]:
    """FLR after resecting whole Couinaud segments (measured; adequacy is classify's).

    Parameters
    ----------
    table : SegmentTable
        From :func:`~netlm_imaging.measure.segments.compute_segment_table`.
    removed_segments : iterable of int
        Segments resected (1..8).
    telv : float or None
        TELV (mL); ``None`` when height/weight are unknown.
    non_tumorous_total_ml : float or None
        Denominator of the measured FLR%; default: all non-tumorous liver
        voxels of the table (including those without a segment label).

    Returns
    -------
    dict
        ``removed_segments``, ``remnant_segments``, ``flr_ml``,
        ``tumor_in_remnant_ml``, ``flr_percent_of_non_tumorous``,
        ``standardized_flr_percent`` and ``telv_ml``.
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
    sflr = 100.0 * flr / telv if telv else None
    return {
        "removed_segments": removed,
        "remnant_segments": kept,
        "flr_ml": flr,
        "tumor_in_remnant_ml": table.tumor_ml(kept),
        "flr_percent_of_non_tumorous": pct_nt,
        "standardized_flr_percent": sflr,
        "telv_ml": telv,
    }


def standard_resections(
    table: SegmentTable,
    resections: Mapping[str, Mapping[str, Any]],
    *,
    telv: float | None,
    extra: Iterable[Iterable[int]] = (),
    non_tumorous_total_ml: float | None = None,
) -> list[dict[str, Any]]:
    """FLR for every standard resection of the rules and any user-given segment sets.

    Parameters
    ----------
    table : SegmentTable
    resections : Mapping
        ``rules["resections"]``: name -> {label, segments, source}.
    extra : iterable of iterable of int
        User-given segment sets (named ``"segments 2+3"`` in the output).
    telv, non_tumorous_total_ml
        As :func:`remnant_for_resection`.

    Returns
    -------
    list of dict
        One :func:`remnant_for_resection` dict per resection plus ``name``,
        ``label`` and ``source``.
    """
    out = []
    items: list[tuple[str, str, str, list[int]]] = [
        (name, str(r["label"]), str(r["source"]), list(r["segments"])) for name, r in resections.items()
    ]
    for segs in extra:
        segs_l = _check_segments(segs)
        label = "segments " + "+".join(map(str, segs_l))
        items.append(("custom:" + "+".join(map(str, segs_l)), label, "user", segs_l))
    for name, label, source, segs in items:
        res = remnant_for_resection(table, segs, telv=telv, non_tumorous_total_ml=non_tumorous_total_ml)
        out.append({"name": name, "label": label, "source": source, **res})
    return out

"""PET without a known SUV scale: which fields are SUV-valued and are nulled.

When the body weight is unknown (:mod:`netlm_imaging.io.suv`, ``suv_unavailable``) the PET
volume holds the activity concentration (Bq/mL), a constant multiple of SUVbw. Everything that
is a ratio of uptake (the Krenning estimate against liver and spleen, its confidence, a
``rel:`` or ``liver:`` delineation's voxel counts and volumes) is measured as usual; every
field in SUV, SUL or SUV x mL units is set to ``null`` here.
"""

from __future__ import annotations

from typing import Any

__all__ = ["drop_absolute_uptake"]

#: Fields in SUV (or SUL, or SUV x mL) units: unknown when the body weight is (the Krenning grade and
#: its confidence, the voxel counts and the volumes of a liver-relative or lesion-relative delineation are ratios).
_ABSOLUTE_BLOCK = (
    "liver_suv_mean",
    "spleen_suv_mean",
    "suv_max",
    "tlsre",
    "liver_suv_sd",
    "liver_suv_max",
    "hepatic_lesion_suv_max",
    "whole_body_tlsre",
    "sretv_avid_floor_suv",
    "sul",
    "liver_sul_mean",
    "sul_max",
)
_ABSOLUTE_LESION = (
    "suv_max",
    "suv_mean",
    "suv_peak",
    "suv_mean_core",
    "suv_peak_inside",
    "krenning_statistic_suv",
    "sul_max",
    "sul_peak",
    "sul_mean",
    "tlsre",
    "sretv_threshold_suv",
)


def drop_absolute_uptake(block: dict[str, Any], updates: dict[int, dict[str, Any]], keep_sretv: bool) -> None:
    """Null every SUV-valued field of the block and the lesions (the values are Bq/mL, not SUV).

    Parameters
    ----------
    block : dict
        The report's ``pet`` block, changed in place.
    updates : dict of int to dict
        Per-lesion PET fields, changed in place.
    keep_sretv : bool
        The delineation and the avid floor are ratios of uptake (``rel:``, ``liver:``, no absolute
        cut-off), so the SRETV volumes stand; otherwise they are nulled too.
    """
    for key in _ABSOLUTE_BLOCK:
        if key in block:
            block[key] = None
    for key in ("liver_reference", "upper_reference"):
        ref = block.get(key)
        if isinstance(ref, dict):
            block[key] = {**ref, "suv_mean": None, "suv_sd": None, "suv_max": None}
    if not keep_sretv:
        block["sretv_ml"] = block["whole_body_sretv_ml"] = None
    for upd in updates.values():
        for key in _ABSOLUTE_LESION:
            if key in upd:
                upd[key] = None
        if not keep_sretv and "sretv_ml" in upd:
            upd["sretv_ml"] = None

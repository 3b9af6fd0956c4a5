"""Units CNTS (Philips) with the SUV Scale Factor (7053,1000): the scanner's SUV, checked against the QIBA one.

Where every slice also has the Activity Concentration Scale Factor (7053,1009), the series is
run through the QIBA rule on Bq/mL (:mod:`~netlm_imaging.io.suv_bqml`) and the two factors are
compared (:func:`~netlm_imaging.io.pet_scanner_check.compare_with_scanner`).
"""

from __future__ import annotations

import logging
from dataclasses import replace

import numpy as np

from ..dicom_values import parse_float as _float
from ..errors import NetlmError
from .pet_philips import concentration_scale, has_concentration_scale
from .pet_scanner_check import compare_with_scanner
from .pet_tags import PHILIPS_CREATOR, private_value
from .suv_bqml import bqml_conversion
from .suv_result import SuvConversion, SuvSeries
from .suv_weight import scanner_weighted

__all__ = ["philips_suv_scale"]

logger = logging.getLogger(__name__)


def philips_suv_scale(series: SuvSeries) -> SuvConversion | None:
    """CNTS with the Philips private SUV Scale Factor (7053,1000) on every slice (None without it).

    None too when a weight is given, Patient's Weight (0010,1030) is missing or 0 (the weight the factor
    holds is unknown) and every slice has the Activity Concentration Scale Factor (7053,1009): the BQML
    rule on ``value * (7053,1009)`` then uses the given weight.
    """
    weight_kg, header_weight = series.inputs.weight_kg, series.header_weight
    suv_scale = [_float(private_value(ds, 0x7053, PHILIPS_CREATOR, 0x00)) for ds in series.datasets]
    if not all(v is not None and v != 0.0 for v in suv_scale):
        return None
    factors = np.array(suv_scale, dtype=np.float64)
    if weight_kg is not None and (header_weight is None or header_weight <= 0) and has_concentration_scale(series):
        # the SUV factor holds an unknown weight; the Bq/mL factor and the given weight give the SUV (QIBA)
        series.warnings.append(
            f"Patient's Weight (0010,1030) is {'missing' if header_weight is None else f'{header_weight:g}'}: the "
            f"Philips SUV Scale Factor (7053,1000) cannot be rescaled to {series.inputs.weight_source} "
            f"({float(weight_kg):g} kg); SUV computed from the Activity Concentration Scale Factor (7053,1009) with "
            "that weight"
        )
        return None
    conv = scanner_weighted(series, factors, "the Philips SUV Scale Factor (7053,1000)", "CNTS:7053,1000")
    if not has_concentration_scale(series):
        return conv
    # the same series through the QIBA rule on its Bq/mL scale (7053,1009), to see whether the scanner agrees
    trial_series = replace(series, warnings=[], cross_check=False)
    try:
        trial = bqml_conversion(trial_series, concentration_scale(trial_series), "CNTS:7053,1009")
    except NetlmError as exc:  # the header cannot give the factor (times, dose ...): nothing to compare
        logger.debug("%s: no computed SUV factor to compare with (7053,1000): %s", series.source, exc)
        return conv
    if trial.suv_unavailable is not None:
        return conv
    check = compare_with_scanner(
        conv.factors,
        trial.factors,
        limit=float(series.limits["scanner_suv_disagreement_warn"]),
        used="the Philips factor",
        facts=_factor_facts(trial),
        warnings=series.warnings,
    )
    return replace(conv, scanner_check=check)


def _factor_facts(conv: SuvConversion) -> str:
    """The inputs of a computed SUV factor, for messages."""
    parts = [
        f"weight {conv.weight_kg:g} kg" if conv.weight_kg is not None else "",
        f"dose {conv.injected_dose_bq:g} Bq" if conv.injected_dose_bq is not None else "",
        f"uptake {conv.decay_time_s:g} s" if conv.decay_time_s is not None else "",
        f"half-life {conv.half_life_s:g} s" if conv.half_life_s is not None else "",
    ]
    return ", ".join(p for p in parts if p)

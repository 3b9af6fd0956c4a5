"""The Philips private PET scale factors (creator "Philips PET Private Group", group 7053).

SUV Scale Factor (7053,1000) is SUVbw per count, at Patient's Weight; Activity Concentration
Scale Factor (7053,1009) turns counts into Bq/mL. Units CNTS series need one of them
(:mod:`netlm_imaging.io.suv`); in BQML series too, ``(7053,1000) / (7053,1009)`` is the scanner's
SUV factor per Bq/mL, compared with the computed one (:mod:`~netlm_imaging.io.pet_scanner_check`).
"""

from __future__ import annotations

import numpy as np

from ..dicom_values import parse_float as _float
from ..errors import UnsupportedError
from .pet_tags import PHILIPS_CREATOR, private_value
from .suv_result import SuvSeries

__all__ = ["concentration_scale", "has_concentration_scale", "scanner_suv_scale"]


def scanner_suv_scale(series: SuvSeries) -> np.ndarray:
    """The Philips SUV factor per modality-LUT value of each slice read in full (NaN for the others, or absent).

    (7053,1000) is SUV per count, the unit (7053,1009) turns into Bq/mL, in BQML series too (calculate-suv's
    PHILIPS_BQML sample: its QIBA factor per Bq/mL is (7053,1000) / (7053,1009)); for Units CNTS the values
    are those counts.
    """
    out = np.full(len(series.datasets), np.nan)
    for k, ds in enumerate(series.datasets):
        if not hasattr(ds, "private_block"):  # the light per-slice headers of pet._series_headers: no private tags
            continue
        value = _float(private_value(ds, 0x7053, PHILIPS_CREATOR, 0x00))
        if series.units != "CNTS" and value is not None:
            per_bqml = _float(private_value(ds, 0x7053, PHILIPS_CREATOR, 0x09))
            value = value / per_bqml if per_bqml else None
        if value is not None:
            out[k] = value
    return out


def has_concentration_scale(series: SuvSeries) -> bool:
    """Whether every slice carries a non-zero Philips Activity Concentration Scale Factor (7053,1009)."""
    values = [_float(private_value(ds, 0x7053, PHILIPS_CREATOR, 0x09)) for ds in series.datasets]
    return all(v is not None and v != 0.0 for v in values)


def concentration_scale(series: SuvSeries) -> np.ndarray:
    """CNTS without an SUV scale: the Activity Concentration Scale Factor (7053,1009) turns counts into Bq/mL."""
    conc_scale = [_float(private_value(ds, 0x7053, PHILIPS_CREATOR, 0x09)) for ds in series.datasets]
    if not all(v is not None and v != 0.0 for v in conc_scale):
        raise UnsupportedError(
            f"{series.source}: PET Units are CNTS but the Philips private SUV Scale Factor (7053,1000) and Activity "
            "Concentration Scale Factor (7053,1009) are missing (private tags stripped by the export?); "
            "SUV cannot be computed. Re-export with private tags or in Bq/mL (BQML)."
        )
    return np.array(conc_scale, dtype=np.float64)

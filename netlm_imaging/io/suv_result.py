"""What the SUVbw conversion reads from a PET series and what it gives back.

:class:`SuvConversion` is the result of :func:`netlm_imaging.io.suv.suv_conversion` (the factors
and the facts used, for ``Volume.meta["suv"]`` and the report); :class:`SuvSeries` holds the facts
of one series that every branch of the conversion (BQML, Philips CNTS, GML) reads.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np

from .pet_plausibility import check_conversion
from .suv_inputs import SuvInputs

__all__ = ["SuvConversion", "SuvSeries"]


@dataclass(frozen=True)
class SuvConversion:
    """How a PET series' values become SUVbw.

    Attributes
    ----------
    factors : numpy.ndarray
        float64, one per slice in the order the datasets were given:
        ``SUVbw = modality_lut_value * factors[k]``.
    rescale_slopes, rescale_intercepts : numpy.ndarray
        float64 per slice, so ``SUVbw = (stored * slope + intercept) * factor``.
    units : str
        Units (0054,1001) of the series, e.g. ``"BQML"``.
    decay_correction : str
        Decay Correction (0054,1102), e.g. ``"START"``.
    scan_datetime, injection_datetime : datetime or None
        Reference times used (None when not needed and absent).
    half_life_s, injected_dose_bq, decayed_dose_bq, weight_kg : float or None
        The quantities of the QIBA formula (None when not used, e.g. GML).
    decay_time_s : float or None
        ``scan - injection`` in seconds.
    nuclide : str or None
        Identified radionuclide (``"Ga-68"``, ``"F-18"``, ...).
    method : str
        Which branch was used (``"BQML"``, ``"CNTS:7053,1000"``, ...).
    warnings : list of str
        Facts the user must know (half-life mismatch, GML assumption, ...).
    convolution_kernel : str or None
        Convolution Kernel (0018,1210), where vendors name the post-filter
        (``"Gauss5.00"``); the PET resolution is read from it.
    suv_unavailable : str or None
        Why no SUV could be computed (the body weight is unknown): the
        factors then give the activity concentration in Bq/mL, not SUVbw.
    half_life_source, weight_source : str or None
        Where the half-life and the weight came from (``"header (0018,1075)"``,
        ``"user (--pet-half-life)"``, ``"header (0010,1030)"``, ``"user (--weight)"`` ...).
    scanner_check : dict or None
        The Philips SUV Scale Factor (7053,1000) against the factor computed from the header
        (:func:`~netlm_imaging.io.pet_scanner_check.compare_with_scanner`); None when not both known.
    """

    factors: np.ndarray
    rescale_slopes: np.ndarray
    rescale_intercepts: np.ndarray
    units: str
    decay_correction: str
    scan_datetime: datetime | None
    injection_datetime: datetime | None
    half_life_s: float | None
    injected_dose_bq: float | None
    decayed_dose_bq: float | None
    weight_kg: float | None
    decay_time_s: float | None = None
    nuclide: str | None = None
    method: str = ""
    warnings: list[str] = field(default_factory=list)
    convolution_kernel: str | None = None
    suv_unavailable: str | None = None
    half_life_source: str | None = None
    weight_source: str | None = None
    scanner_check: dict[str, Any] | None = None

    @property
    def uniform(self) -> bool:
        """True when every slice has the same factor (to 1e-12 relative)."""
        f = self.factors
        return bool(np.all(np.abs(f - f[0]) <= 1e-12 * max(abs(float(f[0])), 1e-300)))

    def summary(self) -> dict[str, Any]:
        """Non-identifying facts for ``Volume.meta["suv"]`` and the report."""

        def iso(d: datetime | None) -> str | None:
            return None if d is None else d.isoformat()

        return {
            "suv_type": "SUVbw",
            "units": self.units,
            "decay_correction": self.decay_correction,
            "method": self.method,
            "nuclide": self.nuclide,
            "half_life_s": self.half_life_s,
            "half_life_source": self.half_life_source,
            "weight_source": self.weight_source,
            "scanner_suv_check": self.scanner_check,
            "injected_dose_bq": self.injected_dose_bq,
            "decayed_dose_bq": self.decayed_dose_bq,
            "weight_kg": self.weight_kg,
            "decay_time_s": self.decay_time_s,
            "scan_datetime": iso(self.scan_datetime),
            "injection_datetime": iso(self.injection_datetime),
            "factor_min": float(np.min(self.factors)),
            "factor_max": float(np.max(self.factors)),
            "convolution_kernel": self.convolution_kernel,
            "suv_unavailable": self.suv_unavailable,
        }


@dataclass
class SuvSeries:
    """The facts of one PET series every path of :func:`~netlm_imaging.io.suv.suv_conversion` uses."""

    datasets: Sequence[Any]
    source: str
    units: str
    decay: str
    slopes: np.ndarray
    intercepts: np.ndarray
    nuclide: str | None
    header_weight: float | None
    inputs: SuvInputs  # the user's weight and half-life (--weight, --pet-half-life, the clinical file)
    limits: Any
    kernel: str | None
    warnings: list[str]
    cross_check: bool = True  # compare a computed factor with the Philips SUV Scale Factor (7053,1000)

    def plausible(self, weight: float | None, dose: float | None, uptake_s: float | None) -> list[str]:
        """The plausibility warnings of a weight, dose and uptake time (refusals raise)."""
        return check_conversion(
            weight_kg=weight,
            weight_from_option=self.inputs.weight_kg is not None,
            option_name=self.inputs.weight_source,
            dose_bq=dose,
            uptake_s=uptake_s,
            nuclide=self.nuclide,
            limits=self.limits,
            source=self.source,
        )

    def scanner_scaled(self, factors: np.ndarray, weight: float | None, method: str) -> SuvConversion:
        """GML or the Philips SUV Scale Factor: the scanner's scale, no decay or dose facts."""
        return SuvConversion(
            factors=factors,
            rescale_slopes=self.slopes,
            rescale_intercepts=self.intercepts,
            units=self.units,
            decay_correction=self.decay,
            scan_datetime=None,
            injection_datetime=None,
            half_life_s=None,
            injected_dose_bq=None,
            decayed_dose_bq=None,
            weight_kg=weight if weight is not None else self.header_weight,
            nuclide=self.nuclide,
            method=method,
            warnings=self.warnings,
            convolution_kernel=self.kernel,
            weight_source=f"user ({self.inputs.weight_source})"
            if weight is not None
            else ("header (0010,1030)" if self.header_weight else None),
        )

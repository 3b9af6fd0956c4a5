"""The QIBA rule on Bq/mL values: ``SUVbw = value x weight / (injected dose decayed to the scan start)``.

Used for Units BQML and for Philips CNTS values turned into Bq/mL by (7053,1009). The decay
follows Decay Correction (0054,1102): ``START`` decays the dose over the uptake time, ``ADMIN``
not at all, ``NONE`` only with every slice's Decay Factor (0054,1321) (see :mod:`netlm_imaging.io.suv`).
"""

from __future__ import annotations

import numpy as np

from ..dicom_values import parse_float as _float
from ..errors import DicomError, InputError, UnsupportedError
from .pet_half_life import resolve_half_life
from .pet_philips import scanner_suv_scale
from .pet_scanner_check import compare_with_scanner
from .pet_tags import radiopharm
from .pet_times import uptake_times
from .suv_result import SuvConversion, SuvSeries
from .suv_weight import body_weight, weight_origin

__all__ = ["bqml_conversion"]


def _decayed_dose(
    series: SuvSeries, dose: float, decay_time: float | None, half_life: float
) -> tuple[float, np.ndarray]:
    """The dose at the time the pixels are corrected to, and each slice's own Decay Factor (for NONE)."""
    n, src, decay = len(series.datasets), series.source, series.decay
    if decay == "ADMIN":
        return dose, np.ones(n, dtype=np.float64)
    if decay == "START":
        assert decay_time is not None  # only ADMIN reads on without the times
        return dose * 2.0 ** (-decay_time / half_life), np.ones(n, dtype=np.float64)
    if decay == "NONE":
        dfs = [_float(ds.get("DecayFactor")) for ds in series.datasets]
        if not all(v is not None and v > 0 for v in dfs):
            raise UnsupportedError(
                f"{src}: PET Decay Correction (0054,1102) is NONE and Decay Factor (0054,1321) is missing; "
                "the pixel values are not decay-corrected and SUV would be wrong. Export a decay-corrected "
                "(START) series."
            )
        assert decay_time is not None
        series.warnings.append(
            "PET Decay Correction is NONE: each slice was multiplied by its Decay Factor (0054,1321) to correct "
            "it to the scan start, then SUV computed as for START; verify against the scanner's SUV"
        )
        return dose * 2.0 ** (-decay_time / half_life), np.array(dfs, dtype=np.float64)
    raise UnsupportedError(
        f"{src}: PET Decay Correction (0054,1102) is {decay or 'missing'!r}; expected START, ADMIN or NONE. "
        "Export the series with its PET Series module."
    )


def bqml_conversion(series: SuvSeries, to_bqml: np.ndarray, method: str) -> SuvConversion:
    """The QIBA rule on Bq/mL values: weight / (injected dose decayed to the scan start)."""
    src = series.source
    weight = body_weight(series, src)
    info = radiopharm(series.datasets[0])
    if info is None:
        raise DicomError(
            f"{src}: Radiopharmaceutical Information Sequence (0054,0016) is missing; SUV needs the injected "
            "dose, injection time and half-life. Export the series with its original PET headers."
        )
    dose = _float(info.get("RadionuclideTotalDose"))
    if (dose is None and series.inputs.require_weight) or (dose is not None and dose <= 0):
        raise InputError(
            f"{src}: injected dose Radionuclide Total Dose (0018,1074) is {'missing' if dose is None else dose}; "
            "SUV cannot be computed. Fix the header (dose in Bq) or use a series that records it."
        )
    half_life, half_life_source = resolve_half_life(
        info,
        series.nuclide,
        limits=series.limits,
        source=src,
        warnings=series.warnings,
        decay=series.decay,
        user_half_life_s=series.inputs.half_life_s,
        user_half_life_option=series.inputs.half_life_source,
    )
    scan, injection, decay_time = uptake_times(series, info, half_life)
    # each slice's own decay factor does not depend on the dose (1 Bq stands in when it is missing)
    decayed, per_slice_decay = _decayed_dose(series, dose if dose is not None else 1.0, decay_time, half_life)
    series.warnings.extend(series.plausible(weight, dose, decay_time))
    lacking = []
    if weight is None:
        lacking.append(
            f"body weight unknown: Patient's Weight (0010,1030) is "
            f"{'missing' if series.header_weight is None else series.header_weight} and no weight was given "
            "(--weight KG or the clinical file's weight_kg)"
        )
    if dose is None:
        lacking.append(
            "injected dose unknown: Radionuclide Total Dose (0018,1074) is missing (fix the header: dose in Bq)"
        )
    unavailable = "; ".join(lacking) or None
    if unavailable:  # Bq/mL (decay-corrected as the series says): ratios of uptake need no weight or dose
        factors = to_bqml * per_slice_decay
        series.warnings.append(f"no SUV: {unavailable}; SUV values are null")
    else:
        assert weight is not None
        factors = to_bqml * per_slice_decay * (weight * 1000.0 / decayed)
    scanner_check = None
    header_weight = series.header_weight
    if series.cross_check and unavailable is None and header_weight is not None and header_weight > 0:
        assert weight is not None
        scanner = scanner_suv_scale(series)
        if np.any(np.isfinite(scanner)):  # the scanner's factor holds Patient's Weight: compare at that weight
            scanner_check = compare_with_scanner(
                scanner,
                factors * (header_weight / weight),
                limit=float(series.limits["scanner_suv_disagreement_warn"]),
                used="the computed factor",
                facts=", ".join(
                    f
                    for f in (
                        f"weight {header_weight:g} kg",
                        f"dose {dose:g} Bq" if dose is not None else "",
                        f"uptake {decay_time:g} s" if decay_time is not None else "",
                        f"half-life {half_life:g} s",
                    )
                    if f
                ),
                warnings=series.warnings,
            )
    return SuvConversion(
        factors=factors,
        rescale_slopes=series.slopes,
        rescale_intercepts=series.intercepts,
        units=series.units,
        decay_correction=series.decay,
        scan_datetime=scan,
        injection_datetime=injection,
        half_life_s=half_life,
        half_life_source=half_life_source,
        injected_dose_bq=dose,
        decayed_dose_bq=float(decayed) if dose is not None else None,
        weight_kg=weight,
        decay_time_s=None if decay_time is None else float(decay_time),
        nuclide=series.nuclide,
        method=method,
        warnings=series.warnings,
        convolution_kernel=series.kernel,
        suv_unavailable=unavailable,
        weight_source=None if weight is None else weight_origin(series),
        scanner_check=scanner_check,
    )

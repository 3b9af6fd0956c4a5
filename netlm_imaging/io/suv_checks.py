"""Whether the instances given for SUV are one quantitative PET series (refusals before any factor).

One series (Units, Decay Correction, Series Instance UID, Patient's Weight and the
radiopharmaceutical alike on every instance), attenuation-corrected (Corrected Image ATTN), and
GML values that are SUVbw (SUV Type BW), not another SUV.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..errors import DicomError, UnsupportedError
from .pet_tags import radiopharm, tag_text

__all__ = ["check_corrections", "check_gml_suv_type", "check_single_series"]


def check_gml_suv_type(ds: Any, src: str) -> None:
    """Refuse GML values whose SUV Type (0054,1006) says they are not SUVbw (SUVlbm, SUVibw: also g/mL)."""
    suv_type = (tag_text(ds, "SUVType") or "BW").upper()
    if suv_type != "BW":
        raise UnsupportedError(
            f"{src}: PET Units GML with SUV Type (0054,1006) {suv_type}: the values are SUV{suv_type.lower()}, not "
            "SUVbw, and cannot be turned back into SUVbw. Export the series in Bq/mL (BQML)."
        )


def check_corrections(ds: Any, decay: str, src: str, warnings: list[str]) -> None:
    corrected = ds.get("CorrectedImage")
    if corrected is None:
        warnings.append("Corrected Image (0028,0051) missing: attenuation and decay correction not confirmed")
        return
    values = [corrected] if isinstance(corrected, str) else list(corrected)
    terms = {str(v).strip().upper() for v in values}
    if "ATTN" not in terms:
        raise UnsupportedError(
            f"{src}: Corrected Image (0028,0051) lacks ATTN: the PET is not attenuation-corrected and its values "
            "are not quantitative. Pass the attenuation-corrected series."
        )
    if decay in ("START", "ADMIN") and "DECY" not in terms:
        warnings.append(f"Decay Correction is {decay} but Corrected Image (0028,0051) lacks DECY; headers disagree")


_SERIES_LEVEL = ("Units", "DecayCorrection", "SeriesInstanceUID", "PatientWeight")


def check_single_series(datasets: Sequence[Any], src: str) -> None:
    first = datasets[0]
    ref = {k: tag_text(first, k) for k in _SERIES_LEVEL}
    info0 = radiopharm(first)
    ref_rp = _rp_key(info0)
    for ds in datasets[1:]:
        for k, v in ref.items():
            if tag_text(ds, k) != v:
                raise DicomError(
                    f"{src}: PET instances disagree on {k} ({v!r} vs {tag_text(ds, k)!r}); they are not one series. "
                    "Pass one PET series."
                )
        if _rp_key(radiopharm(ds)) != ref_rp:
            raise DicomError(
                f"{src}: PET instances disagree on the Radiopharmaceutical Information Sequence (dose, time or "
                "half-life); they are not one acquisition. Pass one PET series."
            )


def _rp_key(info: Any) -> tuple[Any, ...] | None:
    if info is None:
        return None
    return tuple(
        tag_text(info, k)
        for k in (
            "RadionuclideTotalDose",
            "RadionuclideHalfLife",
            "RadiopharmaceuticalStartTime",
            "RadiopharmaceuticalStartDateTime",
        )
    )

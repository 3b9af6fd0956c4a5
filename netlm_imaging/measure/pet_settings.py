"""PET settings: the SRETV delineation rule and the rules file's [pet], [pet_reference] and [krenning] tables.

:func:`parse_delineation` reads ``rel:P`` / ``liver:K`` / ``abs:T``; :func:`rules_section` gives a
table of the rules over the shipped one, type-checked (the shipped rules file is the only source
of defaults: this module keeps no copy); :func:`krenning_score` grades one lesion
(clinical_rules.md 7.3; the rule is in :mod:`netlm_imaging.measure.pet`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import InputError, UsageError
from ..rules_data import default_section
from ..volume import Volume
from .pet_krenning import grade

__all__ = [
    "Delineation",
    "avid_floor",
    "check_pet_rules",
    "krenning_rules",
    "krenning_score",
    "parse_delineation",
    "resolution_fwhm",
    "rules_section",
]

_STRING_CHOICES: dict[str, tuple[str, ...]] = {
    "lesion_statistic": ("suv_mean_core", "suv_peak", "suv_max"),
    "avid_threshold": ("liver_suv_max", "liver_suv_mean_multiple", "liver_suv_mean_plus_sd", "none"),
    "upper_reference_fallback": ("kidney", "none"),
}

_DELINEATION_RE = re.compile(r"^\s*(rel|liver|abs)\s*:\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*$", re.IGNORECASE)


# ------------------------------------------------------------------ delineation
@dataclass(frozen=True)
class Delineation:
    """A PET lesion delineation rule.

    Attributes
    ----------
    kind : {"rel", "liver", "abs"}
        Threshold family.
    value : float
        ``P`` (fraction of lesion SUVmax), ``K`` (multiple of healthy-liver
        SUVmean) or ``T`` (SUV).
    """

    kind: str
    value: float

    def __str__(self) -> str:
        return f"{self.kind}:{self.value:g}"

    def threshold(self, *, lesion_suv_max: float | None, liver_suv_mean: float | None) -> float | None:
        """SUV threshold for one lesion, or None when its reference is unknown."""
        if self.kind == "abs":
            return self.value
        if self.kind == "rel":
            return None if lesion_suv_max is None else self.value * lesion_suv_max
        return None if liver_suv_mean is None else self.value * liver_suv_mean


def parse_delineation(text: str) -> Delineation:
    """Parse ``rel:P``, ``liver:K`` or ``abs:T``.

    Parameters
    ----------
    text : str
        E.g. ``"rel:0.45"`` (45 % of lesion SUVmax), ``"liver:1.5"``,
        ``"abs:3"``.

    Returns
    -------
    Delineation

    Raises
    ------
    UsageError
        Unknown form, ``P`` outside (0, 1], ``K`` or ``T`` not positive.

    Examples
    --------
    >>> str(parse_delineation("REL:0.45")), parse_delineation("abs:3").value
    ('rel:0.45', 3.0)
    """
    m = _DELINEATION_RE.match(str(text))
    if not m:
        raise UsageError(
            f"--delineation {text!r}: expected rel:P (fraction of lesion SUVmax), liver:K (multiple of the "
            "healthy-liver SUVmean) or abs:T (SUV), e.g. rel:0.45."
        )
    kind, value = m.group(1).lower(), float(m.group(2))
    if kind == "rel" and not 0.0 < value <= 1.0:
        raise UsageError(f"--delineation {text!r}: rel:P needs 0 < P <= 1 (a fraction of SUVmax), e.g. rel:0.45.")
    if value <= 0.0 or not math.isfinite(value):
        raise UsageError(f"--delineation {text!r}: the threshold must be positive, e.g. {kind}:1.5.")
    return Delineation(kind, value)


# ------------------------------------------------------------------ rules
def _shipped_settings(name: str) -> dict[str, Any]:
    """The settings of table ``name`` of the shipped rules file (its ``source`` texts left out)."""
    return {k: v for k, v in default_section(name).items() if k != "source" and not k.endswith("_source")}


def rules_section(rules: Mapping[str, Any] | None, name: str) -> dict[str, Any]:
    """Table ``name`` of ``rules`` over the shipped one, type-checked (the shipped file is the only default)."""
    defaults = _shipped_settings(name)
    out = dict(defaults)
    section = (rules or {}).get(name) if rules is not None else None
    if section is None:
        return out
    if not isinstance(section, Mapping):
        raise InputError(f"rules file: [{name}] must be a table of settings, got {type(section).__name__}.")
    for key, value in section.items():
        if key not in defaults:
            continue
        default = defaults[key]
        if key in ("derived_delineation", "default_delineation"):
            parse_delineation(str(value))
            out[key] = str(value)
            continue
        if isinstance(default, bool) or isinstance(default, str):
            if type(value) is not type(default):
                raise InputError(
                    f"rules file: [{name}] {key} = {value!r} must be a {type(default).__name__}; fix the rules file."
                )
            if key in _STRING_CHOICES and value not in _STRING_CHOICES[key]:
                raise InputError(
                    f"rules file: [{name}] {key} = {value!r}: use one of {', '.join(_STRING_CHOICES[key])}."
                )
            out[key] = value
            continue
        if isinstance(default, list):  # a [low, high] range (checked by the rules loader)
            out[key] = list(value) if isinstance(value, list) else value
            continue
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(float(value)):
            raise InputError(f"rules file: [{name}] {key} = {value!r} is not a number; fix the rules file.")
        if float(value) < 0:
            raise InputError(f"rules file: [{name}] {key} = {value!r} is negative; fix the rules file.")
        out[key] = float(value)
    return out


def check_pet_rules(rules: Mapping[str, Any]) -> None:
    """Refuse bad [krenning], [pet] and [pet_reference] values now (choices, delineations, signs, band order).

    Raises
    ------
    InputError
        As :func:`~netlm_imaging.measure.pet.measure_pet` would, naming the table and key.
    """
    krenning_rules(rules)
    rules_section(rules, "pet")
    rules_section(rules, "pet_reference")


def krenning_rules(rules: Mapping[str, Any] | None) -> dict[str, Any]:
    """The [krenning] table, with its band order and spleen ratio checked."""
    k = rules_section(rules, "krenning")
    if not k["liver_band_fraction"] < 1.0 or not k["no_uptake_suv_fraction"] < 1.0 - k["liver_band_fraction"]:
        raise InputError(
            "rules file: [krenning] needs no_uptake_suv_fraction < 1 - liver_band_fraction < 1 "
            f"(got {k['no_uptake_suv_fraction']} and {k['liver_band_fraction']}); fix the rules file."
        )
    if k["spleen_ratio"] <= 0:
        raise InputError(f"rules file: [krenning] spleen_ratio = {k['spleen_ratio']} must be positive.")
    return k


def krenning_score(
    lesion_suv: float | None,
    liver_suv_mean: float | None,
    spleen_suv_mean: float | None,
    *,
    rules: Mapping[str, Any] | None = None,
) -> tuple[int | None, int | None]:
    """Estimated Krenning score of one lesion (the rule: :mod:`netlm_imaging.measure.pet`).

    Parameters
    ----------
    lesion_suv : float or None
        The lesion statistic (``rules["krenning"]["lesion_statistic"]``).
    liver_suv_mean, spleen_suv_mean : float or None
        Liver-reference and spleen- (or kidney-) reference SUVmean.
    rules : mapping, optional
        Rules with an optional ``"krenning"`` table.

    Returns
    -------
    (score, lower_bound) : tuple of int or None
        ``score`` None when undecidable; ``lower_bound`` 3 when only the
        spleen is missing to tell 3 from 4, else equal to ``score``.

    Examples
    --------
    >>> krenning_score(5.2, 5.0, 15.0), krenning_score(20.0, 5.0, 15.0), krenning_score(9.0, 5.0, None)
    ((2, 2), (4, 4), (None, 3))
    """
    return grade(lesion_suv, liver_suv_mean, spleen_suv_mean, krenning_rules(rules))


#: A post-reconstruction filter width in ConvolutionKernel: "Gauss5.00", "XYZGAUSSIAN5.00", "6.4 mm", "FWHM 4".
_KERNEL_FWHM_RE = re.compile(
    r"(?:gauss[a-z_]*|fwhm|filter)\s*[:=]?\s*([0-9]+(?:\.[0-9]+)?)|([0-9]+(?:\.[0-9]+)?)\s*mm", re.IGNORECASE
)


def resolution_fwhm(suv: Volume, pr: Mapping[str, Any]) -> tuple[float, str]:
    """PET resolution FWHM (mm) and where it came from (header filter + system, or the rules).

    Parameters
    ----------
    suv : Volume
        The PET; ``meta["suv"]["convolution_kernel"]`` may name the post-filter width.
    pr : mapping
        ``rules["pet"]`` (``system_fwhm_mm``, ``header_filter_fwhm_max_mm``, ``resolution_fwhm_mm``).

    Returns
    -------
    tuple of (float, str)
        FWHM in mm and its source.
    """
    meta = suv.meta.get("suv")
    kernel = meta.get("convolution_kernel") if isinstance(meta, dict) else None
    if kernel:
        m = _KERNEL_FWHM_RE.search(str(kernel))
        if m:
            filt = float(m.group(1) or m.group(2))
            if 0.0 < filt < float(pr["header_filter_fwhm_max_mm"]):
                system = float(pr["system_fwhm_mm"])
                fwhm = math.sqrt(filt**2 + system**2)
                return fwhm, (
                    f"ConvolutionKernel (0018,1210) {str(kernel)!r}: {filt:g} mm filter combined with "
                    f"system_fwhm_mm {system:g} (rules)"
                )
    return float(pr["resolution_fwhm_mm"]), "rules [pet] resolution_fwhm_mm (no filter FWHM in the header)"


def avid_floor(
    pr: Mapping[str, Any], liver_mean: float | None, liver_sd: float | None, liver_max: float | None
) -> tuple[float | None, str]:
    """(SUV floor of avid tissue or None, method text) from ``rules["pet"]``."""
    method = str(pr["avid_threshold"])
    abs_min = float(pr["avid_min_suv"])
    liver_value: float | None = None
    text = method
    if method == "liver_suv_max":
        liver_value = liver_max
    elif method == "liver_suv_mean_multiple":
        k = float(pr["avid_liver_mean_multiple"])
        liver_value = None if liver_mean is None else k * liver_mean
        text = f"liver_suv_mean_multiple:{k:g}"
    elif method == "liver_suv_mean_plus_sd":
        n = float(pr["avid_liver_sd_multiple"])
        liver_value = None if liver_mean is None or liver_sd is None else liver_mean + n * liver_sd
        text = f"liver_suv_mean_plus_sd:{n:g}"
    values = [v for v in (liver_value, abs_min if abs_min > 0 else None) if v is not None]
    if abs_min > 0:
        text += f" and abs:{abs_min:g}"
    return (max(values) if values else None), text

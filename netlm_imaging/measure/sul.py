"""SUL: SUV normalised to lean body mass (Janmahasatian formula).

``SUL = SUVbw x LBM / weight``, so one factor per study converts every SUVbw.
Lean body mass (Janmahasatian S et al., Clin Pharmacokinet 2005;44:1051-1065;
the formula PERCIST users adopted after Tahari AK et al., J Nucl Med
2014;55:1481 [U], see ``docs/pet.md``)::

    BMI   = weight_kg / height_m**2
    LBM_m = 9270 * weight_kg / (6680 + 216 * BMI)
    LBM_f = 9270 * weight_kg / (8780 + 244 * BMI)

These are formula coefficients, not thresholds; they are fixed here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..rules_data import default_section

__all__ = ["lean_body_mass_kg", "normalise_sex", "sul_body"]

_COEF = {"M": (9270.0, 6680.0, 216.0), "F": (9270.0, 8780.0, 244.0)}


def normalise_sex(value: object) -> str | None:
    """``"M"``, ``"F"`` or None from DICOM PatientSex / a clinical field.

    Examples
    --------
    >>> normalise_sex("F"), normalise_sex("male"), normalise_sex("O"), normalise_sex(None)
    ('F', 'M', None, None)
    """
    if value is None:
        return None
    text = str(value).strip().lower()
    if text in ("m", "male", "man"):
        return "M"
    if text in ("f", "female", "woman"):
        return "F"
    return None


def lean_body_mass_kg(weight_kg: float, height_m: float, sex: str) -> float:
    """Janmahasatian lean body mass (kg).

    Parameters
    ----------
    weight_kg : float
        Body weight used for SUVbw.
    height_m : float
        Height (m).
    sex : {"M", "F"}

    Returns
    -------
    float

    Examples
    --------
    >>> round(lean_body_mass_kg(70.0, 1.75, "M"), 2)  # BMI 22.86
    55.86
    """
    a, b, c = _COEF[sex]
    bmi = weight_kg / height_m**2
    return a * weight_kg / (b + c * bmi)


def sul_body(
    header: Mapping[str, Any],
    height_cm: float | None = None,
    sex: object = None,
    height_m_range: Sequence[float] | None = None,
) -> tuple[float | None, str | None, dict[str, str]]:
    """Height (m) and sex (M/F) for SUL, and where each came from: the clinical file first, then the PET header.

    Parameters
    ----------
    header : mapping
        The PET series' header facts (``patient_size_m``, ``patient_sex``).
    height_cm, sex : optional
        From the clinical file.
    height_m_range : (float, float), optional
        A header PatientSize outside it is ignored (``rules["pet"]["sul_height_m_range"]``; default:
        the shipped rules).

    Examples
    --------
    >>> sul_body({"patient_size_m": 1.7, "patient_sex": "F"}, None, None)
    (1.7, 'F', {'height': 'DICOM PatientSize (0010,1020)', 'sex': 'DICOM PatientSex (0010,0040)'})
    >>> sul_body({"patient_size_m": 17.0}, 172, "male")[:2]
    (1.72, 'M')
    """
    sources: dict[str, str] = {}
    height_m: float | None = None
    out_sex: str | None = None
    if height_cm:
        height_m, sources["height"] = float(height_cm) / 100.0, "clinical file"
    elif header.get("patient_size_m"):
        size = float(header["patient_size_m"])
        lo, hi = default_section("pet")["sul_height_m_range"] if height_m_range is None else height_m_range
        if float(lo) <= size <= float(hi):
            height_m, sources["height"] = size, "DICOM PatientSize (0010,1020)"
    clin_sex = normalise_sex(sex)
    if clin_sex:
        out_sex, sources["sex"] = clin_sex, "clinical file"
    elif normalise_sex(header.get("patient_sex")):
        out_sex, sources["sex"] = normalise_sex(header.get("patient_sex")), "DICOM PatientSex (0010,0040)"
    return height_m, out_sex, sources

"""Which radionuclide half-life the SUV decay correction uses, and when the header cannot be trusted.

The half-life comes from Radionuclide Half Life (0018,1075) (``clinical_rules.md`` 7.2: always the
file's value), checked against the half-life of the radionuclide the same header names (Radionuclide
Code Sequence (0054,0300), or the radiopharmaceutical's name):

- within ``pet_plausibility.half_life_warn_fraction`` (0.5 %) of the nuclide's value: used silently;
- up to ``pet_plausibility.half_life_refuse_fraction`` (2 %) off: used, with a warning;
- further off: the header contradicts itself (a 68Ga-DOTATATE series exported with F-18's 6586.2 s is
  a known fault; SUV 21 % low at 60 min), and nothing in the file says which of the two is right (the
  nuclide's code and name, or its half-life): :class:`~netlm_imaging.errors.DicomError` (exit 3) naming
  both values and the fix, ``--pet-half-life SECONDS``. With Decay Correction ADMIN the half-life does
  not enter the SUV, so the contradiction is only a warning;
- the nuclide's half-life written in minutes or hours (a unit mistake): refused with the value in s.

A half-life the user states (``--pet-half-life``, ``pet_half_life_s``) is used as given; a warning names
the header's value it replaces, or the nuclide's value it contradicts.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..dicom_values import parse_float
from ..errors import DicomError

__all__ = ["CLINICAL_HALF_LIFE_FIELD", "HALF_LIFE_OPTION", "NUCLIDE_HALF_LIFE_S", "resolve_half_life"]

#: Reference half-lives (s). Ga-68: 67.83(20) min = 4069.8 s, the current evaluated value (Kuzmenko 2019,
#: Appl Radiat Isot 152:188, cited in clinical_rules.md 7.2; the older 67.71 min = 4062.6 s is 0.18 % from
#: it); F-18: 109.77 min; Cu-64: 12.701 h; C-11: 20.36 min; Lu-177: 6.647 d.
NUCLIDE_HALF_LIFE_S: dict[str, float] = {
    "Ga-68": 4069.8,
    "F-18": 6586.2,
    "Cu-64": 45724.0,
    "C-11": 1221.6,
    "Lu-177": 574300.0,
}

#: The option that states the half-life, named in the refusals.
HALF_LIFE_OPTION = "--pet-half-life"
#: The clinical input (cohort CSV column, clinical sidecar key) that states it for one study.
CLINICAL_HALF_LIFE_FIELD = "pet_half_life_s"

#: How each command states the half-life of a study, added to the refusal (:func:`~netlm_imaging.errors.for_command`).
_STATED_HALF_LIFE_ADVICE = {
    "analyze": f" (or give it as {CLINICAL_HALF_LIFE_FIELD} in the clinical file)",
    "batch": f" (for every study; for this one study: the clinical {CLINICAL_HALF_LIFE_FIELD} of its cohort row "
    "or sidecar)",
    "listen": f" to netlm listen (it applies to every study received), or `netlm analyze` the study's incoming "
    f"folder with {HALF_LIFE_OPTION}",
}

#: A file's half-life this many times below the nuclide's was written in minutes or hours, not seconds.
_TIME_UNITS = ((60.0, "minutes"), (3600.0, "hours"))


def _other_nuclide(half_life: float, nuclide: str, tolerance: float) -> str | None:
    """The other nuclide whose half-life ``half_life`` is (within ``tolerance``), or None."""
    for name, ref in NUCLIDE_HALF_LIFE_S.items():
        if name != nuclide and abs(half_life - ref) <= tolerance * ref:
            return name
    return None


def resolve_half_life(
    info: Any,
    nuclide: str | None,
    *,
    limits: Mapping[str, Any],
    source: str,
    warnings: list[str],
    decay: str = "START",
    user_half_life_s: float | None = None,
    user_half_life_option: str = HALF_LIFE_OPTION,
) -> tuple[float, str]:
    """The half-life (s) for the SUV decay correction, and where it came from.

    Parameters
    ----------
    info : pydicom.Dataset
        The Radiopharmaceutical Information Sequence item.
    nuclide : str or None
        The radionuclide the header names (:func:`~netlm_imaging.io.pet_nuclide.identify_nuclide`).
    limits : mapping
        Validated ``pet_plausibility`` (``half_life_warn_fraction``, ``half_life_refuse_fraction``).
    source : str
        The PET series, named in messages.
    warnings : list of str
        Appended to.
    decay : str
        Decay Correction (0054,1102); ``ADMIN`` (the half-life does not enter the SUV) turns the
        contradiction into a warning.
    user_half_life_s : float or None
        A half-life the user stated; used as given.
    user_half_life_option : str
        Where the user stated it (``"--pet-half-life"``, ``"the clinical file's pet_half_life_s"``),
        named in the warnings and the source.

    Returns
    -------
    (float, str)
        The half-life in s and its source: ``"header (0018,1075)"``, ``"user (--pet-half-life)"`` (or the
        ``user_half_life_option``)
        or ``"reference value for <nuclide>"``.

    Raises
    ------
    DicomError
        The header's half-life contradicts its radionuclide (see the module docstring), is the
        nuclide's half-life in minutes or hours, or is missing with no radionuclide named.

    Examples
    --------
    >>> from pydicom import Dataset
    >>> info = Dataset(); info.RadionuclideHalfLife = "4068"
    >>> limits = {"half_life_warn_fraction": 0.005, "half_life_refuse_fraction": 0.02}
    >>> resolve_half_life(info, "Ga-68", limits=limits, source="pet", warnings=[])
    (4068.0, 'header (0018,1075)')
    """
    header = parse_float(info.get("RadionuclideHalfLife"))
    ref = NUCLIDE_HALF_LIFE_S.get(nuclide) if nuclide else None
    warn_at, refuse_at = float(limits["half_life_warn_fraction"]), float(limits["half_life_refuse_fraction"])
    if user_half_life_s is not None:
        value = float(user_half_life_s)
        if header is not None and header > 0 and abs(header - value) > warn_at * value:
            warnings.append(
                f"SUV decay correction uses the half-life {value:g} s of {user_half_life_option}, not Radionuclide "
                f"Half Life (0018,1075) {header:g} s"
            )
        if ref is not None and abs(value - ref) > refuse_at * ref:
            warnings.append(
                f"{user_half_life_option} {value:g} s is not the half-life of {nuclide} ({ref:g} s), the radionuclide "
                "the header names: check the radionuclide"
            )
        return value, f"user ({user_half_life_option})"
    for per_unit, unit in _TIME_UNITS:
        if ref is not None and header is not None and abs(header * per_unit - ref) <= refuse_at * ref:
            raise DicomError(
                f"{source}: Radionuclide Half Life (0018,1075) is {header:g}, the half-life of {nuclide} in {unit} "
                f"({ref:g} s); DICOM wants seconds and SUV would be wrong. Correct the header to {ref:g}, or pass "
                f"{HALF_LIFE_OPTION} {ref:g}."
            )
    if header is None or header <= 0:
        if ref is None:
            raise DicomError(
                f"{source}: Radionuclide Half Life (0018,1075) is missing and the radionuclide is unknown; "
                f"SUV cannot be decay-corrected. Fix the PET header or pass {HALF_LIFE_OPTION} SECONDS."
            )
        warnings.append(f"Radionuclide Half Life (0018,1075) missing; used {ref:g} s for {nuclide}")
        return ref, f"reference value for {nuclide}"
    if ref is None:
        warnings.append(
            f"radionuclide not identified from the header; half-life {header:g} s from (0018,1075) used unchecked"
        )
        return header, "header (0018,1075)"
    off = abs(header - ref) / ref
    if off > refuse_at:
        other = _other_nuclide(header, nuclide or "", warn_at)
        what = f" (the half-life of {other})" if other else ""
        fix = f"pass {HALF_LIFE_OPTION} {ref:g} if the tracer is {nuclide}" + (
            f" ({HALF_LIFE_OPTION} {NUCLIDE_HALF_LIFE_S[other]:g} if it is {other})" if other else ""
        )
        message = (
            f"Radionuclide Half Life (0018,1075) {header:g} s{what} contradicts the radionuclide {nuclide} the same "
            f"header names ({ref:g} s, {100 * off:.0f} % apart)"
        )
        if decay == "ADMIN":  # values corrected to the injection: the half-life does not enter the SUV
            warnings.append(f"{message}; not used (Decay Correction ADMIN), the SUV does not depend on it")
            return header, "header (0018,1075)"
        refusal = DicomError(
            f"{source}: {message}; the SUV decay correction would be wrong by the difference. Correct the header, "
            f"or {fix}"
        )
        refusal.advice_by_command = _STATED_HALF_LIFE_ADVICE
        raise refusal
    if off > warn_at:
        warnings.append(
            f"Radionuclide Half Life (0018,1075) {header:g} s disagrees with {nuclide} ({ref:g} s) by "
            f"{100 * off:.1f} %; the file's value was used: check the radionuclide and the SUV"
        )
    return header, "header (0018,1075)"

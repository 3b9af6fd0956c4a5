"""What the user gives the SUVbw conversion beside the PET headers, as one object.

The body weight, the half-life, where each came from, whether a missing weight is an error, and
the plausibility limits travel together from the analysis stage (or a PACS script) through
:func:`~netlm_imaging.io.pet.read_study_pet`, :func:`~netlm_imaging.io.pet.load_suv_volume`,
:func:`~netlm_imaging.io.pet.suv_from_modality_volume` into
:func:`~netlm_imaging.io.suv.suv_conversion` and the steps it calls. A new SUV input is a new field
of :class:`SuvInputs` and is read where it is used; the signatures in between do not change. The
public functions still take the same keywords one by one and build a :class:`SuvInputs` from them
(:func:`suv_inputs_from`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from ..dicom_values import parse_float
from ..errors import InputError

__all__ = ["SuvInputs", "suv_inputs_from"]


@dataclass(frozen=True)
class SuvInputs:
    """The user's inputs to the SUVbw conversion of a PET series.

    Parameters
    ----------
    weight_kg : float or None
        Body weight (kg) overriding Patient's Weight (0010,1030) (``--weight``, or the clinical
        file's ``weight_kg``); None: the header's.
    weight_source : str
        Where ``weight_kg`` came from, named in messages and the SUV facts (``"--weight"``,
        ``"the clinical file's weight_kg"``).
    require_weight : bool
        False: without any body weight (or injected dose) the conversion gives the activity
        concentration (Bq/mL) and says why there is no SUV, instead of an error.
    half_life_s : float or None
        Radionuclide half-life (s) stated by the user (``--pet-half-life``, or the clinical
        file's ``pet_half_life_s``), used instead of Radionuclide Half Life (0018,1075).
    half_life_source : str
        Where ``half_life_s`` came from, named in messages and the SUV facts.
    plausibility : mapping, optional
        ``rules["pet_plausibility"]`` (weight, dose, uptake time and SUVmax limits,
        :func:`~netlm_imaging.io.pet_plausibility.plausibility_limits`); None uses the defaults.

    Raises
    ------
    InputError
        ``weight_kg`` given and not a finite number above 0, or ``half_life_s`` given and not a
        finite number of seconds above 0 (one line naming the option and the fix).

    Examples
    --------
    >>> SuvInputs(weight_kg=72.5, weight_source="the clinical file's weight_kg").require_weight
    True
    >>> SuvInputs(weight_kg=-5)
    Traceback (most recent call last):
    ...
    netlm_imaging.errors.InputError: --weight -5 kg is not a positive body weight; fix --weight.
    """

    weight_kg: float | None = None
    weight_source: str = "--weight"
    require_weight: bool = True
    half_life_s: float | None = None
    half_life_source: str = "--pet-half-life"
    plausibility: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        """Refuse a weight or half-life that no patient or radionuclide has (the values are kept as given)."""
        weight = parse_float(self.weight_kg) if self.weight_kg is not None else None
        if self.weight_kg is not None and (weight is None or not weight > 0):
            option = self.weight_source
            raise InputError(f"{option} {self.weight_kg!r} kg is not a positive body weight; fix {option}.")
        half_life = parse_float(self.half_life_s) if self.half_life_s is not None else None
        if self.half_life_s is not None and (half_life is None or not half_life > 0):
            option = self.half_life_source
            raise InputError(
                f"{option} {self.half_life_s!r} s is not a positive radionuclide half-life; fix {option} "
                "(seconds; Ga-68: 4069.8)."
            )


_DEFAULTS = {f.name: f.default for f in fields(SuvInputs)}


def suv_inputs_from(suv_inputs: SuvInputs | None, where: str, **keywords: Any) -> SuvInputs:
    """``suv_inputs``, or the :class:`SuvInputs` of a public function's SUV keywords.

    Parameters
    ----------
    suv_inputs : SuvInputs or None
        Given by the caller: used as it is (then every keyword must be left at its default).
    where : str
        The series or folder put in front of a refusal of the keywords' values.
    **keywords
        :class:`SuvInputs` fields (``weight_kg=``, ``half_life_s=`` ...).

    Returns
    -------
    SuvInputs

    Raises
    ------
    InputError
        A keyword's value refused by :class:`SuvInputs`, the message prefixed with ``where``.
    TypeError
        Both ``suv_inputs`` and a keyword other than its default (which one holds cannot be told).

    Examples
    --------
    >>> suv_inputs_from(None, "pet/", weight_kg=70.0).weight_kg
    70.0
    >>> suv_inputs_from(None, "pet/", weight_kg=0)
    Traceback (most recent call last):
    ...
    netlm_imaging.errors.InputError: pet/: --weight 0 kg is not a positive body weight; fix --weight.
    """
    if suv_inputs is not None:
        both = sorted(k for k, v in keywords.items() if v is not _DEFAULTS[k] and v != _DEFAULTS[k])
        if both:
            raise TypeError(f"give the SUV inputs either as suv_inputs or as keywords, not both ({', '.join(both)})")
        return suv_inputs
    try:
        return SuvInputs(**keywords)
    except InputError as exc:
        raise InputError(f"{where}: {exc}") from None

"""SUVbw conversion factors from PET DICOM headers (QIBA vendor-neutral recipe).

What this module computes
-------------------------
For every slice (instance) of a PET series, one float64 factor ``f`` such that

``SUVbw = (stored * RescaleSlope + RescaleIntercept) * f``

i.e. ``f`` multiplies the **modality-LUT values** (what
:func:`pydicom.pixels.apply_modality_lut` and the project's DICOM series
reader return). Nothing is ever cast to an integer.

The rules, as implemented (QIBA "SUV vendor-neutral pseudo-code", see
``clinical_rules.md`` section 7.1):

Units (0054,1001)
    ``BQML``: ``f = weight_g / decayed_dose_bq``.
    ``CNTS`` (Philips): the private SUV Scale Factor (7053,1000) of each slice
    is ``f``; if it is absent or zero but the Activity Concentration Scale
    Factor (7053,1009) is present, ``value * (7053,1009)`` is Bq/mL and the
    BQML rule follows (``f = (7053,1009) * weight_g / decayed_dose_bq``). The
    BQML rule on (7053,1009) is also used when a weight is given but Patient's
    Weight (0010,1030) is missing or 0: the weight inside (7053,1000) is then
    unknown, so that factor cannot be rescaled to the given weight.
    Where the header also gives the QIBA factor (BQML, whose Philips
    (7053,1000) is per count, so ``(7053,1000) / (7053,1009)`` per Bq/mL; or
    CNTS with (7053,1009)), the two are compared
    (:mod:`~netlm_imaging.io.pet_scanner_check`): further apart than
    ``pet_plausibility.scanner_suv_disagreement_warn``, a warning names both.
    ``GML``: ``f = 1`` (assumed to be SUVbw already; a warning says so; a
    given weight rescales them, and the Philips SUV Scale Factor, by
    ``weight / Patient's Weight``),
    unless SUV Type (0054,1006) names another SUV (``LBM``, ``BSA``, ``IBW``):
    :class:`~netlm_imaging.errors.UnsupportedError`.
    Anything else: :class:`~netlm_imaging.errors.UnsupportedError`.
Decay Correction (0054,1102)
    ``START``: ``decayed_dose = dose * 2 ** (-(scan - injection) / half_life)``.
    ``ADMIN``: pixels are already decay-corrected to the injection time, so
    ``decayed_dose = dose`` (never decay-corrected again; Horos #653); the
    injection and scan times are then not needed (missing: a warning, the
    uptake time unchecked).
    ``NONE``: refused, unless **every** slice carries Decay Factor
    (0054,1321). Then each slice's values are multiplied by its Decay Factor
    (taken as the factor that corrects that slice to the scan start time)
    and the ``START`` rule follows, with a warning.
Injection date/time
    RadiopharmaceuticalStartDateTime (0018,1078) when present (full date:
    multi-day delays are right); one that holds only a date (day precision)
    gives the date, RadiopharmaceuticalStartTime the time. Otherwise the date
    of the scan (below: the Series Date, or the Acquisition Date of a series
    post-processed on a later day) + RadiopharmaceuticalStartTime (0018,1072);
    when that lies after the scan time the injection is taken to be the day
    before (midnight crossing). With every date removed (de-identification)
    and the times kept, the uptake is the difference of the times of day, for
    a nuclide imaged within a day of injection only.
Time zones
    A DT value with its own offset from UTC (``...090000+0000``: the
    injection DateTime, the acquisition DateTime, the GE private scan
    DateTime) is moved into the instance's local time when TimezoneOffsetFromUTC (0008,0201) gives
    another one (the offset of its DA and TM values, PS3.3 C.12.1.1.8).
Scan date/time
    Series Date/Time (0008,0021/0031), unless it is after the earliest
    Acquisition Date/Time (0008,0022/0032) of the series (by more than
    ``SERIES_AFTER_ACQUISITION_TOLERANCE``, 1 s: post-processed
    series; an AcquisitionTime without its AcquisitionDate is the one within
    12 h of the series time, so a bed acquired after midnight is not read as
    the morning before); then the GE private scan DateTime (0009,100d, creator
    ``GEMS_PETD_01``) if present; else, for a Siemens series, the time its
    slices' Frame Reference Times (0054,1300) count from (back-computed from
    the Acquisition Time, the Actual Frame Duration and the half-life, QIBA),
    when they agree within 2 s: a re-saved part of a whole-body scan stays
    decay-corrected to the scan's start; else the earliest Acquisition Date/Time.
Half-life
    Radionuclide Half Life (0018,1075) from the file is used, checked against
    the nuclide identified from Radionuclide Code Sequence (0054,0300) or the
    radiopharmaceutical name (:mod:`~netlm_imaging.io.pet_half_life`): more
    than ``pet_plausibility.half_life_warn_fraction`` off, a warning; more than
    ``half_life_refuse_fraction`` off (a Ga-68 series with F-18's 6586.2 s),
    or the nuclide's half-life in minutes or hours:
    :class:`~netlm_imaging.errors.DicomError` unless the user states the
    half-life (``half_life_s``, ``--pet-half-life``). Missing
    half-life: the nuclide's reference value with a warning, or
    :class:`~netlm_imaging.errors.DicomError` when the nuclide is unknown.
Weight
    ``weight_kg`` (``--weight``, or the clinical file's ``weight_kg``) overrides
    Patient's Weight (0010,1030). Missing both:
    :class:`~netlm_imaging.errors.InputError`, or with ``require_weight=False``
    no SUV: the factors then give the activity concentration (Bq/mL, decay-corrected as
    the series says) and :attr:`SuvConversion.suv_unavailable` says why. Ratios of
    uptake (the Krenning estimate, liver-relative thresholds) need no weight.
    A missing injected dose, Radionuclide Total Dose (0018,1074), is handled the same way.

Where each step lives
---------------------
This module holds the recipe and its entry point, :func:`suv_conversion`; the user's inputs (weight,
half-life, where they came from, the plausibility limits) arrive as one
:class:`~netlm_imaging.io.suv_inputs.SuvInputs`; the steps are in
:mod:`~netlm_imaging.io.suv_checks` (one attenuation-corrected series),
:mod:`~netlm_imaging.io.pet_nuclide` (the radionuclide),
:mod:`~netlm_imaging.io.pet_half_life` (the half-life),
:mod:`~netlm_imaging.io.pet_times` (scan and injection times, time zones, uptake),
:mod:`~netlm_imaging.io.suv_weight` (the weight),
:mod:`~netlm_imaging.io.suv_bqml` (the BQML rule and the decay),
:mod:`~netlm_imaging.io.pet_philips` and :mod:`~netlm_imaging.io.suv_cnts` (the Philips private scale
factors), :mod:`~netlm_imaging.io.suv_result` (:class:`SuvConversion` and the series facts).

References
----------
QIBA PET SUV vendor-neutral pseudo-code; DICOM PS3.3 C.8.9.1 (PET Series
Module), C.8.9.4 (PET Image Module).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..dicom_values import parse_float as _float
from ..errors import InputError, UnsupportedError
from .pet_nuclide import identify_nuclide
from .pet_philips import concentration_scale
from .pet_plausibility import plausibility_limits
from .pet_tags import tag_text
from .suv_bqml import bqml_conversion
from .suv_checks import check_corrections, check_gml_suv_type, check_single_series
from .suv_cnts import philips_suv_scale
from .suv_inputs import SuvInputs, suv_inputs_from
from .suv_result import SuvConversion, SuvSeries
from .suv_weight import scanner_weighted

__all__ = ["SuvConversion", "SuvInputs", "suv_conversion"]


def suv_conversion(
    datasets: Sequence[Any],
    *,
    weight_kg: float | None = None,
    source: str = "",
    plausibility: Mapping[str, Any] | None = None,
    weight_source: str = "--weight",
    require_weight: bool = True,
    half_life_s: float | None = None,
    half_life_source: str = "--pet-half-life",
    suv_inputs: SuvInputs | None = None,
) -> SuvConversion:
    """Per-slice factors turning a PET series' modality-LUT values into SUVbw.

    Parameters
    ----------
    datasets : sequence of pydicom.Dataset
        The series' instances (headers suffice), in slice order.
    weight_kg : float or None
        Patient weight overriding Patient's Weight (0010,1030) (``--weight``).
    source : str
        Series or folder named in messages.
    plausibility : mapping, optional
        ``rules["pet_plausibility"]``
        (:func:`~netlm_imaging.io.pet_plausibility.plausibility_limits`);
        None uses the defaults.
    weight_source : str
        Where ``weight_kg`` came from, named in messages (``"--weight"``, or
        ``"the clinical file's weight_kg"``).
    require_weight : bool
        False: a missing weight or injected dose gives activity-concentration factors and
        :attr:`SuvConversion.suv_unavailable` instead of an error.
    half_life_s : float or None
        Radionuclide half-life (s) stated by the user (``--pet-half-life``), used instead of
        Radionuclide Half Life (0018,1075) (:func:`~netlm_imaging.io.pet_half_life.resolve_half_life`).
    half_life_source : str
        Where ``half_life_s`` came from, named in messages (``"--pet-half-life"``, or
        ``"the clinical file's pet_half_life_s"``).
    suv_inputs : SuvInputs, optional
        All of ``weight_kg``, ``plausibility``, ``weight_source``, ``require_weight``, ``half_life_s``
        and ``half_life_source`` as one object (:class:`~netlm_imaging.io.suv_inputs.SuvInputs`),
        instead of those keywords.

    Returns
    -------
    SuvConversion
        Factors and the facts used (see the module docstring for the rules).

    Raises
    ------
    InputError
        Missing weight (0010,1030) or dose (0018,1074) with ``require_weight``, a dose of 0 or less,
        ``weight_kg`` or ``half_life_s`` not above 0,
        implausible weight, dose or uptake time (``plausibility``).
    DicomError
        Inconsistent slices, missing times or half-life, injection after scan.
    UnsupportedError
        Units that cannot be converted, DecayCorrection NONE without Decay
        Factor, images without attenuation correction, unknown decay terms.
    TypeError
        ``suv_inputs`` and one of the keywords it replaces both given.
    """
    src = source or "PET series"
    inputs = suv_inputs_from(
        suv_inputs,
        src,
        weight_kg=weight_kg,
        plausibility=plausibility,
        weight_source=weight_source,
        require_weight=require_weight,
        half_life_s=half_life_s,
        half_life_source=half_life_source,
    )
    if not datasets:
        raise InputError(f"{src}: no PET instances given; pass a PET series folder.")
    first = datasets[0]
    warnings: list[str] = []
    modality = tag_text(first, "Modality")
    if modality not in (None, "PT"):
        raise InputError(f"{src}: Modality is {modality!r}, not PT; pass the PET series to --pet.")
    check_single_series(datasets, src)
    limits = plausibility_limits(inputs.plausibility)
    units = (tag_text(first, "Units") or "").upper()
    decay = (tag_text(first, "DecayCorrection") or "").upper()
    check_corrections(first, decay, src, warnings)
    if units not in ("BQML", "CNTS", "GML"):
        raise UnsupportedError(
            f"{src}: PET Units (0054,1001) is {units or 'missing'!r}; SUV can be computed only from BQML, CNTS "
            "(Philips, with its private scale factors) or GML. Export the series in Bq/mL."
        )
    series = SuvSeries(
        datasets=datasets,
        source=src,
        units=units,
        decay=decay,
        slopes=np.array([_float(ds.get("RescaleSlope")) or 1.0 for ds in datasets], dtype=np.float64),
        intercepts=np.array([_float(ds.get("RescaleIntercept")) or 0.0 for ds in datasets], dtype=np.float64),
        nuclide=identify_nuclide(first),
        header_weight=_float(first.get("PatientWeight")),
        inputs=inputs,
        limits=limits,
        kernel=tag_text(first, "ConvolutionKernel"),
        warnings=warnings,
    )
    if units == "GML":
        check_gml_suv_type(first, src)
        warnings.append("PET Units GML: values taken to be SUVbw already")
        return scanner_weighted(series, np.ones(len(datasets), dtype=np.float64), "the GML (SUVbw) values", "GML")
    if units == "CNTS":
        philips = philips_suv_scale(series)
        if philips is not None:
            return philips
        to_bqml, method = concentration_scale(series), "CNTS:7053,1009"
    else:
        to_bqml, method = np.ones(len(datasets), dtype=np.float64), "BQML"
    return bqml_conversion(series, to_bqml, method)

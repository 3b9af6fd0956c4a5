"""The options of one analysis (the flags of ``netlm analyze``), validated on construction.

The CLI and the Python API share this class, so both refuse an impossible value with the same
message, naming the flag.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from ..errors import UsageError
from ..measure.burden import DEFAULT_MARGIN_MM

__all__ = ["MODALITIES", "AnalyzeOptions"]

#: The modalities a report states (``--modality``).
MODALITIES = frozenset({"CT", "MR", "PT", "NM", "OT"})


@dataclass(frozen=True)
class AnalyzeOptions:
    """Options of one analysis (the CLI flags of ``netlm analyze``).

    Parameters
    ----------
    max_voxels : int, optional
        Refuse declared image sizes above this before allocating.
    allow_resample : bool
        DICOM series with a missing slice or irregular steps are resampled
        onto a regular grid (a warning; ``study.grid.resampled``) instead of refused.
    include_identifiers : bool
        Put PatientName / PatientID / PatientBirthDate in the report.
    modality : str, optional
        Override the modality (NIfTI/NRRD carry none): CT, MR, PT, NM, OT.
    weight_kg : float, optional
        PET: overrides DICOM PatientWeight.
    pet_half_life_s : float, optional
        PET: the radionuclide half-life in s, overriding Radionuclide Half Life (0018,1075)
        (``--pet-half-life``; e.g. 4069.8 for a Ga-68 series exported with F-18's 6586.2 s).
    delineation : str, optional
        PET lesion delineation, e.g. ``rel:0.45``, ``liver:1.5``, ``abs:3``.
    seg_choice, image_series : str, optional
        Which segmentation / image series when a study folder holds several.
    manifest : str or Path, optional
        A manifest file overriding study-folder discovery.
    fractional_threshold : float
        Binary view of FRACTIONAL SEG masks (``>=``).
    connectivity : {26, 6}
        Lesion instances from a single lesion mask.
    margin_mm : float
        Intrahepatic margin (the 2 mm rule).
    resections : sequence of sequence of int
        Extra user-defined resections (removed Couinaud segments) to evaluate; an entry may be a text
        as ``--resection`` takes it ("5-8", "S6+S7", "VI-VII", "right hepatectomy + 1": names as
        :func:`~netlm_imaging.classify.resection_names.parse_resection` reads them).
    name_patterns : sequence of (str, str)
        Extra (regular expression, role) pairs for segment / ROI names, tried
        before the built-in patterns.
    mr_phase : str, optional
        MR: the contrast phase stated by the user (``hepatobiliary``, ``pre-contrast``, ...),
        overriding the phase classified from the headers.
    pre_contrast : str or Path, optional
        MR: a pre-contrast image of the same patient (relative enhancement); without it a
        pre-contrast series of the study folder is used when there is exactly one kind.
    n4 : bool
        MR: N4 bias-field correction before the signal ratios.
    """

    max_voxels: int | None = None
    allow_resample: bool = False
    include_identifiers: bool = False
    modality: str | None = None
    weight_kg: float | None = None
    pet_half_life_s: float | None = None
    delineation: str | None = None
    seg_choice: str | None = None
    image_series: str | None = None
    manifest: str | Path | None = None
    fractional_threshold: float = 0.5
    connectivity: int = 26
    margin_mm: float = DEFAULT_MARGIN_MM
    resections: tuple[tuple[int, ...], ...] = ()
    name_patterns: tuple[tuple[str, str], ...] = ()
    mr_phase: str | None = None
    pre_contrast: str | Path | None = None
    n4: bool = False

    def __post_init__(self) -> None:
        """Refuse impossible values with the message the CLI gives (naming the flag)."""
        given: Any = self.resections
        if isinstance(given, str) or (given and all(isinstance(r, int) for r in given)):
            given = (given,)  # one resection: "right hepatectomy", or its segments (5, 6, 7, 8)
        if given is not self.resections or not isinstance(given, tuple) or any(isinstance(r, str) for r in given):
            from ..classify.resection_names import parse_resection

            parsed = []
            for r in given:  # "5-8", "VI,VII", "right hepatectomy": read as the CLI reads them
                try:
                    parsed.append(parse_resection(r) if isinstance(r, str) else tuple(r))
                except ValueError as exc:
                    raise UsageError(f"--resection {r}: {exc}; e.g. 5,6,7,8, 5-8 or 'right hepatectomy'") from exc
                except TypeError:
                    raise UsageError(
                        f"resections {self.resections!r}: give each resection as a text ('5-8', 'right hepatectomy') "
                        "or a sequence of segment numbers, e.g. resections=[(5, 6, 7, 8), '2,3']"
                    ) from None
            object.__setattr__(self, "resections", tuple(parsed))
        for message in _option_errors(self):
            raise UsageError(message)

    @classmethod
    def of(cls, options: AnalyzeOptions | Mapping[str, Any] | None) -> AnalyzeOptions:
        """The options given to the Python API: an AnalyzeOptions, a mapping of its fields, or None (the defaults).

        Examples
        --------
        >>> AnalyzeOptions.of({"margin_mm": 3.0}).margin_mm
        3.0
        >>> AnalyzeOptions.of({"margin": 3.0})
        Traceback (most recent call last):
        ...
        netlm_imaging.errors.UsageError: options: unknown option 'margin' (AnalyzeOptions has ...margin_mm...
        """
        if options is None:
            return cls()
        if isinstance(options, cls):
            return options
        if isinstance(options, Mapping):
            names = [f.name for f in fields(cls)]
            unknown = [k for k in options if k not in names]
            if unknown:
                raise UsageError(
                    f"options: unknown option {', '.join(repr(k) for k in unknown)} (AnalyzeOptions has "
                    f"{', '.join(names)}); rename or drop it."
                )
            return cls(**options)
        raise UsageError(
            f"options: an AnalyzeOptions or a mapping of its fields was expected, not {type(options).__name__}; "
            "e.g. options={'margin_mm': 2.0}."
        )


def _option_errors(o: AnalyzeOptions) -> list[str]:
    """What is wrong with ``o``, one message per problem (empty when the options are valid)."""
    errors: list[str] = []
    if o.max_voxels is not None and not (isinstance(o.max_voxels, int) and o.max_voxels > 0):
        errors.append(f"--max-voxels {o.max_voxels}: must be positive")
    if o.weight_kg is not None and not (math.isfinite(o.weight_kg) and 0 < o.weight_kg < 700):
        errors.append(f"--weight {o.weight_kg}: give the patient weight in kg (0-700)")
    if o.pet_half_life_s is not None and not (math.isfinite(o.pet_half_life_s) and o.pet_half_life_s > 0):
        errors.append(
            f"--pet-half-life {o.pet_half_life_s}: give the radionuclide half-life in seconds (Ga-68: 4069.8)"
        )
    if not (math.isfinite(o.fractional_threshold) and 0.0 < o.fractional_threshold <= 1.0):
        errors.append(f"--fractional-threshold {o.fractional_threshold}: must be in (0, 1]")
    if o.connectivity not in (6, 26):
        errors.append(
            f"--connectivity {o.connectivity}: lesion instances are 6- or 26-connected components; use 6 or 26"
        )
    if not (math.isfinite(o.margin_mm) and o.margin_mm >= 0):
        errors.append(f"margin_mm {o.margin_mm}: the intrahepatic margin is a distance, 0 mm or more")
    for segs in o.resections:
        if not segs or any(not isinstance(s, int) or not 1 <= s <= 8 for s in segs):
            errors.append(f"--resection {','.join(map(str, segs))}: segments must be 1..8")
    if o.modality is not None and o.modality.upper() not in MODALITIES:
        errors.append(f"--modality {o.modality}: use one of {', '.join(sorted(MODALITIES))}")
    if o.delineation is not None:
        from ..measure.pet import parse_delineation

        parse_delineation(o.delineation)  # raises its own UsageError naming --delineation
    return errors

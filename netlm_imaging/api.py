"""The Python API: ``analyze`` one study and get a typed, immutable :class:`StudyReport`.

:func:`analyze_with_context` makes one call per stage of :mod:`netlm_imaging.stages`, each of
which calls only downward: discover (the study's files) -> load (image, masks, PET and MR
series as Volumes) -> measure (every quantity) -> classify (every decision) -> report (the
StudyReport, built once). Writing the outputs is :func:`netlm_imaging.report.outputs.write_outputs`.

The CLI, the batch runner and the PACS hook all call :func:`analyze` /
:func:`analyze_with_context`; nothing else computes a report.

Examples
--------
>>> from netlm_imaging import analyze                                  # doctest: +SKIP
>>> report = analyze(image="ct.nii.gz", segs=["seg.nii.gz"])          # doctest: +SKIP
>>> report.involvement_percent                                         # doctest: +SKIP
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from .errors import ResourceLimitError
from .measure.context import MeasurementContext
from .report.model import StudyReport
from .stages.classify import classify_study
from .stages.discover import StudyInputs, resolve_inputs
from .stages.load import load_study
from .stages.measure import measure_study
from .stages.options import AnalyzeOptions
from .stages.report import build_report

__all__ = ["AnalyzeOptions", "StudyInputs", "analyze", "analyze_with_context", "resolve_inputs"]

_F = TypeVar("_F", bound=Callable[..., Any])


def _within_voxel_budget(fn: _F) -> _F:
    """Run ``fn`` with its ``options.max_voxels`` as the budget of every reader it calls (bounded inflation)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from .io.budget import effective_max_voxels, voxel_budget

        opts = kwargs.get("options")
        limit = getattr(opts, "max_voxels", None)
        try:
            with voxel_budget(limit):
                return fn(*args, **kwargs)
        except MemoryError:
            what = kwargs.get("image") or (args[0] if args else None) or kwargs.get("study_dir") or "the study"
            raise ResourceLimitError(
                f"{what}: out of memory while reading or measuring it (the voxel budget, --max-voxels "
                f"{effective_max_voxels(limit):,}, lets its declared size through but it does not fit in memory); "
                "lower --max-voxels to refuse such files up front, or use a machine with more memory."
            ) from None

    return wrapper  # type: ignore[return-value]


def analyze(
    study_dir: str | Path | None = None,
    *,
    image: str | Path | None = None,
    segs: str | Path | Sequence[str | Path] = (),
    labels: str | Mapping[str, Any] | None = None,
    clinical: str | Path | Mapping[str, Any] | Any | None = None,
    rules: str | Path | Mapping[str, Any] | Any | None = None,
    pet: str | Path | None = None,
    options: AnalyzeOptions | Mapping[str, Any] | None = None,
) -> StudyReport:
    """Analyse one study and return its :class:`StudyReport` (see :func:`analyze_with_context`)."""
    return analyze_with_context(
        study_dir, image=image, segs=segs, labels=labels, clinical=clinical, rules=rules, pet=pet, options=options
    )[0]


@_within_voxel_budget
def analyze_with_context(
    study_dir: str | Path | None = None,
    *,
    image: str | Path | None = None,
    segs: str | Path | Sequence[str | Path] = (),
    labels: str | Mapping[str, Any] | None = None,
    clinical: str | Path | Mapping[str, Any] | Any | None = None,
    rules: str | Path | Mapping[str, Any] | Any | None = None,
    pet: str | Path | None = None,
    options: AnalyzeOptions | Mapping[str, Any] | None = None,
) -> tuple[StudyReport, MeasurementContext]:
    """Analyse one study and return the report and the measurement context.

    Parameters
    ----------
    study_dir : str or Path, optional
        A study folder (DICOM export, or NIfTI/NRRD folder convention).
    image : str or Path, optional
        Image file or DICOM series folder (instead of ``study_dir``).
    segs : str, Path or sequence of them
        Segmentations: label maps, DICOM SEG, RTSTRUCT, or ``ROLE=PATH`` binary masks (one path
        alone is one segmentation).
    labels : str or mapping, optional
        Role mapping, e.g. ``"liver=5,lesion=2"`` or ``{"liver": 5, "lesion": [2, 3]}`` (default
        LiTS: 1 liver, 2 lesion).
    clinical : path, mapping, ClinicalInputs or ClinicalRow, optional
        Clinical sidecar (JSON/TOML), its fields as a mapping (``{"weight_kg": 72, ...}``), an
        already loaded ``ClinicalInputs``, or a cohort row's clinical columns (``ClinicalRow``),
        validated by the load stage.
    rules : path, mapping or Rules, optional
        A rules file overriding the default rules, or the keys it would change as a mapping
        (``{"flr": {"threshold_percent": {"normal": 25.0}}}``).
    pet : str or Path, optional
        A PET series (DICOM folder) in the same frame of reference as the image.
    options : AnalyzeOptions or mapping, optional
        Everything else (a mapping holds AnalyzeOptions' fields, e.g. ``{"margin_mm": 2.0}``).

    Returns
    -------
    (StudyReport, MeasurementContext)

    Raises
    ------
    NetlmError
        Any input problem, with a one-line message naming the file and the fix.
    """
    opts = AnalyzeOptions.of(options)  # AnalyzeOptions validated itself: bad values fail before any reading
    if isinstance(segs, (str, os.PathLike)):  # one path, not a sequence of characters
        segs = [segs]
    inputs = resolve_inputs(study_dir, image=image, segs=segs, labels=labels, pet=pet, options=opts)
    loaded = load_study(inputs, opts, rules=rules, clinical=clinical)
    measured = measure_study(loaded, opts)
    decided = classify_study(measured, loaded.clinical, loaded.rules, opts)
    return build_report(loaded, measured, decided), measured.ctx

"""The discover stage: a study folder, or explicit paths, to the :class:`StudyInputs` of one analysis.

A study folder is scanned once (:func:`netlm_imaging.io.discover.discover_study`); its DICOM index
travels on in :attr:`StudyInputs.dicom_index`, so the load stage reads no header twice.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InputError, UsageError
from .options import AnalyzeOptions

__all__ = ["CLINICAL_SIDECARS", "StudyInputs", "resolve_inputs"]

#: Clinical sidecars picked up from a study folder when --clinical is not given.
CLINICAL_SIDECARS = ("clinical.json", "clinical.toml")


@dataclass(frozen=True)
class StudyInputs:
    """What one analysis reads: the image, the segmentation arguments and an optional PET series.

    ``root`` is the folder the report's paths are written relative to: the study folder, else
    the folder holding the image and the masks (None when they share none).
    """

    image: str | Path
    segs: list[str] = field(default_factory=list)
    labels: str | Mapping[str, Any] | None = None
    pet: str | Path | list[Path] | None = None
    image_series: str | None = None
    notes: list[str] = field(default_factory=list)
    dicom_index: list[Any] = field(default_factory=list, repr=False)
    clinical: str | Path | None = None
    modality: str | None = None
    root: Path | None = None


def resolve_inputs(
    study_dir: str | Path | None,
    *,
    image: str | Path | None,
    segs: Sequence[str | Path],
    labels: str | Mapping[str, Any] | None,
    pet: str | Path | None,
    options: AnalyzeOptions,
) -> StudyInputs:
    """Turn a study folder or explicit paths into :class:`StudyInputs`.

    Raises
    ------
    UsageError
        When neither a study folder nor ``image`` + ``segs`` are given.
    """
    if study_dir is not None:
        if image is not None:
            raise UsageError("give either a study folder or --image/--seg, not both")
        folder = Path(study_dir)
        if not folder.exists():
            raise InputError(f"{folder}: study folder not found; check the path.")
        if not folder.is_dir():
            raise InputError(f"{folder}: is a file; pass the study folder, or use --image/--seg for single files.")
        from ..io.discover import discover_study
        from ..io.nnunet import labels_or_dataset_json

        found = discover_study(
            folder, seg_choice=options.seg_choice, image_series=options.image_series, manifest=options.manifest
        )
        all_segs = [*(str(s) for s in found.segmentation_args), *(str(s) for s in segs)]
        notes = list(found.notes)
        return StudyInputs(
            image=found.image_path,
            segs=all_segs,
            labels=labels_or_dataset_json(labels if labels is not None else found.labels, all_segs, notes),
            pet=pet if pet is not None else found.pet_path,
            image_series=found.image_series_uid or options.image_series,
            notes=notes,
            dicom_index=list(found.dicom_index) if found.image_series_uid else [],
            clinical=found.clinical_path
            or next((folder / n for n in CLINICAL_SIDECARS if (folder / n).is_file()), None),
            modality=found.image_modality if found.source == "manifest" else None,
            root=folder,
        )
    if image is None:
        raise UsageError("give a study folder, or --image PATH with at least one --seg PATH")
    if not segs:
        raise UsageError("--image needs at least one --seg (label map, DICOM SEG, RTSTRUCT or ROLE=PATH)")
    from ..io.nnunet import labels_or_dataset_json
    from ..io.study import seg_source

    explicit_notes: list[str] = []
    return StudyInputs(
        image=image,
        segs=[str(s) for s in segs],
        labels=labels_or_dataset_json(labels, [str(s) for s in segs], explicit_notes),
        notes=explicit_notes,
        pet=pet,
        image_series=options.image_series,
        root=_common_folder([*(Path(seg_source(s)) for s in segs), Path(image)]),
    )


def _common_folder(files: Sequence[Path]) -> Path | None:
    """The deepest folder holding every file (None when they share none)."""
    try:
        return Path(os.path.commonpath([str(f.resolve().parent) for f in files]))
    except ValueError:
        return None

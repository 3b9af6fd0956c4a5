"""Study-folder discovery: which files are the image, the segmentation(s) and the PET.

Order of precedence (documented in docs/study_folders.md), each in a module of its own:

1. A manifest (``netlm.json`` or ``netlm.toml`` in the folder, or passed
   explicitly) overrides everything (:mod:`~netlm_imaging.io.discover_manifest`).
2. DICOM: segmentation objects (SEG, Label Map SEG, RTSTRUCT) are found by
   SOPClassUID; the image series is the one they reference
   (ReferencedSeriesSequence, referenced SOP instances, then
   FrameOfReferenceUID preferring CT/MR over PET). A PET series in the same
   frame of reference as a CT/MR image is reported as ``pet_files``
   (:mod:`~netlm_imaging.io.discover_dicom`). NIfTI / NRRD / MHA segmentations named as
   such beside a DICOM image series (nnU-Net, MONAI, TotalSegmentator run on it) are
   measured on the series whose grid they lie on, never on another grid
   (:mod:`~netlm_imaging.io.discover_beside`).
3. NIfTI / NRRD / MHA file names (see :data:`IMAGE_NAMES`, :data:`LABEL_MAP_PATTERNS`,
   :data:`ROLE_MASK_PATTERNS`); beside the image ``ct.nii.gz``, MONAI's output subfolder
   ``ct/ct_<postfix>.nii.gz`` (:mod:`~netlm_imaging.io.discover_names`).

Ambiguity is never resolved by guessing: several candidates raise an error
listing them and naming the option that chooses (:mod:`~netlm_imaging.io.discover_choice`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import InputError
from ._dicom_common import scan_dicom_folder
from ._dicom_info import IMAGE, RTSTRUCT, SEG
from .discover_beside import from_dicom_and_files
from .discover_choice import DiscoveredStudy, SegmentationCandidate
from .discover_dicom import from_dicom, seg_candidate
from .discover_manifest import MANIFEST_NAMES, from_manifest, load_manifest
from .discover_names import (
    IMAGE_NAMES,
    LABEL_MAP_PATTERNS,
    ROLE_MASK_PATTERNS,
    expand_segmentation_folders,
    from_files,
    segmentation_files,
)

__all__ = [
    "IMAGE_NAMES",
    "LABEL_MAP_PATTERNS",
    "MANIFEST_NAMES",
    "ROLE_MASK_PATTERNS",
    "DiscoveredStudy",
    "SegmentationCandidate",
    "candidates_in",
    "discover_study",
    "expand_segmentation_folders",
    "load_manifest",
    "study_facts",
]


def discover_study(
    folder: str | Path,
    *,
    seg_choice: str | None = None,
    image_series: str | None = None,
    manifest: str | Path | None = None,
) -> DiscoveredStudy:
    """Find the image, segmentation(s) and PET of a study folder.

    Parameters
    ----------
    folder : str or pathlib.Path
        The study folder (walked recursively for DICOM).
    seg_choice : str, optional
        Which segmentation(s) to use when there are several: 1-based numbers
        from the listed candidates, SOPInstanceUID, SeriesInstanceUID or file
        name; comma-separated for several (CLI ``--seg-choice``).
    image_series : str, optional
        SeriesInstanceUID of the image, overriding the reference (CLI ``--image-series``).
    manifest : str or pathlib.Path, optional
        Manifest file; default ``netlm.json`` / ``netlm.toml`` in the folder.

    Returns
    -------
    DiscoveredStudy
        The choice and how it was made (``notes``).

    Raises
    ------
    DicomError
        Several candidate segmentations without a choice; a segmentation
        referencing a series absent from the folder; no segmentation; corrupt files.
    InputError
        Bad manifest, ambiguous or missing NIfTI/NRRD files.
    """
    root = Path(folder)
    if not root.is_dir():
        raise InputError(f"{root}: not a folder; pass the study folder.")
    manifest_path = Path(manifest) if manifest is not None else None
    if manifest_path is None:
        manifest_path = next((root / n for n in MANIFEST_NAMES if (root / n).is_file()), None)
    elif not manifest_path.is_file():
        raise InputError(f"{manifest_path}: manifest file not found; check the path.")
    if manifest_path is not None:
        return from_manifest(root, manifest_path)
    skipped: list[str] = []
    index = scan_dicom_folder(root, skipped)
    if any(i.kind in (IMAGE, SEG, RTSTRUCT) for i in index):
        label_maps, masks, file_notes = (
            segmentation_files(root) if any(i.kind == IMAGE for i in index) else ([], [], [])
        )
        if label_maps or masks:  # a NIfTI segmentation of the DICOM series (nnU-Net, MONAI, TotalSegmentator)
            found = from_dicom_and_files(root, index, label_maps, masks, file_notes, seg_choice, image_series)
        else:
            found = from_dicom(root, index, seg_choice, image_series)
    else:
        found = from_files(root, seg_choice)
    found.notes[:0] = skipped  # junk files skipped while reading the folder (issue 12)
    return found


def study_facts(meta: dict[str, Any]) -> dict[str, Any]:
    """The report's ``study`` identification block from a Volume's meta.

    Parameters
    ----------
    meta : dict
        ``Volume.meta`` from :func:`~netlm_imaging.io.dicom_series.read_dicom_series`.

    Returns
    -------
    dict
        study_instance_uid, series_instance_uid (``None`` when empty) and
        modality (``OT`` when not CT/MR/PT/NM). No patient identifiers.
    """
    modality = str(meta.get("modality") or "OT").upper()
    return {
        "study_instance_uid": meta.get("study_instance_uid") or None,
        "series_instance_uid": meta.get("series_instance_uid") or None,
        "modality": modality if modality in ("CT", "MR", "PT", "NM") else "OT",
    }


def candidates_in(folder: str | Path) -> list[SegmentationCandidate]:
    """All DICOM segmentation objects in a folder, in the listing order of ``--seg-choice``.

    Parameters
    ----------
    folder : str or pathlib.Path
        Study folder.

    Returns
    -------
    list of SegmentationCandidate
        SEG and RTSTRUCT objects (numbered from 1 in messages).
    """
    return [seg_candidate(i) for i in scan_dicom_folder(Path(folder)) if i.kind in (SEG, RTSTRUCT)]

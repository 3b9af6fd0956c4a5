"""What study-folder discovery found, and the choice among several candidate segmentations.

:class:`SegmentationCandidate` is one segmentation object or file a folder holds, :class:`DiscoveredStudy`
the image, segmentation(s) and PET chosen (:func:`netlm_imaging.io.discover.discover_study`).
:func:`choose_segmentations` takes the one candidate, or the ones ``--seg-choice`` names; several
without a choice are refused with a message listing them all.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..errors import DicomError, InputError
from ._dicom_info import DicomFileInfo
from .formats import file_format

__all__ = [
    "SEG_OPTION",
    "SERIES_OPTION",
    "DiscoveredStudy",
    "SegmentationCandidate",
    "choose_segmentations",
    "file_kind",
]

#: The options that choose among candidates, as messages name them.
SEG_OPTION = "--seg-choice N|UID"
SERIES_OPTION = "--image-series UID"


@dataclass(frozen=True)
class SegmentationCandidate:
    """One segmentation object found in a study.

    Attributes
    ----------
    path : pathlib.Path
        The file.
    kind : str
        ``"SEG"``, ``"RTSTRUCT"``, ``"NIFTI"`` or ``"NRRD"`` (ITK formats).
    role : str or None
        Role of a single-role binary mask (``liver``, ``lesion``, ``segmentN``...),
        ``None`` for label maps and DICOM objects.
    sop_instance_uid, series_uid, description : str
        DICOM identification ("" for files).
    segment_names : tuple of str
        SEG segment labels / RTSTRUCT ROI names.
    info : DicomFileInfo or None
        Header facts for DICOM objects.
    shown : str
        The name messages give the file ("" for its name): its path in the study folder when it is in a
        subfolder (``ct/ct_seg.nii.gz``, a MONAI output beside ``ct_seg.nii.gz``).
    """

    path: Path
    kind: str
    role: str | None = None
    sop_instance_uid: str = ""
    series_uid: str = ""
    description: str = ""
    segment_names: tuple[str, ...] = ()
    info: DicomFileInfo | None = field(default=None, repr=False, compare=False)
    shown: str = field(default="", compare=False)

    @property
    def name(self) -> str:
        """The file's name in messages and for ``--seg-choice NAME``."""
        return self.shown or self.path.name

    @property
    def argument(self) -> str:
        """``--seg`` argument form: ``PATH`` or ``ROLE=PATH``."""
        return f"{self.role}={self.path}" if self.role else str(self.path)

    def summary(self, index: int) -> str:
        """One line for candidate lists."""
        desc = f" '{self.description}'" if self.description else ""
        names = f" segments: {', '.join(self.segment_names)}" if self.segment_names else ""
        uid = f" {self.sop_instance_uid}" if self.sop_instance_uid else ""
        return f"{index}) {self.name} ({self.kind}{desc}{uid}{names})"


@dataclass
class DiscoveredStudy:
    """What a study folder holds, as discovered (or as its manifest says).

    Attributes
    ----------
    folder : pathlib.Path
        The study folder.
    image_path : pathlib.Path
        NIfTI/ITK image file, or the DICOM folder (read with ``image_series_uid``).
    image_files : list of pathlib.Path
        The image series' files (DICOM) or ``[image_path]``.
    image_series_uid : str or None
        SeriesInstanceUID (or ``nouid:`` key) of the DICOM image series.
    image_modality : str or None
        DICOM Modality of the image series.
    segmentations : list of SegmentationCandidate
        Chosen segmentation objects.
    pet_files : list of pathlib.Path or None
        A PET series sharing the image's FrameOfReference (or the manifest's PET).
    pet_series_uid : str or None
        Its SeriesInstanceUID.
    labels : str or None
        ``--labels`` string from the manifest.
    clinical_path : pathlib.Path or None
        Clinical sidecar named by the manifest (``"clinical"``).
    notes : list of str
        How the choice was made and anything ignored.
    source : str
        ``"manifest"``, ``"dicom"`` or ``"files"``.
    dicom_index : list of DicomFileInfo
        Header index of the folder (reuse with ``read_series_from_index``).
    """

    folder: Path
    image_path: Path
    image_files: list[Path]
    image_series_uid: str | None = None
    image_modality: str | None = None
    segmentations: list[SegmentationCandidate] = field(default_factory=list)
    pet_files: list[Path] | None = None
    pet_series_uid: str | None = None
    labels: str | None = None
    clinical_path: Path | None = None
    notes: list[str] = field(default_factory=list)
    source: str = "dicom"
    dicom_index: list[DicomFileInfo] = field(default_factory=list, repr=False)

    @property
    def segmentation_files(self) -> list[Path]:
        """Paths of the chosen segmentations."""
        return [s.path for s in self.segmentations]

    @property
    def segmentation_args(self) -> list[str]:
        """``--seg`` arguments (``PATH`` or ``ROLE=PATH``) for :func:`netlm_imaging.api.analyze`."""
        return [s.argument for s in self.segmentations]

    @property
    def pet_path(self) -> list[Path] | None:
        """PET files for ``analyze(pet=...)`` (alias of ``pet_files``)."""
        return self.pet_files


def file_kind(p: Path) -> str:
    fmt = file_format(p.name)
    return "DICOM" if fmt is None else fmt.kind


def choose_segmentations(
    cands: list[SegmentationCandidate], seg_choice: str | None, folder: Path
) -> list[SegmentationCandidate]:
    listing = "; ".join(c.summary(i) for i, c in enumerate(cands, 1))
    if seg_choice is None:
        if len(cands) == 1:
            return cands
        raise DicomError(
            f"{folder}: {len(cands)} candidate segmentations: {listing}; choose with {SEG_OPTION} "
            "(several: --seg-choice 1,2)."
        )
    chosen = []
    for token in (t.strip() for t in str(seg_choice).split(",") if t.strip()):
        if token.isdigit():
            n = int(token)
            if not 1 <= n <= len(cands):
                raise InputError(f"{folder}: --seg-choice {n} is out of range 1..{len(cands)}; candidates: {listing}.")
            chosen.append(cands[n - 1])
            continue
        match = [c for c in cands if token in (c.sop_instance_uid, c.series_uid, c.name)]
        match = match or [c for c in cands if token == c.path.name]  # ct_seg.nii.gz of ct/ct_seg.nii.gz
        if not match:
            raise InputError(f"{folder}: --seg-choice {token} matches no segmentation; candidates: {listing}.")
        chosen.extend(match)
    return list(dict.fromkeys(chosen))

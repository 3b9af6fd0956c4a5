"""Whether a received study holds every image its segmentations name.

A PACS that stops sending half-way (an aborted association, a retrieval that
ended early, a modality that sends a series in two batches) leaves a study
whose SEG or RTSTRUCT names image instances that are not there. The readers
then see frames or contours outside the image and say the segmentation was
made on another series; for a received study the cause is usually that the
series is incomplete, and that is what :func:`missing_images` finds.

It reads headers only, and :mod:`.common` calls it only after an analysis
failed, so a complete study costs nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["MissingImages", "missing_images"]

logger = logging.getLogger(__name__)

_SEG = "1.2.840.10008.5.1.4.1.1.66.4"
_RTSTRUCT = "1.2.840.10008.5.1.4.1.1.481.3"


@dataclass(frozen=True)
class MissingImages:
    """A segmentation of the study naming images the study does not hold.

    Attributes
    ----------
    segmentation : str
        ``SEG`` or ``RTSTRUCT`` and its file name (its SOP Instance UID when the file is named by it).
    referenced : int
        Image instances it names.
    missing : int
        Of those, how many are not in the study.
    """

    segmentation: str
    referenced: int
    missing: int

    def describe(self) -> str:
        """One clause for an error message."""
        here = self.referenced - self.missing
        return (
            f"the study is incomplete: {self.segmentation} names {self.referenced} image instance(s), "
            f"{self.missing} of them not received ({here} here)"
        )


def _referenced_seg(ds: Any) -> Iterator[str]:
    for series in getattr(ds, "ReferencedSeriesSequence", None) or []:
        for inst in getattr(series, "ReferencedInstanceSequence", None) or []:
            yield str(getattr(inst, "ReferencedSOPInstanceUID", ""))


def _referenced_rtstruct(ds: Any) -> Iterator[str]:
    for frame in getattr(ds, "ReferencedFrameOfReferenceSequence", None) or []:
        for study in getattr(frame, "RTReferencedStudySequence", None) or []:
            for series in getattr(study, "RTReferencedSeriesSequence", None) or []:
                for image in getattr(series, "ContourImageSequence", None) or []:
                    yield str(getattr(image, "ReferencedSOPInstanceUID", ""))


def missing_images(study_dir: str | Path) -> list[MissingImages]:
    """The segmentations (SEG, RTSTRUCT; not the tool's own) naming images absent from ``study_dir``.

    Parameters
    ----------
    study_dir : path-like
        The received instances (searched recursively).

    Returns
    -------
    list of MissingImages
        Empty when every named image is present, or nothing can be told (unreadable files are skipped:
        the readers report them).

    Examples
    --------
    >>> import tempfile
    >>> missing_images(tempfile.mkdtemp())
    []
    """
    import pydicom

    from ..creator import is_own_output

    present: set[str] = set()
    named: list[tuple[str, set[str]]] = []
    for path in sorted(p for p in Path(study_dir).rglob("*") if p.is_file()):
        try:
            ds = pydicom.dcmread(str(path), stop_before_pixels=True)
        except Exception:  # not DICOM or damaged: the readers say so
            logger.debug("completeness check: %s unreadable", path, exc_info=True)
            continue
        present.add(str(getattr(ds, "SOPInstanceUID", "")))
        sop_class = str(getattr(ds, "SOPClassUID", ""))
        if sop_class not in (_SEG, _RTSTRUCT) or is_own_output(ds):
            continue
        refs = set(_referenced_seg(ds) if sop_class == _SEG else _referenced_rtstruct(ds)) - {""}
        if refs:
            sop = str(getattr(ds, "SOPInstanceUID", ""))
            kind = "SEG" if sop_class == _SEG else "RTSTRUCT"
            named.append((f"the {kind} {sop if path.stem == sop else path.name}", refs))
    found = [MissingImages(name, len(refs), len(refs - present)) for name, refs in named]
    return [m for m in found if m.missing]

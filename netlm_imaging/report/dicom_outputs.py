"""The DICOM outputs of one study as a pair: the derived SEG and the SR that references its segments.

``--sr`` implies the derived SEG: a viewer (3D Slicer QuantitativeReporting,
OHIF) pairs each SR measurement group with the SEG segment it was measured
on, so the SR is always written with the SEG it references.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["DicomOutputs", "has_dicom_source", "write_dicom_outputs"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DicomOutputs:
    """Paths written by :func:`write_dicom_outputs` (None when not written)."""

    sr: Path | None
    seg: Path | None

    @property
    def paths(self) -> list[Path]:
        """The written files, SEG first."""
        return [p for p in (self.seg, self.sr) if p is not None]


def has_dicom_source(ctx: Any) -> bool:
    """True when the measured image is a DICOM series (an SR / SEG must reference its instances)."""
    return ctx.image.meta.get("format") == "dicom" and bool(ctx.image.meta.get("files"))


def write_dicom_outputs(
    report: Any,
    ctx: Any,
    *,
    sr_path: str | Path | None,
    seg_path: str | Path | None,
    include_identifiers: bool = False,
) -> DicomOutputs:
    """Write the derived SEG and/or the SR (the SR references the SEG's segments).

    Parameters
    ----------
    report : StudyReport or dict
        The report.
    ctx : MeasurementContext
        The measurement (masks and source image files).
    sr_path : path-like, optional
        Where the SR goes (None: no SR).
    seg_path : path-like, optional
        Where the SEG goes. Required with ``sr_path``: the SR references it.
    include_identifiers : bool
        Keep the source Patient and Study modules (for the source PACS);
        otherwise both objects are de-identified.

    Returns
    -------
    DicomOutputs

    Raises
    ------
    ValueError
        ``sr_path`` without ``seg_path``.
    UnsupportedError
        The image is not a DICOM series (NIfTI / NRRD): nothing is written.
    NetlmError
        From the SR / SEG writers.
    """
    from ..errors import UnsupportedError
    from .dicom_seg_out import write_seg_with_header
    from .sr_write import write_sr

    if not has_dicom_source(ctx):
        raise UnsupportedError(
            f"{ctx.image.source}: a DICOM SR / SEG references the DICOM images measured, and this image is not a "
            "DICOM series; analyse the DICOM series to write them"
        )

    if sr_path is not None and seg_path is None:
        raise ValueError("the SR references the derived SEG: give seg_path too")
    seg, header = (None, None)
    if seg_path is not None:  # the header is handed to the SR: the SEG is not read back
        seg, header = write_seg_with_header(ctx, seg_path, include_identifiers=include_identifiers)
    sr = None
    if sr_path is not None:
        sr = write_sr(report, ctx, sr_path, derived_seg=header, include_identifiers=include_identifiers)
    return DicomOutputs(sr=sr, seg=seg)

"""Write real DICOM SEG (highdicom) and RTSTRUCT (pydicom) objects for tests.

Masks follow the array convention of :mod:`tests.dicom_factory`: a mask is
``mask[i, j, k]`` on the grid of a series written by ``write_image_series``,
and frame ``k`` of the SEG is ``mask[:, :, k].T`` (``[row, column]``).

RTSTRUCT contours are given directly in patient LPS millimetres, so the tests
decide their geometry (ellipses, rings, sub-pixel and two-point contours)
independently of the reader.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import highdicom as hd
import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.sr.codedict import codes
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

__all__ = [
    "Contour",
    "RoiSpec",
    "SegmentSpec",
    "box_outline",
    "ellipse_points",
    "seg_identity",
    "write_rtstruct",
    "write_seg",
]

RTSTRUCT_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.481.3"


@dataclass
class SegmentSpec:
    """One SEG segment: label, property type code and its mask ``[i, j, k]``."""

    label: str
    mask: np.ndarray
    property_type: object = field(default_factory=lambda: codes.SCT.Liver)
    property_category: object = field(default_factory=lambda: codes.SCT.Organ)


def seg_identity(series_number: int, model: str) -> dict[str, object]:
    """The identification arguments every test SEG passes to ``highdicom.seg.Segmentation`` (fresh UIDs)."""
    return {
        "series_instance_uid": hd.UID(),
        "series_number": series_number,
        "sop_instance_uid": hd.UID(),
        "instance_number": 1,
        "manufacturer": "netlm tests",
        "manufacturer_model_name": model,
        "software_versions": "1",
        "device_serial_number": "0",
    }


def _load(sources: Sequence[str | Path | Dataset]) -> list[Dataset]:
    return [s if isinstance(s, Dataset) else pydicom.dcmread(str(s)) for s in sources]


def write_seg(
    path: str | Path,
    source_images: Sequence[str | Path | Dataset],
    segments: Sequence[SegmentSpec],
    *,
    segmentation_type: str = "BINARY",
    max_fractional_value: int = 255,
    omit_empty_frames: bool = True,
    seed: int = 0,
) -> Path:
    """Write a DICOM SEG with highdicom.

    Parameters
    ----------
    path : str or Path
        Output file.
    source_images : sequence
        Slice files (or datasets) in ``k`` order, as ``write_image_series`` returns them.
    segments : sequence of SegmentSpec
        Masks ``[i, j, k]`` (bool for BINARY, float fractions in [0, 1] for FRACTIONAL).
    segmentation_type : {"BINARY", "FRACTIONAL"}
    max_fractional_value : int
        MaximumFractionalValue for FRACTIONAL SEGs.
    omit_empty_frames : bool
        highdicom's default (True) leaves out empty frames.
    seed : int
        Makes the UIDs reproducible.

    Returns
    -------
    Path
    """
    dss = _load(source_images)
    stack = np.stack([np.transpose(s.mask, (2, 1, 0)) for s in segments], axis=-1)  # (k, rows, cols, seg)
    if segmentation_type == "BINARY":
        pixels = stack.astype(np.uint8)
    else:
        pixels = stack.astype(np.float32)
    descs = [
        hd.seg.SegmentDescription(
            segment_number=n + 1,
            segment_label=s.label,
            segmented_property_category=s.property_category,
            segmented_property_type=s.property_type,
            algorithm_type=hd.seg.SegmentAlgorithmTypeValues.MANUAL,
        )
        for n, s in enumerate(segments)
    ]
    seg = hd.seg.Segmentation(
        source_images=dss,
        pixel_array=pixels,
        segmentation_type=segmentation_type,
        segment_descriptions=descs,
        series_instance_uid=generate_uid(entropy_srcs=["seg-series", str(seed)]),
        series_number=99,
        sop_instance_uid=generate_uid(entropy_srcs=["seg-sop", str(seed)]),
        instance_number=1,
        manufacturer="netlm tests",
        manufacturer_model_name="seg_factory",
        software_versions="1",
        device_serial_number="0",
        fractional_type="PROBABILITY" if segmentation_type == "BINARY" else "OCCUPANCY",
        max_fractional_value=max_fractional_value,
        omit_empty_frames=omit_empty_frames,
    )
    out = Path(path)
    seg.save_as(str(out))
    return out


@dataclass
class Contour:
    """One contour: LPS points ``(N, 3)`` and its ContourGeometricType."""

    points: np.ndarray
    geometric_type: str = "CLOSED_PLANAR"


@dataclass
class RoiSpec:
    """One ROI of an RTSTRUCT."""

    name: str
    contours: list[Contour]
    interpreted_type: str = "ORGAN"
    frame_of_reference_uid: str | None = None


def ellipse_points(
    center_lps: np.ndarray, axis_u: np.ndarray, axis_v: np.ndarray, a_mm: float, b_mm: float, n: int = 256
) -> np.ndarray:
    """Points on the ellipse ``center + a cos(t) u + b sin(t) v`` (u, v unit vectors)."""
    t = np.linspace(0.0, 2.0 * np.pi, n, endpoint=False)
    u = np.asarray(axis_u, float) / np.linalg.norm(axis_u)
    v = np.asarray(axis_v, float) / np.linalg.norm(axis_v)
    return np.asarray(center_lps, float) + np.outer(a_mm * np.cos(t), u) + np.outer(b_mm * np.sin(t), v)


def box_outline(affine: np.ndarray, box, k: int, dk: float = 0.0) -> Contour:
    """The outline of ``box`` (``((i0, i1), (j0, j1), ...)``, half-open) on slice ``k + dk`` through its voxel edges.

    Every voxel centre of the box is strictly inside it and every other one strictly outside, so the
    box's voxel count is the truth of any inclusion rule; ``dk`` moves the plane off the slice.
    """
    (i0, i1), (j0, j1) = box[0], box[1]
    corners = [(i0 - 0.5, j0 - 0.5), (i1 - 0.5, j0 - 0.5), (i1 - 0.5, j1 - 0.5), (i0 - 0.5, j1 - 0.5)]
    return Contour(np.array([(np.asarray(affine) @ [i, j, k + dk, 1.0])[:3] for i, j in corners]))


def write_rtstruct(
    path: str | Path,
    source_images: Sequence[str | Path | Dataset],
    rois: Sequence[RoiSpec],
    *,
    contour_image_sequence: bool = True,
    frame_of_reference_uid: str | None = None,
    seed: int = 0,
) -> Path:
    """Write an RT Structure Set with pydicom.

    Parameters
    ----------
    path : str or Path
        Output file.
    source_images : sequence
        The referenced image slices (files or datasets).
    rois : sequence of RoiSpec
        ROIs with contours in LPS mm.
    contour_image_sequence : bool
        Write ContourImageSequence (matched to the nearest slice) for each
        contour; ``False`` leaves it out, as some exports do.
    frame_of_reference_uid : str, optional
        Overrides the images' FrameOfReferenceUID (to test mismatches).
    seed : int
        Makes the UIDs reproducible.

    Returns
    -------
    Path
    """
    dss = _load(source_images)
    first = dss[0]
    for_uid = frame_of_reference_uid or str(first.FrameOfReferenceUID)
    sop_uid = generate_uid(entropy_srcs=["rt-sop", str(seed)])
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = RTSTRUCT_SOP_CLASS
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = RTSTRUCT_SOP_CLASS
    ds.SOPInstanceUID = sop_uid
    ds.Modality = "RTSTRUCT"
    for tag in ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyInstanceUID", "StudyID"):
        if tag in first:
            setattr(ds, tag, getattr(first, tag))
    ds.SeriesInstanceUID = generate_uid(entropy_srcs=["rt-series", str(seed)])
    ds.SeriesNumber = 98
    ds.InstanceNumber = 1
    ds.StructureSetLabel = "test"
    ds.StructureSetDate = "20240102"
    ds.StructureSetTime = "120000"
    iop = np.asarray(first.ImageOrientationPatient, float)
    normal = np.cross(iop[:3], iop[3:])
    slice_pos = np.array([float(np.dot(normal, np.asarray(d.ImagePositionPatient, float))) for d in dss])

    contour_images = DicomSequence()
    for d in dss:
        ci = Dataset()
        ci.ReferencedSOPClassUID = d.SOPClassUID
        ci.ReferencedSOPInstanceUID = d.SOPInstanceUID
        contour_images.append(ci)
    rt_series = Dataset()
    rt_series.SeriesInstanceUID = first.SeriesInstanceUID
    rt_series.ContourImageSequence = contour_images
    rt_study = Dataset()
    rt_study.ReferencedSOPClassUID = "1.2.840.10008.3.1.2.3.1"
    rt_study.ReferencedSOPInstanceUID = first.StudyInstanceUID
    rt_study.RTReferencedSeriesSequence = DicomSequence([rt_series])
    ref_for = Dataset()
    ref_for.FrameOfReferenceUID = for_uid
    ref_for.RTReferencedStudySequence = DicomSequence([rt_study])
    ds.ReferencedFrameOfReferenceSequence = DicomSequence([ref_for])

    ssroi, roic, obs = DicomSequence(), DicomSequence(), DicomSequence()
    for n, roi in enumerate(rois, start=1):
        item = Dataset()
        item.ROINumber = n
        item.ReferencedFrameOfReferenceUID = roi.frame_of_reference_uid or for_uid
        item.ROIName = roi.name
        item.ROIGenerationAlgorithm = "MANUAL"
        ssroi.append(item)
        rc = Dataset()
        rc.ReferencedROINumber = n
        rc.ROIDisplayColor = [255, 0, 0]
        cseq = DicomSequence()
        for c in roi.contours:
            pts = np.asarray(c.points, float).reshape(-1, 3)
            ci = Dataset()
            ci.ContourGeometricType = c.geometric_type
            ci.NumberOfContourPoints = len(pts)
            ci.ContourData = [f"{x:.6f}" for x in pts.ravel()]
            if contour_image_sequence and len(pts):
                k = int(np.argmin(np.abs(slice_pos - float(np.dot(normal, pts.mean(axis=0))))))
                ref = Dataset()
                ref.ReferencedSOPClassUID = dss[k].SOPClassUID
                ref.ReferencedSOPInstanceUID = dss[k].SOPInstanceUID
                ci.ContourImageSequence = DicomSequence([ref])
            cseq.append(ci)
        rc.ContourSequence = cseq
        roic.append(rc)
        o = Dataset()
        o.ObservationNumber = n
        o.ReferencedROINumber = n
        o.RTROIInterpretedType = roi.interpreted_type
        o.ROIInterpreter = ""
        obs.append(o)
    ds.StructureSetROISequence = ssroi
    ds.ROIContourSequence = roic
    ds.RTROIObservationsSequence = obs
    out = Path(path)
    pydicom.dcmwrite(str(out), ds, enforce_file_format=True)
    return out


def declare_slabs(path: str | Path, series_uid: str, how: str, thickness_mm: float, pixel_spacing) -> None:
    """Make a structure set name ``series_uid`` (and none of its images) and declare its contours' slab.

    ``how``: ``"ContourSlabThickness"`` (3006,0044) on every contour, or ``"SourcePixelPlanes"`` (the Source
    Pixel Planes Characteristics Sequence (3006,004A) with that SpacingBetweenSlices and ``pixel_spacing``).
    """
    ds = pydicom.dcmread(path)
    ref_series = ds.ReferencedFrameOfReferenceSequence[0].RTReferencedStudySequence[0].RTReferencedSeriesSequence
    ref_series[0].SeriesInstanceUID = series_uid
    del ref_series[0].ContourImageSequence
    for rc in ds.ROIContourSequence:
        for c in rc.ContourSequence:
            del c.ContourImageSequence
            if how == "ContourSlabThickness":
                c.ContourSlabThickness = thickness_mm
        if how == "SourcePixelPlanes":
            planes = Dataset()
            planes.SpacingBetweenSlices = thickness_mm
            planes.PixelSpacing = list(pixel_spacing)
            rc.SourcePixelPlanesCharacteristicsSequence = [planes]
    ds.save_as(path)

"""The header facts of one DICOM file: :class:`DicomFileInfo`, its frames and its kind.

One concept: the model the folder scan (:mod:`._dicom_common`) returns and the series, SEG,
RTSTRUCT, PET and discovery readers consume; both header readers (the raw-byte reader
:mod:`._dicom_fast` and the pydicom one :mod:`._dicom_header`) fill it alike. Also the kind
values (:data:`IMAGE`, :data:`SEG`, :data:`RTSTRUCT`, :data:`OTHER`) and the SOP class tables
that decide a file's kind.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .formats import LABELMAP_SEG_SOP_CLASS, SEG_SOP_CLASS

__all__ = ["IMAGE", "OTHER", "RTSTRUCT", "SEG", "DicomFileInfo", "FrameGeometry"]


#: SOP class UID prefixes of objects that are never images (their files are :data:`OTHER` unless SEG / RTSTRUCT).
_NON_IMAGE_SOP_PREFIXES = (
    "1.2.840.10008.5.1.4.1.1.88.",  # Structured reports
    "1.2.840.10008.5.1.4.1.1.11.",  # Presentation states
    "1.2.840.10008.5.1.4.1.1.104.",  # Encapsulated documents
    "1.2.840.10008.5.1.4.1.1.481.",  # RT objects (RTSTRUCT, plans, doses)
    "1.2.840.10008.5.1.4.1.1.66",  # Raw data, registration, SEG, surfaces
)

#: SOP classes whose instances always carry PixelData (CT, MR, PET, SEG); a file
#: of these classes without it was cut short.
_PIXEL_SOP_CLASSES = frozenset(
    {
        "1.2.840.10008.5.1.4.1.1.2",  # CT
        "1.2.840.10008.5.1.4.1.1.2.1",  # Enhanced CT
        "1.2.840.10008.5.1.4.1.1.2.2",  # Legacy converted enhanced CT
        "1.2.840.10008.5.1.4.1.1.4",  # MR
        "1.2.840.10008.5.1.4.1.1.4.1",  # Enhanced MR
        "1.2.840.10008.5.1.4.1.1.4.4",  # Legacy converted enhanced MR
        "1.2.840.10008.5.1.4.1.1.128",  # PET
        "1.2.840.10008.5.1.4.1.1.128.1",  # Legacy converted enhanced PET
        "1.2.840.10008.5.1.4.1.1.130",  # Enhanced PET
        SEG_SOP_CLASS,
        LABELMAP_SEG_SOP_CLASS,
    }
)

#: ``DicomFileInfo.kind`` values.
IMAGE = "IMAGE"
SEG = "SEG"
RTSTRUCT = "RTSTRUCT"
OTHER = "OTHER"


@dataclass(frozen=True)
class FrameGeometry:
    """Geometry and modality LUT of one frame (a single-frame file has one).

    Attributes
    ----------
    position : tuple of float or None
        ImagePositionPatient (LPS mm) of the first transmitted pixel.
    orientation : tuple of float or None
        ImageOrientationPatient: row cosine then column cosine.
    pixel_spacing : tuple of float or None
        ``(row spacing, column spacing)`` in mm.
    slope, intercept : float
        Modality LUT (RescaleSlope / RescaleIntercept); 1 and 0 when absent.
    frame_index : int
        0-based frame number in the file.
    temporal_position : int or None
        Enhanced images: FrameContentSequence TemporalPositionIndex (dynamic phases in one file).
    frame_type : tuple of str
        Enhanced MR: the frame's FrameType (MR Image Frame Type), e.g. Dixon water / fat frames in one file.
    """

    position: tuple[float, float, float] | None
    orientation: tuple[float, ...] | None
    pixel_spacing: tuple[float, float] | None
    slope: float = 1.0
    intercept: float = 0.0
    frame_index: int = 0
    temporal_position: int | None = None
    frame_type: tuple[str, ...] = ()


@dataclass(frozen=True)
class DicomFileInfo:
    """Facts of one DICOM file, from its header only.

    Attributes
    ----------
    path : pathlib.Path
        The file.
    kind : str
        ``"IMAGE"``, ``"SEG"`` (incl. Label Map Segmentation), ``"RTSTRUCT"`` or ``"OTHER"``.
    sop_class_uid, sop_instance_uid, series_uid, study_uid, modality, frame_of_reference_uid : str
        Identification ("" when absent).
    series_description, series_number, image_type : str, int or None, tuple
        Descriptive facts.
    rows, columns, number_of_frames, bits_allocated, bits_stored, pixel_representation, samples_per_pixel : int
        Pixel matrix and encoding as declared.
    has_modality_lut_sequence : bool
        The file uses a Modality LUT Sequence instead of RescaleSlope/Intercept.
    transfer_syntax_uid : str
        From the file meta ("" when absent).
    frames : tuple of FrameGeometry
        Geometry per frame (images only; empty for SEG/RTSTRUCT).
    pixel_data_offset, pixel_data_length : int or None
        Byte offset and length of native (not encapsulated) PixelData.
    truncated : bool
        The file ends before its declared PixelData does.
    referenced_series_uids, referenced_sop_uids, referenced_frame_of_reference_uids : tuple of str
        What a SEG / RTSTRUCT says it was drawn on.
    segment_labels : tuple of str
        SEG SegmentLabel values or RTSTRUCT ROINames (for listing candidates).
    acquisition_date, acquisition_time, acquisition_datetime : str
        AcquisitionDate / Time / DateTime as written ("" when absent); with
        ``decay_factor`` (PET Decay Factor (0054,1321), None when absent) the
        per-slice facts SUV conversion needs, so it does not re-read headers.
    echo_number, echo_time, diffusion_b_value : int, float or None
        EchoNumbers, EchoTime (ms) and DiffusionBValue (0018,9087) (None when absent or
        multi-valued): what tells the echoes of a multi-echo series, or the b-values of a
        diffusion series, apart when the scanner files them under one SeriesInstanceUID.
    trigger_time : float or None
        TriggerTime (0018,1060) in ms (None when absent or multi-valued): what tells the phases
        of a GE multiphase dynamic filed as one series apart.
    temporal_positions : int or None
        NumberOfTemporalPositions (0020,0105): how many phases the scanner says the dynamic holds
        (the cross-check of the phases TriggerTime tells apart).
    """

    path: Path
    kind: str
    sop_class_uid: str = ""
    sop_instance_uid: str = ""
    series_uid: str = ""
    study_uid: str = ""
    modality: str = ""
    frame_of_reference_uid: str = ""
    series_description: str = ""
    series_number: int | None = None
    image_type: tuple[str, ...] = ()
    rows: int = 0
    columns: int = 0
    number_of_frames: int = 1
    bits_allocated: int = 0
    bits_stored: int = 0
    pixel_representation: int = 0
    samples_per_pixel: int = 1
    has_modality_lut_sequence: bool = False
    transfer_syntax_uid: str = ""
    frames: tuple[FrameGeometry, ...] = ()
    pixel_data_offset: int | None = None
    pixel_data_length: int | None = None
    truncated: bool = False
    referenced_series_uids: tuple[str, ...] = ()
    referenced_sop_uids: tuple[str, ...] = ()
    referenced_frame_of_reference_uids: tuple[str, ...] = field(default=())
    segment_labels: tuple[str, ...] = ()
    acquisition_date: str = ""
    acquisition_time: str = ""
    acquisition_datetime: str = ""
    decay_factor: float | None = None
    acquisition_number: int | None = None
    temporal_position: int | None = None
    convolution_kernel: str = ""
    slice_thickness: float | None = None
    echo_number: int | None = None
    echo_time: float | None = None
    diffusion_b_value: float | None = None
    trigger_time: float | None = None
    temporal_positions: int | None = None
    #: The parsed SEG header of a SEG file, handed to the SEG reader: no second parse (a pydicom dataset with
    #: deferred PixelData, or the raw-byte header of a plain BINARY SEG, :class:`._seg_header.PlainSeg`).
    dataset: Any = field(default=None, repr=False, compare=False)

    @property
    def position(self) -> tuple[float, float, float] | None:
        """ImagePositionPatient of the first frame."""
        return self.frames[0].position if self.frames else None

    @property
    def orientation(self) -> tuple[float, ...] | None:
        """ImageOrientationPatient of the first frame."""
        return self.frames[0].orientation if self.frames else None

    @property
    def is_multiframe(self) -> bool:
        """Whether the file holds more than one frame or per-frame functional groups."""
        return self.number_of_frames > 1 or len(self.frames) > 1

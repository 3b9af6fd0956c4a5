"""Provenance of an MR series from its headers: contrast agent, timing and sequence.

The facts are read, never inferred: an attribute the headers do not carry is
``None`` and named in ``notes``. The phase (pre-contrast, arterial, ...) is a
classification of these facts by the rules file and lives in
:mod:`netlm_imaging.io.mr_phase`.

Sources, in order:

* a DICOM series (single-frame or Enhanced MR): ContrastBolusAgent (0018,0010),
  ContrastBolusAgentSequence (0018,0012), ContrastBolusIngredient (0018,1048),
  ContrastBolusRoute, ContrastBolusVolume, ContrastBolusStartTime (0018,1042);
  AcquisitionDateTime / AcquisitionTime / SeriesTime; ScanningSequence,
  SequenceVariant, ScanOptions, MRAcquisitionType, FlipAngle, RepetitionTime,
  EchoTime, MagneticFieldStrength, SpectrallySelectedSuppression; in Enhanced
  MR the functional groups (MR Timing and Related Parameters, Contrast/Bolus
  Usage, Frame Content) are searched too.
* a NIfTI/NRRD image: a JSON sidecar with the same stem (``image.json``, as
  dcm2niix writes it) whose keys are the DICOM keywords above.

No free-text attribute that can hold a name (SeriesDescription, ProtocolName,
StudyDescription) is copied.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from ..dicom_values import parse_date, parse_datetime, parse_float, parse_time, seconds_of_day
from ..errors import InputError
from ..volume import Volume
from ._inflate import dcmread as bounded_dcmread
from .mr_image_type import (
    ge_image_type,
    image_component,
    philips_image_type,
    philips_scale_slope,
    real_world_mapping,
)

__all__ = [
    "MrProvenance",
    "image_component",
    "mr_provenance",
    "mr_provenance_from_dicom",
    "mr_provenance_from_sidecar",
    "sidecar_for",
    "signal_scale",
]

logger = logging.getLogger(__name__)

_DAY_S = 86400.0


@dataclass(frozen=True)
class MrProvenance:
    """What the headers of one MR series say about contrast, timing and sequence.

    Attributes
    ----------
    source : str
        ``"dicom"``, ``"sidecar"`` or ``"none"`` (no headers, e.g. a bare NIfTI).
    contrast_agent : str or None
        ContrastBolusAgent, else the code meaning of ContrastBolusAgentSequence.
    contrast_ingredient, contrast_route : str or None
        ContrastBolusIngredient, ContrastBolusRoute.
    contrast_volume_ml : float or None
        ContrastBolusVolume.
    contrast_administered : bool or None
        Enhanced MR ContrastBolusAgentAdministered (YES/NO), when stated.
    contrast_start_time : str or None
        ContrastBolusStartTime as written (TM).
    contrast_from : str or None
        ``None`` when agent and injection time are this series' own; else the series of the same
        study they were taken from (:func:`with_study_contrast`).
    acquisition_time : str or None
        The acquisition time used (ISO time of day), and ``acquisition_time_source`` names the attribute.
    delay_s : float or None
        AcquisitionTime - ContrastBolusStartTime in seconds (a crossing of midnight is
        unwrapped when the difference is below -12 h); negative means acquired before the injection.
        ``None`` for a phase with ``trigger_time_ms``.
    trigger_time_ms : float or None
        TriggerTime of a dynamic phase told apart from the other phases of its SeriesInstanceUID by
        TriggerTime while all share one acquisition time (GE LAVA / DISCO multiphase): the shared time
        is not this phase's, and what TriggerTime adds to it is not documented, so no delay is given.
    scanning_sequence, sequence_variant, scan_options, mr_acquisition_type : str or None
        As in the headers (multi-valued joined by backslash).
    echo_pulse_sequence : str or None
        Enhanced MR EchoPulseSequence (GRADIENT, SPIN, BOTH), which replaces ScanningSequence there.
    echo_planar : bool or None
        Enhanced MR EchoPlanarPulseSequence (YES / NO).
    flip_angle_deg, repetition_time_ms, echo_time_ms, inversion_time_ms, field_strength_t : float or None
        Sequence parameters.
    fat_suppression : bool or None
        True when ScanOptions holds FS or SpectrallySelectedSuppression names fat; False when
        SpectrallySelectedSuppression is NONE; None when the headers do not say.
    image_type : str or None
        ImageType (Enhanced MR: FrameType), values joined by backslash.
    image_component : str or None
        What the pixel values are, from ImageType / FrameType, ComplexImageComponent and Philips'
        private image type (2005,1011): ``"water"``, ``"fat"``, ``"in_phase"``, ``"opposed_phase"``
        (Dixon), ``"subtraction"``, ``"diffusion"``, ``"phase"``, ``"real"``, ``"imaginary"``,
        ``"fat_fraction"``, ``"parametric_map"``; ``None`` for a plain magnitude image or when the headers do not say.
    rescale_slope, rescale_intercept : float or None
        RescaleSlope / RescaleIntercept of the first header (Enhanced MR: Pixel Value Transformation),
        which the reader applies: the image holds ``stored x slope + intercept``.
    philips_scale_slope : float or None
        Philips' private MR scale slope (2005,100E), when present: the value comparable across
        series is Philips' floating-point value ``(stored x slope + intercept) / (slope x scale slope)``.
    real_world_value_slope, real_world_value_intercept : float or None
        The first RealWorldValueMappingSequence item (root or functional groups).
    manufacturer : str or None
        Manufacturer.
    series_instance_uid : str or None
        SeriesInstanceUID.
    series_number : int or None
        SeriesNumber.
    frame_of_reference_uid : str or None
        FrameOfReferenceUID.
    notes : list of str
        What was missing or which fallback was used.
    """

    source: str
    contrast_agent: str | None = None
    contrast_ingredient: str | None = None
    contrast_route: str | None = None
    contrast_volume_ml: float | None = None
    contrast_administered: bool | None = None
    contrast_start_time: str | None = None
    contrast_from: str | None = None
    acquisition_time: str | None = None
    acquisition_time_source: str | None = None
    delay_s: float | None = None
    trigger_time_ms: float | None = None
    scanning_sequence: str | None = None
    sequence_variant: str | None = None
    echo_pulse_sequence: str | None = None
    echo_planar: bool | None = None
    scan_options: str | None = None
    mr_acquisition_type: str | None = None
    flip_angle_deg: float | None = None
    repetition_time_ms: float | None = None
    echo_time_ms: float | None = None
    inversion_time_ms: float | None = None
    field_strength_t: float | None = None
    fat_suppression: bool | None = None
    image_type: str | None = None
    image_component: str | None = None
    rescale_slope: float | None = None
    rescale_intercept: float | None = None
    philips_scale_slope: float | None = None
    real_world_value_slope: float | None = None
    real_world_value_intercept: float | None = None
    manufacturer: str | None = None
    series_instance_uid: str | None = None
    series_number: int | None = None
    frame_of_reference_uid: str | None = None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (for the report's ``mri.provenance``)."""
        return asdict(self)


# ---------------------------------------------------------------- attribute access
def _get(ds: Any, keyword: str) -> Any:
    """Attribute from the dataset, else from the Enhanced MR functional groups (shared, then first frame)."""
    if isinstance(ds, dict):
        return ds.get(keyword)
    val = ds.get(keyword)
    if val is not None and str(val).strip() != "":
        return val
    for groups_kw in ("SharedFunctionalGroupsSequence", "PerFrameFunctionalGroupsSequence"):
        groups = ds.get(groups_kw)
        if not groups:
            continue
        for macro in groups[0]:
            if macro.VR != "SQ" or not macro.value:
                continue
            inner = macro.value[0].get(keyword)
            if inner is not None and str(inner).strip() != "":
                return inner
    return None


def _text(ds: Any, keyword: str) -> str | None:
    val = _get(ds, keyword)
    if val is None:
        return None
    if isinstance(val, (list, tuple)) or (hasattr(val, "__iter__") and not isinstance(val, (str, bytes))):
        try:
            s = "\\".join(str(v).strip() for v in val)
        except TypeError:
            s = str(val)
    else:
        s = str(val).strip()
    return s or None


def _agent_from_sequence(ds: Any) -> str | None:
    seq = _get(ds, "ContrastBolusAgentSequence")
    if not seq or isinstance(seq, (str, dict)):
        return None
    try:
        item = seq[0]
        meaning = item.get("CodeMeaning")
    except (IndexError, AttributeError, TypeError):
        return None
    return str(meaning).strip() or None if meaning is not None else None


def _administration_profile(ds: Any, keyword: str) -> str | None:
    """An attribute of the Enhanced Contrast/Bolus Module, where it sits in ContrastBolusAgentSequence >
    ContrastAdministrationProfileSequence (the earliest value over the profile items)."""
    if isinstance(ds, dict):
        return None
    values = []
    for agent in ds.get("ContrastBolusAgentSequence") or []:
        for item in agent.get("ContrastAdministrationProfileSequence") or []:
            value = item.get(keyword)
            if value is not None and str(value).strip():
                values.append(str(value).strip())
    if not values:
        return None
    if keyword == "ContrastBolusStartTime":
        timed = [(parse_time(v), v) for v in values]
        known = [t for t in timed if t[0] is not None]
        return min(known)[1] if known else values[0]
    return values[0]


def _administered(ds: Any) -> bool | None:
    usage = _get(ds, "ContrastBolusUsageSequence")
    value = None
    if usage and not isinstance(usage, (str, dict)):
        try:
            value = usage[0].get("ContrastBolusAgentAdministered")
        except (IndexError, AttributeError, TypeError):
            value = None
    if value is None and isinstance(ds, dict):
        value = ds.get("ContrastBolusAgentAdministered")
    if value is None:
        return None
    text = str(value).strip().upper()
    return True if text == "YES" else False if text == "NO" else None


def _acquisition(ds_list: Sequence[Any], notes: list[str]) -> tuple[datetime | None, str | None]:
    """Earliest acquisition date-time of the given headers and the attribute it came from."""
    for keyword in ("AcquisitionDateTime", "FrameAcquisitionDateTime"):
        vals = [parse_datetime(_text(ds, keyword)) for ds in ds_list]
        got = [v for v in vals if v is not None]
        if got:
            return min(got), keyword
    # each header's own AcquisitionDate: a series acquired across midnight starts on the earlier day
    stamps = [
        datetime.combine(parse_date(_text(ds, "AcquisitionDate")) or datetime(2000, 1, 1).date(), t)
        for ds in ds_list
        if (t := parse_time(_text(ds, "AcquisitionTime"))) is not None
    ]
    if stamps:
        return min(stamps), "AcquisitionTime"
    st = next((parse_time(_text(ds, "SeriesTime")) for ds in ds_list if _text(ds, "SeriesTime")), None)
    if st is not None:
        notes.append("no AcquisitionTime in the headers: SeriesTime used as the acquisition time")
        return datetime.combine(datetime(2000, 1, 1).date(), st), "SeriesTime"
    return None, None


def _delay_s(start_text: str | None, acq: datetime | None, notes: list[str]) -> float | None:
    if start_text is None or acq is None:
        return None
    start = parse_time(start_text)
    if start is None:
        notes.append(f"ContrastBolusStartTime {start_text!r} is not a DICOM time: delay unknown")
        return None
    delay = seconds_of_day(acq.time()) - seconds_of_day(start)
    # ContrastBolusStartTime has no date: the two times are taken within 12 h of each other
    if delay < -_DAY_S / 2:
        delay += _DAY_S
        notes.append("the acquisition is after midnight of the injection day: 24 h added to the delay")
    elif delay > _DAY_S / 2:
        delay -= _DAY_S
        notes.append("the injection is after midnight of the acquisition day: 24 h subtracted from the delay")
    return round(delay, 3)


def _fat_suppression(scan_options: str | None, sss: str | None) -> bool | None:
    if sss:
        up = sss.upper()
        if "FAT" in up:
            return True
        if up == "NONE":
            return False
    if scan_options:
        tokens = {t.strip().upper() for t in scan_options.replace("\\", " ").split()}
        if "FS" in tokens:
            return True
    return None


def _rescale(ds: Any, what: str) -> float | None:
    """RescaleSlope / RescaleIntercept; in a dcm2niix sidecar PhilipsRescaleSlope / Intercept (1 / 0 when
    the NIfTI holds Philips' floating-point values)."""
    if isinstance(ds, dict) and ds.get(f"PhilipsRescale{what}") is not None:
        if ds.get("UsePhilipsFloatNotDisplayScaling") == 1:
            return 1.0 if what == "Slope" else 0.0
        return parse_float(ds.get(f"PhilipsRescale{what}"))
    return parse_float(_text(ds, f"Rescale{what}"))


def signal_scale(prov: MrProvenance) -> tuple[str, float, float] | None:
    """How to turn the image's values into values comparable across series: ``(kind, a, b)`` with
    comparable = ``a x value + b``, or ``None`` when the scale stated is unusable.

    * ``"philips_fp"``: Philips' private scale slope, ``a = 1 / (RescaleSlope x ScaleSlope)``, ``b = 0``;
    * ``"real_world_value"``: RealWorldValueMapping over the stored values,
      ``a = RWVslope / RescaleSlope``, ``b = RWVintercept - RescaleIntercept x a``;
    * ``"stored"``: no scale stated, ``a = 1``, ``b = 0``.
    """
    rs = prov.rescale_slope if prov.rescale_slope not in (None, 0.0) else 1.0
    ri = prov.rescale_intercept or 0.0
    if prov.philips_scale_slope is not None:
        if prov.philips_scale_slope == 0:
            return None
        return "philips_fp", 1.0 / (rs * prov.philips_scale_slope), 0.0
    if prov.real_world_value_slope is not None:
        a = prov.real_world_value_slope / rs
        return "real_world_value", a, (prov.real_world_value_intercept or 0.0) - ri * a
    return "stored", 1.0, 0.0


def _provenance(ds_list: Sequence[Any], source: str) -> MrProvenance:
    """Provenance from one or more headers of one series (first one wins for static facts)."""
    first = ds_list[0]
    notes: list[str] = []
    agent = _text(first, "ContrastBolusAgent") or _agent_from_sequence(first)
    start = _text(first, "ContrastBolusStartTime") or _administration_profile(first, "ContrastBolusStartTime")
    acq, acq_src = _acquisition(ds_list, notes)
    delay = _delay_s(start, acq, notes)
    if agent is None and _text(first, "ContrastBolusIngredient") is None:
        notes.append("no contrast agent attribute (ContrastBolusAgent / ContrastBolusIngredient) in the headers")
    if start is None:
        notes.append("no ContrastBolusStartTime in the headers: delay after injection unknown")
    if acq is None:
        notes.append("no acquisition time in the headers")
    scan_options = _text(first, "ScanOptions")
    series_number = parse_float(_text(first, "SeriesNumber"))
    image_type = _text(first, "FrameType") or _text(first, "ImageType")  # Enhanced: the frame's own type
    complex_part = _text(first, "ComplexImageComponent") or ge_image_type(first)
    component = image_component(image_type, complex_part, philips_image_type(first))
    rwv = real_world_mapping(first)
    return MrProvenance(
        source=source,
        contrast_agent=agent,
        contrast_ingredient=_text(first, "ContrastBolusIngredient"),
        contrast_route=_text(first, "ContrastBolusRoute"),
        contrast_volume_ml=parse_float(
            _text(first, "ContrastBolusVolume") or _administration_profile(first, "ContrastBolusVolume")
        ),
        contrast_administered=_administered(first),
        contrast_start_time=start,
        acquisition_time=acq.time().isoformat() if acq is not None else None,
        acquisition_time_source=acq_src,
        delay_s=delay,
        scanning_sequence=_text(first, "ScanningSequence"),
        sequence_variant=_text(first, "SequenceVariant"),
        echo_pulse_sequence=_text(first, "EchoPulseSequence"),
        echo_planar={"YES": True, "NO": False}.get((_text(first, "EchoPlanarPulseSequence") or "").upper()),
        scan_options=scan_options,
        mr_acquisition_type=_text(first, "MRAcquisitionType"),
        flip_angle_deg=parse_float(_text(first, "FlipAngle")),
        repetition_time_ms=parse_float(_text(first, "RepetitionTime")),
        echo_time_ms=parse_float(_text(first, "EchoTime")),
        inversion_time_ms=parse_float(_text(first, "InversionTime")),
        field_strength_t=parse_float(_text(first, "MagneticFieldStrength")),
        fat_suppression=_fat_suppression(scan_options, _text(first, "SpectrallySelectedSuppression")),
        image_type=image_type,
        image_component=component,
        rescale_slope=_rescale(first, "Slope"),
        rescale_intercept=_rescale(first, "Intercept"),
        philips_scale_slope=philips_scale_slope(first),
        real_world_value_slope=rwv[0],
        real_world_value_intercept=rwv[1],
        manufacturer=_text(first, "Manufacturer"),
        series_instance_uid=_text(first, "SeriesInstanceUID"),
        series_number=int(series_number) if series_number is not None else None,
        frame_of_reference_uid=_text(first, "FrameOfReferenceUID"),
        notes=notes,
    )


def mr_provenance_from_dicom(
    files: Sequence[str | Path], frames: Sequence[int] | None = None, *, trigger_time_ms: float | None = None
) -> MrProvenance:
    """Provenance of a DICOM MR series from the headers of its first and last file.

    Parameters
    ----------
    files : sequence of path
        The series' files in slice order (``Volume.meta["files"]``). Only the first and the
        last header are read (the acquisition time is the earlier of the two: a 2-D multi-slice
        series is acquired over time; a 3-D series has one time).
    frames : sequence of int, optional
        For one Enhanced file holding several stacks (dynamic phases): the 1-based frame numbers
        of the stack measured (``Volume.meta["frame_numbers"]``); the per-frame functional groups
        of its first and last frame are read instead of the file's first frame.
    trigger_time_ms : float, optional
        The stack is a dynamic phase told apart by this TriggerTime from phases sharing its acquisition
        time (``SeriesGroup.trigger_time_ms``): its delay after injection is not given.

    Returns
    -------
    MrProvenance

    Raises
    ------
    InputError
        When a header cannot be read.
    """
    import pydicom

    if not files:
        return MrProvenance(source="none", notes=["no DICOM files: provenance unknown"])
    chosen = [files[0]] if len(files) == 1 else [files[0], files[-1]]
    headers = []
    for f in chosen:
        try:
            headers.append(bounded_dcmread(f, stop_before_pixels=True))
        except (OSError, pydicom.errors.InvalidDicomError) as exc:
            raise InputError(f"{f}: cannot read the MR header ({exc}); re-export the series.") from exc
    if frames and len({str(f) for f in files}) == 1:
        headers = _frame_views(headers[0], [frames[0], frames[-1]])
    prov = _provenance(headers, "dicom")
    if trigger_time_ms is None:
        return prov
    shared = f" ({prov.acquisition_time_source} {prov.acquisition_time})" if prov.acquisition_time else ""
    note = (
        f"a phase told apart by TriggerTime {trigger_time_ms:g} ms from the series' other phases, which share "
        f"its acquisition time{shared}: that time is not this phase's and what TriggerTime adds to it is not "
        "documented, so the delay after injection is unknown"
    )
    return replace(prov, trigger_time_ms=trigger_time_ms, delay_s=None, notes=[*prov.notes, note])


def _frame_views(ds: Any, frame_numbers: Sequence[int]) -> list[Any]:
    """The header as seen from each given frame: its per-frame functional groups are that frame's only."""
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence as DicomSequence

    per_frame = ds.get("PerFrameFunctionalGroupsSequence")
    if not per_frame:
        return [ds]
    views = []
    for number in dict.fromkeys(frame_numbers):
        if not 1 <= number <= len(per_frame):
            continue
        view = Dataset()
        view.update(ds)
        view.PerFrameFunctionalGroupsSequence = DicomSequence([per_frame[number - 1]])
        views.append(view)
    return views or [ds]


def sidecar_for(image: str | Path) -> Path | None:
    """The JSON sidecar of a NIfTI/NRRD image (``x.nii.gz`` -> ``x.json``), when it exists."""
    p = Path(image)
    name = p.name
    for suffix in (".nii.gz", ".nii", ".nrrd", ".nhdr", ".mha", ".mhd"):
        if name.lower().endswith(suffix):
            cand = p.with_name(name[: -len(suffix)] + ".json")
            return cand if cand.is_file() else None
    return None


def mr_provenance_from_sidecar(image: str | Path) -> MrProvenance:
    """Provenance from the JSON sidecar of a NIfTI/NRRD image (dcm2niix style), or ``source="none"``.

    Raises
    ------
    InputError
        When the sidecar exists but is not a JSON object.
    """
    side = sidecar_for(image)
    if side is None:
        return MrProvenance(
            source="none",
            notes=[f"{Path(image).name}: no DICOM headers and no JSON sidecar: contrast, timing and sequence unknown"],
        )
    try:
        data = json.loads(side.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{side}: not a readable JSON sidecar ({exc}); fix or remove it.") from exc
    if not isinstance(data, dict):
        raise InputError(f"{side}: the sidecar must be a JSON object of DICOM keywords; fix or remove it.")
    data, note = _bids_milliseconds(data)
    prov = _provenance([data], "sidecar")
    if note:
        prov.notes.append(note)
    return prov


def _bids_milliseconds(data: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    """A BIDS / dcm2niix sidecar states RepetitionTime, EchoTime and InversionTime in seconds: in ms.

    The sidecar is BIDS when it names dcm2niix (ConversionSoftware), carries BIDSVersion, or states a
    RepetitionTime below 1 (no MR sequence repeats in under 1 ms; in seconds every one does).
    """
    software = str(data.get("ConversionSoftware") or "").lower()
    tr = parse_float(data.get("RepetitionTime"))
    bids = "dcm2niix" in software or "BIDSVersion" in data or (tr is not None and tr < 1.0)
    keys = [k for k in ("RepetitionTime", "EchoTime", "InversionTime") if parse_float(data.get(k)) is not None]
    if not bids or not keys:
        return data, None
    out = dict(data)
    for k in keys:
        out[k] = float(parse_float(data[k]) or 0.0) * 1000.0
    return out, f"sidecar {', '.join(keys)} in seconds (BIDS / dcm2niix): reported in ms"


def mr_provenance(img: Volume) -> MrProvenance:
    """Provenance of an MR image: its DICOM headers, else the JSON sidecar of a NIfTI/NRRD file."""
    files = img.meta.get("files") or []
    if img.meta.get("format") == "dicom" and files:
        return mr_provenance_from_dicom(
            files, img.meta.get("frame_numbers"), trigger_time_ms=img.meta.get("phase_trigger_time_ms")
        )
    return mr_provenance_from_sidecar(img.source)

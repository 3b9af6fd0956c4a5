"""Dispatch: a path -> image Volume, or a segmentation path -> role layers.

Formats: NIfTI (.nii, .nii.gz), ITK (.nrrd, .seg.nrrd, .nha, .mha, .mhd), a
DICOM series folder (images), DICOM SEG and RTSTRUCT files (segmentations).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError, LabelError, ResourceLimitError, UsageError
from ..segmentation import ROLES, MaskLayer
from ..volume import Volume
from ._inflate import dcmread as bounded_dcmread
from .formats import RTSTRUCT_SOP_CLASS, SEGMENTATION_SOP_CLASSES, VOLUME_EXTENSIONS, file_format, volume_base_name
from .label_spec import LabelSpec
from .label_values import LABEL_ROUNDING_TOLERANCE, layers_from_label_map, present_label_values
from .role_decision import RoleDecision
from .role_patterns import role_of_mask_name
from .role_precedence import assign_roles

__all__ = [
    "RTSTRUCT_SOP_CLASS",
    "SEG_SOP_CLASSES",
    "load_image",
    "load_segmentation",
    "parse_seg_argument",
    "volume_grid",
]

logger = logging.getLogger(__name__)

#: DICOM SEG SOP classes (from the format table, :mod:`netlm_imaging.io.formats`).
SEG_SOP_CLASSES = {sop for sop, reader in SEGMENTATION_SOP_CLASSES.items() if reader == "seg"}
#: ``--seg segments=PATH``: a Couinaud map whose values 1..8 are segments 1..8 (TotalSegmentator liver_segments).
COUINAUD_ROLES = ("segments", "couinaud")
#: The warning of a label map read with the LiTS numbering because nothing gave its own (no ``--labels``, no
#: nnU-Net ``dataset.json`` in its folder or the folder above, no exporter's label table).
LITS_ASSUMED = (
    "{path}: no label numbering found for this label map (no --labels, no nnU-Net dataset.json in its folder or "
    "the folder above, no label table in or beside the file); read with the LiTS numbering 1 liver, 2 lesion: "
    "if the model numbers its labels otherwise, pass --labels liver=N,lesion=M"
)


@dataclass(frozen=True)
class _NrrdSegment:
    """A Slicer .seg.nrrd segment as the role assignment sees it."""

    number: int
    label: str
    code: tuple[str, str] | None
    meaning: str = ""
    #: no SegmentN_Name in the file: ``label`` is the ``Segment_N`` made up for messages (never judged by name)
    unnamed: bool = False


def _slicer_code(tags: str) -> tuple[tuple[str, str] | None, str]:
    """SegmentedPropertyType of a Slicer ``SegmentN_Tags`` TerminologyEntry (``...~SCT^10200004^Liver~...``).

    Examples
    --------
    >>> _slicer_code("TerminologyEntry:Segmentation category and type - 3D Slicer General Anatomy list"
    ...              "~SCT^123037004^Anatomical Structure~SCT^10200004^Liver~^^~Anatomic codes~^^~^^|")
    (('SCT', '10200004'), 'Liver')
    """
    for tag in str(tags or "").split("|"):
        key, _, value = tag.partition(":")
        if key.strip() != "TerminologyEntry":
            continue
        parts = value.split("~")
        if len(parts) < 3:
            return None, ""
        fields = parts[2].split("^")
        if len(fields) >= 2 and fields[0].strip() and fields[1].strip():
            return (fields[0].strip(), fields[1].strip()), (fields[2].strip() if len(fields) > 2 else "")
    return None, ""


def _suffix(p: Path) -> str:
    """The file's format suffix (for messages): a table suffix, else its last suffix."""
    name = p.name.lower()
    return next((s for s in (*VOLUME_EXTENSIONS, ".dcm") if name.endswith(s)), p.suffix.lower())


def _format_name(p: Path) -> str | None:
    fmt = file_format(p)
    return None if fmt is None else fmt.name


def _is_dicom_file(p: Path) -> bool:
    try:
        with p.open("rb") as fh:
            head = fh.read(132)
    except OSError:
        return False
    return len(head) == 132 and head[128:132] == b"DICM"


def parse_seg_argument(arg: str) -> tuple[str | None, Path]:
    """Split ``--seg`` values: ``PATH`` or ``ROLE=PATH``.

    Returns
    -------
    (role or None, Path)
    """
    if "=" in arg:
        role, _, path = arg.partition("=")
        role = role.strip().lower()
        if role in ROLES or role in COUINAUD_ROLES:
            return ("segments" if role in COUINAUD_ROLES else role), Path(path)
        if not Path(arg).exists():
            raise UsageError(
                f"--seg {arg}: unknown role {role!r}; use one of {', '.join((*ROLES, 'segments'))} or a plain path."
            )
    return None, Path(arg)


def load_image(
    path: str | Path,
    *,
    max_voxels: int | None = None,
    nonuniform: str = "error",
    series_uid: str | None = None,
) -> Volume:
    """Load the image to measure on.

    Parameters
    ----------
    path : str or Path
        NIfTI/NRRD/MHA file, or a DICOM series folder (or one file of it).
    max_voxels : int, optional
        Declared-size limit.
    nonuniform : {"error", "resample"}
        DICOM: what to do with missing slices / irregular slice steps.
    series_uid : str, optional
        DICOM: which series when the folder holds several.

    Returns
    -------
    Volume
    """
    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: image not found; check the path.")
    if p.is_dir() or _is_dicom_file(p):
        from .dicom_series import read_dicom_series

        return read_dicom_series(p, series_uid=series_uid, nonuniform=nonuniform, max_voxels=max_voxels)
    fmt = _format_name(p)
    if fmt == "nifti":
        from .nifti import read_nifti

        return read_nifti(p, max_voxels=max_voxels)
    if fmt == "itk":
        from .sitk_io import read_itk

        return read_itk(p, max_voxels=max_voxels)
    ext = _suffix(p)
    raise InputError(f"{p}: unknown image format {ext or '(no extension)'}; use NIfTI, NRRD, MHA or a DICOM folder.")


def volume_grid(path: str | Path, *, max_voxels: int | None = None) -> Volume:
    """The grid of a NIfTI / NRRD / MHA segmentation from its header alone: no voxel data is read.

    The grid its read gives (:func:`~netlm_imaging.io.nifti.nifti_grid`, :func:`~netlm_imaging.io.sitk_io.itk_grid`),
    as a pixel-less Volume for :meth:`~netlm_imaging.volume.Volume.same_grid`.
    """
    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: segmentation not found; check the path.")
    fmt = _format_name(p)
    if fmt == "nifti":
        from .nifti import nifti_grid

        return nifti_grid(p, max_voxels=max_voxels)
    if fmt == "itk":
        from .sitk_io import itk_grid

        return itk_grid(p, max_voxels=max_voxels)
    raise InputError(f"{p}: unknown segmentation format {_suffix(p) or '(no extension)'}; use NIfTI, NRRD or MHA.")


def _couinaud_layers(vol: Volume, p: Path) -> list[MaskLayer]:
    arr = np.asarray(vol.array)
    if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
        raise LabelError(f"{p}: Couinaud map contains NaN or inf; it must hold integers 0..8.")
    values = sorted(int(v) for v in np.unique(arr) if v != 0)
    bad = [v for v in values if not 1 <= v <= 8]
    if bad:
        raise LabelError(
            f"{p}: a Couinaud map (segments=PATH) holds values 1..8, found {bad[:10]}; map other numberings with "
            "--labels segment1=N,... and pass the file without segments=."
        )
    if not values:
        raise LabelError(f"{p}: the Couinaud segment map is empty.")
    return [MaskLayer(f"segment{v}", vol.with_array(arr == v), label=f"segment {v}", source=str(p)) for v in values]


def _binary_layer(vol: Volume, role: str, p: Path) -> MaskLayer:
    arr = np.asarray(vol.array)
    if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
        raise LabelError(f"{p}: mask contains NaN or inf; a mask must hold 0 and 1.")
    values = np.unique(arr)
    if arr.dtype.kind == "f" and values.size > 2:
        off = np.abs(values - np.round(values))
        if off.max() > LABEL_ROUNDING_TOLERANCE:  # a softmax / sigmoid channel: nonzero is nearly every voxel
            soft = values[off > 0]  # named: every value that is no integer, not the integers beside them
            raise LabelError(
                f"{p}: a {role} mask holds {soft.size} non-integer value(s) from {soft.min():.3g} to "
                f"{soft.max():.3g} (a probability or soft mask?), where a mask holds 0 and 1; threshold it "
                "first (e.g. probability >= 0.5) and pass the binary mask."
            )
    if values.size > 2 and role != "lesion":
        raise LabelError(
            f"{p}: a {role} mask must be binary but holds {values.size} values; pass it without {role}= and map "
            "labels with --labels."
        )
    # a vessel mask is named by its file (portal_vein.nii.gz: the portal vein), the other roles by the role
    label = (volume_base_name(p) or role) if role == "vessel" else role
    return MaskLayer(role, vol.with_array(arr != 0), label=label, source=str(p))


def _label_map_layers(
    vol: Volume, p: Path, spec: LabelSpec, role_log: list[RoleDecision] | None, label_notes: list[str] | None
) -> list[MaskLayer]:
    """A label map's role layers: by ``--labels`` values when given, else by its exporter's names, else LiTS.

    The names are a TotalSegmentator label table in the NIfTI header, or a Slicer color table /
    ITK-SNAP label description file named after the map (:mod:`netlm_imaging.io.label_tables`).
    The note of where they came from goes to ``label_notes`` when given, else with the layers.
    """
    if spec.user_given and any(isinstance(v, int) for vals in spec.mapping.values() for v in vals):
        return layers_from_label_map(vol, spec)  # --labels values always win
    from .label_tables import label_table_for, layers_from_label_table

    notes: list[str] = []
    table = label_table_for(p, notes=notes)
    for note in notes:
        logger.warning("%s", note)
    if table is None:
        named = None if spec.user_given else _mask_named_by_file(vol, p, notes)
        if named is not None:
            return [named]
        if not spec.user_given:  # the numbering is an assumption: a model trained otherwise reads swapped
            notes.append(LITS_ASSUMED.format(path=p))
            logger.info("%s", notes[-1])  # a report warning: the CLI prints it once
        return layers_from_label_map(vol, spec, notes=notes)
    return layers_from_label_table(vol, table, spec, log=role_log, notes=notes, source_notes=label_notes)


def _only_value(arr: np.ndarray) -> int | None:
    """The one non-zero value of a map (also saved as float), else None."""
    if arr.dtype.kind in "iub":
        values = present_label_values(arr)
        return values[0] if len(values) == 1 else None
    if arr.dtype.kind == "f":
        nonzero = arr[arr != 0]
        if nonzero.size == 0 or not np.all(nonzero == nonzero.flat[0]):
            return None
        v = float(nonzero.flat[0])
        return int(v) if v.is_integer() and v > 0 else None
    return None


def _mask_named_by_file(vol: Volume, p: Path, notes: list[str]) -> MaskLayer | None:
    """A 0/1 map named after its structure (``liver_tumor.nii.gz``, ``spleen.nii.gz``) passed without ``ROLE=``.

    It is the mask of the role its name gives, as in a study folder (docs/study_folders.md): read
    with the LiTS numbering its 1 would be the liver, TotalSegmentator's per-structure tumour, spleen
    or kidney masks taken for liver (a tumour of 0 mL). None for other names and other values.
    """
    role = role_of_mask_name(volume_base_name(p) or p.stem)
    arr = np.asarray(vol.array)
    value = _only_value(arr) if role is not None else None
    if role is None or value not in (1, 255):  # 255: image tools' masks; another lone value keeps the LiTS reading
        return None
    if value == 1:
        lits = "the liver of the LiTS numbering" if role != "liver" else "a LiTS map of a tumour-free liver"
    else:
        lits = f"a label map whose value {value} the LiTS numbering does not know"
    note = (
        f"{p}: read as the {role} mask its file name says (its only value is {value}), not as {lits}; pass --labels "
        "or --seg ROLE=PATH to read it otherwise"
    )
    logger.info(note)
    meta = {**vol.meta, "notes": [*notes, note], "named_mask": True}  # a mask: it declares no other role
    return MaskLayer(role, vol.with_array(arr == value, meta=meta), label=role, source=str(p))


def load_segmentation(
    arg: str | Path,
    reference: Volume,
    spec: LabelSpec,
    *,
    max_voxels: int | None = None,
    fractional_threshold: float = 0.5,
    role_log: list[RoleDecision] | None = None,
    scanned: Any = None,
    label_notes: list[str] | None = None,
) -> list[MaskLayer]:
    """Load one ``--seg`` argument into role layers (on their own grid for label maps).

    Parameters
    ----------
    arg : str or Path
        ``PATH`` (label map, DICOM SEG, RTSTRUCT) or ``ROLE=PATH`` (binary mask).
    reference : Volume
        The image; DICOM SEG / RTSTRUCT are placed on its grid.
    spec : LabelSpec
        Label value / name -> role mapping.
    max_voxels : int, optional
        Declared-size limit.
    fractional_threshold : float
        FRACTIONAL SEG: threshold of the binary view.
    role_log : list of RoleDecision, optional
        Collects the role decision of every named segment / ROI (DICOM SEG,
        RTSTRUCT, .seg.nrrd); the caller then checks the whole study with
        :func:`~netlm_imaging.io.role_checks.check_decisions`. Without it, a file
        whose named segments give no liver and no lesion is refused.
    scanned : pydicom.Dataset or PlainSeg, optional
        The file's header from the study folder scan (``DicomFileInfo.dataset``: a pydicom dataset,
        or the raw header of a plain BINARY SEG): a DICOM SEG is then not parsed a second time.
    label_notes : list of str, optional
        Gets one note per label map read with its exporter's names, saying where they came from
        (for the report's ``notes``); without it the note travels with the layers (``meta["notes"]``).

    Returns
    -------
    list of MaskLayer
    """
    role, p = parse_seg_argument(str(arg))
    if not p.exists():
        raise InputError(f"{p}: segmentation not found; check the path.")
    if p.is_dir():
        raise InputError(f"{p}: is a folder; --seg takes a file (label map, DICOM SEG or RTSTRUCT).")
    if scanned is not None or _is_dicom_file(p) or _suffix(p) == ".dcm":
        try:
            ds = scanned if scanned is not None else bounded_dcmread(str(p), stop_before_pixels=True)
        except ResourceLimitError:  # a deflate bomb or an oversized header: say so
            raise
        except Exception as exc:
            raise InputError(f"{p}: not a readable DICOM file ({type(exc).__name__}); re-export it.") from exc
        sop = str(getattr(ds, "SOPClassUID", ""))
        reader = SEGMENTATION_SOP_CLASSES.get(sop)
        if reader == "seg":
            from .dicom_seg import read_dicom_seg

            return read_dicom_seg(
                p,
                reference,
                spec,
                fractional_threshold=fractional_threshold,
                max_voxels=max_voxels,
                role_log=role_log,
                dataset=scanned,
            )
        if reader == "rtstruct":
            from .rtstruct import read_rtstruct

            return read_rtstruct(p, reference, spec, max_voxels=max_voxels, role_log=role_log)
        raise InputError(f"{p}: DICOM SOP class {sop or '(none)'} is not a segmentation; pass a SEG or RTSTRUCT.")
    fmt = _format_name(p)
    if fmt == "nifti":
        from .nifti import read_nifti

        vol = read_nifti(p, max_voxels=max_voxels, as_float=False)
        if role == "segments":
            return _couinaud_layers(vol, p)
        if role:
            return [_binary_layer(vol, role, p)]
        return _label_map_layers(vol, p, spec, role_log, label_notes)
    if fmt == "itk":
        from .sitk_io import read_itk_segments

        vol, segments = read_itk_segments(p, max_voxels=max_voxels)
        if role == "segments" and not segments:
            return _couinaud_layers(vol, p)
        if role:
            if segments:
                merged = np.zeros(vol.shape, dtype=bool)
                for s in segments:
                    merged |= s["mask"]
                vol = vol.with_array(merged)
            return [_binary_layer(vol, role, p)]
        if not segments:
            return _label_map_layers(vol, p, spec, role_log, label_notes)
        items = [
            _NrrdSegment(n + 1, str(s["name"]), *_slicer_code(s.get("tags", "")), unnamed=not s.get("named", True))
            for n, s in enumerate(segments)
        ]
        roles = assign_roles(items, spec, str(p), noun="segments", log=role_log)
        layers: list[MaskLayer] = []
        for item, s in zip(items, segments, strict=True):
            r = roles.get(item.number)
            if r is not None and r != "ignore":
                layers.append(MaskLayer(r, vol.with_array(s["mask"]), label=s["name"], source=str(p)))
        return layers
    ext = _suffix(p)
    if ext in (".npz", ".npy", ".pkl"):  # nnU-Net's --save_probabilities beside its prediction
        beside = next((q.name for q in p.parent.glob(f"{p.name[: -len(ext)]}.*") if volume_base_name(q)), None)
        raise InputError(
            f"{p}: a {ext} file (nnU-Net's softmax probabilities or their properties) is no segmentation; pass "
            f"the prediction it was saved with{f' ({beside})' if beside else ''}, a label map."
        )
    raise InputError(
        f"{p}: unknown segmentation format {ext or '(no extension)'}; use NIfTI, NRRD, DICOM SEG/RTSTRUCT."
    )

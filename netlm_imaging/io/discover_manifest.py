"""A study folder's manifest (``netlm.json`` / ``netlm.toml``): the inputs named, overriding discovery."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from ..errors import InputError
from ._dicom_common import scan_dicom_folder
from ._dicom_info import DicomFileInfo
from .dicom_series_groups import SeriesGroup, group_image_series
from .discover_choice import DiscoveredStudy, SegmentationCandidate, file_kind

__all__ = ["MANIFEST_NAMES", "from_manifest", "load_manifest"]

#: Manifest file names looked for in a study folder, in this order.
MANIFEST_NAMES = ("netlm.json", "netlm.toml")
_MANIFEST_KEYS = {"image", "segmentations", "labels", "pet", "modality", "clinical"}


def load_manifest(path: str | Path) -> dict[str, Any]:
    """Read and validate a study manifest (JSON or TOML).

    Parameters
    ----------
    path : str or pathlib.Path
        ``netlm.json`` / ``netlm.toml`` (any name; TOML when it ends in ``.toml``).

    Returns
    -------
    dict
        ``image`` (str), ``segmentations`` (list of str), optional ``labels``
        (str) and ``pet`` (str).

    Raises
    ------
    InputError
        Unreadable file, unknown keys, or values of the wrong type.
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{p}: cannot read the manifest ({type(exc).__name__}); check the file.") from None
    try:
        if p.suffix.lower() == ".toml":
            import tomllib

            data = tomllib.loads(text)
        else:
            data = json.loads(text)
    except ValueError as exc:
        kind = "TOML" if p.suffix.lower() == ".toml" else "JSON"
        raise InputError(f"{p}: manifest is not valid {kind} ({' '.join(str(exc).split())}); fix its syntax.") from None
    if not isinstance(data, dict):
        raise InputError(f"{p}: manifest must be an object with keys image, segmentations, labels, pet.")
    unknown = sorted(set(data) - _MANIFEST_KEYS)
    if unknown:
        raise InputError(
            f"{p}: unknown manifest key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(_MANIFEST_KEYS))}."
        )
    if not isinstance(data.get("image"), str) or not data["image"].strip():
        raise InputError(f'{p}: manifest needs "image": a path (file or DICOM folder) or a SeriesInstanceUID.')
    segs = data.get("segmentations", [])
    if isinstance(segs, str):
        segs = [segs]
    if not isinstance(segs, list) or not segs or not all(isinstance(s, str) and s.strip() for s in segs):
        raise InputError(f'{p}: manifest "segmentations" must be a non-empty list of paths or ROLE=PATH strings.')
    for key in ("labels", "pet", "modality", "clinical"):
        if key in data and not isinstance(data[key], str):
            raise InputError(f'{p}: manifest "{key}" must be a string, got {type(data[key]).__name__}.')
    return {
        "image": data["image"].strip(),
        "segmentations": [s.strip() for s in segs],
        **{k: data[k] for k in ("labels", "pet", "modality", "clinical") if k in data},
    }


_UID_RE = re.compile(r"^[0-9]+(\.[0-9]+)+$")


def _series_files(index: list[DicomFileInfo], uid: str, where: Path, key: str) -> tuple[SeriesGroup, list[Path]]:
    groups = group_image_series(index)
    for g in groups:
        if g.uid == uid:
            return g, [f.path for f in g.files]
    listing = "; ".join(g.summary() for g in groups) or "none"
    raise InputError(f'{where}: manifest "{key}" names series {uid}, not found in the folder; available: {listing}.')


def from_manifest(folder: Path, manifest_path: Path) -> DiscoveredStudy:
    """The inputs a manifest names, its paths relative to its folder, its UIDs read from ``folder``."""
    m = load_manifest(manifest_path)
    base = manifest_path.parent
    index: list[DicomFileInfo] = []

    def resolve(value: str, key: str) -> Path:
        p = Path(value)
        p = p if p.is_absolute() else base / p
        if not p.exists():
            raise InputError(f'{manifest_path}: manifest "{key}" path {value} does not exist; fix the manifest.')
        return p

    image_uid: str | None = None
    modality: str | None = None
    image_value = m["image"]
    if _UID_RE.match(image_value) and not (base / image_value).exists():
        index = scan_dicom_folder(folder)
        group, image_files = _series_files(index, image_value, manifest_path, "image")
        image_path, image_uid, modality = folder, group.uid, group.modality
    else:
        image_path = resolve(image_value, "image")
        image_files = [image_path] if image_path.is_file() else []
    segs = []
    for entry in m["segmentations"]:
        head, sep, tail = entry.partition("=")
        role, value = (head, tail) if sep and re.fullmatch(r"[A-Za-z0-9_]+", head) else (None, entry)
        p = resolve(value, "segmentations")
        segs.append(SegmentationCandidate(path=p, kind=file_kind(p), role=role or None))
    pet_files = None
    pet_uid = None
    if "pet" in m:
        if _UID_RE.match(m["pet"]) and not (base / m["pet"]).exists():
            index = index or scan_dicom_folder(folder)
            group, pet_files = _series_files(index, m["pet"], manifest_path, "pet")
            pet_uid = group.uid
        else:
            p = resolve(m["pet"], "pet")
            pet_files = [p] if p.is_file() else sorted(x for x in p.rglob("*") if x.is_file())
    clinical = resolve(m["clinical"], "clinical") if "clinical" in m else None
    return DiscoveredStudy(
        folder=folder,
        image_path=image_path,
        image_files=image_files,
        image_series_uid=image_uid,
        image_modality=m.get("modality", modality),
        segmentations=segs,
        pet_files=pet_files,
        pet_series_uid=pet_uid,
        labels=m.get("labels"),
        clinical_path=clinical,
        notes=[f"inputs taken from the manifest {manifest_path.name}"],
        source="manifest",
        dicom_index=index,
    )

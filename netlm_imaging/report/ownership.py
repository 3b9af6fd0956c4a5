"""Whose outputs an output folder holds: one study's report is not replaced by another study's.

``netlm analyze A --out DIR`` run again on ``A`` replaces ``DIR/report.json`` (the idempotent
re-run); run on another study ``B`` with the same ``--out`` it used to replace ``A``'s report, SR,
SEG and QA page without a word. :func:`check_same_study` is called by
:func:`~netlm_imaging.report.outputs.write_outputs` before anything is renamed into place and
refuses (:class:`~netlm_imaging.errors.OutputError`, exit 3) when the folder holds another study's
outputs, unless the caller asked to overwrite them (``--overwrite``).

A study is known by its StudyInstanceUID; a study without one (a NIfTI / NRRD image) by
``study.input_key``, a digest of its image file: the names of the file and of its folder, its size
and its first and last MiB (:func:`input_key`). It names no folder above the study, so a cohort
moved to another disk or mount is still the same study there, while the same CT copied into two
readers' folders (``readerA/ct.nii.gz``, ``readerB/ct.nii.gz``) is two. A report written by
version 0.1, whose ``input_key`` digested the image's resolved path (:func:`path_key`), is the
same study at that path. A report written before ``input_key`` existed is the same study when
its image name and grid are. With no report.json in the folder, the SR and SEG there tell their
StudyInstanceUID. A report.json that is not a netlm-imaging report is refused too: it is someone's
file, not this tool's to replace.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ..errors import OutputError

__all__ = ["StudyIdentity", "check_same_study", "input_key", "path_key"]

#: The DICOM files of a study's output set that name their StudyInstanceUID.
_DICOM_NAMES = ("report_sr.dcm", "derived_seg.dcm")


#: Bytes read from each end of the image file for :func:`input_key`.
_ENDS_BYTES = 1 << 20


def input_key(image: str | os.PathLike[str]) -> str:
    """16 hex digits that tell two UID-less studies apart, wherever their folder now lies.

    The SHA-256 of the image's folder name and file name, its size and its first and last
    :data:`_ENDS_BYTES` bytes (a compressed NIfTI differs there for any other image). A
    directory (a DICOM series without StudyInstanceUID) is known by its resolved path, as
    :func:`path_key`.

    Examples
    --------
    >>> import os, tempfile
    >>> root = tempfile.mkdtemp()
    >>> for folder in ("p1", "moved"):
    ...     os.makedirs(os.path.join(root, folder, "s01"))
    ...     with open(os.path.join(root, folder, "s01", "ct.nii"), "wb") as fh:
    ...         _ = fh.write(b"image bytes")
    >>> input_key(os.path.join(root, "p1", "s01", "ct.nii")) == input_key(os.path.join(root, "moved", "s01", "ct.nii"))
    True
    """
    path = Path(image)
    if not path.is_file():
        return path_key(path)
    digest = hashlib.sha256(f"{path.parent.name}/{path.name}".encode("utf-8", "surrogateescape"))
    size = path.stat().st_size
    digest.update(b"\0%d\0" % size)
    with path.open("rb") as fh:
        digest.update(fh.read(_ENDS_BYTES))
        if size > _ENDS_BYTES:
            fh.seek(max(_ENDS_BYTES, size - _ENDS_BYTES))
            digest.update(fh.read())
    return digest.hexdigest()[:16]


def path_key(image: str | os.PathLike[str]) -> str:
    """16 hex digits of the SHA-256 of ``image``'s resolved path (version 0.1's ``input_key``).

    Examples
    --------
    >>> len(path_key("/data/ct.nii.gz")), path_key("/data/ct.nii.gz") == path_key("/data/./ct.nii.gz")
    (16, True)
    """
    return hashlib.sha256(str(Path(image).resolve()).encode("utf-8", "surrogateescape")).hexdigest()[:16]


@dataclass(frozen=True)
class StudyIdentity:
    """What tells one study's outputs from another's (never patient names or IDs).

    Attributes
    ----------
    uid : str, optional
        StudyInstanceUID.
    key : str, optional
        ``study.input_key`` (UID-less studies).
    also : tuple of str
        Other keys of the same study (its :func:`path_key`, which version 0.1 wrote).
    image : str
        The image as the report names it (relative to its study folder) or as given.
    grid : tuple
        Shape and spacing (a report without ``input_key``).
    """

    uid: str | None
    key: str | None = None
    also: tuple[str, ...] = ()
    image: str = ""
    grid: tuple[Any, ...] = ()

    @classmethod
    def of(cls, study: Mapping[str, Any], image: str | None = None) -> StudyIdentity:
        """The identity of a report's ``study`` block (``image``: how to name it instead of its image_source)."""
        grid = study.get("grid") or {}
        return cls(
            uid=study.get("study_instance_uid") or None,
            key=study.get("input_key") or None,
            image=str(image or study.get("image_source") or "?"),
            grid=(tuple(grid.get("shape") or ()), tuple(grid.get("spacing_mm") or ())),
        )

    def same_as(self, other: StudyIdentity) -> bool:
        """True when both are the same study (see the module)."""
        if self.uid or other.uid:
            return self.uid == other.uid
        if self.key and other.key:
            return bool({self.key, *self.also} & {other.key, *other.also})
        return Path(self.image).name == Path(other.image).name and self.grid == other.grid

    def describe(self) -> str:
        """``StudyInstanceUID 1.2.3`` or ``image ct.nii.gz (no StudyInstanceUID)``."""
        return f"StudyInstanceUID {self.uid}" if self.uid else f"image {self.image} (no StudyInstanceUID)"


def _dicom_study_uid(path: Path) -> str | None:
    import pydicom

    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=["StudyInstanceUID"])
    except Exception:
        return None
    return str(ds.get("StudyInstanceUID", "")) or None


def _held(out: Path, json_name: str) -> StudyIdentity | str | None:
    """The identity of the outputs in ``out`` (a str: why report.json is no netlm report; None: none)."""
    path = out / json_name
    if path.is_file():
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            return f"its {json_name} is not a netlm-imaging report ({type(exc).__name__})"
        tool = data.get("tool") if isinstance(data, dict) else None
        if not isinstance(tool, dict) or tool.get("name") != "netlm-imaging" or not isinstance(data.get("study"), dict):
            return f"its {json_name} is not a netlm-imaging report"
        return StudyIdentity.of(data["study"])
    for name in _DICOM_NAMES:
        if (out / name).is_file() and (uid := _dicom_study_uid(out / name)):
            return StudyIdentity(uid=uid, image=name)
    return None


def check_same_study(
    out: Path, study: Mapping[str, Any], *, json_name: str = "report.json", image: str | None = None
) -> None:
    """Refuse to write one study's outputs over another study's.

    Parameters
    ----------
    out : pathlib.Path
        The output folder.
    study : mapping
        The new report's ``study`` block.
    json_name : str
        The report's file name in ``out``.
    image : str, optional
        How to name the new study's image in the message (its path as given).

    Raises
    ------
    OutputError
        ``out`` holds another study's outputs, or a report.json that is not this tool's.
    """
    held = _held(out, json_name)
    if held is None:
        return
    new = StudyIdentity.of(study, image)
    if new.key and image is not None:
        new = replace(new, also=(path_key(image),))
    fix = "nothing was written; choose another --out for this study, or add --overwrite to replace them"
    if isinstance(held, str):
        raise OutputError(f"{out}: {held}; this run is {new.describe()}; {fix}", path=str(out))
    if not held.same_as(new):
        raise OutputError(
            f"{out}: holds the outputs of another study ({held.describe()}), not of this run's "
            f"({new.describe()}); {fix}",
            path=str(out),
        )

"""The table of input formats: file suffix or DICOM SOP class -> which reader reads it.

:mod:`netlm_imaging.io.loader` (``--image`` / ``--seg``) and
:mod:`netlm_imaging.io.discover` (study folders) both consult this table, so a
new format is added here once (plus its reader module and the loader's call).

Examples
--------
>>> file_format("case01/CT.nii.gz").name, file_format("seg.seg.nrrd").kind
('nifti', 'NRRD')
>>> file_format("notes.txt") is None
True
>>> SEGMENTATION_SOP_CLASSES[RTSTRUCT_SOP_CLASS]
'rtstruct'
"""

from __future__ import annotations

import os
from dataclasses import dataclass

__all__ = [
    "FORMATS",
    "LABELMAP_SEG_SOP_CLASS",
    "RTSTRUCT_SOP_CLASS",
    "SEGMENTATION_SOP_CLASSES",
    "SEG_SOP_CLASS",
    "VOLUME_EXTENSIONS",
    "FileFormat",
    "file_format",
    "volume_base_name",
]

#: DICOM Segmentation Storage and Label Map Segmentation Storage.
SEG_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.66.4"
LABELMAP_SEG_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.66.7"
#: RT Structure Set Storage.
RTSTRUCT_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.481.3"
#: Segmentation SOP class -> reader: ``"seg"`` (io.dicom_seg) or ``"rtstruct"`` (io.rtstruct).
SEGMENTATION_SOP_CLASSES: dict[str, str] = {
    SEG_SOP_CLASS: "seg",
    LABELMAP_SEG_SOP_CLASS: "seg",
    RTSTRUCT_SOP_CLASS: "rtstruct",
}


@dataclass(frozen=True)
class FileFormat:
    """A volume file format.

    Attributes
    ----------
    name : {"nifti", "itk"}
        Reader: :mod:`netlm_imaging.io.nifti` (nibabel) or :mod:`netlm_imaging.io.sitk_io` (SimpleITK).
    kind : str
        How study discovery names the file (``NIFTI``, ``NRRD``, ``MHA``).
    suffixes : tuple of str
        Lower-case file name endings.
    """

    name: str
    kind: str
    suffixes: tuple[str, ...]


#: Volume formats, in the order study discovery tries their suffixes.
FORMATS: tuple[FileFormat, ...] = (
    FileFormat("nifti", "NIFTI", (".nii.gz", ".nii")),
    FileFormat("itk", "NRRD", (".seg.nrrd", ".nrrd", ".nhdr")),
    FileFormat("itk", "MHA", (".mha", ".mhd")),
)
#: Every volume file suffix (NIfTI / ITK), longest first within a format.
VOLUME_EXTENSIONS: tuple[str, ...] = tuple(s for f in FORMATS for s in f.suffixes)


def file_format(path: str | os.PathLike[str]) -> FileFormat | None:
    """The volume format of a file by its name (None: not a NIfTI / ITK file name)."""
    name = os.fspath(path).lower()
    for fmt in FORMATS:
        if name.endswith(fmt.suffixes):
            return fmt
    return None


def volume_base_name(path: str | os.PathLike[str]) -> str | None:
    """A volume file's name without its suffix, lower case (``liver_tumor`` of ``Liver_Tumor.nii.gz``).

    None when the name has no volume suffix (:data:`VOLUME_EXTENSIONS`).
    """
    name = os.path.basename(os.fspath(path)).lower()
    return next((name[: -len(ext)] for ext in VOLUME_EXTENSIONS if name.endswith(ext)), None)

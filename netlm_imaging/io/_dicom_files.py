"""The candidate files of a DICOM folder, and what their first bytes say.

One concept: walking a folder (or a list of files) for the files the header readers are
given (:func:`iter_candidate_files`), and deciding from a file's first bytes whether it is
DICOM (:func:`without_preamble`, :func:`_looks_like_dicom`).

Which files are skipped: hidden files and folders (``.DS_Store``, ``.git``), dangling symbolic
links and link cycles (with a note); and, by the header readers, a file that nothing says is
DICOM: no ``DICM`` marker at byte 128, no preamble-less group 0002/0008 start, no DICOM
extension (:data:`DICOM_SUFFIXES`) and no Part-10 file meta group at byte 132 (README.txt,
.json, images). A file that claims to be DICOM but cannot be read (a damaged ``DICM`` marker
before an intact file meta group) is refused as damaged (:func:`_damaged`), so that a damaged
slice never silently shortens a volume. Zero-byte desktop litter (``Thumbs.db``) is skipped;
any other zero-byte file is an interrupted copy. Files are opened read-only.
"""

from __future__ import annotations

import errno
import logging
import os
from collections.abc import Sequence
from pathlib import Path

from ..errors import DicomError, InputError

__all__ = ["DICOM_SUFFIXES", "iter_candidate_files", "without_preamble"]

logger = logging.getLogger(__name__)


#: File name extensions that say "this is a DICOM file".
DICOM_SUFFIXES = (".dcm", ".dicom", ".dic", ".ima")


def without_preamble(path: Path) -> bool:
    """Whether ``path`` is a DICOM dataset without the Part-10 preamble (read it with ``force=True``)."""
    try:
        return _looks_like_dicom(path)[1]
    except OSError:
        return False


def _looks_like_dicom(path: Path) -> tuple[bool, bool, str | None]:
    """(is DICOM, needs force, why a non-DICOM file must not be skipped) from the first bytes.

    A Part-10 file has ``DICM`` at byte 128. Some old exports omit the
    preamble; they start directly with a group 0x0002 or 0x0008 element.
    A file that is not recognised but has a DICOM file name, or whose bytes
    132.. still hold a Part-10 file meta element (group 0002 with a VR) after
    a damaged ``DICM`` marker, is a damaged DICOM file: the reason says so.
    """
    with path.open("rb") as fh:
        head = fh.read(140)
    if len(head) >= 132 and head[128:132] == b"DICM":
        return True, False, None
    if len(head) >= 8:
        group_le = int.from_bytes(head[0:2], "little")
        group_be = int.from_bytes(head[0:2], "big")
        if group_le in (0x0002, 0x0008) or group_be in (0x0002, 0x0008):
            return True, True, _damaged_reason(path, head)
    return False, False, _damaged_reason(path, head)


def _damaged_reason(path: Path, head: bytes) -> str | None:
    """Why an unreadable file is taken for a damaged DICOM file, or ``None`` (a non-DICOM file).

    Only the bytes count: a file named ``*.dcm`` that holds no DICOM structure
    (a renamed JPEG, a report) is junk and skipped; a file meta group after a
    damaged ``DICM`` marker is a damaged DICOM file.
    """
    vr = head[136:138]
    if len(head) >= 140 and head[132:134] == b"\x02\x00" and vr.isalpha() and vr.isupper():
        return "its bytes 132.. hold a DICOM file meta group but the 'DICM' marker at byte 128 is damaged"
    return None


def _damaged(path: Path, reason: str) -> DicomError:
    return DicomError(
        f"{path}: not a readable DICOM file although {reason}; the file is damaged and would silently be "
        "left out of its series: re-export it, or remove it from the folder."
    )


def _note(notes: list[str] | None, text: str) -> None:
    """A skipped-file note: logged as a warning and, when asked, collected for the report."""
    logger.warning("%s", text)
    if notes is not None:
        notes.append(text)


def _broken_link(path: Path) -> str | None:
    """Why a symbolic link cannot be read (dangling, or a cycle), or ``None``."""
    if not path.is_symlink():
        return None
    try:
        path.stat()
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "symbolic link cycle"
        return "dangling symbolic link (its target is gone)"
    return None


def _symlink_names(folder: str) -> frozenset[str] | None:
    """Names of the symbolic links in ``folder`` (from the directory listing, no call per file); ``None``: unknown.

    Only these can be broken links (:func:`_broken_link`); ``None`` (the listing failed): look at every file.
    """
    try:
        with os.scandir(folder) as entries:
            return frozenset(e.name for e in entries if e.is_symlink())
    except OSError:
        return None


#: Zero-byte files with these names or extensions are desktop / viewer litter, skipped with a note.
#: Any other zero-byte file (``IM0004``, ``slice.dcm``) is an interrupted copy and refused.
_LITTER_SUFFIXES = (".db", ".ini", ".txt", ".xml", ".htm", ".html", ".jpg", ".jpeg", ".png", ".pdf", ".log", ".json")


def _is_litter_name(path: Path) -> bool:
    suffix = path.suffix.lower()
    return suffix in _LITTER_SUFFIXES or path.name.lower() in ("thumbs.db", "desktop.ini", "dicomdir.bak")


def _unseen_folders(dirpath: str, dirnames: list[str], seen: set[str]) -> list[str]:
    """The visible sub-folders of ``dirpath`` whose real folder is not yet walked (sorted); adds them to ``seen``.

    A folder linked twice, or a link back to a folder above (a cycle), is walked once.
    """
    keep = []
    for d in sorted(dirnames):
        real = os.path.realpath(os.path.join(dirpath, d))
        if not d.startswith(".") and real not in seen:
            seen.add(real)
            keep.append(d)
    return keep


def iter_candidate_files(source: str | Path | Sequence[str | Path], notes: list[str] | None = None) -> list[Path]:
    """Files under a folder (recursive, sorted) or the given list of files.

    Hidden files and folders (``.DS_Store``, ``.git``) are skipped; so are
    dangling symbolic links and symbolic link cycles, with a note. Linked
    folders are followed (``ln -s ../ct ct``), each real folder once.

    Parameters
    ----------
    source : str, pathlib.Path or sequence of them
        A folder, one file, or several files.
    notes : list of str, optional
        Collects one line per skipped link.

    Returns
    -------
    list of pathlib.Path
        Regular files, in a deterministic order.

    Raises
    ------
    InputError
        If the source does not exist.
    """
    if isinstance(source, (str, os.PathLike)):
        root = Path(source)
        if not root.exists():
            raise InputError(f"{root}: no such file or folder; check the path.")
        if root.is_file():
            return [root]
        out: list[Path] = []
        seen = {
            os.path.realpath(root)
        }  # linked folders are followed (a study assembled with ln -s), each real one once
        for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
            dirnames[:] = _unseen_folders(dirpath, dirnames, seen)
            base = Path(dirpath)
            links = _symlink_names(dirpath) if filenames else frozenset()
            for name in sorted(filenames):
                p = base / name
                if name.startswith("."):
                    logger.info("skipping hidden file %s", p)
                    continue
                broken = _broken_link(p) if links is None or name in links else None
                if broken:
                    _note(notes, f"{p.relative_to(root)}: {broken}; skipped")
                    continue
                out.append(p)
        return out
    paths = [Path(p) for p in source]
    for p in paths:
        if not p.is_file():
            raise InputError(f"{p}: no such file; check the path.")
    return paths

"""Input fingerprint of one study, used by ``netlm batch --resume``.

A study is re-analysed only when its fingerprint changed. The fingerprint is a
SHA-256 over, in this order:

1. every regular file under the study folder (recursively, hidden files and
   folders excluded, and the batch output folder when it lies inside; folders
   linked into the study are followed, each real folder once): its
   path relative to the study folder (POSIX form), its size in bytes and the SHA-256 of its **content**;
2. the analysis options (canonical JSON, keys sorted);
3. the tool version (``netlm_imaging.__version__``);
4. the rules version: the SHA-256 of the rules file given with ``--rules``, or
   of the package's default rule files (``netlm_imaging/classify/*.toml``).

Content hashes are used instead of modification times on purpose: copying a
cohort to another disk (which resets mtimes) does not force a re-analysis,
while a segmentation edited in place is always detected, even when a tool
preserved its mtime. The cost is one sequential read of each study's files,
small next to the analysis itself (SHA-256 runs at several hundred MB/s).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from ..errors import InputError

__all__ = ["FINGERPRINT_VERSION", "file_digest", "rules_version", "study_files", "study_fingerprint"]

logger = logging.getLogger(__name__)

#: Bumped when the fingerprint recipe changes (it is hashed in, so old reports are redone).
FINGERPRINT_VERSION = "1"

_CHUNK_BYTES = 1 << 20


def file_digest(path: str | os.PathLike[str]) -> str:
    """SHA-256 hex digest of a file's content, read in 1 MiB chunks.

    Parameters
    ----------
    path : path-like
        The file.

    Returns
    -------
    str
        64 hexadecimal characters.
    """
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK_BYTES):
            h.update(chunk)
    return h.hexdigest()


def study_files(study: str | os.PathLike[str], exclude: Iterable[str | os.PathLike[str]] = ()) -> list[Path]:
    """Regular files of a study (a folder, searched recursively, or a single file), sorted.

    Hidden files and folders (name starting with ``.``) are ignored, so
    temporary files of an interrupted atomic write never change a fingerprint;
    so are the ``exclude`` folders (the batch output folder when it lies inside
    the study: its own outputs are not the study's inputs).

    Parameters
    ----------
    study : path-like
        Study folder or file.
    exclude : iterable of path-like
        Folders whose files are not the study's.

    Returns
    -------
    list of pathlib.Path
        Files sorted by their relative POSIX path.

    Raises
    ------
    InputError
        If ``study`` does not exist.
    """
    root = Path(study)
    if root.is_file():
        return [root]
    if not root.is_dir():
        windows = "\\" in str(root) or re.search(r"(^|/)[A-Za-z]:($|[\\/])", str(root)) is not None
        hint = " (a Windows path: give the folder relative to the cohort CSV)" if windows else ""
        raise InputError(f"{root}: study folder not found{hint}; check the cohort listing or the path")
    skip = {os.path.realpath(e) for e in exclude}
    seen = {os.path.realpath(root)}  # linked folders are followed (a series linked into the study), cycles not
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        keep = []
        for d in sorted(dirnames):
            real = os.path.realpath(os.path.join(dirpath, d))
            if not d.startswith(".") and real not in skip and real not in seen:
                seen.add(real)
                keep.append(d)
        dirnames[:] = keep
        found.extend(Path(dirpath) / f for f in filenames if not f.startswith("."))
    return sorted((p for p in found if p.is_file()), key=lambda p: p.relative_to(root).as_posix())


def rules_version(rules: str | os.PathLike[str] | None = None) -> str:
    """SHA-256 of the rules in force: the given rules file, or the package's default rule files.

    Parameters
    ----------
    rules : path-like, optional
        A ``--rules`` file.

    Returns
    -------
    str
        Hex digest (the digest of nothing when the package ships no rule file).

    Raises
    ------
    InputError
        If ``rules`` is given and cannot be read.
    """
    h = hashlib.sha256()
    if rules is not None:
        try:
            h.update(Path(rules).read_bytes())
        except OSError as exc:
            raise InputError(f"{rules}: cannot read the rules file ({exc.strerror}); check the --rules path") from None
        return h.hexdigest()
    pkg = Path(__file__).resolve().parents[1] / "classify"
    for p in sorted(pkg.glob("*.toml")):
        h.update(p.name.encode())
        h.update(p.read_bytes())
    return h.hexdigest()


def _canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def study_fingerprint(
    study: str | os.PathLike[str],
    options: Mapping[str, Any],
    *,
    tool_version: str,
    rules: str | os.PathLike[str] | None = None,
    extra_files: Iterable[str | os.PathLike[str]] = (),
    exclude: Iterable[str | os.PathLike[str]] = (),
) -> str:
    """Fingerprint of one study's inputs and of everything that changes its result.

    Parameters
    ----------
    study : path-like
        Study folder (or single file).
    options : mapping
        Analysis options that change results (JSON-serialisable; clinical
        values from a cohort CSV belong here too).
    tool_version : str
        ``netlm_imaging.__version__``.
    rules : path-like, optional
        ``--rules`` file; default rules when None.
    extra_files : iterable of path-like
        Other input files outside the study folder (hashed by content).
    exclude : iterable of path-like
        Folders inside the study that are not its inputs (:func:`study_files`).

    Returns
    -------
    str
        ``"sha256:<hex>"``.
    """
    root = Path(study)
    h = hashlib.sha256()
    h.update(f"netlm-fingerprint-{FINGERPRINT_VERSION}\n".encode())
    for p in study_files(root, exclude):
        rel = p.name if root.is_file() else p.relative_to(root).as_posix()
        # a name's bytes as they are on disk (one not UTF-8, unpacked from a Windows zip, is no error)
        h.update(f"file {rel} {p.stat().st_size} {file_digest(p)}\n".encode("utf-8", "surrogateescape"))
    for extra in extra_files:
        h.update(f"extra {Path(extra).name} {file_digest(extra)}\n".encode("utf-8", "surrogateescape"))
    h.update(f"options {_canonical(dict(options))}\n".encode())
    h.update(f"tool {tool_version}\n".encode())
    h.update(f"rules {rules_version(rules)}\n".encode())
    digest = h.hexdigest()
    logger.debug("fingerprint of %s: %s", root.name, digest)
    return f"sha256:{digest}"

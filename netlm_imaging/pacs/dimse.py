"""Classic DICOM networking (DIMSE) with pynetdicom: C-FIND, C-GET / C-MOVE, C-STORE.

This module is the study's round trip and the names callers import; each step is its own module: the
association :mod:`.dimse_assoc`, the C-FIND of the study :mod:`.dimse_find`, the C-GET / C-MOVE retrieval
:mod:`.dimse_retrieve` (the series asked again after an incomplete one :mod:`.dimse_series`), the C-STORE
SCP writing what arrives :mod:`.dimse_scp`, the C-STORE push :mod:`.dimse_store`, the status categories and
retries :mod:`.dimse_status`.

``netlm pacs --dimse HOST:PORT --called-ae AE --study UID [--push]``:

1. C-FIND (Study Root, STUDY level) checks that the study exists;
2. the instances are retrieved to a temporary folder, one file per instance as
   it arrives (never the whole study in memory): C-GET on the same association
   (default), or C-MOVE to a C-STORE SCP started here on ``--port`` (the PACS
   must know our AE title, or the one given with ``--move-ae``, with this
   host and port as a destination);
3. the study is analysed (the tool's own SR / SEG in the study are ignored);
4. with ``--push``, the SR and the derived SEG it references are C-STOREd to
   the PACS with the source Patient and Study modules. Their UIDs derive from
   the measured content, so pushing again stores nothing new.

Every message names ``HOST:PORT`` and the AE titles only.
"""

from __future__ import annotations

import os
from typing import Any

from ..errors import InputError
from .common import PacsResult, check_uid, retrieve_analyze_push
from .dimse_assoc import DEFAULT_CALLING_AE, DEFAULT_TIMEOUT_S, DimseEndpoint, parse_address, with_rules
from .dimse_assoc import associate as _associate  # noqa: F401  (tests open an association with dimse._associate)
from .dimse_assoc import new_ae as _ae  # noqa: F401  (and dimse._ae)
from .dimse_find import find_study
from .dimse_retrieve import retrieve_study
from .dimse_scp import storage_handler
from .dimse_store import store_files

__all__ = [
    "DEFAULT_CALLING_AE",
    "DEFAULT_TIMEOUT_S",
    "DimseEndpoint",
    "analyze_dimse_study",
    "find_study",
    "parse_address",
    "retrieve_study",
    "storage_handler",
    "store_files",
]


def analyze_dimse_study(
    ep: DimseEndpoint,
    study_uid: str,
    *,
    out_dir: str | os.PathLike[str] | None = None,
    push: bool = False,
    method: str = "get",
    move_port: int | None = None,
    bind: str = "0.0.0.0",
    labels: str | None = None,
    rules: str | None = None,
    options: Any = None,
    overwrite: bool = False,
) -> PacsResult:
    """C-FIND, retrieve (C-GET / C-MOVE), analyse, write outputs, optionally C-STORE SR + SEG back.

    Parameters
    ----------
    ep : DimseEndpoint
        The PACS.
    study_uid : str
        Study Instance UID.
    out_dir : path-like, optional
        ``report.json``, ``report_sr.dcm`` and ``derived_seg.dcm`` (de-identified
        unless ``options.include_identifiers``).
    push : bool
        C-STORE the SR and SEG (with the source Patient / Study modules) back.
    method, move_port, bind
        As for :func:`retrieve_study`.
    labels, rules, options
        As for :func:`netlm_imaging.api.analyze_with_context`.
    overwrite : bool
        Replace another study's outputs found in ``out_dir`` (off: refused, exit 3).

    Returns
    -------
    PacsResult

    Raises
    ------
    InputError
        Unknown study, network or analysis failure (one line naming the PACS).
    """
    check_uid(study_uid)
    ep = with_rules(ep, rules)  # how long to wait for a PACS refusing transiently, or indexing
    if not find_study(ep, study_uid):
        raise InputError(f"{ep.name}: study {study_uid} not found (C-FIND); check the Study Instance UID")
    return retrieve_analyze_push(
        lambda folder: retrieve_study(ep, study_uid, folder, method=method, move_port=move_port, bind=bind),
        lambda paths: store_files(ep, paths),
        f"dicom://{ep.name}/studies/{study_uid}",
        out_dir=out_dir,
        push=push,
        labels=labels,
        rules=rules,
        options=options,
        overwrite=overwrite,
    )

"""A C-GET / C-MOVE of a study that came incomplete: ask again for the series that did not, one by one.

A PACS may end a study retrieval at its first failed sub-operation (Orthanc does), or fail one series (kept on
an archive tier, a screenshot in a syntax it cannot send us). Retrieving the whole study again would bring the
same failure and every instance already here again: the study's instances are listed (C-FIND, IMAGE level),
and only the series holding instances that did not arrive are retrieved again, at SERIES level, on the same
association. Which series came is logged. What is still missing is accepted, named in a warning, only when
none of it is measured (images, SEG, RTSTRUCT); otherwise the retrieval stays an error naming those series.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

from ..errors import InputError
from .contexts import measured_classes
from .dimse_status import category

__all__ = ["Listed", "retrieve_missing_series", "study_instances"]

logger = logging.getLogger(__name__)


class Listed(NamedTuple):
    """One instance of the study as the PACS lists it."""

    series: str
    sop_class: str
    modality: str


def study_instances(find: Callable[[Any], Iterable[tuple[Any, Any]]], study_uid: str) -> dict[str, Listed] | None:
    """C-FIND (IMAGE level) of the study's instances: SOP Instance UID -> :class:`Listed`.

    Parameters
    ----------
    find : callable
        ``find(identifier)`` sends a C-FIND (Study Root) and yields its ``(status, identifier)`` answers.
    study_uid : str
        Study Instance UID.

    Returns
    -------
    dict or None
        None when the PACS does not answer the query in full (a failure status, no status).
    """
    from pydicom.dataset import Dataset

    q = Dataset()
    q.QueryRetrieveLevel = "IMAGE"
    q.StudyInstanceUID = study_uid
    q.SeriesInstanceUID = q.SOPInstanceUID = q.SOPClassUID = q.Modality = ""
    listing: dict[str, Listed] = {}
    for status, ident in find(q):
        code = int(status.Status) if status and "Status" in status else -1
        if code in (0xFF00, 0xFF01) and ident is not None:
            sop = str(getattr(ident, "SOPInstanceUID", "") or "")
            if sop:
                listing[sop] = Listed(
                    str(getattr(ident, "SeriesInstanceUID", "") or ""),
                    str(getattr(ident, "SOPClassUID", "") or ""),
                    str(getattr(ident, "Modality", "") or ""),
                )
        elif code != 0x0000 and category(code) != "Warning":
            return None
    return listing


def _series_name(series: str, listed: list[Listed]) -> str:
    modalities = sorted({x.modality for x in listed if x.modality})
    return f"series {series}" + (f" ({', '.join(modalities)})" if modalities else "")


def retrieve_missing_series(
    where: str,
    study_uid: str,
    method: str,
    incomplete: InputError,
    received: Callable[[], set[str]],
    find: Callable[[Any], Iterable[tuple[Any, Any]]] | None,
    retrieve_series: Callable[[str], Iterable[tuple[Any, Any]]],
) -> None:
    """After a study C-GET / C-MOVE with failed sub-operations: retrieve again, series by series, the series
    holding instances that did not arrive, and log which came.

    Parameters
    ----------
    where : str
        The PACS, for messages (``AE@host:port``).
    study_uid : str
        Study Instance UID.
    method : {"get", "move"}
        How the study was retrieved (named in messages).
    incomplete : InputError
        The error of the study retrieval, raised (completed with what was asked again) when measured instances
        are still missing or the study cannot be listed.
    received : callable
        ``received()``: the SOP Instance UIDs received so far.
    find : callable or None
        ``find(identifier)``: a C-FIND on the association (None: the PACS accepted no C-FIND context).
    retrieve_series : callable
        ``retrieve_series(series_uid)``: a C-GET / C-MOVE at SERIES level, yielding its ``(status, identifier)``.

    Raises
    ------
    InputError
        ``incomplete``, when the study cannot be listed, a series retrieval gets no answer, or an instance of a
        measured class (or of no class given) is still missing.
    """
    from pydicom.uid import UID

    what = f"C-{method.upper()}"
    listing = study_instances(find, study_uid) if find is not None else None
    if not listing:
        raise incomplete
    have = received()
    missing = {sop: x for sop, x in listing.items() if sop not in have}
    by_series: dict[str, list[str]] = {}
    for sop, x in missing.items():
        if x.series:
            by_series.setdefault(x.series, []).append(sop)
    came: list[str] = []
    for series in sorted(by_series):
        for status, _ in retrieve_series(series):
            if not status or "Status" not in status:
                raise incomplete
        now = received()
        got = sum(sop in now for sop in by_series[series])
        name = _series_name(series, [missing[s] for s in by_series[series]])
        came.append(f"{name}: {got} of {len(by_series[series])} instance(s) came")
    arrived = received()
    still = {sop: x for sop, x in missing.items() if sop not in arrived}
    asked = f"asked again series by series ({what} at SERIES level): {'; '.join(came)}" if came else ""
    if came:
        logger.warning("%s: the %s of study %s was incomplete; %s", where, what, study_uid, asked)
    measured = set(measured_classes())
    if not missing or any(x.sop_class in measured or not x.sop_class for x in still.values()):
        if asked:
            incomplete.args = (f"{incomplete}; {asked}",)
        raise incomplete
    if still:
        classes = sorted({x.sop_class for x in still.values()})
        how = "--retrieve move takes every one" if method == "get" else "check the PACS log"
        logger.warning(
            "%s: %d instance(s) of study %s not retrieved (%s): the PACS could not send them on our %s (a SOP "
            "class or transfer syntax not offered); nothing measured is in them (%s)",
            where,
            len(still),
            study_uid,
            ", ".join(UID(c).name for c in classes),
            what,
            how,
        )

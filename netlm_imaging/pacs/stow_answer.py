"""What a STOW-RS answer (PS3.18 10.5.3, Store Instances Response Module) says of the objects sent.

The answer lists each object the server stored in its Referenced SOP Sequence (0008,1199) and each it
refused in its Failed SOP Sequence (0008,1198), with a Failure Reason (0008,1197) from the C-STORE status
codes (0xA7xx out of resources, 0xA9xx data set does not match SOP class, 0xC000 cannot understand,
0x0110 processing failure ...). A refusal is said as the C-STORE push says it (:func:`.common.push_state`):
every refused object with its modality, UID and reason, and what the PACS did store.

Examples
--------
>>> from pydicom import Dataset
>>> sr = Dataset()
>>> sr.Modality, sr.SOPClassUID, sr.SOPInstanceUID = "SR", "1.2.840.10008.5.1.4.1.1.88.34", "1.2.3.4"
>>> item = Dataset()
>>> item.ReferencedSOPClassUID, item.ReferencedSOPInstanceUID, item.FailureReason = sr.SOPClassUID, "1.2.3.4", 0xC000
>>> answer = Dataset()
>>> answer.FailedSOPSequence = [item]
>>> [how for _, how in read_stow_answer(answer, [sr]).refused]
['(1.2.3.4) refused with 0xC000 (Cannot Understand)']
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..errors import InputError
from .common import push_state

__all__ = ["StowAnswer", "answer_body", "read_stow_answer", "refusal"]


@dataclass
class StowAnswer:
    """The objects sent, as a STOW-RS answer names them.

    Attributes
    ----------
    stored : list of Dataset
        Named in the Referenced SOP Sequence.
    refused : list of (Dataset, str)
        Named in the Failed SOP Sequence, with how: ``(UID) refused with 0xA900 (...)``.
    unnamed : list of Dataset
        Named in neither (Orthanc 1.10's DICOMweb plugin 1.7 answers both sequences empty).
    strangers : list of str
        The UIDs of refused objects that were not sent (``""`` when the answer names none).
    """

    stored: list[Any] = field(default_factory=list)
    refused: list[tuple[Any, str]] = field(default_factory=list)
    unnamed: list[Any] = field(default_factory=list)
    strangers: list[str] = field(default_factory=list)


def _how(item: Any) -> str:
    from .dimse_status import describe

    uid = str(getattr(item, "ReferencedSOPInstanceUID", ""))
    reason = getattr(item, "FailureReason", None)
    if reason is None or reason == "":
        return f"({uid}) refused (no failure reason given)"
    return f"({uid}) refused with {describe(int(reason), 'store')}"


def answer_body(http: Any) -> Any:
    """The Store Instances Response of an HTTP answer (a 409's, which dicomweb-client does not read); None
    when its body is not DICOM JSON.

    Parameters
    ----------
    http : requests.Response or None
        The answer.

    Returns
    -------
    Dataset or None
    """
    import pydicom

    media = str(getattr(http, "headers", {}).get("content-type", "")).split(";")[0].strip().lower()
    if http is None or media not in ("application/dicom+json", "application/json"):
        return None
    try:
        return pydicom.Dataset.from_json(http.json())
    except (ValueError, TypeError, KeyError, AttributeError):
        return None


def read_stow_answer(response: Any, datasets: list[Any]) -> StowAnswer:
    """Sort ``datasets`` by what the STOW-RS ``response`` says of each.

    Parameters
    ----------
    response : Dataset or None
        The Store Instances Response (``DICOMwebClient.store_instances``' answer).
    datasets : list of Dataset
        The objects sent.

    Returns
    -------
    StowAnswer
        In the order sent; an object both refused and stored counts as refused.
    """

    def named(keyword: str) -> list[Any]:
        return list(getattr(response, keyword, None) or []) if response is not None else []

    failed = {str(getattr(item, "ReferencedSOPInstanceUID", "")): item for item in named("FailedSOPSequence")}
    referenced = {str(getattr(item, "ReferencedSOPInstanceUID", "")) for item in named("ReferencedSOPSequence")}
    answer = StowAnswer()
    for ds in datasets:
        uid = str(ds.SOPInstanceUID)
        if uid in failed:
            answer.refused.append((ds, _how(failed[uid])))
        elif uid in referenced:
            answer.stored.append(ds)
        else:
            answer.unnamed.append(ds)
    sent = {str(ds.SOPInstanceUID) for ds in datasets}
    answer.strangers = [uid for uid in failed if uid not in sent]
    return answer


def refusal(url: str, answer: StowAnswer, held: Callable[[Any], bool | None]) -> InputError | None:
    """The one line for an answer that refuses objects sent; None when it refuses none of them.

    Parameters
    ----------
    url : str
        The server's DICOMweb root (no credentials).
    answer : StowAnswer
        :func:`read_stow_answer`'s.
    held : callable
        ``held(ds)``: whether the server holds an object the answer does not name (None: cannot say).

    Returns
    -------
    InputError or None
        E.g. ``URL: STOW-RS of the results: SEG stored (UID), SR (UID) refused with 0xA900 (...): only the
        SR is missing in the PACS; check the PACS log``.
    """
    if not answer.refused:
        return None
    stored, failed = list(answer.stored), list(answer.refused)
    for ds in answer.unnamed:
        is_held = held(ds)
        if is_held:
            stored.append(ds)
        else:
            not_held = " and not held" if is_held is False else ""
            failed.append((ds, f"({ds.SOPInstanceUID}) not named in the answer{not_held}"))
    text = f"{url}: STOW-RS of the results: {push_state(stored, failed, [])}"
    if answer.strangers:
        uids = ", ".join(uid or "no UID" for uid in answer.strangers)
        text += f"; the answer also refuses objects not sent ({uids})"
    return InputError(text + "; check the PACS log")

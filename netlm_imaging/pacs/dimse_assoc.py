"""The association with a DIMSE peer: its address and AE titles, the association itself and what its
refusal means, the query identifier and the timeout messages (used by :mod:`.dimse` and :mod:`.listener`).

An A-ASSOCIATE-RJ is named as the PACS gave it (PS3.8 9.3.4): a transient rejection (its association limit
reached) is asked again after the rules' pauses (:func:`.dimse_status.with_retries`), a permanent one is
raised at once with the option to check (``--called-ae``, ``--calling-ae``).

Examples
--------
>>> parse_address("pacs.example.org:104")
('pacs.example.org', 104)
>>> DimseEndpoint("127.0.0.1", 104, "ORTHANC").name
'ORTHANC@127.0.0.1:104'
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from ..errors import InputError, UsageError
from .common import check_timeout, held_pauses
from .dimse_status import Transient, retry_pauses, with_retries

__all__ = [
    "DEFAULT_CALLING_AE",
    "DEFAULT_TIMEOUT_S",
    "FIND",
    "GET",
    "MOVE",
    "VERIFICATION",
    "DimseEndpoint",
    "associate",
    "new_ae",
    "parse_address",
    "query",
    "require_context",
    "silent",
    "syntax_names",
    "timeout_error",
    "with_rules",
]

#: Study Root Query/Retrieve Information Model SOP classes (PS3.4 C.6.2).
FIND = "1.2.840.10008.5.1.4.1.2.2.1"
MOVE = "1.2.840.10008.5.1.4.1.2.2.2"
GET = "1.2.840.10008.5.1.4.1.2.2.3"
#: Verification SOP class (C-ECHO).
VERIFICATION = "1.2.840.10008.1.1"
#: Our AE title when none is given.
DEFAULT_CALLING_AE = "NETLM"
#: Seconds to wait for each answer of the PACS (association, each DIMSE message, the network) by default.
DEFAULT_TIMEOUT_S = 60.0


def parse_address(text: str, option: str = "--dimse") -> tuple[str, int]:
    """``HOST:PORT`` -> (host, port).

    Raises
    ------
    UsageError
        Not ``HOST:PORT`` with a port in 1..65535.
    """
    host, sep, port = str(text).rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise UsageError(f"{option} {text}: give the PACS DICOM address as HOST:PORT, e.g. pacs.example.org:104")
    return host, int(port)


def _check_ae(title: str, option: str) -> str:
    t = str(title)
    if not 0 < len(t.strip()) <= 16 or "\\" in t or any(ord(c) < 32 for c in t):
        raise UsageError(f"{option} {t!r}: an AE title is 1 to 16 characters without backslash or control characters")
    return t.strip()


@dataclass(frozen=True)
class DimseEndpoint:
    """A remote DICOM application entity and the AE title we call it with."""

    host: str
    port: int
    called_ae: str
    calling_ae: str = DEFAULT_CALLING_AE
    #: The AE title a C-MOVE sends the study to (default :attr:`calling_ae`): some PACS register
    #: the C-STORE SCP of a workstation under another title than the one it queries with.
    move_ae: str | None = None
    #: Seconds to wait for the association, for each DIMSE message and on the network.
    timeout_s: float = DEFAULT_TIMEOUT_S
    #: Pauses (s) before each new try after a transient refusal (rules key ``pacs.transient_retry_pauses_s``).
    retry_pauses_s: tuple[float, ...] = field(default_factory=retry_pauses)
    #: After a C-STORE, the pauses (s) before asking again whether the PACS holds the object (rules key
    #: ``pacs.held_retry_pauses_s``).
    held_pauses_s: tuple[float, ...] = field(default_factory=held_pauses)

    def __post_init__(self) -> None:
        _check_ae(self.called_ae, "--called-ae")
        _check_ae(self.calling_ae, "--calling-ae")
        if self.move_ae is not None:
            _check_ae(self.move_ae, "--move-ae")
        check_timeout(self.timeout_s)

    @property
    def move_destination(self) -> str:
        """The C-MOVE destination AE title: :attr:`move_ae`, else :attr:`calling_ae`."""
        return (self.move_ae or self.calling_ae).strip()

    @property
    def name(self) -> str:
        """``AE@host:port`` for messages."""
        return f"{self.called_ae}@{self.host}:{self.port}"


def with_rules(ep: DimseEndpoint, rules: Any = None) -> DimseEndpoint:
    """``ep`` with the pauses of a user rules file: ``pacs.transient_retry_pauses_s`` and ``pacs.held_retry_pauses_s``.

    Parameters
    ----------
    ep : DimseEndpoint
        The PACS.
    rules : path, mapping or None
        A user rules file (``--rules``); None: ``ep`` unchanged (the shipped rules' pauses).

    Returns
    -------
    DimseEndpoint
    """
    if rules is None:
        return ep
    return replace(ep, retry_pauses_s=retry_pauses(rules), held_pauses_s=held_pauses(rules))


def associate(ae: Any, ep: DimseEndpoint, **kwargs: Any) -> Any:
    """An established association with ``ep``, asked again after each pause of ``ep.retry_pauses_s`` while the
    PACS rejects it transiently (a permanent rejection is raised at once)."""
    return with_retries(lambda: _associate_once(ae, ep, **kwargs), ep.retry_pauses_s)


def _associate_once(ae: Any, ep: DimseEndpoint, **kwargs: Any) -> Any:
    from pynetdicom import evt
    from pynetdicom.pdu import A_ASSOCIATE_AC, A_ASSOCIATE_RJ

    reasons: list[str] = []
    connected: list[bool] = []
    what = kwargs.pop("what", "")

    transient: list[bool] = []

    def on_pdu(event: Any) -> None:
        if isinstance(event.pdu, A_ASSOCIATE_RJ):
            transient.append(event.pdu.result == 2 or event.pdu.source == 3)
            try:
                reasons.append(str(event.pdu.reason_str))
            except ValueError:  # a reason code the standard does not define
                reasons.append(f"reason code {event.pdu.reason_diagnostic}")
        elif isinstance(event.pdu, A_ASSOCIATE_AC):
            reasons.append("accepted")

    def on_open(event: Any) -> None:
        connected.append(True)

    handlers = [*kwargs.pop("evt_handlers", []), (evt.EVT_PDU_RECV, on_pdu), (evt.EVT_CONN_OPEN, on_open)]
    started = time.monotonic()
    assoc = ae.associate(ep.host, ep.port, ae_title=ep.called_ae, evt_handlers=handlers, **kwargs)
    if assoc.is_established:
        assoc.unbind(evt.EVT_PDU_RECV, on_pdu)
        assoc.unbind(evt.EVT_CONN_OPEN, on_open)
        return assoc
    # an A-ASSOCIATE-RJ that arrived is a rejection even when the peer closed the socket at once and
    # pynetdicom recorded an abort (seen with Orthanc under load)
    if assoc.is_rejected or any(r != "accepted" for r in reasons):
        reason = next((r for r in reasons if r != "accepted"), "no reason given")
        if any(transient):  # PS3.8 9.3.4: rejected-transient; the provider's congestion or association limit
            fix = (
                "it takes no more associations now (busy, or its limit of simultaneous associations is reached); "
                "retry later, or ask its administrator to raise the limit"
                + (f" for AE {ep.calling_ae!r}" if "limit" in reason else "")
            )
            raise Transient(f"{ep.name}: the PACS rejected the association ({reason}, transient): {fix}")
        if "Called AE" in reason:
            fix = f"{ep.called_ae!r} is not the PACS's AE title: check --called-ae"
        else:
            fix = (
                f"it does not know our AE title {ep.calling_ae!r} (or not from this host): register it in the PACS "
                "(Orthanc: DicomModalities) or give a registered one with --calling-ae; check --called-ae"
            )
        raise InputError(f"{ep.name}: the PACS rejected the association ({reason}): {fix}")
    if "accepted" in reasons:  # pynetdicom aborts an association whose every presentation context was rejected
        offered = dict.fromkeys(str(ts) for cx in ae.requested_contexts for ts in cx.transfer_syntax)
        raise InputError(
            f"{ep.name}: the PACS accepts none of the SOP classes / transfer syntaxes offered"
            + (f" for the {what}" if what else "")
            + f" ({syntax_names(offered)}); check the PACS's accepted transfer syntaxes and SOP classes"
        )
    if not connected:
        raise InputError(
            f"{ep.name}: no DICOM association (nobody listening at {ep.host}:{ep.port}); check --dimse HOST:PORT "
            "and that the PACS is running"
        )
    if time.monotonic() - started >= 0.9 * ep.timeout_s:
        raise InputError(
            f"{ep.name}: no DICOM association (the port took the connection but gave no DICOM answer within "
            f"{ep.timeout_s:g} s); check --dimse HOST:PORT (the PACS's DICOM port), or raise --timeout for a busy PACS"
        )
    raise InputError(
        f"{ep.name}: no DICOM association (the port took the connection and closed it without a DICOM answer, as a "
        "port that requires DICOM TLS does: netlm speaks DIMSE without TLS); check --dimse HOST:PORT (the PACS's "
        f"plain DICOM port), --called-ae, and that the PACS accepts our AE title {ep.calling_ae!r} (--calling-ae)"
    )


def new_ae(ep: DimseEndpoint) -> Any:
    """A pynetdicom AE with our AE title and ``ep.timeout_s`` for the association, messages and network."""
    from pynetdicom import AE

    ae = AE(ae_title=ep.calling_ae)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = ep.timeout_s
    return ae


def query(study_uid: str, level: str = "STUDY") -> Any:
    """A Study Root C-FIND / C-GET / C-MOVE identifier of ``study_uid`` at ``level``.

    Examples
    --------
    >>> q = query("1.2.3", "SERIES")
    >>> (q.QueryRetrieveLevel, q.StudyInstanceUID)
    ('SERIES', '1.2.3')
    """
    from pydicom.dataset import Dataset

    q = Dataset()
    q.QueryRetrieveLevel = level
    q.StudyInstanceUID = study_uid
    return q


def require_context(
    assoc: Any, sop: str, ep: DimseEndpoint, what: str, fix: str, error: type[InputError] = InputError
) -> None:
    """Release ``assoc`` and raise ``error`` (naming ``what`` and ``fix``) unless it accepted ``sop``."""
    if not any(str(cx.abstract_syntax) == sop for cx in assoc.accepted_contexts):
        assoc.release()
        raise error(f"{ep.name}: the PACS does not accept {what} from AE {ep.calling_ae!r}; {fix}")


def silent(ep: DimseEndpoint, since: float) -> bool:
    """True when the PACS has said nothing for (about) the whole ``--timeout`` since ``since``: pynetdicom
    aborts the association after a DIMSE timeout and reports it as an empty answer, as when the PACS aborts."""
    return time.monotonic() - since >= 0.9 * ep.timeout_s


def timeout_error(ep: DimseEndpoint, what: str, so_far: str = "") -> InputError:
    """The error of a PACS that did not answer ``what`` within ``ep.timeout_s`` (``so_far``: what came before)."""
    return InputError(
        f"{ep.name}: no answer to the {what} within {ep.timeout_s:g} s{so_far}; raise --timeout (the seconds each "
        "PACS answer may take) for a slow PACS or one that fetches the study from its archive"
    )


def syntax_names(uids: Iterable[str]) -> str:
    """The names of transfer syntax UIDs, comma-separated, for a message.

    Examples
    --------
    >>> syntax_names(["1.2.840.10008.1.2.1"])
    'Explicit VR Little Endian'
    """
    from pydicom.uid import UID

    return ", ".join(UID(u).name for u in uids)

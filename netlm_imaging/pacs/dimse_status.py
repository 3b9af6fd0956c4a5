"""DIMSE status codes as pynetdicom classes them, and the retry of a PACS's transient refusals.

A status is read by its category (:func:`pynetdicom.status.code_to_category`: Success, Warning, Failure,
Cancel, Pending), never by a list of codes written here: a final C-FIND status of the Warning class
(0x0001, 0xB000-range, 0x0107 ...) means the answers came, with a remark of the PACS, not a refusal.

A transient refusal (an A-ASSOCIATE-RJ with result *rejected-transient*, or a 0xA7xx *out of resources*
status) is tried again after each pause of the rules key ``pacs.transient_retry_pauses_s``; a permanent
rejection is not tried again.

Examples
--------
>>> category(0xB000), category(0x0000), category(0xA700), category(0xFF00)
('Warning', 'Success', 'Failure', 'Pending')
>>> describe(0xA700, "store")
'0xA700 (Refused: Out of Resources)'
>>> out_of_resources(0xA702), out_of_resources(0xC000)
(True, False)
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from ..errors import InputError

__all__ = ["Transient", "category", "describe", "out_of_resources", "retry_pauses", "with_retries"]

logger = logging.getLogger(__name__)

T = TypeVar("T")


def category(code: int) -> str:
    """pynetdicom's category of a DIMSE status code: ``Success``, ``Warning``, ``Failure``, ``Cancel`` ..."""
    from pynetdicom.status import code_to_category

    return str(code_to_category(int(code)))


def describe(code: int, service: str) -> str:
    """``0xCODE (meaning)`` of a status of ``service`` (``find``, ``get``, ``move``, ``store``) as pynetdicom says."""
    from pynetdicom import status

    tables = {
        "find": status.QR_FIND_SERVICE_CLASS_STATUS,
        "get": status.QR_GET_SERVICE_CLASS_STATUS,
        "move": status.QR_MOVE_SERVICE_CLASS_STATUS,
        "store": status.STORAGE_SERVICE_CLASS_STATUS,
    }
    known = {**status.GENERAL_STATUS, **tables.get(service, {})}
    meaning = known.get(int(code), (None, ""))[1]
    return f"0x{int(code):04X}" + (f" ({meaning})" if meaning else "")


def out_of_resources(code: int) -> bool:
    """PS3.4 C.4 / B.2.3: 0xA700-0xA7FF, the PACS is refusing for want of resources (a transient state)."""
    return 0xA700 <= int(code) <= 0xA7FF


class Transient(InputError):
    """A refusal the PACS may not repeat later: an A-ASSOCIATE-RJ rejected-transient, an out-of-resources status."""


def retry_pauses(rules: Any = None) -> tuple[float, ...]:
    """The pauses (s) before each new try after a transient refusal: rules key ``pacs.transient_retry_pauses_s``.

    Parameters
    ----------
    rules : path, mapping or None
        A user rules file (``--rules``), as :func:`netlm_imaging.classify.rules.load_rules` takes it;
        None: the shipped rules.

    Returns
    -------
    tuple of float
        One pause per new try (empty: never try again).
    """
    from .common import rules_pauses

    return rules_pauses("transient_retry_pauses_s", rules)


def with_retries(attempt: Callable[[], T], pauses: Sequence[float]) -> T:
    """``attempt()``, tried again after each pause while it raises :class:`Transient`.

    Parameters
    ----------
    attempt : callable
        One try; raises :class:`Transient` for a refusal worth another try, anything else otherwise.
    pauses : sequence of float
        Seconds to wait before each new try.

    Returns
    -------
    The result of the first try that does not raise.

    Raises
    ------
    InputError
        Still refused after the last try (not :class:`Transient`: an outer retry does not multiply the tries);
        the message says how many tries were made.
    """
    for n, pause in enumerate([*pauses, None], start=1):
        try:
            return attempt()
        except Transient as exc:
            if pause is None:
                tries = f" (refused {n} times, the last after {sum(pauses):g} s of pauses)" if n > 1 else ""
                raise InputError(f"{exc}{tries}") from None
            logger.warning("%s; trying again in %g s (try %d of %d)", exc, pause, n + 1, len(pauses) + 1)
            time.sleep(pause)
    raise AssertionError("unreachable")  # pragma: no cover

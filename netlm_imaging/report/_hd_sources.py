"""Source image headers as highdicom takes them, and its warnings kept out of the logs.

Two things real exports do that highdicom's constructors do not take as they are:

* an empty Specific Character Set (0008,0005) (some GE CT series write it present and
  empty, which means the default repertoire, ISO-IR 6): highdicom raises
  ``ValueError: '' is not a valid SpecificCharacterSetValues``. The empty element is
  dropped from a copy of the header (same meaning: an absent element is the default
  repertoire); the caller's dataset is never changed.
* a patient name of one component (``"JANCT000"``): highdicom warns and quotes the name.
  The research outputs and their logs never carry a patient name, so these warnings are
  silenced while the writer builds the object (it de-identifies the result afterwards).
"""

from __future__ import annotations

import contextlib
import copy
import warnings
from collections.abc import Iterator, Sequence
from typing import Any

__all__ = ["empty_charset", "highdicom_sources", "no_person_name_warnings"]

#: The text of highdicom's person-name warning (highdicom.valuerep.check_person_name).
_PERSON_NAME_WARNING = r".*unlikely to represent the intended person name.*"


def empty_charset(ds: Any) -> bool:
    """Whether the header holds a Specific Character Set whose every value is empty (the default repertoire)."""
    if "SpecificCharacterSet" not in ds:
        return False
    value = ds.SpecificCharacterSet
    values = [value] if isinstance(value, str) or value is None else list(value)
    return all(not str(v or "").strip() for v in values)


def highdicom_sources(datasets: Sequence[Any]) -> list[Any]:
    """The source headers to pass to highdicom: an all-empty Specific Character Set dropped (on a copy).

    Parameters
    ----------
    datasets : sequence of pydicom.Dataset
        Source image headers.

    Returns
    -------
    list of pydicom.Dataset
        The same objects, except copies of those whose Specific Character Set was empty.

    Examples
    --------
    >>> from pydicom import Dataset
    >>> ds = Dataset()
    >>> ds.SpecificCharacterSet = ""
    >>> out = highdicom_sources([ds])
    >>> "SpecificCharacterSet" in out[0], "SpecificCharacterSet" in ds
    (False, True)
    """
    out = []
    for ds in datasets:
        if empty_charset(ds):
            ds = copy.deepcopy(ds)
            del ds.SpecificCharacterSet
        out.append(ds)
    return out


@contextlib.contextmanager
def no_person_name_warnings() -> Iterator[None]:
    """Silence highdicom's person-name warnings (they quote the patient's name) inside the block."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_PERSON_NAME_WARNING, category=UserWarning)
        yield

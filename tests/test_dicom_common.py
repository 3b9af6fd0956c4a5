"""io/_dicom_guard.guard_malformed: corrupt files become one DicomError; the project's own bugs stay visible."""

from __future__ import annotations

import pydicom
import pytest

from netlm_imaging.errors import DicomError
from netlm_imaging.io._dicom_guard import guard_malformed


@guard_malformed("DICOM header")
def _rows_of(path, ds):
    return int(ds.Rows)  # pydicom raises AttributeError for a missing element


@guard_malformed("DICOM header")
def _buggy(path, ds):
    info = {"rows": ds.Rows}
    return info["columns"]  # our KeyError: a bug, not a corrupt file


@guard_malformed("DICOM header")
def _typo(path, ds):
    return ds.Rows.no_such_method()  # our AttributeError on an int


def test_missing_element_is_a_corrupt_file_naming_it():
    with pytest.raises(DicomError, match=r"^x\.dcm: malformed DICOM header \(AttributeError"):
        _rows_of("x.dcm", pydicom.Dataset())


def test_own_key_error_is_not_hidden():
    ds = pydicom.Dataset()
    ds.Rows = 4
    with pytest.raises(KeyError, match="columns"):
        _buggy("x.dcm", ds)


def test_own_attribute_error_is_not_hidden():
    ds = pydicom.Dataset()
    ds.Rows = 4
    with pytest.raises(AttributeError, match="no_such_method"):
        _typo("x.dcm", ds)


def test_malformed_value_is_still_a_corrupt_file():
    ds = pydicom.Dataset()
    ds.Rows = 4

    @guard_malformed("pixel module")
    def parse(path, ds):
        return int("4x")

    with pytest.raises(DicomError, match=r"^y\.dcm: malformed pixel module \(ValueError"):
        parse("y.dcm", ds)

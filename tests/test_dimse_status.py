"""pacs/dimse_status: the out-of-resources range and the retry of transient refusals, without a PACS.

PS3.4 C.4.1.1.4 / B.2.3: 0xA700-0xA7FF is "Refused: Out of Resources"; 0xA900 (Data Set does not
match SOP Class) and 0xC000 (cannot understand) are permanent failures. The attempts below are real
callables counting their calls; the pauses are 0 s so the test takes no time.
"""

from __future__ import annotations

import pytest

from netlm_imaging.errors import InputError
from netlm_imaging.pacs.dimse_status import Transient, category, describe, out_of_resources, with_retries


@pytest.mark.parametrize(
    ("code", "expected"), [(0xA6FF, False), (0xA700, True), (0xA7FF, True), (0xA800, False), (0xA900, False)]
)
def test_out_of_resources_is_the_a7xx_range(code, expected):
    assert out_of_resources(code) is expected


def test_categories_and_descriptions_as_pynetdicom_says():
    assert [category(c) for c in (0x0000, 0xB000, 0xA900, 0xFF00)] == ["Success", "Warning", "Failure", "Pending"]
    assert describe(0xA900, "store") == "0xA900 (Data Set Does Not Match SOP Class)"
    assert describe(0x1234, "find") == "0x1234"


def _refusing(times: int):
    calls = []

    def attempt() -> str:
        calls.append(1)
        if len(calls) <= times:
            raise Transient(f"refusal {len(calls)}")
        return "answered"

    return attempt, calls


def test_a_transient_refusal_is_tried_once_per_pause():
    attempt, calls = _refusing(2)
    assert with_retries(attempt, [0.0, 0.0]) == "answered"
    assert len(calls) == 3


def test_still_refused_after_the_last_pause_says_how_many_tries():
    attempt, calls = _refusing(5)
    with pytest.raises(InputError) as err:
        with_retries(attempt, [0.0, 0.0])
    assert not isinstance(err.value, Transient)  # an outer retry does not multiply the tries
    assert str(err.value) == "refusal 3 (refused 3 times, the last after 0 s of pauses)"
    assert len(calls) == 3
    attempt, calls = _refusing(5)
    with pytest.raises(InputError) as twice:
        with_retries(attempt, [0.0])
    assert str(twice.value) == "refusal 2 (refused 2 times, the last after 0 s of pauses)"
    attempt, calls = _refusing(1)
    with pytest.raises(InputError) as once:
        with_retries(attempt, [])
    assert str(once.value) == "refusal 1"  # asked once: no count
    assert len(calls) == 1


def test_another_error_is_not_tried_again():
    calls = []

    def attempt() -> None:
        calls.append(1)
        raise InputError("permanent")

    with pytest.raises(InputError, match=r"^permanent$"):
        with_retries(attempt, [0.0, 0.0])
    assert len(calls) == 1

"""A number read from a legacy value is one FHIR can hold: a value out of a float's range
(1e400, read as infinity) or longer than Python converts (4,300 digits, a ValueError that
quarantined its record as the gateway's own failure) is refused as no number."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mappings import normalise
from mappings.normalise import MappingError


@pytest.mark.parametrize("written", ["1e400", "-1e400", "9" * 5000])
def test_a_number_no_float_holds_is_refused_as_no_number(written: str) -> None:
    with pytest.raises(MappingError) as refused:
        normalise.decimal(written)
    assert refused.value.message_id == "mapping.not-a-number"


def test_an_integer_of_more_digits_than_python_converts_is_refused_as_no_number() -> None:
    with pytest.raises(MappingError) as refused:
        normalise.integer("9" * 5000)
    assert refused.value.message_id == "mapping.not-a-number"


@given(st.from_regex(r"[+-]?[0-9]{1,5000}(\.[0-9]{0,20})?([eE][+-]?[0-9]{1,4})?", fullmatch=True))
def test_a_decimal_is_a_finite_number_or_refused(written: str) -> None:
    try:
        number = normalise.decimal(written)
    except MappingError as refused:
        assert refused.message_id == "mapping.not-a-number"
    else:
        assert number is not None and math.isfinite(number)

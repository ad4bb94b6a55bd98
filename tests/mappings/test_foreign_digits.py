"""Digits in legacy values: full-width ones (０-９, as Chinese input methods type them) are
ASCII digits spelled wide and are folded; the digits of other scripts (Arabic-Indic ٣,
Devanagari ३ …) are no number an export of a Chinese system means, and a value holding one is
refused, never read as a number nor passed on as an identifier."""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mappings import normalise
from mappings.normalise import MappingError
from mappings.readers.hl7v2 import iso_timestamp
from tests.mappings.test_engine import NAME, engine, record, spec

#: the normalisers that read numbers, codes and dates (free text is written as it came)
READING = [
    normalise.integer,
    normalise.decimal,
    normalise.identifier,
    normalise.digits,
    normalise.fhir_date,
    normalise.fhir_datetime,
]
#: and those that only tell a code's list, which leave a refused code to its own rule (None)
TELLING = [normalise.division_list, normalise.insured_region_list, normalise.id_document_kind]
#: every decimal digit Unicode has that no compatibility fold makes ASCII: not the full-width
#: ones, nor the mathematical 𝟎-𝟗 (styles of the ASCII digits), but the digits of other scripts
FOREIGN_DIGITS = [
    chr(cp)
    for cp in range(0x80, 0x110000)
    if chr(cp).isdecimal() and not unicodedata.normalize("NFKC", chr(cp)).isascii()
]
FULL_WIDTH = st.sampled_from([chr(cp) for cp in range(0xFF10, 0xFF1A)])


def outcome(normaliser: Callable[[Any], Any], value: str) -> Any:
    """What the normaliser makes of the value: its result, or the id it refused it with."""
    try:
        return normaliser(value)
    except MappingError as refused:
        return refused.message_id


#: a legacy value made of ASCII, the digits of every script, letters and punctuation (drawn
#: as a list: as a text's alphabet, hypothesis merged the choices into one range of code
#: points and drew no foreign digit in a hundred values)
VALUES = st.lists(
    st.one_of(
        st.characters(codec="ascii", categories=["Nd", "L", "P"]),
        st.sampled_from(FOREIGN_DIGITS),
        FULL_WIDTH,
        st.characters(categories=["Nd", "L", "P"]),
    ),
    max_size=12,
).map("".join)


@given(st.sampled_from(READING + TELLING), VALUES)
def test_what_a_normaliser_reads_holds_ascii_digits_only(normaliser: Callable[[Any], Any], value: str) -> None:
    found = str(outcome(normaliser, value))
    assert all(c.isascii() for c in found if c.isdecimal())


@given(st.lists(FULL_WIDTH, min_size=1, max_size=9))
def test_full_width_digits_are_read_as_the_number_they_spell(wide: list[str]) -> None:
    written = "".join(wide)
    assert normalise.integer(written) == int(unicodedata.normalize("NFKC", written))


@pytest.mark.parametrize("value", ["٣٤", "３٤"])
def test_a_record_with_another_scripts_digits_names_the_field_it_came_from(value: str) -> None:
    rule = {
        "path": "identifier[+]",
        "value": {"system": "urn:x", "value": {"from": "档案号", "transform": ["identifier"]}},
    }
    mapped = engine(spec(NAME, rule)).map(record(姓名="张三", 档案号=value))
    assert [(p.message_id, str(p.ref)) for p in mapped.problems] == [
        ("mapping.foreign-digits", "表.csv row 2, column 档案号")
    ]


def test_a_number_holding_a_byte_order_mark_names_the_field_it_came_from() -> None:
    """Two exports joined into one start a line with the second's mark: an invisible character
    in a 档案号 made a number no other source's record matched."""
    rule = {
        "path": "identifier[+]",
        "value": {"system": "urn:x", "value": {"from": "档案号", "transform": ["identifier"]}},
    }
    mapped = engine(spec(NAME, rule)).map(record(姓名="张三", 档案号="\ufeff11010500100000002"))
    assert [(p.message_id, str(p.ref)) for p in mapped.problems] == [
        ("mapping.invisible-characters", "表.csv row 2, column 档案号")
    ]


def test_an_hl7_timestamp_in_another_scripts_digits_reaches_the_normaliser_as_written() -> None:
    """With an offset the reader converted it, through int(), into a time in 0-9."""
    with pytest.raises(MappingError, match="mapping.foreign-digits"):
        normalise.fhir_datetime(iso_timestamp("١٩٤٥٠١٠١1200+0000"))


#: every character but ASCII and the full-width ０-９ that NFKC folds into something holding an
#: ASCII digit: superscripts ², subscripts ₂, circled ① ⑩ ㉑, digits with a stop ⒈, fractions
#: ½, mathematical 𝟏 …, which no Chinese system types as a number
COMPATIBILITY_DIGITS = [
    chr(cp)
    for cp in range(0x80, 0x110000)
    if not 0xFF10 <= cp <= 0xFF19 and any(c in "0123456789" for c in unicodedata.normalize("NFKC", chr(cp)))
]


@pytest.mark.parametrize(("normaliser", "value"), [(normalise.integer, "²"), (normalise.identifier, "①")])
def test_a_superscript_or_circled_digit_is_no_number(normaliser: Callable[[Any], Any], value: str) -> None:
    """NFKC read integer('²') as 2 and identifier('①') as '1'."""
    assert outcome(normaliser, value) == "mapping.compatibility-digits"


#: the digits no number is read from, each kind with the reason that refuses it
REFUSED_DIGITS = st.one_of(
    st.tuples(st.sampled_from(FOREIGN_DIGITS), st.just("mapping.foreign-digits")),
    st.tuples(st.sampled_from(COMPATIBILITY_DIGITS), st.just("mapping.compatibility-digits")),
)


@given(
    st.sampled_from(READING),
    st.text(alphabet="0123456789-", max_size=8),
    REFUSED_DIGITS,
    st.text(alphabet="0123456789", max_size=8),
)
def test_a_value_with_a_digit_of_another_script_or_style_is_refused_by_name(
    normaliser: Callable[[Any], Any], before: str, refused: tuple[str, str], after: str
) -> None:
    digit, reason = refused
    assert outcome(normaliser, before + digit + after) == reason


def test_a_compatibility_digits_reason_quotes_the_value_folded() -> None:
    """Quoted as written, a 联系电话 in circled digits (①③⑧…) reached the reports whole:
    masking reads 0-9 and other scripts' decimal digits, not those; folded, it is masked."""
    with pytest.raises(MappingError) as refused:
        normalise.digits("①③⑧⓪⓪①③⑧⓪⓪⓪")
    assert refused.value.params == {"value": "13800138000", "digits": "① U+2460, ③ U+2462, ⑧ U+2467, ⓪ U+24EA"}

"""A code a ConceptMap does not list is quarantined with a message that says what a correct value
looks like: the spellings the map accepts, so staff can correct the export without reading JSON."""

from __future__ import annotations

import pytest

from mappings.conceptmaps import ConceptMaps
from mappings.normalise import MappingError
from mappings.records import Message

MAPS = ConceptMaps.load("http://fhir.yiyang.cn")


def refusal(map_id: str, code: str, lang: str) -> str:
    with pytest.raises(MappingError) as raised:
        MAPS.translate(map_id, code)
    return Message(raised.value.message_id, {**raised.value.params, "field": "性别"}).text(lang)


def test_an_unknown_sex_code_is_refused_naming_every_accepted_spelling() -> None:
    assert refusal("sex-to-administrative-gender", "X", "zh-CN").endswith(
        "；可用的值：男、男性、1、M、女、女性、2、F、0、未知、未知的性别、9、未说明、未说明的性别"
    )


def test_a_long_map_names_its_first_values_and_how_many_it_accepts() -> None:
    assert refusal("ethnicity-to-gb-3304", "火星族", "en").endswith(
        f"; accepted values include: {', '.join(MAPS.known_codes('ethnicity-to-gb-3304')[:16])} … "
        f"({len(MAPS.known_codes('ethnicity-to-gb-3304'))} in all)"
    )

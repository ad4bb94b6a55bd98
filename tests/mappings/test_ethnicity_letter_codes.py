"""The GB 3304 two-letter 民族 codes the HL7中国 CorePatient uses (HA 汉, ZA 藏 …) map to the
two-digit GB 3304 code the archive holds, in every source that maps 民族."""

from __future__ import annotations

from pathlib import Path

import pytest

from mappings.conceptmaps import ConceptMaps
from mappings.normalise import MappingError
from tests.ingest_output import mapped_resources, personal_info_file

GB_3304 = "urn:oid:2.16.156.10011.2.3.3.3"
MAPS = ConceptMaps.load("http://fhir.yiyang.cn")


@pytest.mark.parametrize(
    ("letters", "code"),
    [("HA", "01"), ("MG", "02"), ("ZA", "04"), ("ZH", "08"), ("SU", "25"), ("OR", "52"), ("JN", "56")],
)
def test_a_letter_code_maps_to_its_two_digit_code(letters: str, code: str) -> None:
    assert MAPS.translate("ethnicity-to-gb-3304", letters, "coding")["code"] == code


def test_every_nationality_has_exactly_one_letter_code() -> None:
    elements = MAPS.resources["ethnicity-to-gb-3304"]["group"][0]["element"]
    codes = sorted(e["target"][0]["code"] for e in elements if e["code"].isascii() and e["code"].isalpha())
    assert codes == [f"{n:02d}" for n in range(1, 57)]


def test_a_two_letter_code_not_in_gb_3304_is_still_refused() -> None:
    with pytest.raises(MappingError, match="mapping.unknown-code"):
        MAPS.translate("ethnicity-to-gb-3304", "XX", "coding")


def test_a_personal_info_row_with_letter_code_ha_gets_the_han_extension(tmp_path: Path) -> None:
    patient = mapped_resources(personal_info_file(tmp_path, "民族", "HA"), "community-health")[0]["patient"]
    ethnicity = next(e["valueCoding"] for e in patient["extension"] if e["url"].endswith("yy-ext-ethnicity"))
    assert ethnicity == {"system": GB_3304, "code": "01", "display": "汉族"}

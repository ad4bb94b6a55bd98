"""A cell or field listing several phone numbers gives one telecom each, in every source that maps
phones (个人基本信息表 CSV, 养老 JSON, CDA XML, HL7 PID-13), while one number written in groups
(138 0000 0000, 0371-6555 1234) stays one number."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mappings.normalise import SHORTEST_PHONE, MappingError, digits, phone_numbers
from tests.ingest_output import SAMPLES, mapped_resources, personal_info_file

whole_numbers = st.text(alphabet="0123456789", min_size=SHORTEST_PHONE, max_size=12)
separators = st.sampled_from([" ", "  ", ",", "，", "、", ";", "；", "/", "／", " / ", "、 "])


# -- extensions ------------------------------------------------------------------------------------
@pytest.mark.parametrize("written", ["0371-65551234-8001", "65551234-8001", "(0371)65551234-8001", "021-1234567-12"])
def test_a_number_with_its_extension_is_refused_naming_the_extension(written: str) -> None:
    """区号-总机-分机: the separators removed, 0371655512348001 was written as the number."""
    with pytest.raises(MappingError) as refused:
        digits(written)
    assert (refused.value.message_id, refused.value.params["extension"]) == (
        "mapping.phone-extension",
        written.rsplit("-", 1)[1],
    )


@pytest.mark.parametrize(
    "written", ["138-0371-0001", "1380371-0001", "0371-6555-1234", "+86-371-65551234", "400-810-8888"]
)
def test_a_number_written_in_hyphenated_groups_is_no_extension(written: str) -> None:
    assert digits(written) == "".join(c for c in written if c.isdigit() or c == "+")


# -- the splitter -------------------------------------------------------------------------------------
@given(st.lists(whole_numbers, min_size=1, max_size=4), separators)
def test_whole_numbers_listed_with_any_separator_are_each_kept(numbers: list[str], separator: str) -> None:
    assert phone_numbers(separator.join(numbers)) == numbers


@given(st.text(alphabet="0123456789", min_size=11, max_size=11), st.sampled_from([(3, 7), (3, 4), (4, 8)]))
def test_one_number_written_in_groups_stays_one_number(number: str, cuts: tuple[int, int]) -> None:
    grouped = " ".join([number[: cuts[0]], number[cuts[0] : cuts[1]], number[cuts[1] :]])
    assert [digits(part) for part in phone_numbers(grouped)] == [number]


@pytest.mark.parametrize(
    ("cell", "numbers"),
    [
        ("66668888 77779999", ["66668888", "77779999"]),
        ("13800000000 6666888", ["13800000000", "6666888"]),
        ("138 0000 0000", ["138 0000 0000"]),
        ("0371-6555 1234", ["0371-6555 1234"]),
        ("+86 13800000000", ["+86 13800000000"]),
        ("13800000000、0371-65551234", ["13800000000", "0371-65551234"]),
        ("", []),
    ],
)
def test_the_cells_of_the_exports_split_into_their_numbers(cell: str, numbers: list[str]) -> None:
    assert phone_numbers(cell) == numbers


# -- the sources --------------------------------------------------------------------------------------
def phones(resource: dict) -> list[str]:
    return [telecom["value"] for telecom in resource.get("telecom", [])]


def test_a_personal_info_row_with_two_numbers_gives_two_telecoms(tmp_path: Path) -> None:
    path = personal_info_file(tmp_path, "联系电话", "66668888 77779999")
    assert phones(mapped_resources(path, "community-health")[0]["patient"]) == ["66668888", "77779999"]


def test_a_personal_info_number_written_in_groups_is_one_telecom(tmp_path: Path) -> None:
    path = personal_info_file(tmp_path, "联系电话", "0371-6555 1234")
    assert phones(mapped_resources(path, "community-health")[0]["patient"]) == ["037165551234"]


def elder_profile(tmp_path: Path, phone: str, contact_phone: str) -> dict:
    reply = json.loads((SAMPLES / "elderly-care/老人档案.json").read_text(encoding="utf-8"))
    elder = reply["data"][0]
    elder["phone"], elder["emergencyContact"]["phone"] = phone, contact_phone
    reply["data"] = [elder]
    path = tmp_path / "老人档案.json"
    path.write_text(json.dumps(reply, ensure_ascii=False), encoding="utf-8")
    return mapped_resources(path, "elderly-care")[0]["patient"]


def test_an_elder_profile_phone_listing_two_numbers_gives_two_telecoms(tmp_path: Path) -> None:
    assert phones(elder_profile(tmp_path, "13803710001/66668888", "13903710002")) == ["13803710001", "66668888"]


def test_an_emergency_contact_phone_listing_two_numbers_gives_the_contact_two_telecoms(tmp_path: Path) -> None:
    patient = elder_profile(tmp_path, "13803710001", "13903710002 66668888")
    assert phones(patient["contact"][0]) == ["13903710002", "66668888"]


def test_a_cda_telecom_listing_two_numbers_gives_two_telecoms(tmp_path: Path) -> None:
    document = (SAMPLES / "community-health/健康档案-张秀英.xml").read_text(encoding="utf-8")
    path = tmp_path / "健康档案.xml"
    path.write_text(document.replace('telecom value="13803710001"', 'telecom value="13803710001 66668888"'), "utf-8")
    assert phones(mapped_resources(path, "community-health")[0]["patient"]) == ["13803710001", "66668888"]


def test_an_hl7_phone_component_listing_two_numbers_gives_two_telecoms(tmp_path: Path) -> None:
    feed = (SAMPLES / "hl7v2/adt.hl7").read_bytes().split(b"MSH|")[1]
    path = tmp_path / "adt.hl7"
    path.write_bytes(b"MSH|" + feed.replace(b"|13803710001^", b"|13803710001 66668888^", 1))
    assert phones(mapped_resources(path, "hl7v2")[0]["patient"])[:2] == ["13803710001", "66668888"]


@pytest.mark.parametrize(
    ("written", "number"), [("tel:13803710001", "13803710001"), ("TEL:+86-371-68801234", "+8637168801234")]
)
def test_a_cda_telecom_written_as_a_tel_url_gives_its_number(tmp_path: Path, written: str, number: str) -> None:
    """CDA R2 TEL values are URLs (RFC 3966 ``tel:``), as the CDA standard writes them."""
    document = (SAMPLES / "community-health/健康档案-张秀英.xml").read_text(encoding="utf-8")
    path = tmp_path / "健康档案.xml"
    path.write_text(document.replace('telecom value="13803710001"', f'telecom value="{written}"'), "utf-8")
    assert phones(mapped_resources(path, "community-health")[0]["patient"]) == [number]

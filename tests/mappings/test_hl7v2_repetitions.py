"""PID-11 (addresses), PID-13 (home phones) and PID-14 (business phones) repeat: every repetition
is an address or a telecom of the Patient with its own use, and its lineage names the repetition
it came from (``PID-11~2.1``), where the rule set used to read the first address and the first two
phones and report the rest unread."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.ingest.commands import build_engine
from mappings.engine import Mapped
from mappings.normalise import MappingError, email
from mappings.readers.hl7v2 import read_hl7
from profiles.registry import Registry

HOME = "河南省郑州市金水区经八路街道幸福社区3号楼^^郑州市^河南省^450008^CHN^H^^410105"
OFFICE = "河南省郑州市金水区花园路88号^^郑州市^河南省^450003^CHN^O^^410105"
MESSAGE = (
    "MSH|^~\\&|HIS|H41010500012|YIYANG-GW|YYPT|20261115160244||ADT^A08^ADT_A01|R0001|P|2.5|||||CHN|UNICODE UTF-8\r"
    "EVN|A08|20261115160240\r"
    "PID|1||0000123^^^H41010500012^PI~410105194912310020^^^^ID||张秀英||19491231|F|||{addresses}||{home}|{work}\r"
    "PV1|1|N\r"
)
PHONES = "13803710001^PRN^CP~0371-65551234^PRN^PH~0371-65559999^PRN^FX"


def mapped(tmp_path: Path, addresses: str = HOME, home: str = PHONES, work: str = "") -> Mapped:
    path = tmp_path / "adt.hl7"
    path.write_text(MESSAGE.format(addresses=addresses, home=home, work=work), encoding="utf-8")
    [record] = read_hl7(path, "hl7v2")
    result = _engine.map(record)
    assert result is not None
    return result


_engine = build_engine(Registry())


def patient(result: Mapped) -> dict[str, Any]:
    return result.resources["patient"]


def test_every_pid_11_repetition_is_an_address_with_its_use(tmp_path: Path) -> None:
    addresses = patient(mapped(tmp_path, addresses=f"{HOME}~{OFFICE}"))["address"]
    assert [(a["use"], a["text"]) for a in addresses] == [
        ("home", "河南省郑州市金水区经八路街道幸福社区3号楼"),
        ("work", "河南省郑州市金水区花园路88号"),
    ]


def test_the_lineage_of_a_second_address_names_its_repetition(tmp_path: Path) -> None:
    result = mapped(tmp_path, addresses=f"{HOME}~{OFFICE}")
    assert result.lineage[("patient", "Patient.address[1].postalCode")].field == "PID-11~2.5"


def test_an_address_without_a_type_writes_no_use(tmp_path: Path) -> None:
    [address] = patient(mapped(tmp_path, addresses=HOME.replace("^H^", "^^")))["address"]
    assert "use" not in address


ORIGIN = "河南省开封市鼓楼区^^开封市^河南省^^CHN^F"
PERMANENT = ORIGIN.replace("^F", "^P")
AT_BIRTH = ORIGIN.replace("^F", "^BR")
MAILING = "郑州市邮政局第18号信箱^^郑州市^河南省^450000^CHN^M"


def test_a_country_of_origin_lands_without_a_use_rather_than_refusing_the_message(tmp_path: Path) -> None:
    result = mapped(tmp_path, addresses=f"{HOME}~{ORIGIN}")
    assert (result.problems, "use" in patient(result)["address"][1]) == ([], False)


def test_a_country_of_origin_s_type_left_out_is_noted_with_the_use_maps_reason(tmp_path: Path) -> None:
    [note] = mapped(tmp_path, addresses=f"{HOME}~{ORIGIN}").omitted
    assert (note.message_id, note.params["field"], note.params["conceptMap"]) == (
        "mapping.unmatched-omitted",
        "PID-11~2.7",
        "hl7v2-address-type-to-address-use",
    )


def test_a_permanent_address_is_a_home(tmp_path: Path) -> None:
    """HL7 table 0190 sets P against C (current or temporary): the home the person lives at for good."""
    assert patient(mapped(tmp_path, addresses=f"{HOME}~{PERMANENT}"))["address"][1].get("use") == "home"


def test_the_residence_at_birth_is_an_old_address(tmp_path: Path) -> None:
    """BR is the home at the time of birth: a past address, kept for the record."""
    assert patient(mapped(tmp_path, addresses=f"{HOME}~{AT_BIRTH}"))["address"][1].get("use") == "old"


def test_a_mailing_address_is_a_postal_address_without_a_use(tmp_path: Path) -> None:
    [address] = patient(mapped(tmp_path, addresses=MAILING))["address"]
    assert (address.get("type"), address.get("use")) == ("postal", None)


def test_a_mailing_address_type_carried_by_address_type_is_not_noted_as_omitted(tmp_path: Path) -> None:
    assert mapped(tmp_path, addresses=MAILING).omitted == []


def test_a_home_address_has_no_type_and_nothing_noted(tmp_path: Path) -> None:
    result = mapped(tmp_path)
    assert ("type" in patient(result)["address"][0], result.omitted) == (False, [])


def test_an_address_type_the_table_does_not_list_is_still_refused(tmp_path: Path) -> None:
    result = mapped(tmp_path, addresses=HOME.replace("^H^", "^XX^"))
    assert {p.message_id for p in result.problems} == {"mapping.unknown-code"}


def test_a_third_home_phone_is_a_telecom_with_its_system_and_use(tmp_path: Path) -> None:
    assert patient(mapped(tmp_path))["telecom"] == [
        {"system": "phone", "value": "13803710001", "use": "mobile"},
        {"system": "phone", "value": "037165551234", "use": "home"},
        {"system": "fax", "value": "037165559999", "use": "home"},
    ]


def test_a_business_phone_in_pid_14_is_a_work_telecom(tmp_path: Path) -> None:
    telecoms = patient(mapped(tmp_path, home="", work="0371-63331234"))["telecom"]
    assert telecoms == [{"system": "phone", "value": "037163331234", "use": "work"}]


def test_the_lineage_of_a_third_phone_names_its_repetition(tmp_path: Path) -> None:
    assert mapped(tmp_path).lineage[("patient", "Patient.telecom[2].value")].field == "PID-13~3.1"


def test_no_repetition_of_an_address_or_phone_is_left_unread(tmp_path: Path) -> None:
    result = mapped(tmp_path, addresses=f"{HOME}~{OFFICE}", work="0371-63331234^WPN^PH~0371-63335678^WPN^PH")
    assert result.unused_fields == []


def test_a_repetition_listing_two_numbers_gives_two_telecoms_of_its_use(tmp_path: Path) -> None:
    telecoms = patient(mapped(tmp_path, home="13803710001^PRN^CP~66668888 77779999^WPN^PH"))["telecom"]
    assert [(t["value"], t["use"]) for t in telecoms] == [
        ("13803710001", "mobile"),
        ("66668888", "work"),
        ("77779999", "work"),
    ]


@settings(max_examples=25, deadline=None)
@given(st.lists(st.from_regex(r"1[3-9][0-9]{9}", fullmatch=True), min_size=1, max_size=8, unique=True))
def test_every_phone_repetition_sent_is_one_telecom_in_order(tmp_path_factory: Any, numbers: list[str]) -> None:
    home = "~".join(f"{number}^PRN^CP" for number in numbers)
    telecoms = patient(mapped(tmp_path_factory.mktemp("adt"), home=home))["telecom"]
    assert [t["value"] for t in telecoms] == numbers


def test_an_email_address_in_xtn_4_is_an_email_telecom(tmp_path: Path) -> None:
    telecoms = patient(mapped(tmp_path, home="13803710001^PRN^CP~^NET^Internet^ZhangXY@163.com"))["telecom"]
    assert telecoms[1:] == [{"system": "email", "value": "ZhangXY@163.com"}]


def test_an_email_telecom_that_is_not_an_address_is_refused_naming_xtn_4(tmp_path: Path) -> None:
    result = mapped(tmp_path, home="13803710001^PRN^CP~^NET^Internet^zhang at 163")
    assert [(p.message_id, p.params["field"]) for p in result.problems] == [("mapping.not-an-email", "PID-13~2.4")]


@given(st.from_regex(r"[A-Za-z0-9._-]{1,12}@[a-z0-9-]{1,10}\.(cn|com)", fullmatch=True))
def test_the_email_transform_keeps_an_address_as_written(address: str) -> None:
    assert email(address) == address


@given(st.text(alphabet="abc@. ", min_size=1).filter(lambda t: t.strip() and (" " in t.strip() or "@" not in t)))
def test_the_email_transform_refuses_text_that_is_no_address(written: str) -> None:
    with pytest.raises(MappingError):
        email(written)


@given(st.sampled_from(["PRN", "ORN", "WPN", "VHN", "ASN", "BPN", ""]))
@settings(max_examples=8, deadline=None)
def test_a_cellular_phone_is_mobile_whatever_its_xtn_2(tmp_path_factory: Any, use: str) -> None:
    telecoms = patient(mapped(tmp_path_factory.mktemp("adt"), home=f"13803710001^{use}^CP"))["telecom"]
    assert telecoms[0]["use"] == "mobile"


def test_a_cellular_business_phone_is_mobile_not_work(tmp_path: Path) -> None:
    telecoms = patient(mapped(tmp_path, home="", work="13803710002^^CP"))["telecom"]
    assert telecoms[0]["use"] == "mobile"


def test_an_answering_service_landline_lands_without_a_use(tmp_path: Path) -> None:
    result = mapped(tmp_path, home="13803710001^PRN^CP~0371-65551234^ASN^PH")
    assert (result.problems, patient(result)["telecom"][1]) == ([], {"system": "phone", "value": "037165551234"})


def test_an_answering_service_use_left_out_is_noted_naming_its_repetition(tmp_path: Path) -> None:
    [note] = mapped(tmp_path, home="13803710001^PRN^CP~0371-65551234^ASN^PH").omitted
    assert (note.params["field"], note.params["value"]) == ("PID-13~2.2", "ASN")


def test_a_phone_use_the_table_does_not_list_is_still_refused(tmp_path: Path) -> None:
    result = mapped(tmp_path, home="0371-65551234^XYZ^PH")
    assert [p.message_id for p in result.problems] == ["mapping.unknown-code"]


def test_an_email_address_in_pid_14_is_a_work_email_telecom(tmp_path: Path) -> None:
    telecoms = patient(mapped(tmp_path, home="", work="^WPN^Internet^zhang@example.cn"))["telecom"]
    assert telecoms == [{"system": "email", "value": "zhang@example.cn", "use": "work"}]


def test_an_address_repetition_giving_only_its_type_is_no_address(tmp_path: Path) -> None:
    addresses = patient(mapped(tmp_path, addresses=f"{HOME}~^^^^^^H"))["address"]
    assert [address["text"] for address in addresses] == ["河南省郑州市金水区经八路街道幸福社区3号楼"]


def test_a_number_sent_as_internet_equipment_is_refused_as_known_without_a_system(tmp_path: Path) -> None:
    """Not as a code the table does not list: staff would look for a typo in a valid code."""
    result = mapped(tmp_path, home="13803710001^PRN^Internet")
    assert [(p.message_id, p.params["field"]) for p in result.problems] == [("mapping.unmatched-code", "PID-13.3")]

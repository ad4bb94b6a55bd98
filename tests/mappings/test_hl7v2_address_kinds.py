"""An HL7 address is not always where the person lives.  A birth address (XAD.7 N, BDL) and a 户籍
(RH) or legal (L) address landed as plain addresses without a use, so a 户籍 address in another
county read as a second home and the place of birth as an address of the person.  The place of
birth is the core R4 extension patient-birthPlace; a 户籍 or legal address keeps no use (it need
not be where the person lives) but says what it is with the provincial extension
yy-ext-address-category (household-registration)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from conformance.validator import Validator
from gateway.ingest.commands import build_engine
from gateway.ingest.identity import merge
from mappings.engine import Mapped
from mappings.readers.hl7v2 import read_hl7
from profiles.registry import Registry
from tests.conftest import errors

HOME = "河南省郑州市金水区经八路街道幸福社区3号楼^^郑州市^河南省^450008^CHN^H^^410105"
BIRTH = "河南省开封市鼓楼区^^开封市^河南省^^CHN^{type}^^410204"
HUKOU = "河南省商丘市睢县城关镇北关街12号^^商丘市^河南省^476900^CHN^{type}^^411422"
MESSAGE = (
    "MSH|^~\\&|HIS|H41010500012|YIYANG-GW|YYPT|20261115160244||ADT^A08^ADT_A01|R0001|P|2.5|||||CHN|UNICODE UTF-8\r"
    "EVN|A08|20261115160240\r"
    "PID|1||0000123^^^H41010500012^PI~410105194912310020^^^^ID||张秀英||19491231|F|||{addresses}||13803710001^PRN^CP\r"
    "PV1|1|N\r"
)
BIRTH_PLACE = "http://hl7.org/fhir/StructureDefinition/patient-birthPlace"
CATEGORY = "http://fhir.yiyang.cn/StructureDefinition/yy-ext-address-category"
_engine = build_engine(Registry())


def mapped(tmp_path: Path, *addresses: str) -> Mapped:
    path = tmp_path / "adt.hl7"
    path.write_text(MESSAGE.format(addresses="~".join(addresses)), encoding="utf-8")
    [record] = read_hl7(path, "hl7v2")
    result = _engine.map(record)
    assert result is not None
    return result


def patient(tmp_path: Path, *addresses: str) -> dict[str, Any]:
    return mapped(tmp_path, *addresses).resources["patient"]


def birth_places(person: dict[str, Any]) -> list[dict[str, Any]]:
    return [e["valueAddress"] for e in person.get("extension", []) if e["url"] == BIRTH_PLACE]


def categories(address: dict[str, Any]) -> list[str]:
    return [e["valueCoding"]["code"] for e in address.get("extension", []) if e["url"] == CATEGORY]


def test_a_birth_address_is_the_birth_place_not_an_address(tmp_path: Path) -> None:
    person = patient(tmp_path, HOME, BIRTH.format(type="N"))
    assert ([a["text"] for a in person["address"]], [b["text"] for b in birth_places(person)]) == (
        ["河南省郑州市金水区经八路街道幸福社区3号楼"],
        ["河南省开封市鼓楼区"],
    )


def test_a_birth_delivery_location_is_the_birth_place_too(tmp_path: Path) -> None:
    assert [b["city"] for b in birth_places(patient(tmp_path, HOME, BIRTH.format(type="BDL")))] == ["开封市"]


def test_the_birth_place_keeps_its_division_code(tmp_path: Path) -> None:
    [place] = birth_places(patient(tmp_path, BIRTH.format(type="N")))
    assert [e["valueCoding"]["code"] for e in place["extension"]] == ["410204"]


def test_the_birth_place_names_its_repetition_in_lineage(tmp_path: Path) -> None:
    result = mapped(tmp_path, HOME, BIRTH.format(type="N"))
    assert result.lineage[("patient", "Patient.extension[0].valueAddress.text")].field == "PID-11~2.1"


def test_a_birth_address_carried_by_the_birth_place_is_not_noted_as_left_out(tmp_path: Path) -> None:
    assert mapped(tmp_path, HOME, BIRTH.format(type="N")).omitted == []


def test_a_hukou_address_is_an_address_of_its_category_without_a_use(tmp_path: Path) -> None:
    [_, hukou] = patient(tmp_path, HOME, HUKOU.format(type="RH"))["address"]
    assert (hukou.get("use"), categories(hukou)) == (None, ["household-registration"])


def test_a_legal_address_is_the_hukou_address(tmp_path: Path) -> None:
    """《民法典》第二十五条: a person's legal domicile is the residence the 户籍 registers."""
    [_, legal] = patient(tmp_path, HOME, HUKOU.format(type="L"))["address"]
    assert categories(legal) == ["household-registration"]


def test_a_hukou_address_carried_by_its_category_is_not_noted_as_left_out(tmp_path: Path) -> None:
    assert mapped(tmp_path, HOME, HUKOU.format(type="RH")).omitted == []


def test_a_home_address_has_no_category(tmp_path: Path) -> None:
    [home] = patient(tmp_path, HOME)["address"]
    assert categories(home) == []


def test_a_patient_with_a_birth_place_and_a_hukou_address_is_valid_against_the_provincial_profile(
    tmp_path: Path, validator: Validator
) -> None:
    person = patient(tmp_path, HOME, BIRTH.format(type="N"), HUKOU.format(type="RH"))
    assert errors(validator.validate(person)) == []


def test_a_hukou_address_that_is_the_home_is_one_address_holding_both(tmp_path: Path) -> None:
    """Most elders live at their 户籍 address: the home and the 户籍 repetition are one place."""
    home = patient(tmp_path, HOME)
    hukou = patient(tmp_path, HOME.replace("^H^", "^RH^"))
    [address] = merge(home, hukou)["address"]
    assert (address["use"], categories(address)) == ("home", ["household-registration"])


def test_an_unknown_address_type_is_reported_once(tmp_path: Path) -> None:
    """XAD.7 feeds three maps (use, type, category): a code none lists is one mistake."""
    result = mapped(tmp_path, HOME.replace("^H^", "^ZZ^"))
    assert [p.expression for p in result.problems] == ["Patient.address.use"]


def test_of_two_birth_addresses_the_first_is_the_birth_place(tmp_path: Path) -> None:
    """yy-patient allows one patient-birthPlace: a second birth repetition made the Patient invalid."""
    person = patient(tmp_path, HOME, BIRTH.format(type="N"), HUKOU.format(type="BDL"))
    assert [b["text"] for b in birth_places(person)] == ["河南省开封市鼓楼区"]


def test_a_second_birth_address_left_out_is_reported_naming_its_repetition(tmp_path: Path) -> None:
    result = mapped(tmp_path, HOME, BIRTH.format(type="N"), HUKOU.format(type="BDL"))
    assert [(p.message_id, p.params["field"], p.params["kept"]) for p in result.omitted] == [
        ("mapping.item-dropped", "PID-11~3", "PID-11~2")
    ]


def test_a_patient_with_two_birth_addresses_is_valid_against_the_provincial_profile(
    tmp_path: Path, validator: Validator
) -> None:
    person = patient(tmp_path, HOME, BIRTH.format(type="N"), HUKOU.format(type="BDL"))
    assert errors(validator.validate(person)) == []

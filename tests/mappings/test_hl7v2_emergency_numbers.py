"""An emergency number (XTN.2 EMR) in PID-13 or PID-14 is the number to call about the person, not
the person's own.  It landed as a telecom of the Patient — ``mobile`` when XTN.3 was CP, its EMR
dropped without a word — so a nurse calling the patient's mobile reached the son.  It is an
emergency contact now: ``Patient.contact`` with relationship C (HL7 table 0131, as an NK1 would
say it) reached at the number, which FHIR's ContactPoint.use cannot say."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from conformance.validator import Validator
from gateway.ingest import commands
from gateway.ingest.commands import build_engine
from mappings.engine import Mapped
from mappings.readers.hl7v2 import read_hl7
from profiles.registry import Registry
from tests.conftest import errors
from tests.ingest_output import ndjson

MESSAGE = (
    "MSH|^~\\&|HIS|H41010500012|YIYANG-GW|YYPT|20261115160244||ADT^A08^ADT_A01|R0001|P|2.5|||||CHN|UNICODE UTF-8\r"
    "EVN|A08|20261115160240\r"
    "PID|1||0000123^^^H41010500012^PI~410105194912310020^^^^ID||张秀英||19491231|F|||"
    "河南省郑州市金水区经八路街道幸福社区3号楼^^郑州市^河南省^450008^CHN^H^^410105||{home}|{work}\r"
    "PV1|1|N\r"
)
EMERGENCY = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0131", "code": "C"}]}
_engine = build_engine(Registry())


def mapped(tmp_path: Path, home: str, work: str = "") -> Mapped:
    path = tmp_path / "adt.hl7"
    path.write_text(MESSAGE.format(home=home, work=work), encoding="utf-8")
    [record] = read_hl7(path, "hl7v2")
    result = _engine.map(record)
    assert result is not None
    return result


def patient(tmp_path: Path, home: str, work: str = "") -> dict[str, Any]:
    return mapped(tmp_path, home, work).resources["patient"]


def contacts(person: dict[str, Any]) -> list[tuple[str, list[dict[str, Any]]]]:
    """Each contact as its relationship code and its telecoms."""
    return [(c["relationship"][0]["coding"][0]["code"], c["telecom"]) for c in person.get("contact", [])]


def test_an_emergency_mobile_is_an_emergency_contact_not_the_patients_mobile(tmp_path: Path) -> None:
    person = patient(tmp_path, "0371-65551234^PRN^PH~13903710002^EMR^CP")
    assert (person["telecom"], contacts(person)) == (
        [{"system": "phone", "value": "037165551234", "use": "home"}],
        [("C", [{"system": "phone", "value": "13903710002", "use": "mobile"}])],
    )


def test_an_emergency_landline_is_an_emergency_contact_without_a_use(tmp_path: Path) -> None:
    person = patient(tmp_path, "13803710001^PRN^CP~0371-65551234^EMR^PH")
    assert contacts(person) == [("C", [{"system": "phone", "value": "037165551234"}])]


def test_an_emergency_number_in_pid_14_is_an_emergency_contact_too(tmp_path: Path) -> None:
    person = patient(tmp_path, "13803710001^PRN^CP", "0371-65559999^EMR^PH")
    assert (len(person["telecom"]), contacts(person)) == (1, [("C", [{"system": "phone", "value": "037165559999"}])])


def test_an_emergency_repetition_listing_two_numbers_gives_two_emergency_contacts(tmp_path: Path) -> None:
    person = patient(tmp_path, "13803710001^PRN^CP~^EMR^PH^^^^^^^^^66668888 77779999")
    assert [telecoms[0]["value"] for _, telecoms in contacts(person)] == ["66668888", "77779999"]


def test_the_emergency_contact_s_number_names_its_repetition_in_lineage(tmp_path: Path) -> None:
    result = mapped(tmp_path, "13803710001^PRN^CP~13903710002^EMR^CP")
    assert result.lineage[("patient", "Patient.contact[0].telecom[0].value")].field == "PID-13~2.1"


def test_an_emergency_number_carried_by_a_contact_is_not_noted_as_left_out(tmp_path: Path) -> None:
    assert mapped(tmp_path, "13803710001^PRN^CP~0371-65551234^EMR^PH").omitted == []


def test_a_number_without_xtn_2_stays_the_patients(tmp_path: Path) -> None:
    person = patient(tmp_path, "13803710001^^CP")
    assert (person["telecom"], "contact" in person) == (
        [{"system": "phone", "value": "13803710001", "use": "mobile"}],
        False,
    )


def test_the_patient_with_an_emergency_contact_is_valid_against_the_provincial_profile(
    tmp_path: Path, validator: Validator
) -> None:
    person = patient(tmp_path, "13803710001^PRN^CP~13903710002^EMR^CP")
    assert errors(validator.validate(person)) == []


def test_an_emergency_email_belongs_to_the_emergency_contact_not_the_patient(tmp_path: Path) -> None:
    person = patient(tmp_path, "13803710001^PRN^CP~^EMR^Internet^son@163.com")
    assert (person["telecom"], contacts(person)) == (
        [{"system": "phone", "value": "13803710001", "use": "mobile"}],
        [("C", [{"system": "email", "value": "son@163.com"}])],
    )


def test_a_later_message_s_emergency_contact_replaces_the_earlier_one_in_the_archive(tmp_path: Path) -> None:
    """The son's number was the emergency contact; an A08 now gives the daughter's: she alone is."""
    files = []
    for control, emergency in (("R0001", "13903710002"), ("R0002", "13703710003")):
        path = tmp_path / f"{control}.hl7"
        message = MESSAGE.format(home=f"13803710001^PRN^CP~{emergency}^EMR^CP", work="")
        path.write_text(message.replace("R0001", control), encoding="utf-8")
        files.append(path)
    commands.ingest("hl7v2", files, tmp_path / "out", Registry())
    [person] = ndjson(tmp_path / "out/Patient.ndjson")
    assert [telecoms[0]["value"] for _, telecoms in contacts(person)] == ["13703710003"]


def test_two_hospitals_emergency_contacts_both_stay_each_marked_with_its_sender(tmp_path: Path) -> None:
    """One person in two hospitals (MSH-4 H41010500012, H41010200034): the second hospital's A08
    replaced the first's emergency contact, both HIS being of source hl7v2.  Each stays now, its
    mark naming the HIS that sent it (MSH-3^MSH-4); the first hospital's next A08 replaces its own."""
    files = []
    sent = (("R0001", "H41010500012", "13903710002"), ("R0002", "H41010200034", "13703710003"))
    for control, hospital, emergency in (*sent, ("R0003", "H41010500012", "13503710005")):
        path = tmp_path / f"{control}.hl7"
        message = MESSAGE.format(home=f"13803710001^PRN^CP~{emergency}^EMR^CP", work="")
        if hospital != "H41010500012":  # another hospital: its MSH-4, and no HIS 患者ID of the first
            message = message.replace("|HIS|H41010500012|", f"|HIS|{hospital}|").replace(
                "0000123^^^H41010500012^PI~", ""
            )
        path.write_text(message.replace("R0001", control), encoding="utf-8")
        files.append(path)
    commands.ingest("hl7v2", files, tmp_path / "out", Registry())
    [person] = ndjson(tmp_path / "out/Patient.ndjson")
    system = "http://fhir.yiyang.cn/sid/sending-system/hl7v2"
    assert [(c["telecom"][0]["value"], c["extension"][0]["valueIdentifier"]) for c in person["contact"]] == [
        ("13703710003", {"system": system, "value": "HIS^H41010200034"}),
        ("13503710005", {"system": system, "value": "HIS^H41010500012"}),
    ]

"""`yiyang ingest --source hl7v2` on the HIS ADT sample (A01, A03, A04, A08, A40 and broken
messages): exact FHIR output, exact quarantine reasons, reconciled counts — and the HL7 v2
reader's handling of separators, encodings, framing, repetitions and damaged messages.

The sample is ingested once per module; the pipeline tests only read its output."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest

from gateway.ingest import commands
from mappings.readers import ReaderError, hl7v2
from mappings.records import UNPARSEABLE, SourceRecord, unparseable_text
from profiles.registry import Registry
from tests.expected import ethnicity, gb_sex, zhang_employee_coverage
from tests.ingest_output import coding, keyed_id, ndjson, quarantined, reasons, sample_id, written

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "mappings/samples/hl7v2/adt.hl7"
FILE = "adt.hl7"
BASE = "http://fhir.yiyang.cn"
ZHANG_ID_CARD = "410105194912310020"
HIS_PATIENT_ID = f"{BASE}/sid/his-patient-id/H41010500012"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"


def visit_id(number_system: str, number: str, start: str) -> str:
    """A visit is keyed on its hospital (MSH-4), visit number and start."""
    return keyed_id("Encounter", "H41010500012", f"urn:oid:2.16.156.10011.1.{number_system}", number, start)


ZHANG = sample_id("hl7v2", FILE, "message 1", "patient")
ZHANG_PSN_NO = "41000000000000012345"
#: her Coverages, keyed on the 参保关系 (医保人员编号, 险种, 参保日期) as the 1101 reply's are
ZHANG_EMPLOYEE = keyed_id("Coverage", ZHANG_PSN_NO, "310", "2004-07-01")
ZHANG_LONG_TERM_CARE = keyed_id("Coverage", ZHANG_PSN_NO, "410", "2024-01-01")
ZHANG_STAY = visit_id("12", "ZY20261102003", "2026-11-02T09:15:00+08:00")
WANG = sample_id("hl7v2", FILE, "message 2", "patient")
LIU = sample_id("hl7v2", FILE, "message 3", "patient")


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, commands.Counts]:
    out = tmp_path_factory.mktemp("hl7v2")
    return out, commands.ingest("hl7v2", [SAMPLE], out, Registry(), bundle=False)


@pytest.fixture(scope="module")
def out(run: tuple[Path, commands.Counts]) -> Path:
    return run[0]


#: the mark of what the HIS sent (yy-ext-contact-source): its ADT's PID states her phones and addresses
HIS_MARK = {
    "url": f"{BASE}/StructureDefinition/yy-ext-contact-source",
    "valueIdentifier": {"system": f"{BASE}/sid/sending-system/hl7v2", "value": "HIS^H41010500012"},
}


def from_his(item: dict[str, Any]) -> dict[str, Any]:
    """A phone or address the HIS sent, with its mark."""
    return {**item, "extension": [*item.get("extension", []), HIS_MARK]}


def address(text: str, county: str, postcode: str) -> dict[str, Any]:
    return {
        "extension": [
            {
                "url": f"{BASE}/StructureDefinition/yy-ext-admin-division",
                "valueCoding": coding(f"{BASE}/CodeSystem/gb-t-2260", county),
            }
        ],
        "use": "home",
        "text": text,
        "city": "郑州市",
        "state": "河南省",
        "postalCode": postcode,
        "country": "CHN",
    }


def inpatient_stay(status: str) -> dict[str, Any]:
    """The parts the A01 and A03 Encounters of 张秀英's stay share."""
    return {
        "resourceType": "Encounter",
        "meta": {"profile": [f"{BASE}/StructureDefinition/yy-encounter"]},
        "identifier": [{"system": "urn:oid:2.16.156.10011.1.12", "value": "ZY20261102003"}],
        "status": status,
        "class": coding(ACT_CODE, "IMP", "inpatient encounter"),
        "type": [{"coding": [coding(f"{BASE}/CodeSystem/encounter-type", "inpatient", "住院")]}],
        "serviceType": {"text": "老年医学科"},
        "subject": {"reference": f"Patient/{ZHANG}"},
        "participant": [
            {
                "type": [
                    {
                        "coding": [
                            coding("http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "ATND", "attender")
                        ]
                    }
                ],
                "individual": {
                    "type": "Practitioner",
                    "identifier": {"system": "urn:oid:2.16.156.10011.1.4", "value": "D0417"},
                    "display": "李红梅",
                },
            }
        ],
        "serviceProvider": {
            "type": "Organization",
            "identifier": {"system": f"{BASE}/sid/nhsa-fixmedins-code", "value": "H41010500012"},
        },
    }


# -- counts -------------------------------------------------------------------------------------------
def test_every_message_read_is_either_mapped_or_quarantined(run: tuple[Path, commands.Counts]) -> None:
    counts = run[1]
    assert (counts.read, counts.mapped, counts.quarantined, counts.file_errors) == (13, 6, 7, [])


def test_the_good_messages_yield_the_expected_number_of_each_resource(run: tuple[Path, commands.Counts]) -> None:
    # 张秀英's A01 and A03 are one stay: one Encounter, and their IN1s the same two Coverages;
    # six messages name three people
    assert dict(run[1].resources) == {"Patient": 3, "Encounter": 3, "Coverage": 3, "Provenance": 6}


def test_the_archive_holds_one_patient_per_person(out: Path) -> None:
    assert sorted(p["name"][0]["text"] for p in ndjson(out / "Patient.ndjson")) == ["刘淑珍", "张秀英", "王建国"]


# -- Patient ------------------------------------------------------------------------------------------
def test_her_admission_discharge_and_update_become_exactly_the_expected_patient(out: Path) -> None:
    assert written(out, "Patient", ZHANG) == {
        "resourceType": "Patient",
        "id": ZHANG,
        "meta": {"profile": [f"{BASE}/StructureDefinition/yy-patient"]},
        "identifier": [
            {"system": "urn:oid:2.16.156.10011.1.3", "value": ZHANG_ID_CARD},
            {"system": HIS_PATIENT_ID, "value": "0000123"},
            {"system": f"{BASE}/sid/nhsa-psn-no", "value": "41000000000000012345"},
        ],
        "active": True,
        "name": [{"text": "张秀英"}],
        # the A08 (message 5) added her home phone to the mobile number of the A01
        "telecom": [
            from_his({"system": "phone", "value": "13803710001", "use": "mobile"}),
            from_his({"system": "phone", "value": "037165551234", "use": "home"}),
        ],
        "gender": "female",
        "_gender": gb_sex("2", "女性"),
        "birthDate": "1949-12-31",
        "extension": ethnicity("01", "汉族"),
        "address": [from_his(address("河南省郑州市金水区经八路街道幸福社区3号楼", "410105", "450008"))],
        "maritalStatus": {"coding": [coding("urn:oid:2.16.156.10011.2.3.3.5", "30", "丧偶")]},
    }


def test_the_merge_keeps_the_retired_his_number_on_the_surviving_patient_as_old(out: Path) -> None:
    assert written(out, "Patient", WANG)["identifier"] == [
        {"system": "urn:oid:2.16.156.10011.1.3", "value": "410102194503080018"},
        {"system": HIS_PATIENT_ID, "value": "0000456"},
        {"system": f"{BASE}/sid/nhsa-psn-no", "value": "41000000000000067890"},
        {"use": "old", "system": HIS_PATIENT_ID, "value": "0000789"},
    ]


def test_the_merge_makes_no_link_to_a_patient_the_archive_never_held(out: Path) -> None:
    assert "link" not in written(out, "Patient", WANG)


def test_chinese_sex_words_and_a_landline_are_mapped_for_the_emergency_patient(out: Path) -> None:
    patient = written(out, "Patient", LIU)
    assert (patient["gender"], patient["_gender"], patient["telecom"]) == (
        "female",
        gb_sex("2", "女性"),
        [from_his({"system": "phone", "value": "037168801234", "use": "home"})],
    )


# -- Encounter ----------------------------------------------------------------------------------------
def test_the_admission_alone_becomes_exactly_the_in_progress_stay() -> None:
    admission = next(r for r in hl7v2.read_hl7(SAMPLE, "hl7v2") if r.location == "message 1")
    mapped = commands.build_engine(Registry()).map(admission)
    assert mapped.resources["encounter"] == {
        **inpatient_stay("in-progress"),
        "id": ZHANG_STAY,
        "period": {"start": "2026-11-02T09:15:00+08:00"},
    }


def test_the_discharge_finishes_the_stay_its_admission_opened_in_one_encounter(out: Path) -> None:
    assert [e for e in ndjson(out / "Encounter.ndjson") if e["id"] == ZHANG_STAY] == [
        {
            **inpatient_stay("finished"),
            "id": ZHANG_STAY,
            "period": {"start": "2026-11-02T09:15:00+08:00", "end": "2026-11-12T10:30:00+08:00"},
            "hospitalization": {"dischargeDisposition": {"text": "医嘱离院"}},
        }
    ]


def test_the_outpatient_registration_becomes_exactly_the_expected_arrived_encounter(out: Path) -> None:
    encounter_id = visit_id("11", "MZ20261103017", "2026-11-03T08:05:00+08:00")
    expected = inpatient_stay("arrived") | {
        "id": encounter_id,
        "identifier": [{"system": "urn:oid:2.16.156.10011.1.11", "value": "MZ20261103017"}],
        "class": coding(ACT_CODE, "AMB", "ambulatory"),
        "type": [{"coding": [coding(f"{BASE}/CodeSystem/encounter-type", "outpatient", "门诊")]}],
        "serviceType": {"text": "老年病门诊"},
        "subject": {"reference": f"Patient/{WANG}"},
        "period": {"start": "2026-11-03T08:05:00+08:00"},
    }
    expected["participant"][0]["individual"] |= {
        "identifier": {"system": "urn:oid:2.16.156.10011.1.4", "value": "D0522"},
        "display": "孙立新",
    }
    assert written(out, "Encounter", encounter_id) == expected


def test_an_emergency_registration_is_class_emer_with_its_utc_time_moved_to_beijing_time(out: Path) -> None:
    encounter = written(out, "Encounter", visit_id("11", "JZ20261104052", "2026-11-04T22:18:00+08:00"))
    assert (encounter["class"]["code"], encounter["type"][0]["coding"][0]["code"], encounter["period"]) == (
        "EMER",
        "outpatient",
        {"start": "2026-11-04T22:18:00+08:00"},
    )


# -- Coverage -----------------------------------------------------------------------------------------
def test_her_first_in1_becomes_exactly_the_expected_coverage(out: Path) -> None:
    assert written(out, "Coverage", ZHANG_EMPLOYEE) == zhang_employee_coverage(
        ZHANG_EMPLOYEE, ZHANG, "郑州市医疗保障局"
    )


def test_her_second_in1_becomes_a_long_term_care_coverage(out: Path) -> None:
    coverage = written(out, "Coverage", ZHANG_LONG_TERM_CARE)
    assert (coverage["type"], coverage["period"]) == (
        {"coding": [coding(f"{BASE}/CodeSystem/nhsa-insutype", "410", "长期照护保险")]},
        {"start": "2024-01-01"},
    )


def test_a_later_message_with_the_same_in1_updates_the_same_coverages(tmp_path: Path) -> None:
    """Her admission resent under a new control id, as an interface engine does after a restart:
    its IN1s name the same 参保关系 (医保人员编号, 险种, 参保日期), so still one Coverage each."""
    admission = b"MSH|" + SAMPLE.read_bytes().split(b"MSH|")[1]
    resent = admission.replace(b"|HIS20261102091502|", b"|HIS20261102091599|")
    (tmp_path / "adt.hl7").write_bytes(admission + resent)
    counts = commands.ingest("hl7v2", [tmp_path / "adt.hl7"], tmp_path / "out", Registry(), bundle=False)
    ids = [c["id"] for c in ndjson(tmp_path / "out" / "Coverage.ndjson")]
    assert (counts.mapped, sorted(ids)) == (2, sorted([ZHANG_EMPLOYEE, ZHANG_LONG_TERM_CARE]))


def test_a_self_paying_patient_without_in1_gets_no_coverage(out: Path) -> None:
    assert [c for c in ndjson(out / "Coverage.ndjson") if c["beneficiary"]["reference"] == f"Patient/{LIU}"] == []


# -- Provenance ---------------------------------------------------------------------------------------
def test_provenance_names_the_hl7_field_each_element_came_from(out: Path) -> None:
    provenance = next(
        p
        for p in ndjson(out / "Provenance.ndjson")
        if p["entity"][0]["what"]["identifier"]["value"].endswith("message 1")
    )
    lineage = {e["valueString"] for e in provenance["entity"][0]["extension"]}
    assert {
        "Patient.identifier[0].value ← adt.hl7 message 1, field PID-3[ID].1",
        "Encounter.class ← adt.hl7 message 1, field PV1-2.1",
        "Coverage.subscriberId ← adt.hl7 message 1, field IN1[1].IN1-49.1",
    } <= lineage


# -- quarantine -----------------------------------------------------------------------------------------
def test_a_wrong_id_card_check_character_is_quarantined_naming_pid_3(out: Path) -> None:
    assert reasons(out, "message 7") == [
        ("rule.id-card-checksum", "Patient.identifier[0].value", "adt.hl7 message 7, field PID-3[ID].1")
    ]


def test_an_impossible_birth_date_is_quarantined_naming_pid_7(out: Path) -> None:
    assert reasons(out, "message 8") == [
        ("mapping.impossible-date", "Patient.birthDate", "adt.hl7 message 8, field PID-7.1"),
        ("profile.cardinality-min", "Patient.birthDate", "adt.hl7 message 8, field PID-7.1"),
    ]


def test_an_unknown_sex_code_is_quarantined_naming_pid_8(out: Path) -> None:
    assert reasons(out, "message 9") == [
        ("mapping.unknown-code", "Patient.gender", "adt.hl7 message 9, field PID-8.1"),
        ("profile.cardinality-min", "Patient.gender", "adt.hl7 message 9, field PID-8.1"),
    ]


def test_a_message_split_by_a_line_break_is_quarantined_as_unparseable(out: Path) -> None:
    assert (reasons(out, "message 10"), quarantined(out, "message 10")["fields"]) == (
        [("ingest.unreadable", None, None)],
        {
            "UNPARSEABLE": {
                "id": "reader.hl7-not-a-segment",
                "params": {"segment": 4, "start": "'红专路北二街6号院^^郑州市^河南省^450008^CHN^'"},
            }
        },
    )


def test_the_unparseable_message_keeps_its_original_bytes(out: Path) -> None:
    tenth = b"MSH|" + SAMPLE.read_bytes().split(b"MSH|")[10]  # the sample has no blank lines between messages
    assert base64.b64decode(quarantined(out, "message 10")["raw"]) == tenth


def test_a_quarantined_message_keeps_its_in1_segments_as_a_list_for_replay(out: Path) -> None:
    assert [i["IN1-2.1"] for i in quarantined(out, "message 7")["fields"]["IN1"]] == ["310"]


def test_a_message_sent_twice_is_quarantined_as_a_duplicate_of_the_first(out: Path) -> None:
    assert quarantined(out, "message 11")["reasons"][0]["en"] == "Duplicate of message 2"


def test_a_discharge_without_its_discharge_time_is_quarantined_naming_pv1_45(out: Path) -> None:
    assert reasons(out, "message 12") == [
        ("mapping.missing-required", "Encounter.period.end", "adt.hl7 message 12, field PV1-45.1")
    ]


def test_a_message_type_no_spec_maps_is_quarantined(out: Path) -> None:
    assert (quarantined(out, "message 13")["shape"], reasons(out, "message 13")) == (
        ["MSH", "OBR", "OBX", "ORU^R01", "PID", "R01"],
        [("ingest.no-spec", None, None)],
    )


# -- the reader ---------------------------------------------------------------------------------------
MSH = "MSH|^~\\&|HIS|H41010500012|GW|YYPT|20261102091502||ADT^A08^ADT_A01|C{n}|P|2.5"
PID = "PID|1||0000123^^^H41010500012^PI~410105194912310020^^^^ID||张秀英||19491231|F"


def message(n: int = 1, *segments: str) -> str:
    return "\r".join([MSH.format(n=n), *(segments or [PID])])


def read(tmp_path: Path, data: bytes) -> list[SourceRecord]:
    path = tmp_path / "feed.hl7"
    path.write_bytes(data)
    return list(hl7v2.read_hl7(path, "hl7v2"))


def english(record: SourceRecord) -> str:
    """Why the message is UNPARSEABLE, in English (test_reader_messages tests the wording)."""
    return unparseable_text(record.fields[UNPARSEABLE], "en")


@pytest.mark.parametrize("separator", ["\r", "\n", "\r\n"])
def test_each_msh_starts_a_new_record_whatever_the_segment_separator(tmp_path: Path, separator: str) -> None:
    data = "\r".join([message(1), message(2), message(3), ""]).replace("\r", separator)
    assert [r.fields["MSH-10"] for r in read(tmp_path, data.encode())] == ["C1", "C2", "C3"]


def test_records_are_located_as_numbered_messages(tmp_path: Path) -> None:
    records = read(tmp_path, (message(1) + "\r" + message(2) + "\r").encode())
    assert [(r.location, r.field_label) for r in records] == [("message 1", "field"), ("message 2", "field")]


@pytest.mark.parametrize("chunk", [1, 2, 7])
def test_records_do_not_depend_on_where_the_read_chunks_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk: int
) -> None:
    data = "\r".join([message(1), message(2), message(3), ""]).replace("\r", "\r\n").encode()
    whole = [(r.fields, r.raw) for r in read(tmp_path, data)]
    monkeypatch.setattr(hl7v2, "_CHUNK", chunk)
    assert [(r.fields, r.raw) for r in read(tmp_path, data)] == whole


def test_raw_is_each_message_exactly_as_it_stands_in_the_file(tmp_path: Path) -> None:
    first, second = (message(1) + "\r\n").encode(), (message(2) + "\n\n").encode()
    assert [r.raw for r in read(tmp_path, first + second)] == [first, second.rstrip(b"\n") + b"\n"]


def test_mllp_framing_and_a_batch_envelope_belong_to_no_message(tmp_path: Path) -> None:
    data = f"FHS|^~\\&|HIS\rBHS|^~\\&|HIS\r\x0b{message(1)}\r\x1c\r\x0b{message(2)}\r\x1c\rBTS|2\rFTS|1\r"
    assert [sorted(r.shape) for r in read(tmp_path, data.encode())] == [["A08", "ADT^A08", "MSH", "PID"]] * 2


def test_a_gb18030_message_is_decoded_next_to_a_utf8_one(tmp_path: Path) -> None:
    data = (message(1) + "\r").encode("utf-8") + (message(2) + "\r").encode("gb18030")
    assert [r.fields["PID-5"] for r in read(tmp_path, data)] == ["张秀英", "张秀英"]


#: surnames and given names whose GB18030 bytes are also valid UTF-8 (谢伟 is D0 BB CE B0, "лΰ")
SURNAMES = "郑谢肖袁叶魏姚卢陆石韦薛史毛钱莫"
GIVEN_NAMES = "英伟强霞平梅志"
#: MSH-13 to MSH-18 (the country, then the character set)
GB18030 = "|||||CHN|GB 18030-2000"


def gb18030_feed(surname: str, declared: bool) -> bytes:
    """One message per given name, in GB18030, the name alone in PID; only the department in PV1
    (老年医学科, whose bytes are not UTF-8) shows a reader without MSH-18 what the message is."""
    header = MSH + (GB18030 if declared else "")
    messages = [
        message(n, f"PID|1||0000123^^^H41010500012^PI||{surname}{given}", "PV1|1|I|||||||||老年医学科").replace(
            MSH.format(n=n), header.format(n=n)
        )
        for n, given in enumerate(GIVEN_NAMES, start=1)
    ]
    return ("\r".join(messages) + "\r").encode("gb18030")


@pytest.mark.parametrize("declared", [True, False], ids=["MSH-18", "no MSH-18"])
@pytest.mark.parametrize("surname", SURNAMES)
def test_a_gb18030_message_is_decoded_whole_even_where_its_name_is_also_utf8(
    tmp_path: Path, surname: str, declared: bool
) -> None:
    records = read(tmp_path, gb18030_feed(surname, declared))
    assert [r.fields.get("PID-5") for r in records] == [surname + given for given in GIVEN_NAMES]


def test_a_gbk_facility_whose_bytes_hold_delimiters_is_read(tmp_path: Path) -> None:
    """東 and 區 end in the bytes of "|" and "^" in GBK: the header's fields must not shift."""
    facility = "郑州東區医院"
    header = (MSH + GB18030).format(n=1).replace("|H41010500012|", f"|{facility}|", 1)
    data = header + "\rPID|1||0000123^^^H41010500012^PI||张秀英\r"
    record = read(tmp_path, data.encode("gbk"))[0]
    assert (record.fields.get("MSH-4"), record.fields.get("PID-5")) == (facility, "张秀英")


@pytest.mark.parametrize("charset", ["GBK", "gb2312", "GB18030", "UTF-8", "utf8"])
def test_a_character_set_named_as_chinese_his_name_it_is_read(tmp_path: Path, charset: str) -> None:
    """MSH-18 as HIS interfaces write it (their platform's codec name), not as table 0211 does."""
    data = (MSH + f"|||||CHN|{charset}").format(n=1) + "\rPID|1||0000123^^^H41010500012^PI||谢伟\r"
    encoding = "utf-8" if charset.upper().startswith("UTF") else "gb18030"
    assert read(tmp_path, data.encode(encoding))[0].fields.get("PID-5") == "谢伟"


@pytest.mark.parametrize("charset", ["Unicode UTF-8", "unicode utf-8", "gb 18030-2000", "GB18030-2005"])
def test_a_table_character_set_in_another_case_or_year_is_read(tmp_path: Path, charset: str) -> None:
    """MSH-18 names a table 0211 set in its own capitals, or GB 18030 by another edition's year."""
    data = (MSH + f"|||||CHN|{charset}").format(n=1) + "\rPID|1||0000123^^^H41010500012^PI||张秀英\r"
    encoding = "utf-8" if "UTF" in charset.upper() else "gb18030"
    assert read(tmp_path, data.encode(encoding))[0].fields.get("PID-5") == "张秀英"


def test_hex_escapes_are_read_in_the_character_set_msh_18_declares(tmp_path: Path) -> None:
    data = (MSH + GB18030).format(n=1) + "\rPID|1||0000123^^^H41010500012^PI||\\XD0BBCEB0\\\r"
    assert read(tmp_path, data.encode("ascii"))[0].fields["PID-5"] == "谢伟"


@pytest.mark.parametrize(
    ("charset", "encoding", "why"),
    [
        ("KOI8-R", "gb18030", "MSH-18: the character set 'KOI8-R' is not one of ASCII, 8859/1"),
        ("ASCII", "gb18030", "MSH-18: the message (or a hex escape in it) is not ascii text, as MSH-18 declares"),
        ("UNICODE UTF-8", "gb18030", "MSH-18: the message (or a hex escape in it) is not utf-8 text"),
    ],
)
def test_a_message_in_a_character_set_it_does_not_declare_is_not_read(
    tmp_path: Path, charset: str, encoding: str, why: str
) -> None:
    data = (MSH + f"|||||CHN|{charset}").format(n=1) + "\rPID|1||||张秀英\r"
    record = read(tmp_path, data.encode(encoding))[0]
    assert (record.shape, english(record).startswith(why)) == (frozenset({"UNPARSEABLE"}), True)


@pytest.mark.parametrize(("processing", "version"), [("P", "2.3"), ("P", "2.3.1"), ("P^T", "2.4"), ("P", "2.5.1^CHN")])
def test_production_messages_of_versions_2_3_to_2_5_1_are_read(tmp_path: Path, processing: str, version: str) -> None:
    data = message(1).replace("|P|2.5", f"|{processing}|{version}", 1)
    assert "ADT^A08" in read(tmp_path, data.encode())[0].shape


@pytest.mark.parametrize(
    ("processing", "version", "field"),
    [
        ("P", "9.9", "MSH-12"),
        ("P", "2.6", "MSH-12"),
        ("P", "", "MSH-12"),
        ("T", "2.5", "MSH-11"),
        ("D", "2.5", "MSH-11"),
    ],
)
def test_a_message_of_another_version_or_not_for_production_is_refused_naming_the_field(
    tmp_path: Path, processing: str, version: str, field: str
) -> None:
    data = message(1).replace("|P|2.5", f"|{processing}|{version}", 1).encode()
    record = read(tmp_path, data)[0]
    refused = hl7v2.refusal(data)
    reason = {"MSH-12": "reader.hl7-version", "MSH-11": "reader.hl7-processing-id"}[field]
    assert (record.fields["UNPARSEABLE"]["id"], refused and refused.field) == (reason, field)


def test_a_training_message_given_to_ingest_is_quarantined_saying_why(tmp_path: Path) -> None:
    """The reader refuses it, so ``yiyang ingest`` and ``$ingest`` quarantine it as MLLP does."""
    path = tmp_path / "adt.hl7"
    path.write_bytes(b"MSH|" + SAMPLE.read_bytes().split(b"MSH|")[1].replace(b"|P|2.5|", b"|T|2.5|", 1))
    counts = commands.ingest("hl7v2", [path], tmp_path / "out", Registry(), bundle=False)
    why = quarantined(tmp_path / "out", "message 1")["fields"]["UNPARSEABLE"]
    assert (counts.quarantined, why) == (1, {"id": "reader.hl7-processing-id", "params": {"value": "T"}})


def test_the_shape_is_the_message_type_its_trigger_and_the_segments_present(tmp_path: Path) -> None:
    assert read(tmp_path, message(1, PID, "PV1|1|I").encode())[0].shape == {"ADT^A08", "A08", "MSH", "PID", "PV1"}


def test_components_and_repetitions_are_keyed_in_hl7_notation(tmp_path: Path) -> None:
    fields = read(tmp_path, message(1).encode())[0].fields
    assert {k: fields[k] for k in ("PID-3", "PID-3.1", "PID-3.4", "PID-3~2", "PID-3~2.1", "PID-5", "PID-5.1")} == {
        "PID-3": "0000123^^^H41010500012^PI",
        "PID-3.1": "0000123",
        "PID-3.4": "H41010500012",
        "PID-3~2": "410105194912310020^^^^ID",
        "PID-3~2.1": "410105194912310020",
        "PID-5": "张秀英",
        "PID-5.1": "张秀英",
    }


def test_identifier_repetitions_are_also_keyed_by_their_type_code(tmp_path: Path) -> None:
    fields = read(tmp_path, message(1).encode())[0].fields
    assert (fields["PID-3[ID].1"], fields["PID-3[PI].1"], fields["PID-3[PI].4"]) == (
        "410105194912310020",
        "0000123",
        "H41010500012",
    )


def test_keys_by_type_code_are_views_of_the_repetition_they_name(tmp_path: Path) -> None:
    views = read(tmp_path, message(1).encode())[0].views
    assert (views["PID-3[ID]"], views["PID-3[ID].1"], views["PID-3[PI].4"]) == ("PID-3~2", "PID-3~2.1", "PID-3.4")


def test_flat_keys_of_a_listed_segment_are_views_of_the_list(tmp_path: Path) -> None:
    views = read(tmp_path, message(1, PID, "IN1|1|310", "IN1|2|410").encode())[0].views
    assert (views["IN1-2"], views["IN1-2.1"]) == ("IN1", "IN1")


def test_subcomponents_are_keyed_only_where_a_component_has_them(tmp_path: Path) -> None:
    fields = read(tmp_path, message(1, "PID|1||0000123^^^H41010500012&1.2.156&ISO^PI").encode())[0].fields
    assert (fields["PID-3.4"], fields["PID-3.4.1"], fields["PID-3.4.3"], "PID-3.1.1" in fields) == (
        "H41010500012&1.2.156&ISO",
        "H41010500012",
        "ISO",
        False,
    )


def test_repeating_segments_are_listed_one_dict_per_occurrence(tmp_path: Path) -> None:
    record = read(tmp_path, message(1, PID, "IN1|1|310", "IN1|2|410").encode())[0]
    assert ([i["IN1-2.1"] for i in record.fields["IN1"]], record.fields["IN1-2"]) == (["310", "410"], "310")


def test_a_single_in1_is_still_a_list_so_each_can_iterate_it(tmp_path: Path) -> None:
    assert read(tmp_path, message(1, PID, "IN1|1|310").encode())[0].fields["IN1"] == [
        {"IN1-1": "1", "IN1-1.1": "1", "IN1-2": "310", "IN1-2.1": "310"}
    ]


def test_escape_sequences_are_decoded(tmp_path: Path) -> None:
    fields = read(tmp_path, message(1, r"PID|1||||张\T\李^秀英||||||经三路\F\12号").encode())[0].fields
    assert (fields["PID-5.1"], fields["PID-11"]) == ("张&李", "经三路|12号")


@pytest.mark.parametrize("count", ["\u00b2", "\uff13"])
def test_a_repeat_count_not_in_ascii_digits_is_an_unknown_escape(tmp_path: Path, count: str) -> None:
    """``str.isdigit`` takes both: ``²`` was a ValueError out of the reader, stopping the file;
    the full-width three repeated the line break three times."""
    record = read(tmp_path, message(1, f"PID|1||||张\\.sp{count}\\李").encode())[0]
    assert english(record) == f"PID-5: unknown escape sequence \\.sp{count}\\"


def test_the_hl7_explicit_null_and_empty_values_are_left_out(tmp_path: Path) -> None:
    fields = read(tmp_path, message(1, 'PID|1||""||张秀英|||""').encode())[0].fields
    assert [k for k in fields if k.startswith("PID")] == ["PID-1", "PID-1.1", "PID-5", "PID-5.1"]


@pytest.mark.parametrize(
    ("sent", "given"),
    [
        ("1949", "1949"),
        ("194912", "1949-12"),
        ("19491231", "1949-12-31"),
        ("1949123108", "1949-12-31 08:00:00"),
        ("19491231083000.1234", "1949-12-31 08:30:00"),
        ("20261102091500+0800", "2026-11-02 09:15:00"),
        ("20261104141800+0000", "2026-11-04 22:18:00"),
        ("20261231200000-0500", "2027-01-01 09:00:00"),
        ("19520230", "1952-02-30"),
        ("19520230120000+0000", "1952-02-30 12:00:00"),
        ("1949-12-31", "1949-12-31"),
        ("unknown", "unknown"),
    ],
)
def test_timestamps_are_given_in_iso_form_in_beijing_time(sent: str, given: str) -> None:
    assert hl7v2.iso_timestamp(sent) == given


def test_date_time_fields_reach_the_specs_in_iso_form(tmp_path: Path) -> None:
    record = read(tmp_path, message(1, PID, "PV1|1|I" + "|" * 42 + "20261102091500").encode())[0]
    assert (record.fields["PID-7"], record.fields["PV1-44.1"], record.fields["MSH-7"]) == (
        "1949-12-31",
        "2026-11-02 09:15:00",
        "2026-11-02 09:15:02",
    )


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("MSH|^~|HIS\rPID|1", "MSH-1/MSH-2: no valid field separator and encoding characters"),
        ("MSH", "MSH-1/MSH-2: no valid field separator and encoding characters"),
        ("MSH|^~\\&|HIS|H1|||20261102|||C1|P|2.5\rPID|1", "MSH-9 (message type) is empty"),
        (
            "MSH|^~\\&|HIS|H1|||20261102||ADT^A08|C1|P|2.5\r锟斤拷烫烫烫",
            "segment 2 is not an HL7 segment: '锟斤拷烫烫烫'",
        ),
        ("MSH|^~\\&|HIS|H1|||20261102||ADT^A08|C1|P|2.5\rpid|1", "segment 2 is not an HL7 segment: 'pid|1'"),
    ],
)
def test_a_message_that_cannot_be_parsed_becomes_an_unparseable_record(tmp_path: Path, text: str, why: str) -> None:
    record = read(tmp_path, (text + "\r").encode())[0]
    assert (record.shape, english(record)) == (frozenset({"UNPARSEABLE"}), why)


def test_an_unparseable_message_does_not_stop_the_messages_after_it(tmp_path: Path) -> None:
    data = f"{message(1)}\rMSH|^~\\&|HIS|H1|||20261102|||C2|P|2.5\r{message(3)}\r"
    assert [sorted(r.shape)[0] for r in read(tmp_path, data.encode())] == ["A08", "UNPARSEABLE", "A08"]


def test_text_after_a_batch_trailer_is_kept_as_an_unparseable_record(tmp_path: Path) -> None:
    data = f"{message(1)}\rBTS|1\rthis line belongs to no message\r"
    assert read(tmp_path, data.encode())[1].fields == {
        "UNPARSEABLE": {"id": "reader.hl7-outside-message", "params": {}}
    }


@pytest.mark.parametrize("envelope", ["BHS|^~\\&|HIS|H41010500012\r", "FHS|^~\\&|HIS\rBHS|^~\\&|HIS\r"])
def test_a_batch_sent_as_one_frame_is_refused_as_a_batch(envelope: str) -> None:
    """It was "content outside any message", which told the sender nothing of what it did."""
    frame = (envelope + message(1) + "\rBTS|1\r").encode()
    reason = hl7v2.read_message(frame, "hl7v2", "MLLP").fields["UNPARSEABLE"]
    assert (reason["id"], reason["params"]["segment"]) == ("reader.hl7-batch-frame", envelope[:3])


def test_a_file_that_does_not_begin_with_msh_is_refused_as_a_whole(tmp_path: Path) -> None:
    with pytest.raises(ReaderError, match="not an HL7 v2 file"):
        read(tmp_path, "序号,姓名,身份证号\r\n1,张秀英,410105194912310020\r\n".encode())


def test_an_empty_file_yields_no_records(tmp_path: Path) -> None:
    assert read(tmp_path, b"\r\n\r\n") == []

"""`yiyang ingest --source insurance` on the 医保 samples: the 1101 reply, a batch of 1101 replies
(NDJSON) and a page of 长护险失能等级评估 results — exact FHIR output, exact quarantine reasons,
reconciled counts — and the JSON reader's handling of NDJSON lines."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest

from gateway.ingest import commands
from mappings.readers.json_export import read_json
from profiles.registry import Registry
from tests.expected import ethnicity, gb_sex, zhang_employee_coverage
from tests.ingest_output import coding, keyed_id, ndjson, quarantined, reasons, sample_id, written

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "mappings/samples/insurance"
FILES = [SAMPLES / "1101.json", SAMPLES / "1101-replies.ndjson", SAMPLES / "长护险失能评估.json"]
BASE = "http://fhir.yiyang.cn"
ZHANG_ID_CARD = "410105194912310020"


ZHANG = sample_id("insurance", "1101.json", "record 1", "patient")
LTC = "insurance/ltc-assessment"
LTC_FILE = "长护险失能评估.json"
ASSESSOR = keyed_id("Practitioner", f"{BASE}/sid/nhsa-practitioner-code", "D410100000123")
AGENCY = keyed_id("Organization", f"{BASE}/sid/uscc", "124101004158001231")


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, commands.Counts]:
    out = tmp_path_factory.mktemp("insurance")
    counts = commands.ingest("insurance", FILES, out, Registry(), bundle=False)
    return out, counts


@pytest.fixture(scope="module")
def out(run: tuple[Path, commands.Counts]) -> Path:
    return run[0]


# -- counts ---------------------------------------------------------------------------------------
def test_every_record_read_is_either_mapped_or_quarantined(run: tuple[Path, commands.Counts]) -> None:
    counts = run[1]
    assert (counts.read, counts.mapped, counts.quarantined, counts.file_errors) == (21, 10, 11, [])


# -- 1101 reply → Patient + Coverage ----------------------------------------------------------------
def test_the_1101_reply_becomes_exactly_the_expected_patient(out: Path) -> None:
    assert written(out, "Patient", ZHANG) == {
        "resourceType": "Patient",
        "id": ZHANG,
        "meta": {"profile": [f"{BASE}/StructureDefinition/yy-patient"]},
        "identifier": [
            {"system": "urn:oid:2.16.156.10011.1.3", "value": ZHANG_ID_CARD},
            {"system": f"{BASE}/sid/nhsa-psn-no", "value": "41000000000000012345"},
        ],
        "active": True,
        "name": [{"text": "张秀英"}],
        "gender": "female",
        "_gender": gb_sex("2", "女性"),
        "birthDate": "1949-12-31",
        "extension": ethnicity("01", "汉族"),
    }


def test_the_first_insuinfo_item_becomes_exactly_the_expected_coverage(out: Path) -> None:
    coverage_id = keyed_id("Coverage", "41000000000000012345", "310", "2004-07-01")  # psn_no, insutype, psn_insu_date
    assert written(out, "Coverage", coverage_id) == zhang_employee_coverage(coverage_id, ZHANG, "参保地医疗保障局")


def test_each_insuinfo_item_becomes_one_coverage_of_the_person(out: Path) -> None:
    types = sorted(
        c["type"]["coding"][0]["code"]
        for c in ndjson(out / "Coverage.ndjson")
        if c["beneficiary"]["reference"] == f"Patient/{ZHANG}"
    )
    assert types == ["310", "330"]


def test_paused_insurance_stays_active_with_status_2_and_the_pause_date_as_period_end(out: Path) -> None:
    coverage = written(out, "Coverage", keyed_id("Coverage", "41000000000000023456", "310", "2008-03-01"))
    assert (coverage["status"], coverage["extension"][0]["valueCoding"]["code"], coverage["period"]) == (
        "active",
        "2",
        {"start": "2008-03-01", "end": "2025-12-31"},
    )


def test_terminated_insurance_is_cancelled(out: Path) -> None:
    coverage = written(out, "Coverage", keyed_id("Coverage", "41000000000000023456", "390", "2004-01-01"))
    assert (coverage["status"], coverage["extension"][0]["valueCoding"]["code"]) == ("cancelled", "4")


# -- 长护险失能评估 → Observation -----------------------------------------------------------------
def test_an_ltc_assessment_becomes_exactly_the_expected_observation(out: Path) -> None:
    observation_id = sample_id("insurance", LTC_FILE, "record 1", "assessment")

    def component(code: str, display: str, score: int) -> dict[str, Any]:
        return {"code": {"coding": [coding(f"{BASE}/CodeSystem/ltc-indicator", code, display)]}, "valueInteger": score}

    assert written(out, "Observation", observation_id) == {
        "resourceType": "Observation",
        "id": observation_id,
        "meta": {"profile": [f"{BASE}/StructureDefinition/yy-observation-ltc-disability"]},
        "identifier": [{"type": {"text": "长护险失能评估编号"}, "value": "LTC4101002026100001"}],
        "status": "final",
        "category": [{"coding": [coding("http://terminology.hl7.org/CodeSystem/observation-category", "survey")]}],
        "code": {
            "coding": [coding(f"{BASE}/CodeSystem/ltc-indicator", "disability-level", "长期护理失能等级（评定结论）")]
        },
        "subject": {"reference": f"Patient/{ZHANG}"},
        "effectiveDateTime": "2026-10-20T09:00:00+08:00",
        "performer": [
            {"reference": f"Practitioner/{ASSESSOR}"},
            {"reference": f"Organization/{AGENCY}"},
        ],
        "valueCodeableConcept": {"coding": [coding(f"{BASE}/CodeSystem/ltc-disability-level", "3", "重度失能Ⅰ级")]},
        "note": [{"text": "2026年9月跌倒致股骨颈骨折，术后卧床，日常生活活动能力重度依赖，需长期照护"}],
        "component": [
            component("adl", "日常生活活动能力", 35),
            component("cognition", "认知能力", 9),
            component("perception-communication", "感知觉与沟通能力", 6),
        ],
    }


def test_the_assessor_becomes_a_practitioner_with_the_nhsa_practitioner_code(out: Path) -> None:
    assert written(out, "Practitioner", ASSESSOR) == {
        "resourceType": "Practitioner",
        "id": ASSESSOR,
        "meta": {"profile": [f"{BASE}/StructureDefinition/yy-practitioner"]},
        "identifier": [{"system": f"{BASE}/sid/nhsa-practitioner-code", "value": "D410100000123"}],
        "name": [{"text": "王芳"}],
    }


def test_the_assessment_agency_becomes_an_organization_with_its_credit_code_and_kind(out: Path) -> None:
    assert written(out, "Organization", AGENCY) == {
        "resourceType": "Organization",
        "id": AGENCY,
        "meta": {"profile": [f"{BASE}/StructureDefinition/yy-organization"]},
        "identifier": [{"system": f"{BASE}/sid/uscc", "value": "124101004158001231"}],
        "active": True,
        "type": [{"coding": [coding(f"{BASE}/CodeSystem/organization-type", "medical-institution", "医疗机构")]}],
        "name": "郑州市嘉和康复医院",
    }


def test_the_shared_elder_of_the_reply_and_the_assessment_is_one_patient(out: Path) -> None:
    people = [
        p
        for p in ndjson(out / "Patient.ndjson")
        if {"system": "urn:oid:2.16.156.10011.1.3", "value": ZHANG_ID_CARD} in p["identifier"]
    ]
    assert [p["id"] for p in people] == [ZHANG]


def test_every_mapped_record_has_provenance_naming_the_insurance_platform(out: Path) -> None:
    displays = sorted(p["entity"][0]["what"]["display"] for p in ndjson(out / "Provenance.ndjson"))
    assert displays == [
        "医保信息平台：1101-replies.ndjson line 1",
        "医保信息平台：1101-replies.ndjson line 10",
        "医保信息平台：1101-replies.ndjson line 11",
        "医保信息平台：1101-replies.ndjson line 9",
        "医保信息平台：1101.json record 1",
        "医保信息平台：长护险失能评估.json record 1",
        "医保信息平台：长护险失能评估.json record 2",
        "医保信息平台：长护险失能评估.json record 7",
        "医保信息平台：长护险失能评估.json record 8",
        "医保信息平台：长护险失能评估.json record 9",
    ]


def test_the_long_term_care_cover_of_the_assessed_starts_with_the_citys_scheme(out: Path) -> None:
    """The 1101 replies of the three people assessed for 长护险 in June and July show them insured
    under insutype 410 in 郑州 (410100) from 2024-01-01, the assumed start of 郑州's scheme (U, see
    docs/mappings.md), never earlier."""
    starts = sorted(
        (c["subscriberId"], c["period"]["start"])
        for c in ndjson(out / "Coverage.ndjson")
        if c["type"]["coding"][0]["code"] == "410"
    )
    assert starts == [
        ("41000000000000090040", "2024-01-01"),
        ("41000000000000090079", "2024-01-01"),
        ("41000000000000090085", "2024-01-01"),
    ]


# -- quarantine: 1101 replies ---------------------------------------------------------------------
def test_a_reply_with_a_bad_id_card_checksum_is_quarantined_naming_certno(out: Path) -> None:
    assert reasons(out, "1101-replies.ndjson", "line 2") == [
        (
            "rule.id-card-checksum",
            "Patient.identifier[0].value",
            "1101-replies.ndjson line 2, field output.baseinfo.certno",
        )
    ]


def test_a_reply_with_an_impossible_birth_date_is_quarantined_naming_brdy(out: Path) -> None:
    source = "1101-replies.ndjson line 3, field output.baseinfo.brdy"
    assert reasons(out, "1101-replies.ndjson", "line 3") == [
        ("mapping.impossible-date", "Patient.birthDate", source),
        ("profile.cardinality-min", "Patient.birthDate", source),
    ]


def test_a_reply_with_an_unknown_insurance_type_is_quarantined_naming_the_insuinfo_field(out: Path) -> None:
    source = "1101-replies.ndjson line 4, field output.insuinfo[0].insutype"
    assert reasons(out, "1101-replies.ndjson", "line 4") == [
        ("mapping.unknown-code", "Coverage.type", source),
        ("profile.cardinality-min", "Coverage.type", source),
    ]


def test_a_repeated_reply_is_quarantined_as_a_duplicate_of_the_first(out: Path) -> None:
    assert quarantined(out, "1101-replies.ndjson", "line 5")["reasons"][0]["en"] == "Duplicate of line 1"


def test_an_unparseable_ndjson_line_is_quarantined_saying_why(out: Path) -> None:
    assert reasons(out, "1101-replies.ndjson", "line 6") == [("ingest.unreadable", None, None)]


def test_an_unparseable_ndjson_line_keeps_its_original_bytes(out: Path) -> None:
    raw = base64.b64decode(quarantined(out, "1101-replies.ndjson", "line 6")["raw"])
    assert raw == (SAMPLES / "1101-replies.ndjson").read_bytes().splitlines()[5]


def test_a_failed_reply_without_baseinfo_matches_no_spec(out: Path) -> None:
    assert reasons(out, "1101-replies.ndjson", "line 7") == [("ingest.no-spec", None, None)]


def test_a_person_identified_by_a_passport_is_quarantined_naming_the_certificate_type(out: Path) -> None:
    source = "1101-replies.ndjson line 8, field output.baseinfo.psn_cert_type"
    assert reasons(out, "1101-replies.ndjson", "line 8") == [
        ("mapping.unmatched-code", "Patient.identifier.system", source),
        ("invariant.failed", "Patient", source),  # yy-pat-1: no national identity document
    ]


def test_a_passport_is_refused_as_a_known_type_without_target_saying_why_not_as_a_typo(out: Path) -> None:
    # 08 外国人护照 is listed in the ConceptMap as unmatched, with its reason in the comment:
    # "not in the mapping table" would send staff looking for a typo that is not there
    words = quarantined(out, "1101-replies.ndjson", "line 8")["reasons"][0]
    assert (
        "不在对照表" not in words["zh-CN"],
        "外国人护照：省级包中没有此证件的标识系统" in words["zh-CN"],
        "no identifier system for this certificate in the provincial package" in words["en"],
        "外国人护照" not in words["en"],
    ) == (True, True, True, True)


# -- quarantine: 长护险失能评估 ---------------------------------------------------------------------
def test_an_assessment_with_a_bad_id_card_checksum_is_quarantined_naming_certno(out: Path) -> None:
    assert reasons(out, LTC_FILE, "record 3") == [
        ("rule.id-card-checksum", "Patient.identifier[0].value", "长护险失能评估.json record 3, field certno")
    ]


def test_an_assessment_with_an_impossible_date_is_quarantined_naming_evalt_date(out: Path) -> None:
    assert reasons(out, LTC_FILE, "record 4")[0] == (
        "mapping.impossible-date",
        "Observation.effectiveDateTime",
        "长护险失能评估.json record 4, field evalt_date",
    )


def test_an_assessment_with_an_impossible_date_also_lacks_the_effective_time_the_profile_requires(out: Path) -> None:
    assert reasons(out, LTC_FILE, "record 4")[1] == (
        "profile.cardinality-min",
        "Observation.effective[x]",
        "长护险失能评估.json record 4, field evalt_date",
    )


def test_an_assessment_with_an_unknown_disability_level_is_quarantined_naming_dsab_lv(out: Path) -> None:
    assert reasons(out, LTC_FILE, "record 5")[0] == (
        "mapping.unknown-code",
        "Observation.valueCodeableConcept",
        "长护险失能评估.json record 5, field dsab_lv",
    )


def test_an_assessment_with_an_unknown_disability_level_also_lacks_the_value_the_profile_requires(out: Path) -> None:
    assert reasons(out, LTC_FILE, "record 5")[1:] == [
        ("profile.cardinality-min", "Observation.value[x]", "长护险失能评估.json record 5, field dsab_lv")
    ]


def test_a_repeated_assessment_is_quarantined_as_a_duplicate_of_the_first(out: Path) -> None:
    assert quarantined(out, LTC_FILE, "record 6")["reasons"][0]["en"] == "Duplicate of record 2"


# -- the JSON reader on NDJSON ------------------------------------------------------------------------
def test_ndjson_records_are_located_by_physical_line_skipping_blank_lines(tmp_path: Path) -> None:
    path = tmp_path / "replies.ndjson"
    path.write_bytes(b'{"a": 1}\n\n{"a": 2}\r\n')
    assert [r.location for r in read_json(path, "insurance")] == ["line 1", "line 3"]


def test_an_ndjson_line_that_is_not_an_object_becomes_an_unparseable_record(tmp_path: Path) -> None:
    path = tmp_path / "replies.ndjson"
    path.write_bytes(b"[1, 2]\n")
    assert [r.shape for r in read_json(path, "insurance")] == [frozenset({"UNPARSEABLE"})]


def test_an_ndjson_line_keeps_its_bytes_without_the_line_break(tmp_path: Path) -> None:
    path = tmp_path / "replies.ndjson"
    path.write_bytes('\ufeff{"psn_name": "张秀英"}\r\n'.encode())
    assert [r.raw for r in read_json(path, "insurance")] == ['{"psn_name": "张秀英"}'.encode()]


def test_a_1101_reply_is_one_record_whose_shape_reaches_one_level_down(tmp_path: Path) -> None:
    path = tmp_path / "1101.json"
    path.write_text('{"infcode": 0, "output": {"baseinfo": {}, "insuinfo": []}}', encoding="utf-8")
    assert [r.shape for r in read_json(path, "insurance")] == [
        frozenset({"infcode", "output", "output.baseinfo", "output.insuinfo"})
    ]

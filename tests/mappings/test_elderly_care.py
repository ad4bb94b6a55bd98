"""`yiyang ingest --source elderly-care` on the 养老服务平台 and 养老机构 samples: 老人档案, 老年人能力
评估 (NDJSON), 入住登记 and 养老服务计划 — exact FHIR output, exact quarantine reasons, reconciled
counts, the shared elder merged across sources — and the JSON reader's wrapper rule."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from gateway.ingest import commands
from mappings.readers import ReaderError
from mappings.readers.json_export import read_json
from profiles.registry import Registry
from tests.expected import ethnicity, gb_sex
from tests.ingest_output import coding, keyed_id, ndjson, quarantined, reasons, sample_id, written

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "mappings/samples/elderly-care"
PROFILES, ASSESSMENTS, STAYS, PLANS = "老人档案.json", "能力评估.ndjson", "入住登记.json", "服务计划.json"
BASE = "http://fhir.yiyang.cn"
ID_CARD = "urn:oid:2.16.156.10011.1.3"
ZHANG_ID_CARD = "410105194912310020"


def organization_id(uscc: str) -> str:
    """Organizations are keyed on their 统一社会信用代码."""
    return keyed_id("Organization", f"{BASE}/sid/uscc", uscc)


def stay_id(uscc: str, number: str) -> str:
    """A stay is keyed on its institution and 入住编号."""
    return keyed_id("Encounter", f"Organization/{organization_id(uscc)}", number)


YIKANG = "52410105MJY123456L"  # 郑州市金水区颐康养老院


ZHANG = sample_id("elderly-care", PROFILES, "record 1", "patient")


def profile(name: str) -> dict[str, list[str]]:
    return {"profile": [f"{BASE}/StructureDefinition/{name}"]}


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, commands.Counts]:
    out = tmp_path_factory.mktemp("elderly-care")
    files = [SAMPLES / name for name in (PROFILES, ASSESSMENTS, STAYS, PLANS)]
    counts = commands.ingest("elderly-care", files, out, Registry(), bundle=False)
    return out, counts


@pytest.fixture(scope="module")
def out(run: tuple[Path, commands.Counts]) -> Path:
    return run[0]


# -- counts ---------------------------------------------------------------------------------------
def test_every_record_read_is_either_mapped_or_quarantined(run: tuple[Path, commands.Counts]) -> None:
    counts = run[1]
    assert (counts.read, counts.mapped, counts.quarantined, counts.file_errors) == (29, 10, 19, [])


def test_five_people_are_in_the_archive_however_many_records_name_them(out: Path) -> None:
    assert sorted(p["name"][0]["text"] for p in ndjson(out / "Patient.ndjson")) == [
        "吴秀兰",
        "孙玉梅",
        "张秀英",
        "李桂兰",
        "王建国",
    ]


# -- 老人档案 → Patient --------------------------------------------------------------------------------
def test_the_elder_profile_becomes_exactly_the_expected_patient(out: Path) -> None:
    division = f"{BASE}/StructureDefinition/yy-ext-admin-division"
    assert written(out, "Patient", ZHANG) == {
        "resourceType": "Patient",
        "id": ZHANG,
        "meta": profile("yy-patient"),
        "identifier": [
            {"system": ID_CARD, "value": ZHANG_ID_CARD},
            {"system": f"{BASE}/sid/nhsa-psn-no", "value": "41000000000000012345"},
        ],
        "active": True,
        "name": [{"text": "张秀英"}],
        "telecom": [{"system": "phone", "value": "13803710001"}],
        "gender": "female",
        "_gender": gb_sex("2", "女性"),
        "birthDate": "1949-12-31",
        "extension": ethnicity("01", "汉族"),
        "address": [
            {
                "text": "河南省郑州市金水区经八路街道幸福社区3号楼",
                "extension": [
                    {"url": division, "valueCoding": coding(f"{BASE}/CodeSystem/gb-t-2260", "410105")},
                    {"url": division, "valueCoding": coding(f"{BASE}/CodeSystem/nbs-division", "410105001")},
                ],
            }
        ],
        "maritalStatus": {"coding": [coding("urn:oid:2.16.156.10011.2.3.3.5", "30", "丧偶")]},
        "contact": [
            {
                "relationship": [{"text": "女儿"}],
                "name": {"text": "李娟"},
                "telecom": [{"system": "phone", "value": "13903710002"}],
                "extension": [
                    {"url": f"{BASE}/StructureDefinition/yy-ext-contact-source", "valueCode": "elderly-care"}
                ],
            }
        ],
    }


# -- 老年人能力评估 → Observation ------------------------------------------------------------------------
def test_an_ability_assessment_becomes_exactly_the_expected_observation(out: Path) -> None:
    observation_id = sample_id("elderly-care", ASSESSMENTS, "line 1", "assessment")
    system = f"{BASE}/CodeSystem/ability-assessment"

    def component(code: str, display: str, score: int) -> dict[str, Any]:
        return {"code": {"coding": [coding(system, code, display)]}, "valueInteger": score}

    assert written(out, "Observation", observation_id) == {
        "resourceType": "Observation",
        "id": observation_id,
        "meta": profile("yy-observation-ability"),
        "identifier": [{"type": {"text": "老年人能力评估编号"}, "value": "PG2026030001"}],
        "status": "final",
        "category": [{"coding": [coding("http://terminology.hl7.org/CodeSystem/observation-category", "survey")]}],
        "code": {"coding": [coding(system, "total", "能力总分")]},
        "subject": {"reference": f"Patient/{ZHANG}"},
        "effectiveDateTime": "2026-03-01T10:30:00+08:00",
        "performer": [{"reference": f"Organization/{organization_id(YIKANG)}"}],
        "valueInteger": 61,
        "interpretation": [{"coding": [coding(f"{BASE}/CodeSystem/ability-level", "2", "能力中度受损(中度失能)")]}],
        "note": [{"text": "近30天跌倒1次，未达上调条件"}],
        "component": [
            component("self-care", "自理能力", 20),
            component("basic-motor", "基础运动能力", 9),
            component("mental", "精神状态", 22),
            component("perception-social", "感知觉与社会参与", 10),
        ],
    }


def test_the_assessing_organisation_gets_its_kind_from_the_platform_org_type(out: Path) -> None:
    organization = written(out, "Organization", organization_id("52410105MJ0088888T"))
    assert organization["type"] == [
        {"coding": [coding(f"{BASE}/CodeSystem/organization-type", "yiyang-center", "医养服务中心")]}
    ]


# -- 入住登记 → Encounter + Organization -------------------------------------------------------------
def test_an_admission_becomes_exactly_the_expected_encounter(out: Path) -> None:
    encounter_id = stay_id(YIKANG, "RZ2026030001")
    assert written(out, "Encounter", encounter_id) == {
        "resourceType": "Encounter",
        "id": encounter_id,
        "meta": profile("yy-encounter"),
        "identifier": [{"type": {"text": "养老机构入住编号"}, "value": "RZ2026030001"}],
        "status": "in-progress",
        "class": coding("http://terminology.hl7.org/CodeSystem/v3-ActCode", "NONAC", "inpatient non-acute"),
        "type": [{"coding": [coding(f"{BASE}/CodeSystem/encounter-type", "elderly-care-admission", "养老机构入住")]}],
        "subject": {"reference": f"Patient/{ZHANG}"},
        "period": {"start": "2026-03-01"},
        "location": [{"location": {"display": "3号楼2层205室1床"}}],
        "serviceProvider": {"reference": f"Organization/{organization_id(YIKANG)}"},
    }


def test_the_institution_of_an_admission_becomes_exactly_the_expected_organization(out: Path) -> None:
    assert written(out, "Organization", organization_id(YIKANG)) == {
        "resourceType": "Organization",
        "id": organization_id(YIKANG),
        "meta": profile("yy-organization"),
        "identifier": [{"system": f"{BASE}/sid/uscc", "value": "52410105MJY123456L"}],
        "active": True,
        "type": [{"coding": [coding(f"{BASE}/CodeSystem/organization-type", "elderly-care-institution", "养老机构")]}],
        "name": "郑州市金水区颐康养老院",
        "address": [
            {
                "text": "河南省郑州市金水区经八路街道颐康路8号",
                "extension": [
                    {
                        "url": f"{BASE}/StructureDefinition/yy-ext-admin-division",
                        "valueCoding": coding(f"{BASE}/CodeSystem/gb-t-2260", "410105"),
                    }
                ],
            }
        ],
    }


def test_a_discharge_finishes_the_stay_with_its_date_and_reason(out: Path) -> None:
    encounter = written(out, "Encounter", stay_id(YIKANG, "RZ2025050003"))
    assert (encounter["status"], encounter["period"], encounter["hospitalization"]) == (
        "finished",
        {"start": "2025-05-10", "end": "2026-01-20"},
        {"dischargeDisposition": {"text": "回家居住"}},
    )


def test_a_resident_on_leave_has_an_onleave_stay(out: Path) -> None:
    assert written(out, "Encounter", stay_id("52410102MJ00123454", "RZ2025090011"))["status"] == "onleave"


def test_a_stay_ended_by_death_records_the_death_not_only_a_finished_stay(tmp_path: Path) -> None:
    """入住状态 去世 without a 退住原因: the stay is finished, and the archive learns how it ended."""
    table = json.loads((SAMPLES / STAYS).read_text(encoding="utf-8"))
    row = {**table["rows"][1], "入住状态": "去世", "退住原因": ""}
    export = tmp_path / "入住登记-去世.json"
    export.write_text(json.dumps({"total": 1, "rows": [row]}, ensure_ascii=False), encoding="utf-8")
    commands.ingest("elderly-care", [export], tmp_path / "out", Registry(), bundle=False)
    (encounter,) = ndjson(tmp_path / "out/Encounter.ndjson")
    (person,) = ndjson(tmp_path / "out/Patient.ndjson")
    assert (encounter["status"], encounter["hospitalization"], person.get("deceasedBoolean")) == (
        "finished",
        {
            "dischargeDisposition": {
                "coding": [coding("http://terminology.hl7.org/CodeSystem/discharge-disposition", "exp", "Expired")]
            }
        },
        True,
    )


@pytest.mark.parametrize(
    ("status", "left"),
    [("已退住", ""), ("在住", "2026-01-20")],
    ids=["discharged-without-discharge-date", "resident-with-discharge-date"],
)
def test_an_admission_whose_status_contradicts_its_dates_is_quarantined(tmp_path: Path, status: str, left: str) -> None:
    """已退住 without a 退住日期 is no finished stay, 在住 with one no stay in progress (yy-enc-1)."""
    table = json.loads((SAMPLES / STAYS).read_text(encoding="utf-8"))
    row = {**table["rows"][1], "入住状态": status, "退住日期": left}
    export = tmp_path / "入住登记-矛盾.json"
    export.write_text(json.dumps({"total": 1, "rows": [row]}, ensure_ascii=False), encoding="utf-8")
    commands.ingest("elderly-care", [export], tmp_path / "out", Registry(), bundle=False)
    entry = quarantined(tmp_path / "out", "record 1")
    assert [(r["id"], r.get("fhirpath"), "yy-enc-1" in r["en"]) for r in entry["reasons"]] == [
        ("invariant.failed", "Encounter", True)
    ]


# -- 养老服务计划 → CarePlan + Organizations ------------------------------------------------------------
def activity(code: str, display: str, times: int, unit: str, wording: str, note: str | None = None) -> dict[str, Any]:
    detail: dict[str, Any] = {
        "code": {"coding": [coding(f"{BASE}/CodeSystem/service-item", code, display)]},
        "status": "in-progress",
        "scheduledTiming": {"code": {"text": wording}, "repeat": {"frequency": times, "period": 1, "periodUnit": unit}},
    }
    if note:
        detail["description"] = note
    return {"detail": detail}


def test_a_care_plan_becomes_exactly_the_expected_careplan(out: Path) -> None:
    plan_id = sample_id("elderly-care", PLANS, "record 1", "plan")
    assert written(out, "CarePlan", plan_id) == {
        "resourceType": "CarePlan",
        "id": plan_id,
        "meta": profile("yy-careplan"),
        "identifier": [{"type": {"text": "养老服务计划编号"}, "value": "FW2026030001"}],
        "status": "active",
        "intent": "plan",
        "category": [
            {"coding": [coding(f"{BASE}/CodeSystem/careplan-category", "elderly-care-service", "养老服务计划")]}
        ],
        "title": "张秀英2026年度养老服务计划",
        "subject": {"reference": f"Patient/{ZHANG}"},
        "period": {"start": "2026-03-01", "end": "2027-02-28"},
        "created": "2026-03-01T16:20:00+08:00",
        "author": {"reference": f"Organization/{organization_id(YIKANG)}"},
        "contributor": [{"reference": f"Organization/{organization_id('12410105MB12345672')}"}],
        "activity": [
            activity("daily-living-care", "生活照料", 1, "d", "每日1次", "协助穿衣、洗漱"),
            activity("meal-assistance", "助餐", 3, "d", "每日3次", "低盐低糖饮食"),
            activity("bathing-assistance", "助浴", 2, "wk", "每周2次"),
            activity("rehab-nursing", "康复护理", 3, "wk", "每周3次", "下肢肌力训练"),
            activity("home-visit", "上门巡诊", 2, "mo", "每月2次", "由签约医疗机构医生巡诊"),
            activity("bp-measurement", "血压测量", 1, "d", "每日1次"),
            activity("psychological-comfort", "心理慰藉", 1, "wk", "每周1次"),
        ],
    }


def test_the_partner_medical_institution_becomes_exactly_the_expected_organization(out: Path) -> None:
    assert written(out, "Organization", organization_id("12410105MB12345672")) == {
        "resourceType": "Organization",
        "id": organization_id("12410105MB12345672"),
        "meta": profile("yy-organization"),
        "identifier": [
            {"system": f"{BASE}/sid/uscc", "value": "12410105MB12345672"},
            {"system": f"{BASE}/sid/medical-institution-license", "value": "PDY00002-341010515A1002"},
        ],
        "active": True,
        "type": [{"coding": [coding(f"{BASE}/CodeSystem/organization-type", "medical-institution", "医疗机构")]}],
        "name": "郑州市金水区颐宁医院",
    }


def test_a_completed_plan_without_a_partner_has_completed_activities_and_no_contributor(out: Path) -> None:
    plan = written(out, "CarePlan", sample_id("elderly-care", PLANS, "record 2", "plan"))
    assert (plan["status"], {a["detail"]["status"] for a in plan["activity"]}, "contributor" in plan) == (
        "completed",
        {"completed"},
        False,
    )


# -- quarantine -------------------------------------------------------------------------------------
def test_a_profile_with_a_bad_id_card_checksum_is_quarantined_naming_idcardno(out: Path) -> None:
    assert reasons(out, PROFILES, "record 3") == [
        ("rule.id-card-checksum", "Patient.identifier[0].value", "老人档案.json record 3, field idCardNo")
    ]


def test_a_profile_with_an_impossible_birthday_is_quarantined_naming_birthday(out: Path) -> None:
    source = "老人档案.json record 4, field birthday"
    assert reasons(out, PROFILES, "record 4") == [
        ("mapping.impossible-date", "Patient.birthDate", source),
        ("profile.cardinality-min", "Patient.birthDate", source),
    ]


def test_a_profile_with_an_unknown_nation_is_quarantined_naming_nation(out: Path) -> None:
    assert reasons(out, PROFILES, "record 5") == [
        ("mapping.unknown-code", "Patient.extension.valueCoding", "老人档案.json record 5, field nation")
    ]


def test_a_repeated_profile_is_quarantined_as_a_duplicate_of_the_first(out: Path) -> None:
    assert quarantined(out, PROFILES, "record 6")["reasons"][0]["en"] == "Duplicate of record 2"


def test_an_assessment_with_a_bad_id_card_checksum_is_quarantined_naming_the_nested_field(out: Path) -> None:
    assert reasons(out, ASSESSMENTS, "line 3") == [
        ("rule.id-card-checksum", "Patient.identifier[0].value", "能力评估.ndjson line 3, field elder.idCardNo")
    ]


def test_an_assessment_with_an_impossible_date_is_quarantined_naming_assessdate(out: Path) -> None:
    assert reasons(out, ASSESSMENTS, "line 4")[0] == (
        "mapping.impossible-date",
        "Observation.effectiveDateTime",
        "能力评估.ndjson line 4, field assessDate",
    )


def test_an_assessment_with_an_unknown_level_is_quarantined_naming_abilitylevel(out: Path) -> None:
    source = "能力评估.ndjson line 5, field abilityLevel"
    assert reasons(out, ASSESSMENTS, "line 5") == [
        ("mapping.unknown-code", "Observation.interpretation", source),
        ("profile.cardinality-min", "Observation.interpretation", source),
    ]


def test_an_assessment_with_a_total_above_90_is_quarantined_naming_totalscore(out: Path) -> None:
    assert ("invariant.failed", "Observation.valueInteger", "能力评估.ndjson line 6, field totalScore") in reasons(
        out, ASSESSMENTS, "line 6"
    )


def test_the_assessment_above_90_also_names_its_dimension_above_its_maximum(out: Path) -> None:
    """Its 感知觉与社会参与 of 20 is above 15 (yy-ab-2): the total of 95 is the dimensions' sum."""
    assert (
        "invariant.failed",
        "Observation.component[3]",
        "能力评估.ndjson line 6, field dimensionScores.perceptionSocial",
    ) in reasons(out, ASSESSMENTS, "line 6")


def test_a_repeated_assessment_is_quarantined_as_a_duplicate_of_the_first(out: Path) -> None:
    assert quarantined(out, ASSESSMENTS, "line 7")["reasons"][0]["en"] == "Duplicate of line 2"


def test_an_unparseable_assessment_line_is_quarantined_with_its_original_bytes(out: Path) -> None:
    entry = quarantined(out, ASSESSMENTS, "line 8")
    raw = (SAMPLES / ASSESSMENTS).read_bytes().splitlines()[7]
    assert ([r["id"] for r in entry["reasons"]], base64.b64decode(entry["raw"])) == (["ingest.unreadable"], raw)


def test_an_admission_with_a_bad_id_card_checksum_is_quarantined_naming_the_column(out: Path) -> None:
    assert reasons(out, STAYS, "record 4") == [
        ("rule.id-card-checksum", "Patient.identifier[0].value", "入住登记.json record 4, field 身份证号")
    ]


def test_an_admission_with_an_impossible_date_is_quarantined_naming_the_admission_date(out: Path) -> None:
    source = "入住登记.json record 5, field 入住日期"
    assert reasons(out, STAYS, "record 5") == [
        ("mapping.impossible-date", "Encounter.period.start", source),
        ("profile.cardinality-min", "Encounter.period", source),
    ]


def test_an_admission_with_an_unknown_status_is_quarantined_naming_the_status(out: Path) -> None:
    source = "入住登记.json record 6, field 入住状态"
    assert reasons(out, STAYS, "record 6") == [
        ("mapping.unknown-code", "Encounter.status", source),
        ("structure.missing-required", "Encounter.status", source),
    ]


def test_a_repeated_admission_is_quarantined_as_a_duplicate_of_the_first(out: Path) -> None:
    assert quarantined(out, STAYS, "record 7")["reasons"][0]["en"] == "Duplicate of record 2"


def test_a_discharge_before_the_admission_is_quarantined(out: Path) -> None:
    assert reasons(out, STAYS, "record 8") == [("rule.period-order", "Encounter.period", None)]


def test_a_plan_with_an_unknown_service_item_is_quarantined_naming_the_item(out: Path) -> None:
    source = "服务计划.json record 3, field 服务项目[1].项目名称"
    assert reasons(out, PLANS, "record 3") == [
        ("mapping.unknown-code", "CarePlan.activity.detail.code", source),
        ("invariant.failed", "CarePlan.activity[1]", source),
    ]


def test_a_plan_with_a_bad_id_card_checksum_is_quarantined_naming_the_column(out: Path) -> None:
    assert reasons(out, PLANS, "record 4") == [
        ("rule.id-card-checksum", "Patient.identifier[0].value", "服务计划.json record 4, field 身份证号")
    ]


def test_a_plan_with_an_impossible_start_date_is_quarantined_naming_the_start_date(out: Path) -> None:
    source = "服务计划.json record 5, field 开始日期"
    assert reasons(out, PLANS, "record 5") == [
        ("mapping.impossible-date", "CarePlan.period.start", source),
        ("profile.cardinality-min", "CarePlan.period", source),
    ]


def test_a_repeated_plan_is_quarantined_as_a_duplicate_of_the_first(out: Path) -> None:
    assert quarantined(out, PLANS, "record 6")["reasons"][0]["en"] == "Duplicate of record 2"


def test_a_plan_with_thirteen_service_items_keeps_all_thirteen(out: Path) -> None:
    assert len(written(out, "CarePlan", sample_id("elderly-care", PLANS, "record 7", "plan"))["activity"]) == 13


# -- the same elder across sources ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("shared")
    commands.ingest("insurance", [ROOT / "mappings/samples/insurance/1101.json"], out, Registry(), bundle=False)
    commands.ingest("elderly-care", [SAMPLES / PROFILES], out, Registry(), bundle=False)
    return out


def people_with_zhangs_id_card(out: Path) -> list[dict[str, Any]]:
    return [p for p in ndjson(out / "Patient.ndjson") if {"system": ID_CARD, "value": ZHANG_ID_CARD} in p["identifier"]]


def test_the_elder_of_the_1101_reply_and_of_the_elder_profile_is_one_patient(shared: Path) -> None:
    first_seen = sample_id("insurance", "1101.json", "record 1", "patient")
    assert [p["id"] for p in people_with_zhangs_id_card(shared)] == [first_seen]


def test_the_merged_elder_gains_the_address_and_contact_only_the_profile_has(shared: Path) -> None:
    person = people_with_zhangs_id_card(shared)[0]
    assert (person["address"][0]["text"], person["contact"][0]["name"]["text"]) == (
        "河南省郑州市金水区经八路街道幸福社区3号楼",
        "李娟",
    )


# -- the JSON reader's wrapper rule -------------------------------------------------------------------------
def locations(path: Path) -> list[tuple[str, Any]]:
    return [(r.location, r.fields) for r in read_json(path, "elderly-care")]


def test_each_item_of_a_top_level_array_is_a_record(tmp_path: Path) -> None:
    path = tmp_path / "plans.json"
    path.write_text('[{"a": 1}, {"a": 2}]', encoding="utf-8")
    assert locations(path) == [("record 1", {"a": 1}), ("record 2", {"a": 2})]


def test_the_items_of_a_data_list_are_the_records(tmp_path: Path) -> None:
    path = tmp_path / "elders.json"
    path.write_text('{"code": 200, "msg": "操作成功", "data": [{"a": 1}]}', encoding="utf-8")
    assert locations(path) == [("record 1", {"a": 1})]


def test_the_items_of_a_paged_data_records_list_are_the_records(tmp_path: Path) -> None:
    path = tmp_path / "page.json"
    path.write_text('{"code": 0, "data": {"records": [{"a": 1}], "total": 1, "orders": []}}', encoding="utf-8")
    assert locations(path) == [("record 1", {"a": 1})]


def test_the_items_of_a_rows_table_are_the_records(tmp_path: Path) -> None:
    path = tmp_path / "table.json"
    path.write_text('{"total": 1, "rows": [{"a": 1}], "code": 200}', encoding="utf-8")
    assert locations(path) == [("record 1", {"a": 1})]


def test_an_object_with_a_data_list_beside_other_structure_is_one_record(tmp_path: Path) -> None:
    path = tmp_path / "record.json"
    path.write_text('{"elder": {"name": "张秀英"}, "data": [{"a": 1}]}', encoding="utf-8")
    assert locations(path) == [("record 1", {"elder": {"name": "张秀英"}, "data": [{"a": 1}]})]


def test_an_array_item_keeps_its_own_bytes_as_raw(tmp_path: Path) -> None:
    path = tmp_path / "plans.json"
    path.write_text('[\n  {"姓名": "张秀英"},\n  {"姓名": "李桂兰"}\n]\n', encoding="utf-8")
    assert [r.raw for r in read_json(path, "elderly-care")] == [
        '{"姓名": "张秀英"}'.encode(),
        '{"姓名": "李桂兰"}'.encode(),
    ]


def test_a_gb18030_export_is_decoded_and_keeps_its_gb18030_bytes(tmp_path: Path) -> None:
    path = tmp_path / "elders.json"
    path.write_bytes('[{"姓名": "张秀英"}]'.encode("gb18030"))
    assert [(r.fields, r.raw) for r in read_json(path, "elderly-care")] == [
        ({"姓名": "张秀英"}, '{"姓名": "张秀英"}'.encode("gb18030"))
    ]


def test_a_utf8_bom_is_not_part_of_the_record(tmp_path: Path) -> None:
    path = tmp_path / "elders.json"
    path.write_bytes('\ufeff{"姓名": "张秀英"}'.encode())
    assert locations(path) == [("record 1", {"姓名": "张秀英"})]


@pytest.mark.parametrize("name", ["elders.json", "elders.ndjson"])
def test_a_gb18030_byte_order_mark_is_not_part_of_the_record(tmp_path: Path, name: str) -> None:
    """GB18030's mark (84 31 95 33) decodes to U+FEFF: the document did not parse at all."""
    path = tmp_path / name
    path.write_bytes('\ufeff{"姓名": "张秀英"}\n'.encode("gb18030"))
    assert [(r.fields, r.raw) for r in read_json(path, "elderly-care")] == [
        ({"姓名": "张秀英"}, '{"姓名": "张秀英"}'.encode("gb18030"))
    ]


def test_an_array_item_that_is_not_an_object_becomes_an_unparseable_record(tmp_path: Path) -> None:
    path = tmp_path / "plans.json"
    path.write_text('[{"a": 1}, "oops"]', encoding="utf-8")
    assert [r.shape for r in read_json(path, "elderly-care")] == [frozenset({"a"}), frozenset({"UNPARSEABLE"})]


def test_invalid_json_makes_the_whole_file_unreadable(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('[{"a": 1}, {"a": ', encoding="utf-8")
    with pytest.raises(ReaderError, match="broken.json: invalid JSON at line 1"):
        read_json(path, "elderly-care")


@pytest.mark.parametrize(
    ("document", "key"),
    [
        ('{"code": 0, "data": [{"a": 1}, {"a": 2}], "data": [{"a": 3}]}', "data"),
        ('{"code": 0, "data": [{"a": 1}], "msg": "ok", "data": []}', "data"),
        ('{"code": 0, "data": {"list": [{"a": 1}], "list": [{"a": 2}], "total": 2}}', "data.list"),
    ],
)
def test_a_wrapper_naming_its_record_list_twice_is_a_file_error_naming_it(
    tmp_path: Path, document: str, key: str
) -> None:
    """JSON keeps the last of two members of one name: the records of the other list were read
    as no record at all, and the run reconciled without them."""
    path = tmp_path / "elders.json"
    path.write_text(document, encoding="utf-8")
    with pytest.raises(ReaderError) as refused:
        read_json(path, "elderly-care")
    assert (refused.value.message.id, refused.value.message.params["key"]) == ("reader.json-repeated-list", key)

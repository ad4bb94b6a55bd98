"""Standard choices of the 个人基本信息表 (DOMAIN §3b) land instead of being quarantined as unknown
codes: 既往疾病 11 其他法定传染病, 12 职业病 and 13 其他 and 药物过敏史 5 其他 as the form's text (no
ICD-10 code or allergen invented), and 婚姻状况 written as the GB/T 2261.2 name (初婚)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gateway.ingest import commands
from mappings.conceptmaps import ConceptMaps
from mappings.normalise import MappingError
from profiles.registry import Registry
from tests.ingest_output import SAMPLES, ndjson

BASE = "http://fhir.yiyang.cn"
HEADER = (SAMPLES / "community-health/个人基本信息表.csv").read_text(encoding="utf-8-sig").splitlines()[0]
#: a person whose row is valid but for the one cell each row below changes
TEMPLATE = {
    "序号": "1",
    "姓名": "马玉兰",
    "性别": "女",
    "出生日期": "1959-04-12",
    "民族": "汉族",
    "联系电话": "13803710001",
    "现住址": "河南省郑州市金水区经八路街道幸福社区3号楼",
    "县区代码": "410105",
    "乡镇街道代码": "410105001",
    "常住类型": "1",
    "血型": "1",
    "文化程度": "6",
    "婚姻状况": "已婚",
    "医疗费用支付方式": "2",
    "药物过敏史": "无",
    "既往疾病": "无",
    "建档日期": "2019-03-01",
}
#: (个人档案编号, 身份证号) of valid people born 1959-04-12, one per row
PEOPLE = [
    ("41010500100900001", "410105195904120029"),
    ("41010500100900002", "410105195904120045"),
    ("41010500100900003", "410105195904120061"),
    ("41010500100900004", "410105195904120088"),
    ("41010500100900005", "410105195904120109"),
]
ROWS = [{"既往疾病": "13"}, {"既往疾病": "职业病"}, {"既往疾病": "11"}, {"药物过敏史": "5"}, {"婚姻状况": "初婚"}]


def csv_row(number: str, id_card: str, changed: dict[str, str]) -> str:
    cells = {**TEMPLATE, "个人档案编号": number, "身份证号": id_card, **changed}
    return ",".join(cells.get(column, "") for column in HEADER.split(","))


@pytest.fixture(scope="module")
def out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("choices")
    rows = [csv_row(number, card, changed) for (number, card), changed in zip(PEOPLE, ROWS, strict=True)]
    (folder / "个人基本信息表.csv").write_text("\n".join([HEADER, *rows]) + "\n", encoding="utf-8")
    commands.ingest("community-health", [folder / "个人基本信息表.csv"], folder / "out", Registry(), bundle=False)
    return folder / "out"


def of_person(resources: list[dict[str, Any]], patient_id: str, field: str) -> list[dict[str, Any]]:
    return [r for r in resources if r[field]["reference"] == f"Patient/{patient_id}"]


def patient_of(out: Path, number: str) -> dict[str, Any]:
    found = (p for p in ndjson(out / "Patient.ndjson") if any(i["value"] == number for i in p.get("identifier", [])))
    return next(found)


def condition_codes(out: Path, number: str) -> list[dict[str, Any]]:
    patient = patient_of(out, number)
    return [c["code"] for c in of_person(ndjson(out / "Condition.ndjson"), patient["id"], "subject")]


def test_every_row_of_standard_choices_lands(out: Path) -> None:
    assert ndjson(out / "quarantine.ndjson") == []


def test_past_disease_13_other_is_a_condition_of_the_form_s_text_alone(out: Path) -> None:
    assert condition_codes(out, PEOPLE[0][0]) == [{"text": "其他"}]


def test_past_disease_occupational_is_a_condition_of_its_text_without_an_invented_code(out: Path) -> None:
    assert condition_codes(out, PEOPLE[1][0]) == [{"text": "职业病"}]


def test_past_disease_11_is_the_other_notifiable_infectious_disease_as_text(out: Path) -> None:
    assert condition_codes(out, PEOPLE[2][0]) == [{"text": "其他法定传染病"}]


def test_drug_allergy_5_other_is_an_allergy_of_the_form_s_text(out: Path) -> None:
    patient = patient_of(out, PEOPLE[3][0])
    allergies = of_person(ndjson(out / "AllergyIntolerance.ndjson"), patient["id"], "patient")
    assert [a["code"] for a in allergies] == [{"text": "其他"}]


def test_marital_status_written_as_the_gb_name_first_marriage_is_code_21(out: Path) -> None:
    coding = patient_of(out, PEOPLE[4][0])["maritalStatus"]["coding"]
    assert coding == [{"system": "urn:oid:2.16.156.10011.2.3.3.5", "code": "21", "display": "初婚"}]


def test_a_choice_without_target_is_refused_as_a_bare_coding() -> None:
    maps = ConceptMaps.load(BASE)
    with pytest.raises(MappingError, match="mapping.unmatched-code"):
        maps.translate("form-disease-to-icd-10", "13", "coding")


@pytest.mark.parametrize(
    ("written", "code"), [("01", "1"), ("02", "2"), ("03", "3"), ("07", "7"), ("08", "8"), ("99", "8")]
)
def test_a_payment_method_written_as_its_cv07_10_005_code_maps_to_the_forms_choice(written: str, code: str) -> None:
    """Systems keeping 医疗付费方式 as CV07.10.005 write 01 … 08 and 99 (DOMAIN §1c): the same
    schemes as the form's 1 … 7, and its 8 其他 holding both 08 其他社会保险 and 99 其他."""
    assert ConceptMaps.load(BASE).translate("form-payment-method", written) == code

"""Issue 13: the whole 健康体检表 and 个人基本信息表 of the 基本公共卫生服务规范.

The 健康体检表's items that are not measurements (症状, 老年人健康状态自我评估, 认知/情感 粗筛, 生活方式,
健康评价, 健康指导) become yy-observation-health-check-item Observations of the 体检's Encounter; the
个人基本信息表's 文化程度, 职业, 医疗费用支付方式 become Patient extensions and its 血型 / RH blood
group Observations.  Each through the real ingest pipeline on the shipped samples."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import pytest

from gateway.ingest import commands
from profiles.registry import Registry
from tests.ingest_output import made_id, ndjson

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "mappings/samples/community-health"
BASE = "http://fhir.yiyang.cn"
ITEM = f"{BASE}/CodeSystem/health-check-item"
ANSWER = f"{BASE}/CodeSystem/health-check-answer"
CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
PROFILE = f"{BASE}/StructureDefinition/yy-observation-health-check-item"
ANNUAL_SPEC = "community-health/elderly-annual-check"
PERSON_SPEC = "community-health/personal-info"


def _ingest(factory: pytest.TempPathFactory, name: str, *files: Path) -> Path:
    out = factory.mktemp(name)
    commands.ingest("community-health", list(files), out, Registry())
    return out


@pytest.fixture(scope="module")
def annual(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _ingest(tmp_path_factory, "annual", SAMPLES / "老年人健康管理.csv")


@pytest.fixture(scope="module")
def persons(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _ingest(tmp_path_factory, "persons", SAMPLES / "个人基本信息表.csv")


def _items(out: Path, check: str) -> dict[str, list[Any]]:
    """item code → the values of the 体检's health-check-item Observations (answer code or text)."""
    encounter = f"Encounter/{made_id(ANNUAL_SPEC, check, 'check')}"
    found: dict[str, list[Any]] = {}
    for o in ndjson(out / "Observation.ndjson"):
        if o.get("meta", {}).get("profile") != [PROFILE] or o["encounter"]["reference"] != encounter:
            continue
        value = o["valueCodeableConcept"]["coding"][0]["code"] if "valueCodeableConcept" in o else o["valueString"]
        found.setdefault(o["code"]["coding"][0]["code"], []).append(value)
    return found


def test_zhang_xiuying_check_becomes_exactly_the_self_rated_health_observation(annual: Path) -> None:
    key = "41010500100100017|TJ2026-0001"
    resource_id = made_id(ANNUAL_SPEC, key, "self-rated-health")
    found = next(o for o in ndjson(annual / "Observation.ndjson") if o["id"] == resource_id)
    assert found == {
        "resourceType": "Observation",
        "id": resource_id,
        "meta": {"profile": [PROFILE]},
        "status": "final",
        "category": [{"coding": [{"system": CATEGORY, "code": "survey"}]}],
        "code": {"coding": [{"system": ITEM, "code": "self-rated-health", "display": "老年人健康状态自我评估"}]},
        "subject": {"reference": f"Patient/{made_id(ANNUAL_SPEC, key, 'patient')}"},
        "encounter": {"reference": f"Encounter/{made_id(ANNUAL_SPEC, key, 'check')}"},
        "effectiveDateTime": "2026-06-15",
        "valueCodeableConcept": {"coding": [{"system": ANSWER, "code": "self-rated-health-1", "display": "满意"}]},
    }


def test_every_item_of_the_row_is_one_observation_of_the_check(annual: Path) -> None:
    assert _items(annual, "41010500100100017|TJ2026-0001") == {
        "symptom": ["symptom-1"],
        "self-rated-health": ["self-rated-health-1"],
        "cognitive-screen": ["cognitive-screen-1"],
        "emotional-screen": ["emotional-screen-1"],
        "exercise-frequency": ["exercise-frequency-1"],
        "smoking-status": ["smoking-status-1"],
        "drinking-frequency": ["drinking-frequency-1"],
        "health-evaluation": ["health-evaluation-2"],
        "health-guidance": ["chronic-disease-management"],
    }


def test_several_symptoms_are_one_observation_each(annual: Path) -> None:
    """王桂兰's 关节痛、乏力: the form's 14 关节肿痛 (ConceptMap inexact) and 13 乏力."""
    items = _items(annual, "41010500100100021|TJ2026-0002")
    assert (items["symptom"], items["self-rated-health"], items["exercise-frequency"]) == (
        ["symptom-14", "symptom-13"],
        ["self-rated-health-4"],
        ["exercise-frequency-4"],
    )


def test_lifestyle_items_are_social_history_and_the_rest_survey(annual: Path) -> None:
    kinds = {
        (o["code"]["coding"][0]["code"], o["category"][0]["coding"][0]["code"])
        for o in ndjson(annual / "Observation.ndjson")
        if o.get("meta", {}).get("profile") == [PROFILE]
    }
    lifestyle = {"exercise-frequency", "smoking-status", "drinking-frequency"}
    assert {k for k, c in kinds if c == "social-history"} == lifestyle
    assert {c for k, c in kinds if k not in lifestyle} == {"survey"}


def test_positive_cognitive_screen_is_kept(annual: Path) -> None:
    assert _items(annual, "41010500100100040|TJ2026-0010")["cognitive-screen"] == ["cognitive-screen-2"]


def test_unknown_answer_spelling_is_quarantined_naming_its_column(tmp_path: Path) -> None:
    text = (SAMPLES / "老年人健康管理.csv").read_text(encoding="utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    header, first = rows[0], rows[1]
    first[header.index("吸烟状况")] = "抽烟很凶"
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows([header, first])
    export = tmp_path / "老年人健康管理-改.csv"
    export.write_text(buffer.getvalue(), encoding="utf-8")
    counts = commands.ingest("community-health", [export], tmp_path / "out", Registry())
    entry = ndjson(tmp_path / "out" / "quarantine.ndjson")[0]
    assert (counts.read, counts.mapped, counts.quarantined) == (1, 0, 1)
    assert (entry["reasons"][0]["id"], entry["reasons"][0]["source"]) == (
        "mapping.unknown-code",
        "老年人健康管理-改.csv row 2, column 吸烟状况",
    )


# -- 个人基本信息表 -----------------------------------------------------------------------
def _patient(out: Path, name: str) -> dict[str, Any]:
    return next(p for p in ndjson(out / "Patient.ndjson") if p["name"][0]["text"] == name)


def _extensions(patient: dict[str, Any], slug: str) -> list[str]:
    url = f"{BASE}/StructureDefinition/{slug}"
    return [e["valueCoding"]["code"] for e in patient.get("extension", []) if e["url"] == url]


def test_education_and_payment_method_become_extensions(persons: Path) -> None:
    zhang = _patient(persons, "张秀英")
    assert (_extensions(zhang, "yy-ext-education"), _extensions(zhang, "yy-ext-payment-method")) == (["80"], ["1"])


def test_education_unknown_writes_no_extension(persons: Path) -> None:
    """周玉英's 文化程度 10 不详: ConceptMap form-education-to-gb-t-4658 says unmatched, so nothing."""
    zhou = _patient(persons, "周玉英")
    assert (_extensions(zhou, "yy-ext-education"), _extensions(zhou, "yy-ext-payment-method")) == ([], ["3"])


def test_education_wider_maps_stay_wider(persons: Path) -> None:
    """刘梅's 4 中等专业学校 → 40 中等职业教育; 孙福春's 9 文盲或半文盲 → 90 其他."""
    liu, sun = _patient(persons, "刘梅"), _patient(persons, "孙福春")
    assert (_extensions(liu, "yy-ext-education"), _extensions(sun, "yy-ext-education")) == (["40"], ["90"])


def test_abo_blood_group_is_an_observation_and_unknown_writes_none(persons: Path) -> None:
    zhang = _patient(persons, "张秀英")
    groups = {
        o["subject"]["reference"]: o["valueCodeableConcept"]["coding"][0]["code"]
        for o in ndjson(persons / "Observation.ndjson")
        if o["code"]["coding"][0]["code"] == "883-9"
    }
    liu = _patient(persons, "刘梅")
    assert (groups[f"Patient/{zhang['id']}"], f"Patient/{liu['id']}" in groups) == ("1", False)


def _one_person(tmp_path: Path, **cells: str) -> tuple[commands.Counts, Path]:
    text = (SAMPLES / "个人基本信息表.csv").read_text(encoding="utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    header, zhang = rows[0], next(r for r in rows if "张秀英" in r)
    for column, value in cells.items():
        if column not in header:
            header.append(column)
            zhang.append("")
        zhang[header.index(column)] = value
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows([header, zhang])
    tmp_path.mkdir(parents=True, exist_ok=True)
    export = tmp_path / "个人基本信息表-职业.csv"
    export.write_text(buffer.getvalue(), encoding="utf-8")
    return commands.ingest("community-health", [export], tmp_path / "out", Registry()), tmp_path / "out"


def test_occupation_rh_and_several_payment_methods(tmp_path: Path) -> None:
    counts, out = _one_person(tmp_path, 职业="商业、服务业人员", RH="2", 医疗费用支付方式="1、5")
    zhang = _patient(out, "张秀英")
    rh = [o for o in ndjson(out / "Observation.ndjson") if o["code"]["coding"][0]["code"] == "10331-7"]
    assert (counts.mapped, _extensions(zhang, "yy-ext-occupation"), _extensions(zhang, "yy-ext-payment-method")) == (
        1,
        ["4"],
        ["1", "5"],
    )
    assert [o["valueCodeableConcept"]["coding"][0]["code"] for o in rh] == ["2"]


def test_no_occupation_writes_nothing_and_a_bare_occupation_number_is_quarantined(tmp_path: Path) -> None:
    counts, out = _one_person(tmp_path / "a", 职业="无职业", RH="不详")
    zhang = _patient(out, "张秀英")
    rh = [o for o in ndjson(out / "Observation.ndjson") if o["code"]["coding"][0]["code"] == "10331-7"]
    assert (counts.mapped, _extensions(zhang, "yy-ext-occupation"), rh) == (1, [], [])
    counts, out = _one_person(tmp_path / "b", 职业="3")
    reasons = [(r["id"], r["source"]) for r in ndjson(out / "quarantine.ndjson")[0]["reasons"]]
    assert (counts.quarantined, reasons[0]) == (
        1,
        ("mapping.unknown-code", "个人基本信息表-职业.csv row 2, column 职业"),
    )

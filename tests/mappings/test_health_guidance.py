"""Issue 13: the 健康体检表's 健康指导 is coded, one Observation per ticked item.

The cell's phrases (纳入慢性病患者健康管理, 定期随访, 戒烟, 减体重（目标5kg） …) reach the health-guidance
code system through ConceptMap ``community-health-guidance``; the item as written stays the concept's
text, so a target weight or a vaccine is not lost; a phrase the map does not know quarantines the row
naming the column, like every other unknown answer of the form."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from gateway.ingest import commands
from profiles.registry import Registry
from tests.ingest_output import made_id, ndjson

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "mappings/samples/community-health/老年人健康管理.csv"
BASE = "http://fhir.yiyang.cn"
GUIDANCE = f"{BASE}/CodeSystem/health-guidance"
ITEM = f"{BASE}/CodeSystem/health-check-item"
PROFILE = f"{BASE}/StructureDefinition/yy-observation-health-check-item"
SPEC = "community-health/elderly-annual-check"
ZHANG = "41010500100100017|TJ2026-0001"


def _ingest_first_row(tmp_path: Path, **cells: str) -> tuple[commands.Counts, Path]:
    """张秀英's 体检 (the sample's first row) with some cells rewritten or added."""
    rows = list(csv.reader(io.StringIO(SAMPLE.read_text(encoding="utf-8-sig"))))
    header, first = rows[0], rows[1]
    for column, value in cells.items():
        if column not in header:
            header.append(column)
            first.append("")
        first[header.index(column)] = value
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows([header, first])
    export = tmp_path / "老年人健康管理-指导.csv"
    export.write_text(buffer.getvalue(), encoding="utf-8")
    return commands.ingest("community-health", [export], tmp_path / "out", Registry()), tmp_path / "out"


def _guidance(out: Path) -> list[dict[str, Any]]:
    return [
        o
        for o in ndjson(out / "Observation.ndjson")
        if o.get("meta", {}).get("profile") == [PROFILE] and o["code"]["coding"][0]["code"] == "health-guidance"
    ]


def test_a_multi_item_guidance_cell_gives_one_coded_observation_per_tick(tmp_path: Path) -> None:
    counts, out = _ingest_first_row(tmp_path, 健康指导="纳入慢性病患者健康管理、建议复查、戒烟、减体重（目标5kg）")
    values = [o["valueCodeableConcept"] for o in _guidance(out)]
    assert (counts.mapped, counts.quarantined) == (1, 0)
    assert values == [
        {
            "coding": [{"system": GUIDANCE, "code": "chronic-disease-management", "display": "纳入慢性病患者健康管理"}],
            "text": "纳入慢性病患者健康管理",
        },
        {"coding": [{"system": GUIDANCE, "code": "recheck", "display": "建议复查"}], "text": "建议复查"},
        {"coding": [{"system": GUIDANCE, "code": "quit-smoking", "display": "戒烟"}], "text": "戒烟"},
        {"coding": [{"system": GUIDANCE, "code": "weight-loss", "display": "减体重"}], "text": "减体重（目标5kg）"},
    ]


def test_each_tick_is_a_full_health_check_item_observation_of_the_check(tmp_path: Path) -> None:
    _, out = _ingest_first_row(tmp_path, 健康指导="定期随访、建议接种疫苗(流感疫苗)")
    first = next(o for o in _guidance(out) if o["id"] == made_id(SPEC, ZHANG, "health-guidance[1]"))
    assert first == {
        "resourceType": "Observation",
        "id": made_id(SPEC, ZHANG, "health-guidance[1]"),
        "meta": {"profile": [PROFILE]},
        "status": "final",
        "category": [
            {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "survey"}]}
        ],
        "code": {"coding": [{"system": ITEM, "code": "health-guidance", "display": "健康指导"}]},
        "subject": {"reference": f"Patient/{made_id(SPEC, ZHANG, 'patient')}"},
        "encounter": {"reference": f"Encounter/{made_id(SPEC, ZHANG, 'check')}"},
        "effectiveDateTime": "2026-06-15",
        "valueCodeableConcept": {
            "coding": [{"system": GUIDANCE, "code": "vaccination", "display": "建议接种疫苗"}],
            "text": "建议接种疫苗(流感疫苗)",
        },
    }


def test_a_separate_risk_factor_column_is_coded_too(tmp_path: Path) -> None:
    counts, out = _ingest_first_row(tmp_path, 危险因素控制="锻炼、健康饮酒")
    codes = [o["valueCodeableConcept"]["coding"][0]["code"] for o in _guidance(out)]
    assert (counts.mapped, codes) == (1, ["chronic-disease-management", "exercise", "healthy-drinking"])


def test_the_sample_phrases_all_map(tmp_path: Path) -> None:
    """The shipped export writes 纳入慢性病患者健康管理, 定期随访 (the 2011 form's choice) and 建议转诊."""
    commands.ingest("community-health", [SAMPLE], tmp_path, Registry())
    codes = {o["valueCodeableConcept"]["coding"][0]["code"] for o in _guidance(tmp_path)}
    reasons = {r.get("source") or "" for e in ndjson(tmp_path / "quarantine.ndjson") for r in e["reasons"]}
    assert codes == {"chronic-disease-management", "regular-follow-up", "referral"}
    assert not any("健康指导" in source for source in reasons)


def test_an_unknown_guidance_phrase_quarantines_the_row_naming_its_column(tmp_path: Path) -> None:
    counts, out = _ingest_first_row(tmp_path, 健康指导="建议复查、多晒太阳")
    entry = ndjson(out / "quarantine.ndjson")[0]
    assert (counts.read, counts.mapped, counts.quarantined) == (1, 0, 1)
    assert (entry["reasons"][0]["id"], entry["reasons"][0]["source"]) == (
        "mapping.unknown-code",
        "老年人健康管理-指导.csv row 2, column 健康指导[1]",
    )
    assert _guidance(out) == []

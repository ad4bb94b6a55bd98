"""家庭医生签约: the export's 签约人群类型 and 签约类型 spellings become coded CarePlan categories
(ConceptMaps community-population, community-contract-sign-type); a spelling neither map knows
quarantines the row."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gateway.ingest import commands
from profiles.registry import Registry
from tests.ingest_output import ndjson, reasons

SAMPLE = Path(__file__).resolve().parents[2] / "mappings/samples/community-health/家庭医生签约.csv"
BASE = "http://fhir.yiyang.cn"
ROW = "QY2026-0010"  # 马玉兰, 65岁及以上老年人, 首签


def export_with(tmp_path: Path, groups: str, sign_type: str) -> Path:
    header, *rows = SAMPLE.read_text(encoding="utf-8-sig").splitlines(keepends=True)
    [row] = [r for r in rows if r.startswith(ROW + ",")]
    assert ",65岁及以上老年人,首签," in row
    path = tmp_path / SAMPLE.name
    path.write_text(header + row.replace(",65岁及以上老年人,首签,", f",{groups},{sign_type},"), encoding="utf-8-sig")
    return path


def categories(out: Path) -> list[tuple[str, str, Any]]:
    [plan] = ndjson(out / "CarePlan.ndjson")
    return [
        (c["coding"][0]["system"].rsplit("/", 1)[1], c["coding"][0]["code"], c.get("text")) for c in plan["category"]
    ]


def test_other_spellings_of_groups_and_sign_type_are_coded(tmp_path: Path) -> None:
    out = tmp_path / "out"
    commands.ingest(
        "community-health", [export_with(tmp_path, "糖尿病、计生特殊家庭、80岁及以上老年人", "续约")], out, Registry()
    )
    assert categories(out) == [
        ("careplan-category", "family-doctor-package", None),
        ("family-doctor-population", "type2-diabetes", "糖尿病"),
        ("family-doctor-population", "family-planning-special", "计生特殊家庭"),
        ("family-doctor-population", "oldest-old", "80岁及以上老年人"),
        ("contract-sign-type", "renewal", "续约"),
    ]


def test_a_group_without_a_code_quarantines_the_row(tmp_path: Path) -> None:
    out = tmp_path / "out"
    counts = commands.ingest(
        "community-health", [export_with(tmp_path, "65岁及以上老年人、慢性病患者", "首签")], out, Registry()
    )
    assert (counts.mapped, counts.quarantined) == (0, 1)
    assert reasons(out, SAMPLE.name, "row 2") == [
        ("mapping.unknown-code", "CarePlan.category.coding", f"{SAMPLE.name} row 2, column 签约人群类型[1]")
    ]


def test_an_unknown_sign_type_quarantines_the_row(tmp_path: Path) -> None:
    out = tmp_path / "out"
    counts = commands.ingest("community-health", [export_with(tmp_path, "65岁及以上老年人", "改签")], out, Registry())
    assert (counts.mapped, counts.quarantined) == (0, 1)
    assert reasons(out, SAMPLE.name, "row 2") == [
        ("mapping.unknown-code", "CarePlan.category.coding", f"{SAMPLE.name} row 2, column 签约类型")
    ]

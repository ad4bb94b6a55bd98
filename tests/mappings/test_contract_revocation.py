"""A 家庭医生签约 ended early (已解约) was in force until its 解约日期, not its agreed 协议结束日期: the
签约率 counts a contract whose period overlaps the year, so the agreed end would count the person as
contracted for months after the revocation."""

from __future__ import annotations

from pathlib import Path

from gateway.ingest.commands import build_engine
from mappings.engine import Mapped
from mappings.readers.csv_export import read_csv
from profiles.registry import Registry

SAMPLE = Path(__file__).resolve().parents[2] / "mappings/samples/community-health/家庭医生签约.csv"
ROW = "QY2026-0010"  # 马玉兰, 已签约 2026-03-02 … 2027-03-01


def revoked(tmp_path: Path, revocation_day: str) -> Mapped:
    """The sample's row, revoked, with a 解约日期 column as the 家医签约 systems export it."""
    header, *rows = SAMPLE.read_text(encoding="utf-8-sig").splitlines()
    [row] = [r for r in rows if r.startswith(ROW + ",")]
    path = tmp_path / SAMPLE.name
    path.write_text(
        f"{header},解约日期\n{row.replace(',已签约,', ',已解约,')},{revocation_day}\n", encoding="utf-8-sig"
    )
    [record] = read_csv(path, "community-health")
    mapped = build_engine(Registry()).map(record)
    assert mapped is not None
    return mapped


def test_a_revoked_contract_and_its_team_end_on_the_revocation_day(tmp_path: Path) -> None:
    mapped = revoked(tmp_path, "2026-06-30")
    assert [mapped.resources[name]["period"] for name in ("contract", "team")] == [
        {"start": "2026-03-02", "end": "2026-06-30"}
    ] * 2


def test_a_revoked_contract_without_its_revocation_day_is_refused_naming_the_column(tmp_path: Path) -> None:
    mapped = revoked(tmp_path, "")
    assert [(p.message_id, p.params["field"]) for p in mapped.problems] == [("mapping.missing-required", "解约日期")]

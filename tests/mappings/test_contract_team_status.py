"""The CareTeam of a 家庭医生签约 serves the resident only while the contract is in force: a contract
that has expired (已到期) or been ended (已解约) leaves an inactive team, one still awaiting
approval (待审核) a proposed one, as the contract's own CarePlan status says."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.ingest.commands import build_engine
from mappings.readers.csv_export import read_csv
from profiles.registry import Registry

SAMPLE = Path(__file__).resolve().parents[2] / "mappings/samples/community-health/家庭医生签约.csv"
ROW = "QY2026-0010"  # 马玉兰, 已签约


@pytest.mark.parametrize(
    ("status", "team"), [("已签约", "active"), ("已到期", "inactive"), ("已解约", "inactive"), ("待审核", "proposed")]
)
def test_the_contract_team_status_follows_the_contract_status(tmp_path: Path, status: str, team: str) -> None:
    header, *rows = SAMPLE.read_text(encoding="utf-8-sig").splitlines(keepends=True)
    [row] = [r for r in rows if r.startswith(ROW + ",")]
    path = tmp_path / SAMPLE.name
    path.write_text(header + row.replace(",已签约,", f",{status},"), encoding="utf-8-sig")
    [record] = read_csv(path, "community-health")
    mapped = build_engine(Registry()).map(record)
    assert mapped is not None
    assert mapped.resources["team"]["status"] == team

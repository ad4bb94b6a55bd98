"""A 家庭医生签约 ended early (已解约) was in force until its 解约日期, not its agreed 协议结束日期: the
签约率 counts a contract whose period overlaps the year, so the agreed end would count the person as
contracted for months after the revocation.  A row whose 解约日期 contradicts the rest of it (a
contract still 已签约, or ended after its agreed end) is refused naming 解约日期."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.ingest import commands
from gateway.ingest.commands import build_engine
from mappings.engine import Mapped
from mappings.readers.csv_export import read_csv
from profiles.registry import Registry
from tests.ingest_output import quarantined

SAMPLE = Path(__file__).resolve().parents[2] / "mappings/samples/community-health/家庭医生签约.csv"
ROW = "QY2026-0010"  # 马玉兰, 已签约 2026-03-02 … 2027-03-01
AGREED_END = date(2027, 3, 1)


def contract_file(tmp_path: Path, revocation_day: str, status: str = "已解约") -> Path:
    """The sample's row with ``status``, and a 解约日期 column as the 家医签约 systems export it."""
    header, *rows = SAMPLE.read_text(encoding="utf-8-sig").splitlines()
    [row] = [r for r in rows if r.startswith(ROW + ",")]
    path = tmp_path / SAMPLE.name
    path.write_text(
        f"{header},解约日期\n{row.replace(',已签约,', f',{status},')},{revocation_day}\n", encoding="utf-8-sig"
    )
    return path


def revoked(tmp_path: Path, revocation_day: str, status: str = "已解约") -> Mapped:
    [record] = read_csv(contract_file(tmp_path, revocation_day, status), "community-health")
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


def test_a_contract_in_force_with_a_revocation_day_is_refused_naming_both_columns(tmp_path: Path) -> None:
    mapped = revoked(tmp_path, "2026-06-30", status="已签约")
    assert [(p.message_id, p.params["field"], p.params["other"]) for p in mapped.problems] == [
        ("mapping.contradiction", "解约日期", "签约状态")
    ]


def test_a_revocation_after_the_agreed_end_is_refused_naming_both_columns(tmp_path: Path) -> None:
    mapped = revoked(tmp_path, "2027-05-01")
    assert [(p.message_id, p.params["field"], p.params["other"]) for p in mapped.problems] == [
        ("mapping.after", "解约日期", "协议结束日期")
    ]


def test_the_contradiction_is_quarantined_with_a_reason_naming_the_columns(tmp_path: Path) -> None:
    out = tmp_path / "out"
    commands.ingest("community-health", [contract_file(tmp_path, "2026-06-30", "已签约")], out, Registry())
    assert [(r["zh-CN"], r["source"]) for r in quarantined(out, "row 2")["reasons"]] == [
        (
            "字段“解约日期”的值“2026-06-30”与字段“签约状态”的值“已签约”相互矛盾，两者不能同时成立；请核对哪一项有误后重新导出",
            "家庭医生签约.csv row 2, column 解约日期",
        )
    ]


@settings(max_examples=30, deadline=None)
@given(st.integers(min_value=-300, max_value=300))
def test_a_revocation_is_refused_exactly_when_it_falls_after_the_agreed_end(
    tmp_path_factory: pytest.TempPathFactory, days: int
) -> None:
    day = AGREED_END + timedelta(days=days)
    mapped = revoked(tmp_path_factory.mktemp("contract"), day.isoformat())
    assert [p.message_id for p in mapped.problems] == (["mapping.after"] if days > 0 else [])

"""One home arriving from two community-health sources lands once on the person: the 健康档案
CDA document writes it in parts (addr use="H": township, streetName, houseNumber …), the
个人基本信息表 as one 现住址 line."""

from __future__ import annotations

from pathlib import Path

from gateway.ingest import commands
from profiles.registry import Registry
from tests.ingest_output import SAMPLES, ndjson

ZHANG_ID_CARD = "410105194912310020"


def zhang_row_of_the_table(folder: Path) -> Path:
    """The shipped 个人基本信息表 with 张秀英's row alone."""
    header, *rows = (SAMPLES / "community-health/个人基本信息表.csv").read_text(encoding="utf-8-sig").splitlines()
    path = folder / "个人基本信息表.csv"
    path.write_text("\n".join([header, *(r for r in rows if ZHANG_ID_CARD in r)]) + "\n", encoding="utf-8")
    return path


def test_the_cda_home_and_the_tables_home_of_one_person_land_once(tmp_path: Path) -> None:
    files = [zhang_row_of_the_table(tmp_path), SAMPLES / "community-health/健康档案-张秀英.xml"]
    commands.ingest("community-health", files, tmp_path / "out", Registry())
    [zhang] = [
        p for p in ndjson(tmp_path / "out/Patient.ndjson") if any(i["value"] == ZHANG_ID_CARD for i in p["identifier"])
    ]
    assert [(a["text"], a["use"], a["line"]) for a in zhang["address"]] == [
        ("河南省郑州市金水区经八路街道幸福社区3号楼", "home", ["经八路街道", "经八路", "幸福社区3号楼"])
    ]

"""家庭病床 rows of the 随访 / 巡诊 / 家床 export open the episode the bed-days are counted on
(EpisodeOfCare type home-bed, Measures home-bed-bed-days and home-bed-patient-count), however the
export spells the service type the ConceptMap community-encounter-type reads as home-bed."""

from __future__ import annotations

import pytest

from gateway.ingest.commands import build_engine
from mappings.records import SourceRecord
from profiles.registry import Registry

ROW = {
    "记录编号": "JC2026-0010",
    "身份证号": "410105194912310020",
    "个人档案编号": "41010500100100017",
    "姓名": "张秀英",
    "性别": "女",
    "出生日期": "1949-12-31",
    "民族": "汉族",
    "服务方式": "上门",
    "开始时间": "2026-10-08",
    "结束时间": "2026-11-08",
    "状态": "已撤床",
    "服务医生": "王芳",
    "医生工号": "410105D0012",
    "服务机构": "金水区医养服务中心",
    "统一社会信用代码": "52410105MJ5520731X",
    "机构类型": "医养服务中心",
}


@pytest.mark.parametrize("kind", ["家庭病床", "家床"])
def test_every_spelling_of_a_home_bed_row_opens_its_bed_episode(kind: str) -> None:
    fields = {**ROW, "服务类型": kind}
    record = SourceRecord("community-health", "家床记录.csv", "row 2", fields, b"raw", "column", frozenset(fields))
    mapped = build_engine(Registry()).map(record)
    assert mapped is not None
    episodes = [r for r in mapped.resources.values() if r["resourceType"] == "EpisodeOfCare"]
    assert [e["period"] for e in episodes] == [{"start": "2026-10-08", "end": "2026-11-08"}]

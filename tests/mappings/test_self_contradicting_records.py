"""Legacy records that contradict themselves are quarantined naming the field at fault.

Each test ingests one shipped sample record with one value changed, as a QA pass found them
landing: a 长护险 score above its scale, a GB/T 42195 total that is not the dimensions' sum, a
生活自理能力 total that is not the items' sum, a 建档日期 after today.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from gateway.ingest import commands
from profiles.registry import Registry
from tests.ingest_output import SAMPLES, quarantined, reasons


def ingest(source: str, path: Path) -> Path:
    out = path.parent / "out"
    commands.ingest(source, [path], out, Registry(), bundle=False)
    return out


def first_csv_row(sample: str, tmp_path: Path, **changes: str) -> Path:
    """The sample's header and first row, with ``changes`` made to the row."""
    rows = list(csv.DictReader(io.StringIO((SAMPLES / sample).read_text(encoding="utf-8-sig"))))
    written = io.StringIO()
    writer = csv.DictWriter(written, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerow({**rows[0], **changes})
    path = tmp_path / Path(sample).name
    path.write_text(written.getvalue(), encoding="utf-8-sig")
    return path


def ltc_assessment(tmp_path: Path, **changes: Any) -> Path:
    reply = json.loads((SAMPLES / "insurance/长护险失能评估.json").read_text(encoding="utf-8"))
    reply["data"]["records"] = [{**reply["data"]["records"][0], **changes}]
    path = tmp_path / "长护险失能评估.json"
    path.write_text(json.dumps(reply, ensure_ascii=False), encoding="utf-8")
    return path


def first_ability_assessment() -> dict[str, Any]:
    return json.loads((SAMPLES / "elderly-care/能力评估.ndjson").read_text(encoding="utf-8").splitlines()[0])


def ndjson_file(tmp_path: Path, name: str, line: dict[str, Any]) -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(line, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def test_an_ltc_adl_score_above_100_is_quarantined_naming_adl_score(tmp_path: Path) -> None:
    out = ingest("insurance", ltc_assessment(tmp_path, adl_score=150))
    assert reasons(out, "record 1") == [
        ("invariant.failed", "Observation.component[0]", "长护险失能评估.json record 1, field adl_score")
    ]


def test_an_ltc_adl_score_off_the_barthel_steps_of_5_is_quarantined_naming_adl_score(tmp_path: Path) -> None:
    out = ingest("insurance", ltc_assessment(tmp_path, adl_score=37))
    assert reasons(out, "record 1") == [
        ("invariant.failed", "Observation.component[0]", "长护险失能评估.json record 1, field adl_score")
    ]


def test_an_ability_total_other_than_the_dimension_sum_is_quarantined_naming_totalscore(tmp_path: Path) -> None:
    line = first_ability_assessment()
    line["totalScore"] = sum(line["dimensionScores"].values()) - 1
    out = ingest("elderly-care", ndjson_file(tmp_path, "能力评估.ndjson", line))
    assert reasons(out, "line 1") == [
        ("invariant.failed", "Observation.valueInteger", "能力评估.ndjson line 1, field totalScore")
    ]


def test_a_selfcare_total_other_than_the_item_sum_is_quarantined_naming_the_total(tmp_path: Path) -> None:
    """TJQA-003 of the QA pass: items of 不能自理 (37) under a total of 3 and the band 可自理."""
    items = {"进餐": "5", "梳洗": "7", "穿衣": "5", "如厕": "10", "活动": "10"}
    out = ingest("community-health", first_csv_row("community-health/老年人健康管理.csv", tmp_path, **items))
    assert reasons(out, "row 2") == [
        ("invariant.failed", "Observation.valueInteger", "老年人健康管理.csv row 2, column 生活自理能力评分")
    ]


def test_the_selfcare_quarantine_reason_says_what_the_total_must_be(tmp_path: Path) -> None:
    items = {"进餐": "5", "梳洗": "7", "穿衣": "5", "如厕": "10", "活动": "10"}
    out = ingest("community-health", first_csv_row("community-health/老年人健康管理.csv", tmp_path, **items))
    assert quarantined(out, "row 2")["reasons"][0]["zh-CN"] == (
        "约束 yy-sc-4 未满足：总分须等于 5 个项目得分之和（进餐 + 梳洗 + 穿衣 + 如厕 + 活动）"
    )


def test_a_filing_date_after_today_is_quarantined_naming_the_column(tmp_path: Path) -> None:
    out = ingest(
        "community-health", first_csv_row("community-health/个人基本信息表.csv", tmp_path, 建档日期="2099-01-01")
    )
    assert reasons(out, "row 2") == [
        ("invariant.failed", "Patient.extension[2].extension[0].valueDate", "个人基本信息表.csv row 2, column 建档日期")
    ]


def test_an_ltc_assessment_dated_before_the_birth_is_quarantined_naming_evalt_date(tmp_path: Path) -> None:
    """张秀英, born 1949-12-31, assessed in 1948: a birth year typed for the assessment year."""
    out = ingest("insurance", ltc_assessment(tmp_path, evalt_date="1948-10-20 09:00:00"))
    assert reasons(out, "record 1") == [
        ("rule.before-birth", "Observation.effectiveDateTime", "长护险失能评估.json record 1, field evalt_date")
    ]


def test_an_ltc_assessment_dated_before_the_birth_is_counted_as_quarantined(tmp_path: Path) -> None:
    counts = commands.ingest(
        "insurance", [ltc_assessment(tmp_path, evalt_date="1948-10-20 09:00:00")], tmp_path / "out", Registry()
    )
    assert (counts.read, counts.mapped, counts.quarantined, counts.reconciled) == (1, 0, 1, True)


def test_an_ltc_level_contradicting_full_marks_is_quarantined_naming_dsab_lv(tmp_path: Path) -> None:
    """重度失能Ⅲ级 beside the best score on every indicator: one of the two was typed wrong."""
    scores = {"adl_score": 100, "cogn_score": 16, "pcpt_cmnt_score": 12}
    out = ingest("insurance", ltc_assessment(tmp_path, dsab_lv="5", **scores))
    assert reasons(out, "record 1") == [
        ("invariant.failed", "Observation.valueCodeableConcept", "长护险失能评估.json record 1, field dsab_lv")
    ]


def test_a_filing_date_before_the_birth_is_quarantined_naming_the_column(tmp_path: Path) -> None:
    """建档日期 dates the health record on the Patient and the history's Conditions alike."""
    out = ingest(
        "community-health", first_csv_row("community-health/个人基本信息表.csv", tmp_path, 建档日期="1940-01-01")
    )
    assert reasons(out, "row 2") == [
        ("rule.before-birth", "Patient.extension[2].extension[0].value", "个人基本信息表.csv row 2, column 建档日期"),
        ("rule.before-birth", "Condition.recordedDate", "个人基本信息表.csv row 2, column 建档日期"),
    ]

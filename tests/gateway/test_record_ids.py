"""Ids come from what a record is (its source system's key), never from a file name or a row:
two clinics' exports with one file name no longer share ids, a re-export in another order
keeps every record's ids, and two records claiming one key in one import are caught."""

from __future__ import annotations

from pathlib import Path

from gateway.ingest import commands
from profiles.registry import Registry
from tests.ingest_output import ndjson, reasons

HEADER = "序号,个人档案编号,姓名,性别,出生日期,身份证号,民族,既往疾病,建档日期\n"
WANG = "1,41010500100100101,王建华,男,1950-03-01,410105195003010017,汉族,高血压,2015-06-01\n"
LI = "2,41010500100100102,李淑珍,女,1948-07-15,410105194807150029,汉族,糖尿病,2016-03-12\n"
ZHAO = "1,41010200200100201,赵德明,男,1947-01-20,410102194701200017,汉族,冠心病,2014-09-30\n"


def ingest(folder: Path, name: str, text: str, out: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(HEADER + text, encoding="utf-8")
    commands.ingest("community-health", [folder / name], out, Registry())


def condition_subjects(out: Path) -> dict[str, str]:
    return {c["id"]: c["subject"]["reference"] for c in ndjson(out / "Condition.ndjson")}


def test_two_clinics_exports_of_one_name_give_their_people_different_ids(tmp_path: Path) -> None:
    out = tmp_path / "out"
    ingest(tmp_path / "金水区", "个人基本信息表.csv", WANG, out)
    ingest(tmp_path / "中原区", "个人基本信息表.csv", ZHAO, out)
    assert len(set(condition_subjects(out).values())) == 2


def test_a_re_export_in_another_order_keeps_every_records_ids(tmp_path: Path) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    ingest(tmp_path / "a", "个人基本信息表.csv", WANG + LI, first)
    ingest(tmp_path / "b", "个人基本信息表.csv", LI.replace("2,", "1,", 1) + WANG.replace("1,", "2,", 1), second)
    assert sorted(condition_subjects(first)) == sorted(condition_subjects(second))


def test_two_records_claiming_one_source_key_in_one_import_are_caught(tmp_path: Path) -> None:
    out = tmp_path / "out"
    other_person = LI.replace("41010500100100102", "41010500100100101")
    ingest(tmp_path / "a", "个人基本信息表.csv", WANG + other_person, out)
    assert [r[0] for r in reasons(out, "row 3")] == ["ingest.duplicate-key"]


def test_two_records_of_one_key_differing_only_about_the_person_are_caught(tmp_path: Path) -> None:
    """Another phone is the person's (merged by identity, not a visit's): still two versions
    of one source record, and the second must not add its phone to the first's person."""
    folder, out = tmp_path / "a", tmp_path / "out"
    folder.mkdir()
    rows = [WANG.rstrip("\n") + ",13800000000\n", WANG.replace("1,", "2,", 1).rstrip("\n") + ",13900000000\n"]
    (folder / "个人基本信息表.csv").write_text(HEADER.rstrip("\n") + ",联系电话\n" + "".join(rows), encoding="utf-8")
    commands.ingest("community-health", [folder / "个人基本信息表.csv"], out, Registry())
    assert [r[0] for r in reasons(out, "row 3")] == ["ingest.duplicate-key"]


def test_one_record_twice_as_written_differently_only_repeats_it_when_its_person_came_first(tmp_path: Path) -> None:
    """The same record exported as CSV and as .xlsx (dates written otherwise) was quarantined as
    "different content" once the archive knew the person from another source: its resources
    were compared pointing at the record's own Patient id, not at the person it merges into."""
    out = tmp_path / "out"
    ingest(tmp_path / "elsewhere", "个人基本信息表.csv", WANG.replace("41010500100100101", "41010500100100199"), out)
    again = WANG.replace("1,", "2,", 1).replace("1950-03-01", "1950/3/1")
    ingest(tmp_path / "here", "个人基本信息表.csv", WANG + again, out)
    assert ndjson(out / "quarantine.ndjson") == []

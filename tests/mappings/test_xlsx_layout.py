"""How a sheet is laid out, read for what its maker meant: a value merged over a group of rows
is the value of each of them, a value right of the header is never dropped unseen, a header
spelled in full-width forms or with spaces names the spec's column, and a date typed as the
number 19500101 is that date."""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path

import pytest

from mappings import normalise
from mappings.readers import ReaderError, read, xlsx_export
from mappings.records import UNPARSEABLE, SourceRecord, unparseable_text
from tests.samples import workbook

SOURCE = "community-health"
#: 20 columns, A to T, the county code in J
HEADER = ["姓名", *(f"项目{n}" for n in range(2, 10)), "县区代码", *(f"项目{n}" for n in range(11, 21))]


def row(name: str, county: object = None, **cells: object) -> list[object]:
    """A row under HEADER; ``cells`` by column letter (J is the county code, V past the header)."""
    values: list[object] = [name, *([None] * 21)]
    values[9] = county
    for letter, value in cells.items():
        values[ord(letter) - ord("A")] = value
    return values


def records(path: Path) -> list[SourceRecord]:
    return list(read(path, SOURCE))


# -- merged cells ------------------------------------------------------------------------------
def test_a_county_merged_over_a_group_of_rows_is_the_county_of_each(tmp_path: Path) -> None:
    rows = [HEADER, row("甲"), row("乙"), row("丙"), row("张三", "410105"), row("李四"), row("王五"), row("赵六")]
    path = workbook(tmp_path / "表.xlsx", rows, merged=("J5:J7",))
    counties = {record.location: record.fields["县区代码"] for record in records(path)}
    assert [counties[f"sheet Sheet row {n}"] for n in range(4, 9)] == [None, "410105", "410105", "410105", None]


def test_a_merged_block_fills_every_cell_of_it(tmp_path: Path) -> None:
    rows = [["姓名", "血型", "Rh血型", "备注"], ["张三", "A", None, "无"], ["李四", None, None, "无"]]
    path = workbook(tmp_path / "表.xlsx", rows, merged=("B2:C3",))
    assert [(r.fields["血型"], r.fields["Rh血型"], r.fields["备注"]) for r in records(path)] == [("A", "A", "无")] * 2


def test_a_merged_header_cell_names_only_its_first_column_and_fills_no_row(tmp_path: Path) -> None:
    rows = [["联系方式", None, "姓名"], ["13800000000", "0371-1234567", "张三"], [None, None, "李四"]]
    path = workbook(tmp_path / "表.xlsx", rows, merged=("A1:B1", "C1:C2"))
    read_rows = records(path)
    assert sorted(read_rows[0].shape) == ["列2", "姓名", "联系方式"]
    assert [r.fields["姓名"] for r in read_rows] == [None, "李四"]


def test_a_merge_from_the_header_past_its_last_column_is_no_value_right_of_it(tmp_path: Path) -> None:
    rows = [HEADER, row("张三", **{"T": "备注"})]
    [record] = records(workbook(tmp_path / "表.xlsx", rows, merged=("T2:W2",)))
    assert record.fields["项目20"] == "备注"


def test_a_value_right_of_the_header_merged_down_sets_aside_every_row_of_it(tmp_path: Path) -> None:
    rows = [HEADER, row("张三", V="另记"), row("李四")]
    read_rows = records(workbook(tmp_path / "表.xlsx", rows, merged=("V2:V3",)))
    assert [r.fields[UNPARSEABLE]["params"]["problem"] for r in read_rows] == [
        {"id": "reader.cells-right-of-header", "params": {"cells": 22, "columns": 20, "cell": "V2"}},
        {"id": "reader.cells-right-of-header", "params": {"cells": 22, "columns": 20, "cell": "V3"}},
    ]


def test_more_merged_ranges_than_the_limit_refuse_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(xlsx_export, "MAX_MERGED_RANGES", 2)
    rows = [["姓名", "县区代码"], *([["张三", "410105"]] * 6)]
    path = workbook(tmp_path / "表.xlsx", rows, merged=("B2:B3", "B4:B5", "B6:B7"))
    with pytest.raises(ReaderError, match="more than 2 merged ranges"):
        records(path)


# -- cells right of the header -----------------------------------------------------------------
def test_a_value_right_of_the_header_makes_its_row_a_problem_naming_the_cell(tmp_path: Path) -> None:
    rows = [HEADER, *(row(f"人{n}") for n in range(2, 10)), row("张三", "410105", V="13800000000"), row("李四")]
    read_rows = records(workbook(tmp_path / "表.xlsx", rows))
    problem = next(r for r in read_rows if r.location == "sheet Sheet row 10")
    assert unparseable_text(problem.fields[UNPARSEABLE], "en") == (
        "sheet Sheet row 10: 22 cells under a header of 20 (cell V10, right of the header, holds a value)"
    )
    assert json.loads(problem.raw)["V10"] == "13800000000"  # kept for the quarantine
    assert [r.fields["姓名"] for r in read_rows if UNPARSEABLE not in r.fields][-1] == "李四"


def test_empty_cells_right_of_the_header_are_no_problem(tmp_path: Path) -> None:
    [record] = records(workbook(tmp_path / "表.xlsx", [HEADER, row("张三", U="", V=" ")]))
    assert UNPARSEABLE not in record.fields


# -- header names ------------------------------------------------------------------------------
def test_header_cells_are_named_as_the_specs_spell_them(tmp_path: Path) -> None:
    path = workbook(
        tmp_path / "表.xlsx", [["签约服务费（元）", "性　别", None, " 姓 名 ", "　"], [120, "女", 1, "张三", 2]]
    )
    [record] = records(path)
    assert record.fields == {"签约服务费(元)": 120, "性别": "女", "列3": 1, "姓名": "张三", "列5": 2}


# -- dates typed as numbers ----------------------------------------------------------------------
def test_a_birth_date_typed_as_the_number_19500101_is_that_date(tmp_path: Path) -> None:
    [record] = records(workbook(tmp_path / "表.xlsx", [["姓名", "出生日期"], ["张三", 19500101]]))
    assert normalise.fhir_date(record.fields["出生日期"]) == "1950-01-01"


def test_overlapping_merged_ranges_refuse_the_file(tmp_path: Path) -> None:
    rows = [["姓名", "县区代码", "血型"], ["张三", "410105", "A"], ["李四", None, None], ["王五", None, None]]
    path = workbook(tmp_path / "表.xlsx", rows, merged=("B2:B4", "A3:C3"))
    with pytest.raises(ReaderError, match="merged ranges overlap at B3"):
        records(path)


# -- date cells --------------------------------------------------------------------------------
def dated(path: Path, *formats: str) -> list[SourceRecord]:
    """A sheet of one 体检日期 column, 2026-06-15 09:30 in a date cell of each number format."""
    from openpyxl import Workbook

    book = Workbook()
    book.active.append(["体检日期"])
    for number, written in enumerate(formats, start=2):
        book.active.append([datetime(2026, 6, 15, 9, 30) if "h" in written else datetime(2026, 6, 15)])
        book.active.cell(row=number, column=1).number_format = written
    book.save(path)
    return records(path)


def test_a_date_cell_formatted_as_a_day_is_that_day_not_its_midnight(tmp_path: Path) -> None:
    """openpyxl reads every date cell as a datetime: a day became 2026-06-15T00:00:00+08:00,
    and the .xlsx of a record the CSV also sent said something else (ingest.duplicate-key)."""
    formats = ["yyyy-mm-dd", 'yyyy"年"m"月"d"日"', "[$-804]yyyy/m/d", "yyyy-mm-dd hh:mm", 'h"时"mm"分"']
    days = [record.fields["体检日期"] for record in dated(tmp_path / "表.xlsx", *formats)]
    assert days == [date(2026, 6, 15)] * 3 + [datetime(2026, 6, 15, 9, 30)] * 2
    assert [normalise.fhir_datetime(day) for day in days[2:4]] == ["2026-06-15", "2026-06-15T09:30:00+08:00"]

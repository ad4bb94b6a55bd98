"""Spreadsheets whose cells cannot be read for what they say: a header naming a column twice
(which 姓名 is the name?) refuses the file, a formula cell Excel never calculated is a
problem of its row, never an empty cell, and a formula's error value (#N/A) is no value."""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

import pytest
from openpyxl import Workbook

from gateway.ingest import commands
from mappings.readers import ReaderError, read
from mappings.records import UNPARSEABLE, SourceRecord, unparseable_text
from profiles.registry import Registry

SOURCE = "community-health"


def workbook(path: Path, *sheets: list[list[object]]) -> Path:
    """An .xlsx of one sheet per list of rows, as a script writes it: formulas without results."""
    book = Workbook()
    for index, rows in enumerate(sheets):
        sheet = book.active if index == 0 else book.create_sheet(f"第{index + 1}页")
        for row in rows:
            sheet.append(row)
    book.save(path)
    return path


def records(path: Path) -> list[SourceRecord]:
    return list(read(path, SOURCE))


def test_a_csv_naming_a_column_twice_is_refused_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "表.csv"
    path.write_text("姓名,性别,姓名\n张三,男,李四\n", encoding="utf-8")
    with pytest.raises(ReaderError, match="'姓名' twice"):
        records(path)


def test_an_xlsx_naming_a_column_twice_is_refused_naming_it(tmp_path: Path) -> None:
    path = workbook(tmp_path / "表.xlsx", [["姓名", "性别", "姓名"], ["张三", "男", "李四"]])
    with pytest.raises(ReaderError, match="'姓名' twice"):
        records(path)


def test_an_xlsx_whose_later_sheet_names_a_column_twice_yields_no_row_at_all(tmp_path: Path) -> None:
    path = workbook(tmp_path / "表.xlsx", [["姓名"], ["张三"]], [["姓名", "姓名"], ["李四", "王五"]])
    read_rows: list[SourceRecord] = []
    with pytest.raises(ReaderError):
        read_rows.extend(read(path, SOURCE))
    assert read_rows == []


def test_a_file_naming_a_column_twice_is_counted_as_a_file_error(tmp_path: Path) -> None:
    path = tmp_path / "表.csv"
    path.write_text("姓名,身份证号,姓名\n张三,410105194912310020,李四\n", encoding="utf-8")
    counts = commands.ingest(SOURCE, [path], tmp_path / "out", Registry())
    assert (counts.read, len(counts.file_errors)) == (0, 1)


def test_a_formula_cell_without_a_saved_result_makes_its_row_a_problem_naming_the_cell(tmp_path: Path) -> None:
    path = workbook(tmp_path / "表.xlsx", [["姓名", "联系电话"], ["张三", '="13251610956"']])
    [record] = records(path)
    why = record.fields[UNPARSEABLE]
    assert (why["params"]["problem"]["id"], why["params"]["problem"]["params"]) == (
        "reader.uncalculated-formula",
        {"cell": "B2", "column": "联系电话"},
    )
    assert "单元格 B2（联系电话）是公式单元格，没有计算结果" in unparseable_text(why, "zh-CN")


def test_a_row_of_uncalculated_formulas_alone_is_not_skipped_as_empty(tmp_path: Path) -> None:
    path = workbook(tmp_path / "表.xlsx", [["姓名", "联系电话"], ['=CONCATENATE("张","三")', '="13251610956"']])
    assert [record.location for record in records(path)] == ["sheet Sheet row 2"]


def saved_as_excel_saves_an_empty_string_result(path: Path) -> Path:
    """The workbook with its B2 formula saved as Excel saves ``=IF(…,"",…)`` when the result
    is the empty string: a string cell (t="str") whose value is empty."""
    rewritten = path.with_name(f"saved-{path.name}")
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(rewritten, "w") as target:
        for member in source.infolist():
            data = source.read(member.filename)
            if member.filename == "xl/worksheets/sheet1.xml":
                data = re.sub(rb'<c r="B2"><f>(.*?)</f><v></v></c>', rb'<c r="B2" t="str"><f>\1</f><v></v></c>', data)
            target.writestr(member, data)
    return rewritten


def test_a_formula_whose_saved_result_is_empty_reads_as_an_empty_cell(tmp_path: Path) -> None:
    path = saved_as_excel_saves_an_empty_string_result(
        workbook(tmp_path / "表.xlsx", [["姓名", "备注"], ["张三", '=IF(1,"","x")']])
    )
    [record] = records(path)
    assert UNPARSEABLE not in record.fields


def test_a_csv_header_ending_in_blank_columns_is_read(tmp_path: Path) -> None:
    """Excel's CSV exports often end the header with empty cells: they are no column named twice."""
    path = tmp_path / "表.csv"
    path.write_text("姓名,身份证号,,\n张三,410105194912310020,,\n", encoding="utf-8")
    assert [record.fields["姓名"] for record in records(path)] == ["张三"]


# -- a formula's error value (#N/A, #REF! …) is no value of the record -----------------------------
PERSONAL_INFO = Path(__file__).resolve().parents[2] / "mappings/samples/community-health/个人基本信息表.csv"


def problems_of(record: SourceRecord) -> list[tuple[str, str | None]]:
    from gateway.ingest.commands import build_engine

    mapped = build_engine(Registry()).map(record)
    assert mapped is not None
    return [(problem.message_id, problem.params.get("field")) for problem in mapped.problems]


def test_an_xlsx_address_whose_formula_failed_is_a_problem_not_the_address(tmp_path: Path) -> None:
    """Excel saves a failed VLOOKUP as an error cell holding #N/A, which landed as the address."""
    header, first = PERSONAL_INFO.read_text(encoding="utf-8-sig").splitlines()[:2]
    cells = first.split(",")
    column = header.split(",").index("现住址")
    cells[column] = "=VLOOKUP(B2,住址!A:B,2,FALSE)"
    path = workbook(tmp_path / "表.xlsx", [header.split(","), cells])
    failed = path.with_name("failed.xlsx")
    letter = chr(ord("A") + column)
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(failed, "w") as target:
        for member in source.infolist():
            data = source.read(member.filename)
            if member.filename == "xl/worksheets/sheet1.xml":
                pattern = rf'<c r="{letter}2"><f>(.*?)</f><v></v></c>'.encode()
                data = re.sub(pattern, rf'<c r="{letter}2" t="e"><f>\1</f><v>#N/A</v></c>'.encode(), data)
            target.writestr(member, data)
    [record] = records(failed)
    assert problems_of(record) == [("mapping.spreadsheet-error", "现住址")]


@pytest.mark.parametrize("shown", ["#N/A", "#REF!", "#VALUE!", "#NAME?"])
def test_a_csv_name_saved_from_a_failed_formula_is_a_problem_not_the_name(tmp_path: Path, shown: str) -> None:
    header, first = PERSONAL_INFO.read_text(encoding="utf-8-sig").splitlines()[:2]
    cells = first.split(",")
    cells[header.split(",").index("姓名")] = shown
    path = tmp_path / "表.csv"
    path.write_text(f"{header}\n{','.join(cells)}\n", encoding="utf-8")
    [record] = records(path)
    assert problems_of(record) == [("mapping.spreadsheet-error", "姓名")]

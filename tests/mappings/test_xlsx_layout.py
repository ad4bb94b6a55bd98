"""How a sheet is laid out, read for what its maker meant: a value merged over a group of rows
is the value of each of them, a value right of the header is never dropped unseen, a header
spelled in full-width forms or with spaces names the spec's column, and a date typed as the
number 19500101 is that date."""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.ingest import commands
from mappings import normalise
from mappings.readers import ReaderError, read, xlsx_export
from mappings.records import UNPARSEABLE, SourceRecord, unparseable_text
from profiles.registry import Registry
from tests.ingest_output import quarantined
from tests.samples import workbook

SOURCE = "community-health"
PERSONAL_INFO = Path(__file__).resolve().parents[2] / "mappings/samples/community-health/个人基本信息表.csv"
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


# -- title lines above the header ------------------------------------------------------------------
TITLE = "金水区2026年65岁及以上老年人健康管理登记表"


def test_a_title_merged_across_the_sheet_and_a_note_under_it_are_not_the_header(tmp_path: Path) -> None:
    """The real header in row 3: every row was "20 cells under a header of 1"."""
    rows = [[TITLE], ["导出时间：2026-11-30"], HEADER, row("张三", "410105"), row("李四", "410102")]
    read_rows = records(workbook(tmp_path / "表.xlsx", rows, merged=("A1:T1",)))
    assert [(r.location, r.fields["姓名"], r.fields["县区代码"]) for r in read_rows] == [
        ("sheet Sheet row 4", "张三", "410105"),
        ("sheet Sheet row 5", "李四", "410102"),
    ]
    assert read_rows[0].shape == frozenset(HEADER)


def test_each_record_under_a_title_says_which_lines_were_skipped(tmp_path: Path) -> None:
    """A problem row too: a file whose every row is quarantined still tells its titles."""
    rows = [[TITLE + "　" * 3 + "x" * 100], ["导出时间：2026-11-30"], HEADER, row("张三"), row("李四", V="另记")]
    good, bad = records(workbook(tmp_path / "表.xlsx", rows, merged=("A1:T1",)))
    assert UNPARSEABLE in bad.fields
    assert good.skipped is bad.skipped
    assert [line.text("en") for line in good.skipped] == [
        f"sheet Sheet row 1 '{TITLE} {'x' * (xlsx_export.TITLE_CHARS - len(TITLE) - 2)}…'",
        "sheet Sheet row 2 '导出时间：2026-11-30'",
    ]


def with_code_list(path: Path, state: str) -> Path:
    """A register with, behind it, a code-list sheet in ``state`` (hidden or veryHidden), as
    the 公卫 templates carry the lists their drop-downs offer."""
    from openpyxl import Workbook

    book = Workbook()
    book.active.append(["姓名", "县区代码"])
    book.active.append(["张三", "410105"])
    codes = book.create_sheet("代码表")
    for line in [["代码", "名称"], ["410105", "金水区"], ["410102", "中原区"]]:
        codes.append(line)
    codes.sheet_state = state
    book.save(path)
    return path


@pytest.mark.parametrize("state", ["hidden", "veryHidden"])
def test_a_hidden_sheet_is_not_read(tmp_path: Path, state: str) -> None:
    """Its rows were records, each quarantined ``ingest.no-spec``."""
    assert [r.location for r in records(with_code_list(tmp_path / "表.xlsx", state))] == ["sheet Sheet row 2"]


@pytest.mark.parametrize(
    ("state", "told"),
    [("hidden", "sheet 代码表 (hidden)"), ("veryHidden", "sheet 代码表 (very hidden: only a macro shows it)")],
)
def test_each_record_says_which_hidden_sheet_was_skipped(tmp_path: Path, state: str, told: str) -> None:
    [record] = records(with_code_list(tmp_path / "表.xlsx", state))
    assert [line.text("en") for line in record.skipped] == [told]


def test_a_sheet_without_a_title_skips_no_line(tmp_path: Path) -> None:
    rows = [[], ["姓名", "县区代码"], ["张三", "410105"]]
    assert [r.skipped for r in records(workbook(tmp_path / "表.xlsx", rows))] == [()]


def test_a_note_above_the_title_is_a_title_line_too(tmp_path: Path) -> None:
    rows = [["单位：金水区卫生健康委员会"], [TITLE], HEADER, row("张三", "410105")]
    [record] = records(workbook(tmp_path / "表.xlsx", rows, merged=("A2:T2",)))
    assert (record.location, record.fields["姓名"]) == ("sheet Sheet row 4", "张三")


def test_a_range_merged_in_the_title_lines_fills_no_row_of_data(tmp_path: Path) -> None:
    """A note merged down past the header (B2:B5, which blanks the header's B3) fills neither
    rows 4 and 5 nor names column B."""
    rows = [[TITLE], [None, "单位：金水区"], HEADER, row("张三"), row("李四")]
    read_rows = records(workbook(tmp_path / "表.xlsx", rows, merged=("A1:T1", "B2:B5")))
    assert [(r.fields["姓名"], r.fields["列2"]) for r in read_rows] == [("张三", None), ("李四", None)]


def test_empty_rows_above_the_header_are_skipped(tmp_path: Path) -> None:
    """A header in row 3 under two empty rows: the sheet was read as having no rows at all."""
    rows = [[], [], ["姓名", "县区代码"], ["张三", "410105"]]
    [record] = records(workbook(tmp_path / "表.xlsx", rows))
    assert (record.location, record.fields) == ("sheet Sheet row 4", {"姓名": "张三", "县区代码": "410105"})


def test_a_sheet_of_one_column_under_a_title_has_its_column_named(tmp_path: Path) -> None:
    rows = [[TITLE], ["身份证号"], ["11010519491231002X"]]
    [record] = records(workbook(tmp_path / "表.xlsx", rows, merged=("A1:C1",)))
    assert (record.location, record.fields) == ("sheet Sheet row 3", {"身份证号": "11010519491231002X"})


def test_a_value_alone_in_the_first_row_and_not_merged_is_still_the_header(tmp_path: Path) -> None:
    rows = [["姓名"], ["张三"], ["李四", "13800000000"]]
    read_rows = records(workbook(tmp_path / "表.xlsx", rows))
    assert [r.location for r in read_rows] == ["sheet Sheet row 2", "sheet Sheet row 3"]
    assert (read_rows[0].shape, UNPARSEABLE in read_rows[1].fields) == (frozenset({"姓名"}), True)


@pytest.mark.parametrize(
    ("rows", "merged"),
    [
        # ten lines of title and notes, the header in row 12
        ([[TITLE], *([f"说明{n}"] for n in range(9)), [], HEADER, row("张三")], ("A1:T1",)),
        # ten empty rows, the header in row 11
        ([*([] for _ in range(10)), HEADER, row("张三")], ()),
    ],
)
def test_a_sheet_whose_header_is_not_among_its_first_rows_is_refused(
    tmp_path: Path, rows: list[list[object]], merged: tuple[str, ...]
) -> None:
    path = workbook(tmp_path / "表.xlsx", rows, merged=merged)
    with pytest.raises(ReaderError, match="no header among its first 10 rows") as refused:
        records(path)
    assert refused.value.message.id == "reader.xlsx-no-header"


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    notes=st.lists(st.text(st.characters(codec="utf-8", categories=["L", "N"]), min_size=1, max_size=12), max_size=8),
    note_first=st.booleans(),
    names=st.lists(st.sampled_from(["张三", "李四", "王五", "赵六"]), min_size=1, max_size=5),
)
def test_under_any_title_lines_the_header_and_every_row_are_read_where_they_sit(
    tmp_path: Path, notes: list[str], note_first: bool, names: list[str]
) -> None:
    """A title merged across the sheet, with notes above or under it (merged or not): the
    header is the row after them, and each row of data is read, numbered as the sheet is."""
    titles: list[list[object]] = [[TITLE], *([note] for note in notes)]
    if note_first and notes:
        titles = [titles[1], titles[0], *titles[2:]]
    title_row = titles.index([TITLE]) + 1
    rows = [*titles, HEADER, *(row(name, "410105") for name in names)]
    path = workbook(tmp_path / "表.xlsx", rows, merged=(f"A{title_row}:T{title_row}",))
    read_rows = records(path)
    first = len(titles) + 2
    assert [(r.location, r.fields["姓名"], r.shape) for r in read_rows] == [
        (f"sheet Sheet row {n}", name, frozenset(HEADER)) for n, name in enumerate(names, start=first)
    ]


# -- a header of two rows: group titles merged over the columns under them -------------------------
GROUPS = ["基本信息", *([None] * 7), "健康信息", *([None] * 11)]


def test_a_header_under_group_titles_merged_over_its_columns_is_the_second_row(tmp_path: Path) -> None:
    """基本信息 over A1:H1, 健康信息 over I1:T1: every row was "20 cells under a header of 9"."""
    rows = [GROUPS, HEADER, row("张三", "410105")]
    [record] = records(workbook(tmp_path / "表.xlsx", rows, merged=("A1:H1", "I1:T1")))
    assert (record.location, record.shape, record.fields["县区代码"]) == (
        "sheet Sheet row 3",
        frozenset(HEADER),
        "410105",
    )


def test_a_column_merged_down_over_both_header_rows_is_named_by_its_first(tmp_path: Path) -> None:
    """序号 over A1:A2 beside the groups: its name is in row 1 alone."""
    rows = [["序号", *GROUPS[:-1]], [None, *HEADER[:-1]], [1, *row("张三", "410105")[:19]]]
    [record] = records(workbook(tmp_path / "表.xlsx", rows, merged=("A1:A2", "B1:I1", "J1:T1")))
    assert (record.fields["序号"], record.fields["姓名"]) == (1, "张三")


def test_a_one_row_header_of_names_merged_across_for_width_is_the_header(tmp_path: Path) -> None:
    """姓名 over A1:B1, 身份证号 over C1:D1, 性别 over E1:F1 were taken for group titles: the row of
    data under them became the header, and the sheet held no record."""
    rows = [["姓名", None, "身份证号", None, "性别", None], ["张三", None, "11010519491231002X", None, "女", None]]
    [record] = records(workbook(tmp_path / "表.xlsx", rows, merged=("A1:B1", "C1:D1", "E1:F1")))
    assert (record.location, record.fields["姓名"], record.fields["性别"]) == ("sheet Sheet row 2", "张三", "女")


def test_each_record_under_group_titles_says_the_header_row_and_why(tmp_path: Path) -> None:
    rows = [GROUPS, HEADER, row("张三", "410105")]
    [record] = records(workbook(tmp_path / "表.xlsx", rows, merged=("A1:H1", "I1:T1")))
    assert record.header is not None
    assert record.header.text("en") == (
        "the header was taken from sheet Sheet row 2: row 1 above it holds group titles merged over"
        " the columns under them (基本信息, 健康信息)"
    )


def test_a_record_matching_no_spec_under_group_titles_says_which_row_was_the_header(tmp_path: Path) -> None:
    """身份证号码 for 身份证号: the reason says the header is row 2 and that row 1 held group titles."""
    header, first = PERSONAL_INFO.read_text(encoding="utf-8-sig").splitlines()[:2]
    columns = header.replace("身份证号", "身份证号码").split(",")
    groups = ["基本信息", *([None] * 9), "健康信息", *([None] * (len(columns) - 11))]
    merged = ("A1:J1", f"K1:{chr(ord('A') + len(columns) - 1)}1")
    path = workbook(tmp_path / "个人基本信息表.xlsx", [groups, columns, first.split(",")], merged=merged)
    commands.ingest(SOURCE, [path], tmp_path / "out", Registry())
    told = quarantined(tmp_path / "out", "sheet Sheet row 3")["reasons"]
    assert [reason["id"] for reason in told] == ["ingest.no-spec-lacks", "ingest.header-row"]
    assert told[1]["en"].startswith(
        "the header was taken from sheet Sheet row 2: row 1 above it holds group titles merged over the"
        " columns under them (基本信息, 健康信息)"
    )


def test_a_header_under_title_lines_says_so(tmp_path: Path) -> None:
    rows = [[TITLE], ["导出时间：2026-11-30"], HEADER, row("张三", "410105")]
    [record] = records(workbook(tmp_path / "表.xlsx", rows, merged=("A1:T1",)))
    assert record.header is not None
    assert record.header.text("en") == (
        "the header was taken from sheet Sheet row 3: the first row of two values or more under the title lines"
        " (rows 1, 2)"
    )

"""A CSV's delimiter and encoding as Excel writes them: "Text (Tab delimited)" saved under a
.csv name, and "Unicode Text" (UTF-16 with its byte order mark, tab-separated, CRLF) — each
was one long column, every row quarantined ``ingest.no-spec``, or refused as UTF-16."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mappings.readers import READERS, ReaderError, read
from mappings.records import UNPARSEABLE, SourceRecord

SOURCE = "community-health"
HEADER = ["姓名", "身份证号", "性别", "出生日期", "现住址"]
ROW = ["张秀英", "11010519491231002X", "女", "1949-12-31", "北京市朝阳区建外街道1号楼"]


def exported(rows: list[list[str]], delimiter: str = "\t") -> str:
    """The rows as Excel writes them: CRLF, a cell quoted when it holds the delimiter."""
    text = io.StringIO()
    csv.writer(text, dialect="excel", delimiter=delimiter).writerows(rows)
    return text.getvalue()


def records(path: Path) -> list[SourceRecord]:
    return list(read(path, SOURCE))


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gb18030", "utf-16", "utf-16-le", "utf-16-be"])
def test_a_tab_separated_export_is_read_column_by_column(tmp_path: Path, encoding: str) -> None:
    """utf-16 writes the byte order mark of the machine's order; -le and -be get theirs here."""
    text = exported([HEADER, ROW, ["李四", "110105194912310021", "男", "1950-01-01", "住址,含逗号"]])
    bom = {"utf-16-le": "\ufeff", "utf-16-be": "\ufeff"}.get(encoding, "")
    path = tmp_path / "个人基本信息表.csv"
    path.write_bytes((bom + text).encode(encoding))
    first, second = records(path)
    assert (first.location, first.fields, first.shape) == (
        "row 2",
        dict(zip(HEADER, ROW, strict=True)),
        frozenset(HEADER),
    )
    assert (second.location, second.fields["现住址"]) == ("row 3", "住址,含逗号")


def test_a_unicode_text_record_keeps_its_text_as_its_raw_form(tmp_path: Path) -> None:
    path = tmp_path / "个人基本信息表.csv"
    path.write_bytes(exported([HEADER, ROW]).encode("utf-16"))
    [record] = records(path)
    assert record.raw == ("\t".join(ROW) + "\r\n").encode()


def test_a_comma_separated_export_whose_cells_hold_tabs_stays_comma_separated(tmp_path: Path) -> None:
    path = tmp_path / "表.csv"
    path.write_text(exported([["姓名", "备注"], ["张三", "a\tb\tc"]], ","), encoding="utf-8")
    [record] = records(path)
    assert record.fields == {"姓名": "张三", "备注": "a\tb\tc"}


def test_a_tsv_file_is_read_as_a_tab_separated_export(tmp_path: Path) -> None:
    path = tmp_path / "个人基本信息表.tsv"
    path.write_text(exported([HEADER, ROW]), encoding="utf-8")
    assert ".tsv" in READERS
    assert [r.fields for r in records(path)] == [dict(zip(HEADER, ROW, strict=True))]


def test_a_tab_separated_row_with_a_cell_too_many_is_a_problem_as_in_a_csv(tmp_path: Path) -> None:
    path = tmp_path / "表.csv"
    path.write_text("姓名\t住址\n张三\t金水区\t文化路\n李四\t中原区\n", encoding="utf-8")
    first, second = records(path)
    assert (UNPARSEABLE in first.fields, second.fields) == (True, {"姓名": "李四", "住址": "中原区"})


def test_utf16_without_its_byte_order_mark_is_still_refused_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "表.csv"
    path.write_bytes(exported([HEADER, ROW]).encode("utf-16-le"))
    with pytest.raises(ReaderError, match="UTF-16 LE text without a byte order mark"):
        records(path)


def test_a_unicode_text_export_with_bare_cr_lines_says_so(tmp_path: Path) -> None:
    path = tmp_path / "表.csv"
    path.write_bytes("姓名\t性别\r张三\t女\r".encode("utf-16"))
    with pytest.raises(ReaderError) as refused:
        records(path)
    assert refused.value.message.id == "reader.csv-bare-cr"


#: cell text as a clerk types it, with the delimiters, quotes and line breaks that need quoting
cells = st.text(
    st.characters(codec="utf-8", exclude_categories=["Cc", "Cs", "Zl", "Zp"], include_characters='\t\n,"'),
    max_size=12,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    rows=st.lists(st.lists(cells, min_size=3, max_size=3), min_size=1, max_size=6),
    delimiter=st.sampled_from([",", "\t"]),
    encoding=st.sampled_from(["utf-8", "utf-8-sig", "utf-16"]),
)
def test_whatever_the_cells_hold_an_export_reads_back_as_written(
    tmp_path: Path, rows: list[list[str]], delimiter: str, encoding: str
) -> None:
    """Cells holding commas, tabs and quotes, quoted as Excel quotes them, in either delimiter
    and encoding: every row that holds a value reads back cell for cell, at its row number."""
    header = ["姓名", "住址", "备注"]
    path = tmp_path / "表.csv"
    path.write_bytes(exported([header, *rows], delimiter).encode(encoding))
    expected = [
        (f"row {n}", dict(zip(header, row, strict=True)))
        for n, row in enumerate(rows, start=2)
        if any(cell.strip() for cell in row)
    ]
    assert [(r.location, r.fields) for r in records(path)] == expected


@pytest.mark.parametrize(("delimiter", "encoding"), [("\t", "utf-16"), ("\t", "gb18030"), (",", "utf-8-sig")])
def test_a_txt_export_is_read_by_the_delimiter_its_header_shows(tmp_path: Path, delimiter: str, encoding: str) -> None:
    """Excel names its "Unicode Text" and "Text (Tab delimited)" exports .txt: no reader took them."""
    path = tmp_path / "个人基本信息表.txt"
    path.write_bytes(exported([HEADER, ROW], delimiter).encode(encoding))
    assert [r.fields for r in records(path)] == [dict(zip(HEADER, ROW, strict=True))]


def test_a_json_document_saved_as_txt_is_refused_for_the_commas_in_it(tmp_path: Path) -> None:
    path = tmp_path / "1101.txt"
    path.write_text('{"infno": "1101", "output": {"baseinfo": {"psn_no": "41000000000000000001"}}}', encoding="utf-8")
    with pytest.raises(ReaderError) as refused:
        records(path)
    assert refused.value.message.id == "reader.txt-not-delimited"


# -- cells written as Excel's text formula -------------------------------------------------------
@pytest.mark.parametrize("delimiter", [",", "\t"])
def test_an_identifier_written_as_a_text_formula_is_read_as_excel_shows_it(tmp_path: Path, delimiter: str) -> None:
    """="41010200100000001" keeps Excel from showing 4.10102E+16; it landed with its = and quotes."""
    path = tmp_path / "个人基本信息表.csv"
    path.write_text(exported([["姓名", "个人档案编号"], ["张秀英", '="41010200100000001"']], delimiter), "utf-8")
    [record] = records(path)
    assert record.fields["个人档案编号"] == "41010200100000001"


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(st.characters(codec="utf-8", categories=["L", "N", "P", "S"]), max_size=20))
def test_any_text_formula_reads_as_its_text(tmp_path: Path, shown: str) -> None:
    path = tmp_path / "表.csv"
    formula = '="' + shown.replace('"', '""') + '"'
    path.write_text(exported([["姓名", "备注"], ["张秀英", formula]], ","), "utf-8")
    [record] = records(path)
    assert record.fields["备注"] == shown


# -- a GBK export longer than the sample its encoding is told by ---------------------------------
#: lines of the exports below: more than 64 KiB of them
LINES = 1200


def cut_inside_a_character(line: str, header: str) -> bytes:
    """``header`` and ``LINES`` copies of ``line`` in GBK, the first one ending in spaces enough
    for byte 65,536 (the end of the 64 KiB sample) to be a character's first byte."""
    for shift in range(len(line)):
        lines = [header, line + " " * shift, *[line] * (LINES - 1)]
        data = "".join(f"{text}\r\n" for text in lines).encode("gbk")
        try:
            data[: 1 << 16].decode("gbk")
        except UnicodeDecodeError as cut:
            if cut.start == (1 << 16) - 1:
                return data
    raise AssertionError("no shift puts a character across the sample's end")


def test_a_gbk_csv_whose_sample_ends_inside_a_character_is_read(tmp_path: Path) -> None:
    path = tmp_path / "个人基本信息表.csv"
    path.write_bytes(cut_inside_a_character(",".join(ROW), ",".join(HEADER)))
    assert len(records(path)) == LINES


def test_a_gb18030_csv_given_utf8s_byte_order_mark_is_refused_saying_so(tmp_path: Path) -> None:
    """Read as UTF-8, its header was replacement characters, refused as a column named twice."""
    path = tmp_path / "个人基本信息表.csv"
    path.write_bytes(b"\xef\xbb\xbf" + exported([HEADER, ROW], ",").encode("gb18030"))
    with pytest.raises(ReaderError, match="UTF-8's byte order mark"):
        records(path)


def test_a_gb18030_ndjson_whose_sample_ends_inside_a_character_is_read(tmp_path: Path) -> None:
    line = '{"姓名": "张秀英", "现住址": "北京市朝阳区建外街道幸福社区1号楼"}'
    path = tmp_path / "老人档案.ndjson"
    path.write_bytes(cut_inside_a_character(line, line))
    assert len(list(read(path, "elderly-care"))) == LINES + 1

"""What the legacy-file readers refuse reaches a 社区卫生服务中心 clerk in Chinese (and anyone in
English): a file error is a ReaderError carrying a catalogued ``reader.*`` message, the reason of
an UNPARSEABLE record is such a message kept as JSON in the record's field, and every id the
readers use is in ``mappings/messages.json`` in both languages."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from mappings.conceptmaps import message_catalog
from mappings.readers import COMPOUND_FILE, ReaderError, read
from mappings.records import UNPARSEABLE, Message, SourceRecord, unparseable_text
from tests.samples import workbook

READERS = Path(__file__).resolve().parents[2] / "mappings" / "readers"
MSH = "MSH|^~\\&|HIS|医院|YY|GW|20261102091500||ADT^A08|MSG1|P|{version}\r"


def refusal(path: Path, source: str = "community-health") -> Message:
    with pytest.raises(ReaderError) as caught:
        list(read(path, source))
    return caught.value.message


def worded(message: Message) -> tuple[str, str, str]:
    return message.id, message.text("zh-CN"), message.text("en")


def reason(record: SourceRecord) -> tuple[str, str, str]:
    """The UNPARSEABLE record's reason: its id and its wording in both languages."""
    why = record.fields[UNPARSEABLE]
    return why["id"], unparseable_text(why, "zh-CN"), unparseable_text(why, "en")


# -- the catalogue -------------------------------------------------------------------------------
def reader_ids() -> set[str]:
    """Every ``reader.*`` string literal in the readers' code."""
    found = set()
    for file in READERS.glob("*.py"):
        for node in ast.walk(ast.parse(file.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                found.update(re.findall(r"^reader\.[a-z0-9-]+$", node.value))
    return found


def test_every_reader_message_is_catalogued_in_both_languages_with_the_same_parameters() -> None:
    catalog = message_catalog()
    placeholders = re.compile(r"\{(\w+)\}")
    used = reader_ids()
    missing = sorted(i for i in used if not {"zh-CN", "en"} <= set(catalog.get(i, {})))
    uneven = sorted(
        i
        for i in used & set(catalog)
        if set(placeholders.findall(catalog[i]["zh-CN"])) != set(placeholders.findall(catalog[i]["en"]))
    )
    assert (len(used) > 60, missing, uneven) == (True, [], [])


def test_a_reason_quarantined_as_plain_text_before_reasons_were_catalogued_is_shown_as_it_is() -> None:
    assert unparseable_text("row 5: 22 cells under a header of 20", "zh-CN") == "row 5: 22 cells under a header of 20"


def test_a_nested_reason_survives_the_json_a_quarantine_entry_keeps() -> None:
    message = Message("reader.at-row", {"row": 5, "problem": Message("reader.csv-cells", {"cells": 22, "columns": 20})})
    assert Message.from_json(message.to_json()) == message


# -- each reader ---------------------------------------------------------------------------------
def test_a_file_no_reader_reads_is_refused_in_both_languages(tmp_path: Path) -> None:
    (tmp_path / "表.doc").write_bytes(b"x")
    assert worded(refusal(tmp_path / "表.doc")) == (
        "reader.no-reader",
        "表.doc：不支持 .doc 格式的文件（可读取 .csv .xlsx .json .ndjson .xml .hl7 .tsv .txt）",
        "表.doc: no reader for .doc files (there are readers for .csv .xlsx .json .ndjson .xml .hl7 .tsv .txt)",
    )


def test_a_legacy_xls_workbook_is_refused_saying_to_save_it_as_xlsx_or_csv(tmp_path: Path) -> None:
    """It was "no reader for .xls files", which says nothing of what to do."""
    (tmp_path / "登记表.xls").write_bytes(COMPOUND_FILE + bytes(504))
    assert worded(refusal(tmp_path / "登记表.xls")) == (
        "reader.xls",
        "登记表.xls：是旧版 Excel 97-2003 二进制工作簿（.xls），网关不读取此格式；请在 Excel 或 WPS 中打开，"
        "另存为“Excel 工作簿 (*.xlsx)”或“CSV UTF-8（逗号分隔）(*.csv)”后重新导入",
        "登记表.xls: a legacy Excel 97-2003 binary workbook (.xls), a format the gateway does not read; open it in "
        'Excel or WPS, save it as "Excel Workbook (*.xlsx)" or "CSV UTF-8 (Comma delimited) (*.csv)" and ingest that file',
    )


def test_a_legacy_workbook_renamed_xlsx_is_refused_as_a_compound_file(tmp_path: Path) -> None:
    """Also what Excel saves for an .xlsx with a password to open it: "File is not a zip file"."""
    (tmp_path / "登记表.xlsx").write_bytes(COMPOUND_FILE + bytes(504))
    assert refusal(tmp_path / "登记表.xlsx").id == "reader.xlsx-compound"


def test_an_hl7_file_carried_under_an_unknown_charset_is_refused_naming_it(tmp_path: Path) -> None:
    (tmp_path / "adt.hl7").write_bytes(b"MSH|^~\\&|HIS|H|YY|YY|20261201||ADT^A08|1|P|2.5\rPID|1||123\r")
    with pytest.raises(ReaderError) as refused:
        list(read(tmp_path / "adt.hl7", "hl7v2", charset="klingon"))
    assert (refused.value.message.id, refused.value.message.params["value"]) == (
        "reader.hl7-carrier-charset",
        "klingon",
    )


def test_a_txt_file_that_is_no_delimited_export_is_refused_saying_to_rename_it(tmp_path: Path) -> None:
    """An HL7 message saved as .txt: read as a CSV of one column, every line was ingest.no-spec."""
    (tmp_path / "adt.txt").write_bytes(b"MSH|^~\\&|HIS|H|YY|YY|20261201||ADT^A01|1|P|2.5\rPID|1||123\r")
    assert worded(refusal(tmp_path / "adt.txt")) == (
        "reader.txt-not-delimited",
        "adt.txt：第一行不是制表符或逗号分隔的表头，无法判断 .txt 文件的格式；"
        "请按其实际格式改用相应扩展名（如 .csv、.hl7、.json、.xml）后重新导入",
        "adt.txt: its first line is no tab- or comma-separated header, so the format of this .txt file cannot be "
        "told; rename it to the suffix of its format (.csv, .hl7, .json, .xml …) and ingest it again",
    )


def test_csv_a_header_naming_a_column_twice_is_a_file_error_in_both_languages(tmp_path: Path) -> None:
    (tmp_path / "表.csv").write_text("姓名,性别,姓名\n张三,男,张三\n", encoding="utf-8")
    assert worded(refusal(tmp_path / "表.csv")) == (
        "reader.duplicate-column",
        "表.csv：表头中“姓名”列出现了两次（第 1 列和第 3 列）；请将其中一列改名后重新导出",
        "表.csv: the header names the column '姓名' twice (columns 1 and 3); rename one and export again",
    )


def test_csv_lines_ended_by_a_bare_cr_say_so_in_both_languages(tmp_path: Path) -> None:
    """Excel for Mac's "CSV (Macintosh)" ends lines with CR alone: the refusal quoted Python's
    csv module ("new-line character seen in unquoted field - do you need to open the file in
    universal-newline mode?"), in English inside the Chinese sentence."""
    (tmp_path / "表.csv").write_bytes("姓名,性别\r张三,男\r".encode())
    message = refusal(tmp_path / "表.csv")
    assert (message.id, "universal-newline" in message.text("zh-CN") + message.text("en")) == (
        "reader.csv-bare-cr",
        False,
    )
    assert message.text("zh-CN").startswith("表.csv：各行以单独的回车符（CR")


def test_csv_a_row_with_more_cells_than_its_header_says_so_in_both_languages(tmp_path: Path) -> None:
    (tmp_path / "表.csv").write_text("姓名,住址\n张三,金水区,文化路\n", encoding="utf-8")
    [record] = read(tmp_path / "表.csv", "community-health")
    assert reason(record) == (
        "reader.at-row",
        "第 2 行：有 3 个单元格，而表头有 2 列，对不上（可能是地址等内容中有未加引号的逗号或换行），整行无法采信",
        "row 2: 3 cells under a header of 2",
    )


def test_xlsx_a_sheet_naming_a_column_twice_is_a_file_error_in_both_languages(tmp_path: Path) -> None:
    path = workbook(tmp_path / "表.xlsx", [["姓名", "姓名"], ["张三", "李四"]])
    assert worded(refusal(path)) == (
        "reader.duplicate-column",
        "表.xlsx 工作表“Sheet”：表头中“姓名”列出现了两次（第 1 列和第 2 列）；请将其中一列改名后重新导出",
        "表.xlsx: sheet Sheet: the header names the column '姓名' twice (columns 1 and 2); rename one and export again",
    )


def test_xlsx_a_value_right_of_the_header_names_its_cell_in_both_languages(tmp_path: Path) -> None:
    [record] = read(workbook(tmp_path / "表.xlsx", [["姓名"], ["张三", "13800000000"]]), "community-health")
    assert reason(record) == (
        "reader.at-sheet-row",
        "工作表“Sheet”第 2 行：有 2 个单元格，而表头只有 1 列（表头右侧的单元格 B2 有值）",
        "sheet Sheet row 2: 2 cells under a header of 1 (cell B2, right of the header, holds a value)",
    )


def test_json_a_document_that_is_not_json_is_a_file_error_in_both_languages(tmp_path: Path) -> None:
    (tmp_path / "1101.json").write_text('{"infcode": 0,', encoding="utf-8")
    message = refusal(tmp_path / "1101.json", "insurance")
    assert (
        message.id,
        message.params["line"],
        message.text("zh-CN").startswith("1101.json：第 1 行第 15 列处不是"),
    ) == (
        "reader.invalid-json",
        1,
        True,
    )
    assert message.text("en").startswith("1101.json: invalid JSON at line 1, column 15: ")


def test_json_a_line_that_is_no_object_says_what_it_is_in_both_languages(tmp_path: Path) -> None:
    (tmp_path / "1101.ndjson").write_text('{"a": 1}\n[1, 2]\n{"b": NaN}\n', encoding="utf-8")
    _, array, nan = read(tmp_path / "1101.ndjson", "insurance")
    assert (reason(array), reason(nan)) == (
        ("reader.not-an-object", "这条记录是数组，不是 JSON 对象", "an array, not a JSON object"),
        (
            "reader.not-finite",
            "b：值为 NaN，FHIR（以及 JSON）无法表示这样的数字",
            "b: NaN, a number FHIR (and JSON) cannot hold",
        ),
    )


def test_cda_a_document_with_a_doctype_is_a_file_error_in_both_languages(tmp_path: Path) -> None:
    (tmp_path / "档案.xml").write_text('<!DOCTYPE x [<!ENTITY a "b">]><ClinicalDocument/>', encoding="utf-8")
    assert worded(refusal(tmp_path / "档案.xml")) == (
        "reader.xml-declaration",
        "档案.xml：含 DOCTYPE 或实体声明，出于安全（XXE）拒绝读取",
        "档案.xml: DOCTYPE or entity declaration refused (XXE)",
    )
    # a CDA file is one record or a file error: it has no UNPARSEABLE records


def test_hl7_a_file_that_is_not_hl7_is_a_file_error_in_both_languages(tmp_path: Path) -> None:
    (tmp_path / "adt.hl7").write_bytes(b"hello world\r")
    assert worded(refusal(tmp_path / "adt.hl7", "hl7v2")) == (
        "reader.not-hl7",
        "adt.hl7：不是 HL7 v2 文件（开头是 b'hello world'，不是 MSH 段）",
        "adt.hl7: not an HL7 v2 file (it begins with b'hello world', not an MSH segment)",
    )


def test_hl7_a_message_of_a_version_not_taken_says_so_in_both_languages(tmp_path: Path) -> None:
    (tmp_path / "adt.hl7").write_text(MSH.format(version="2.6") + "PID|1||1\r", encoding="utf-8")
    [record] = read(tmp_path / "adt.hl7", "hl7v2")
    assert reason(record) == (
        "reader.hl7-version",
        "MSH-12：不支持版本“2.6”（只支持 2.3, 2.3.1, 2.4, 2.5, 2.5.1）",
        "MSH-12: version '2.6' is not supported (only 2.3, 2.3.1, 2.4, 2.5, 2.5.1)",
    )

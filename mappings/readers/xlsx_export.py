"""Excel (.xlsx) exports, read with openpyxl in read-only mode (streaming, no formulas run).

Cells keep their Excel types: a date cell arrives as a datetime, a long number that Excel
turned into a float arrives as a float — which the normalisers refuse for identifiers.  An
.xlsx row has no bytes of its own, so the record's raw form is the row's cell values as JSON.

Hostile input.  An .xlsx is a zip of XML parts, so before openpyxl parses anything the archive
is checked (:func:`check_archive`): the uncompressed size of its members, as the zip directory
declares it, must stay within ``Limits.xlsx_uncompressed_bytes`` (an 879 KB file can inflate
to gigabytes; ``zipfile`` never inflates a member past its declared size, so the check holds),
and no part may carry a DOCTYPE or entity declaration.  OOXML forbids DTDs in its parts
(ECMA-376 Part 2), so refusing them loses nothing and closes the entity-expansion and
external-entity vectors whichever XML parser openpyxl picks (lxml or expat, with or without
defusedxml) — that is why the scan is ours rather than a dependency on defusedxml, which
openpyxl uses only for some of its parsing and only when installed.  A damaged archive or
part (truncated, bad CRC, malformed XML) is a one-line file error.  Rows and columns are
bounded to Excel's own grid, so a sheet that declares a million empty rows costs no more than
it holds; a cell over ``Limits.cell_chars`` or holding a control character makes its row an
``UNPARSEABLE`` record.
"""

from __future__ import annotations

import itertools
import json
import re
import zipfile
import zlib
from collections.abc import Callable, Iterator
from datetime import date, datetime, time, timedelta
from functools import cache
from pathlib import Path
from typing import IO, Any

from lxml import etree
from openpyxl import load_workbook
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.formula import ArrayFormula, DataTableFormula

from mappings.readers import DEFAULT_LIMITS, Limits, ReaderError, check_file_size, check_unique_header, value_problem
from mappings.records import SourceRecord, unparseable

#: Excel's grid: 1,048,576 rows; no legacy export has more than a few hundred columns, and a
#: forged cell reference far to the right must not make openpyxl pad every row to it
MAX_ROWS = 1_048_576
MAX_COLUMNS = 1024
#: a DOCTYPE or entity declaration, in the three encodings an XML part may use
_DECLARATION = re.compile(
    rb"<!\s*(?:DOCTYPE|ENTITY)|<\x00!\x00(?:\s\x00)*(?:D\x00O\x00C|E\x00N\x00T)|\x00<\x00!(?:\x00\s)*\x00(?:D\x00O|E\x00N)",
    re.IGNORECASE,
)
_CHUNK = 1 << 20
_MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"


def _json(value: Any) -> Any:
    """A cell value as JSON for the raw form: date, time and duration cells as text."""
    if isinstance(value, (date, datetime, time)):
        return value.isoformat()
    return str(value) if isinstance(value, timedelta) else value


def check_archive(path: Path, limits: Limits) -> None:
    """Refuse, before parsing, an .xlsx that would inflate past the limit, carries a DTD, or
    is damaged; each part is inflated once, in bounded chunks, to look."""
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
            total = sum(member.file_size for member in members)
            if total > limits.xlsx_uncompressed_bytes:
                biggest = max(members, key=lambda member: member.file_size)
                raise ReaderError(
                    f"{path.name}: inflates to {total} bytes ({biggest.filename}: {biggest.file_size}), over the "
                    f"limit of {limits.xlsx_uncompressed_bytes} bytes for an .xlsx (a decompression bomb?)"
                )
            for member in members:
                if member.filename.endswith((".xml", ".rels", ".vml")):
                    _scan_part(archive, member, path.name)
    except ReaderError:
        raise
    except (
        zipfile.BadZipFile,
        zipfile.LargeZipFile,
        zlib.error,
        OSError,
        EOFError,
        ValueError,
        NotImplementedError,
    ) as exc:
        raise ReaderError(f"{path.name}: not a readable .xlsx ({type(exc).__name__}: {exc})") from exc


def _scan_part(archive: zipfile.ZipFile, member: zipfile.ZipInfo, name: str) -> None:
    tail = b""
    with archive.open(member) as part:
        while chunk := part.read(_CHUNK):
            if _DECLARATION.search(tail + chunk):
                raise ReaderError(
                    f"{name}: 部件 {member.filename} 含 DOCTYPE 或实体声明，出于安全拒绝读取 / "
                    f"part {member.filename} carries a DOCTYPE or entity declaration, refused (XXE)"
                )
            tail = chunk[-64:]


def read_xlsx(path: Path, source: str, limits: Limits = DEFAULT_LIMITS) -> Iterator[SourceRecord]:
    """The rows of every sheet.  The workbook is read twice in step: for the values Excel saved
    and for the formulas, because a formula cell Excel never calculated (a file written by a
    script) has no saved value, and read for its value alone would pass for an empty cell."""
    check_file_size(path, limits.file_bytes)
    check_archive(path, limits)
    # ours to close, even when openpyxl fails half-way
    with path.open("rb") as handle, path.open("rb") as again:
        workbook, formulas = _workbook(handle, path.name, values=True), _workbook(again, path.name, values=False)
        try:
            pairs = list(zip(workbook.worksheets, formulas.worksheets, strict=True))
            for sheet, _ in pairs:  # an ambiguous sheet refuses the file before any row is mapped
                check_unique_header(f"{path.name}: sheet {sheet.title}", _header(sheet, path.name))
            for sheet, written in pairs:
                yield from _sheet(sheet, written, path, source, limits)
        finally:
            workbook.close()
            formulas.close()


def _workbook(handle: IO[bytes], name: str, values: bool) -> Any:
    """The workbook in read-only mode: its saved values, or (``values`` false) its formulas."""
    try:
        return load_workbook(handle, read_only=True, data_only=values)
    except Exception as exc:  # noqa: BLE001 - openpyxl raises many types for damaged files
        raise ReaderError(f"{name}: not a readable .xlsx ({type(exc).__name__}: {exc})") from exc


def _rows(sheet: Any) -> Iterator[tuple[Any, ...]]:
    if hasattr(sheet, "reset_dimensions"):
        sheet.reset_dimensions()  # the declared size is the sender's claim, not what the sheet holds
    return sheet.iter_rows(values_only=True, max_row=MAX_ROWS, max_col=MAX_COLUMNS + 1)


def _empty_string_results(path: Path, part: str) -> frozenset[str]:
    """The cells of a worksheet part whose formula Excel calculated to the empty string
    (``=IF(…,"",…)``): saved as a string cell with an empty value, which openpyxl reads as
    None, as it reads a formula never calculated.  Read only for a sheet where a formula cell
    came without a value (the part is scanned once, streaming; its DTD was refused already)."""
    found: set[str] = set()
    with zipfile.ZipFile(path) as archive, archive.open(part) as xml:
        rows = etree.iterparse(xml, tag=f"{{{_MAIN}}}row", resolve_entities=False, no_network=True)
        for _, row in itertools.islice(rows, MAX_ROWS):
            for cell in row.iterfind(f"{{{_MAIN}}}c"):
                if (
                    cell.get("t") == "str"
                    and cell.find(f"{{{_MAIN}}}f") is not None
                    and not cell.findtext(f"{{{_MAIN}}}v")
                ):
                    found.add(str(cell.get("r")))
            row.clear()  # and the rows before it, so the tree never holds more than one
            while row.getprevious() is not None:
                del row.getparent()[0]
    return frozenset(found)


def _header(sheet: Any, name: str) -> list[str]:
    """The column names of the sheet's first row (``列N`` for a blank one); empty for an empty
    sheet."""
    header_row = _next(_rows(sheet), name, sheet.title) or ()
    while header_row and header_row[-1] is None:
        header_row = header_row[:-1]  # the padding to MAX_COLUMNS, not columns of the export
    if len(header_row) > MAX_COLUMNS:
        raise ReaderError(f"{name}: sheet {sheet.title} has more than {MAX_COLUMNS} columns")
    return [str(h).strip() if h is not None else f"列{i + 1}" for i, h in enumerate(header_row)]


def _uncalculated(
    values: tuple[Any, ...],
    written: tuple[Any, ...],
    header: list[str],
    number: int,
    empty_results: Callable[[], frozenset[str]],
) -> str | None:
    """Why the row cannot be read when a formula cell of it has no saved result, naming the
    cell; None otherwise (an empty string result is a result)."""
    for index, formula in enumerate(written[: len(header)]):
        if _is_formula(formula) and (index >= len(values) or values[index] is None):
            cell = f"{get_column_letter(index + 1)}{number}"
            if cell in empty_results():
                continue
            return (
                f"单元格 {cell}（{header[index]}）是公式单元格，没有计算结果，请在 Excel 中重新计算并保存 / "
                f"cell {cell} ({header[index]}) is a formula without a saved result; recalculate and save it in Excel"
            )
    return None


def _is_formula(value: Any) -> bool:
    return (isinstance(value, str) and value.startswith("=")) or isinstance(value, (ArrayFormula, DataTableFormula))


def _next(rows: Iterator[tuple[Any, ...]], name: str, sheet: str) -> tuple[Any, ...] | None:
    """The next row, or None at the end; a part that breaks mid-sheet is a file error."""
    try:
        return next(rows, None)
    except Exception as exc:  # noqa: BLE001 - openpyxl and its XML parsers raise many types
        raise ReaderError(f"{name}: sheet {sheet} cannot be read ({type(exc).__name__}: {exc})") from exc


def _sheet(sheet: Any, written: Any, path: Path, source: str, limits: Limits) -> Iterator[SourceRecord]:
    """The sheet's rows as records; ``written`` is the same sheet read for its formulas."""
    name = path.name
    # (openpyxl's read-only sheet keeps the path of its part in the archive)
    empty_results = cache(lambda: _empty_string_results(path, sheet._worksheet_path))
    header = _header(sheet, name)
    rows, formula_rows = _rows(sheet), _rows(written)
    if not header or _next(rows, name, sheet.title) is None or _next(formula_rows, name, sheet.title) is None:
        return
    shape = frozenset(header)
    empty: tuple[Any, ...] | None = None
    number = 1
    while (values := _next(rows, name, sheet.title)) is not None:
        number += 1
        formulas = _next(formula_rows, name, sheet.title) or ()
        if values is empty:  # openpyxl repeats one tuple for rows the sheet leaves out
            continue
        if all(v in (None, "") for v in values) and not any(_is_formula(f) for f in formulas):
            empty = values
            continue
        location = f"sheet {sheet.title} row {number}"
        fields = {key: (values[i] if i < len(values) else None) for i, key in enumerate(header)}
        raw = json.dumps({k: _json(v) for k, v in fields.items()}, ensure_ascii=False).encode()
        problem = _uncalculated(values, formulas, header, number, empty_results) or next(
            (p for key, v in fields.items() if isinstance(v, str) and (p := value_problem(key, v, limits))), None
        )
        if problem is not None:
            yield unparseable(source, name, location, raw, f"{location}: {problem}", "column")
            continue
        yield SourceRecord(source, name, location, fields, raw, "column", shape)

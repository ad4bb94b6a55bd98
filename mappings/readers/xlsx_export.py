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

import json
import re
import zipfile
import zlib
from collections.abc import Iterator
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from mappings.readers import DEFAULT_LIMITS, Limits, ReaderError, check_file_size, value_problem
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
    from openpyxl import load_workbook

    check_file_size(path, limits.file_bytes)
    check_archive(path, limits)
    with path.open("rb") as handle:  # ours to close, even when openpyxl fails half-way
        try:
            workbook = load_workbook(handle, read_only=True, data_only=True)
        except Exception as exc:  # noqa: BLE001 - openpyxl raises many types for damaged files
            raise ReaderError(f"{path.name}: not a readable .xlsx ({type(exc).__name__}: {exc})") from exc
        try:
            for sheet in workbook.worksheets:
                yield from _sheet(sheet, path.name, source, limits)
        finally:
            workbook.close()


def _next(rows: Iterator[tuple[Any, ...]], name: str, sheet: str) -> tuple[Any, ...] | None:
    """The next row, or None at the end; a part that breaks mid-sheet is a file error."""
    try:
        return next(rows, None)
    except Exception as exc:  # noqa: BLE001 - openpyxl and its XML parsers raise many types
        raise ReaderError(f"{name}: sheet {sheet} cannot be read ({type(exc).__name__}: {exc})") from exc


def _sheet(sheet: Any, name: str, source: str, limits: Limits) -> Iterator[SourceRecord]:
    if hasattr(sheet, "reset_dimensions"):
        sheet.reset_dimensions()  # the declared size is the sender's claim, not what the sheet holds
    rows = sheet.iter_rows(values_only=True, max_row=MAX_ROWS, max_col=MAX_COLUMNS + 1)
    header_row = _next(rows, name, sheet.title)
    if header_row is None:
        return
    while header_row and header_row[-1] is None:
        header_row = header_row[:-1]  # the padding to MAX_COLUMNS, not columns of the export
    if len(header_row) > MAX_COLUMNS:
        raise ReaderError(f"{name}: sheet {sheet.title} has more than {MAX_COLUMNS} columns")
    header = [str(h).strip() if h is not None else f"列{i + 1}" for i, h in enumerate(header_row)]
    shape = frozenset(header)
    empty: tuple[Any, ...] | None = None
    number = 1
    while (values := _next(rows, name, sheet.title)) is not None:
        number += 1
        if values is empty:  # openpyxl repeats one tuple for rows the sheet leaves out
            continue
        if all(v in (None, "") for v in values):
            empty = values
            continue
        location = f"sheet {sheet.title} row {number}"
        fields = {key: (values[i] if i < len(values) else None) for i, key in enumerate(header)}
        raw = json.dumps({k: _json(v) for k, v in fields.items()}, ensure_ascii=False).encode()
        problem = next(
            (p for key, v in fields.items() if isinstance(v, str) and (p := value_problem(key, v, limits))), None
        )
        if problem is not None:
            yield unparseable(source, name, location, raw, f"{location}: {problem}", "column")
            continue
        yield SourceRecord(source, name, location, fields, raw, "column", shape)

"""Excel (.xlsx) exports, read with openpyxl in read-only mode (streaming, no formulas run).

Cells keep their Excel types: a date cell arrives as a datetime (as a date when its number
format shows no time of day: a day is not its midnight), a long number that Excel
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
it holds.  openpyxl drops without a word what falls outside the rows and columns it is asked for,
and a row numbered at or before the one above it, so the same pass over the part (:func:`_survey`)
looks for them: a value in Excel's columns past those read (``MAX_COLUMNS`` + 1) makes its row an
``UNPARSEABLE`` record naming the cell, keeping the value (under the header) or refuses the file
(in or above it); a row or cell past Excel's grid, or a row out of order, refuses the file naming
it, as Excel cannot show it to anyone who would correct it.  A cell over ``Limits.cell_chars`` or holding a control character makes its row an
``UNPARSEABLE`` record.

Layout.  A value merged over several cells (a county or a blood group over a group of rows) is
the value of each cell of the range: openpyxl's read-only mode does not see merged ranges, so
they are read from the sheet's part first (:func:`_survey`), at most
``MAX_MERGED_RANGES`` in a file.  The header row is not filled: its merged cells other than the
first stay blank columns (``列N``), as a range starting in it fills no data row.  The header is
the sheet's first row holding a value, or, under a title merged across the sheet, the first
row holding two values among the first ``MAX_HEADER_ROW`` (:func:`_header`); the title lines
above it are skipped, ranges starting in them fill nothing, and rows keep the sheet's numbers.
A header row of group titles merged over the columns under them is the first of a header of two
rows, read by its second (:func:`_under_groups`); each record says which row was taken as the
header and why (``SourceRecord.header``), told when no spec matches the columns it names.  A value right
of the header makes its row an ``UNPARSEABLE`` record naming the cell, as a CSV row with more
cells than its header; blank cells there are no value.  Header cells are named as the specs
spell them (:func:`~mappings.readers.header_name`).
"""

from __future__ import annotations

import itertools
import json
import operator
import re
import zipfile
import zlib
from collections.abc import Callable, Iterator
from datetime import date, datetime, time, timedelta
from functools import cache
from pathlib import Path
from typing import IO, Any, NamedTuple

from lxml import etree
from openpyxl import load_workbook
from openpyxl.utils import column_index_from_string, get_column_letter
from openpyxl.worksheet.formula import ArrayFormula, DataTableFormula

from mappings.readers import (
    COMPOUND_FILE,
    DEFAULT_LIMITS,
    Limits,
    ReaderError,
    check_file_size,
    check_unique_header,
    header_name,
    value_problem,
)
from mappings.records import Message, SourceRecord, unparseable

#: Excel's grid: 1,048,576 rows; no legacy export has more than a few hundred columns, and a
#: forged cell reference far to the right must not make openpyxl pad every row to it
MAX_ROWS = 1_048_576
MAX_COLUMNS = 1024
#: Excel's last column (XFD): a value between the columns read and this one is a row's problem,
#: one past it a file's, as no Excel shows it
EXCEL_COLUMNS = 16_384
#: the last row a sheet's header may be in: the title lines above it (a title merged across the
#: sheet, an export date, the unit) are a few, and a header further down cannot be told from
#: a row of data after a list of notes
MAX_HEADER_ROW = 10
#: the states of a sheet its maker does not see (``veryHidden``: only a macro shows it again),
#: and how a run names such a sheet, which it did not read
HIDDEN_STATES = {"hidden": "reader.hidden-sheet", "veryHidden": "reader.very-hidden-sheet"}
#: the messages of what a reader skipped that are sheets, not lines above a header
SKIPPED_SHEETS = frozenset(HIDDEN_STATES.values())
#: how much of a skipped title line a run's summary shows
TITLE_CHARS = 80
#: merged ranges in one file: a register merges a few cells per group of rows; every range is
#: held while the file is read, so a file declaring millions of them is refused
MAX_MERGED_RANGES = 100_000
#: a DOCTYPE or entity declaration, in the three encodings an XML part may use
_DECLARATION = re.compile(
    rb"<!\s*(?:DOCTYPE|ENTITY)|<\x00!\x00(?:\s\x00)*(?:D\x00O\x00C|E\x00N\x00T)|\x00<\x00!(?:\x00\s)*\x00(?:D\x00O|E\x00N)",
    re.IGNORECASE,
)
_CHUNK = 1 << 20
_MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_MERGE_CELL = f"{{{_MAIN}}}mergeCell"
#: a merged range's ``ref``: a cell range (``J5:J7``) or, degenerate, one cell
_RANGE = re.compile(r"([A-Z]{1,3})([1-9]\d{0,6})(?::([A-Z]{1,3})([1-9]\d{0,6}))?")
#: a merged range: first column, first row, last column, last row (1-based, as Excel counts)
_Range = tuple[int, int, int, int]


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
                    "reader.xlsx-bomb",
                    file=path.name,
                    size=total,
                    part=biggest.filename,
                    partSize=biggest.file_size,
                    limit=limits.xlsx_uncompressed_bytes,
                )
            # every part, whatever its name: openpyxl parses the part a relationship names, and a
            # sheet stored as sheet1.dat was parsed, its entities expanded, without being looked at
            for member in members:
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
        if _compound(path):
            raise ReaderError("reader.xlsx-compound", file=path.name) from exc
        raise ReaderError("reader.not-xlsx", file=path.name, error=_failure(exc)) from exc


def _compound(path: Path) -> bool:
    """Whether the file is an OLE2 compound file, no zip: a legacy .xls renamed .xlsx, or an
    .xlsx with a password to open it, which Excel saves encrypted inside one (its zip error
    said "File is not a zip file", which tells the user nothing)."""
    try:
        with path.open("rb") as handle:
            return handle.read(len(COMPOUND_FILE)) == COMPOUND_FILE
    except OSError:
        return False


def _scan_part(archive: zipfile.ZipFile, member: zipfile.ZipInfo, name: str) -> None:
    tail = b""
    with archive.open(member) as part:
        while chunk := part.read(_CHUNK):
            if _DECLARATION.search(tail + chunk):
                raise ReaderError("reader.xlsx-part-declaration", file=name, part=member.filename)
            tail = chunk[-64:]


def read_xlsx(path: Path, source: str, limits: Limits = DEFAULT_LIMITS) -> Iterator[SourceRecord]:
    """The rows of every visible sheet.  The workbook is read twice in step: for the values
    Excel saved and for the formulas, because a formula cell Excel never calculated (a file
    written by a script) has no saved value, and read for its value alone would pass for an
    empty cell.  A hidden or very hidden sheet is not data its maker shows: it holds code lists
    and lookups that formulas of the visible sheets use, and read as rows it quarantined every
    one of them (``ingest.no-spec``).  It is skipped, and each record of the file carries
    ``reader.hidden-sheet`` so that the run names it (with the title lines it skipped)."""
    check_file_size(path, limits.file_bytes)
    check_archive(path, limits)
    # ours to close, even when openpyxl fails half-way
    with path.open("rb") as handle, path.open("rb") as again:
        workbook, formulas = _workbook(handle, path.name, values=True), _workbook(again, path.name, values=False)
        try:
            pairs = []
            hidden: list[Message] = []
            for sheet, written in zip(workbook.worksheets, formulas.worksheets, strict=True):
                if sheet.sheet_state in HIDDEN_STATES:
                    hidden.append(Message(HIDDEN_STATES[sheet.sheet_state], {"sheet": sheet.title}))
                else:
                    pairs.append((sheet, written))
            surveys: list[_Survey] = []
            headers: list[_Header] = []
            for sheet, _ in pairs:  # an ambiguous or hostile sheet refuses the file before any row is mapped
                surveys.append(_survey(path, sheet, MAX_MERGED_RANGES - sum(len(s.ranges) for s in surveys)))
                headers.append(_header(sheet, path.name, surveys[-1].ranges))
                check_unique_header(_where(path.name, sheet.title), headers[-1].names)
                if any(row <= headers[-1].number for row in surveys[-1].far):
                    raise ReaderError("reader.too-many-columns", file=_where(path.name, sheet.title), limit=MAX_COLUMNS)
            for (sheet, written), survey, header in zip(pairs, surveys, headers, strict=True):
                yield from _sheet(sheet, written, survey, header, path, source, limits, tuple(hidden))
        finally:
            workbook.close()
            formulas.close()


def _workbook(handle: IO[bytes], name: str, values: bool) -> Any:
    """The workbook in read-only mode: its saved values, or (``values`` false) its formulas."""
    try:
        return load_workbook(handle, read_only=True, data_only=values)
    except Exception as exc:  # noqa: BLE001 - openpyxl raises many types for damaged files
        raise ReaderError("reader.not-xlsx", file=name, error=_failure(exc)) from exc


def _failure(exc: BaseException) -> str:
    """What a library said when it failed on the file, with the kind of failure (its own
    messages alone are often a bare key or offset)."""
    return f"{type(exc).__name__}: {exc}"


def _where(name: str, sheet: str) -> Message:
    """A sheet of the file, as file errors name it."""
    return Message("reader.sheet", {"file": name, "sheet": sheet})


def _rows(sheet: Any, cells: bool = False) -> Iterator[tuple[Any, ...]]:
    """The sheet's rows of values (of cells, with ``cells``), each as wide as Excel's grid allows."""
    if hasattr(sheet, "reset_dimensions"):
        sheet.reset_dimensions()  # the declared size is the sender's claim, not what the sheet holds
    return sheet.iter_rows(values_only=not cells, max_row=MAX_ROWS, max_col=MAX_COLUMNS + 1)


_VALUE = operator.attrgetter("value")
#: what a number format writes as it is rather than as a part of the value: quoted text, an
#: escaped character, a colour or locale in brackets (not the elapsed [h], [m], [s])
_FORMAT_LITERALS = re.compile(r'"[^"]*"|\\.|\[(?![hms]+\])[^\]]*\]', re.IGNORECASE)
_FORMAT_TIME = re.compile(r"[hs]|am/pm|a/p", re.IGNORECASE)


@cache
def _shows_time(number_format: str) -> bool:
    """Whether a date cell's number format shows a time of day (yyyy-mm-dd hh:mm) or only
    the day (yyyy-mm-dd, yyyy"年"m"月"d"日")."""
    return _FORMAT_TIME.search(_FORMAT_LITERALS.sub("", number_format)) is not None


def _cell_value(cell: Any) -> Any:
    """A cell's value as its maker sees it: a date cell formatted without a time of day is
    that day, not the midnight openpyxl reads for every date cell."""
    value = cell.value
    if isinstance(value, datetime) and not _shows_time(cell.number_format):
        return value.date()
    return value


def _values(rows: Iterator[tuple[Any, ...]]) -> Iterator[tuple[Any, ...]]:
    """The values of rows of cells (:func:`_rows` with ``cells``).  A row openpyxl repeats (the
    rows a sheet leaves out, one tuple) stays one tuple, so an empty row is still told by
    identity; a cell is looked at alone only in a row holding a date."""
    given: tuple[Any, ...] | None = None
    values: tuple[Any, ...] = ()
    for row in rows:
        if row is not given:
            given, values = row, tuple(map(_VALUE, row))
            kinds = list(map(type, values))
            if datetime in kinds:  # found by list.index: a row is as wide as the grid allows
                found, at = list(values), kinds.index(datetime)
                while True:
                    found[at] = _cell_value(row[at])
                    try:
                        at = kinds.index(datetime, at + 1)
                    except ValueError:
                        break
                values = tuple(found)
        yield values


def _elements(path: Path, part: str, where: Message, *names: str) -> Iterator[Any]:
    """The elements of a worksheet part with these local names, streaming: each is dropped
    (with those before it) once the caller has it, so the tree never holds more than one row.
    Parsed as the project parses all outside XML (no entities, DTD or network; its DTD was
    refused already); a part that breaks is a file error."""
    try:
        with zipfile.ZipFile(path) as archive, archive.open(part) as xml:
            found = etree.iterparse(
                xml,
                tag=[f"{{{_MAIN}}}{name}" for name in names],
                resolve_entities=False,
                no_network=True,
                load_dtd=False,
                huge_tree=False,
            )
            for _, element in found:
                yield element
                element.clear()
                while element.getprevious() is not None:
                    del element.getparent()[0]
    except (etree.LxmlError, zipfile.BadZipFile, zlib.error, OSError, EOFError, KeyError) as exc:
        raise ReaderError("reader.cannot-read", file=where, error=_failure(exc)) from exc


def _empty_string_results(path: Path, part: str, where: Message) -> frozenset[str]:
    """The cells of a worksheet part whose formula Excel calculated to the empty string
    (``=IF(…,"",…)``): saved as a string cell with an empty value, which openpyxl reads as
    None, as it reads a formula never calculated.  Read only for a sheet where a formula cell
    came without a value (the part is scanned once, streaming)."""
    found: set[str] = set()
    for row in itertools.islice(_elements(path, part, where, "row"), MAX_ROWS):
        for cell in row.iterfind(f"{{{_MAIN}}}c"):
            if cell.get("t") == "str" and cell.find(f"{{{_MAIN}}}f") is not None and not cell.findtext(f"{{{_MAIN}}}v"):
                found.add(str(cell.get("r")))
    return frozenset(found)


class _Survey(NamedTuple):
    """What a sheet's part holds that read-only openpyxl does not give: its merged ranges, and
    by row number the values right of the columns it reads (column number → value)."""

    ranges: list[_Range]
    far: dict[int, dict[int, Any]]


def _survey(path: Path, sheet: Any, allowed: int) -> _Survey:
    """The sheet's merged ranges, read from its part before its rows are: read-only openpyxl
    never sees them, and the part lists them after its rows.  One streaming pass; more than
    ``allowed`` refuses the file, as a range that is not a cell range does.  Each row is
    numbered and its cells placed as openpyxl does (``r``, or one past the one before), so what
    openpyxl would drop is found (:func:`_far_cells`)."""
    where = _where(path.name, sheet.title)
    ranges: list[_Range] = []
    far: dict[int, dict[int, Any]] = {}
    number = 0
    for element in _elements(path, sheet._worksheet_path, where, "row", "mergeCell"):
        if element.tag == _MERGE_CELL:
            if len(ranges) == allowed:
                raise ReaderError("reader.too-many-merged", file=path.name, limit=MAX_MERGED_RANGES, sheet=sheet.title)
            ranges.append(_range(element.get("ref") or "", where))
            continue
        previous, number = number, _row_number(element.get("r"), number)
        if number <= previous:
            raise ReaderError("reader.xlsx-row-order", file=where, row=number, previous=previous)
        if number > MAX_ROWS:
            raise ReaderError("reader.xlsx-row-past-grid", file=where, row=number, rows=MAX_ROWS)
        if cells := _far_cells(element, sheet._shared_strings, where):
            far[number] = cells
    return _Survey(ranges, far)


def _row_number(given: str | None, previous: int) -> int:
    """A row element's number as openpyxl reads it: its ``r`` (``7`` or ``7.0``), or one past
    the row before; one openpyxl cannot read is left to it (a file error when it reads it)."""
    if given is None:
        return previous + 1
    try:
        number = float(given)
    except ValueError:
        return previous + 1
    return int(number) if number.is_integer() else previous + 1


def _far_cells(row: Any, shared: list[str], where: Message) -> dict[int, Any]:
    """The values of a row element past column ``MAX_COLUMNS`` + 1, the last openpyxl is asked
    for, by column number; a cell past Excel's last column refuses the file.  Blank text is no
    value, as right of the header."""
    found: dict[int, Any] = {}
    column = 0
    for cell in row:
        ref = cell.get("r")
        if ref is None:
            column += 1
        else:
            letters = ref.rstrip("0123456789")
            if len(letters) < 3:  # A to ZZ: within the columns read (kept for a next cell without r)
                column = 0 if not letters else column_index_from_string(letters)
                continue
            try:
                column = column_index_from_string(letters)
            except ValueError:
                continue  # not a reference: openpyxl refuses it when it reads the row
        if column > EXCEL_COLUMNS:
            raise ReaderError("reader.xlsx-cell-past-grid", file=where, cell=ref, columns=EXCEL_COLUMNS)
        if column > MAX_COLUMNS + 1 and _holds_value(value := _cell_text(cell, shared)):
            found[column] = value
    return found


def _cell_text(cell: Any, shared: list[str]) -> str | None:
    """A cell element's value as text (a shared string looked up): enough to tell whether it
    holds one and to keep it in its row's raw form."""
    kind = cell.get("t")
    if kind == "inlineStr":
        return "".join(cell.itertext())
    value = cell.findtext(f"{{{_MAIN}}}v")
    if kind == "s" and value is not None and value.strip().isdigit() and int(value) < len(shared):
        return str(shared[int(value)])
    if value is None and cell.find(f"{{{_MAIN}}}f") is not None:
        return "=" + (cell.findtext(f"{{{_MAIN}}}f") or "")
    return value


def _range(ref: str, where: Message) -> _Range:
    """A merged range's ``ref`` as its corners, whichever way round they are written."""
    match = _RANGE.fullmatch(ref)
    if match is None:
        raise ReaderError("reader.bad-merged-range", file=where, range=ref[:40])
    first_column, first_row = column_index_from_string(match[1]), int(match[2])
    last_column = column_index_from_string(match[3]) if match[3] else first_column
    last_row = int(match[4]) if match[4] else first_row
    return (
        min(first_column, last_column),
        min(first_row, last_row),
        max(first_column, last_column),
        max(first_row, last_row),
    )


class _Merges:
    """A sheet's merged ranges applied to its rows as they stream past.  The value of a range's
    top-left cell, taken when its row is read, fills each blank cell of the range (a value
    under a range, which Excel never saves but a script may, is kept, not overwritten).
    Ranges starting in the header row or above it fill nothing, and a range starting under the header is
    cut at its last column: a value of the header's columns is not also a value right of it.
    Ranges may not overlap (Excel refuses such a file too), so a row never costs more than
    its own cells."""

    def __init__(self, ranges: list[_Range], header: int, width: int, where: Message) -> None:
        self._waiting = sorted((r for r in ranges if r[1] > header), key=lambda r: r[1], reverse=True)
        self._width, self._where = width, where
        #: column index → (value, last row) of the range filling it
        self._filling: dict[int, tuple[Any, int]] = {}

    def fill(self, number: int, values: tuple[Any, ...]) -> tuple[Any, ...]:
        """Row ``number`` with its merged cells filled; called for every row the sheet holds,
        in order (a row it leaves out holds no top-left cell, and a range ends by number)."""
        while self._waiting and self._waiting[-1][1] <= number:
            self._start(self._waiting.pop(), number, values)
        self._filling = {column: fill for column, fill in self._filling.items() if fill[1] >= number}
        if not self._filling:
            return values
        row = list(values)
        for column, (value, _) in self._filling.items():
            if row[column] is None:
                row[column] = value
        return tuple(row)

    def _start(self, merged: _Range, number: int, values: tuple[Any, ...]) -> None:
        first_column, first_row, last_column, last_row = merged
        value = values[first_column - 1] if first_row == number and first_column <= len(values) else None
        if value is None:
            return  # a blank range fills nothing
        last = last_column if first_column > self._width else min(last_column, self._width)
        for column in range(first_column - 1, min(last, len(values))):
            if self._filling.get(column, (None, 0))[1] >= number:
                cell = f"{get_column_letter(column + 1)}{number}"
                raise ReaderError("reader.merged-overlap", file=self._where, cell=cell)
            self._filling[column] = (value, last_row)


class _Header(NamedTuple):
    """Where a sheet's header is: its row number (the sheet's own), its column names as the
    specs spell them (``列N`` for a blank one), the title lines above it that were skipped,
    as (row number, text), why that row is the header (a message of the catalogue, told
    when no spec matches the columns it names), and the row of group titles above it with
    their texts, when there is one."""

    number: int
    names: list[str]
    titles: list[tuple[int, str]]
    why: Message
    groups: tuple[int, list[str]] | None = None


def _header(sheet: Any, name: str, ranges: list[_Range]) -> _Header:
    """Where the sheet's header is.  It is the first row holding a value, unless the sheet
    opens with a title: a value alone in its row, merged across two columns or more
    (``金水区2026年65岁及以上老年人健康管理登记表`` over A1:T1).  Under a title, the header is the
    first row holding two values or more, among the first ``MAX_HEADER_ROW``; the rows above
    it (the title, an export date or a unit alone on its line, merged or not) are title lines.
    A sheet of one column under a title has for header its first line not merged across.

    Refused, as nobody can tell where its header is: a sheet under a title whose first row of
    two values or more comes after ``MAX_HEADER_ROW`` (it cannot be told from a row of data),
    and a sheet whose first ``MAX_HEADER_ROW`` rows are empty while a later one is not.  An
    empty sheet, or a title alone, has no header (``names`` empty)."""
    across = {(row, first) for first, row, last, _ in ranges if last > first and row <= MAX_HEADER_ROW}
    where = _where(name, sheet.title)
    rows = _rows(sheet)
    #: the rows holding one value, down to the header: (number, values, merged across)
    lone: list[tuple[int, tuple[Any, ...], bool]] = []
    wide: tuple[int, tuple[Any, ...]] | None = None  # the first row holding two values or more
    for number in range(1, MAX_HEADER_ROW + 1):
        values = _next(rows, name, sheet.title)
        if values is None:
            break
        valued = [column for column, value in enumerate(values, start=1) if _holds_value(value)]
        if len(valued) >= 2:
            wide = (number, values)
            break
        if valued:
            lone.append((number, values, (number, valued[0]) in across))
    else:
        if not lone or any(title for _, _, title in lone):
            # past the first rows, empty or titles: the next row holding a value says whether
            # the header is lost below them (two values or more) or the sheet is one column
            while (values := _next(rows, name, sheet.title)) is not None:
                if count := sum(map(_holds_value, values)):
                    if count >= 2 or not lone:
                        raise ReaderError("reader.xlsx-no-header", file=where, rows=MAX_HEADER_ROW)
                    break
    if any(title for _, _, title in lone):
        if wide is not None:
            titles = [(n, _shortened(str(next(filter(_holds_value, v))))) for n, v, _ in lone]
            under = _under_groups(wide, rows, ranges, name, sheet.title)
            if under is not None:
                return under._replace(titles=titles)
            why = Message("reader.header-under-titles", {"rows": ", ".join(str(n) for n, _ in titles)})
            return _Header(wide[0], _names(wide[1], name, sheet.title), titles, why)
        lone = [line for line in lone if not line[2]]  # one column under its title
    if not lone and wide is not None and (under := _under_groups(wide, rows, ranges, name, sheet.title)):
        return under
    first = (lone[0][0], lone[0][1]) if lone else wide
    if first is None:
        return _Header(0, [], [], Message("reader.header-first-row"))
    return _Header(first[0], _names(first[1], name, sheet.title), [], Message("reader.header-first-row"))


def _under_groups(
    wide: tuple[int, tuple[Any, ...]], rows: Iterator[tuple[Any, ...]], ranges: list[_Range], name: str, sheet: str
) -> _Header | None:
    """The header of two rows whose first, ``wide``, holds group titles: two values or more
    each merged across the columns under it (基本信息 over A1:H1, 健康信息 over I1:T1), every
    other value merged down over the row below (序号 over A1:A2, a column's name standing for
    both rows).  Its second row names the columns, a cell of it blank under a name merged
    down taking that name; read as the header, the group row named 9 columns of 20 and every
    row of data was "20 cells under a header of 9".  A group groups columns: the row below holds
    two values or more under each title.  None for any other row: a single name merged across
    two columns is a column's name, its second column blank, as before, and so is each of a
    header's names merged across for width (姓名 over A1:B1, 身份证号 over C1:D1), under which the
    first row of data holds one value each; read as group titles, that row became the header
    and the sheet held no record."""
    number, values = wide
    starting = {first: (last, bottom) for first, row, last, bottom in ranges if row == number}
    valued = [column for column, value in enumerate(values, start=1) if _holds_value(value)]
    across = [column for column in valued if starting.get(column, (column, 0))[0] > column]
    down = {column for column in valued if starting.get(column, (0, 0))[1] > number}
    if len(across) < 2 or any(column not in down and column not in across for column in valued):
        return None
    below = _next(rows, name, sheet)
    if below is None or not all(_grouped(below, column, starting[column][0]) for column in across):
        return None
    header = tuple(
        values[index] if index + 1 in down and not _holds_value(value) else value for index, value in enumerate(below)
    )
    titles = [_shortened(str(values[column - 1])) for column in across]
    why = Message("reader.header-under-groups", {"row": number, "titles": ", ".join(titles)})
    return _Header(number + 1, _names(header, name, sheet), [], why, (number, titles))


def _grouped(below: tuple[Any, ...], first: int, last: int) -> bool:
    """Whether the row under a title merged over columns ``first`` to ``last`` (1-based) names
    two of them or more, as the row of names under a group title does."""
    return sum(map(_holds_value, below[first - 1 : last])) >= 2


def _shortened(text: str) -> str:
    """A title line as a run's summary tells it: on one line, its first ``TITLE_CHARS``."""
    text = " ".join(text.split())
    return text if len(text) <= TITLE_CHARS else text[: TITLE_CHARS - 1] + "…"


def _holds_value(value: Any) -> bool:
    """Whether a cell holds a value (blank text is none)."""
    return value is not None and not (isinstance(value, str) and not value.strip())


def _names(header_row: tuple[Any, ...], name: str, sheet: str) -> list[str]:
    """The column names of a header row, as the specs spell them (``列N`` for a blank one)."""
    while header_row and header_row[-1] is None:
        header_row = header_row[:-1]  # the padding to MAX_COLUMNS, not columns of the export
    if len(header_row) > MAX_COLUMNS:
        raise ReaderError("reader.too-many-columns", file=_where(name, sheet), limit=MAX_COLUMNS)
    return [header_name("" if h is None else str(h)) or f"列{i + 1}" for i, h in enumerate(header_row)]


def _uncalculated(
    values: tuple[Any, ...],
    written: tuple[Any, ...],
    header: list[str],
    number: int,
    empty_results: Callable[[], frozenset[str]],
) -> Message | None:
    """Why the row cannot be read when a formula cell of it has no saved result, naming the
    cell; None otherwise (an empty string result is a result)."""
    for index, formula in enumerate(written[: len(header)]):
        if _is_formula(formula) and (index >= len(values) or values[index] is None):
            cell = f"{get_column_letter(index + 1)}{number}"
            if cell in empty_results():
                continue
            return Message("reader.uncalculated-formula", {"cell": cell, "column": header[index]})
    return None


def _is_formula(value: Any) -> bool:
    return (isinstance(value, str) and value.startswith("=")) or isinstance(value, (ArrayFormula, DataTableFormula))


def _next(rows: Iterator[tuple[Any, ...]], name: str, sheet: str) -> tuple[Any, ...] | None:
    """The next row, or None at the end; a part that breaks mid-sheet is a file error."""
    try:
        return next(rows, None)
    except Exception as exc:  # noqa: BLE001 - openpyxl and its XML parsers raise many types
        raise ReaderError("reader.cannot-read", file=_where(name, sheet), error=_failure(exc)) from exc


def _right_of_header(values: tuple[Any, ...], width: int) -> dict[int, Any]:
    """The cells right of the header that hold a value, by column number (blank text is no
    value).  They would be lost unseen: no column names them."""
    tail = values[width:]
    if tail.count(None) == len(tail):  # the common case, without a loop in Python
        return {}
    return {
        column: value
        for column, value in enumerate(tail, start=width + 1)
        if value is not None and not (isinstance(value, str) and not value.strip())
    }


def _wider_than_header(right: dict[int, Any], width: int, number: int) -> Message | None:
    """Why a row with a value right of the header cannot be read, naming the first such cell
    as the CSV reader words a row with more cells than its header; None without one."""
    if not right:
        return None
    cell = f"{get_column_letter(min(right))}{number}"
    return Message("reader.cells-right-of-header", {"cells": max(right), "columns": width, "cell": cell})


def _sheet(
    sheet: Any,
    written: Any,
    survey: _Survey,
    found: _Header,
    path: Path,
    source: str,
    limits: Limits,
    hidden: tuple[Message, ...] = (),
) -> Iterator[SourceRecord]:
    """The sheet's rows under its header ``found`` as records; ``written`` is the same sheet
    read for its formulas, ``survey`` its merged ranges and values past the columns read, and ``hidden`` the file's sheets that
    were not read, which its records carry with its title lines to be told at the end."""
    name = path.name
    where = _where(name, sheet.title)
    # (openpyxl's read-only sheet keeps the path of its part in the archive)
    empty_results = cache(lambda: _empty_string_results(path, sheet._worksheet_path, where))
    header = found.names
    rows, formula_rows = _values(_rows(sheet, cells=True)), _rows(written)
    if not header:
        return
    for _ in range(found.number):  # the title lines above the header, and the header
        if _next(rows, name, sheet.title) is None or _next(formula_rows, name, sheet.title) is None:
            return
    shape = frozenset(header)
    skipped = hidden + tuple(
        Message("reader.title-line", {"sheet": sheet.title, "row": row, "text": text}) for row, text in found.titles
    )
    if found.groups is not None:
        groups = {"sheet": sheet.title, "row": found.groups[0], "titles": ", ".join(found.groups[1])}
        skipped += (Message("reader.group-row", groups),)
    taken = Message("reader.header-row", {"sheet": sheet.title, "row": found.number, "why": found.why})
    merges = _Merges(survey.ranges, found.number, len(header), where)
    empty: tuple[Any, ...] | None = None
    number = found.number
    while (own := _next(rows, name, sheet.title)) is not None:
        number += 1
        formulas = _next(formula_rows, name, sheet.title) or ()
        if own is empty:  # openpyxl repeats one tuple for rows the sheet leaves out
            continue  # (a range whose top-left cell one of them would hold is blank: it fills nothing)
        values = merges.fill(number, own)  # every row held, so that each range sees its top-left cell
        # a row is empty by its own cells: one left blank under a merged range adds nothing
        if all(v in (None, "") for v in own) and not any(_is_formula(f) for f in formulas):
            empty = own
            continue
        location = f"sheet {sheet.title} row {number}"
        fields = {key: (values[i] if i < len(values) else None) for i, key in enumerate(header)}
        right = _right_of_header(values, len(header)) | survey.far.get(number, {})
        kept = {**fields, **{f"{get_column_letter(column)}{number}": v for column, v in right.items()}}
        raw = json.dumps({k: _json(v) for k, v in kept.items()}, ensure_ascii=False).encode()
        problem = (
            _wider_than_header(right, len(header), number)
            or _uncalculated(values, formulas, header, number, empty_results)
            or next(
                (p for key, v in fields.items() if isinstance(v, str) and (p := value_problem(key, v, limits))), None
            )
        )
        if problem is not None:
            reason = Message("reader.at-sheet-row", {"sheet": sheet.title, "row": number, "problem": problem})
            record = unparseable(source, name, location, raw, reason, "column")
            record.skipped = skipped
            yield record
            continue
        yield SourceRecord(source, name, location, fields, raw, "column", shape, skipped=skipped, header=taken)

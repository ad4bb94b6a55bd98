"""CSV exports with Chinese headers, in UTF-8 (with or without BOM) or GB18030, or UTF-16 with
its BOM (Excel's "Unicode Text"); comma- or tab-separated, as the header line shows.

Each record keeps its exact original bytes for quarantine, the lines of a quoted cell that
spans several included.  A quote opened at the start of a cell and never closed would swallow
the rest of the file into that cell: a row whose quoted cell runs to the end of the file or over
``MAX_ROW_LINES`` lines becomes an ``UNPARSEABLE`` record on its own (no spec matches it, so it
is quarantined with its bytes) and the lines after it are read again as rows.

Hostile input (see :class:`~mappings.readers.Limits`): a file over ``file_bytes`` or one that
is not text at all (UTF-16/32, NUL bytes) is a file error that says what the file is; a line
over ``record_bytes`` is never held whole: it becomes an ``UNPARSEABLE`` record keeping its
first ``record_bytes`` bytes.  A cell over ``cell_chars`` or holding a control character that
FHIR text forbids (``"\u0000吴福国"``) makes its row ``UNPARSEABLE``.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Iterator
from pathlib import Path
from typing import IO, BinaryIO, cast

from mappings.readers import (
    DEFAULT_LIMITS,
    Limits,
    ReaderError,
    at_row,
    check_file_size,
    check_unique_header,
    encoding_problem,
    header_name,
    line_too_long,
    value_problem,
)
from mappings.records import Message, SourceRecord, unparseable

BOM = b"\xef\xbb\xbf"
#: GB18030's byte order mark (U+FEFF encoded), which Chinese Windows tools write too; it
#: decodes to U+FEFF, which :func:`without_bom` drops (utf-8-sig drops UTF-8's itself)
GB18030_BOM = b"\x84\x31\x95\x33"
_SNIFF = 1 << 16


def detect_encoding(sample: bytes, name: str) -> str:
    """utf-8-sig when there is a BOM, utf-8 when the sample decodes, else GB18030 (a superset
    of GBK and GB2312, what Chinese Excel writes).  Text in another encoding (UTF-16 with its
    byte order mark, say) or no text at all is refused, naming the file ``name`` and what it
    appears to be."""
    problem = encoding_problem(sample)
    if problem is not None:
        raise ReaderError("reader.not-text", file=name, problem=problem)
    if sample.startswith(BOM):
        # a GB18030 export given UTF-8's mark (by a tool that adds it to whatever it saves):
        # read as UTF-8, its header was U+FFFD replacement characters, refused as a column
        # named twice ("����"), which told nobody the encoding was wrong
        first = sample[len(BOM) :].split(b"\n", 1)[0]
        failed = _undecodable(first, "utf-8")
        if failed is not None and _undecodable(first, "gb18030") is None:
            raise ReaderError("reader.bom-not-utf8", file=name, byte=failed + len(BOM))
        return "utf-8-sig"
    if _undecodable(sample, "utf-8") is None:
        return "utf-8"
    failed = _undecodable(sample, "gb18030")
    if failed is not None:
        raise ReaderError("reader.undecodable", file=name, byte=failed)
    return "gb18030"


def _undecodable(sample: bytes, codec: str) -> int | None:
    """Where ``sample`` stops being text in ``codec``, or None.  The sample may end inside a
    character, in either codec: a GBK export over the sample's 64 KiB whose byte 65,536 began a
    character was refused whole as neither UTF-8 nor GB18030."""
    try:
        codecs.getincrementaldecoder(codec)().decode(sample, final=False)
    except UnicodeDecodeError as exc:
        return exc.start
    return None


def without_bom(text: str) -> str:
    """The start of a decoded export without the byte order mark GB18030's decoder keeps: a
    file saved "GB18030 with BOM" had its first header read as "\ufeff序号"."""
    return text.removeprefix("\ufeff")


#: a quoted cell spanning more lines than this is taken for a quote that was never closed
MAX_ROW_LINES = 32


class _Oversized(Exception):  # noqa: N818 - a signal from the line source, not an error
    """A line longer than the record limit: its start is kept, the rest was skipped unread."""

    def __init__(self, head: bytes, size: int) -> None:
        super().__init__(size)
        self.head, self.size = head, size


class _Lines:
    """The file's lines, decoded for ``csv.reader``, keeping the bytes of the lines read since
    the last record: csv.reader pulls exactly the lines of one record (a quoted cell may span
    several), so after each record these are that record's original bytes.  Lines can be put
    back, to be read again after a record that swallowed them has been set aside."""

    def __init__(
        self, handle: IO[bytes] | _Transcoded, encoding: str, limit: int = DEFAULT_LIMITS.record_bytes
    ) -> None:
        self.handle, self.encoding, self.limit = handle, encoding, limit
        self.raw: list[bytes] = []
        self.put_back: list[bytes] = []
        #: the last record asked for a line past the end of the file (its quote never closed)
        self.ran_out = False

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        line = self.put_back.pop(0) if self.put_back else self.handle.readline(self.limit + 1)
        if len(line) > self.limit and not line.endswith(b"\n"):
            raise _Oversized(line[: self.limit], len(line) + self._skip_rest_of_line())
        if not line:
            self.ran_out = True
            raise StopIteration
        self.raw.append(line)
        try:
            return line.decode(self.encoding)
        except UnicodeDecodeError:
            return line.decode(self.encoding, errors="replace")  # the mojibake check reports it

    def _skip_rest_of_line(self) -> int:
        """Read past the rest of an over-long line in bounded chunks; how many bytes it had."""
        skipped = 0
        while chunk := self.handle.readline(1 << 20):
            skipped += len(chunk)
            if chunk.endswith(b"\n"):
                break
        return skipped

    def peek(self) -> str:
        """The next line, decoded and left to be read again; empty at the end of the file."""
        try:
            line = next(self)
        except StopIteration:
            self.ran_out = False
            return ""
        self.put_back.insert(0, self.raw.pop())
        return line

    def take(self) -> bytes:
        raw, self.raw = b"".join(self.raw), []
        return raw

    def set_aside_first_line(self) -> bytes:
        """The first line of the record just read, alone; the lines after it are read again."""
        first, *rest = self.raw
        self.raw, self.put_back = [], rest + self.put_back
        self.ran_out = False
        return first


#: a carriage return that ends no CRLF
_BARE_CR = re.compile(rb"\r(?!\n)")
#: a cell written as Excel's text formula, ``="0012345"``: exports meant to be opened in Excel write
#: long numbers so (a 身份证号, a 健康档案编号, a 医保人员编号), lest Excel show them in scientific
#: notation or drop their leading zeros.  Excel shows the text inside, and so it is read: kept
#: whole, the identifiers landed as ``="41010200100000001"`` and named nobody another source knew
_TEXT_FORMULA = re.compile(r'="((?:[^"]|"")*)"')


def _as_shown(cell: str) -> str:
    """The cell as Excel shows it: the text of a text formula (``="007"`` is ``007``, a quote
    inside it written twice), any other cell as it is."""
    found = _TEXT_FORMULA.fullmatch(cell.strip())
    return found[1].replace('""', '"') if found else cell


def _utf16(sample: bytes) -> str | None:
    """``utf-16`` for a file that starts with a UTF-16 byte order mark (Excel's "Unicode Text"
    export), else None; a UTF-32 mark (whose little-endian form starts as UTF-16's does) is
    not one."""
    if sample.startswith((b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff")):
        return None
    return "utf-16" if sample.startswith((b"\xff\xfe", b"\xfe\xff")) else None


class _Transcoded:
    """A UTF-16 file's lines as UTF-8 bytes, for :class:`_Lines`: the decoder drops the byte
    order mark and splits lines at LF alone, as the bytes of a UTF-8 file are split, so CRLF
    stays in its line and a bare CR is still told.  A record's raw form is then its text in
    UTF-8 (the file's own bytes are two per character, NULs among them).  Undecodable bytes
    (a lone surrogate) become U+FFFD, which the rows' checks report."""

    def __init__(self, handle: IO[bytes], encoding: str) -> None:
        self._text = io.TextIOWrapper(cast(BinaryIO, handle), encoding=encoding, errors="replace", newline="\n")

    def readline(self, size: int = -1) -> bytes:
        """Up to ``size`` characters of the next line, as UTF-8."""
        return self._text.readline(size).encode("utf-8", "surrogatepass")


def _delimiter(header_line: str) -> str:
    """The export's delimiter, told by its header line: a tab when the line holds more tabs
    than commas (Excel's "Text (Tab delimited)" and "Unicode Text" exports, whatever their
    file is named), else a comma.  A column name holds neither, so the header shows the
    delimiter plainly; a semicolon (the CSV of Excel in a European locale) is not read as one:
    no export of the four sources is written so."""
    return "\t" if header_line.count("\t") > header_line.count(",") else ","


def read_text(path: Path, source: str, limits: Limits = DEFAULT_LIMITS) -> Iterator[SourceRecord]:
    """A ``.txt`` export, which Excel writes for its "Text (Tab delimited)" and "Unicode Text"
    exports: read as a CSV (delimiter and encoding told as :func:`read_csv` tells them) when its
    first line holds a tab or a comma, as every header of two columns or more does.  Anything
    else (an HL7 message, a JSON document or a note saved as .txt) is refused, saying to name
    the file after its format: guessing it would quarantine every line as a one-column row."""
    check_file_size(path, limits.file_bytes)
    with path.open("rb") as handle:
        sample = handle.read(_SNIFF)
    encoding = _utf16(sample) or detect_encoding(sample, path.name)
    first = next(iter(sample.decode(encoding, errors="replace").lstrip("\ufeff").splitlines()), "")
    if ("\t" not in first and "," not in first) or _NOT_A_TABLE.match(first):
        raise ReaderError("reader.txt-not-delimited", file=path.name)
    yield from read_csv(path, source, limits)


#: how a JSON document, an XML document and an HL7 v2 message (batch) start: commas in them are
#: no delimiters
_NOT_A_TABLE = re.compile(r"\s*(?:[{\[<]|(?:MSH|FHS|BHS)\|)")


def read_csv(path: Path, source: str, limits: Limits = DEFAULT_LIMITS) -> Iterator[SourceRecord]:
    check_file_size(path, limits.file_bytes)
    with path.open("rb") as handle:
        sample = handle.read(_SNIFF)
        utf16 = _utf16(sample)
        encoding = "utf-8" if utf16 else detect_encoding(sample, path.name)
        handle.seek(0)
        source_lines: IO[bytes] | _Transcoded = _Transcoded(handle, utf16) if utf16 else handle
        lines = _Lines(source_lines, "utf-8-sig" if encoding == "utf-8-sig" else encoding, limits.record_bytes)
        # Excel's dialect: a quote inside an unquoted cell (11010500"1) is a character, not
        # the start of a quoted cell, so a stray quote there does not swallow the rows after it
        try:
            delimiter = _delimiter(lines.peek())
            header_row = next(csv.reader(lines, delimiter=delimiter), None)
        except csv.Error as exc:
            if _BARE_CR.search(b"".join(lines.raw)):
                # lines ended by CR alone (Excel for Mac's "CSV (Macintosh)"): the file is one
                # line, and csv's own words ("universal-newline mode") tell a user nothing
                raise ReaderError("reader.csv-bare-cr", file=path.name) from exc
            raise ReaderError("reader.csv-header-not-csv", file=path.name, error=str(exc)) from exc
        except _Oversized as exc:
            raise ReaderError(
                "reader.csv-header-too-long", file=path.name, size=exc.size, limit=limits.record_bytes
            ) from exc
        if header_row:
            header_row[0] = without_bom(header_row[0])
        if header_row is None or not any(cell.strip() for cell in header_row):
            # not even a header: no export (one of a header alone is an export of no records)
            raise ReaderError("reader.empty", file=path.name)
        if len(lines.raw) > 1:
            raise ReaderError("reader.csv-header-open-quote", file=path.name)
        for index, name in enumerate(header_row, start=1):
            problem = value_problem(Message("reader.header-cell", {"number": index}), name, limits)
            if problem is not None:
                raise ReaderError("reader.csv-header-bad-cell", file=path.name, problem=problem)
        header = [header_name(h) or f"列{i}" for i, h in enumerate(header_row, start=1)]  # as a blank XLSX header
        check_unique_header(path.name, header)
        shape = frozenset(header)
        lines.encoding = "utf-8" if encoding == "utf-8-sig" else encoding
        lines.take()
        _allow_cells_of(limits.cell_chars)
        number = 1  # the spreadsheet's row: the header is row 1, and a quoted cell's lines are one row
        while True:
            rows = csv.reader(lines, delimiter=delimiter)
            for values in _rows(rows):
                number += 1
                if isinstance(values, _Oversized):
                    # the lines of the record so far, and the start of the line that was too long
                    raw = lines.take() + values.head
                    reason = line_too_long(values.size, limits)
                    yield unparseable(source, path.name, f"row {number}", raw, at_row(number, reason), "column")
                    break  # a fresh csv.reader for the lines after it
                if isinstance(values, _CellTooLarge) and len(lines.raw) == 1:
                    reason = at_row(number, Message("reader.cell-too-large", {"limit": limits.cell_chars}))
                    yield unparseable(source, path.name, f"row {number}", lines.take(), reason, "column")
                    break  # a fresh csv.reader for the lines after it
                if (
                    values is None
                    or isinstance(values, _CellTooLarge)
                    or (len(lines.raw) > 1 and (lines.ran_out or len(lines.raw) > MAX_ROW_LINES))
                ):
                    # a quote opened at the start of a cell and never closed: the row alone is
                    # quarantined (no spec matches it) and the rows it swallowed are read again
                    raw = lines.set_aside_first_line()
                    reason = at_row(number, Message("reader.open-quote"))
                    yield unparseable(source, path.name, f"row {number}", raw, reason, "column")
                    break  # a fresh csv.reader for the lines put back
                raw = lines.take()
                if not any(v.strip() for v in values):
                    continue
                if len(values) < len(header) or any(v.strip() for v in values[len(header) :]):
                    # an unquoted comma (in an address, say) shifted every later cell, or an
                    # unquoted line break cut the row in two: no cell can be trusted, and the
                    # last ones would be lost
                    cells = {"cells": len(values), "columns": len(header)}
                    reason = at_row(number, Message("reader.csv-cells", cells))
                    yield unparseable(source, path.name, f"row {number}", raw, reason, "column")
                    continue
                values = [_as_shown(value) for value in values]
                problem = next(
                    (p for name, v in zip(header, values, strict=False) if (p := value_problem(name, v, limits))), None
                )
                if problem is not None:
                    yield unparseable(source, path.name, f"row {number}", raw, at_row(number, problem), "column")
                    continue
                fields = dict(zip(header, values, strict=False))
                yield SourceRecord(source, path.name, f"row {number}", fields, raw, "column", shape)
            else:
                return


class _CellTooLarge:
    """csv.reader gave up on a cell over its size limit: a long value on one line, or what a
    quote never closed becomes once it has swallowed the lines after it."""


def _allow_cells_of(chars: int) -> None:
    """Let csv.reader hold a cell one character over the limit, so that the row's check names
    the column that is too long (csv's own limit, 131,072 characters, is process-wide: it is
    only ever raised here)."""
    if csv.field_size_limit() <= chars:
        csv.field_size_limit(chars + 1)


def _rows(rows: Iterator[list[str]]) -> Iterator[list[str] | None | _Oversized | _CellTooLarge]:
    """The rows csv.reader parses; None for a row it cannot parse, :class:`_CellTooLarge` for
    one whose cell is over the limit; the over-long line that stopped a row."""
    while True:
        try:
            yield next(rows)
        except StopIteration:
            return
        except csv.Error as exc:
            yield _CellTooLarge() if "field larger than field limit" in str(exc) else None
            return
        except _Oversized as exc:
            yield exc
            return

"""CSV exports with Chinese headers, in UTF-8 (with or without BOM) or GB18030.

Each record keeps its exact original bytes for quarantine, the lines of a quoted cell that
spans several included.  A quote opened at the start of a cell and never closed would swallow
the rest of the file into that cell: a row whose quoted cell runs to the end of the file or over
``MAX_ROW_LINES`` lines becomes an ``UNPARSEABLE`` record on its own (no spec matches it, so it
is quarantined with its bytes) and the lines after it are read again as rows.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from mappings.readers import ReaderError
from mappings.records import SourceRecord, unparseable

BOM = b"\xef\xbb\xbf"
_SNIFF = 1 << 16


def detect_encoding(sample: bytes) -> str:
    """utf-8-sig when there is a BOM, utf-8 when the sample decodes, else GB18030 (a superset
    of GBK and GB2312, what Chinese Excel writes)."""
    if sample.startswith(BOM):
        return "utf-8-sig"
    try:
        sample.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError as exc:
        if exc.start >= len(sample) - 3:  # the sample may end inside a character
            return "utf-8"
    try:
        sample.decode("gb18030")
    except UnicodeDecodeError as exc:
        raise ReaderError(f"neither UTF-8 nor GB18030 (byte {exc.start})") from exc
    return "gb18030"


#: a quoted cell spanning more lines than this is taken for a quote that was never closed
MAX_ROW_LINES = 32


class _Lines:
    """The file's lines, decoded for ``csv.reader``, keeping the bytes of the lines read since
    the last record: csv.reader pulls exactly the lines of one record (a quoted cell may span
    several), so after each record these are that record's original bytes.  Lines can be put
    back, to be read again after a record that swallowed them has been set aside."""

    def __init__(self, handle: IO[bytes], encoding: str) -> None:
        self.handle, self.encoding = handle, encoding
        self.raw: list[bytes] = []
        self.put_back: list[bytes] = []
        self.lines_read = 0
        #: the last record asked for a line past the end of the file (its quote never closed)
        self.ran_out = False

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        line = self.put_back.pop(0) if self.put_back else self.handle.readline()
        if not line:
            self.ran_out = True
            raise StopIteration
        self.raw.append(line)
        self.lines_read += 1
        try:
            return line.decode(self.encoding)
        except UnicodeDecodeError:
            return line.decode(self.encoding, errors="replace")  # the mojibake check reports it

    def take(self) -> bytes:
        raw, self.raw = b"".join(self.raw), []
        return raw

    def set_aside_first_line(self) -> bytes:
        """The first line of the record just read, alone; the lines after it are read again."""
        first, *rest = self.raw
        self.raw, self.put_back = [], rest + self.put_back
        self.lines_read -= len(rest)
        self.ran_out = False
        return first


def read_csv(path: Path, source: str) -> Iterator[SourceRecord]:
    with path.open("rb") as handle:
        encoding = detect_encoding(handle.read(_SNIFF))
        handle.seek(0)
        lines = _Lines(handle, "utf-8-sig" if encoding == "utf-8-sig" else encoding)
        # Excel's dialect: a quote inside an unquoted cell (11010500"1) is a character, not
        # the start of a quoted cell, so a stray quote there does not swallow the rows after it
        try:
            header_row = next(csv.reader(lines), None)
        except csv.Error as exc:  # bare CR line endings, a NUL byte …
            raise ReaderError(f"{path.name}: the header row is not CSV ({exc})") from exc
        if header_row is None:
            return
        if len(lines.raw) > 1:
            raise ReaderError(f"{path.name}: a quote in the header row is never closed")
        header = [h.strip() for h in header_row]
        shape = frozenset(header)
        lines.encoding = "utf-8" if encoding == "utf-8-sig" else encoding
        lines.take()
        while True:
            rows = csv.reader(lines)
            for values in _rows(rows):
                number = lines.lines_read - len(lines.raw) + 1
                if values is None or (len(lines.raw) > 1 and (lines.ran_out or len(lines.raw) > MAX_ROW_LINES)):
                    # a quote opened at the start of a cell and never closed: the row alone is
                    # quarantined (no spec matches it) and the rows it swallowed are read again
                    raw = lines.set_aside_first_line()
                    reason = f'row {number}: a quoted cell is never closed (unbalanced ")'
                    yield unparseable(source, path.name, f"row {number}", raw, reason, "column")
                    break  # a fresh csv.reader for the lines put back
                raw = lines.take()
                if not any(v.strip() for v in values):
                    continue
                if len(values) > len(header) and any(v.strip() for v in values[len(header) :]):
                    # an unquoted comma (in an address, say) shifted every later cell: no cell
                    # can be trusted, and the last ones would be lost
                    reason = f"row {number}: {len(values)} cells under a header of {len(header)}"
                    yield unparseable(source, path.name, f"row {number}", raw, reason, "column")
                    continue
                fields = {name: (values[i] if i < len(values) else None) for i, name in enumerate(header)}
                yield SourceRecord(source, path.name, f"row {number}", fields, raw, "column", shape)
            else:
                return


def _rows(rows: Iterator[list[str]]) -> Iterator[list[str] | None]:
    """The rows csv.reader parses; None for a row it gives up on (a cell over its size limit,
    which is what an unclosed quote before a long file becomes)."""
    while True:
        try:
            yield next(rows)
        except StopIteration:
            return
        except csv.Error:
            yield None
            return

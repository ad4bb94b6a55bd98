"""CSV exports with Chinese headers, in UTF-8 (with or without BOM) or GB18030.

Each record keeps its exact original bytes for quarantine, the lines of a quoted cell that
spans several included.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from mappings.readers import ReaderError
from mappings.records import SourceRecord

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


class _Lines:
    """The file's lines, decoded for ``csv.reader``, keeping the bytes of the lines read since
    the last record: csv.reader pulls exactly the lines of one record (a quoted cell may span
    several), so after each record these are that record's original bytes."""

    def __init__(self, handle: IO[bytes], encoding: str) -> None:
        self.handle, self.encoding = handle, encoding
        self.raw: list[bytes] = []
        self.read = 0

    def __iter__(self) -> Iterator[str]:
        for line in self.handle:
            self.raw.append(line)
            self.read += 1
            try:
                yield line.decode(self.encoding)
            except UnicodeDecodeError:
                yield line.decode(self.encoding, errors="replace")  # the mojibake check reports it

    def take(self) -> bytes:
        raw, self.raw = b"".join(self.raw), []
        return raw


def read_csv(path: Path, source: str) -> Iterator[SourceRecord]:
    with path.open("rb") as handle:
        encoding = detect_encoding(handle.read(_SNIFF))
        handle.seek(0)
        lines = _Lines(handle, "utf-8-sig" if encoding == "utf-8-sig" else encoding)
        # Excel's dialect: a quote inside an unquoted cell (11010500"1) is a character, not
        # the start of a quoted cell, so one stray quote does not swallow the rows after it
        rows = csv.reader(iter(lines))
        header_row = next(rows, None)
        if header_row is None:
            return
        header = [h.strip() for h in header_row]
        shape = frozenset(header)
        lines.encoding = "utf-8" if encoding == "utf-8-sig" else encoding
        lines.take()
        for values in rows:
            number = lines.read - len(lines.raw) + 1
            raw = lines.take()
            if not any(v.strip() for v in values):
                continue
            fields = {name: (values[i] if i < len(values) else None) for i, name in enumerate(header)}
            yield SourceRecord(source, path.name, f"row {number}", fields, raw, "column", shape)

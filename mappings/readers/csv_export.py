"""CSV exports with Chinese headers, in UTF-8 (with or without BOM) or GB18030.

Rows are read as bytes so each record keeps its exact original bytes for quarantine; quoted
fields spanning lines are joined before parsing.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

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


def _physical_rows(handle) -> Iterator[tuple[int, bytes]]:
    """(first line number, bytes) of each CSV row, joining lines inside quoted fields."""
    pending, start = b"", 0
    for number, line in enumerate(handle, start=1):
        if not pending:
            start = number
        pending += line
        if pending.count(b'"') % 2 == 0:
            yield start, pending
            pending = b""
    if pending:
        yield start, pending


def read_csv(path: Path, source: str) -> Iterator[SourceRecord]:
    with path.open("rb") as handle:
        encoding = detect_encoding(handle.read(_SNIFF))
        handle.seek(0)
        rows = _physical_rows(handle)
        try:
            _, header_bytes = next(rows)
        except StopIteration:
            return
        decode = "utf-8-sig" if encoding == "utf-8-sig" else encoding
        header = [h.strip() for h in next(csv.reader([header_bytes.decode(decode)]))]
        shape = frozenset(header)
        row_encoding = "utf-8" if encoding == "utf-8-sig" else encoding
        for number, raw in rows:
            try:
                text = raw.decode(row_encoding)
            except UnicodeDecodeError:
                text = raw.decode(row_encoding, errors="replace")  # the mojibake check reports it
            if not text.strip():
                continue
            values = next(csv.reader([text]), [])
            fields = {name: (values[i] if i < len(values) else None) for i, name in enumerate(header)}
            yield SourceRecord(source, path.name, f"row {number}", fields, raw, "column", shape)

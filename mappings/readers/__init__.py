"""Readers turn one legacy file into :class:`~mappings.records.SourceRecord` values, streaming.

Each reader knows one format (CSV, Excel, JSON, CDA XML, HL7 v2) and nothing about FHIR.

Legacy files come from outside and are read as hostile.  A reader's promise: every bad input
either becomes a problem on its record (an ``UNPARSEABLE`` record, quarantined with its bytes)
or a one-line :class:`ReaderError` for the whole file — never another exception, and never
unbounded memory or time.  The bounds are :class:`Limits`, chosen by the caller (the gateway's
configuration); readers never read the environment themselves.
"""

from __future__ import annotations

import importlib
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from mappings.records import SourceRecord

#: file suffix → (module, function); modules are imported only when a file needs them
READERS = {
    ".csv": ("mappings.readers.csv_export", "read_csv"),
    ".xlsx": ("mappings.readers.xlsx_export", "read_xlsx"),
    ".json": ("mappings.readers.json_export", "read_json"),
    ".ndjson": ("mappings.readers.json_export", "read_json"),
    ".xml": ("mappings.readers.cda", "read_cda"),
    ".hl7": ("mappings.readers.hl7v2", "read_hl7"),
}

_MIB = 1024 * 1024


class ReaderError(ValueError):
    """The file as a whole cannot be read (wrong format, undecodable, unsafe XML, too large …).

    Always one line: libraries (lxml, openpyxl) put line breaks in their messages, and a run's
    summary lists one file error per line."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).split()))


@dataclass(frozen=True, slots=True)
class Limits:
    """How much one legacy file may make a reader hold or do; anything over a limit is refused
    (the file with a :class:`ReaderError`, a record or cell as an ``UNPARSEABLE`` record), so a
    hostile or broken export costs bounded memory and time.  The defaults fit the exports of
    the four sources with a wide margin and keep every reader well under 300 MB."""

    #: a file read as a stream (CSV, NDJSON, HL7 v2): memory stays flat, so this only bounds time
    file_bytes: int = 1024 * _MIB
    #: a file parsed as one document (.json, CDA .xml): it is held in memory whole, several times
    #: over, and parsed twice (syntax, then records); larger exports belong in NDJSON (streamed)
    document_bytes: int = 8 * _MIB
    #: one record (a CSV row, an NDJSON line, a JSON array item, an HL7 message or segment)
    record_bytes: int = 8 * _MIB
    #: one value (cell, field, string); FHIR itself caps a string at 1 MB
    cell_chars: int = 1 * _MIB
    #: the uncompressed size of an .xlsx (all its zip members together), checked before parsing
    xlsx_uncompressed_bytes: int = 128 * _MIB
    #: nesting of JSON objects and arrays in one record
    depth: int = 64


DEFAULT_LIMITS = Limits()


def read(path: Path, source: str, limits: Limits | None = None) -> Iterator[SourceRecord]:
    """The records of one legacy file, chosen by its suffix; ``limits`` default to ``Limits()``."""
    found = READERS.get(path.suffix.lower())
    if found is None:
        raise ReaderError(f"{path.name}: no reader for {path.suffix or 'files without a suffix'}")
    module, function = found
    return getattr(importlib.import_module(module), function)(path, source, limits or DEFAULT_LIMITS)


#: what FHIR strings forbid: characters below U+0020 other than tab, line feed and carriage return
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


def control_character(text: str) -> str | None:
    """The first character of ``text`` that no FHIR string may hold, as ``U+0000``, else None."""
    found = _CONTROL.search(text)
    return f"U+{ord(found.group()):04X}" if found else None


def value_problem(name: str, text: str, limits: Limits) -> str | None:
    """Why a text value cannot go on to FHIR as it is (a control character, over the cell
    limit), naming the field; None when it can."""
    if len(text) > limits.cell_chars:
        return f"{name}: {len(text)} characters, over the limit of {limits.cell_chars} for one value"
    bad = control_character(text)
    if bad is not None:
        return f"{name}: holds the control character {bad}, which FHIR text may not contain"
    return None


def encoding_problem(sample: bytes) -> str | None:
    """What a file that is neither UTF-8 nor GB18030 text appears to be, when that can be told
    from its first bytes (a UTF-16/32 byte order mark, NUL bytes of binary data), so the file
    error names it instead of a decoder's complaint about surrogates.  A stray NUL inside text
    is not the file's problem but its record's (see :func:`value_problem`)."""
    for bom, name in (
        (b"\xff\xfe\x00\x00", "UTF-32 LE"),
        (b"\x00\x00\xfe\xff", "UTF-32 BE"),
        (b"\xff\xfe", "UTF-16 LE"),
        (b"\xfe\xff", "UTF-16 BE"),
    ):
        if sample.startswith(bom):
            return f"{name} text (byte order mark {bom.hex(' ').upper()}); re-export it as UTF-8 or GB18030"
    if b"\x00" in sample:
        head = sample[:4096]
        if head and head.count(0) == len(head):
            return "only NUL bytes, not text"
        if len(head) >= 4 and head[1::2].count(0) >= len(head) // 4 and head[0::2].count(0) == 0:
            return "UTF-16 LE text without a byte order mark; re-export it as UTF-8 or GB18030"
        if len(head) >= 4 and head[0::2].count(0) >= len(head) // 4 and head[1::2].count(0) == 0:
            return "UTF-16 BE text without a byte order mark; re-export it as UTF-8 or GB18030"
        if head.count(0) * 8 > len(head):
            return f"binary data, not text ({head.count(0)} NUL bytes in the first {len(head)})"
    return None


def header_name(cell: str) -> str:
    """A column's name as the specs spell it: full-width forms folded (NFKC: ``（元）`` is
    ``(元)``, ``ＩＤ`` is ``ID``) and every space removed (``性　别`` is ``性别``).  Exports
    from different versions of one system differ in exactly these ways, and a column whose
    name did not match was silently left unmapped."""
    return "".join(unicodedata.normalize("NFKC", cell).split())


def check_unique_header(name: str, header: list[str]) -> None:
    """Refuse a header that names a column twice: which of two 姓名 cells a row means cannot
    be told, and keying the row by name would let the later cell silently replace the earlier,
    so nothing is mapped from the file."""
    first: dict[str, int] = {}
    for number, column in enumerate(header, start=1):
        if column in first:
            raise ReaderError(
                f"{name}: the header names the column {column!r} twice (columns {first[column]} and {number}); "
                "rename one and export again"
            )
        first[column] = number


def check_file_size(path: Path, limit: int) -> int:
    """The file's size, or ReaderError when it is over ``limit`` (checked before reading it)."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise ReaderError(f"{path.name}: cannot be read ({exc.strerror or exc})") from exc
    if size > limit:
        raise ReaderError(f"{path.name}: {size} bytes, over the limit of {limit} bytes for this kind of file")
    return size

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
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mappings.records import NOT_TEXT, Message, SourceRecord

#: the suffix that names no format: a file of it is read for what its first line shows
SNIFFED = ".txt"
#: file suffix → (module, function); modules are imported only when a file needs them
READERS = {
    ".csv": ("mappings.readers.csv_export", "read_csv"),
    ".xlsx": ("mappings.readers.xlsx_export", "read_xlsx"),
    ".json": ("mappings.readers.json_export", "read_json"),
    ".ndjson": ("mappings.readers.json_export", "read_json"),
    ".xml": ("mappings.readers.cda", "read_cda"),
    ".hl7": ("mappings.readers.hl7v2", "read_hl7"),
    # tab-separated values: the CSV reader tells the delimiter from the header line
    ".tsv": ("mappings.readers.csv_export", "read_csv"),
    # what Excel names its "Text (Tab delimited)" and "Unicode Text" exports: read as CSV when
    # its first line shows a delimiter, else refused saying to rename it (see read_text)
    SNIFFED: ("mappings.readers.csv_export", "read_text"),
}

#: the suffixes whose reader takes the character set a file's carrier declares (``read``)
CARRIER_CHARSET = frozenset({".hl7"})
#: suffixes of formats no reader takes on purpose, each refused saying what to save it as: a
#: legacy binary workbook (Excel 97-2003) is a format of its own, not a zip of XML parts, and a
#: reader of it would repeat, for one more format, every layout and hostile-input rule the
#: .xlsx reader keeps (merged ranges, hidden sheets, date formats, formulas without results)
REFUSED = {".xls": "reader.xls"}
#: how an OLE2 compound file starts: a legacy .xls, or an .xlsx saved with a password to open
#: it (Excel encrypts the zip into such a file), given another suffix
COMPOUND_FILE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"

_MIB = 1024 * 1024
_SUFFIXES = " ".join(READERS)


class ReaderError(ValueError):
    """The file as a whole cannot be read (wrong format, undecodable, unsafe XML, too large …).

    It carries a catalogued :class:`~mappings.records.Message` (``reader.*``), which whoever
    reports it words in the user's language; ``str()`` is the English wording, for logs.
    Always one line: libraries (lxml, openpyxl) put line breaks in their messages, and a run's
    summary lists one file error per line."""

    def __init__(self, message_id: str, **params: Any) -> None:
        self.message = _one_line(Message(message_id, params))
        super().__init__(self.message.text("en"))


def _one_line(value: Any) -> Any:
    """A parameter with its white space (a library's line breaks) folded to single spaces, in
    nested messages too."""
    if isinstance(value, str):
        return " ".join(value.split())
    if isinstance(value, Message):
        return Message(value.id, {k: _one_line(v) for k, v in value.params.items()})
    return value


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


def read(path: Path, source: str, limits: Limits | None = None, charset: str | None = None) -> Iterator[SourceRecord]:
    """The records of one legacy file, chosen by its suffix; ``limits`` default to ``Limits()``.
    ``charset``: the character set the file's carrier declares (an HTTP Content-Type's), which
    an HL7 v2 file reads where a message declares none itself (MSH-18); the other formats tell
    their own (a byte order mark, an XML declaration) and do not take it."""
    found = READERS.get(path.suffix.lower())
    if path.suffix.lower() in REFUSED:
        raise ReaderError(REFUSED[path.suffix.lower()], file=path.name)
    if found is None and not path.suffix:
        raise ReaderError("reader.no-suffix", file=path.name, suffixes=_SUFFIXES)
    if found is None:
        raise ReaderError("reader.no-reader", file=path.name, suffix=path.suffix, suffixes=_SUFFIXES)
    module, function = found
    reader = getattr(importlib.import_module(module), function)
    if charset is not None and path.suffix.lower() in CARRIER_CHARSET:
        return reader(path, source, limits or DEFAULT_LIMITS, charset=charset)
    return reader(path, source, limits or DEFAULT_LIMITS)


def value_problem(name: str | Message, text: str, limits: Limits) -> Message | None:
    """Why a text value cannot go on to FHIR as it is (a control character, a lone surrogate,
    over the cell limit), naming the field; None when it can."""
    if len(text) > limits.cell_chars:
        return Message("reader.value-too-long", {"field": name, "chars": len(text), "limit": limits.cell_chars})
    found = NOT_TEXT.search(text)
    if found is None:
        return None
    bad = found.group()
    kind = "reader.lone-surrogate" if bad >= "\ud800" else "reader.control-character"
    return Message(kind, {"field": name, "character": f"U+{ord(bad):04X}"})


def at_row(number: int, problem: Message) -> Message:
    """A problem of a spreadsheet row, located as the clerk finds it: ``row 5: …``."""
    return Message("reader.at-row", {"row": number, "problem": problem})


def line_too_long(size: int, limits: Limits) -> Message:
    """Why a line over the record limit is not read (CSV, NDJSON): only its head is kept."""
    return Message("reader.line-too-long", {"size": size, "limit": limits.record_bytes})


def encoding_problem(sample: bytes) -> Message | None:
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
            return Message("reader.bom-text", {"encoding": name, "bom": bom.hex(" ").upper()})
    if b"\x00" in sample:
        head = sample[:4096]
        if head and head.count(0) == len(head):
            return Message("reader.only-nul")
        if len(head) >= 4 and head[1::2].count(0) >= len(head) // 4 and head[0::2].count(0) == 0:
            return Message("reader.utf16-without-bom", {"encoding": "UTF-16 LE"})
        if len(head) >= 4 and head[0::2].count(0) >= len(head) // 4 and head[1::2].count(0) == 0:
            return Message("reader.utf16-without-bom", {"encoding": "UTF-16 BE"})
        if head.count(0) * 8 > len(head):
            return Message("reader.binary", {"nuls": head.count(0), "bytes": len(head)})
    return None


def header_name(cell: str) -> str:
    """A column's name as the specs spell it: full-width forms folded (NFKC: ``（元）`` is
    ``(元)``, ``ＩＤ`` is ``ID``) and every space removed (``性　别`` is ``性别``).  Exports
    from different versions of one system differ in exactly these ways, and a column whose
    name did not match was silently left unmapped."""
    return "".join(unicodedata.normalize("NFKC", cell).split())


def check_unique_header(name: str | Message, header: list[str]) -> None:
    """Refuse a header that names a column twice: which of two 姓名 cells a row means cannot
    be told, and keying the row by name would let the later cell silently replace the earlier,
    so nothing is mapped from the file.  ``name`` is the file's, or its sheet's."""
    first: dict[str, int] = {}
    for number, column in enumerate(header, start=1):
        if column in first:
            raise ReaderError("reader.duplicate-column", file=name, column=column, first=first[column], second=number)
        first[column] = number


def check_file_size(path: Path, limit: int) -> int:
    """The file's size, or ReaderError when it is over ``limit`` (checked before reading it)."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise ReaderError("reader.cannot-read", file=path.name, error=str(exc.strerror or exc)) from exc
    if size > limit:
        raise ReaderError("reader.file-too-large", file=path.name, size=size, limit=limit)
    return size

"""HL7 v2.x message files (``.hl7``) from hospital information systems: ADT feeds (A01 admit,
A03 discharge, A04 register, A08 update, A40 merge …), one or more messages per file.

Messages and records
--------------------
Segments end with ``\\r``, ``\\n`` or ``\\r\\n`` (all three are met in files saved from
interface engines); a new message starts at every ``MSH`` segment, and every message is one
record located as ``message N`` (1-based, in file order).  The file is read in chunks, one
message at a time, so memory stays flat however long the feed.  Blank lines, MLLP framing
characters (``\\x0b`` … ``\\x1c``) and batch envelopes (``FHS``/``BHS``/``BTS``/``FTS``) are
not part of any message.  ``raw`` is the message's own bytes as they stand in the file, from
its ``MSH`` through the end of its last segment.

Character set
-------------
Each message is decoded one way, whole, because feeds concatenated from several systems mix
them, and because a guess per segment or per field reads GB18030 text whose bytes happen to be
valid UTF-8 (谢伟, ``D0 BB CE B0``) as other characters (``лΰ``):

* by ``MSH-18`` when the message gives it (its first repetition; HL7 table 0211, the values in
  ``CHARSETS``: ``UNICODE UTF-8``, ``GB 18030-2000``, ``ASCII``, ``8859/1`` …).  ``MSH-18`` is
  read from the header's bytes before anything is decoded: like the separators, its value is
  ASCII whatever the message's character set.  A value not in the table, or a message whose
  bytes are not text in the set it declares, is not read at all;
* without ``MSH-18``: UTF-8 when the whole message decodes as UTF-8, else GB18030 (a superset of
  GBK and GB2312, what older Chinese HIS write) for the whole message; a message that is
  neither is not read.  A GB18030 sender whose message is all ASCII (names only in ``\\X…\\``
  escapes) must say so in ``MSH-18``: otherwise the message is UTF-8.

The bytes of hex escapes (``\\Xhh…\\``) are text in that same character set and take part in
the choice: a message without ``MSH-18`` is UTF-8 only if its escaped bytes are UTF-8 too.

What it is
----------
A message is also not read (its record is ``UNPARSEABLE``, saying why) when its header says it
is not one the archive takes: a version (``MSH-12``) other than those in ``VERSIONS`` (2.3 to
2.5.1, the versions the hl7v2 specs are written for), or a processing id (``MSH-11``) other than
``P``: debugging (``D``) and training (``T``) messages are test data, and a production archive
keeps none of them.  :func:`refusal` tells a listener which header field refused it, so its
acknowledgement can name the HL7 condition (0357: 202 processing id, 203 version).

A message that cannot be parsed still becomes a record, so it is quarantined with its bytes,
never lost: its shape is ``{"UNPARSEABLE"}`` (no spec matches it) and its only field,
``UNPARSEABLE``, says why — a damaged ``MSH`` (no field separator or encoding characters), an
empty message type (``MSH-9``), a line that is not a segment (text cut off, or a line break
inside a field that split a segment in two), a second ``MSH`` in one message (only an MLLP
frame holding several messages has one: :func:`read_message` reads one message), or content
outside any message.  A file whose
first line is not ``MSH`` (or a batch header) is not HL7 v2 at all and raises
:class:`~mappings.readers.ReaderError`.

Field keys
----------
Keys follow the HL7 ``SEG-n`` notation, with the field numbers of the standard (``MSH-9`` is
the message type; ``MSH-1`` and ``MSH-2``, the separators themselves, are left out):

* ``PID-8`` — the field's first repetition, escape sequences decoded (``\\F\\``, ``\\S\\``,
  ``\\T\\``, ``\\R\\``, ``\\E\\``, ``\\Xhh\\``) and components re-joined with the message's own
  separators; for a field of one component it is simply the value;
* ``PID-5.1`` — component 1 of the first repetition (always present when non-empty, also for
  one-component fields, so a spec may write ``PID-8.1`` whatever the sender does), and
  ``IN1-3.4.1`` — subcomponent 1 of a component, given only when the component has
  subcomponents;
* ``PID-3~2``, ``PID-3~2.1`` — the second (third …) repetition, same rules;
* ``PID-3[ID]``, ``PID-3[ID].1`` — in fields of type CX (``CX_FIELDS``: patient and visit
  identifier lists), the first repetition whose identifier type code (CX.5) is ``ID``, so a
  spec can pick the 身份证号 out of ``PID-3`` however the sender orders the repetitions;
* repeating segments: the flat keys above describe the **first** occurrence of a segment; for
  segments that repeat by design (``REPEATABLE``: ``IN1``, ``NK1``, ``DG1`` …) and for any
  other segment that occurs more than once in a message, the bare segment id (``IN1``) holds
  a list with one dict per occurrence, in message order, keyed the same way (``IN1-2.1``), so a
  spec can write ``each: IN1`` and ``from: $item.IN1-2.1``.

The typed keys (``PID-3[ID].1``) and the flat keys of a listed segment (``IN1-2.1`` beside
``IN1``) are *views* of values given under another key (``SourceRecord.views``), so
``mappings explain`` does not report one value as unused under each of its names.

Empty values and the HL7 explicit null ``""`` are left out.  Date/time fields (``TS_FIELDS``:
``PID-7``, ``PV1-44``, ``PV1-45``, ``IN1-12`` …) are given in ISO form so the shared ``date``
and ``datetime`` normalisers read them: ``19491231`` → ``1949-12-31``, ``20261102091500`` →
``2026-11-02 09:15:00``; a time with another UTC offset is moved to Beijing time (+08:00, what
the normalisers assume), fractions of a second are dropped.  A value that is not a well-formed
HL7 timestamp is passed on as it is, and an impossible date such as ``19520230`` becomes
``1952-02-30``, so the normalisers name the problem instead of the reader hiding it.

Hostile input
-------------
(See :class:`~mappings.readers.Limits`.)  A file over ``file_bytes`` is refused unread.  Lines
are found in one pass over the bytes, and a segment or message over ``record_bytes`` is never
held whole: its message becomes ``UNPARSEABLE``, keeping its first ``record_bytes`` bytes, so a
feed without segment terminators costs linear time and bounded memory.  A message also becomes
``UNPARSEABLE`` when a field holds a control character FHIR text forbids or more than
``cell_chars`` characters, when a timestamp lies outside the calendar (``99991231235959-1200``)
or when an escape sequence cannot be decoded.  Escapes are decoded here, not by python-hl7
(which drops what it does not know with a log line): ``\\Xhh…\\`` bytes in the message's
character set, and the ISO 2022 character set switches ``\\Cxxyy\\`` and ``\\Mxxyyzz\\`` (``\\M2441\\`` is GB 2312)
through Python's ``iso2022_jp_2`` codec; what cannot be decoded is a problem, never lost text.

Shape
-----
A record's shape (what ``match:`` in a spec is checked against) is the message type with its
trigger event (``ADT^A01``), the trigger event alone (``A01``) and the id of every segment
present (``MSH``, ``EVN``, ``PID``, ``PV1``, ``IN1`` …).
"""

from __future__ import annotations

import codecs
import hashlib
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import IO, Any

import hl7

from mappings.normalise import ascii_digits
from mappings.readers import DEFAULT_LIMITS, Limits, ReaderError, check_file_size, value_problem
from mappings.records import Message, SourceRecord, unparseable, visible

#: the shape and only field of a message that cannot be parsed; no spec may match it
#: segments that repeat by design in ADT messages; they always get a list under their id
REPEATABLE = frozenset({"NK1", "OBX", "AL1", "DG1", "PR1", "ROL", "GT1", "IN1", "IN2", "IN3", "NTE"})
#: fields of type CX (identifier lists) whose repetitions are also keyed by type code (CX.5)
CX_FIELDS = frozenset(
    {"PID-2", "PID-3", "PID-4", "PID-18", "PID-21", "PV1-19", "PV1-50", "IN1-49"} | {f"MRG-{n}" for n in range(1, 7)}
)
#: date/time fields (TS/DTM) rendered in ISO form
TS_FIELDS = frozenset(
    {"MSH-7", "EVN-2", "EVN-3", "EVN-6", "PID-7", "PID-29", "PID-33", "PV1-44", "PV1-45", "PV2-8", "PV2-9"}
    | {"IN1-12", "IN1-13", "IN1-18", "IN1-24", "IN1-26", "IN1-29", "NK1-8", "NK1-9", "NK1-16"}
    | {"DG1-5", "DG1-19", "AL1-6", "PR1-5", "OBX-12", "OBX-14", "OBX-19", "MRG-8"}
)

#: HL7 table 0211 character sets (MSH-18) and the codec that decodes each; UTF-16 and UTF-32
#: are left out (their MSH is not ASCII), as are the sets Python has no codec for
CHARSETS = {
    "ASCII": "ascii",
    **{f"8859/{n}": f"iso8859-{n}" for n in (1, 2, 3, 4, 5, 6, 7, 8, 9, 15)},
    "UNICODE UTF-8": "utf-8",
    "GB 18030-2000": "gb18030",
    "BIG-5": "big5",
}
#: what Chinese HIS interfaces write in MSH-18 instead of the table's names, upper-cased: the
#: codec names of their platforms, and the standard's name with another year or spacing.  GBK
#: and GB2312 are subsets of GB 18030, read as it.  Table names and aliases are read in any case.
CHARSET_ALIASES = {
    **dict.fromkeys(("UTF-8", "UTF8", "UNICODE UTF8"), "UNICODE UTF-8"),
    **dict.fromkeys(
        ("GB18030", "GB-18030", "GB 18030", "GBK", "CP936", "GB2312", "GB-2312", "GB 2312"), "GB 18030-2000"
    ),
    **dict.fromkeys(
        ("GB18030-2000", "GB 18030-2005", "GB18030-2005", "GB 18030-2022", "GB18030-2022"), "GB 18030-2000"
    ),
    **dict.fromkeys(("BIG5", "BIG 5"), "BIG-5"),
}
#: versions (MSH-12) the hl7v2 specs are written for: the Chinese HIS interfaces of v2.3 to v2.5.1,
#: whose PID, PV1 and IN1 fields the specs read keep their meaning across these versions
VERSIONS = ("2.3", "2.3.1", "2.4", "2.5", "2.5.1")
#: processing ids (MSH-11) of messages the archive keeps: production only (not D, T)
PROCESSING_IDS = ("P",)

#: separators one message may hold; a real ADT message holds hundreds, a batch of results a few
#: thousand, and parsing costs time per separator (about 2 s for 50,000 on a small machine)
MAX_DELIMITERS = 20_000

BOM = b"\xef\xbb\xbf"
_CHUNK = 1 << 16
_TERMINATOR = re.compile(rb"\r\n|\r|\n")
#: MLLP start-of-block and end-of-block characters, and the line's own terminator
_FRAMING = b"\x0b\x1c\r\n"
_BATCH = frozenset({"FHS", "BHS", "BTS", "FTS"})
_SEGMENT_ID = re.compile(r"[A-Z][A-Z0-9]{2}")
_NULL = '""'
_CHINA = timezone(timedelta(hours=8))
_TIMESTAMP = re.compile(
    r"(?P<y>\d{4})(?:(?P<mo>\d{2})(?:(?P<d>\d{2})(?:(?P<h>\d{2})(?:(?P<mi>\d{2})(?:(?P<s>\d{2})(?:\.\d{1,4})?)?)?)?)?)?"
    r"(?P<tz>[+-]\d{4})?",
    re.ASCII,  # 0-9 alone: another script's digits are left for the normalisers to refuse
)


def read_hl7(
    path: Path, source: str, limits: Limits = DEFAULT_LIMITS, charset: str | None = None
) -> Iterator[SourceRecord]:
    """The file's messages.  ``charset``, the character set its carrier declares (an HTTP
    Content-Type's ``charset``), decodes a message whose MSH-18 declares none, in place of the
    guess (UTF-8, else GB18030); a message's own MSH-18 wins, as a file may hold messages of
    several systems, each in its own set, and the same bytes must read alike however they come
    (a file, an MLLP frame, an upload)."""
    check_file_size(path, limits.file_bytes)
    carried = None if charset is None else carrier_codec(charset, path.name)
    with path.open("rb") as handle:
        number = 0
        current: list[tuple[bytes, bytes]] = []  # (line as in the file, line without framing)
        started = False
        for index, line in enumerate(_lines(handle, limits.record_bytes)):
            body = (line.removeprefix(BOM) if index == 0 else line).strip(_FRAMING)
            if not body.strip():
                if current:
                    current.append((line, b""))
                continue
            segment_id = body[:3].decode("ascii", "replace")
            if not started and segment_id != "MSH" and segment_id not in _BATCH:
                raise ReaderError("reader.not-hl7", file=path.name, start=repr(body[:20]))
            started = True
            if segment_id == "MSH" or segment_id in _BATCH:
                if current:
                    number += 1
                    yield _message(source, path.name, number, current, limits, carried)
                current = [(line, body)] if segment_id == "MSH" else []
                continue
            if sum(len(kept) for kept, _ in current) + len(line) > limits.record_bytes:
                # the message is over the limit already: keep what fits, mark it, drop the rest
                if not isinstance(current[-1][0], _Truncated):
                    current.append((_Truncated(b"", 0), b""))
                continue
            current.append((line, body))
        if current:
            number += 1
            yield _message(source, path.name, number, current, limits, carried)


def carrier_codec(charset: str, file: str) -> str:
    """The codec of a character set a carrier declares: a name MSH-18 takes (``GB 18030-2000``,
    ``GBK``) or its IANA name, as an HTTP ``charset`` gives it (``gb18030``, ``utf-8``,
    ``iso-8859-1``, ``us-ascii``); GBK and GB2312 read as GB18030, their superset.  A set
    outside ``CHARSETS`` refuses the file: the MSH segment of a UTF-16 or UTF-32 message is
    not ASCII, and an unknown one cannot be read."""
    named = charset.strip().strip('"').upper()
    table = CHARSET_ALIASES.get(named, named)
    if table in CHARSETS:
        return CHARSETS[table]
    try:
        codec = codecs.lookup(named).name
    except LookupError:
        codec = ""
    codec = "gb18030" if codec in ("gbk", "gb2312") else codec
    if codec not in CHARSETS.values():
        known = ", ".join([*CHARSETS, *CHARSET_ALIASES])
        raise ReaderError("reader.hl7-carrier-charset", file=file, value=charset, known=known)
    return codec


def read_message(data: bytes, source: str, name: str, limits: Limits = DEFAULT_LIMITS) -> SourceRecord:
    """One message that arrived on its own (an MLLP frame) as a record of ``name``, located by
    its control id (``MSH-10``), or by a digest of its bytes when it has none: a feed has no
    file and no message numbers.  A frame holding a batch (FHS/BHS …) is not read: MLLP carries
    one message per frame."""
    lines = [(line, line.strip(_FRAMING)) for line in _lines(io.BytesIO(data), limits.record_bytes)]
    if lines:  # a byte order mark before MSH (a sender on .NET's UTF-8), as a file may have
        lines[0] = (lines[0][0], lines[0][1].removeprefix(BOM))
    opening = next((body[:3].decode("ascii", "replace") for _, body in lines if body), "")
    if opening in _BATCH:
        # a batch (FHS/BHS … BTS/FTS) sent as one frame: not "content outside any message"
        record = unparseable(source, name, "", data, Message("reader.hl7-batch-frame", {"segment": opening}))
    else:
        record = _message(source, name, 1, lines, limits)
    control = record.fields.get("MSH-10")
    if isinstance(control, str) and control:
        record.location = f"MSH-10 {control}"
    else:
        record.location = f"bytes {hashlib.blake2b(data, digest_size=8).hexdigest()}"
    return record


class _Truncated(bytes):
    """The start of a line (segment) longer than the record limit; the rest was skipped."""

    size: int

    def __new__(cls, head: bytes, size: int) -> _Truncated:
        made = super().__new__(cls, head)
        made.size = size
        return made


def _lines(handle: IO[bytes], limit: int = DEFAULT_LIMITS.record_bytes) -> Iterator[bytes]:
    """The file's lines with their terminators (``\\r``, ``\\n`` or ``\\r\\n``), read in chunks.
    Each byte is scanned once (only the new chunk, and the ``\\r`` that may end the old one),
    and a line over ``limit`` is given as a :class:`_Truncated` head, its rest skipped unread
    into memory: linear time, bounded memory, however long the line."""
    pending = bytearray()
    skipped = -1  # bytes of an over-long line skipped so far; -1: not skipping
    while chunk := handle.read(_CHUNK):
        if skipped >= 0:
            end = _TERMINATOR.search(chunk)
            if end is None:
                skipped += len(chunk)
                continue
            yield _Truncated(bytes(pending), len(pending) + skipped + end.end())
            pending.clear()
            skipped = -1
            chunk = chunk[end.end() :]
        old = len(pending)
        pending += chunk
        start = 0
        for match in _TERMINATOR.finditer(pending, max(old - 1, 0)):
            if match.group() == b"\r" and match.end() == len(pending):
                break  # perhaps the first half of \r\n: wait for the next chunk
            line = bytes(pending[start : match.end()])
            yield line if len(line) <= limit else _Truncated(line[:limit], len(line))
            start = match.end()
        del pending[:start]
        if len(pending) > limit:
            skipped = len(pending) - limit
            del pending[limit:]
    if skipped >= 0:
        yield _Truncated(bytes(pending), len(pending) + skipped)
    elif pending:
        yield bytes(pending)


# -- one message --------------------------------------------------------------------------------
def _message(
    source: str,
    file: str,
    number: int,
    lines: list[tuple[bytes, bytes]],
    limits: Limits = DEFAULT_LIMITS,
    carried: str | None = None,
) -> SourceRecord:
    """One message as a record; ``carried``: the codec its carrier declares, for a message whose
    MSH-18 declares none."""
    too_long = next((line for line, _ in lines if isinstance(line, _Truncated)), None)
    while lines and not lines[-1][1] and not isinstance(lines[-1][0], _Truncated):
        lines = lines[:-1]  # blank lines after the last segment belong to no message
    raw = b"".join(line for line, _ in lines)
    location = f"message {number}"
    if too_long is not None:
        sizes = {"size": too_long.size, "limit": limits.record_bytes, "kept": len(raw)}
        kind = "reader.hl7-segment-too-long" if too_long.size else "reader.hl7-message-too-long"
        return unparseable(source, file, location, raw, Message(kind, sizes))
    bodies = [body for _, body in lines if body]
    try:
        seps, declared = _header(bodies[0] if bodies else b"")
        message, fields, views = _parse(_decoded(bodies, seps, declared, carried), seps, limits)
    except _Unparseable as problem:
        return unparseable(source, file, location, raw, problem.message)
    kind, trigger = fields.get("MSH-9.1"), fields.get("MSH-9.2")
    shape = {str(segment[0]) for segment in message}
    shape.update([f"{kind}^{trigger}", trigger] if trigger else [kind])
    return SourceRecord(source, file, location, fields, raw, "field", frozenset(shape), views)


class _Unparseable(ValueError):
    """Why a message cannot be read (a catalogued message); it becomes the record's only field."""

    def __init__(self, message_id: str, **params: Any) -> None:
        self.message = Message(message_id, params)
        super().__init__(self.message.text("en"))


class _Refused(_Unparseable):
    """A message whose header says it is not one the archive takes (a character set, version or
    processing id it does not accept); ``refusal`` names the header field."""

    def __init__(self, refusal: Refusal) -> None:
        super().__init__(refusal.reason.id, **refusal.reason.params)
        self.refusal = refusal


@dataclass(frozen=True)
class Refusal:
    """The header field (``MSH-18``, ``MSH-12`` or ``MSH-11``) that refused a message, the value
    it holds, and why, as the record's ``UNPARSEABLE`` field says it."""

    field: str
    value: str
    reason: Message


def refusal(data: bytes) -> Refusal | None:
    """Why :func:`read_message` refuses this message for what its header says it is, or None
    when it does not (it may still refuse it for its content): a listener answers the refusal
    with its own HL7 condition, which the record's text alone does not give."""
    first = next((body for line in _lines(io.BytesIO(data)) if (body := line.strip(_FRAMING))), b"")
    first = first.removeprefix(BOM)
    try:
        _header(first)
    except _Refused as refused:
        return refused.refusal
    except _Unparseable:
        return None
    return None


def header_text(data: bytes) -> str:
    """A message's first segment as text, decoded as :func:`read_message` decodes the message:
    in the character set its MSH-18 declares, else UTF-8 when the whole message is UTF-8, else
    GB18030.  For a listener echoing the header of a message it could not read: decoded as UTF-8
    alone, a GB18030 MSH-3 住院系统 came back as סԺϵͳ, and 郑州市第一人民医院 as U+FFFD."""
    first = next((body for line in _lines(io.BytesIO(data)) if (body := line.strip(_FRAMING))), b"")
    first = first.removeprefix(BOM)
    try:
        _, declared = _header(first)
    except _Unparseable:  # a header refused for its version still has its text
        declared = None
    for codec in [declared] if declared else ["utf-8", "gb18030"]:
        try:
            data.removeprefix(BOM).decode(codec)
        except UnicodeDecodeError:
            continue
        return first.decode(codec)
    return _header_text(first)


def _header(segment: bytes) -> tuple[_Separators, str | None]:
    """The message's separators (MSH-1, MSH-2) and the codec of its declared character set
    (MSH-18; None when it declares none), once its
    header says it is a message the archive takes (MSH-12, MSH-11).  Read before the message is
    decoded, since MSH-18 says how: these fields are ASCII whatever its character set, but a
    Chinese MSH-4 is not, and the second byte of a GBK or Big5 character may be ``|``, ``^`` or
    ``\\`` (東, 區): see :func:`_header_text`."""
    header = _header_text(segment)
    if not header.startswith("MSH"):
        raise _Unparseable("reader.hl7-outside-message")
    separator = header[3:4]
    encoding_chars = header[4:].split(separator, 1)[0] if separator else ""
    if (
        not separator
        or separator.isalnum()
        or len(encoding_chars) not in (4, 5)
        or len(set(separator + encoding_chars)) != len(encoding_chars) + 1
        or any(c.isalnum() or c.isspace() for c in encoding_chars)
    ):
        raise _Unparseable("reader.hl7-separators")
    seps = _Separators(encoding_chars, separator)
    fields = header.split(separator)

    def first(number: int) -> str:
        """The field's first component of its first repetition (MSH-12 2.5^CHN is 2.5)."""
        value = fields[number - 1] if number <= len(fields) else ""
        return value.split(seps.repetition)[0].split(seps.component)[0].strip()

    # as an ACK and the quarantine quote them, control characters shown (see records.visible)
    charset, version, processing = visible(first(18)), visible(first(12)), visible(first(11))
    named = charset.upper()
    charset = CHARSET_ALIASES.get(named, named if named in CHARSETS else charset)
    if charset and charset not in CHARSETS:
        known = ", ".join([*CHARSETS, *CHARSET_ALIASES])
        raise _Refused(Refusal("MSH-18", charset, Message("reader.hl7-charset", {"value": charset, "known": known})))
    if version not in VERSIONS:
        words = {"value": version, "supported": ", ".join(VERSIONS)}
        raise _Refused(Refusal("MSH-12", version, Message("reader.hl7-version", words)))
    if processing not in PROCESSING_IDS:
        raise _Refused(Refusal("MSH-11", processing, Message("reader.hl7-processing-id", {"value": processing})))
    return seps, CHARSETS.get(charset)


def _header_text(segment: bytes) -> str:
    """The MSH segment as text its delimiters can be found in.  UTF-8 if it decodes so (no byte
    of a multi-byte UTF-8 character is ASCII); Latin-1 if MSH-18, read so, declares a one-byte
    set (then every byte is a character); else GB18030, whose two-byte characters take in
    GBK's and Big5's, second bytes that look like delimiters included; Latin-1 at last."""
    try:
        return segment.decode("utf-8")
    except UnicodeDecodeError:
        pass
    latin = segment.decode("latin-1")
    fields = latin.split(latin[3:4]) if latin[3:4] else []
    declared = fields[17].split("^")[0].strip() if len(fields) > 17 else ""
    if declared == "ASCII" or declared.startswith("8859/"):
        return latin
    try:
        return segment.decode("gb18030")
    except UnicodeDecodeError:
        return latin


def _decoded(bodies: list[bytes], seps: _Separators, declared: str | None, carried: str | None = None) -> list[str]:
    """The segments as text, all in one character set: the declared one (MSH-18), else the one
    its carrier declares, else UTF-8 if the message decodes as UTF-8, else GB18030.  The bytes
    of its hex escapes must decode too, since they are read in the same set; ``seps.codec``
    becomes the set chosen."""
    data = b"\r".join(bodies)
    for codec in [declared or carried] if declared or carried else ["utf-8", "gb18030"]:
        try:
            segments = data.decode(codec).split("\r")
            for digits in _hex_escapes(segments, seps):
                bytes.fromhex(digits).decode(codec)
        except UnicodeDecodeError:
            continue
        seps.codec = codec
        return segments
    if declared:
        raise _Unparseable("reader.hl7-not-declared-charset", charset=declared)
    if carried:
        raise _Unparseable("reader.hl7-not-carrier-charset", charset=carried)
    raise _Unparseable("reader.hl7-undecodable")


def _hex_escapes(segments: list[str], seps: _Separators) -> Iterator[str]:
    """The hex digits of the segments' hex escapes (``Xhh…``, between escape characters), found
    in decoded text as :func:`unescape` finds them (in the raw bytes, a GBK character's second
    byte may be the escape character), so their bytes take part in choosing the character set."""
    for segment in segments:
        for part in segment.split(seps.escape)[1::2]:
            if part[:1] == "X" and _HEX.fullmatch(part[1:]):
                yield part[1:]


def _parse(
    segments: list[str], seps: _Separators, limits: Limits
) -> tuple[hl7.Message, dict[str, Any], dict[str, str]]:
    separator = seps.field
    encoding_chars = seps.encoding_chars
    delimiters = sum(sum(text.count(c) for c in separator + encoding_chars) for text in segments)
    if delimiters > MAX_DELIMITERS:
        # python-hl7 and the keys below cost time per field and component, not per byte
        raise _Unparseable("reader.hl7-delimiters", count=delimiters, limit=MAX_DELIMITERS)
    for number, text in enumerate(segments[1:], start=2):
        if not (_SEGMENT_ID.fullmatch(text[:3]) and text[3:4] in ("", separator)):
            raise _Unparseable("reader.hl7-not-a-segment", segment=number, start=repr(text[:30]))
        if text[:3] == "MSH":
            # a file starts a message at every MSH, so only an MLLP frame gets here; read as one
            # message, the second header would be a repeated segment and its message lost
            raise _Unparseable("reader.hl7-second-msh", segment=number)
    try:
        message = hl7.parse("\r".join(segments))
    except Exception as exc:  # python-hl7 raises IndexError, ParseException … on damaged input
        raise _Unparseable("reader.hl7-unparsed", error=str(exc)) from exc
    fields: dict[str, Any] = {}
    views: dict[str, str] = {}
    occurrences: dict[str, list[dict[str, str]]] = {}
    for segment in message:
        segment_id = str(segment[0])
        keys = _segment_fields(message, segment, segment_id, seps, views, limits)
        occurrences.setdefault(segment_id, []).append(keys)
        if len(occurrences[segment_id]) == 1:
            fields.update(keys)
    for segment_id, found in occurrences.items():
        if segment_id in REPEATABLE or len(found) > 1:
            fields[segment_id] = found
            views.update((key, segment_id) for key in found[0])
    if not fields.get("MSH-9.1"):
        raise _Unparseable("reader.hl7-no-message-type")
    return message, fields, views


class _Separators:
    """How to read the message's text: its separators, and the character set it was decoded
    with (``codec``, which hex escapes are read in too)."""

    def __init__(self, encoding_chars: str, field: str = "|", codec: str = "utf-8") -> None:
        self.component, self.repetition, self.escape, self.subcomponent = encoding_chars[:4]
        self.encoding_chars = encoding_chars
        self.field = field
        self.codec = codec


def _segment_fields(
    message: hl7.Message,
    segment: hl7.Segment,
    segment_id: str,
    seps: _Separators,
    views: dict[str, str],
    limits: Limits = DEFAULT_LIMITS,
) -> dict[str, str]:
    keys: dict[str, str] = {}
    first = 3 if segment_id == "MSH" else 1  # MSH-1 and MSH-2 are the separators themselves
    for number in range(first, len(segment)):
        name = f"{segment_id}-{number}"
        repetitions = str(segment[number]).split(seps.repetition)
        typed: set[str] = set()
        for index, repetition in enumerate(repetitions, start=1):
            components = _components(name, repetition, seps, name in TS_FIELDS, limits)
            if not components:
                continue
            prefixes = [name if index == 1 else f"{name}~{index}"]
            type_code = components.get(5)
            if name in CX_FIELDS and type_code and type_code[0] not in typed:
                typed.add(type_code[0])
                prefixes.append(f"{name}[{type_code[0]}]")
            whole = _join(components, seps)
            for prefix in prefixes:
                keys[prefix] = whole
                for position, (text, subcomponents) in components.items():
                    keys[f"{prefix}.{position}"] = text
                    if len(subcomponents) > 1:
                        for sub, value in enumerate(subcomponents, start=1):
                            if value:
                                keys[f"{prefix}.{position}.{sub}"] = value
            if len(prefixes) > 1:
                canonical, typed_prefix = prefixes
                views.update(
                    (key, canonical + key[len(typed_prefix) :])
                    for key in keys
                    if key == typed_prefix or key.startswith(typed_prefix + ".")
                )
    return keys


def _components(
    name: str, repetition: str, seps: _Separators, timestamp: bool, limits: Limits = DEFAULT_LIMITS
) -> dict[int, tuple[str, list[str]]]:
    """Non-empty components by position: (text with subcomponents joined, subcomponents)."""
    found: dict[int, tuple[str, list[str]]] = {}
    for position, component in enumerate(repetition.split(seps.component), start=1):
        subcomponents = [_value(name, s, seps, limits) for s in component.split(seps.subcomponent)]
        if timestamp and position == 1:
            try:
                subcomponents[0] = iso_timestamp(subcomponents[0])
            except OverflowError as exc:
                raise _Unparseable("reader.hl7-time-outside-calendar", field=name, value=subcomponents[0]) from exc
        if any(subcomponents):
            found[position] = (seps.subcomponent.join(subcomponents), subcomponents)
    return found


def _value(name: str, text: str, seps: _Separators, limits: Limits = DEFAULT_LIMITS) -> str:
    value = unescape(name, text, seps) if seps.escape in text else text
    value = value.strip()
    problem = value_problem(name, value, limits)
    if problem is not None:
        raise _Unparseable(problem.id, **problem.params)
    return "" if value == _NULL else value


#: formatting escapes (HL7 v2 2.7.6) as plain text; highlighting (\H\, \N\) carries no text
_FORMATTING = {".br": "\n", ".sp": "\n", ".fi": "", ".nf": "", ".in": "    ", ".ti": "    ", ".sk": " ", ".ce": "\n"}
_HIGHLIGHT = frozenset({"H", "N"})
#: the most a formatting escape may repeat (``\.sp999999999\`` must not allocate gigabytes)
_MAX_REPEAT = 100
_HEX = re.compile(r"(?:[0-9A-Fa-f]{2})+")


def unescape(name: str, text: str, seps: _Separators) -> str:
    """A field's text with its escape sequences decoded; anything that cannot be decoded (an
    unknown sequence, hex that is no text, a character set switch whose text does not decode)
    raises :class:`_Unparseable`, so text is never silently dropped."""
    escape = seps.escape
    parts = text.split(escape)
    if len(parts) % 2 == 0:
        raise _Unparseable("reader.hl7-open-escape", field=name, escape=escape)
    out: list[str] = []
    charset: str | None = None  # the ISO 2022 escape in force, as hex, and the text under it
    pending: list[str] = []

    def flush() -> None:
        if charset is None:
            return
        data = "".join(pending)
        try:
            decoded = (b"\x1b" + bytes.fromhex(charset) + data.encode("ascii")).decode("iso2022_jp_2")
            if "\x1b" in decoded:  # a character set the codec does not know, passed through
                raise ValueError(charset)
            out.append(decoded)
        except (UnicodeError, ValueError) as exc:
            raise _Unparseable("reader.hl7-charset-escape", field=name, escape=f"{escape}{charset}{escape}") from exc
        pending.clear()

    for index, part in enumerate(parts):
        if index % 2 == 0:
            (pending if charset is not None else out).append(part)
            continue
        plain = {"F": seps.field, "S": seps.component, "T": seps.subcomponent, "R": seps.repetition, "E": escape}
        sink = pending if charset is not None else out
        if part in plain:
            sink.append(plain[part])
        elif part in _HIGHLIGHT:
            continue
        elif part[:3] in _FORMATTING and (part[3:] == "" or (ascii_digits(part[3:]) and len(part) <= 12)):
            count = int(part[3:] or "1")
            if count > _MAX_REPEAT:
                raise _Unparseable("reader.hl7-repeat", field=name, escape=f"{escape}{part}{escape}", limit=_MAX_REPEAT)
            sink.append(_FORMATTING[part[:3]] * count)
        elif part[:1] == "X" and _HEX.fullmatch(part[1:]):
            sink.append(_hex_text(name, part, seps))
        elif part[:1] in ("C", "M") and _HEX.fullmatch(part[1:]) and len(part) in ((5,) if part[0] == "C" else (5, 7)):
            flush()
            charset = part[1:]
        else:
            raise _Unparseable("reader.hl7-unknown-escape", field=name, escape=f"{escape}{part[:20]}{escape}")
    flush()
    return "".join(out)


def _hex_text(name: str, part: str, seps: _Separators) -> str:
    """A hex escape's bytes as text in the message's character set."""
    codec = seps.codec
    try:
        return bytes.fromhex(part[1:]).decode(codec)
    except UnicodeDecodeError as exc:
        escape = seps.escape
        hexes = f"{escape}{part[:20]}{escape}"
        raise _Unparseable("reader.hl7-hex-escape", field=name, escape=hexes, codec=codec) from exc


def _join(components: dict[int, tuple[str, list[str]]], seps: _Separators) -> str:
    last = max(components)
    return seps.component.join(components[p][0] if p in components else "" for p in range(1, last + 1))


def iso_timestamp(value: str) -> str:
    """An HL7 TS/DTM value (``YYYY[MM[DD[HH[MM[SS[.S]]]]]][+/-ZZZZ]``) in ISO form, Beijing time;
    anything else unchanged."""
    match = _TIMESTAMP.fullmatch(value)
    if not match:
        return value
    y, mo, d, h, mi, s, tz = match.group("y", "mo", "d", "h", "mi", "s", "tz")
    if mo is None:
        return y
    if d is None:
        return f"{y}-{mo}"
    if h is None:
        return f"{y}-{mo}-{d}"
    mi, s = mi or "00", s or "00"
    if tz and tz != "+0800":
        try:
            offset = timezone(timedelta(hours=int(tz[1:3]), minutes=int(tz[3:5])) * (1 if tz[0] == "+" else -1))
            moment = datetime(int(y), int(mo), int(d), int(h), int(mi), int(s), tzinfo=offset).astimezone(_CHINA)
        except ValueError:
            pass  # an impossible date or time: left for the normalisers to report
        else:
            return moment.strftime("%Y-%m-%d %H:%M:%S")
    return f"{y}-{mo}-{d} {h}:{mi}:{s}"

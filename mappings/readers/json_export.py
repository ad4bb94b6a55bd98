"""JSON exports (``.json``) and JSON Lines (``.ndjson``): 医保 replies, 养老服务平台 and 养老机构 exports.

Which objects are records
-------------------------
``.ndjson``: every non-blank line is one record, located as ``line N`` (the physical line
number).  A line that is not valid JSON, or whose JSON is not an object, still becomes a
record — its shape is ``{"UNPARSEABLE"}``, which no spec matches, so it is quarantined with
its bytes instead of being lost.  Lines are never unwrapped.

``.json``: the whole file must be valid JSON, else the file is unreadable (``ReaderError``)
and nothing of it is mapped.  Then, with records located as ``record N`` (1-based):

- a top-level **array**: each item is a record;
- a top-level **object that is a list wrapper**: the records are the items of its ``data``,
  ``rows``, ``records`` or ``list`` array, or of such an array one level down inside a
  ``data`` object (``{"code": 0, "data": {"records": [...], "total": 7}}``).  It is a wrapper
  only when every other member (``code``, ``msg``, ``total`` …) is a scalar or empty, so a
  record that merely has a list-valued ``data`` field is not taken apart.  A wrapper naming
  one of these members twice, either holding a list or an object (``{"data": [...], "data":
  [...]}``, as pages of an export pasted together make), is a file error
  (``reader.json-repeated-list``): JSON keeps the last member of a name, so the records of
  the other were read as none and the run reconciled without them;
- **any other object** is one record, wrapper and all: a 国家医保信息平台 reply
  ``{"infcode": 0, "output": {"baseinfo": {...}, "insuinfo": [...]}}`` is one record whose
  fields are reached as ``output.baseinfo.certno`` and ``output.insuinfo``.

An array item that is not an object is kept as an ``UNPARSEABLE`` record, like a bad line.

What a record carries
---------------------
``fields`` is the record object itself, nested objects and lists kept (the engine's dotted
``from: output.baseinfo.psn_no`` reaches inside; ``each`` iterates a list).  ``shape`` is
its top-level keys plus, for object-valued members, their keys one level down
(``output.baseinfo``, ``养老机构.统一社会信用代码``), so a spec can select on structure.
``raw`` is the record's own text exactly as it stands in the file, in the file's encoding
(for an item of an array, the item's span; the wrapper around it is not repeated), so the
quarantine keeps original bytes, not a re-serialisation.

Encoding: UTF-8 with or without BOM, else GB18030.  Raw tabs, line feeds and carriage
returns inside strings are accepted (``strict=False``): legacy exports write them into free
text.

Hostile input (see :class:`~mappings.readers.Limits`).  A record becomes ``UNPARSEABLE`` (kept
with its bytes, never silently altered) when it holds what FHIR cannot: ``NaN`` or
``Infinity`` (or a number so large it overflows to one), a number literal of more than
``MAX_NUMBER_CHARS`` characters (Python refuses to convert a 5,000-digit integer), a key
repeated in one object (JSON would silently keep the last: a second ``resourceType`` turns a
Patient into an Observation), nesting deeper than ``Limits.depth``, a string over
``Limits.cell_chars`` or holding a control character other than tab, CR and LF, or a lone
surrogate (a ``\\ud800`` escape without its pair, which is no text).  A ``.json``
is parsed whole, so one over ``Limits.document_bytes`` is refused unread (export NDJSON
instead); an ``.ndjson`` is streamed, and a line over ``Limits.record_bytes`` is never held
whole: it becomes an ``UNPARSEABLE`` record keeping its first ``record_bytes`` bytes.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mappings.readers import DEFAULT_LIMITS, Limits, ReaderError, check_file_size, line_too_long, value_problem
from mappings.readers.csv_export import BOM, GB18030_BOM, detect_encoding, without_bom
from mappings.records import Message, SourceRecord, unparseable

#: the shape of a record that is not a JSON object; no spec may match it
#: members of a wrapper object that may hold the list of records
LIST_KEYS = ("data", "rows", "records", "list")
_SNIFF = 1 << 16
_WHITESPACE = re.compile(r"[ \t\n\r]*")
#: the longest number literal read as a number; longer ones are a problem of their record
MAX_NUMBER_CHARS = 100


class _Huge(str):
    """A number literal too long to be a value any legacy system meant (kept as its text)."""

    __slots__ = ()


class _Duplicated(dict[str, Any]):
    """An object in which a key appears more than once (JSON keeps the last, silently)."""

    duplicates: list[str]


def _int(text: str) -> int | _Huge:
    return _Huge(text) if len(text) > MAX_NUMBER_CHARS else int(text)


def _float(text: str) -> float | _Huge:
    return _Huge(text) if len(text) > MAX_NUMBER_CHARS else float(text)


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found = dict(pairs)
    if len(found) == len(pairs):
        return found
    marked = _Duplicated(found)
    seen: set[str] = set()
    marked.duplicates = [key for key, _ in pairs if key in seen or seen.add(key)]  # type: ignore[func-returns-value]
    return marked


_DECODER = json.JSONDecoder(strict=False, object_pairs_hook=_object, parse_int=_int, parse_float=_float)
#: the syntax check of a whole document: no duplicate-key hook (the records are decoded again
#: with it), but long numbers kept as text, so a 5,000-digit integer is not a ValueError
_SYNTAX = json.JSONDecoder(strict=False, parse_int=_int, parse_float=_float)

Span = tuple[Any, int, int]  # value, start and end offsets in the decoded text


def read_json(path: Path, source: str, limits: Limits = DEFAULT_LIMITS) -> Iterator[SourceRecord]:
    if path.suffix.lower() == ".ndjson":
        check_file_size(path, limits.file_bytes)
        return _read_lines(path, source, limits)
    return _read_document(path, source, limits)


# -- .json ------------------------------------------------------------------------------------
def _read_document(path: Path, source: str, limits: Limits) -> Iterator[SourceRecord]:
    size = check_file_size(path, limits.document_bytes)
    with path.open("rb") as handle:
        data = handle.read(size + 1)
    if len(data) > limits.document_bytes:  # grew while we looked
        raise ReaderError("reader.over-limit", file=path.name, limit=limits.document_bytes)
    encoding = detect_encoding(data, path.name)  # the whole file: a GB18030 character may sit anywhere
    try:
        text = without_bom(data.decode(encoding))
    except UnicodeDecodeError as exc:
        raise ReaderError("reader.undecodable", file=path.name, byte=exc.start) from exc
    del data
    try:
        _SYNTAX.decode(text)
        spans = _record_spans(text, path.name)
    except json.JSONDecodeError as exc:
        raise ReaderError(
            "reader.invalid-json", file=path.name, line=exc.lineno, column=exc.colno, error=exc.msg
        ) from exc
    except RecursionError as exc:
        raise ReaderError("reader.json-too-deep", file=path.name) from exc
    if spans is None:
        raise ReaderError("reader.json-no-records", file=path.name)
    plain = "utf-8" if encoding == "utf-8-sig" else encoding
    return _records(path.name, source, text, spans, plain, limits)


def _records(
    name: str, source: str, text: str, spans: list[Span], encoding: str, limits: Limits
) -> Iterator[SourceRecord]:
    for number, (value, start, end) in enumerate(spans, start=1):
        span = text[start:end]
        yield _record(source, name, f"record {number}", value, span.encode(encoding), limits, span)


def _record_spans(text: str, name: str) -> list[Span] | None:
    """The records of a document (see the module docstring), each with its text span;
    ``name``, the file's, says which file a wrapper naming its record list twice is."""
    start = _skip(text, 0)
    if text.startswith("[", start):
        return _array_items(text, start)
    if not text.startswith("{", start):
        return None
    members = _object_members(text, start, name)
    found = _wrapped_list(text, members, name)
    if found is not None:
        return found
    value, end = _DECODER.raw_decode(text, start)
    return [(value, start, end)]


def _wrapped_list(text: str, members: dict[str, Span], name: str) -> list[Span] | None:
    """The record list of a wrapper object, or None when the object is a record itself."""
    for key in LIST_KEYS:
        if key not in members or not _others_are_scalars(members, key):
            continue
        value, start, _ = members[key]
        if isinstance(value, list):
            return _array_items(text, start)
        if key == "data" and isinstance(value, dict):
            inner = _object_members(text, start, name, "data.")
            for inner_key in LIST_KEYS:
                if (
                    inner_key in inner
                    and isinstance(inner[inner_key][0], list)
                    and _others_are_scalars(inner, inner_key)
                ):
                    return _array_items(text, inner[inner_key][1])
    return None


def _others_are_scalars(members: dict[str, Span], key: str) -> bool:
    return all(not isinstance(v, (list, dict)) or not v for k, (v, _, _) in members.items() if k != key)


def _skip(text: str, position: int) -> int:
    return _WHITESPACE.match(text, position).end()


def _array_items(text: str, position: int) -> list[Span]:
    """Items of the (already validated) array starting at ``position``, with their spans."""
    items: list[Span] = []
    position = _skip(text, position + 1)
    if text.startswith("]", position):
        return items
    while True:
        value, end = _DECODER.raw_decode(text, position)
        items.append((value, position, end))
        position = _skip(text, end)
        if text.startswith("]", position):
            return items
        position = _skip(text, position + 1)  # the comma


def _object_members(text: str, position: int, name: str, path: str = "") -> dict[str, Span]:
    """Members of the (already validated) object starting at ``position``, with value spans.
    A member that may hold the record list (``LIST_KEYS``) named twice, a list or an object
    either time, is a file error naming it (``path``, the object's own, then the key): which
    of the two holds the records cannot be told."""
    members: dict[str, Span] = {}
    position = _skip(text, position + 1)
    if text.startswith("}", position):
        return members
    while True:
        key, end = _DECODER.raw_decode(text, position)
        position = _skip(text, _skip(text, end) + 1)  # the colon
        value, end = _DECODER.raw_decode(text, position)
        if key in members and key in LIST_KEYS and _structured(value, members[key][0]):
            raise ReaderError("reader.json-repeated-list", file=name, key=path + key)
        members[key] = (value, position, end)
        position = _skip(text, end)
        if text.startswith("}", position):
            return members
        position = _skip(text, position + 1)  # the comma


def _structured(*values: Any) -> bool:
    """Whether any of ``values`` is a list or an object (a wrapper's record list may be)."""
    return any(isinstance(value, (list, dict)) for value in values)


# -- .ndjson ----------------------------------------------------------------------------------
def _read_lines(path: Path, source: str, limits: Limits) -> Iterator[SourceRecord]:
    with path.open("rb") as handle:
        encoding = detect_encoding(handle.read(_SNIFF), path.name)
        handle.seek(0)
        plain = "utf-8" if encoding == "utf-8-sig" else encoding
        number = 0
        while line := handle.readline(limits.record_bytes + 1):
            number += 1
            if len(line) > limits.record_bytes and not line.endswith(b"\n"):
                reason = line_too_long(len(line) + _skip_rest_of_line(handle), limits)
                yield unparseable(source, path.name, f"line {number}", line[: limits.record_bytes], reason)
                continue
            raw = line.rstrip(b"\r\n")
            if number == 1:  # its byte order mark is no part of the first record
                raw = raw.removeprefix(BOM).removeprefix(GB18030_BOM)
            try:
                text = raw.decode(plain)
            except UnicodeDecodeError:
                text = raw.decode(plain, errors="replace")  # the mojibake check reports it
            if not text.strip():
                continue
            try:
                value = _DECODER.decode(text)
            except json.JSONDecodeError as exc:
                reason = Message("reader.invalid-json-line", {"column": exc.colno, "error": exc.msg})
                yield unparseable(source, path.name, f"line {number}", raw, reason)
                continue
            except RecursionError:
                reason = Message("reader.nested-too-deep", {"where": _WHOLE, "limit": limits.depth})
                yield unparseable(source, path.name, f"line {number}", raw, reason)
                continue
            yield _record(source, path.name, f"line {number}", value, raw, limits, text)


def _skip_rest_of_line(handle: Any) -> int:
    """Read past the rest of an over-long line in bounded chunks; how many bytes it had."""
    skipped = 0
    while chunk := handle.readline(1 << 20):
        skipped += len(chunk)
        if chunk.endswith(b"\n"):
            break
    return skipped


# -- records ----------------------------------------------------------------------------------

#: what a JSON value that is not an object is (numbers are the rest)
_KINDS = {
    list: "reader.json-array",
    str: "reader.json-string",
    bool: "reader.json-boolean",
    type(None): "reader.json-null",
}
#: the record itself, where a problem sits at its top level
_WHOLE = Message("reader.the-record")


#: text in a record that may hide a problem (a control character, raw or escaped; a surrogate
#: escape, which may stand alone; NaN, Infinity, an overflowing exponent, a very long number);
#: a record without any is clean unless nested, so most records skip the walk
_SUSPECT = re.compile(
    r"[\x00-\x08\x0b\x0c\x0e-\x1f]|\\u00[01]|\\u[dD][89a-fA-F]|NaN|Infinity|[eE][+-]?\d{3}|\d{"
    + str(MAX_NUMBER_CHARS + 1)
    + "}"
)


def _plainly_clean(value: dict[str, Any], text: str, limits: Limits) -> bool:
    """True when a flat record's text shows none of the problems ``value_problems`` looks for:
    the fast path that keeps a 16 MB document within the time budget."""
    if type(value) is not dict or len(text) > limits.cell_chars or _SUSPECT.search(text):
        return False
    return not any(isinstance(item, (dict, list)) for item in value.values())


def _record(
    source: str, file: str, location: str, value: Any, raw: bytes, limits: Limits, text: str | None = None
) -> SourceRecord:
    if not isinstance(value, dict):
        kind = Message(_KINDS.get(type(value), "reader.json-number"))
        reason = Message("reader.not-an-object", {"kind": kind})
        return unparseable(source, file, location, raw, reason)
    if len(raw) > limits.record_bytes:
        reason = Message("reader.record-too-large", {"size": len(raw), "limit": limits.record_bytes})
        return unparseable(source, file, location, raw, reason)
    problem = None if text is not None and _plainly_clean(value, text, limits) else value_problems(value, limits)
    if problem is not None:
        return unparseable(source, file, location, raw, problem)
    return SourceRecord(source, file, location, value, raw, "field", shape_of(value))


def value_problems(record: dict[str, Any], limits: Limits) -> Message | None:
    """The first thing in a decoded record that FHIR cannot hold or the reader will not pass
    on, naming where it sits (``output.baseinfo.psn_name``); walked without recursion, so
    however deep the record, the answer is a problem, never a RecursionError."""
    stack: list[tuple[Any, str, int]] = [(record, "", 0)]
    while stack:
        value, path, depth = stack.pop()
        where: str | Message = path or _WHOLE
        if isinstance(value, (dict, list)):
            if depth >= limits.depth:
                return Message("reader.nested-too-deep", {"where": where, "limit": limits.depth})
            if isinstance(value, _Duplicated):
                return Message("reader.duplicate-key", {"where": where, "key": value.duplicates[0]})
            if isinstance(value, dict):
                for key, item in value.items():
                    inner = f"{path}.{key}" if path else key
                    problem = value_problem(Message("reader.key-of", {"where": where}), key, limits)
                    if problem is not None:
                        return problem
                    stack.append((item, inner, depth + 1))
            else:  # a list is never the record itself, so it has a path
                stack.extend((item, f"{path}[{index}]", depth + 1) for index, item in enumerate(value))
        elif isinstance(value, _Huge):
            return Message("reader.number-too-long", {"where": where, "chars": len(value), "limit": MAX_NUMBER_CHARS})
        elif isinstance(value, str):
            problem = value_problem(where, value, limits)
            if problem is not None:
                return problem
        elif isinstance(value, float) and not math.isfinite(value):
            kind = "NaN" if math.isnan(value) else "Infinity"
            return Message("reader.not-finite", {"where": where, "value": kind})
    return None


def shape_of(record: dict[str, Any]) -> frozenset[str]:
    """Top-level keys, and the keys of object-valued members as ``member.key``."""
    keys = set(record)
    for key, value in record.items():
        if isinstance(value, dict):
            keys.update(f"{key}.{inner}" for inner in value)
    return frozenset(keys)

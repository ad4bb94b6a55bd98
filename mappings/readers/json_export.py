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
  record that merely has a list-valued ``data`` field is not taken apart;
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

Encoding: UTF-8 with or without BOM, else GB18030.  Control characters inside strings are
accepted (``strict=False``): legacy exports write raw tabs and newlines into free text.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mappings.readers import ReaderError
from mappings.readers.csv_export import detect_encoding
from mappings.records import SourceRecord, unparseable

#: the shape of a record that is not a JSON object; no spec may match it
#: members of a wrapper object that may hold the list of records
LIST_KEYS = ("data", "rows", "records", "list")
_SNIFF = 1 << 16
_WHITESPACE = re.compile(r"[ \t\n\r]*")
_DECODER = json.JSONDecoder(strict=False)

Span = tuple[Any, int, int]  # value, start and end offsets in the decoded text


def read_json(path: Path, source: str) -> Iterator[SourceRecord]:
    if path.suffix.lower() == ".ndjson":
        return _read_lines(path, source)
    return _read_document(path, source)


# -- .json ------------------------------------------------------------------------------------
def _read_document(path: Path, source: str) -> Iterator[SourceRecord]:
    data = path.read_bytes()
    encoding = detect_encoding(data)  # the whole file: a GB18030 character may sit anywhere
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as exc:
        raise ReaderError(f"{path.name}: not UTF-8 or GB18030 (byte {exc.start})") from exc
    try:
        _DECODER.decode(text)
    except json.JSONDecodeError as exc:
        raise ReaderError(f"{path.name}: invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}") from exc
    spans = _record_spans(text)
    if spans is None:
        raise ReaderError(f"{path.name}: the JSON holds neither an object nor an array of records")
    plain = "utf-8" if encoding == "utf-8-sig" else encoding
    return _records(path.name, source, text, spans, plain)


def _records(name: str, source: str, text: str, spans: list[Span], encoding: str) -> Iterator[SourceRecord]:
    for number, (value, start, end) in enumerate(spans, start=1):
        yield _record(source, name, f"record {number}", value, text[start:end].encode(encoding))


def _record_spans(text: str) -> list[Span] | None:
    """The records of a document (see the module docstring), each with its text span."""
    start = _skip(text, 0)
    if text.startswith("[", start):
        return _array_items(text, start)
    if not text.startswith("{", start):
        return None
    members = _object_members(text, start)
    found = _wrapped_list(text, members)
    if found is not None:
        return found
    value, end = _DECODER.raw_decode(text, start)
    return [(value, start, end)]


def _wrapped_list(text: str, members: dict[str, Span]) -> list[Span] | None:
    """The record list of a wrapper object, or None when the object is a record itself."""
    for key in LIST_KEYS:
        if key not in members or not _others_are_scalars(members, key):
            continue
        value, start, _ = members[key]
        if isinstance(value, list):
            return _array_items(text, start)
        if key == "data" and isinstance(value, dict):
            inner = _object_members(text, start)
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


def _object_members(text: str, position: int) -> dict[str, Span]:
    """Members of the (already validated) object starting at ``position``, with value spans."""
    members: dict[str, Span] = {}
    position = _skip(text, position + 1)
    if text.startswith("}", position):
        return members
    while True:
        key, end = _DECODER.raw_decode(text, position)
        position = _skip(text, _skip(text, end) + 1)  # the colon
        value, end = _DECODER.raw_decode(text, position)
        members[key] = (value, position, end)
        position = _skip(text, end)
        if text.startswith("}", position):
            return members
        position = _skip(text, position + 1)  # the comma


# -- .ndjson ----------------------------------------------------------------------------------
def _read_lines(path: Path, source: str) -> Iterator[SourceRecord]:
    with path.open("rb") as handle:
        encoding = detect_encoding(handle.read(_SNIFF))
        handle.seek(0)
        plain = "utf-8" if encoding == "utf-8-sig" else encoding
        for number, line in enumerate(handle, start=1):
            raw = line.rstrip(b"\r\n")
            if number == 1 and encoding == "utf-8-sig":
                raw = raw.removeprefix(b"\xef\xbb\xbf")
            try:
                text = raw.decode(plain)
            except UnicodeDecodeError:
                text = raw.decode(plain, errors="replace")  # the mojibake check reports it
            if not text.strip():
                continue
            try:
                value = _DECODER.decode(text)
            except json.JSONDecodeError as exc:
                yield unparseable(
                    source, path.name, f"line {number}", raw, f"invalid JSON, column {exc.colno}: {exc.msg}"
                )
                continue
            yield _record(source, path.name, f"line {number}", value, raw)


# -- records ----------------------------------------------------------------------------------


def _record(source: str, file: str, location: str, value: Any, raw: bytes) -> SourceRecord:
    if not isinstance(value, dict):
        kind = {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(type(value), "a number")
        return unparseable(source, file, location, raw, f"{kind}, not a JSON object")
    return SourceRecord(source, file, location, value, raw, "field", shape_of(value))


def shape_of(record: dict[str, Any]) -> frozenset[str]:
    """Top-level keys, and the keys of object-valued members as ``member.key``."""
    keys = set(record)
    for key, value in record.items():
        if isinstance(value, dict):
            keys.update(f"{key}.{inner}" for inner in value)
    return frozenset(keys)

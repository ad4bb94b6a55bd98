"""What every reader yields: one legacy record with its fields and where it came from."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mappings.conceptmaps import message_catalog


@dataclass(frozen=True, slots=True)
class FieldRef:
    """The legacy origin of a value: file, record location and field (column, field or XPath)."""

    file: str
    location: str
    field: str
    label: str = "column"

    def __str__(self) -> str:
        return f"{self.file} {self.location}, {self.label} {self.field}"


@dataclass(slots=True)
class SourceRecord:
    source: str
    file: str
    #: "row 17", "message 3", "record 2": where the record sits in its file
    location: str
    fields: dict[str, Any]
    #: the record's original bytes, kept for quarantine and replay
    raw: bytes
    #: what a field is called in this format: "column", "field", "XPath"
    field_label: str = "column"
    #: header or structure information the specs select on (CSV header, JSON root keys …)
    shape: frozenset[str] = field(default_factory=frozenset)
    #: keys that offer a value already given under another key (HL7 ``PID-3[ID].1`` is
    #: ``PID-3~2.1``): reading either reads both, and only the canonical key is reported unused
    views: dict[str, str] = field(default_factory=dict)
    #: what the reader skipped: the hidden sheets of an .xlsx (``reader.hidden-sheet``,
    #: ``reader.very-hidden-sheet``) and the lines above the header it took for titles (a title
    #: merged across the sheet, an export date: ``reader.title-line``), one tuple shared by the
    #: records under that header, told once per file at the end of a run
    skipped: tuple[Message, ...] = ()
    #: which row the reader took for the header and why (``reader.header-row``: an .xlsx
    #: sheet's header may sit under title lines or group titles), told when no spec matches
    #: the columns it names; None where the header is the file's first line
    header: Message | None = None

    def ref(self, name: str) -> FieldRef:
        return FieldRef(self.file, self.location, name, self.field_label)

    def valued_fields(self) -> list[str]:
        """The names of the fields that hold a value (an empty cell is no value); a JSON object
        is named by its members, dotted (``address.areaCode``), so a member no rule read is told
        and not hidden by a sibling that was read.  A list is one field."""
        return [name for key, value in self.fields.items() for name in _valued(key, value)]


def _valued(name: str, value: Any) -> list[str]:
    if isinstance(value, dict):
        return [inner for key, member in value.items() for inner in _valued(f"{name}.{key}", member)]
    return [] if value in (None, "") else [name]


class TemplateParams(dict[str, Any]):
    """Template parameters; a placeholder nobody filled stays visible instead of raising."""

    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


#: what FHIR strings forbid: characters below U+0020 other than tab, line feed and carriage
#: return; and what is no text at all, half of a UTF-16 surrogate pair (a JSON ``\\ud800``
#: escape alone), which no encoding writes: the store and the quarantine, which keep records as
#: UTF-8 JSON, could not hold the record, and a run stopped on it
NOT_TEXT = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff]")


def visible(text: str) -> str:
    """``text`` with each character no text may hold written as its code point (``U+0000``):
    a reason quoting what it refused (an unknown escape ``\\Z<NUL>\\``, a character set) is
    kept in the quarantine, and PostgreSQL's JSON refuses a NUL, which failed the whole batch
    and left an MLLP message answered "store busy" however often it was sent again."""
    return NOT_TEXT.sub(lambda found: f"U+{ord(found.group()):04X}", text) if NOT_TEXT.search(text) else text


@dataclass(frozen=True, slots=True)
class Message:
    """A message of the catalogue (``mappings/messages.json``): its stable id and template
    parameters, worded only when someone reads it, in the reader's language.  A parameter may
    be a message itself (the problem of a cell inside "row 5: …"), worded in the same language.
    Readers know no user, so they say what went wrong as a message, never as text."""

    id: str
    params: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if any(isinstance(value, str) and NOT_TEXT.search(value) for value in self.params.values()):
            shown = {k: visible(v) if isinstance(v, str) else v for k, v in self.params.items()}
            object.__setattr__(self, "params", shown)

    def text(self, lang: str) -> str:
        """The message in ``lang`` (``zh-CN`` or ``en``; English when the catalogue lacks it)."""
        entry = message_catalog().get(self.id)
        if entry is None:
            return self.id
        words = {k: v.text(lang) if isinstance(v, Message) else v for k, v in self.params.items()}
        return entry.get(lang, entry["en"]).format_map(TemplateParams(words))

    def to_json(self) -> dict[str, Any]:
        """The message as JSON (nested messages too), as a record's field keeps it: quarantine
        entries store fields as JSON and replay reads them back with :meth:`from_json`."""
        params = {k: v.to_json() if isinstance(v, Message) else v for k, v in self.params.items()}
        return {"id": self.id, "params": params}

    @classmethod
    def from_json(cls, value: Mapping[str, Any]) -> Message:
        params = {k: cls.from_json(v) if _is_message(v) else v for k, v in value["params"].items()}
        return cls(value["id"], params)


def _is_message(value: Any) -> bool:
    return isinstance(value, Mapping) and set(value) == {"id", "params"}


#: the only field of a record its reader cannot parse; no spec matches its shape
UNPARSEABLE = "UNPARSEABLE"


def unparseable(
    source: str, file: str, location: str, raw: bytes, reason: Message, label: str = "field"
) -> SourceRecord:
    """A record no spec matches: its only field says why, and its bytes are kept, so it goes
    to the quarantine like any bad record instead of being lost with its file.  The reason is
    kept as JSON (:meth:`Message.to_json`), so a quarantined record replays as it was read."""
    return SourceRecord(source, file, location, {UNPARSEABLE: reason.to_json()}, raw, label, frozenset({UNPARSEABLE}))


def unparseable_text(reason: Any, lang: str) -> str:
    """The ``UNPARSEABLE`` field's reason in ``lang``.  A record quarantined before reasons
    were catalogued holds plain English text: it is shown as it is."""
    return Message.from_json(reason).text(lang) if _is_message(reason) else str(reason)

"""What every reader yields: one legacy record with its fields and where it came from."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


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

    def ref(self, name: str) -> FieldRef:
        return FieldRef(self.file, self.location, name, self.field_label)

    def valued_fields(self) -> list[str]:
        """The names of the fields that hold a value (an empty cell is no value)."""
        return [name for name, value in self.fields.items() if value not in (None, "")]


#: the only field of a record its reader cannot parse; no spec matches its shape
UNPARSEABLE = "UNPARSEABLE"


def unparseable(source: str, file: str, location: str, raw: bytes, reason: str, label: str = "field") -> SourceRecord:
    """A record no spec matches: its only field says why, and its bytes are kept, so it goes
    to the quarantine like any bad record instead of being lost with its file."""
    return SourceRecord(source, file, location, {UNPARSEABLE: reason}, raw, label, frozenset({UNPARSEABLE}))

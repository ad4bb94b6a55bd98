"""The quarantine: every record that did not become valid FHIR, with every reason and its bytes.

One JSON line per record: where it came from (source, file, location), the spec that tried
it, each reason (message id, zh-CN and English text, FHIRPath and legacy field when known),
the parsed fields and shape needed to replay it, and the original bytes (base64).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any

from mappings.engine import content_digest
from mappings.readers.hl7v2 import read_message
from mappings.records import UNPARSEABLE, SourceRecord


@dataclass(slots=True)
class Reason:
    """Why a record (or a part of it) was quarantined, as its sender is told it.  ``in_full``:
    the reason the rule knew, when the sender may not read the records it quotes and is told
    the ``-unseen`` sibling (gateway/security/withheld.py).  The quarantine is the operators',
    who read every record: its entry says the reason in full (``id``, ``zh-CN``, ``en``) and
    what the sender was told beside it (``told``), which a sender resending the record hears
    again (Reason.from_json), never the full one."""

    message_id: str
    text: dict[str, str]
    expression: str | None = None
    field: str | None = None
    in_full: Reason | None = None

    def to_json(self) -> dict[str, Any]:
        full = self.in_full or self
        found: dict[str, Any] = {"id": full.message_id, "zh-CN": full.text["zh-CN"], "en": full.text["en"]}
        if self.expression:
            found["fhirpath"] = self.expression
        if self.field:
            found["source"] = self.field
        if self.in_full is not None:
            found["told"] = {"id": self.message_id, "zh-CN": self.text["zh-CN"], "en": self.text["en"]}
        return found

    @classmethod
    def from_json(cls, found: dict[str, Any]) -> Reason:
        """The reason as its sender was told it, in full beside it when that was less."""
        where = (found.get("fhirpath"), found.get("source"))
        full = cls(found["id"], {"zh-CN": found["zh-CN"], "en": found["en"]}, *where)
        told = found.get("told")
        if told is None:
            return full
        return cls(told["id"], {"zh-CN": told["zh-CN"], "en": told["en"]}, *where, in_full=full)


def entry_lock(source: str, identity: str) -> str:
    """The lock of the quarantine entries of one record identity (a source key, or a content
    that no spec mapped), held by a run from the record's quarantining to its commit: two runs
    writing one entry wait for each other in the database, and one record's entry is no ledger
    record's (a message no spec takes has none; a file ingested under two names, two)."""
    return f"quarantine|{source}|{identity}"


@dataclass(slots=True)
class Entry:
    record: SourceRecord
    #: what the record is (spec and source key, or its content): one entry per identity
    identity: str
    reasons: list[Reason]
    spec: str | None = None
    #: for a partly accepted record: what of it landed (the reasons are its failed parts')
    landed: list[str] | None = None

    def to_json(self) -> dict[str, Any]:
        record = self.record
        return {
            "source": record.source,
            "identity": self.identity,
            "digest": content_digest(record),
            "file": record.file,
            "location": record.location,
            "spec": self.spec,
            "reasons": [r.to_json() for r in self.reasons],
            "fields": {k: _jsonable(v) for k, v in record.fields.items()},
            "shape": sorted(record.shape),
            "fieldLabel": record.field_label,
            "raw": base64.b64encode(record.raw).decode("ascii"),
            **({"partial": True, "landed": self.landed} if self.landed is not None else {}),
        }


def _jsonable(value: Any) -> Any:
    """Fields as JSON; spreadsheet date cells are tagged so replay gets a datetime back."""
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, datetime):
        return {"$datetime": value.isoformat()}
    if isinstance(value, date):
        return {"$date": value.isoformat()}
    if isinstance(value, time):
        return {"$time": value.isoformat()}
    return str(value)


def _revive(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"$datetime"}:
            return datetime.fromisoformat(value["$datetime"])
        if set(value) == {"$date"}:
            return date.fromisoformat(value["$date"])
        if set(value) == {"$time"}:
            return time.fromisoformat(value["$time"])
        return {k: _revive(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_revive(v) for v in value]
    return value


#: why the HL7 v2 reader refused a whole message for what its header says it is (a character
#: set, version or processing id it did not take), which a later reader may take
HEADER_REFUSALS = frozenset({"reader.hl7-charset", "reader.hl7-version", "reader.hl7-processing-id"})


def record_of(entry: dict[str, Any]) -> SourceRecord:
    """Rebuild the record a quarantine line holds, for replay.  An HL7 v2 message its header
    had refused is read again from its bytes: rebuilt from its one field, the reason, it could
    never land, though the gateway learnt its character set (an MSH-18 of ``Unicode UTF-8``)."""
    record = SourceRecord(
        source=entry["source"],
        file=entry["file"],
        location=entry["location"],
        fields={k: _revive(v) for k, v in entry["fields"].items()},
        raw=base64.b64decode(entry["raw"]),
        field_label=entry.get("fieldLabel", "column"),
        shape=frozenset(entry["shape"]),
    )
    why = record.fields.get(UNPARSEABLE)
    if not isinstance(why, dict) or why.get("id") not in HEADER_REFUSALS:
        return record
    again = read_message(record.raw, record.source, record.file)
    again.location = record.location
    return again

"""Resources many records name — an institution, a doctor, a hospital stay — kept once.

A keyed resource takes its id from its business key (see mappings/engine.py), so it may arrive
with many records: the same 养老机构 with every admission, the A01 and then the A03 of one stay.
The archive keeps one version of it.  Each arrival is merged onto the stored one element by
element: the later record's elements win (the A03's status "finished" and its period with the
discharge time replace the A01's), elements only the earlier record had are kept (the A01's
attending doctor when the A03 names none).  "Later" is the record's ``as_of`` when its spec
gives one (the HL7 event time): an A03 that reaches the gateway before its A01 still ends
finished, the A01 only filling in what the A03 did not say.  Without a time, later is the order
of arrival.  The resource lives in the store like any other; the time its stored version
speaks for is kept beside it, in the record's transaction.  (So is, for a person, the time of the
last ADT^A08 update they took: see :meth:`~gateway.ingest.identity.IdentityIndex.took_update`.)
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from gateway.storage.store import Transaction

#: times without an offset are Beijing time, as every legacy source here writes them
_CHINA = timezone(timedelta(hours=8))


def merged(tx: Transaction, resource: dict[str, Any], as_of: str | None) -> tuple[dict[str, Any], str | None] | None:
    """The stored version and this arrival merged, the later statement winning, with the time
    the result speaks for; None when the resource is new."""
    kind, resource_id = resource["resourceType"], resource["id"]
    keyed, stored_as_of = tx.keyed.as_of(kind, resource_id)
    current = tx.resources.read(kind, resource_id) if keyed else None
    if current is None or current.resource is None:
        return None
    stored = current.content
    if older(as_of, stored_as_of):
        return {**resource, **stored}, stored_as_of
    return {**stored, **resource}, as_of or stored_as_of


def older(as_of: str | None, stored_as_of: str | None) -> bool:
    """Whether a record speaks for a time before the one the stored version speaks for (never,
    when either is unknown: then the order of arrival decides)."""
    return bool(as_of and stored_as_of and _instant(as_of) < _instant(stored_as_of))


def _instant(text: str) -> datetime:
    """A FHIR date or dateTime as a comparable moment (a year or a month is its first day)."""
    moment = datetime.fromisoformat(text if len(text) > 7 else f"{text}-01-01"[:10])
    return moment if moment.tzinfo else moment.replace(tzinfo=_CHINA)

"""The audit trail: one FHIR R4 AuditEvent per request (a streamed download a second, saying
whether its body reached the client whole: :class:`Delivered`), appended to a hash chain.

Who asked (the client and its organisation, or "anonymous" with the reason it was refused),
what (the RESTful interaction or operation, the resource types, the ids or the search — with
身份证号, phones and searched-for names masked), when, with which outcome and from where.  The
API hands the worker's :class:`AuditTrail` these facts as plain values (no Flask here); the
trail stores them as a compact masked record (:func:`record_of`), which every reader — the
API, :func:`verify` — sees rendered as the AuditEvent (:func:`render`).

Tamper evidence: each stored record carries ``hash = SHA-256(prev_hash + canonical JSON)``, so a
record edited, deleted or inserted in the table breaks the chain at that point and
:func:`verify` names the first broken link.  (A chain alone cannot reveal the *last* events being
cut off; anchoring the head elsewhere — a printed or periodically exported head hash — can.)

Cost: writing one row per request would turn every read into a write transaction (on SQLite the
single write lock).  Events are instead buffered per worker process and appended in batches by a
background thread — every ``interval`` seconds or as soon as ``batch`` events wait — and flushed
when the worker exits.  The trade-off is durability: a worker killed outright (SIGKILL, a power
cut) loses the events of at most its last interval; a graceful stop loses none.
"""

from __future__ import annotations

import base64
import hashlib
import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Protocol

import orjson

from gateway.batch_writer import BatchWriter
from gateway.exchanges import type_name
from gateway.interactions import BY_METHOD, Interaction
from gateway.masking import mask_query, mask_repeated, mask_text, mask_url
from gateway.messages import Worded
from gateway.security.principal import Principal
from gateway.storage.audit_tables import CHAIN_LOCK, Sealed
from gateway.storage.resources import now_instant

log = logging.getLogger("yiyang.audit")

AUDIT_EVENT_TYPE = "http://terminology.hl7.org/CodeSystem/audit-event-type"
RESTFUL_INTERACTION = "http://hl7.org/fhir/restful-interaction"
DICOM = "http://dicom.nema.org/resources/ontology/DCM"
RESOURCE_TYPES = "http://hl7.org/fhir/resource-types"
SOURCE_TYPE = "http://terminology.hl7.org/CodeSystem/security-source-type"
#: the gateway's own code system for operation names ($everything, $export …)
OPERATION_SYSTEM = "urn:yiyang:operation"
#: the search parameters the trail answers (``gateway/api/audit.py``); any other is a 400
TRAIL_SEARCH_PARAMETERS = ("date", "agent", "entity-type", "entity", "outcome")
#: registered client ids (agent.who.identifier.system)
CLIENT_SYSTEM = "urn:yiyang:client"
ANONYMOUS = "anonymous"
#: the hash before the first event
GENESIS = ""
#: the most resources (or a Bundle's entries) one event names: a request that wrote more (an
#: $ingest of 20,000 records wrote 84,000; a batch of 10,000 entries) continues in part events
#: of as many each, appended right after it, so no row of the chain grows to megabytes (one
#: event naming them all was an 8 MB row, the batch's 2 MB)
ENTITIES_PER_EVENT = 1000
#: the event recording how a streamed file's delivery ended, after its request's own event:
#: DICOM "Export", data that left the gateway (or did not, whole)
DELIVERY_TYPE = {"system": DICOM, "code": "110106", "display": "Export"}
#: how a streamed body ended → the delivery's outcome and the message wording it: sent whole
#: (0), cut by the client (4: it closed the connection, or a write to it failed), or ended
#: by the server failing to read on (8)
DELIVERY_OUTCOMES = {
    "whole": ("0", "audit.delivery.whole"),
    "cut": ("4", "audit.delivery.cut"),
    "failed": ("8", "audit.delivery.failed"),
}


#: API endpoint name → interaction.  Kept beside the rest of the audit vocabulary (the endpoint
#: names are plain strings; see gateway/api/routes.py, bulk.py, auth.py, audit.py).
INTERACTIONS: dict[str, Interaction] = {
    "fhir.metadata": Interaction("capabilities", "R"),
    "fhir.transaction_or_batch": Interaction("transaction", "E"),  # or batch: decided by the body
    "fhir.system_history": Interaction("history-system", "R"),
    "fhir.ingest": Interaction("operation", "C", "$ingest"),
    "fhir.merge": Interaction("operation", "U", "$merge"),
    "fhir.conflicts": Interaction("operation", "R", "$identity-conflicts"),
    "mllp.message": Interaction(None, "C", "mllp"),  # an HL7 v2 message over MLLP (gateway/mllp.py)
    "fhir.search": Interaction("search-type", "E"),
    "fhir.create": Interaction("create", "C"),
    "fhir.conditional_update": Interaction("update", "U"),
    "fhir.conditional_patch": Interaction("patch", "U"),
    "fhir.conditional_delete": Interaction("delete", "D"),
    "fhir.type_history": Interaction("history-type", "R"),
    "fhir.validate_type": Interaction("operation", "E", "$validate"),
    "fhir.read": Interaction("read", "R"),
    "fhir.update": Interaction("update", "U"),
    "fhir.patch": Interaction("patch", "U"),
    "fhir.delete": Interaction("delete", "D"),
    "fhir.instance_history": Interaction("history-instance", "R"),
    "fhir.vread": Interaction("vread", "R"),
    "fhir.validate_instance": Interaction("operation", "E", "$validate"),
    "fhir.everything": Interaction("operation", "E", "$everything"),
    "fhir.document": Interaction("operation", "E", "$document"),
    "measures.evaluate_type": Interaction("operation", "E", "$evaluate-measure"),
    "measures.evaluate_instance": Interaction("operation", "E", "$evaluate-measure"),
    "reports.page": Interaction(None, "R", "report"),
    "reports.exchange": Interaction(None, "R", "report"),
    "bulk.export_system": Interaction("operation", "E", "$export"),
    "bulk.export_patients": Interaction("operation", "E", "$export"),
    "bulk.export_group": Interaction("operation", "E", "$export"),
    "bulk.export_status": Interaction("operation", "R", "$export-status"),
    "bulk.export_cancel": Interaction("operation", "D", "$export-status"),
    "bulk.export_file": Interaction("operation", "R", "$export-file"),
    "audit.search": Interaction("search-type", "E"),
    "audit.read": Interaction("read", "R"),
    "auth.smart_configuration": Interaction("capabilities", "R"),
    "auth.token": Interaction(None, "E", login=True),
}
#: endpoints whose URL names a resource type that is not in a ``kind`` view argument
FIXED_TYPES = {
    "fhir.everything": "Patient",
    "fhir.merge": "Patient",
    "bulk.export_patients": "Patient",
    "bulk.export_group": "Group",
    "audit.search": "AuditEvent",
    "audit.read": "AuditEvent",
    "audit.refuse": "AuditEvent",
}


@dataclass(frozen=True, slots=True)
class Delivered:
    """How the body of an answer streamed after its request's event ended (an export file's):
    when it began and ended, its outcome (:data:`DELIVERY_OUTCOMES`), the bytes the server
    wrote, the whole size when known, and the outcome worded in the request's language."""

    start: str
    end: str
    outcome: str
    sent: int
    size: int | None
    said: str


@dataclass(slots=True)
class RequestFacts:
    """What the API knows about one finished request, as plain values."""

    method: str
    path: str
    #: the matched endpoint ("fhir.read"), None when no route matched
    endpoint: str | None
    view_args: Mapping[str, str]
    #: query parameters (and form fields of a POST _search), _format left out
    query: Sequence[tuple[str, str]]
    status: int
    remote_addr: str | None
    principal: Principal | None
    #: why the request was refused (an OperationOutcome's message id and text), if it was
    reason: str | None = None
    #: "transaction" or "batch" for a Bundle posted to the base
    bundle_type: str | None = None
    #: Location / Content-Location of the answer: the id a create assigned
    location: str | None = None
    #: the resources a write or delete changed (``Type/id``), for one whose URL named criteria
    touched: Sequence[str] = ()
    types: list[str] = field(default_factory=list)
    #: a Bundle's entries: (method, url, status, location) each
    entries: Sequence[tuple[str, str, str, str | None]] = ()
    #: names the request in each of its events, when it has more than one (a download's
    #: answer and its delivery)
    request_id: str | None = None
    #: how the streamed body ended: the facts of the request's second event
    delivery: Delivered | None = None


def outcome_code(status: int) -> str:
    """AuditEvent.outcome from the HTTP status: 0 success, 4 minor failure (the request was
    refused or wrong: 4xx), 8 serious failure (the server failed it: 5xx), 12 major failure
    (the service was unavailable: 503)."""
    if status < 400:
        return "0"
    if status < 500:
        return "4"
    return "12" if status == 503 else "8"


def now_recorded() -> str:
    """The store's fixed-width UTC instant form, so text order is time order in searches."""
    return now_instant()


# -- the record and the AuditEvent it renders ------------------------------------------------------
def record_of(facts: RequestFacts, recorded: str) -> dict[str, Any]:
    """What the chain holds of one request: its facts, masked, under short stable keys, absent
    when empty.  Rendered as a FHIR AuditEvent whenever it is read (:func:`render`).

    Why not the AuditEvent itself: it is four times the text, and building, serialising,
    hashing and storing it for every request was most of what the audit trail cost a read.
    Nothing is lost: the event is a function of the record."""
    args = facts.view_args
    record: dict[str, Any] = {
        "recorded": recorded,
        "method": facts.method,
        # a path naming no instance (a type's search) comes back request after request
        "path": mask_text(facts.path) if "resource_id" in args else mask_repeated(facts.path),
        "status": facts.status,
    }
    if facts.endpoint:
        record["endpoint"] = facts.endpoint
    if args:  # a type's name (``kind``) comes back request after request; an id does not
        record["args"] = {
            name: mask_repeated(value) if name == "kind" else mask_text(value) for name, value in args.items()
        }
    if facts.query:
        record["query"] = mask_query(list(facts.query))
    if facts.remote_addr:
        record["address"] = facts.remote_addr
    if facts.principal is not None:
        record["client"] = _client(facts.principal)
    if facts.reason and facts.status >= 400:
        record["reason"] = mask_text(facts.reason)
    if facts.bundle_type:
        record["bundle"] = facts.bundle_type
    if facts.location:
        record["location"] = mask_text(facts.location)
    if facts.touched:
        record["touched"] = [mask_text(reference) for reference in facts.touched]
    if facts.types:  # as the client wrote them (_type=…): any text at all
        record["types"] = [mask_text(kind) for kind in facts.types]
    if facts.entries:
        record["entries"] = [
            [method, mask_url(url), status, mask_text(location) if location else None]
            for method, url, status, location in facts.entries
        ]
    if facts.request_id:  # the gateway's own hex id: nothing to mask
        record["request"] = facts.request_id
    if facts.delivery is not None:  # the gateway's own numbers and words: nothing to mask
        delivered = facts.delivery
        record["delivery"] = {
            "start": delivered.start,
            "end": delivered.end,
            "outcome": delivered.outcome,
            "sent": delivered.sent,
            "said": delivered.said,
        }
        if delivered.size is not None:
            record["delivery"]["size"] = delivered.size
    return record


@lru_cache(maxsize=1024)
def _client(who: Principal) -> dict[str, Any]:
    """Shared by every record of one principal (records are only serialised, never changed)."""
    return {"id": who.client_id, "organization": who.organization, "role": who.role, "scopes": sorted(who.scopes)}


def render(record: Mapping[str, Any]) -> dict[str, Any]:
    """The FHIR R4 AuditEvent of a stored record (its id is its seq, once it has one)."""
    endpoint = record.get("endpoint", "")
    interaction = INTERACTIONS.get(endpoint) or BY_METHOD.get(record["method"], Interaction(None, "E"))
    event: dict[str, Any] = {"resourceType": "AuditEvent"}
    if "id" in record:
        event["id"] = record["id"]
    delivery = record.get("delivery")
    if interaction.login:
        event["type"] = {"system": DICOM, "code": "110114", "display": "User Authentication"}
        event["subtype"] = [{"system": DICOM, "code": "110122", "display": "Login"}]
    else:
        event["type"] = (
            {**DELIVERY_TYPE}
            if delivery
            else {"system": AUDIT_EVENT_TYPE, "code": "rest", "display": "RESTful Operation"}
        )
        code = interaction.code
        if endpoint == "fhir.transaction_or_batch" and record.get("bundle") in ("transaction", "batch"):
            code = record["bundle"]
        subtypes = [{"system": RESTFUL_INTERACTION, "code": code, "display": code}] if code else []
        if interaction.operation:
            subtypes.append({"system": OPERATION_SYSTEM, "code": interaction.operation})
        if subtypes:
            event["subtype"] = subtypes
    event["action"] = interaction.action
    if delivery:
        event["period"] = {"start": delivery["start"], "end": delivery["end"]}
    event["recorded"] = record["recorded"]
    status = record["status"]
    event["outcome"] = _outcome(record)
    if delivery:
        event["outcomeDesc"] = delivery["said"]
    elif status >= 400:
        event["outcomeDesc"] = f"HTTP {status}" + (f": {record['reason']}" if "reason" in record else "")
    client = record.get("client")
    who = (client["id"], client["organization"], client["role"], tuple(client["scopes"])) if client else None
    event["agent"] = _agents_of(who, record.get("address"))
    event["source"] = {
        "observer": {"display": "Yiyang Gateway"},
        "type": [{"system": SOURCE_TYPE, "code": "3", "display": "Web Server"}],
    }
    entities = _entities(record) + _linked(record)
    if entities:
        event["entity"] = entities
    return event


def _linked(record: Mapping[str, Any]) -> list[dict[str, Any]]:
    """A request recorded in parts (:data:`ENTITIES_PER_EVENT`): its event names each part's,
    and each part the request's, found by seq since they were appended together, in order.
    Searched as the other entities are, from the columns :func:`seal` makes once the seqs
    are known."""
    if "parts" not in record or "id" not in record:
        return []
    seq, part, parts = int(record["id"]), record.get("part", 0), record["parts"]
    kind = {"system": RESOURCE_TYPES, "code": "AuditEvent"}
    if part:
        return [
            {"type": kind, "what": {"reference": f"AuditEvent/{seq - part}"}, "description": f"part {part}/{parts} of"}
        ]
    return [
        {"type": kind, "what": {"reference": f"AuditEvent/{seq + n}"}, "description": f"part {n}/{parts}"}
        for n in range(1, parts + 1)
    ]


def _outcome(record: Mapping[str, Any]) -> str:
    """A delivery's own outcome, else the HTTP status's."""
    delivery = record.get("delivery")
    return delivery["outcome"] if delivery else outcome_code(record["status"])


@lru_cache(maxsize=1024)
def _agents_of(who: tuple[str, str, str, tuple[str, ...]] | None, address: str | None) -> list[dict[str, Any]]:
    """The agents of every request one client makes from one address: the same each time, so
    made once and shared by the events (which are only serialised, never changed)."""
    network = {"network": {"address": address, "type": "2"}} if address else {}
    if who is None:
        return [{"who": {"display": ANONYMOUS}, "requestor": True, **network}]
    client_id, organization, role, scopes = who
    client = {
        "type": {"text": role},
        "who": {"identifier": {"system": CLIENT_SYSTEM, "value": client_id}, "display": client_id},
        "requestor": True,
        "policy": list(scopes),
        **network,
    }
    return [client, {"who": {"reference": f"Organization/{organization}"}, "requestor": False}]


def _subject(record: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """The resource type and id a request names: from its route, or the id a create was given."""
    endpoint, args = record.get("endpoint", ""), record.get("args", {})
    kind = args.get("kind") or FIXED_TYPES.get(endpoint)
    resource_id = args.get("resource_id") or args.get("event_id")
    if endpoint in ("fhir.everything", "bulk.export_group"):
        resource_id = args.get("resource_id") or args.get("group_id")
    if resource_id is None and "location" in record and kind:
        resource_id = _id_in(record["location"], kind)
    return kind, resource_id


def _named(record: Mapping[str, Any], kind: str | None, resource_id: str | None) -> list[str]:
    """The references a request read or wrote: the one its route names (a version too), or
    what a conditional write or delete changed, whose URL named criteria, or what a legacy
    file posted to ``$ingest`` wrote."""
    if kind and resource_id:
        version = record.get("args", {}).get("version")
        return [f"{kind}/{resource_id}" + (f"/_history/{version}" if version else "")]
    return list(record.get("touched", ()))


def _entities(record: Mapping[str, Any]) -> list[dict[str, Any]]:
    kind, resource_id = _subject(record)
    found: list[dict[str, Any]] = []
    if kind:
        entity_type = {"system": RESOURCE_TYPES, "code": kind}
        found += [{"type": entity_type, "what": {"reference": r}} for r in _named(record, kind, resource_id)]
        found = found or [{"type": entity_type}]
    else:  # a route naming no type that wrote resources of several ($ingest): each of its own
        found += [
            {"type": {"system": RESOURCE_TYPES, "code": r.split("/", 1)[0]}, "what": {"reference": r}}
            for r in _named(record, None, None)
        ]
    for other in record.get("types", ()):
        if other != kind:
            found.append({"type": {"system": RESOURCE_TYPES, "code": other}})
    found += [_entry_entity(*entry) for entry in record.get("entries", ())]
    query = "&".join(f"{name}={value}" for name, value in record.get("query", ()))
    # a route that names no type: described by its path; a request the HTTP server could not
    # read has neither (record_unread), and no entity
    asked = f"{record['method']} {record['path']}" if record["method"] or record["path"] else ""
    if asked and (not found or query):
        found = found or [{}]
        found[0]["description"] = asked + (f"?{query}" if query else "")
    if query:
        found[0]["query"] = base64.b64encode(query.encode()).decode()
    if "request" in record:
        found[0]["detail"] = _details(record)
    return found


def _details(record: Mapping[str, Any]) -> list[dict[str, str]]:
    """The request id each event of one request carries, and a delivery's bytes: sent, and
    of how many when known."""
    details = [{"type": "request", "valueString": record["request"]}]
    delivery = record.get("delivery")
    if delivery:
        details.append({"type": "bytes-sent", "valueString": str(delivery["sent"])})
        if "size" in delivery:
            details.append({"type": "bytes-total", "valueString": str(delivery["size"])})
    return details


def _entry_entity(method: str, url: str, status: str, location: str | None) -> dict[str, Any]:
    """One entry of a batch or transaction: what it asked, what it got (nothing when the
    Bundle was refused whole) and the resource it read or wrote (:func:`_entry_subject`)."""
    entity: dict[str, Any] = {"description": f"{method} {url} → {status}" if status else f"{method} {url}"}
    kind, reference = _entry_subject(url, location)
    if kind:
        entity["type"] = {"system": RESOURCE_TYPES, "code": kind}
    if reference:
        entity["what"] = {"reference": reference}
    return entity


def _entry_subject(url: str, location: str | None) -> tuple[str | None, str | None]:
    """The resource type and the reference (``Type/id``) of one entry of a batch or
    transaction: from the answer's location, else from an instance URL; either may be None.
    Asked by :func:`record_columns` too, which made each entry's whole entity for these two."""
    segments = (location or url).split("?", 1)[0].split("/_history", 1)[0].split("/")
    if len(segments) >= 2 and type_name(segments[-2]) != "?" and segments[-1]:
        return segments[-2], f"{segments[-2]}/{segments[-1]}"
    return (segments[-1], None) if type_name(segments[-1]) != "?" else (None, None)


def _id_in(location: str, kind: str) -> str | None:
    marker = f"/{kind}/"
    if marker not in location:
        return None
    return location.split(marker, 1)[1].split("/", 1)[0] or None


#: what reading a stored row that is no record of ours raises (a record in parts whose id is no
#: number, an event edited into no JSON): the trail was altered, see :func:`verify`
UNREADABLE = (orjson.JSONDecodeError, KeyError, TypeError, AttributeError, ValueError)


def event_of(text: str) -> dict[str, Any]:
    """The AuditEvent of a stored row: a record rendered, or — written before records, and kept
    as hashed — the AuditEvent itself."""
    stored = orjson.loads(text)
    return stored if _whole(stored) else render(stored)


def _whole(stored: Mapping[str, Any]) -> bool:
    """Whether a stored row is an AuditEvent written whole (before records), not a record."""
    return stored.get("resourceType") == "AuditEvent"


# -- the chain -----------------------------------------------------------------------------------
def canonical(record: Mapping[str, Any]) -> str:
    """The one text a record is hashed and stored as: keys sorted, no whitespace, UTF-8."""
    return orjson.dumps(record, option=orjson.OPT_SORT_KEYS).decode()


def chain(prev_hash: str, text: str) -> str:
    """hash = SHA-256(prev_hash ‖ canonical JSON), hex."""
    return hashlib.sha256((prev_hash + text).encode()).hexdigest()


Columns = tuple[str, str, str, str, str]


def record_columns(record: Mapping[str, Any]) -> Columns:
    """(recorded, agent, outcome, entity types, entities): the searchable copies of a record's
    fields, derived the same way on append and on verify — and the same as :func:`columns` of
    the AuditEvent it renders (tested), without rendering it for every request."""
    kind, resource_id = _subject(record)
    named = _named(record, kind, resource_id)
    types = [kind] if kind else list(dict.fromkeys(reference.split("/", 1)[0] for reference in named))
    types += [other for other in dict.fromkeys(record.get("types", ())) if other not in types]
    references = [reference.split("/_history/")[0] for reference in named]
    for _, url, _, location in record.get("entries", ()):
        entry_kind, reference = _entry_subject(url, location)
        if entry_kind and entry_kind not in types:
            types.append(entry_kind)
        if reference:
            references.append(reference)
    links = [entity["what"]["reference"] for entity in _linked(record)]
    if links:
        types += [] if "AuditEvent" in types else ["AuditEvent"]
        references += links
    client = record.get("client")
    return (
        record["recorded"],
        client["id"] if client else ANONYMOUS,
        _outcome(record),
        _spaced(types),
        _spaced(references),
    )


def columns(event: Mapping[str, Any]) -> Columns:
    """The searchable columns of an AuditEvent: of the events written whole, before records."""
    requestor = next((a for a in event.get("agent", []) if a.get("requestor")), {})
    who = requestor.get("who", {})
    agent = who.get("identifier", {}).get("value") or who.get("display") or ANONYMOUS
    types, references = [], []
    for entity in event.get("entity", []):
        code = entity.get("type", {}).get("code")
        if code and code not in types:
            types.append(code)
        reference = entity.get("what", {}).get("reference")
        if reference:
            references.append(reference.split("/_history/")[0])
    return event["recorded"], agent, event["outcome"], _spaced(types), _spaced(references)


def _spaced(words: list[str]) -> str:
    """The words between spaces, so that a search for " word " finds whole words only.  A NUL a
    request carried (``_type=Observation%00``) becomes U+FFFD: no PostgreSQL text holds one,
    and the row, refused, took the request's AuditEvent with it."""
    return (" " + " ".join(words) + " ").replace("\x00", "\ufffd") if words else " "


#: the id a record carries until it is appended: a JSON string no escaped value can contain
#: (quotes inside values are written \"), and the only "id" key of a record (route arguments
#: are named resource_id, event_id …)
_ID_PLACEHOLDER = '"id":"?"'


@dataclass(frozen=True, slots=True)
class Pending:
    """A record ready to be appended: its searchable columns and its canonical JSON with a
    placeholder id; for a request that wrote more than :data:`ENTITIES_PER_EVENT` resources,
    the part records that continue it, appended right after it in the same transaction (a
    part finds its request's event by its own seq less its part number)."""

    columns: Columns
    text: str
    part: int = 0
    continued: tuple[Pending, ...] = ()


#: the keys of a record whose items each name a resource: what a write touched, a Bundle's
#: entries; shared out among a request's event and its parts, in this order
_NAMING = ("touched", "entries")


def pending(facts: RequestFacts, recorded: str) -> Pending:
    record = record_of(facts, recorded)
    named = [(key, item) for key in _NAMING for item in record.get(key, ())]
    if len(named) <= ENTITIES_PER_EVENT:
        return _pending(record)
    shares = [_share(named[start : start + ENTITIES_PER_EVENT]) for start in range(0, len(named), ENTITIES_PER_EVENT)]
    parts = len(shares) - 1
    rest = {key: value for key, value in record.items() if key not in _NAMING}
    # the request's event tells every type it wrote, so that a search by type, which leaves
    # the parts out, finds it whichever part names the resources of that type
    own_types = set(_types_named(shares[0]))
    types = [
        *record.get("types", ()),
        *(kind for kind in dict.fromkeys(_types_named(record)) if kind not in own_types),
    ]
    own = _pending({**rest, **shares[0], "parts": parts, **({"types": types} if types else {})})
    continued = tuple(_pending({**rest, **share, "part": n, "parts": parts}) for n, share in enumerate(shares[1:], 1))
    return Pending(own.columns, own.text, continued=continued)


def _share(named: list[tuple[str, Any]]) -> dict[str, list[Any]]:
    """One event's share of a request's named items (:data:`_NAMING`), under their keys."""
    share: dict[str, list[Any]] = {}
    for key, item in named:
        share.setdefault(key, []).append(item)
    return share


def _types_named(record: Mapping[str, Any]) -> Iterator[str]:
    """The types of the resources a record's touched references and entries name."""
    yield from (reference.split("/", 1)[0] for reference in record.get("touched", ()))
    for _, url, _, location in record.get("entries", ()):
        kind, _ = _entry_subject(url, location)
        if kind:
            yield kind


def _pending(record: Mapping[str, Any]) -> Pending:
    return Pending(record_columns(record), canonical({**record, "id": "?"}), record.get("part", 0))


def seal(seq: int, prev_hash: str, waiting: Pending) -> Sealed:
    """Give a record its place in the chain: its id is its seq, its hash covers the previous
    hash and its canonical JSON (which includes the id, so a record moved elsewhere in the
    chain no longer matches its hash)."""
    text = waiting.text.replace(_ID_PLACEHOLDER, f'"id":"{seq}"', 1)
    # a request in parts and its parts name each other by seq: their columns are made now
    found = record_columns(orjson.loads(text)) if waiting.part or waiting.continued else waiting.columns
    return (*found, text, chain(prev_hash, text), waiting.part)


class _Chained(Protocol):
    def transaction(self) -> Any: ...
    def reading(self) -> Any: ...


@dataclass(frozen=True, slots=True)
class Verdict:
    events: int
    first: str | None = None
    last: str | None = None
    #: the first broken link, and what differs there (worded in the reader's language)
    broken_seq: int | None = None
    problem: Worded | None = None
    #: the newest event verified: what an operator keeps elsewhere as an anchor
    head_seq: int = 0
    head_hash: str = GENESIS

    @property
    def intact(self) -> bool:
        return self.broken_seq is None


def verify(store: _Chained, anchors: Mapping[int, str] | None = None) -> Verdict:
    """Walk the chain from the first event: every seq present in order, every prev_hash the
    hash of the event before, every hash the hash of its own content, every searchable column
    a copy of its event.  Stops at the first broken link.

    The chain alone cannot tell a trail rewritten whole (every hash recomputed) or cut off at
    its newest end from an honest one: ``anchors`` (seq → hash, heads an operator kept
    elsewhere from earlier runs) must each still be in the chain, unchanged."""
    anchors = anchors or {}
    count, first, last, prev_seq, prev_hash = 0, None, None, 0, GENESIS
    with store.reading() as tx:
        for row in tx.audit.walk():
            expected = prev_seq + 1
            if row.seq != expected:
                missing = f"{expected}" if row.seq == expected + 1 else f"{expected}–{row.seq - 1}"
                problem = Worded("audit.chain.missing", missing=missing, seq=row.seq, previous=prev_seq)
                return Verdict(count, first, last, expected, problem)
            if row.prev_hash != prev_hash:
                return Verdict(count, first, last, row.seq, Worded("audit.chain.prev-hash"))
            if chain(prev_hash, row.event) != row.hash:
                return Verdict(count, first, last, row.seq, Worded("audit.chain.edited"))
            if anchors.get(row.seq, row.hash) != row.hash:
                return Verdict(count, first, last, row.seq, Worded("audit.chain.anchor-differs"))
            try:
                stored = orjson.loads(row.event)
                derived = (
                    stored["id"],
                    *(columns(stored) if _whole(stored) else record_columns(stored)),
                    0 if _whole(stored) else stored.get("part", 0),
                )
            except UNREADABLE:
                return Verdict(count, first, last, row.seq, Worded("audit.chain.unreadable"))
            kept = (str(row.seq), row.recorded, row.agent, row.outcome, row.entity_types, row.entities, row.part)
            if derived != kept:
                names = ("id", "recorded", "agent", "outcome", "entity_types", "entities", "part")
                differs = ", ".join(n for n, a, b in zip(names, derived, kept, strict=True) if a != b)
                return Verdict(count, first, last, row.seq, Worded("audit.chain.column-differs", columns=differs))
            count += 1
            first = first or row.recorded
            last = row.recorded
            prev_seq, prev_hash = row.seq, row.hash
    beyond = sorted(seq for seq in anchors if seq > prev_seq)
    if beyond:
        problem = Worded("audit.chain.cut-off", anchored=beyond[0], last=prev_seq)
        return Verdict(count, first, last, beyond[0], problem, prev_seq, prev_hash)
    return Verdict(count, first, last, head_seq=prev_seq, head_hash=prev_hash)


# -- buffering -------------------------------------------------------------------------------------
#: a request as its hook left it: the facts and when it was answered
Waiting = tuple[RequestFacts, str]


class AuditTrail(BatchWriter[Pending | Waiting]):
    """One worker's buffer of events (see ``gateway/batch_writer.py``), each batch appended in
    one transaction holding the chain lock, so the chain stays one line across worker processes.

    A request only leaves its facts and the time; masking, the record, its columns and JSON
    are made on the buffer's thread, where they no longer add to the answer's latency."""

    def __init__(self, store: _Chained, interval: float = 0.2, batch: int = 1000, limit: int = 100_000) -> None:
        super().__init__("audit", interval, batch, limit)
        self.store = store

    def record(self, facts: RequestFacts, recorded: str | None = None) -> None:  # type: ignore[override]
        super().record((facts, recorded or now_recorded()))

    def _prepare(self, item: Pending | Waiting) -> Pending | Waiting:
        return item if isinstance(item, Pending) else pending(*item)

    def _write(self, events: list[Pending | Waiting]) -> None:
        with self.store.transaction() as tx:
            tx.lock(CHAIN_LOCK)
            # a request and its parts in one append: consecutive in the chain, whatever another
            # worker appends
            flat = [row for event in events for row in (event, *event.continued)]  # type: ignore[union-attr]
            tx.audit.append(flat, seal)

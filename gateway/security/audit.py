"""The audit trail: one FHIR R4 AuditEvent per request, appended to a hash chain.

Who asked (the client and its organisation, or "anonymous" with the reason it was refused),
what (the RESTful interaction or operation, the resource types, the ids or the search — with
身份证号, phones and searched-for names masked), when, with which outcome and from where.  The
API builds the event from plain values (no Flask here) and hands it to the worker's
:class:`AuditTrail`.

Tamper evidence: each stored event carries ``hash = SHA-256(prev_hash + canonical JSON)``, so an
event edited, deleted or inserted in the table breaks the chain at that point and
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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Protocol

import orjson

from gateway.batch_writer import BatchWriter
from gateway.masking import mask_query, mask_text
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
#: registered client ids (agent.who.identifier.system)
CLIENT_SYSTEM = "urn:yiyang:client"
ANONYMOUS = "anonymous"
#: the hash before the first event
GENESIS = ""


@dataclass(frozen=True, slots=True)
class Interaction:
    """How an endpoint is recorded: restful-interaction code (or None), DICOM event type for
    non-REST events, action (C R U D E) and operation name."""

    code: str | None
    action: str
    operation: str | None = None
    login: bool = False


#: API endpoint name → interaction.  Kept beside the rest of the audit vocabulary (the endpoint
#: names are plain strings; see gateway/api/routes.py, bulk.py, auth.py, audit.py).
INTERACTIONS: dict[str, Interaction] = {
    "fhir.metadata": Interaction("capabilities", "R"),
    "fhir.transaction_or_batch": Interaction("transaction", "E"),  # or batch: decided by the body
    "fhir.system_history": Interaction("history-system", "R"),
    "fhir.ingest": Interaction("operation", "C", "$ingest"),
    "fhir.search": Interaction("search-type", "E"),
    "fhir.create": Interaction("create", "C"),
    "fhir.conditional_update": Interaction("update", "U"),
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
#: an unknown route (404) or a method no route takes: recorded by its HTTP method
BY_METHOD = {
    "GET": Interaction("read", "R"),
    "HEAD": Interaction("read", "R"),
    "POST": Interaction("create", "C"),
    "PUT": Interaction("update", "U"),
    "PATCH": Interaction("patch", "U"),
    "DELETE": Interaction("delete", "D"),
}
#: endpoints whose URL names a resource type that is not in a ``kind`` view argument
FIXED_TYPES = {
    "fhir.everything": "Patient",
    "bulk.export_patients": "Patient",
    "bulk.export_group": "Group",
    "audit.search": "AuditEvent",
    "audit.read": "AuditEvent",
    "audit.refuse": "AuditEvent",
}


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
    types: list[str] = field(default_factory=list)


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


def build_event(facts: RequestFacts, recorded: str | None = None) -> dict[str, Any]:
    """The FHIR R4 AuditEvent of one request."""
    endpoint = facts.endpoint or ""
    interaction = INTERACTIONS.get(endpoint) or BY_METHOD.get(facts.method, Interaction(None, "E"))
    # the id is the event's place in the chain, given when it is appended
    event: dict[str, Any] = {"resourceType": "AuditEvent"}
    if interaction.login:
        event["type"] = {"system": DICOM, "code": "110114", "display": "User Authentication"}
        event["subtype"] = [{"system": DICOM, "code": "110122", "display": "Login"}]
    else:
        event["type"] = {"system": AUDIT_EVENT_TYPE, "code": "rest", "display": "RESTful Operation"}
        code = interaction.code
        if endpoint == "fhir.transaction_or_batch" and facts.bundle_type in ("transaction", "batch"):
            code = facts.bundle_type
        subtypes = [{"system": RESTFUL_INTERACTION, "code": code, "display": code}] if code else []
        if interaction.operation:
            subtypes.append({"system": OPERATION_SYSTEM, "code": interaction.operation})
        if subtypes:
            event["subtype"] = subtypes
    event["action"] = interaction.action
    event["recorded"] = recorded or now_recorded()
    event["outcome"] = outcome_code(facts.status)
    if facts.status >= 400:
        description = f"HTTP {facts.status}" + (f": {facts.reason}" if facts.reason else "")
        event["outcomeDesc"] = mask_text(description)
    event["agent"] = _agents(facts)
    event["source"] = {
        "observer": {"display": "Yiyang Gateway"},
        "type": [{"system": SOURCE_TYPE, "code": "3", "display": "Web Server"}],
    }
    entities = _entities(facts, endpoint)
    if entities:
        event["entity"] = entities
    return event


def _agents(facts: RequestFacts) -> list[dict[str, Any]]:
    return _agents_of(facts.principal, facts.remote_addr)


@lru_cache(maxsize=1024)
def _agents_of(who: Principal | None, address: str | None) -> list[dict[str, Any]]:
    """The agents of every request one client makes from one address: the same each time, so
    made once and shared by the events (which are only serialised, never changed)."""
    network = {"network": {"address": address, "type": "2"}} if address else {}
    if who is None:
        return [{"who": {"display": ANONYMOUS}, "requestor": True, **network}]
    client = {
        "type": {"text": who.role},
        "who": {"identifier": {"system": CLIENT_SYSTEM, "value": who.client_id}, "display": who.client_id},
        "requestor": True,
        "policy": sorted(who.scopes),
        **network,
    }
    organization = {"who": {"reference": f"Organization/{who.organization}"}, "requestor": False}
    return [client, organization]


def _entities(facts: RequestFacts, endpoint: str) -> list[dict[str, Any]]:
    kind = facts.view_args.get("kind") or FIXED_TYPES.get(endpoint)
    resource_id = facts.view_args.get("resource_id") or facts.view_args.get("event_id")
    if endpoint in ("fhir.everything", "bulk.export_group"):
        resource_id = facts.view_args.get("resource_id") or facts.view_args.get("group_id")
    if resource_id is None and facts.location and kind:
        resource_id = _id_in(facts.location, kind)
    found: list[dict[str, Any]] = []
    if kind:
        entity: dict[str, Any] = {"type": {"system": RESOURCE_TYPES, "code": kind}}
        if resource_id:
            reference = f"{kind}/{resource_id}"
            if facts.view_args.get("version"):
                reference += f"/_history/{facts.view_args['version']}"
            entity["what"] = {"reference": mask_text(reference)}
        found.append(entity)
    for other in facts.types:
        if other != kind:
            found.append({"type": {"system": RESOURCE_TYPES, "code": other}})
    query = "&".join(f"{name}={value}" for name, value in mask_query(list(facts.query)))
    if found and not query:
        return found
    if not found:
        found.append({})  # a route that names no type: described by its path
    found[0]["description"] = f"{facts.method} {mask_text(facts.path)}" + (f"?{query}" if query else "")
    if query:
        found[0]["query"] = base64.b64encode(query.encode()).decode()
    return found


def _id_in(location: str, kind: str) -> str | None:
    marker = f"/{kind}/"
    if marker not in location:
        return None
    return location.split(marker, 1)[1].split("/", 1)[0] or None


# -- the chain -----------------------------------------------------------------------------------
def canonical(event: Mapping[str, Any]) -> str:
    """The one text an event is hashed and stored as: keys sorted, no whitespace, UTF-8."""
    return orjson.dumps(event, option=orjson.OPT_SORT_KEYS).decode()


def chain(prev_hash: str, text: str) -> str:
    """hash = SHA-256(prev_hash ‖ canonical JSON), hex."""
    return hashlib.sha256((prev_hash + text).encode()).hexdigest()


def columns(event: Mapping[str, Any]) -> tuple[str, str, str, str, str]:
    """(recorded, agent, outcome, entity types, entities): the searchable copies of an event's
    fields, derived the same way on append and on verify."""
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
    return (
        event["recorded"],
        agent,
        event["outcome"],
        " " + " ".join(types) + " " if types else " ",
        " " + " ".join(references) + " " if references else " ",
    )


#: the id an event carries until it is appended: a JSON string no escaped value can contain
#: (quotes inside values are written \"), and the only "id" key of an AuditEvent as built here
_ID_PLACEHOLDER = '"id":"?"'


@dataclass(frozen=True, slots=True)
class Pending:
    """An event waiting in the buffer: its searchable columns and its canonical JSON with a
    placeholder id.  Kept as strings, not as the nested dicts, so a full buffer adds nothing
    for the garbage collector to traverse on every request."""

    columns: tuple[str, str, str, str, str]
    text: str


def pending(event: dict[str, Any]) -> Pending:
    return Pending(columns(event), canonical({**event, "id": "?"}))


def seal(seq: int, prev_hash: str, waiting: Pending) -> Sealed:
    """Give an event its place in the chain: its id is its seq, its hash covers the previous
    hash and its canonical JSON (which includes the id, so an event moved elsewhere in the
    chain no longer matches its hash)."""
    text = waiting.text.replace(_ID_PLACEHOLDER, f'"id":"{seq}"', 1)
    return (*waiting.columns, text, chain(prev_hash, text))


class _Chained(Protocol):
    def transaction(self) -> Any: ...
    def reading(self) -> Any: ...


@dataclass(frozen=True, slots=True)
class Verdict:
    events: int
    first: str | None = None
    last: str | None = None
    #: the first broken link, and what differs there
    broken_seq: int | None = None
    problem: str | None = None

    @property
    def intact(self) -> bool:
        return self.broken_seq is None


def verify(store: _Chained) -> Verdict:
    """Walk the chain from the first event: every seq present in order, every prev_hash the
    hash of the event before, every hash the hash of its own content, every searchable column
    a copy of its event.  Stops at the first broken link."""
    count, first, last, prev_seq, prev_hash = 0, None, None, 0, GENESIS
    with store.reading() as tx:
        for row in tx.audit.walk():
            expected = prev_seq + 1
            if row.seq != expected:
                missing = f"{expected}" if row.seq == expected + 1 else f"{expected}–{row.seq - 1}"
                return Verdict(
                    count,
                    first,
                    last,
                    expected,
                    f"event seq {missing} is missing (deleted); seq {row.seq} follows seq {prev_seq}",
                )
            if row.prev_hash != prev_hash:
                problem = "prev_hash differs from the hash of the event before it (removed, inserted or rehashed)"
                return Verdict(count, first, last, row.seq, problem)
            if chain(prev_hash, row.event) != row.hash:
                return Verdict(count, first, last, row.seq, "the event differs from what was hashed (edited)")
            try:
                event = orjson.loads(row.event)
                derived = (event["id"], *columns(event))
            except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError):
                return Verdict(count, first, last, row.seq, "the event is not a readable AuditEvent")
            stored = (str(row.seq), row.recorded, row.agent, row.outcome, row.entity_types, row.entities)
            if derived != stored:
                names = ("id", "recorded", "agent", "outcome", "entity_types", "entities")
                differs = ", ".join(n for n, a, b in zip(names, derived, stored, strict=True) if a != b)
                return Verdict(count, first, last, row.seq, f"the {differs} column differs from the event (edited)")
            count += 1
            first = first or row.recorded
            last = row.recorded
            prev_seq, prev_hash = row.seq, row.hash
    return Verdict(count, first, last)


# -- buffering -------------------------------------------------------------------------------------
class AuditTrail(BatchWriter[Pending]):
    """One worker's buffer of events (see ``gateway/batch_writer.py``), each batch appended in
    one transaction holding the chain lock, so the chain stays one line across worker processes."""

    def __init__(self, store: _Chained, interval: float = 0.2, batch: int = 1000, limit: int = 100_000) -> None:
        super().__init__("audit", interval, batch, limit)
        self.store = store

    def record(self, event: dict[str, Any]) -> None:  # type: ignore[override]
        super().record(pending(event))

    def _write(self, events: list[Pending]) -> None:
        with self.store.transaction() as tx:
            tx.lock(CHAIN_LOCK)
            tx.audit.append(events, seal)

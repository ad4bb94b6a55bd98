"""HL7 v2 over MLLP: hospital interface engines send ADT messages on a socket, one per frame
(``\\x0b`` message ``\\x1c\\r``), and wait for an ACK.

Each message is persisted before it is acknowledged: mapped into the store or quarantined with
its bytes, committed, and only then answered — AA when it landed (with warning ERR segments
for independent parts quarantined alone, such as an IN1 without its 医保 fields, and for optional
qualifiers left out as FHIR has no code for them, such as an answering service's XTN.2 ASN), AE (with an
ERR segment per reason, its HL7 table 0357 code where one fits, then the warnings of the
qualifiers left out) when its content was refused and it was quarantined, AR when it is not an HL7 message at all, of a type or event no mapping
spec takes, or its header says it is not for this archive (a version, processing id or
character set the reader refuses) — it is quarantined too: nothing sent to the gateway is lost.
If the store cannot commit, the answer is AR with "store busy" (0357 code 206) and nothing was
kept, so the sender's retry is safe.  A message sent again after a lost ACK is recognised by
the ingest ledger and acknowledged AA without being written twice.  A message asking for
enhanced-mode acknowledgments (MSH-15, MSH-16) is answered with the accept ACK (CA, CE, CR)
and then the application ACK, each as its condition asks (:func:`replies`).

MLLP carries no credentials, so a sender is known by its address: ``YIYANG_MLLP_PEERS`` (or
``yiyang mllp --peer ADDRESS=CLIENT``) registers each interface engine's address as a client
registered with ``yiyang client add``.  A message from any other address, or from a client since
revoked, is answered AR and not kept; a client needs ``system/*.cu`` and a role other than
elderly-care, as ``$ingest`` does, and writes only for its own organisation (the records it may
not write are quarantined).  Every message leaves an AuditEvent, as every HTTP request does.
"""

from __future__ import annotations

import logging
import re
import socketserver
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from functools import cache
from typing import Any

from conformance.issues import catalog as validation_catalog
from gateway.exchanges import Party
from gateway.fhir.errors import FhirError, store_failure
from gateway.ingest.pipeline import Ingest
from gateway.ingest.quarantine import Reason
from gateway.masking import mask_text
from gateway.messages import catalog, worded
from gateway.security.access import RESTRICTED_ROLES
from gateway.security.audit import AuditTrail, RequestFacts
from gateway.security.principal import Principal, acting
from gateway.security.rate_limit import RateLimiter
from gateway.security.scopes import Grants, needs, stored_scopes, within_role
from gateway.services import Services
from gateway.storage.store import STALE_ROWS, Store, StoreError
from mappings.readers.hl7v2 import VERSIONS, Refusal, header_text, read_message, refusal
from mappings.records import UNPARSEABLE, visible
from mappings.specs import Spec

START, END = b"\x0b", b"\x1c\r"
#: what ends a frame received: the end-of-block byte alone.  It never occurs in a message, and
#: the CR after it is a trailer that some senders leave out (or send after a pause); waiting
#: for it left such a frame unanswered until the connection's idle timeout
END_OF_BLOCK, TRAILER = END[:1], END[1:]
#: a reason's HL7 table 0357 condition comes from its catalog entry (``"hl7"``); a reason
#: without one is the validator's finding on the message's data (:data:`FINDINGS`) or, for
#: the gateway's own failures, an application error
INTERNAL_ERROR = "207^Application internal error"
#: the validator's findings by what they found: a value missing, a code not in its table, and
#: anything else wrong with a value (a 身份证 checksum, a date, a cardinality of many) — the
#: sender's data, which it can fix, never an "internal error" of ours
FINDINGS = (
    (
        ("structure.missing-required", "profile.cardinality-min", "profile.slice-cardinality-min"),
        "101^Required field missing",
    ),
    (("code.", "binding."), "103^Table value not found"),
)
DATA_ERROR = "102^Data type error"
#: the most a host registered as no sender has buffered before its frame is answered (from its
#: header, which has come by then) and the connection closed: nothing it sends is kept
STRANGER_BYTES = 16 * 1024
#: a frame's header: its first segment (after any line breaks), up to the byte that ends it
_HEADER = re.compile(rb"[\r\n]*[^\r\n\x1c]*[\r\n\x1c]")
#: the first version (MSH-12) whose ERR segment says an error in ERR-2 to ERR-8; before it the
#: segment has one field, ERR-1 "error code and location", which an ACK echoing such a version
#: fills too: its receiver reads no other
ERL_VERSION = (2, 5)
#: conditions that reject the message for what it is, not for its content: AR, not AE
#: (unsupported message type, event, processing id or version)
REJECTING = ("200", "201", "202", "203")
#: the catalog entry answering each header field the reader refuses a message for
REFUSALS = {
    "MSH-18": "mllp.unknown-charset",
    "MSH-12": "mllp.unsupported-version",
    "MSH-11": "mllp.unsupported-processing-id",
}
#: the ACK's own sending application and facility (MSH-3, MSH-4) when the message named no receiver
GATEWAY = ("YIYANG", "GATEWAY")
FEED = "MLLP"
_CHINA = timezone(timedelta(hours=8))
log = logging.getLogger("yiyang.mllp")


#: the HTTP status an AuditEvent records for each answer (its outcome follows from it)
STATUS = {"AA": 200, "AE": 422, "AR": 400}
#: HL7 table 0155, when an enhanced-mode acknowledgment is sent (MSH-15 for the accept ACK,
#: MSH-16 for the application ACK), by whether it reports success: AL always, NE never, ER on
#: an error or rejection only, SU on success only.  An empty or unknown condition beside a
#: valued other one is read as AL: an ACK the sender did not want costs it nothing, one it
#: waits for and never gets holds its queue
SENT_WHEN = {"AL": (True, False), "NE": (), "ER": (False,), "SU": (True,)}
#: the statuses of answers about messages that were not committed to the store (a store that
#: cannot commit, a failure of the gateway's, a frame over the size limit): commit error, CE,
#: in enhanced mode, for the sender to resend; any other refusal is a commit reject, CR (the
#: message's header or its sender is not acceptable, HL7 v2.5 §2.9.3.1)
NOT_COMMITTED = frozenset({413, 500, 503})


@dataclass(frozen=True)
class Peer:
    """The other end of a connection: the client its address is registered as, and why it may
    not send, if it may not: the refusal its messages are answered with (its status for the
    audit trail, its message and parameters for the ACK: a store failure's names its incident)."""

    address: str
    principal: Principal | None
    refusal: FhirError | None = None


def peer_of(services: Services, peers: Mapping[str, str], address: str) -> Peer:
    """Who sends from ``address``, looked up for each message (a revoked client stops at once);
    when the store cannot say, the message is answered "store busy" and resent later."""
    client_id = peers.get(address)
    row = None
    if client_id is not None:
        try:
            with services.store.reading(snapshot=False) as tx:
                row = tx.security.client(client_id)
        except StoreError as error:
            return Peer(address, None, store_failure(error, f"looking up the sender {address}", log))
    if row is None or row.status != "active":
        return Peer(address, None, _stranger(address))
    scopes = frozenset(str(scope) for scope in within_role(row.role, stored_scopes(row.scopes)))
    principal = Principal(row.id, row.organization, scopes, row.role)
    # the scopes and roles of $ingest, which also writes legacy records of any type
    if principal.role in RESTRICTED_ROLES or Grants(principal.scopes).missing(needs("fhir.ingest", {})):
        return Peer(address, principal, FhirError(403, "mllp.forbidden", client=principal.client_id))
    return Peer(address, principal)


@dataclass
class Answer:
    """One message's ACK and what the audit trail records of it."""

    ack: bytes
    code: str
    status: int
    #: the message type (ADT^A01), for the record
    kind: str
    reason: str | None = None
    written: list[tuple[str, str]] = field(default_factory=list)
    #: the header fields the ACK answers (whether it asks for enhanced mode: :func:`replies`)
    header: Mapping[str, Any] = field(default_factory=dict)


class WrittenSince:
    """The resources the listener wrote since it last refreshed the planner's statistics.

    A listener is a load that never ends: ``yiyang ingest`` asks ``Store.analyze_after`` once
    its files are in, but a listener is never done, and a hospital's feed of thousands of
    admissions a day left PostgreSQL planning for the archive the listener found at its start
    until autovacuum came.  So the rule of every load is asked of what the listener wrote
    since, counted in resources as a load's are (not in messages: an admission writes several,
    an AE none), after the ACK of the message that passed the rule's threshold.  The threshold
    is known from the last ask (at first the rule's floor), so the messages in between cost
    nothing, and an ask that found the statistics fresh (an ingest analysed meanwhile) only
    learns the new threshold.  One ask at a time: the others' messages go on counting."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._lock = threading.Lock()
        self._written = 0
        self._beyond = float(STALE_ROWS)
        self._asking = False

    def wrote(self, resources: int) -> bool:
        """Count the resources a message wrote; whether the statistics were refreshed for them
        (a failure to is logged: the message is in, and the next ask tries again)."""
        with self._lock:
            self._written += resources
            if self._written <= self._beyond or self._asking:
                return False
            self._asking, written = True, self._written
        analysed, beyond = False, self._beyond
        try:
            analysed = self.store.analyze_after(written)
            beyond = self.store.stale_beyond()
        except StoreError as error:
            log.warning("the planner's statistics were not refreshed: %s", error)
        finally:
            with self._lock:
                self._asking = False
                self._written -= written if analysed else 0
                self._beyond = beyond
        return analysed


def _stranger(address: str) -> FhirError:
    """The refusal of a sender registered as no active client."""
    return FhirError(401, "mllp.unknown-peer", address=address)


def acknowledge(services: Services, message: bytes, peer: Peer) -> Answer:
    """Persist one message, as ``peer``'s client, and answer it (the ACK without MLLP framing).
    A message refused for who sent it is kept nowhere, so it is read no further than the header
    its ACK answers: read whole, a stranger's 57 MB frame cost the listener 4 s of CPU."""
    if peer.refusal is not None or peer.principal is None:
        header = _raw_header(message)
        return _rejected(header, message_kind(header), peer.refusal or _stranger(peer.address))
    record = read_message(message, "hl7v2", FEED, services.reader_limits)
    fields = record.fields
    if UNPARSEABLE in fields:  # the header may still be whole: the ACK answers its MSH-10
        fields = {**_raw_header(message), **fields}
    kind = message_kind(fields)
    pipeline = Ingest(services.store, services.validator, services.engine, party=sender(peer.principal, kind))
    refused = _refusals(message, fields, services.engine.specs)
    token = acting.set(peer.principal)
    try:
        outcome = pipeline.process(record, refused=refused)
        pipeline.finish()
    except StoreError as error:
        failure = store_failure(error, f"persisting the message {record.location}", log)
        # not about its content: the sender resends it
        return _rejected(fields, kind, failure)
    finally:
        acting.reset(token)
    first = outcome.reasons[0].message_id if outcome.reasons else None
    views = record.views
    # the codes left out are warnings whatever the answer: a sender fixing an AE's errors hears
    # of them now, not only once the message lands (HL7 v2.5 ERR-4: W beside E in one ACK)
    if UNPARSEABLE in fields or refused or any(_condition(r).startswith(REJECTING) for r in outcome.reasons):
        answer = ack(fields, "AR", outcome.reasons, views=views, warnings=outcome.omitted)
        return Answer(answer, "AR", STATUS["AR"], kind, first, header=fields)
    if outcome.reasons:
        answer = ack(fields, "AE", outcome.reasons, views=views, warnings=outcome.omitted)
        return Answer(answer, "AE", STATUS["AE"], kind, first, header=fields)
    # the stay landed, so no resend; the quarantined parts and the codes left out are warnings
    answer = ack(fields, "AA", [], views=views, warnings=[*outcome.parts, *outcome.omitted])
    return Answer(answer, "AA", STATUS["AA"], kind, written=list(outcome.written), header=fields)


def replies(answer: Answer) -> list[bytes]:
    """The ACKs sent for the message ``answer`` answers, in their order: its ACK
    alone in original mode (MSH-15 and MSH-16 both empty).  In enhanced mode (HL7 v2.5
    §2.9.3) the message is persisted before anything is sent, so both ACKs are known at once
    and sent on its connection, each if its condition (:data:`SENT_WHEN`) asks for it: the
    accept ACK, CA for a message committed (landed or quarantined for its content), else CE
    or CR with the refusal's ERR segments (:data:`NOT_COMMITTED`); then, for a committed
    message only, the application ACK, ``answer``'s AA or AE."""
    fields = answer.header
    accept, application = (_text(fields.get(name)).upper() for name in ("MSH-15", "MSH-16"))
    if not accept and not application:
        return [answer.ack]
    if answer.code not in ("AA", "AE") or answer.status in NOT_COMMITTED:
        refused = _recoded(answer.ack, "CE" if answer.status in NOT_COMMITTED else "CR")
        return [refused] if False in SENT_WHEN.get(accept, (False,)) else []
    sent = [ack(dict(fields), "CA", [])] if True in SENT_WHEN.get(accept, (True,)) else []
    if (answer.code == "AA") in SENT_WHEN.get(application, (True, False)):
        sent.append(answer.ack)
    return sent


def _recoded(acknowledgment: bytes, code: str) -> bytes:
    """An ACK with its MSA-1 (acknowledgment code) replaced by ``code``."""
    segments = acknowledgment.split(b"\r")
    for i, part in enumerate(segments):
        if part.startswith(b"MSA|"):
            fields = part.split(b"|")
            segments[i] = b"|".join([fields[0], code.encode(), *fields[2:]])
    return b"\r".join(segments)


def _rejected(fields: dict[str, Any], kind: str, refusal: FhirError) -> Answer:
    """The AR of a message refused for who sent it or for the store, not for its content: the
    refusal's words in its ERR, its status and message id for the audit trail."""
    reason = Reason(refusal.message_id, worded(refusal.message_id, refusal.params))
    return Answer(ack(fields, "AR", [reason]), "AR", refusal.status, kind, refusal.message_id, header=fields)


def _refusals(message: bytes, fields: dict[str, Any], specs: Iterable[Spec]) -> list[Reason]:
    """What refuses a message (AR, and it is quarantined with the reason) for what it is, not for
    its content: a header the reader refuses (character set, version, processing id), named
    with its own HL7 condition; no control id (MSH-10), so no ACK could say which message it
    answers; or an event no spec takes of a message type some spec does take."""
    refused = refusal(message)
    if refused is not None:
        return [_header_reason(refused)]
    if UNPARSEABLE in fields:
        return []
    if not _text(fields.get("MSH-10")):
        return [Reason("mllp.no-control-id", worded("mllp.no-control-id"), None, "MSH-10")]
    kind, event = _text(fields.get("MSH-9.1")), _text(fields.get("MSH-9.2"))
    events = sorted({m for spec in specs if spec.source == "hl7v2" for m in spec.match if m.startswith(f"{kind}^")})
    if events and f"{kind}^{event}" not in events:
        words = worded("mllp.unsupported-event", {"event": f"{kind}^{event}", "supported": ", ".join(events)})
        return [Reason("mllp.unsupported-event", words, None, "MSH-9")]
    return []


def _header_reason(refused: Refusal) -> Reason:
    """The reader's refusal of a header field as the catalog entry an ACK answers it with."""
    message_id = REFUSALS[refused.field]
    words = worded(message_id, {"value": refused.value, "versions": ", ".join(VERSIONS)})
    return Reason(message_id, words, None, refused.field)


def audited(trail: AuditTrail, peer: Peer, answer: Answer) -> None:
    """The message's AuditEvent: who sent it from where, its type, the answer and the
    resources it wrote."""
    facts = RequestFacts(
        method="MLLP",
        path=f"/mllp/{answer.kind}",
        endpoint="mllp.message",
        view_args={},
        query=[],
        status=answer.status,
        remote_addr=peer.address,
        principal=peer.principal,
        reason=f"{answer.code} {answer.reason}" if answer.reason else None,
        entries=[("MLLP", f"{k}/{i}", answer.code, f"{k}/{i}") for k, i in answer.written],
    )
    trail.record(facts)


def message_kind(fields: dict[str, Any]) -> str:
    """The message's type (MSH-9), its exchange record's interaction: the sender's text, masked,
    with a character no text may hold (a NUL, which PostgreSQL's text refuses, losing the
    record) written as its code point (``U+0000``)."""
    kind = "^".join(part for part in (_recorded(fields.get("MSH-9.1")), _recorded(fields.get("MSH-9.2"))) if part)
    return kind or "message"


def sender(principal: Principal, kind: str) -> Party:
    """The participant behind a message, for its exchange record: the registered client the
    peer's address is (``--peer``) and the organisation it acts for, as a REST client's record
    names them.  MSH-3 and MSH-4 are the message's own claim: recorded as the participant, a
    hospital's engine writing another's facility code there had its messages counted for that
    hospital, and a report filtered on its Organization id missed its MLLP traffic."""
    return Party(principal.client_id, principal.organization, "hl7v2", "mllp", kind)


def _recorded(value: Any) -> str:
    """A header field's text as an exchange record holds it (:func:`message_kind`): as the sender
    wrote it, not escaped as the ACK echoes it (where a NUL is ``\\X00\\``), masked."""
    return visible(mask_text(value)) if isinstance(value, str) else ""


def ack(
    fields: dict[str, Any],
    code: str,
    reasons: list[Reason],
    views: Mapping[str, str] | None = None,
    warnings: Iterable[Reason] = (),
) -> bytes:
    """An ACK answering the message's MSH: sender and receiver swapped (the receiver it named,
    MSH-5/6, sends the ACK, as HL7 chapter 2 has it; the gateway's own names when it named
    none), its control id in MSA-2, its version, and one ERR per reason (the stable id, then the
    zh-CN text; ``views`` are the record's, to locate a typed key such as ``PID-3[ID]``): of
    severity E for the ``reasons``, then W for the ``warnings``, each also in ERR-1 when the
    version echoed is one before v2.5 (:func:`error_code_and_location`)."""
    now = datetime.now(_CHINA).strftime("%Y%m%d%H%M%S%z")
    trigger = _text(fields.get("MSH-9.2"))
    control = _text(fields.get("MSH-10"))
    header = [
        "MSH",
        "^~\\&",
        _composite(fields, "MSH-5") or GATEWAY[0],
        _composite(fields, "MSH-6") or GATEWAY[1],
        _composite(fields, "MSH-3"),
        _composite(fields, "MSH-4"),
        now,
        "",
        f"ACK^{trigger}^ACK" if trigger else "ACK",
        uuid.uuid4().hex[:20].upper(),  # MSH-10 is ST(20) in v2.5
        _composite(fields, "MSH-11") or "P",
        _composite(fields, "MSH-12") or "2.5",
        "",
        "",
        "",
        "",
        "",
        "UNICODE UTF-8",  # MSH-18: the reasons are Chinese, and absent it means ASCII
    ]
    version = fields.get("MSH-12.1") or fields.get("MSH-12")
    errors = []
    for reason, severity in [*((r, "E") for r in reasons), *((w, "W") for w in warnings)]:
        where = reason.field or reason.expression or ""
        text = _escape(f"{reason.message_id}: {reason.text['zh-CN']}" + (f" ({where})" if where else ""))
        condition, location = _condition(reason), error_location(reason, views)
        first = error_code_and_location(location, condition) if _before_erl(version) else ""
        errors.append(f"ERR|{first}|{location}|{condition}^HL70357|{severity}||||{text}")
    # two reasons told apart only by a FHIRPath the ERR does not carry (one IN1 field missing
    # from two resources it maps to) are one error to the sender: said once
    segments = ["|".join(header), f"MSA|{code}|{control}", *dict.fromkeys(errors)]
    return ("\r".join(segments) + "\r").encode("utf-8")


#: a field of the message as the HL7 reader names it: ``PID-3``, ``PID-3~2.1`` (the second
#: repetition), ``IN1[1]-2`` (the second IN1 segment, counted from 0), or as the mapping engine
#: names a field of one item of a repeated segment: ``IN1[1].IN1-2.1``; a typed key
#: (``PID-3[ID].1``, the repetition whose type is ID) is first resolved through the record's views
_FIELD = re.compile(
    r"(?P<segment>[A-Z][A-Z0-9]{2})(?:\[(?P<occurrence>\d+)\](?:\.(?P=segment))?)?-(?P<field>\d+)"
    r"(?:~(?P<repetition>\d+)|\[[^\]]*\])?(?:\.(?P<component>\d+))?(?:\.(?P<subcomponent>\d+))?"
)
#: a typed key of the reader's: a field number followed by a type code in brackets
_TYPED = re.compile(r"-\d+\[")


def error_location(reason: Reason, views: Mapping[str, str] | None = None) -> str:
    """ERR-2, an ERL (segment^sequence^field^repetition^component^subcomponent) when the reason names a
    field of the message; empty otherwise (its FHIRPath is in the text, ERR-8).  A typed key
    (``PID-3[ID].1``) names the repetition the record's ``views`` say holds it (``PID-3~2.1``):
    the one that failed, which is not always the first; without views its repetition is left
    empty."""
    _, _, name = (reason.field or "").rpartition(", field ")
    if views and _TYPED.search(name):
        name = views.get(name, name)
    found = _FIELD.fullmatch(name)
    if found is None:
        return ""
    sequence = int(found["occurrence"]) + 1 if found["occurrence"] else 1
    parts = [found["segment"], str(sequence), found["field"], found["repetition"] or ""]
    parts += [found["component"] or "", found["subcomponent"] or ""]
    return "^".join(parts).rstrip("^")


def error_code_and_location(location: str, condition: str) -> str:
    """ERR-1 (ELD: segment^sequence^field^code, the code's components as subcomponents), the
    only field of the ERR segment before v2.5: the ERL ``location`` cut to its segment,
    sequence and field, and the table 0357 ``condition``."""
    parts = (location.split("^") + ["", "", ""])[:3]
    return "^".join([*parts, "&".join([*condition.split("^"), "HL70357"])])


def _before_erl(version: Any) -> bool:
    """Whether a version id (``2.4``, ``2.3.1``) is one before :data:`ERL_VERSION`."""
    numbers = version.split(".") if isinstance(version, str) else []
    return bool(numbers) and all(n.isdigit() for n in numbers) and tuple(map(int, numbers)) < ERL_VERSION


def failed(message: bytes, incident: str) -> Answer:
    """The answer to a message the gateway failed on (``incident`` in its log): AR, so the sender
    resends it, still answering its control id and sender from its header as written."""
    fields = _raw_header(message)
    reason = Reason("http.internal", worded("http.internal", {"incident": incident}))
    return Answer(ack(fields, "AR", [reason]), "AR", 500, message_kind(fields), "http.internal", header=fields)


def _raw_header(message: bytes) -> dict[str, str]:
    """The MSH fields an ACK repeats, read from the first segment as written, for a message
    whose content could not be parsed."""
    header = header_text(message)
    if not header.startswith("MSH") or len(header) < 8:
        return {}
    parts = header.split(header[3])
    component = header[4]
    plain = _unescaper(header[3], parts[1])
    found = {f"MSH-{n + 1}": plain(parts[n]) for n in (2, 3, 4, 5, 9, 10, 11, 14, 15) if n < len(parts) and parts[n]}
    for n in (2, 3, 4, 5, 8, 10, 11):  # the composites, by component (see _composite)
        if n < len(parts):
            values = enumerate(parts[n].split(component), 1)
            found |= {f"MSH-{n + 1}.{i}": plain(value) for i, value in values if value}
    return found


def _unescaper(separator: str, encoding: str) -> Callable[[str], str]:
    """The delimiter escapes (``\\F\\`` …) of a header read as written, decoded with the message's
    own delimiters, as the reader gives the fields of a parsed message: :func:`ack` escapes
    every value again, so a control id ``A\\F\\B`` came back in MSA-2 as ``A\\E\\F\\E\\B``, a
    control id the sender never sent.  Other escapes are left as written."""
    if len(encoding) < 4:
        return lambda text: text
    component, repetition, escape, subcomponent = encoding[:4]
    plain = {"F": separator, "S": component, "T": subcomponent, "R": repetition, "E": escape}
    sequence = re.compile(re.escape(escape) + "([FSTRE])" + re.escape(escape))
    return lambda text: sequence.sub(lambda found: plain[found.group(1)], text)


def _condition(reason: Reason) -> str:
    found = catalog().get(reason.message_id, {}).get("hl7")
    if found is not None:
        return found
    if reason.message_id not in _findings():
        return INTERNAL_ERROR
    return next((condition for starts, condition in FINDINGS if reason.message_id.startswith(starts)), DATA_ERROR)


@cache
def _findings() -> frozenset[str]:
    """The message ids of the validator's findings (conformance/messages.json)."""
    return frozenset(validation_catalog())


def _text(value: Any) -> str:
    return _escape(value) if isinstance(value, str) else ""


def _composite(fields: Mapping[str, Any], name: str) -> str:
    """A field of the message's header (an HD such as MSH-3, the PT of MSH-11, the VID of
    MSH-12) as the ACK echoes it: component by component, each escaped.  Escaped whole, the
    processing id ``P^T`` came back as the one value ``P\\S\\T``."""
    parts = [_text(fields.get(f"{name}.{position}")) for position in range(1, 10)]
    while parts and not parts[-1]:
        parts.pop()
    return "^".join(parts) if parts else _text(fields.get(name))


def _escape(text: str) -> str:
    """HL7 escape sequences for the delimiters, so a reason cannot break the ACK's structure;
    a line break read as a space; any other control character (a NUL, MLLP's framing bytes
    0x0B and 0x1C, which would end the ACK's frame early) as HL7 v2 hexadecimal data
    (``\\X00\\``, chapter 2.7.4) of its UTF-8 bytes, the ACK's character set (MSH-18)."""
    for char, escape in (("\\", "\\E\\"), ("|", "\\F\\"), ("^", "\\S\\"), ("&", "\\T\\"), ("~", "\\R\\")):
        text = text.replace(char, escape)
    text = text.replace("\r", " ").replace("\n", " ")
    return _CONTROL.sub(lambda found: f"\\X{found[0].encode().hex().upper()}\\", text)


#: the control characters (Unicode Cc: C0, DEL, C1) but the line breaks :func:`_escape` makes spaces
_CONTROL = re.compile("[\x00-\x09\x0b\x0c\x0e-\x1f\x7f-\x9f]")


class _Connection(socketserver.StreamRequestHandler):
    """One sender's connection: frames in (each ended by its end-of-block byte, the CR after
    it taken when it comes), one ACK out per frame, until the sender hangs up,
    sends no whole frame for ``mllp_idle_seconds`` (a byte now and then does not keep it open),
    or is not a registered sender (answered once, then closed)."""

    server: MllpServer

    def handle(self) -> None:
        try:
            if self.client_address[0] in self.server.peers:
                self._frames()
            else:
                self._stranger()
        except (TimeoutError, ConnectionError) as exc:
            log.info("connection from %s closed: %s", self.client_address[0], exc)

    def _frames(self) -> None:
        """Frames as their bytes come, each byte searched once: ``start`` is where the frame
        under way began (-1 before its start-of-block came) and ``searched`` how far the byte
        it waits for was looked for.  Searched from the beginning at every read, a frame sent
        in small pieces cost time in the square of its size (64 MiB in 4 KiB reads: minutes of
        CPU, the GIL held, for every other connection too).  Its sender is looked up once the
        frame's header has come (:meth:`_stranger`'s rule), and one refused (a client revoked,
        or that may not write) is answered from it there: buffered whole first, its frames
        cost what a stranger's did.  A store that cannot say who sends (503) has the frame
        read whole and answered, for the sender to resend on the same connection."""
        buffer, idle = bytearray(), self.server.services.config.mllp_idle_seconds
        start, searched = -1, 0
        #: who sends the frame under way, once its header has come (None before)
        peer: Peer | None = None
        deadline = time.monotonic() + idle
        while (left := deadline - time.monotonic()) > 0:
            self.request.settimeout(left)
            chunk = self.request.recv(65536)
            if not chunk:
                return
            buffer += chunk
            while True:
                if start == -1 and (start := buffer.find(START, searched)) == -1:
                    searched = len(buffer)
                    break
                if peer is None:
                    header = _HEADER.match(buffer, start + 1)
                    if header is None and len(buffer) - start <= STRANGER_BYTES:
                        break  # no end-of-block either: it would end the header
                    peer = self._peer()
                    if peer.refusal is not None and peer.refusal.status != 503:
                        self._refuse_frame(buffer, start + 1, header, peer)
                        return
                searched = max(searched, start + 1)
                if (end := buffer.find(END_OF_BLOCK, searched)) == -1:
                    searched = len(buffer)
                    break
                if (restart := buffer.rfind(START, start + 1, end)) != -1:
                    # a frame begun again before it ended: the sender gave the first up (it
                    # had no ACK for it, and sends it again); read as one, the two were refused
                    log.warning("an unfinished frame from %s was begun again", self.client_address[0])
                    start = restart
                if end - start - 1 > self.server.max_bytes:
                    self._refuse_oversized(bytes(buffer[start:end]))
                    return
                trailer = buffer[end + 1 : end + 2]
                if trailer not in (TRAILER, b""):  # one still to come is skipped as the bytes before a frame are
                    log.warning("a frame from %s ended without its CR", self.client_address[0])
                message = bytes(buffer[start + 1 : end])
                del buffer[: end + 1 + (trailer == TRAILER)]
                start, searched = -1, 0
                if not self._answer(message, peer):
                    return
                peer = None
                deadline = time.monotonic() + idle
            # measured once the whole frames a read brought are answered: several small frames
            # sent back to back are no oversized one (only what is still unframed counts)
            if len(buffer) > self.server.max_bytes:
                self._refuse_oversized(bytes(buffer))
                return

    def _stranger(self) -> None:
        """A host registered as no sender: its first frame is answered as soon as its header
        (the first segment) has come, or once :data:`STRANGER_BYTES` came without one (from
        what came), and the connection closed.  Its message is kept nowhere and answered from
        its header alone, yet its frame was buffered whole: four strangers sending frames of
        ``max_bytes`` held about 0.5 GB until they ended them.  The rest of the frame is read
        and dropped, so its sender reads the ACK rather than a reset."""
        buffer, idle = bytearray(), self.server.services.config.mllp_idle_seconds
        deadline = time.monotonic() + idle
        while (left := deadline - time.monotonic()) > 0:
            self.request.settimeout(left)
            chunk = self.request.recv(STRANGER_BYTES)
            if not chunk:
                return
            buffer += chunk
            start = buffer.find(START) + 1  # 0 while no frame has begun: no header yet
            header = _HEADER.match(buffer, start) if start else None
            if header is None and len(buffer) < STRANGER_BYTES:
                continue
            self._refuse_frame(buffer, start, header, self._peer())
            return

    def _refuse_frame(self, buffer: bytearray, start: int, header: re.Match[bytes] | None, peer: Peer) -> None:
        """Answer a refused sender's frame, whose message begins at ``start``, from its header
        (from what came, without one: see :meth:`_stranger`), and read the rest of the frame
        and drop it: a refused message is kept nowhere, so it need not be held whole."""
        end = header.end() - 1 if header else len(buffer)
        self._answer(bytes(buffer[start:end]), peer)
        if END_OF_BLOCK not in buffer[end:]:
            self._drop_frame(deadline=time.monotonic() + self.server.services.config.mllp_idle_seconds)

    def _drop_frame(self, deadline: float) -> None:
        """Read and drop what is sent until the frame's end-of-block byte, the sender hangs up or
        ``deadline``; a socket closed with bytes unread resets the connection, and the ACK
        written before may be lost with it."""
        chunk = bytearray(STRANGER_BYTES)
        while (left := deadline - time.monotonic()) > 0:
            self.request.settimeout(left)
            size = self.request.recv_into(chunk)
            if not size or END_OF_BLOCK in chunk[:size]:
                return

    def _answer(self, message: bytes, peer: Peer | None = None) -> bool:
        """Answer one message from ``peer`` (looked up now if not given); False when the sender
        is refused and the connection ends."""
        peer = peer or self._peer()
        try:
            answer = acknowledge(self.server.services, message, peer)
        except Exception:  # noqa: BLE001 - a bug answers AR (the sender resends), never silence
            incident = uuid.uuid4().hex[:12]
            log.exception("incident %s: message from %s not processed", incident, peer.address)
            answer = failed(message, incident)
        # audited before the ACK is sent: a sender gone meanwhile fails the send, and the
        # message it left in the archive must still have its AuditEvent
        audited(self.server.trail, peer, answer)
        self.request.settimeout(self.server.services.config.mllp_idle_seconds)  # for the ACK's send
        for reply in replies(answer):
            self.wfile.write(START + reply + END)
        self.server.written.wrote(len(answer.written))  # after the ACK: the sender waits for no analysis
        return peer.refusal is None or peer.refusal.status == 503  # a busy store is worth a resend

    def _peer(self) -> Peer:
        """The sender, held back while it sends faster than the per-client rate limit allows
        (an unregistered address by its own bucket): MLLP waits for each ACK, so a late one
        slows the sender down and loses nothing, and a stranger cannot fill the audit trail
        as fast as it can send."""
        peer = peer_of(self.server.services, self.server.peers, self.client_address[0])
        if peer.principal is not None:
            limiter, who = self.server.limiter, peer.principal.client_id
        else:
            limiter, who = self.server.strangers_limiter, peer.address
        while wait := limiter.take(who):
            time.sleep(wait)
        return peer

    def _refuse_oversized(self, buffer: bytes) -> None:
        """A frame over the size limit is answered AR (its header, if it came, names it),
        audited, and the connection closed: what follows it cannot be framed reliably."""
        limit = self.server.max_bytes
        log.error("frame over %d bytes from %s: connection closed", limit, self.client_address[0])
        start = buffer.find(START)
        fields = _raw_header(buffer[start + 1 :]) if start != -1 else {}
        reason = Reason("http.too-large", worded("http.too-large", {"size": len(buffer), "limit": limit}))
        kind = message_kind(fields)
        answer = Answer(ack(fields, "AR", [reason]), "AR", 413, kind, "http.too-large", header=fields)
        audited(self.server.trail, peer_of(self.server.services, self.server.peers, self.client_address[0]), answer)
        for reply in replies(answer):
            self.wfile.write(START + reply + END)


class MllpServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, services: Services, host: str, port: int) -> None:
        # before binding: a failed bind calls server_close, which closes the trail
        self.trail = AuditTrail(services.store)
        super().__init__((host, port), _Connection)
        self.services = services
        self.written = WrittenSince(services.store)
        self.max_bytes = services.config.max_bytes
        self.peers = services.config.mllp_peer_clients  # address → client id, parsed once
        self.limiter = RateLimiter(services.config.rate_limit_per_second)
        self.strangers_limiter = RateLimiter(services.config.mllp_stranger_rate)
        self._slots = threading.BoundedSemaphore(services.config.mllp_max_connections)
        self._strangers = threading.BoundedSemaphore(services.config.mllp_stranger_connections)

    def _pool(self, address: str) -> threading.BoundedSemaphore:
        """Registered senders share ``mllp_max_connections``; any other address shares a few
        of its own, so a host that is no sender cannot take the hospitals' connections."""
        return self._slots if address in self.peers else self._strangers

    def process_request(self, request: Any, client_address: Any) -> None:
        """A thread per connection, up to the pool's size; beyond it a new connection is
        closed at once, so silent or slow senders cannot take every thread."""
        pool = self._pool(client_address[0])
        if not pool.acquire(blocking=False):
            log.warning("connection from %s refused: its pool of connections is full", client_address[0])
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            pool.release()  # its thread never started, so it will not give the slot back
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._pool(client_address[0]).release()

    def server_close(self) -> None:
        super().server_close()
        self.trail.close()  # the events of the last messages are appended before the store closes

"""HL7 v2 over MLLP: hospital interface engines send ADT messages on a socket, one per frame
(``\\x0b`` message ``\\x1c\\r``), and wait for an ACK.

Each message is persisted before it is acknowledged: mapped into the store or quarantined with
its bytes, committed, and only then answered — AA when it landed (with warning ERR segments
for independent parts quarantined alone, such as an IN1 without its 医保 fields), AE (with an
ERR segment per reason, its HL7 table 0357 code where one fits) when its content was refused
and it was quarantined, AR when it is not an HL7 message at all or of a type no mapping spec
takes (it is quarantined too: nothing sent to the gateway is lost).  If the store cannot
commit, the answer is AR with "store busy" (0357 code 206) and nothing was kept, so the
sender's retry is safe.  A message sent again after
a lost ACK is recognised by the ingest ledger and acknowledged AA without being written twice.
"""

from __future__ import annotations

import logging
import socketserver
from datetime import datetime, timedelta, timezone
from typing import Any

from gateway.exchanges import Party
from gateway.ingest.pipeline import Ingest
from gateway.ingest.quarantine import Reason
from gateway.masking import mask_text
from gateway.messages import catalog, worded
from gateway.services import Services
from gateway.storage.store import StoreError
from mappings.readers.hl7v2 import read_message
from mappings.records import UNPARSEABLE

START, END = b"\x0b", b"\x1c\r"
#: a reason's HL7 table 0357 condition comes from its catalog entry (``"hl7"``); a reason
#: without one (a profile's or a business rule's finding) is an application error
INTERNAL_ERROR = "207^Application internal error"
#: conditions that reject the message for what it is, not for its content: AR, not AE
#: (unsupported message type, event, processing id or version)
REJECTING = ("200", "201", "202", "203")
FEED = "MLLP"
_CHINA = timezone(timedelta(hours=8))
log = logging.getLogger("yiyang.mllp")


def acknowledge(services: Services, message: bytes) -> bytes:
    """Persist one message and return its ACK (without MLLP framing)."""
    record = read_message(message, "hl7v2", FEED, services.reader_limits)
    pipeline = Ingest(services.store, services.validator, services.engine, party=sender(record.fields))
    try:
        outcome = pipeline.process(record)
        pipeline.finish()
    except StoreError as error:
        log.error("message %s not persisted: %s", record.location, error)
        busy = Reason("http.store-busy", worded("http.store-busy"))
        return ack(record.fields, "AR", [busy])  # not about its content: the sender resends it
    if UNPARSEABLE in record.fields or any(_condition(r).startswith(REJECTING) for r in outcome.reasons):
        return ack(record.fields, "AR", outcome.reasons)
    if outcome.reasons:
        return ack(record.fields, "AE", outcome.reasons)
    # partly accepted: the stay landed, so no resend; the quarantined parts are warnings
    return ack(record.fields, "AA", outcome.parts, severity="W")


def sender(fields: dict[str, Any]) -> Party:
    """The participant behind a message, for its exchange record: the sending application
    (MSH-3) acting for the sending facility (MSH-4); the interaction is the message type."""
    kind = "^".join(part for part in (_text(fields.get("MSH-9.1")), _text(fields.get("MSH-9.2"))) if part)
    client, facility = mask_text(_text(fields.get("MSH-3"))), mask_text(_text(fields.get("MSH-4")))
    return Party(client or FEED, facility, "hl7v2", "mllp", mask_text(kind) or "message")


def ack(fields: dict[str, Any], code: str, reasons: list[Reason], severity: str = "E") -> bytes:
    """An ACK answering the message's MSH: sender and receiver swapped, its control id in
    MSA-2, its version, and one ERR per reason (the stable id, then the zh-CN text)."""
    now = datetime.now(_CHINA).strftime("%Y%m%d%H%M%S%z")
    trigger = _text(fields.get("MSH-9.2"))
    control = _text(fields.get("MSH-10"))
    header = [
        "MSH",
        "^~\\&",
        "YIYANG",
        "GATEWAY",
        _text(fields.get("MSH-3")),
        _text(fields.get("MSH-4")),
        now,
        "",
        f"ACK^{trigger}^ACK" if trigger else "ACK",
        f"ACK{now[:14]}{control}"[:50],
        _text(fields.get("MSH-11")) or "P",
        _text(fields.get("MSH-12")) or "2.5",
    ]
    segments = ["|".join(header), f"MSA|{code}|{control}"]
    for reason in reasons:
        location = _escape(reason.field or reason.expression or "")
        text = _escape(f"{reason.message_id}: {reason.text['zh-CN']}")
        condition = _condition(reason)
        segments.append(f"ERR||{location}|{condition}^HL70357|{severity}||||{text}")
    return ("\r".join(segments) + "\r").encode("utf-8")


def _condition(reason: Reason) -> str:
    return catalog().get(reason.message_id, {}).get("hl7", INTERNAL_ERROR)


def _text(value: Any) -> str:
    return _escape(value) if isinstance(value, str) else ""


def _escape(text: str) -> str:
    """HL7 escape sequences for the delimiters, so a reason cannot break the ACK's structure."""
    for char, escape in (("\\", "\\E\\"), ("|", "\\F\\"), ("^", "\\S\\"), ("&", "\\T\\"), ("~", "\\R\\")):
        text = text.replace(char, escape)
    return text.replace("\r", " ").replace("\n", " ")


class _Connection(socketserver.StreamRequestHandler):
    """One sender's connection: frames in, one ACK out per frame, until the sender hangs up."""

    server: MllpServer

    def handle(self) -> None:
        buffer = b""
        while True:
            chunk = self.request.recv(65536)
            if not chunk:
                return
            buffer += chunk
            if len(buffer) > self.server.max_bytes:
                log.error("frame over %d bytes from %s: connection closed", self.server.max_bytes, self.client_address)
                return
            while (start := buffer.find(START)) != -1 and (end := buffer.find(END, start)) != -1:
                message, buffer = buffer[start + 1 : end], buffer[end + len(END) :]
                self.wfile.write(START + acknowledge(self.server.services, message) + END)


class MllpServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, services: Services, host: str, port: int) -> None:
        super().__init__((host, port), _Connection)
        self.services = services
        self.max_bytes = services.config.max_bytes

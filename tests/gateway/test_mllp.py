"""HL7 v2 over MLLP against a real listener (``yiyang mllp`` in a child process): each message
is persisted before its ACK — AA when it landed, AE with the reasons when quarantined, AR when
it is not HL7 — and a message sent twice is written once."""

from __future__ import annotations

import base64
import os
import socket
import sqlite3
import struct
import subprocess
import sys
import time
import unicodedata
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conformance.id_card import check_char
from gateway.cli import main
from gateway.ingest.quarantine import Reason
from gateway.mllp import ack, acknowledge, error_location, failed, peer_of
from gateway.storage import open_store, sqlite_path
from gateway.storage.store import StoreError
from tests.conftest import MakeServices, add_client, free_port

ROOT = Path(__file__).resolve().parents[2]
START, END = b"\x0b", b"\x1c\r"


def sample_messages() -> list[bytes]:
    data = (ROOT / "mappings/samples/hl7v2/adt.hl7").read_bytes().replace(b"\r\n", b"\r").replace(b"\n", b"\r")
    return [b"MSH" + part for part in data.split(b"MSH")[1:]]


def start_listener(url: str, *peers: str, **settings: str) -> tuple[subprocess.Popen[bytes], int]:
    """``yiyang mllp`` in a child process, accepting ``peers`` (ADDRESS=CLIENT), once it listens;
    ``settings`` are YIYANG_* variables for it (``max_bytes="4000"``)."""
    port = free_port()
    command = [sys.executable, "-m", "gateway.cli", "mllp", "--port", str(port), "--database", url]
    command += [option for peer in peers for option in ("--peer", peer)]
    environment = {**os.environ, **{f"YIYANG_{name.upper()}": value for name, value in settings.items()}}
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=environment)
    deadline = time.monotonic() + 60
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return child, port
        except OSError:
            if time.monotonic() > deadline or child.poll() is not None:
                child.kill()
                raise
            time.sleep(0.2)


def hospital_listener(folder: Path, key: Any, **settings: str) -> Iterator[tuple[int, str]]:
    """A listener accepting the hospital's interface engine on 127.0.0.1 (client his-mllp)."""
    url = f"sqlite:///{folder / 'archive.sqlite'}"
    add_client(
        url, "his-mllp", key=key, scope="system/*.cruds", role="hospital", organization="zhengzhou-first-hospital"
    )
    child, port = start_listener(url, "127.0.0.1=his-mllp", **settings)
    yield port, url
    child.terminate()
    child.wait(timeout=30)


@pytest.fixture(scope="module")
def listener(tmp_path_factory: pytest.TempPathFactory, client_key: Any) -> Iterator[tuple[int, str]]:
    yield from hospital_listener(tmp_path_factory.mktemp("mllp"), client_key)


@pytest.fixture(scope="module")
def strict(tmp_path_factory: pytest.TempPathFactory, client_key: Any) -> Iterator[tuple[int, str]]:
    """A listener with tight limits: one message a second, 4,000-byte frames, two connections
    at a time, silent for a second at most."""
    yield from hospital_listener(
        tmp_path_factory.mktemp("mllp-strict"),
        client_key,
        rate_limit_per_second="1",
        max_bytes="4000",
        mllp_max_connections="2",
        mllp_idle_seconds="1",
    )


def send(port: int, message: bytes) -> str:
    with socket.create_connection(("127.0.0.1", port), timeout=60) as connection:
        return exchange(connection, message)


def exchange(connection: socket.socket, message: bytes) -> str:
    """One framed message sent on an open connection, and its ACK."""
    connection.sendall(START + message + END)
    answer = b""
    while not answer.endswith(END):
        chunk = connection.recv(65536)
        if not chunk:
            break
        answer += chunk
    return answer.strip(START + END).decode("utf-8")


def reheaded(message: bytes, number: int, value: bytes) -> bytes:
    """The message with MSH-``number`` set to ``value``."""
    header, _, rest = message.partition(b"\r")
    fields = header.split(b"|")
    fields[number - 1] = value
    return b"|".join(fields) + b"\r" + rest


def acknowledgement(answer: str) -> str:
    return next(segment for segment in answer.split("\r") if segment.startswith("MSA")).split("|")[1]


def test_an_admission_is_acknowledged_aa_with_its_control_id(listener: tuple[int, str]) -> None:
    answer = send(listener[0], sample_messages()[0])
    msa = next(segment for segment in answer.split("\r") if segment.startswith("MSA"))
    assert msa == "MSA|AA|HIS20261102091502"


def test_an_acknowledged_admission_is_already_in_the_store(listener: tuple[int, str]) -> None:
    send(listener[0], sample_messages()[0])
    store = open_store(listener[1])
    with store.reading() as tx:
        counts = tx.resources.counts()
    store.close()
    assert counts.get("Encounter", 0) >= 1


def test_a_frame_begun_again_before_it_ended_is_read_from_its_new_start(listener: tuple[int, str]) -> None:
    """A sender that gave up a frame half sent and began it again: read as one frame, the two
    starts were answered AR for two messages, naming a facility code as the control id."""
    message = sample_messages()[0]
    with socket.create_connection(("127.0.0.1", listener[0]), timeout=60) as connection:
        connection.sendall(START + message[:40])
        answer = exchange(connection, message)
    msa = next(segment for segment in answer.split("\r") if segment.startswith("MSA"))
    assert msa == "MSA|AA|HIS20261102091502"


def acknowledgements(connection: socket.socket, count: int) -> list[str]:
    """The MSA codes of the next ``count`` ACKs on the connection."""
    received = b""
    while received.count(END) < count:
        chunk = connection.recv(65536)
        if not chunk:
            break
        received += chunk
    return [acknowledgement(frame.strip(START).decode("utf-8")) for frame in received.split(END)[:count]]


def test_a_frame_ended_without_its_cr_is_answered_at_once(listener: tuple[int, str]) -> None:
    """Some senders end a block with FS alone: the frame waited for a CR that never came, and
    the sender, unanswered, until the connection's idle timeout (ten minutes)."""
    message = reheaded(sample_messages()[0], 10, b"NO-TRAILER-1")
    with socket.create_connection(("127.0.0.1", listener[0]), timeout=20) as connection:
        connection.sendall(START + message + b"\x1c")
        assert acknowledgements(connection, 1) == ["AA"]


def test_frames_without_their_crs_sent_back_to_back_are_each_answered(listener: tuple[int, str]) -> None:
    first, second = (reheaded(sample_messages()[0], 10, f"NO-TRAILER-{n}".encode()) for n in (2, 3))
    with socket.create_connection(("127.0.0.1", listener[0]), timeout=20) as connection:
        connection.sendall(START + first + b"\x1c" + START + second + b"\x1c")
        assert acknowledgements(connection, 2) == ["AA", "AA"]


def test_a_message_sent_twice_is_written_once(listener: tuple[int, str]) -> None:
    message = sample_messages()[0]
    send(listener[0], message)
    store = open_store(listener[1])
    with store.reading() as tx:
        before = tx.resources.history(None, None, None, 1)[1]
    answer = send(listener[0], message)
    with store.reading() as tx:
        after = tx.resources.history(None, None, None, 1)[1]
    store.close()
    assert (acknowledgement(answer), after) == ("AA", before)


def test_a_partly_accepted_message_sent_again_is_acknowledged_as_it_was_the_first_time(
    listener: tuple[int, str],
) -> None:
    """Its IN1 quarantined, the first ACK warns with ERR segments; the same message again (its
    ACK lost) was answered a bare AA, and the sender never heard of the IN1."""
    message = reheaded(sample_messages()[0], 10, b"PARTIAL-AGAIN").replace(
        "IN1|2|410^长期照护保险^NHSA_INSUTYPE|".encode(), b"IN1|2||"
    )
    answers = [send(listener[0], message) for _ in range(2)]
    warnings = [[s for s in answer.split("\r") if s.startswith("ERR")] for answer in answers]
    assert (acknowledgement(answers[1]), bool(warnings[0]), warnings[1]) == ("AA", True, warnings[0])


def test_a_message_the_profiles_refuse_is_acknowledged_ae_with_an_err_segment(listener: tuple[int, str]) -> None:
    broken = sample_messages()[0].replace(b"410105194912310020", b"410105194912310021")
    answer = send(listener[0], broken)
    assert (acknowledgement(answer), any(s.startswith("ERR") for s in answer.split("\r"))) == ("AE", True)


def test_a_message_type_no_spec_takes_is_rejected_ar_as_unsupported(listener: tuple[int, str]) -> None:
    answer = send(listener[0], reheaded(sample_messages()[0], 9, b"ORU^R01"))
    errors = [s for s in answer.split("\r") if s.startswith("ERR")]
    assert (acknowledgement(answer), "200^Unsupported message type" in errors[0]) == ("AR", True)


def test_a_supported_message_lacking_a_segment_is_an_error_of_its_segments_not_of_its_type(
    listener: tuple[int, str],
) -> None:
    """An ADT^A04 without PV1 was rejected AR 200 "Unsupported message type", yet ADT^A04 is
    a type the gateway takes: the sender is told which segment its message lacks."""
    register = sample_messages()[1]
    assert b"ADT^A04" in register
    lacking = b"".join(s + b"\r" for s in register.split(b"\r") if s and not s.startswith(b"PV1"))
    answer = send(listener[0], reheaded(lacking, 10, b"NOPV1"))
    error = segment(answer, "ERR")
    assert (acknowledgement(answer), error[3]) == ("AE", "100^Segment sequence error^HL70357")
    assert "ingest.no-spec-segments" in error[8] and "PV1" in error[8]


def test_an_event_no_spec_takes_of_a_supported_type_is_rejected_as_an_unsupported_event(
    listener: tuple[int, str],
) -> None:
    error = segment(send(listener[0], reheaded(sample_messages()[0], 9, b"ADT^A02^ADT_A02")), "ERR")
    named = "ADT\\S\\A02" in error[8]  # ADT^A02, its ^ escaped
    assert (error[2], error[3], named) == ("MSH^1^9", "201^Unsupported event code^HL70357", True)


@pytest.mark.parametrize(
    ("number", "value", "condition"),
    [
        (12, b"9.9", "203^Unsupported version id"),
        (11, b"T", "202^Unsupported processing id"),
        (11, b"D", "202^Unsupported processing id"),
        (18, b"KOI8-R", "103^Table value not found"),
    ],
)
def test_a_message_of_another_version_processing_id_or_character_set_is_rejected_and_kept(
    listener: tuple[int, str], number: int, value: bytes, condition: str
) -> None:
    message = reheaded(sample_messages()[2], number, value)
    answer = send(listener[0], message)
    error = segment(answer, "ERR")
    kept = [reason["id"] for entry in quarantined(listener[1], message) for reason in entry["reasons"]]
    assert (acknowledgement(answer), error[2], error[3], len(kept)) == (
        "AR",
        f"MSH^1^{number}",
        f"{condition}^HL70357",
        1,
    )


def segment(answer: str, name: str) -> list[str]:
    return next(part for part in answer.split("\r") if part.startswith(name)).split("|")


def test_the_ack_is_sent_by_the_receiver_the_message_named(listener: tuple[int, str]) -> None:
    """HL7 chapter 2: the ACK's MSH-3/4 are the message's MSH-5/6, its MSH-5/6 the message's MSH-3/4."""
    header = segment(send(listener[0], sample_messages()[0]), "MSH")
    assert header[2:6] == ["YIYANG-GW", "YYPT", "HIS", "H41010500012"]


def test_the_ack_of_a_message_naming_no_receiver_is_sent_by_the_gateway(listener: tuple[int, str]) -> None:
    message = reheaded(reheaded(sample_messages()[0], 5, b""), 6, b"")
    assert segment(send(listener[0], message), "MSH")[2:4] == ["YIYANG", "GATEWAY"]


def test_the_ack_of_a_message_the_gateway_failed_on_answers_its_control_id_and_sender() -> None:
    header, msa = (failed(sample_messages()[0], "abc123").ack.decode().split("\r")[n].split("|") for n in (0, 1))
    assert (msa[:3], header[4:6]) == (["MSA", "AR", "HIS20261102091502"], ["HIS", "H41010500012"])


def test_the_ack_of_a_gb18030_message_it_could_not_read_names_its_sender_in_its_own_words() -> None:
    """The header was decoded as UTF-8: 住院系统 came back as סԺϵͳ, the hospital as U+FFFD."""
    message = reheaded(reheaded(sample_messages()[0], 3, "住院系统".encode()), 4, "郑州市第一人民医院".encode())
    message = reheaded(message, 18, b"")  # no MSH-18: told GB18030 by its bytes
    header = failed(message.decode().encode("gb18030"), "abc123").ack.decode().split("\r")[0].split("|")
    assert header[4:6] == ["住院系统", "郑州市第一人民医院"]


def test_the_ack_of_a_message_read_as_written_answers_its_control_id_as_sent() -> None:
    """The header of a message that could not be parsed is read as written, escapes and all, and
    the ACK escaped it again: MSH-10 ``A\\F\\B`` was answered in MSA-2 as ``A\\E\\F\\E\\B``."""
    message = reheaded(reheaded(sample_messages()[0], 10, b"A\\F\\B"), 3, b"HIS\\T\\1")
    header, msa = (failed(message, "abc123").ack.decode().split("\r")[n].split("|") for n in (0, 1))
    assert (msa[2], header[4]) == ("A\\F\\B", "HIS\\T\\1")


@given(st.text(max_size=12))
def test_the_ack_carries_no_control_character_of_the_header_it_echoes(sent: str) -> None:
    """A raw NUL (or MLLP's own framing bytes 0x0B, 0x1C) in MSH-3 went back as sent in
    MSH-5: HL7 v2 has them written as hexadecimal data (``\\X00\\``), a CR ends a segment."""
    answer = ack({"MSH-3": sent, "MSH-10": "1"}, "AA", []).decode()
    assert [c for c in answer if unicodedata.category(c) == "Cc"] == ["\r", "\r"]


def test_a_message_after_a_byte_order_mark_is_read_as_a_file_of_it_would_be(listener: tuple[int, str]) -> None:
    """A UTF-8 byte order mark before MSH (as .NET senders write) made the frame "content
    outside any message": AR without its control id, though a .hl7 file with it is read."""
    answer = send(listener[0], b"\xef\xbb\xbf" + reheaded(sample_messages()[0], 10, b"BOM1"))
    assert segment(answer, "MSA")[1:3] == ["AA", "BOM1"]


def test_the_ack_echoes_composite_header_fields_component_by_component() -> None:
    """MSH-11 ``P^T`` and MSH-12 ``2.5^CHN`` came back escaped whole, as ``P\\S\\T``."""
    message = reheaded(reheaded(sample_messages()[0], 11, b"P^T"), 12, b"2.5^CHN")
    header = failed(message, "abc123").ack.decode().split("\r")[0].split("|")
    assert header[10:12] == ["P^T", "2.5^CHN"]


def test_a_bad_check_character_is_the_senders_data_error_not_an_internal_one(listener: tuple[int, str]) -> None:
    """HL7 table 0357: 102 data type error; 207 would tell the HIS the gateway had failed."""
    broken = sample_messages()[0].replace(b"410105194912310020", b"410105194912310021")
    assert segment(send(listener[0], broken), "ERR")[3] == "102^Data type error^HL70357"


@pytest.mark.parametrize(
    ("message_id", "condition"),
    [
        ("ingest.document-mismatch", "205^Duplicate key identifier"),
        ("ingest.unreadable", "102^Data type error"),
        ("ingest.internal-error", "207^Application internal error"),
    ],
)
def test_an_ingest_reason_has_the_condition_of_what_the_sender_sent(message_id: str, condition: str) -> None:
    """207 only for the gateway's own failure: the rest is the sender's data or keys."""
    from gateway.ingest.quarantine import Reason
    from gateway.mllp import _condition

    assert _condition(Reason(message_id, {"zh-CN": "", "en": ""})) == condition


def test_an_ack_declares_its_character_set_and_a_short_control_id(listener: tuple[int, str]) -> None:
    """Its reasons are Chinese; without MSH-18 a receiver would read ASCII (HL7 v2.5)."""
    header = segment(send(listener[0], sample_messages()[0]), "MSH")
    assert (header[17], len(header[9]) <= 20) == ("UNICODE UTF-8", True)


def test_an_error_names_the_field_of_the_message_as_an_erl(listener: tuple[int, str]) -> None:
    """The 身份证号 with a bad check character is the second repetition of PID-3 (type ID)."""
    broken = sample_messages()[0].replace(b"410105194912310020", b"410105194912310021")
    assert segment(send(listener[0], broken), "ERR")[2] == "PID^1^3^2^1"


def test_a_message_whose_content_cannot_be_read_is_rejected_naming_its_control_id(
    listener: tuple[int, str],
) -> None:
    message = sample_messages()[0]
    header, _, rest = message.partition(b"\r")
    answer = send(listener[0], header + b"\r" + rest.replace(b"PID|", b"PID|\x01", 1))
    assert segment(answer, "MSA")[1:3] == ["AR", "HIS20261102091502"]


def test_why_a_message_cannot_be_read_is_worded_in_chinese_in_its_err(listener: tuple[int, str]) -> None:
    header, _, rest = sample_messages()[0].partition(b"\r")
    answer = send(listener[0], header + b"\r" + rest.replace(b"PID|", b"PID|\x01", 1))
    assert (
        segment(answer, "ERR")[8]
        == "ingest.unreadable: 无法读取此记录：PID-1：含有控制字符 U+0001，FHIR 文本中不允许出现"
    )


@pytest.mark.parametrize(
    ("field", "erl"),
    [
        ("MLLP message 1, field PID-3[ID].1", "PID^1^3^^1"),
        ("MLLP message 1, field PID-3~2.1", "PID^1^3^2^1"),
        ("MLLP message 1, field IN1[1]-2", "IN1^2^2"),
        ("MLLP message 1, field IN1[1].IN1-2.1", "IN1^2^2^^1"),
        ("MLLP message 1, field PID-7", "PID^1^7"),
        ("MLLP message 1, field PID-11.4.1", "PID^1^11^^4^1"),
        ("MLLP message 1, XPath /a/b", ""),
        (None, ""),
    ],
)
def test_error_locations_are_written_as_erl(field: str | None, erl: str) -> None:
    assert error_location(Reason("x", {"zh-CN": "", "en": ""}, None, field)) == erl


def test_reasons_an_err_cannot_tell_apart_are_one_err_segment() -> None:
    """One IN1 field missing from the two resources it maps to: the sender read two identical ERRs."""
    text = {"zh-CN": "缺少医保人员编号", "en": "no insurance number"}
    reasons = [
        Reason("x", text, f"{kind}.identifier[0]", "MLLP message 1, field IN1-49.1") for kind in ("Coverage", "Patient")
    ]
    answer = ack({"MSH-10": "M1"}, "AA", reasons, "W").decode()
    assert answer.count("ERR|") == 1


@pytest.mark.parametrize("version", ["2.2", "2.3", "2.3.1", "2.4", "2.4^CHN"])
def test_an_ack_in_a_version_before_2_5_holds_its_error_in_err_1(version: str) -> None:
    """Before v2.5 the ERR segment has one field, ERR-1 (segment^sequence^field^code): the
    ACK echoes the message's version, and an AE to a v2.4 sender held its error only in
    fields 2-8, which that version does not have, so the sender read an error without one."""
    reason = Reason("ingest.unreadable", {"zh-CN": "", "en": ""}, None, "MLLP message 1, field PID-7")
    fields = {
        "MSH-10": "M1",
        "MSH-12": version,
        **{f"MSH-12.{n}": part for n, part in enumerate(version.split("^"), 1)},
    }
    assert segment(ack(fields, "AE", [reason]).decode(), "ERR")[1] == "PID^1^7^102&Data type error&HL70357"


def test_a_typed_key_is_located_at_the_repetition_the_record_holds_it_in() -> None:
    reason = Reason("x", {"zh-CN": "", "en": ""}, None, "MLLP message 1, field PID-3[ID].1")
    assert error_location(reason, {"PID-3[ID].1": "PID-3~2.1"}) == "PID^1^3^2^1"


def test_something_that_is_not_hl7_is_rejected_ar_and_kept_in_quarantine(listener: tuple[int, str]) -> None:
    answer = send(listener[0], b"MSH|broken")
    store = open_store(listener[1])
    with store.reading() as tx:
        kept = any(
            entry["file"] == "MLLP" and entry["location"].startswith("bytes") for entry in tx.quarantine.entries()
        )
    store.close()
    assert (acknowledgement(answer), kept) == ("AR", True)


def quarantined(url: str, raw: bytes) -> list[dict[str, Any]]:
    """The quarantine entries holding exactly ``raw``."""
    store = open_store(url)
    with store.reading() as tx:
        found = [entry for entry in tx.quarantine.entries() if base64.b64decode(entry["raw"]) == raw]
    store.close()
    return found


def test_a_frame_of_two_messages_is_rejected_and_kept_whole(listener: tuple[int, str]) -> None:
    """MLLP carries one message per frame: read as one message, the second would be lost."""
    first, second = sample_messages()[:2]
    frame = first + second
    answer = send(listener[0], frame)
    assert (acknowledgement(answer), len(quarantined(listener[1], frame))) == ("AR", 1)


def test_a_message_without_a_control_id_is_rejected_as_a_missing_field(listener: tuple[int, str]) -> None:
    error = segment(send(listener[0], reheaded(sample_messages()[0], 10, b"")), "ERR")
    assert (error[2], error[3]) == ("MSH^1^10", "101^Required field missing^HL70357")


def test_a_message_without_a_control_id_is_kept_in_quarantine(listener: tuple[int, str]) -> None:
    message = reheaded(sample_messages()[1], 10, b"")
    send(listener[0], message)
    [entry] = quarantined(listener[1], message)
    assert [reason["id"] for reason in entry["reasons"]] == ["mllp.no-control-id"]


def audit_events(url: str, condition: str, more_than: int = 0) -> list[str]:
    """The audit rows meeting ``condition``, waiting for the listener's buffer (≤ 10 s) until
    there are more than ``more_than`` of them."""
    store = open_store(url)
    deadline, found = time.monotonic() + 10, []
    while len(found) <= more_than and time.monotonic() < deadline:
        with store.reading() as tx:
            found = [text for (text,) in tx.sql.all(f"SELECT event FROM audit_event WHERE {condition}")]
        time.sleep(0.2)
    store.close()
    return found


def test_each_message_leaves_an_audit_event_naming_its_sender(listener: tuple[int, str]) -> None:
    time.sleep(0.5)  # the listener writes its events every 0.2 s: the earlier tests' are in by now
    earlier = len(audit_events(listener[1], "agent = 'his-mllp'"))
    send(listener[0], sample_messages()[0])
    found = audit_events(listener[1], "agent = 'his-mllp'", more_than=earlier)
    assert len(found) > earlier and '"path":"/mllp/ADT^A01"' in found[-1]


def test_a_sender_not_registered_is_rejected_and_nothing_is_kept(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'archive.sqlite'}"
    child, port = start_listener(url)  # no peer registered: 127.0.0.1 is no one
    try:
        answer = send(port, sample_messages()[0])
    finally:
        child.terminate()
        child.wait(timeout=30)
    store = open_store(url)
    with store.reading() as tx:
        counts, held = tx.resources.counts(), list(tx.quarantine.entries())
    store.close()
    assert (acknowledgement(answer), "mllp.unknown-peer" in answer, counts, held) == ("AR", True, {}, [])


def test_a_sender_over_its_rate_limit_is_slowed_down_and_loses_nothing(strict: tuple[int, str]) -> None:
    """One message a second: three take two seconds at least, and each is answered as usual."""
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", strict[0]), timeout=60) as connection:
        answers = [exchange(connection, message) for message in sample_messages()[:3]]
    took = time.monotonic() - started
    assert (took >= 1.9, ["rate-limited" in answer for answer in answers]) == (True, [False] * 3)


def test_an_oversized_frame_is_rejected_and_audited(strict: tuple[int, str]) -> None:
    time.sleep(1.1)  # a token in the client's bucket again
    first = sample_messages()[0]
    answer = send(strict[0], first.replace(b"\rPID|", b"\rNTE|1||" + b"x" * 5000 + b"\rPID|", 1))
    found = audit_events(strict[1], "event LIKE '%too-large%'")
    assert (segment(answer, "MSA")[1:3], len(found)) == (["AR", "HIS20261102091502"], 1)


def test_a_silent_connection_is_closed(strict: tuple[int, str]) -> None:
    with socket.create_connection(("127.0.0.1", strict[0]), timeout=10) as connection:
        assert connection.recv(1) == b""


@pytest.fixture(scope="module")
def crowded(tmp_path_factory: pytest.TempPathFactory, client_key: Any) -> Iterator[tuple[int, str]]:
    """A listener taking two connections at a time, which keeps a silent one for a minute: a
    third is told from one closed as idle by the time it takes (the strict listener's second
    of silence left a loaded machine too little time to take the first two in)."""
    yield from hospital_listener(
        tmp_path_factory.mktemp("mllp-crowded"), client_key, mllp_max_connections="2", mllp_idle_seconds="60"
    )


def test_a_connection_beyond_the_limit_is_closed_at_once(crowded: tuple[int, str]) -> None:
    """Each of the two is known to be held once it is answered, the second opened after the
    first was: a second's sleep had let the listener, still starting, take the readiness
    probe's connection first, refuse the second one and then keep the third (a clean-clone
    run waited 30 s on it)."""
    address = ("127.0.0.1", crowded[0])
    first_message, second_message = sample_messages()[:2]
    with socket.create_connection(address, timeout=60) as first:
        exchange(first, first_message)
        with socket.create_connection(address, timeout=60) as second:
            exchange(second, second_message)
            with socket.create_connection(address, timeout=30) as refused:
                started = time.monotonic()
                closed = refused.recv(1) == b""
                waited = time.monotonic() - started
    assert (closed, waited < 10) == (True, True)


def test_a_connection_sending_bytes_but_no_frame_is_closed_as_idle(strict: tuple[int, str]) -> None:
    """A byte now and then kept a connection, and its thread, for ever."""
    with socket.create_connection(("127.0.0.1", strict[0]), timeout=10) as connection:
        deadline = time.monotonic() + 5
        try:
            while time.monotonic() < deadline:
                connection.sendall(b"x")
                time.sleep(0.3)
            closed = False
        except OSError:  # the listener closed it: a later send is refused
            closed = True
    assert closed


def test_hosts_that_are_no_sender_cannot_take_the_senders_connections(strict: tuple[int, str]) -> None:
    stranger = ("127.0.0.2", 0)
    strangers = [
        socket.create_connection(("127.0.0.1", strict[0]), timeout=10, source_address=stranger) for _ in range(2)
    ]
    try:
        time.sleep(0.2)
        answer = send(strict[0], sample_messages()[1])
    finally:
        for stranger in strangers:
            stranger.close()
    assert acknowledgement(answer) in ("AA", "AE")


def test_a_host_that_is_no_sender_is_answered_once_then_closed(strict: tuple[int, str]) -> None:
    with socket.create_connection(("127.0.0.1", strict[0]), timeout=10, source_address=("127.0.0.3", 0)) as connection:
        first = exchange(connection, sample_messages()[0])
        connection.settimeout(5)  # closed at once, not left silent
        try:
            second = exchange(connection, sample_messages()[0])
        except ConnectionError:
            second = ""
    assert (acknowledgement(first), second) == ("AR", "")


def test_senders_that_could_never_be_served_are_warned_of_at_start(tmp_path: Path) -> None:
    """An unregistered client and an address that is none started the listener without a word."""
    from gateway.cli.server import peer_warnings
    from gateway.config import Config
    from gateway.services import Services

    config = Config(database_url=f"sqlite:///{tmp_path / 'archive.sqlite'}", mllp_peers="999.1.1.1=nosuchclient")
    services = Services(config)
    try:
        warned = peer_warnings(services, "en")
    finally:
        services.close()
    # one for the address that is none, one for the client no one registered
    assert (len(warned), all("999.1.1.1" in line for line in warned)) == (2, True)


def test_frames_sent_back_to_back_are_each_measured_alone(strict: tuple[int, str]) -> None:
    """Two frames of 2,500 bytes in one read are no frame over the 4,000-byte limit: the first
    was answered AR http.too-large and the connection closed, the second never answered."""
    time.sleep(1.1)  # a token in the client's bucket again
    padded = sample_messages()[0].replace(b"\rPID|", b"\rNTE|1||" + b"x" * 1500 + b"\rPID|", 1)
    frames = [reheaded(padded, 10, f"BURST{n}".encode()) for n in (1, 2)]
    assert all(len(frame) < 4000 < 2 * len(frame) for frame in frames)
    with socket.create_connection(("127.0.0.1", strict[0]), timeout=60) as connection:
        connection.sendall(b"".join(START + frame + END for frame in frames))
        answer = b""
        while answer.count(END) < 2:
            chunk = connection.recv(65536)
            if not chunk:
                break
            answer += chunk
    acks = [part.strip(START).decode("utf-8") for part in answer.split(END) if part]
    assert [segment(ack, "MSA")[2] for ack in acks] == ["BURST1", "BURST2"]
    assert "http.too-large" not in answer.decode("utf-8")


def test_a_message_whose_sender_hung_up_before_its_ack_is_still_audited(strict: tuple[int, str]) -> None:
    """The ACK was written before the AuditEvent, so a sender that reset the connection while
    its message was persisted (an interface engine giving up on a late ACK) left the message
    in the archive and no AuditEvent of it.  The second frame waits a second for the rate
    limit: the connection is reset meanwhile."""
    time.sleep(1.1)  # a token in the client's bucket again
    earlier = len(audit_events(strict[1], "agent = 'his-mllp'"))
    frames = [reheaded(sample_messages()[0], 10, f"RESET{n}".encode()) for n in (1, 2)]
    with socket.create_connection(("127.0.0.1", strict[0]), timeout=60) as connection:
        connection.sendall(b"".join(START + frame + END for frame in frames))
        acknowledgements(connection, 1)
        connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close sends RST
    assert len(audit_events(strict[1], "agent = 'his-mllp'", more_than=earlier + 1)) == earlier + 2


def test_a_store_failing_to_name_the_sender_is_answered_with_the_incident_it_logged(
    make_services: MakeServices, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The store cannot say who sends: AR with http.store-busy, audited as a 503 (the sender
    resends), naming the incident number the log names."""
    services = make_services()

    def failing(*_: Any, **__: Any) -> Any:
        raise StoreError("database is locked", retryable=True)

    monkeypatch.setattr(services.store, "reading", failing)
    peer = peer_of(services, {"127.0.0.1": "his-mllp"}, "127.0.0.1")
    answer = acknowledge(services, sample_messages()[0], peer)
    said = (r.getMessage() for r in caplog.records)
    logged = next(m.split()[1].rstrip(":") for m in said if m.startswith("incident ") and "store failure" in m)
    err = next(segment for segment in answer.ack.decode().split("\r") if segment.startswith("ERR"))
    assert (answer.code, answer.status, answer.reason, logged in err) == ("AR", 503, "http.store-busy", True)


def test_a_message_from_a_host_that_is_no_sender_is_answered_from_its_header_alone(
    make_services: MakeServices, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nothing a stranger sends is kept, yet its whole frame was read as a message first: a
    57 MB one cost the listener 4 s of CPU, once a second for every address on the network."""
    services = make_services()

    def reading(*_: Any, **__: Any) -> Any:
        raise AssertionError("a refused sender's message was read")

    monkeypatch.setattr("gateway.mllp.read_message", reading)
    answer = acknowledge(services, sample_messages()[0], peer_of(services, {}, "192.0.2.7"))
    assert segment(answer.ack.decode(), "MSA")[1:3] == ["AR", "HIS20261102091502"]


def test_a_host_that_is_no_sender_is_answered_once_its_header_has_come(strict: tuple[int, str]) -> None:
    """A stranger's frame was buffered whole before it was answered (from its header alone):
    four strangers sending frames of ``YIYANG_MAX_BYTES`` held half a gigabyte.  This frame
    never ends, yet its header is answered."""
    header, _, rest = sample_messages()[0].partition(b"\r")
    with socket.create_connection(("127.0.0.1", strict[0]), timeout=10, source_address=("127.0.0.6", 0)) as connection:
        connection.sendall(START + header + b"\r" + rest[:20])
        answer = b""
        while not answer.endswith(END) and (chunk := connection.recv(65536)):
            answer += chunk
    assert segment(answer.strip(START + END).decode("utf-8"), "MSA")[1:3] == ["AR", "HIS20261102091502"]


def test_a_host_that_is_no_sender_sending_no_frame_is_answered_after_a_few_kilobytes(
    listener: tuple[int, str],
) -> None:
    """Bytes before a frame's start were buffered up to ``YIYANG_MAX_BYTES`` (64 MiB) before a
    stranger was answered; it is answered after ``STRANGER_BYTES``, and what it sends after
    is dropped as it comes."""
    with socket.create_connection(
        ("127.0.0.1", listener[0]), timeout=10, source_address=("127.0.0.7", 0)
    ) as connection:
        connection.sendall(b"x" * 1024 * 1024)
        answer = b""
        while not answer.endswith(END) and (chunk := connection.recv(65536)):
            answer += chunk
    assert "mllp.unknown-peer" in answer.decode("utf-8")


def test_a_revoked_sender_is_answered_once_its_header_has_come(tmp_path: Path, client_key: Any) -> None:
    """A registered address whose client is revoked is refused as a stranger is, yet its frame
    was buffered whole first (up to ``YIYANG_MAX_BYTES``).  This frame never ends, yet its
    header is answered before the connection's idle second runs out."""
    url = f"sqlite:///{tmp_path / 'archive.sqlite'}"
    add_client(url, "his-revoked", key=client_key, scope="system/*.cruds", role="hospital", organization="x")
    assert main(["client", "revoke", "--id", "his-revoked", "--database", url]) == 0
    child, port = start_listener(url, "127.0.0.1=his-revoked", mllp_idle_seconds="1")
    header, _, rest = sample_messages()[0].partition(b"\r")
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
            connection.sendall(START + header + b"\r" + rest[:20])
            answer = b""
            while not answer.endswith(END) and (chunk := connection.recv(65536)):
                answer += chunk
    finally:
        child.terminate()
        child.wait(timeout=30)
    assert segment(answer.strip(START + END).decode("utf-8"), "MSA")[1:3] == ["AR", "HIS20261102091502"]


def enhanced(message: bytes, accept: bytes, application: bytes) -> bytes:
    """The message asking for enhanced-mode acknowledgments (MSH-15, MSH-16)."""
    return reheaded(reheaded(message, 15, accept), 16, application)


def test_an_accept_ack_is_sent_when_msh_15_asks_for_one(listener: tuple[int, str]) -> None:
    """HL7 v2.5 §2.9.3: a commit accept, CA, once the message is safe in the store; MSH-16 NE
    asks for no application ACK.  Original mode answered AA whatever the sender asked."""
    message = enhanced(reheaded(sample_messages()[0], 10, b"ENHANCED-1"), b"AL", b"NE")
    after = reheaded(sample_messages()[0], 10, b"ENHANCED-1B")  # original mode: its AA follows
    with socket.create_connection(("127.0.0.1", listener[0]), timeout=20) as connection:
        connection.sendall(START + message + END + START + after + END)
        assert acknowledgements(connection, 2) == ["CA", "AA"]


def test_an_application_ack_follows_the_accept_ack_when_msh_16_asks(listener: tuple[int, str]) -> None:
    message = enhanced(reheaded(sample_messages()[0], 10, b"ENHANCED-2"), b"AL", b"AL")
    with socket.create_connection(("127.0.0.1", listener[0]), timeout=20) as connection:
        connection.sendall(START + message + END)
        assert acknowledgements(connection, 2) == ["CA", "AA"]


def test_no_ack_is_sent_for_a_message_whose_conditions_ask_for_none(listener: tuple[int, str]) -> None:
    """Accept ACK on errors only, application ACK on errors only, and the message lands: the
    next reply on the connection is the ACK of the next message (original mode, its own id)."""
    quiet = enhanced(reheaded(sample_messages()[0], 10, b"ENHANCED-3"), b"ER", b"ER")
    with socket.create_connection(("127.0.0.1", listener[0]), timeout=20) as connection:
        connection.sendall(START + quiet + END + START + reheaded(sample_messages()[0], 10, b"ENHANCED-4") + END)
        answer = b""
        while not answer.endswith(END) and (chunk := connection.recv(65536)):
            answer += chunk
    assert segment(answer.strip(START + END).decode("utf-8"), "MSA")[1:3] == ["AA", "ENHANCED-4"]


def test_a_message_of_an_unsupported_version_is_a_commit_reject_in_enhanced_mode(listener: tuple[int, str]) -> None:
    """CR (§2.9.3.1: MSH-12 not acceptable), with the reason's ERR, and no application ACK."""
    message = enhanced(reheaded(sample_messages()[2], 12, b"9.9"), b"ER", b"AL")
    with socket.create_connection(("127.0.0.1", listener[0]), timeout=20) as connection:
        connection.sendall(START + message + END + START + reheaded(sample_messages()[0], 10, b"ENHANCED-5") + END)
        assert acknowledgements(connection, 2) == ["CR", "AA"]


def admissions(count: int) -> Iterator[bytes]:
    """The sample admission, once for each of ``count`` people of their own (numbers, visit)."""
    first = sample_messages()[0]
    for number in range(count):
        body = f"41010519491231{2 * number:03d}"  # even: a woman's
        yield (
            first.replace(b"0000123", f"{number:07d}".encode())
            .replace(b"410105194912310020", (body + check_char(body)).encode())
            .replace(b"41000000000000012345", f"{41000000000000100000 + number}".encode())
            .replace(b"ZY20261102003", f"ZY2026110{number:04d}".encode())
            .replace(b"HIS20261102091502", f"HIS{number:014d}".encode())
        )


def resource_statistics(url: str) -> int:
    """The rows of SQLite's statistics of ``resource``, read without a store (which analyses
    as it opens)."""
    with closing(sqlite3.connect(sqlite_path(url))) as connection:
        try:
            return int(connection.execute("SELECT COUNT(*) FROM sqlite_stat1 WHERE tbl = 'resource'").fetchone()[0])
        except sqlite3.OperationalError:  # no such table: never analysed
            return 0


def test_a_listener_refreshes_the_statistics_once_its_admissions_grew_the_archive(
    tmp_path: Path, client_key: Any
) -> None:
    """The listener never analysed: a hospital's feed was planned as the archive it found at
    its start until autovacuum came (``Store.analyze_after``, asked of what it wrote since)."""
    with contextmanager(hospital_listener)(tmp_path, client_key) as (port, url):
        with socket.create_connection(("127.0.0.1", port), timeout=60) as connection:
            answers = [acknowledgement(exchange(connection, message)) for message in admissions(30)]
    assert (set(answers), resource_statistics(url) > 0) == ({"AA"}, True)

"""HL7 v2 over MLLP against a real listener (``yiyang mllp`` in a child process): each message
is persisted before its ACK — AA when it landed, AE with the reasons when quarantined, AR when
it is not HL7 — and a message sent twice is written once."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.storage import open_store
from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]
START, END = b"\x0b", b"\x1c\r"


def sample_messages() -> list[bytes]:
    data = (ROOT / "mappings/samples/hl7v2/adt.hl7").read_bytes().replace(b"\r\n", b"\r").replace(b"\n", b"\r")
    return [b"MSH" + part for part in data.split(b"MSH")[1:]]


@pytest.fixture(scope="module")
def listener(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, str]]:
    url = f"sqlite:///{tmp_path_factory.mktemp('mllp') / 'archive.sqlite'}"
    port = free_port()
    command = [sys.executable, "-m", "gateway.cli", "mllp", "--port", str(port), "--database", url]
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if time.monotonic() > deadline or child.poll() is not None:
                child.kill()
                raise
            time.sleep(0.2)
    yield port, url
    child.terminate()
    child.wait(timeout=30)


def send(port: int, message: bytes) -> str:
    with socket.create_connection(("127.0.0.1", port), timeout=60) as connection:
        connection.sendall(START + message + END)
        answer = b""
        while not answer.endswith(END):
            chunk = connection.recv(65536)
            if not chunk:
                break
            answer += chunk
    return answer.strip(START + END).decode("utf-8")


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


def test_a_message_the_profiles_refuse_is_acknowledged_ae_with_an_err_segment(listener: tuple[int, str]) -> None:
    broken = sample_messages()[0].replace(b"410105194912310020", b"410105194912310021")
    answer = send(listener[0], broken)
    assert (acknowledgement(answer), any(s.startswith("ERR") for s in answer.split("\r"))) == ("AE", True)


def test_a_message_type_no_spec_takes_is_rejected_ar_as_unsupported(listener: tuple[int, str]) -> None:
    first = sample_messages()[0]
    header, _, rest = first.partition(b"\r")
    fields = header.split(b"|")
    fields[8] = b"ORU^R01"
    answer = send(listener[0], b"|".join(fields) + b"\r" + rest)
    errors = [s for s in answer.split("\r") if s.startswith("ERR")]
    assert (acknowledgement(answer), "200^Unsupported message type" in errors[0]) == ("AR", True)


def test_something_that_is_not_hl7_is_rejected_ar_and_kept_in_quarantine(listener: tuple[int, str]) -> None:
    answer = send(listener[0], b"MSH|broken")
    store = open_store(listener[1])
    with store.reading() as tx:
        kept = any(
            entry["file"] == "MLLP" and entry["location"].startswith("bytes") for entry in tx.quarantine.entries()
        )
    store.close()
    assert (acknowledgement(answer), kept) == ("AR", True)

"""The README's first command: ``yiyang serve --demo`` on a fresh embedded store serves the demo
archive, in which the elder every source knows is one Patient; ``yiyang export`` and
``yiyang db upgrade`` work on the store it wrote."""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from gateway.cli import main
from tests.conftest import (
    TEST_CLIENT,
    Api,
    add_client,
    load_example,
    request_token,
    running_server,
    server_process,
)

DEMO_ELDER = "urn:oid:2.16.156.10011.1.3|410105194912310020"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory, client_key: Any) -> Iterator[tuple[str, str]]:
    url = f"sqlite:///{tmp_path_factory.mktemp('demo') / 'archive.sqlite'}"
    add_client(url, TEST_CLIENT, key=client_key)
    with running_server(url, "--demo", workers=1) as base:
        yield base, url


@pytest.fixture(scope="module")
def api(demo: tuple[str, str], client_key: Any) -> Iterator[Api]:
    with Api(demo[0], TEST_CLIENT, client_key) as session:
        yield session


def test_the_demo_elder_from_every_source_is_one_patient(demo: tuple[str, str], api: Api) -> None:
    bundle = api.get(f"{demo[0]}/Patient?identifier={DEMO_ELDER}", timeout=60).json()
    assert bundle["total"] == 1


def test_the_demo_elder_carries_the_identifiers_of_every_source(demo: tuple[str, str], api: Api) -> None:
    bundle = api.get(f"{demo[0]}/Patient?identifier={DEMO_ELDER}", timeout=60).json()
    systems = {i["system"].rsplit("/", 1)[-1] for i in bundle["entry"][0]["resource"]["identifier"]}
    assert {"urn:oid:2.16.156.10011.1.3", "urn:oid:2.16.156.10011.1.2", "nhsa-psn-no"} <= systems


def test_export_writes_the_store_as_ndjson(
    demo: tuple[str, str], api: Api, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    main(["export", "--database", demo[1], "--out", str(tmp_path), "--type", "Patient"])
    patients = [json.loads(line) for line in (tmp_path / "Patient.ndjson").read_text(encoding="utf-8").splitlines()]
    found = api.get(f"{demo[0]}/Patient?_summary=count", timeout=60).json()["total"]
    assert len(patients) == found


@pytest.mark.parametrize("kind", ["Foo", "patient"])
def test_export_of_an_unknown_type_is_a_usage_error(demo: tuple[str, str], tmp_path: Path, kind: str) -> None:
    assert main(["export", "--database", demo[1], "--out", str(tmp_path), "--type", kind]) == 2


def test_db_upgrade_of_a_current_store_applies_nothing(
    demo: tuple[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    main(["db", "upgrade", "--lang", "en", "--database", demo[1]])
    assert "(applied: -)" in capsys.readouterr().out


def test_a_secret_flow_enabled_by_hand_is_announced_loudly() -> None:
    import io

    from gateway.cli.server import _announce
    from gateway.config import Config

    out = io.StringIO()
    _announce(Config(allow_client_secret=True), out, "en")
    assert "DEVELOPMENT MODE: client_secret_basic is enabled" in out.getvalue()


# -- what gunicorn refuses before the gateway sees it ----------------------------------------
def _codes(answer: requests.Response) -> tuple[int, str, list[str]]:
    outcome = answer.json()
    return (
        answer.status_code,
        answer.headers["Content-Type"],
        [i["details"]["coding"][0]["code"] for i in outcome["issue"]],
    )


def test_a_request_line_over_the_limit_is_a_414_operation_outcome(demo: tuple[str, str]) -> None:
    """A search of a thousand ids in the query: gunicorn's HTML page was no answer a FHIR client reads."""
    answer = requests.get(f"{demo[0]}/Patient?_id={','.join(f'p{i:05d}' for i in range(1400))}", timeout=60)
    assert _codes(answer) == (414, "application/fhir+json; charset=utf-8", ["http.request-line-too-long"])


def test_a_request_gunicorn_refuses_leaves_an_audit_event(demo: tuple[str, str], api: Api) -> None:
    """Every request leaves an AuditEvent, a refused one too: one gunicorn refused before the
    gateway saw it (a request line over its limit) left none, so whoever probed the server with
    such requests was in no trail, only in the log."""
    requests.get(f"{demo[0]}/Patient?_id={','.join(f'q{i:05d}' for i in range(1400))}", timeout=60)
    events = api.get(f"{demo[0]}/AuditEvent", params={"outcome": "4", "_sort": "-date", "_count": "50"}, timeout=60)
    said = [e["resource"].get("outcomeDesc", "") for e in events.json()["entry"]]
    assert any(text.startswith("HTTP 414: http.request-line-too-long") for text in said)


def test_a_header_over_the_limit_is_a_431_operation_outcome(demo: tuple[str, str]) -> None:
    answer = requests.get(f"{demo[0]}/metadata", headers={"X-Padding": "x" * 9000}, timeout=60)
    assert _codes(answer) == (431, "application/fhir+json; charset=utf-8", ["http.headers-too-large"])


def test_bytes_that_are_no_http_are_a_400_operation_outcome(demo: tuple[str, str]) -> None:
    address = urlsplit(demo[0])
    with socket.create_connection((address.hostname, address.port), timeout=60) as connection:
        connection.sendall(b"GET /fhir/metadata HTTP/9.9\r\n\r\n")
        head, _, body = connection.makefile("rb").read().partition(b"\r\n\r\n")
    assert (head.split(b" ", 2)[1], json.loads(body)["issue"][0]["details"]["coding"][0]["code"]) == (
        b"400",
        "http.malformed-request",
    )


def test_a_revoked_demo_client_gets_no_new_secret(tmp_path: Path) -> None:
    """``serve --demo`` re-keyed it and printed a curl that answered 401: it says so instead."""
    from gateway.config import Config
    from gateway.demo import DEMO_CLIENT, register_demo_client
    from gateway.services import Services

    services = Services(Config.load(database_url=f"sqlite:///{tmp_path / 'archive.sqlite'}"))
    try:
        register_demo_client(services)
        with services.store.transaction() as tx:
            tx.security.revoke(DEMO_CLIENT)
        again = register_demo_client(services)
    finally:
        services.close()
    assert again is None


# -- requests in flight -------------------------------------------------------------------------
def held_create(base: str, token: str, while_held: Callable[[], None]) -> bytes:
    """The status line of a Patient create held in flight by its body, sent only once
    ``while_held`` has run (``Expect: 100-continue`` says when the worker has the request)."""
    body = json.dumps(load_example("yy-patient/valid-zhang-xiuying.json")).encode()
    address = urlsplit(base)
    with socket.create_connection((address.hostname, address.port), timeout=60) as connection:
        connection.sendall(
            f"POST {address.path}/Patient HTTP/1.1\r\nHost: {address.netloc}\r\n"
            f"Authorization: Bearer {token}\r\nContent-Type: application/fhir+json\r\n"
            f"Content-Length: {len(body)}\r\nExpect: 100-continue\r\n\r\n".encode()
        )
        answer = connection.makefile("rb")
        answer.readline(), answer.readline()  # "100 Continue": the worker has the request
        while_held()
        connection.sendall(body)
        return answer.readline()


def test_ctrl_c_lets_a_write_in_flight_finish(tmp_path: Path, client_key: Any) -> None:
    """Ctrl-C (SIGINT to the server's process group, as a terminal sends it) made gunicorn's
    workers exit at once: a create caught mid-request was answered 500, an incident, and one
    caught after its commit told its client that what it had stored had failed."""
    url = f"sqlite:///{tmp_path / 'archive.sqlite'}"
    add_client(url, TEST_CLIENT, key=client_key)
    with server_process(url, workers=1) as (base, child):
        token = request_token(base, TEST_CLIENT, client_key).json()["access_token"]

        def interrupt() -> None:
            os.killpg(child.pid, signal.SIGINT)
            time.sleep(0.5)  # the signal reaches the worker, waiting for the body

        status = held_create(base, token, interrupt)
        child.wait(timeout=30)
    assert status.split(b" ", 2)[1] == b"201"


def test_a_request_longer_than_the_worker_timeout_is_answered(tmp_path: Path, client_key: Any) -> None:
    """gunicorn's master kills a worker whose heartbeat is older than its timeout (30 s by
    default), and its sync worker beat only between requests: a ``$ingest`` of 3,000 records
    was killed after 30 s and answered 500, with 2,167 of them stored.  Here a create waits
    for the store's write lock, held past a timeout of 2 s (by the server's work, not by a
    silent client: that one is cut off, below)."""
    path = tmp_path / "archive.sqlite"
    add_client(f"sqlite:///{path}", TEST_CLIENT, key=client_key)
    with server_process(f"sqlite:///{path}", workers=1, env={"YIYANG_WORKER_TIMEOUT": "2"}) as (base, _):
        token = request_token(base, TEST_CLIENT, client_key).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/fhir+json"}
        body = json.dumps(load_example("yy-patient/valid-zhang-xiuying.json"))
        with ThreadPoolExecutor(1) as pool:
            held = sqlite3.connect(path, isolation_level=None, timeout=60)
            try:
                held.execute("BEGIN IMMEDIATE")  # the write lock, as a long ingest holds it
                create = pool.submit(requests.post, f"{base}/Patient", data=body, headers=headers, timeout=60)
                time.sleep(5)
                held.execute("COMMIT")
            finally:
                held.close()
            status = create.result().status_code
    assert status == 201


@pytest.mark.parametrize("threads", [1, 2])
def test_a_store_busy_past_the_worker_timeout_answers_503(tmp_path: Path, client_key: Any, threads: int) -> None:
    """A request waiting on a busy store longer than the worker timeout is answered, not
    dropped: the store's wait (here SQLite's busy timeout, 3 s) may exceed the worker timeout
    (2 s), because the worker's heart beats from a thread of its own while the request waits,
    so the master does not kill it before its 503 ``http.store-busy`` (the gthread worker's
    main loop beats whatever its threads wait for)."""
    path = tmp_path / "archive.sqlite"
    add_client(f"sqlite:///{path}", TEST_CLIENT, key=client_key)
    env = {"YIYANG_WORKER_TIMEOUT": "2", "YIYANG_SQLITE_BUSY_TIMEOUT_SECONDS": "3", "YIYANG_THREADS": str(threads)}
    with server_process(f"sqlite:///{path}", workers=1, env=env) as (base, _):
        token = request_token(base, TEST_CLIENT, client_key).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/fhir+json"}
        body = json.dumps(load_example("yy-patient/valid-zhang-xiuying.json"))
        held = sqlite3.connect(path, isolation_level=None, timeout=60)
        try:
            held.execute("BEGIN IMMEDIATE")  # the write lock, held until the create has its answer
            answer = requests.post(f"{base}/Patient", data=body, headers=headers, timeout=60)
        finally:
            held.close()
    assert (answer.status_code, answer.json()["issue"][0]["details"]["coding"][0]["code"]) == (503, "http.store-busy")


def test_serve_listens_on_an_ipv6_address(tmp_path: Path) -> None:
    """``--host ::1`` was handed to gunicorn as ``::1:PORT``, which it refused ("'' is not a
    valid port number", an internal error), and announced ``http://::1:PORT/fhir``."""
    with server_process(f"sqlite:///{tmp_path / 'archive.sqlite'}", workers=1, host="::1") as (base, _):
        capabilities = requests.get(f"{base}/metadata", timeout=60).json()
    assert capabilities["implementation"]["url"] == base


@pytest.mark.parametrize("threads", [1, 2])
def test_a_silent_client_does_not_hold_a_worker_for_good(tmp_path: Path, threads: int) -> None:
    """A worker reads a request from a blocking socket: a client that opens a connection and
    sends half a request line held the sync worker until the master killed it as silent, and
    once its heart beat from a thread of its own, for good; it holds a gthread worker's thread
    for good (the worker's main loop beats).  As many such connections as workers (threads)
    stopped the gateway."""
    env = {"YIYANG_WORKER_TIMEOUT": "2", "YIYANG_THREADS": str(threads)}
    with server_process(f"sqlite:///{tmp_path / 'archive.sqlite'}", workers=1, env=env) as (base, _):
        address = urlsplit(base)
        with ExitStack() as silent:
            for _ in range(threads):  # one per thread: each reads its half line and waits
                connection = silent.enter_context(socket.create_connection((address.hostname, address.port), 60))
                connection.sendall(b"GET /fhir/metadata HTTP/1.1\r\n")
            time.sleep(0.5)  # not a measure: lets the worker take the silent ones first
            try:
                status = requests.get(f"{base}/metadata", timeout=30).status_code
            except requests.Timeout:
                status = None
    assert status == 200


def half_a_body(token: str, address: Any, framing: str) -> bytes:
    """The head of a Patient create and half its body, framed by ``Content-Length`` or in one
    chunk of ``Transfer-Encoding: chunked`` whose end never comes."""
    body = json.dumps(load_example("yy-patient/valid-zhang-xiuying.json")).encode()
    half = body[: len(body) // 2]
    head = (
        f"POST {address.path}/Patient HTTP/1.1\r\nHost: {address.netloc}\r\n"
        f"Authorization: Bearer {token}\r\nContent-Type: application/fhir+json\r\nAccept-Language: en\r\n"
    )
    if framing == "chunked":
        return f"{head}Transfer-Encoding: chunked\r\n\r\n{len(body):x}\r\n".encode() + half
    return f"{head}Content-Length: {len(body)}\r\n\r\n".encode() + half


def stalled(tmp_path: Path, client_key: Any, threads: int, framing: str) -> tuple[bytes, dict[str, Any], str]:
    """A create whose body stalls half-way, sent to a server of worker timeout 2 s: the
    answer's status and OperationOutcome, and the server's database URL."""
    url = f"sqlite:///{tmp_path / 'archive.sqlite'}"
    add_client(url, TEST_CLIENT, key=client_key)
    env = {"YIYANG_WORKER_TIMEOUT": "2", "YIYANG_THREADS": str(threads)}
    with server_process(url, workers=1, env=env) as (base, _):
        token = request_token(base, TEST_CLIENT, client_key).json()["access_token"]
        address = urlsplit(base)
        with socket.create_connection((address.hostname, address.port), timeout=60) as connection:
            connection.sendall(half_a_body(token, address, framing))
            head, _, answer = connection.makefile("rb").read().partition(b"\r\n\r\n")
    return head.split(b" ", 2)[1], json.loads(answer), url


@pytest.mark.parametrize("framing", ["length", "chunked"])
@pytest.mark.parametrize("threads", [1, 2])
def test_a_body_that_stalls_past_the_worker_timeout_is_a_408(
    tmp_path: Path, client_key: Any, threads: int, framing: str
) -> None:
    """The socket's read timeout reached the app as a disconnect: a client whose body stalled
    half-way was told it had ended its body (400 ``http.body-cut-short``), which it had not;
    a chunked one was told 500, an incident of the gateway's, for its own silence."""
    status, outcome, _ = stalled(tmp_path, client_key, threads, framing)
    assert (status, outcome["issue"][0]["details"]["coding"][0]["code"]) == (b"408", "http.body-timeout")


def test_a_body_that_stalls_is_audited_as_a_408(tmp_path: Path, client_key: Any) -> None:
    _, _, url = stalled(tmp_path, client_key, 1, "chunked")
    with sqlite3.connect(url.removeprefix("sqlite:///")) as connection:
        events = [json.loads(event) for (event,) in connection.execute("SELECT event FROM audit_event")]
    assert [(e["endpoint"], e["status"]) for e in events if e["method"] == "POST"][-1] == ("fhir.create", 408)


def answered(tmp_path: Path, client_key: Any, sent: Callable[[str, Any], bytes]) -> tuple[bytes, str]:
    """The status and first message id a fresh server answers the bytes ``sent`` makes of a
    token and the server's address with, the connection shut for writing after them."""
    url = f"sqlite:///{tmp_path / 'archive.sqlite'}"
    add_client(url, TEST_CLIENT, key=client_key)
    with server_process(url, workers=1) as (base, _):
        token = request_token(base, TEST_CLIENT, client_key).json()["access_token"]
        address = urlsplit(base)
        with socket.create_connection((address.hostname, address.port), timeout=60) as connection:
            connection.sendall(sent(token, address))
            connection.shutdown(socket.SHUT_WR)
            head, _, answer = connection.makefile("rb").read().partition(b"\r\n\r\n")
    return head.split(b" ", 2)[1], json.loads(answer)["issue"][0]["details"]["coding"][0]["code"]


def test_a_chunked_body_cut_short_is_a_400(tmp_path: Path, client_key: Any) -> None:
    """gunicorn's chunk reader raises its own IOError when the client ends the connection
    before the last chunk: that reached the app raw, a 500 with an incident number."""
    sent = answered(tmp_path, client_key, lambda token, address: half_a_body(token, address, "chunked"))
    assert sent == (b"400", "http.body-cut-short-stream")


@pytest.mark.parametrize("chunks", [b"z2\r\n{}\r\n0\r\n\r\n", b"2\r\n{}XX0\r\n\r\n"], ids=["size", "terminator"])
def test_a_chunked_body_framed_wrongly_is_a_400_of_its_own(tmp_path: Path, client_key: Any, chunks: bytes) -> None:
    """A chunk-size line that is no hexadecimal number, or a chunk not ended by CRLF, was
    told its body had ended before its last chunk, which the client had sent: its fault is
    the framing, which a resend of the same bytes would repeat."""

    def sent(token: str, address: Any) -> bytes:
        return half_a_body(token, address, "chunked").partition(b"\r\n\r\n")[0] + b"\r\n\r\n" + chunks

    assert answered(tmp_path, client_key, sent) == (b"400", "http.body-bad-chunk")

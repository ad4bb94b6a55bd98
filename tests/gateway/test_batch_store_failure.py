"""A batch entry the store fails (its write lock held past the wait the store allows) is
answered alone, as R4 has each batch entry succeed or fail on its own (http.html#brules):
the entries before it are committed already, and a 503 for the whole Bundle had its client
send them again."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import pytest

from gateway import exchanges
from gateway.fhir.bundles import Authorize
from gateway.services import Services
from gateway.storage.postgres import WRITE_BARRIER
from tests.conftest import BACKENDS, MakeServices, fresh_database_url

SYSTEM = "urn:audit"


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A fresh store whose writers wait a second at most for a lock another connection holds:
    SQLite's busy timeout (``YIYANG_SQLITE_BUSY_TIMEOUT_SECONDS``), PostgreSQL's
    ``lock_timeout`` (a libpq option of the URL)."""
    with fresh_database_url(request.param, tmp_path) as url:
        if request.param == "sqlite":
            monkeypatch.setenv("YIYANG_SQLITE_BUSY_TIMEOUT_SECONDS", "1")
            yield url
        else:
            yield f"{url}%20-clock_timeout%3D1000"


@contextmanager
def write_lock_held(url: str) -> Iterator[None]:
    """Every writer of the store kept out by another connection until the block ends."""
    if url.startswith("sqlite"):
        connection = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
        try:
            connection.execute("BEGIN IMMEDIATE")
            yield
            connection.execute("ROLLBACK")
        finally:
            connection.close()
        return
    import psycopg

    with psycopg.connect(url) as connection:  # in a transaction until the block ends
        connection.execute("LOCK TABLE resource IN EXCLUSIVE MODE")  # readers still read
        yield


@contextmanager
def writers_barred(url: str) -> Iterator[None]:
    """Every write transaction of the store kept from beginning until the block ends: SQLite's
    one write lock, PostgreSQL's write barrier (the advisory lock each writer takes shared
    from its BEGIN) taken exclusive; readers go on reading."""
    if url.startswith("sqlite"):
        with write_lock_held(url):
            yield
        return
    import psycopg

    with psycopg.connect(url) as connection:  # in a transaction until the block ends
        connection.execute("SELECT pg_advisory_xact_lock(%s, %s)", WRITE_BARRIER)
        yield


def basic(value: str) -> dict[str, Any]:
    return {
        "resourceType": "Basic",
        "id": value,
        "identifier": [{"system": SYSTEM, "value": value}],
        "code": {"text": "audit"},
    }


def put(value: str) -> dict[str, Any]:
    return {"resource": basic(value), "request": {"method": "PUT", "url": f"Basic/{value}"}}


@pytest.fixture
def held_while_writing(database_url: str) -> Iterator[Callable[[str], Authorize]]:
    """An ``authorize`` hook that holds the store's write lock from another connection while
    the batch writes the entry of the id given (it is asked about each entry before its
    write), released when the next entry is asked about, or when the test ends."""
    with ExitStack() as stack:

        def hook(value: str) -> Authorize:
            def authorize(method: str, kind: str, resource_id: str | None, criteria: str | None) -> None:
                stack.close()
                if resource_id == value:
                    stack.enter_context(write_lock_held(database_url))

            return authorize

        yield hook


@pytest.fixture
def made(make_services: MakeServices) -> Services:
    return make_services("reject")


def test_a_batch_entry_the_store_fails_is_answered_alone(
    made: Services, held_while_writing: Callable[[str], Authorize]
) -> None:
    sent = {"resourceType": "Bundle", "type": "batch", "entry": [put("before"), put("held"), put("after")]}
    answer = made.bundles.process(sent, held_while_writing("held"))
    assert [entry["response"]["status"] for entry in answer["entry"]] == ["201 Created", "503", "201 Created"]


def test_a_batch_entry_the_store_fails_is_located_at_the_entry_and_logged_as_an_incident(
    made: Services, held_while_writing: Callable[[str], Authorize], caplog: pytest.LogCaptureFixture
) -> None:
    """The log, not the client, is told the database's words, and which entry failed."""
    sent = {"resourceType": "Bundle", "type": "batch", "entry": [put("before"), put("held")]}
    with caplog.at_level(logging.ERROR, logger="yiyang.api"):
        answer = made.bundles.process(sent, held_while_writing("held"))
    issue = answer["entry"][1]["response"]["outcome"]["issue"][0]
    logged = [
        r.getMessage() for r in caplog.records if "store failure on Bundle.entry[1] (PUT Basic/held)" in r.getMessage()
    ]
    assert (issue["details"]["coding"][0]["code"], issue["expression"], len(logged)) == (
        "http.store-busy",
        ["Bundle.entry[1]"],
        1,
    )


def test_a_batch_entry_the_store_fails_names_the_incident_the_log_names(
    made: Services, held_while_writing: Callable[[str], Authorize], caplog: pytest.LogCaptureFixture
) -> None:
    """The client gives the maintainers the number, who find the database's words by it."""
    sent = {"resourceType": "Bundle", "type": "batch", "entry": [put("held")]}
    with caplog.at_level(logging.ERROR, logger="yiyang.api"):
        answer = made.bundles.process(sent, held_while_writing("held"))
    said = answer["entry"][0]["response"]["outcome"]["issue"][0]["details"]["text"]
    logged = {r.getMessage().split(":")[0].removeprefix("incident ") for r in caplog.records}
    assert len([incident for incident in logged if incident in said]) == 1


@pytest.mark.parametrize(
    "url", ["Basic/kept", "Basic/kept/_history/1", "Basic?identifier=urn:audit|kept", "Basic/kept/_history"]
)
def test_a_batch_read_goes_on_while_another_writer_holds_the_store(made: Services, database_url: str, url: str) -> None:
    """A read, vread, search or history entry asks for no write transaction, as the same GET
    on its own does not: it waited for the write lock, and failed 503 past the wait."""
    made.repository.update("Basic", "kept", basic("kept"))
    sent = {"resourceType": "Bundle", "type": "batch", "entry": [{"request": {"method": "GET", "url": url}}]}
    with writers_barred(database_url):
        answer = made.bundles.process(sent)
    assert answer["entry"][0]["response"]["status"] == "200 OK"


def test_a_create_the_store_fails_in_a_batch_names_no_id_in_its_exchange(made: Services, database_url: str) -> None:
    """Judged, then failed by the store: the id it was given names nothing stored, as a
    refused create's own exchange says."""
    sent = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [{"resource": basic("new"), "request": {"method": "POST", "url": "Basic"}}],
    }
    assert made.store.schema_version() > 0  # opened, its schema made, before the lock is taken
    collector = exchanges.Collector()
    token = exchanges.activate(collector)
    try:
        with writers_barred(database_url):
            made.bundles.process(sent)
    finally:
        exchanges.deactivate(token)
    assert [row[1] for row in collector.verdicts] == [""]

"""A ``$ingest`` under way when the server is told to stop (SIGTERM, Ctrl-C) ends before its
next record: what it committed stands, its answer says it was cut short, and its AuditEvent
and exchange record are written as any request's.  gunicorn's master kills a worker still
busy ``graceful_timeout`` (10 s) after the signal: a long ingest was killed mid-file, its
committed batches stored with no AuditEvent and no exchange record of the request."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from bench.legacy_samples import rows, write
from gateway.config import Config
from gateway.ingest.identity import IDENTITY_LOCK
from gateway.security.audit import event_of
from gateway.services import Services
from gateway.storage.store import Store
from tests.conftest import BACKENDS, TEST_CLIENT, add_client, fresh_database_url, request_token, server_process

#: rows enough that the rest of the file, ingested on after the signal, outlasts the 10 s
#: gunicorn's master waits for a worker (an ingest commits every 200 records)
ROWS = 3000


@dataclass(frozen=True)
class Stopped:
    """The answer of the ``$ingest`` the server was stopped in, and what the store then held:
    its Patients, the audit trail, the exchange records (interaction, status, verdict)."""

    answer: dict[str, Any] | None
    status: int | None
    patients: list[str]
    events: list[dict[str, Any]]
    exchanges: list[tuple[Any, ...]]


def _patients(store: Store) -> list[str]:
    with store.reading() as tx:
        return [f"Patient/{stored.id}" for stored in tx.resources.current(["Patient"])]


def _hold_identity_lock(store: Store, held: threading.Event, release: threading.Event) -> None:
    """Hold the lock an ingest's batch takes (on SQLite, the write lock), from between two of
    its batches until ``release``: the ingest is caught between batches, wherever the signal
    finds it."""
    with store.transaction() as tx:
        tx.lock(IDENTITY_LOCK)
        tx.resources.exists("Patient", "none")  # the BEGIN and the lock go with a statement
        held.set()
        release.wait(60)
        raise _Rollback


class _Rollback(Exception):
    """Leaves the holding transaction without writing anything."""


@pytest.fixture(scope="module", params=BACKENDS)
def stopped(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, client_key: Any
) -> Iterator[Stopped]:
    folder = tmp_path_factory.mktemp("stopped")
    with fresh_database_url(request.param, folder) as url:
        add_client(url, TEST_CLIENT, key=client_key)
        csv = folder / "个人基本信息表.csv"
        write(csv, rows(ROWS))
        services = Services(Config.load(database_url=url))
        try:
            yield _stop_mid_ingest(url, csv, services.store, client_key)
        finally:
            services.close()


def _stop_mid_ingest(url: str, csv: Path, store: Store, client_key: Any) -> Stopped:
    with server_process(url, workers=1) as (base, child), ThreadPoolExecutor(2) as pool:
        token = request_token(base, TEST_CLIENT, client_key).json()["access_token"]
        ingest = pool.submit(
            requests.post,
            f"{base}/$ingest?source=community-health&filename=个人基本信息表.csv",
            data=csv.read_bytes(),
            headers={"Authorization": f"Bearer {token}", "Content-Type": "text/csv"},
            timeout=120,
        )
        deadline = time.monotonic() + 120
        while not _patients(store) and time.monotonic() < deadline:  # the first batch landed
            time.sleep(0.1)
        held, release = threading.Event(), threading.Event()
        holder = pool.submit(_hold_identity_lock, store, held, release)
        held.wait(60)
        child.send_signal(signal.SIGTERM)  # as an operator stops it
        time.sleep(1)  # not a measure: the master relays the signal to its worker
        release.set()
        try:
            answer = ingest.result()
            status, body = answer.status_code, answer.json()
        except requests.ConnectionError:  # the worker was killed mid-request
            status, body = None, None
        child.wait(timeout=60)
        with pytest.raises(_Rollback):
            holder.result()
    with store.reading() as tx:
        events = [event_of(row.event) for row in tx.audit.walk()]  # the request's and its parts
        exchanges = tx.exchanges.sql.all("SELECT interaction, status, verdict FROM exchange")
    return Stopped(body, status, _patients(store), events, exchanges)


def test_the_stopped_ingest_is_audited_naming_every_patient_that_landed(stopped: Stopped) -> None:
    named = {
        entity["what"]["reference"]
        for event in stopped.events
        if "$ingest" in [coding["code"] for coding in event.get("subtype", [])]
        for entity in event["entity"]
    }
    assert set(stopped.patients) <= named and stopped.patients


def test_the_stopped_ingest_leaves_its_exchange_record(stopped: Stopped) -> None:
    assert [tuple(row) for row in stopped.exchanges if row[0] == "$ingest"] == [("$ingest", 503, "error")]


def test_the_stopped_ingest_answers_503_saying_how_far_it_got(stopped: Stopped) -> None:
    issue = (stopped.answer or {"issue": [{}]})["issue"][0]
    assert (stopped.status, issue.get("details", {}).get("coding", [{}])[0].get("code")) == (503, "http.ingest-stopped")

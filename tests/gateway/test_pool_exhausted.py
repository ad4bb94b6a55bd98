"""A PostgreSQL store with no pooled connection to lend (every one busy, or the server not
answering for new ones) is a busy store, not a broken one: the request is answered 503 with
``Retry-After`` and its OperationOutcome, as a store busy past its wait is; the command line
says so in a sentence, never in a traceback."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from psycopg_pool import PoolTimeout

from conformance.validator import Validator
from gateway import create_app
from gateway.cli import main
from gateway.config import Config
from gateway.ingest.pipeline import Ingest
from gateway.services import Services
from gateway.storage.postgres import PostgresStore
from gateway.storage.store import Store
from tests.conftest import fresh_database_url

COMMUNITY_SAMPLE = Path(__file__).resolve().parents[2] / "mappings/samples/community-health/个人基本信息表.csv"
#: how long a borrower waits for a connection here (psycopg's default is 30 s)
SHORT_WAIT = 0.2


@contextmanager
def every_connection_lent(store: Store) -> Iterator[None]:
    """Every connection the store's pool will lend (those not in use already), borrowed until
    the block ends, and the pool's wait for one made short: the store's next borrower waits
    in vain."""
    assert isinstance(store, PostgresStore)
    pool = store.pool
    waited, pool.timeout = pool.timeout, SHORT_WAIT
    lent: list[Any] = []
    while len(lent) < pool.max_size:
        try:
            lent.append(pool.getconn())
        except PoolTimeout:  # the others are in use
            break
    try:
        yield
    finally:
        for connection in lent:
            pool.putconn(connection)
        pool.timeout = waited


@pytest.fixture
def services(tmp_path: Path, validator: Validator) -> Iterator[Services]:
    with fresh_database_url("postgresql", tmp_path) as url:
        made = Services(Config.load(database_url=url), validator.registry)
        made.__dict__["validator"] = validator  # a cached_property, preset: no second compile
        made.store.upgrade()  # opened, its schema made, before its connections are lent
        try:
            yield made
        finally:
            made.close()


@pytest.fixture
def client(services: Services) -> Iterator[FlaskClient]:
    app = create_app(services=services, secure=False)
    yield app.test_client()
    app.extensions["yiyang.exchanges"].close()  # while its store is there to take the records


def read_without_a_connection(services: Services, client: FlaskClient) -> Any:
    with every_connection_lent(services.store):
        return client.get("/fhir/Patient/p1", headers={"Accept-Language": "en"})


def test_a_request_finding_no_connection_is_503_to_retry_with_its_outcome(
    services: Services, client: FlaskClient
) -> None:
    answer = read_without_a_connection(services, client)
    code = answer.get_json()["issue"][0]["details"]["coding"][0]["code"]
    assert (answer.status_code, "Retry-After" in answer.headers, code) == (503, True, "http.store-busy")


def test_a_request_finding_no_connection_logs_no_traceback(
    services: Services, client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    """The store was busy: the log names the incident and why, in one line."""
    with caplog.at_level(logging.WARNING):
        read_without_a_connection(services, client)
    assert [r.getMessage() for r in caplog.records if r.exc_info] == []


def test_an_ingest_finding_no_connection_says_so_in_a_sentence(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The run's store is its own: the pool it opened is exhausted while it reads the file."""
    run = Ingest.run

    def run_without_a_connection(self: Ingest, *args: Any, **kwargs: Any) -> Any:
        with every_connection_lent(self.store):
            return run(self, *args, **kwargs)

    monkeypatch.setattr(Ingest, "run", run_without_a_connection)
    with fresh_database_url("postgresql", tmp_path) as url:
        exit_code = main(
            ["ingest", "--lang", "en", "--source", "community-health", "--database", url, str(COMMUNITY_SAMPLE)]
        )
    said = capsys.readouterr().err
    assert (exit_code, "archive store: no database connection came free" in said) == (2, True)

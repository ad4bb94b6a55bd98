"""Shared fixtures: one compiled validator per test session (compiling R4 takes ~1 s), and
stores on both databases."""

from __future__ import annotations

import copy
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import requests

from conformance.issues import Issue
from conformance.validator import Validator
from gateway.search.indexer import SearchIndexer
from gateway.storage import open_store
from gateway.storage.store import Store
from profiles.canonical import DEFAULT_BASE
from profiles.registry import Registry, examples_dir

SD = f"{DEFAULT_BASE}/StructureDefinition/"
CS = f"{DEFAULT_BASE}/CodeSystem/"


@pytest.fixture(scope="session")
def validator() -> Validator:
    return Validator(Registry())


def load_example(relative: str) -> dict[str, Any]:
    with (examples_dir() / relative).open(encoding="utf-8") as handle:
        return json.load(handle)


@pytest.fixture
def patient() -> dict[str, Any]:
    return copy.deepcopy(load_example("yy-patient/valid-zhang-xiuying.json"))


def found(issues: list[Issue], message_id: str, expression: str | None = None) -> bool:
    """Whether an issue with this id (and FHIRPath, when given) was reported."""
    return any(i.message_id == message_id and (expression is None or i.expression == expression) for i in issues)


def errors(issues: list[Issue]) -> list[tuple[str, str]]:
    return [(i.message_id, i.expression) for i in issues if i.is_error]


# -- stores ------------------------------------------------------------------------------
BACKENDS = ("sqlite", "postgresql")


@contextmanager
def fresh_database_url(backend: str, folder: Path) -> Iterator[str]:
    """An empty database of the backend: a SQLite file in ``folder``, or a schema of its own in
    the PostgreSQL that YIYANG_TEST_DATABASE_URL names (dropped afterwards).  Without that
    variable the PostgreSQL tests skip, saying why; CI sets it, so there they always run."""
    if backend == "sqlite":
        yield f"sqlite:///{folder / 'archive.sqlite'}"
        return
    server = os.environ.get("YIYANG_TEST_DATABASE_URL")
    if not server:
        pytest.skip("PostgreSQL tests need YIYANG_TEST_DATABASE_URL (e.g. postgresql://postgres@127.0.0.1:5432/test)")
    import psycopg

    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA {schema}")
    separator = "&" if "?" in server else "?"
    try:
        yield f"{server}{separator}options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(server, autocommit=True) as admin:
            admin.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Each test using it runs once on SQLite and once on PostgreSQL."""
    with fresh_database_url(request.param, tmp_path) as url:
        yield url


@pytest.fixture(scope="session")
def indexer() -> SearchIndexer:
    return SearchIndexer(Registry())


@pytest.fixture
def store(database_url: str, indexer: SearchIndexer) -> Iterator[Store]:
    opened = open_store(database_url, indexer.rows)
    yield opened
    opened.close()


# -- a real running server ---------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def running_server(database_url: str, *options: str, workers: int = 2) -> Iterator[str]:
    """``yiyang serve`` in a child process (gunicorn, real sockets) on a free port; yields the
    FHIR base URL and stops the server with SIGTERM, as an operator would."""
    port = free_port()
    command = [sys.executable, "-m", "gateway.cli", "serve", "--port", str(port), "--workers", str(workers)]
    command += ["--database", database_url, *options]
    log = tempfile.TemporaryFile()  # noqa: SIM115 - closed in finally; a pipe nobody reads would block the server
    child = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}/fhir"
    try:
        deadline = time.monotonic() + 120
        while True:
            if child.poll() is not None:
                log.seek(0)
                raise RuntimeError(f"yiyang serve exited {child.returncode}: {log.read().decode(errors='replace')}")
            try:
                if requests.get(f"{base}/metadata", timeout=5).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("yiyang serve did not answer within 120 s")
            time.sleep(0.2)
        yield base
    finally:
        child.send_signal(signal.SIGTERM)
        try:
            child.wait(timeout=30)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
        log.close()


@pytest.fixture(scope="module", params=BACKENDS)
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A running server on a fresh store, once per module and backend."""
    with fresh_database_url(request.param, tmp_path_factory.mktemp("server")) as url:
        with running_server(url) as base:
            yield base

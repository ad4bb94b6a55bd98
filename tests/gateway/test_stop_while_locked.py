"""A request waiting for another process's write lock on the SQLite store when the server is
told to stop (SIGTERM) is answered before gunicorn's master kills its worker
(``YIYANG_GRACEFUL_TIMEOUT``): it gives up half the grace after the signal, 503
``http.store-busy`` with ``Retry-After``, having written nothing.  It waited on, and the
worker was killed under it: the client's connection dropped, unanswered."""

from __future__ import annotations

import json
import signal
import sqlite3
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import requests

from gateway.storage import open_store
from tests.conftest import TEST_CLIENT, add_client, request_token, server_process

BASIC = {"resourceType": "Basic", "code": {"coding": [{"system": "urn:test", "code": "waiting"}]}}


@contextmanager
def held_by_a_gateway(path: Path) -> Iterator[None]:
    """The write lock as another gateway process holds it (a ``yiyang ingest`` into the same
    file): its file lock, then SQLite's."""
    store = open_store(f"sqlite:///{path}")
    try:
        with store.transaction():
            yield
    finally:
        store.close()


@contextmanager
def held_by_a_tool(path: Path) -> Iterator[None]:
    """SQLite's write lock alone, as a tool outside the gateway (or an upgrade) holds it."""
    held = sqlite3.connect(path, isolation_level=None, timeout=60)
    try:
        held.execute("BEGIN IMMEDIATE")
        yield
        held.execute("ROLLBACK")
    finally:
        held.close()


@pytest.mark.parametrize("holding", [held_by_a_gateway, held_by_a_tool], ids=["file lock", "database lock"])
def test_a_request_waiting_for_the_write_lock_is_answered_when_the_server_stops(
    tmp_path: Path, client_key: Any, holding: Any
) -> None:
    path = tmp_path / "archive.sqlite"
    add_client(f"sqlite:///{path}", TEST_CLIENT, key=client_key)
    grace = {"YIYANG_GRACEFUL_TIMEOUT": "6"}
    with server_process(f"sqlite:///{path}", workers=1, env=grace) as (base, child), ThreadPoolExecutor(1) as pool:
        token = request_token(base, TEST_CLIENT, client_key).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/fhir+json"}
        with holding(path):
            create = pool.submit(requests.post, f"{base}/Basic", data=json.dumps(BASIC), headers=headers, timeout=60)
            time.sleep(1)  # not a measure: the create reaches the lock
            child.send_signal(signal.SIGTERM)
            try:
                answer = create.result(timeout=30)
                code = answer.json()["issue"][0]["details"]["coding"][0]["code"]
                said: tuple[Any, ...] = (answer.status_code, answer.headers.get("Retry-After"), code)
            except requests.ConnectionError as dropped:
                said = ("dropped", type(dropped.__context__).__name__)
        child.wait(timeout=60)
    assert said == (503, "5", "http.store-busy")

"""A batch Bundle under way when the server is told to stop (``Services.stopping``, set on
SIGTERM or Ctrl-C) applies no entry after the signal: the entries before it stand committed,
the rest are answered 503, and the Bundle's answer ends the request, so it is audited and the
worker exits before gunicorn's master kills it (``graceful_timeout``) — which lost the
AuditEvent of a batch whose earlier entries stood committed."""

from __future__ import annotations

import json
import signal
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import requests

from gateway import exchanges
from gateway.services import Services
from tests.conftest import TEST_CLIENT, MakeServices, add_client, request_token, server_process


def basic(value: str) -> dict[str, Any]:
    """A POST entry of a Basic resource."""
    resource = {"resourceType": "Basic", "code": {"coding": [{"system": "urn:test", "code": value}]}}
    return {"resource": resource, "request": {"method": "POST", "url": "Basic"}}


def stopped_after_the_first(services: Services, count: int) -> list[dict[str, Any]]:
    """The entries' answers of a batch of ``count`` POSTs whose first entry is asked about
    (authorized) just before the signal comes."""

    def authorize(method: str, kind: str, resource_id: str | None, criteria: str | None) -> None:
        services.stopping.set()

    bundle = {"resourceType": "Bundle", "type": "batch", "entry": [basic(str(n)) for n in range(count)]}
    return services.bundles.process(bundle, authorize, "en")["entry"]


def test_a_batch_applies_no_entry_after_the_server_is_told_to_stop(make_services: MakeServices) -> None:
    answers = stopped_after_the_first(make_services("reject"), 3)
    assert [entry["response"]["status"].split(" ")[0] for entry in answers] == ["201", "503", "503"]


def test_an_entry_left_by_a_stopping_server_says_it_may_be_sent_again(make_services: MakeServices) -> None:
    issue = stopped_after_the_first(make_services("reject"), 2)[1]["response"]["outcome"]["issue"][0]
    assert (issue["details"]["coding"][0]["code"], issue["expression"]) == ("http.batch-stopped", ["Bundle.entry[1]"])


def test_a_batch_caught_by_sigterm_is_answered_and_audited(tmp_path: Path, client_key: Any) -> None:
    """Over a real server: the batch's first entry waits for the store's write lock while the
    server is told to stop; the lock released, that entry commits, the rest are answered 503,
    and the AuditEvent records each entry's status."""
    path = tmp_path / "archive.sqlite"
    add_client(f"sqlite:///{path}", TEST_CLIENT, key=client_key)
    bundle = {"resourceType": "Bundle", "type": "batch", "entry": [basic(str(n)) for n in range(3)]}
    with server_process(f"sqlite:///{path}", workers=1) as (base, child), ThreadPoolExecutor(1) as pool:
        token = request_token(base, TEST_CLIENT, client_key).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/fhir+json"}
        held = sqlite3.connect(path, isolation_level=None, timeout=60)
        try:
            held.execute("BEGIN IMMEDIATE")  # the write lock, as a long ingest holds it
            batch = pool.submit(requests.post, base, data=json.dumps(bundle), headers=headers, timeout=60)
            time.sleep(1)  # not a measure: the first entry reaches the lock
            child.send_signal(signal.SIGTERM)
            time.sleep(1)  # not a measure: the master relays the signal to its worker
            held.execute("COMMIT")
        finally:
            held.close()
        batch.result()
        child.wait(timeout=60)
    with sqlite3.connect(path) as connection:
        events = [json.loads(event) for (event,) in connection.execute("SELECT event FROM audit_event")]
    batches = [e for e in events if e["endpoint"] == "fhir.transaction_or_batch"]
    assert [status.split(" ")[0] for _, _, status, _ in batches[0]["entries"]] == ["201", "503", "503"]


def test_an_entry_left_by_a_stopping_server_is_a_reason_in_the_batchs_exchange(make_services: MakeServices) -> None:
    """Noted as an entry the store failed is: an ``error`` of its own, not of the batch."""
    collector = exchanges.Collector()
    token = exchanges.activate(collector)
    try:
        stopped_after_the_first(make_services("reject"), 2)
    finally:
        exchanges.deactivate(token)
    left = [(row[2], row[-1]) for row in collector.issues if row[3] == "Bundle.entry[1]"]
    assert left == [("http.batch-stopped", "error")]

"""A request that wrote more resources than one event names (an $ingest of a large file, a
batch of many entries) is recorded as its event and part events of at most
``ENTITIES_PER_EVENT`` resources each: no row of the chain grows to megabytes, every resource
is still found by ``entity``, and a search counts the request once."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from gateway.security import audit as security_audit
from gateway.security.audit import AuditTrail, canonical, chain, event_of, verify
from gateway.storage.audit_tables import AuditQuery
from gateway.storage.store import Store
from tests.conftest import TEST_CLIENT, Api, add_client, running_server
from tests.gateway.test_audit import facts, tamper

#: the resources one event names in these tests (the gateway's is 1,000)
PER_EVENT = 10
#: what the request wrote: two full events' worth and five more, the last of another type
WRITTEN = [f"Patient/p{n}" for n in range(2 * PER_EVENT + 4)] + ["Provenance/v1"]


#: the requests that wrote :data:`WRITTEN`: an $ingest (the resources it touched) and a batch
#: (one entry each: a 10,000-entry batch was one row of 1,969,588 bytes)
WRITING = {
    "ingest": facts(method="POST", path="/fhir/$ingest", endpoint="fhir.ingest", view_args={}, touched=WRITTEN),
    "batch": facts(
        method="POST",
        path="/fhir",
        endpoint="fhir.transaction_or_batch",
        view_args={},
        bundle_type="batch",
        entries=[("POST", reference.split("/")[0], "201 Created", f"{reference}/_history/1") for reference in WRITTEN],
    ),
}


@pytest.fixture(params=sorted(WRITING))
def ingested(store: Store, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> Store:
    """The store after one request that wrote :data:`WRITTEN`, and a read after it."""
    monkeypatch.setattr(security_audit, "ENTITIES_PER_EVENT", PER_EVENT)
    trail = AuditTrail(store)
    trail.record(WRITING[request.param])
    trail.record(facts(1))
    trail.close()
    return store


def test_no_event_names_more_resources_than_one_event_holds(ingested: Store) -> None:
    with ingested.reading() as tx:
        named = [sum(not e.startswith("AuditEvent/") for e in row.entities.split()) for row in tx.audit.walk()]
    assert max(named) == PER_EVENT


def test_a_search_counts_a_request_recorded_in_parts_once(ingested: Store) -> None:
    with ingested.reading() as tx:
        _, total = tx.audit.search(AuditQuery())
    assert total == 2


def test_the_part_naming_a_resource_is_found_by_it_and_names_the_requests_event(ingested: Store) -> None:
    with ingested.reading() as tx:
        found, _ = tx.audit.search(AuditQuery(entity=((WRITTEN[-1],),)))
    links = [e["what"]["reference"] for e in event_of(found[0][2])["entity"] if e["type"]["code"] == "AuditEvent"]
    assert links == ["AuditEvent/1"]


def test_the_requests_event_names_each_of_its_parts(ingested: Store) -> None:
    with ingested.reading() as tx:
        own = event_of(tx.audit.get(1) or "")
    assert [e["what"]["reference"] for e in own["entity"] if e["type"]["code"] == "AuditEvent"] == [
        "AuditEvent/2",
        "AuditEvent/3",
    ]


def test_a_trail_with_parts_verifies(ingested: Store) -> None:
    verdict = verify(ingested)
    assert (verdict.intact, verdict.events) == (True, 4)


def test_a_part_passed_off_as_a_request_breaks_the_chain(ingested: Store, database_url: str) -> None:
    """Flipping a part into a request of its own (or back) would change what searches count."""
    tamper(database_url, "UPDATE audit_event SET part = 0 WHERE seq = 2")
    verdict = verify(ingested)
    assert (verdict.broken_seq, verdict.problem.params if verdict.problem else None) == (2, {"columns": "part"})


def test_a_type_only_a_part_names_finds_the_requests_event(ingested: Store) -> None:
    """A search by type leaves the parts out: the request's event tells every type written."""
    with ingested.reading() as tx:
        found, _ = tx.audit.search(AuditQuery(entity_type=(("Provenance",),)))
    assert [seq for _, seq, _ in found] == [1]


def test_a_search_by_the_requests_event_finds_the_parts_that_name_it(ingested: Store) -> None:
    """Each part's AuditEvent names its request's (``entity.what`` AuditEvent/1), and ``entity``
    searches ``AuditEvent.entity.what``: a search must find what the events say."""
    with ingested.reading() as tx:
        found, _ = tx.audit.search(AuditQuery(entity=(("AuditEvent/1",),)))
    assert [seq for _, seq, _ in found] == [2, 3]


def forge_with_no_number_for_id(store: Store, database_url: str) -> None:
    """Rewrite event 4 as a request in parts whose id is no number, and its hash: what
    someone with SQL access could do to the newest event (only an anchor reveals it)."""
    with store.reading() as tx:
        rows = list(tx.audit.walk())
    forged = canonical({**orjson.loads(rows[3].event), "id": "x", "parts": 1})
    tamper(
        database_url, f"UPDATE audit_event SET event = '{forged}', hash = '{chain(rows[2].hash, forged)}' WHERE seq = 4"
    )


def test_a_rehashed_request_in_parts_with_no_number_for_id_is_unreadable(ingested: Store, database_url: str) -> None:
    """``yiyang audit verify`` must still give a verdict on such a trail, not a traceback."""
    forge_with_no_number_for_id(ingested, database_url)
    verdict = verify(ingested)
    assert (verdict.broken_seq, verdict.problem.message_id if verdict.problem else None) == (
        4,
        "audit.chain.unreadable",
    )


def test_reading_an_unreadable_event_says_the_stored_event_is_damaged(
    ingested: Store, database_url: str, client_key: Any
) -> None:
    """``GET AuditEvent/4`` of such a row was an incident (500, a number to report), as if the
    gateway had failed, when what failed is the trail: the answer says so, as verify does."""
    forge_with_no_number_for_id(ingested, database_url)
    add_client(database_url, TEST_CLIENT, key=client_key)
    with running_server(database_url, workers=1) as base, Api(base, TEST_CLIENT, client_key) as api:
        answer = api.get(f"{base}/AuditEvent/4", timeout=60)
    assert (answer.status_code, answer.json()["issue"][0]["details"]["coding"][0]["code"]) == (
        500,
        "audit.event-unreadable",
    )

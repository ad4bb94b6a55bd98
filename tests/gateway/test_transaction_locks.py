"""Two transactions changing the same resources take their row locks in one order (type, then
id), or PostgreSQL breaks the deadlock they make by failing one (a 503 to its client).  What a
transaction's conditions select (a conditional update's or delete's matches) is held with the
rest, before its deletes run."""

from __future__ import annotations

import random
import threading
import time
from typing import Any

import pytest

from bench.synthetic import patient as synthetic_patient
from gateway.fhir.bundles import Bundles
from gateway.ingest.identity import IdentityIndex
from gateway.services import Services
from tests.conftest import MakeServices

SYSTEM = "urn:audit"


def basic(value: str, text: str) -> dict[str, Any]:
    return {"resourceType": "Basic", "identifier": [{"system": SYSTEM, "value": value}], "code": {"text": text}}


def transaction(*entries: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "transaction", "entry": list(entries)}


def put(value: str, text: str) -> dict[str, Any]:
    return {"resource": {**basic(value, text), "id": value}, "request": {"method": "PUT", "url": f"Basic/{value}"}}


def failures_of(made: Services, monkeypatch: pytest.MonkeyPatch, a: dict, b: dict) -> list[Exception]:
    """On a store holding Basic/a1 and Basic/z9: run A, pause it once it holds its first
    locks, run B, and return what failed."""
    for value in ("a1", "z9"):
        made.repository.update("Basic", value, {**basic(value, "before"), "id": value})
    check, paused = Bundles._check_deletes_distinct, threading.Event()

    def slowly(self: Bundles, *args: Any) -> None:
        if threading.current_thread().name == "A":
            paused.set()
            time.sleep(1.5)
        check(self, *args)

    monkeypatch.setattr(Bundles, "_check_deletes_distinct", slowly)
    failures: list[Exception] = []

    def run(bundle: dict[str, Any]) -> None:
        try:
            made.bundles.process(bundle)
        except Exception as exc:  # noqa: BLE001 - what the test looks for
            failures.append(exc)

    first = threading.Thread(target=run, args=(a,), name="A")
    first.start()
    paused.wait(5)
    second = threading.Thread(target=run, args=(b,), name="B")
    second.start()
    first.join(30)
    second.join(30)
    return failures


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
@pytest.mark.parametrize(
    "a",
    [
        transaction(
            {"request": {"method": "DELETE", "url": "Basic/z9"}},
            {"resource": basic("a1", "A"), "request": {"method": "PUT", "url": f"Basic?identifier={SYSTEM}|a1"}},
        ),
        transaction(
            {"request": {"method": "DELETE", "url": f"Basic?identifier={SYSTEM}|a1"}}, put("z9", "A"), put("z8", "A")
        ),
    ],
    ids=["conditional update", "conditional delete"],
)
def test_a_conditional_entry_and_a_plain_transaction_on_its_match_do_not_deadlock(
    make_services: MakeServices, monkeypatch: pytest.MonkeyPatch, a: dict[str, Any]
) -> None:
    """A changes Basic/a1 through a condition and Basic/z9 by id; B updates Basic/a1 and
    Basic/z9 by id and queues on what A holds."""
    b = transaction(put("a1", "B"), put("z9", "B"))
    assert failures_of(make_services(), monkeypatch, a, b) == []


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_conditional_references_target_is_not_deleted_before_the_reference_commits(
    make_services: MakeServices, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A refers to Basic/a1 through its identifier; B deletes Basic/a1 meanwhile: B waits for
    A, so the reference was to a living resource when it was committed, and B's delete then
    finds it referred to and deletes nothing (the archive keeps no dangling reference)."""
    referrer = {
        "resourceType": "Basic",
        "code": {"text": "A"},
        "subject": {"reference": f"Basic?identifier={SYSTEM}|a1"},
    }
    a = transaction({"resource": referrer, "request": {"method": "POST", "url": "Basic"}}, put("x1", "A"))
    b = transaction({"request": {"method": "DELETE", "url": "Basic/a1"}}, put("y1", "B"))
    made = make_services()
    failures = failures_of(made, monkeypatch, a, b)
    with made.store.reading() as tx:
        target = tx.resources.read("Basic", "a1")
    refusals = [getattr(failure, "message_id", repr(failure)) for failure in failures]
    assert (refusals, target.deleted) == (["http.delete-referenced"], False)


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_transaction_and_an_ingest_of_one_person_take_their_locks_in_one_order(
    make_services: MakeServices,
) -> None:
    """An ingest locks a person's identity numbers, then the Patient's row as it writes the
    merged person (IdentityIndex.resolve, then the write, as the pipeline lands a record); a
    transaction Bundle updating the Patient locked the row first (Repository.hold), then the
    numbers: each held what the other waited for, and PostgreSQL failed one — the ingest's
    whole run, when it was the victim.  Here the ingest pauses between its two steps while
    the Bundle runs."""
    made = make_services()
    person = synthetic_patient(random.Random(7), 7)
    made.repository.update("Patient", person["id"], person)
    numbers_held, failures = threading.Event(), []

    def ingest() -> None:
        try:
            with made.store.transaction() as tx:
                merged, _ = IdentityIndex().resolve(tx, {**person, "active": False})
                numbers_held.set()
                time.sleep(1.5)
                tx.resources.write(merged)
        except Exception as exc:  # noqa: BLE001 - what the test looks for
            failures.append(exc)

    def rest() -> None:
        numbers_held.wait(5)
        entry = {
            "resource": {**person, "active": True},
            "request": {"method": "PUT", "url": f"Patient/{person['id']}"},
        }
        try:
            made.bundles.process(transaction(entry))
        except Exception as exc:  # noqa: BLE001 - what the test looks for
            failures.append(exc)

    threads = [threading.Thread(target=ingest), threading.Thread(target=rest)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert failures == []


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_two_writers_of_one_new_organisation_make_one(
    make_services: MakeServices, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each found the 统一社会信用代码 free and both created an Organization of it: the first
    now holds the code until it commits, and the second, finding it taken then, is refused."""
    import gateway.fhir.repository as repository
    from gateway.fhir.errors import FhirError
    from tests.conftest import load_example

    made = make_services()
    hospital = {k: v for k, v in load_example("yy-organization/valid-hospital.json").items() if k != "id"}
    check, checked = repository._check_organization_identifiers, threading.Event()

    def slowly(tx: Any, resource: dict[str, Any]) -> None:
        check(tx, resource)
        if threading.current_thread().name == "A":
            checked.set()
            time.sleep(1)

    monkeypatch.setattr(repository, "_check_organization_identifiers", slowly)
    statuses: list[int] = []

    def create() -> None:
        try:
            statuses.append(made.repository.create(dict(hospital)).status)
        except FhirError as refused:
            statuses.append(refused.status)

    first = threading.Thread(target=create, name="A")
    first.start()
    assert checked.wait(5)
    create()
    first.join(10)
    assert sorted(statuses) == [201, 409]

"""Updates written over the version :meth:`Repository.update_in` holds (``current=``):
racing one another, a delete, or recreating a deleted resource, every version number is
written once and the history has no gap, on both databases."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from typing import Any

import pytest

from bench.synthetic import patient as synthetic_patient
from gateway.services import Services

Make = Callable[..., Services]
RACERS = 6


@pytest.fixture
def services(make_services: Make) -> Make:
    return make_services


def person(index: int, resource_id: str) -> dict[str, Any]:
    """A valid yy-patient at ``resource_id``; ``index`` varies its content."""
    resource = synthetic_patient(random.Random(7), 7, None)
    return {**resource, "id": resource_id, "multipleBirthInteger": index + 1}


def versions(made: Services, resource_id: str) -> list[int]:
    """The version numbers of Patient/``resource_id``'s history, oldest first."""
    with made.store.reading() as tx:
        found, _ = tx.resources.history("Patient", resource_id, limit=1000)
    return sorted(stored.version for stored, _ in found)


def race(*calls: Callable[[], Any]) -> list[Any]:
    """``calls`` run at once, each on its own thread; what each returned or raised."""
    start, results = threading.Barrier(len(calls)), [None] * len(calls)

    def run(index: int) -> None:
        start.wait(30)
        try:
            results[index] = calls[index]()
        except Exception as error:  # noqa: BLE001 - the racer's outcome, asserted on
            results[index] = error

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    return results


def test_puts_racing_on_one_stored_id_number_every_version_once(services: Make) -> None:
    made = services()
    made.repository.update("Patient", "racer", person(0, "racer"))
    racers = (lambda i=i: made.repository.update("Patient", "racer", person(i + 1, "racer")) for i in range(RACERS))
    failed = [result for result in race(*racers) if isinstance(result, Exception)]
    assert (failed, versions(made, "racer")) == ([], list(range(1, RACERS + 2)))


def test_puts_creating_one_new_id_at_once_number_every_version_once(services: Make) -> None:
    made = services()
    statuses = race(
        *(lambda i=i: made.repository.update("Patient", "newborn", person(i, "newborn")).status for i in range(RACERS))
    )
    assert (sorted(statuses), versions(made, "newborn")) == ([200] * (RACERS - 1) + [201], list(range(1, RACERS + 1)))


def test_puts_racing_deletes_leave_a_history_without_gaps(services: Make) -> None:
    made = services()
    made.repository.update("Patient", "contested", person(0, "contested"))
    calls: list[Callable[[], Any]] = []
    for i in range(RACERS):
        calls.append(lambda i=i: made.repository.update("Patient", "contested", person(i + 1, "contested")))
        calls.append(lambda: made.repository.delete("Patient", "contested"))
    failed = [result for result in race(*calls) if isinstance(result, Exception)]
    found = versions(made, "contested")
    assert (failed, found) == ([], list(range(1, len(found) + 1)))


def test_a_deleted_patient_put_again_continues_its_history(services: Make) -> None:
    made = services()
    made.repository.update("Patient", "back", person(0, "back"))
    made.repository.delete("Patient", "back")
    written = made.repository.update("Patient", "back", person(1, "back"))
    assert (written.status, written.stored.version, versions(made, "back")) == (201, 3, [1, 2, 3])


def test_a_batch_deleting_and_putting_one_id_numbers_each_version_once(services: Make) -> None:
    made = services()
    made.repository.update("Patient", "batched", person(0, "batched"))
    entries = [
        {"request": {"method": "DELETE", "url": "Patient/batched"}},
        {"resource": person(1, "batched"), "request": {"method": "PUT", "url": "Patient/batched"}},
        {"resource": person(2, "batched"), "request": {"method": "PUT", "url": "Patient/batched"}},
    ]
    made.bundles.process({"resourceType": "Bundle", "type": "batch", "entry": entries})
    assert versions(made, "batched") == [1, 2, 3, 4]


def test_puts_and_transactions_creating_one_id_at_once_number_every_version_once(services: Make) -> None:
    """A transaction holds a new id by its name (:meth:`Repository.hold`) as a PUT does."""
    made = services()

    def bundled(i: int) -> Any:
        entry = {"resource": person(i, "shared"), "request": {"method": "PUT", "url": "Patient/shared"}}
        return made.bundles.process({"resourceType": "Bundle", "type": "transaction", "entry": [entry]})

    calls: list[Callable[[], Any]] = []
    for i in range(0, RACERS, 2):
        calls.append(lambda i=i: made.repository.update("Patient", "shared", person(i, "shared")))
        calls.append(lambda i=i: bundled(i + 1))
    failed = [result for result in race(*calls) if isinstance(result, Exception)]
    assert (failed, versions(made, "shared")) == ([], list(range(1, RACERS + 1)))


def test_patches_racing_puts_number_every_version_once(services: Make) -> None:
    made = services()
    made.repository.update("Patient", "patched", person(0, "patched"))
    calls: list[Callable[[], Any]] = []
    for i in range(0, RACERS, 2):
        calls.append(lambda i=i: made.repository.update("Patient", "patched", person(i + 1, "patched")))
        operations = [{"op": "replace", "path": "/multipleBirthInteger", "value": 50 + i}]
        calls.append(lambda operations=operations: made.repository.patch("Patient", "patched", operations))
    failed = [result for result in race(*calls) if isinstance(result, Exception)]
    assert (failed, versions(made, "patched")) == ([], list(range(1, RACERS + 2)))

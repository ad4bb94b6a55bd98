"""Patient/$merge and the writes racing it: its versions are validated before its transaction,
so what it prepared is written only if no referrer of the source changed, or came, in between
(a 412 ``merge.overtaken`` the merge answers by preparing again); and a write validated before
the merge commits must not name the source after it.  On a real store of each backend."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from gateway import exchanges
from gateway.fhir import patient_merge
from gateway.fhir.errors import FhirError
from gateway.fhir.repository import Repository
from gateway.storage.resources import Resources
from tests.conftest import MakeServices
from tests.gateway.test_api import example, new_patient

#: how long a racing write is given to pass its checks before the merge commits (a create's
#: validation takes well under a second, even on the shared test machine)
RACE_WAIT_S = 2.0


@pytest.fixture
def repository(make_services: MakeServices) -> Repository:
    return make_services().repository


def visit_of(repository: Repository, person: str) -> dict[str, Any]:
    stay = {**example("yy-encounter/valid-health-check-2026.json"), "subject": {"reference": f"Patient/{person}"}}
    del stay["id"]
    return repository.create(stay).stored.resource or {}


def parameters(source: str, target: str) -> dict[str, Any]:
    return {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "source-patient", "valueReference": {"reference": f"Patient/{source}"}},
            {"name": "target-patient", "valueReference": {"reference": f"Patient/{target}"}},
        ],
    }


def prepared(repository: Repository, source: str, target: str) -> patient_merge.Plan:
    arguments = patient_merge.parse(parameters(source, target), patient_merge.merge_inputs(repository))
    with repository.store.reading() as tx:
        return patient_merge.prepare(repository, tx, arguments)


def applied(repository: Repository, plan: patient_merge.Plan) -> tuple[int, str]:
    """What writing ``plan`` answers: the refusal's status and message id, or 200 "written"."""
    try:
        repository.store.atomically(lambda tx: patient_merge.apply(repository, tx, plan))
    except FhirError as refusal:
        return refusal.status, refusal.message_id
    return 200, "written"


def test_a_referrer_changed_after_the_preparation_overtakes_the_merge(repository: Repository) -> None:
    source = repository.create(new_patient()).stored.id
    target = repository.create(new_patient()).stored.id
    stay = visit_of(repository, source)
    plan = prepared(repository, source, target)
    repository.update(
        "Encounter", stay["id"], {**{k: v for k, v in stay.items() if k != "meta"}, "status": "cancelled"}
    )
    assert applied(repository, plan) == (412, "merge.overtaken")


def test_a_referrer_come_after_the_preparation_overtakes_the_merge(repository: Repository) -> None:
    """Written as prepared, the merge left the new visit naming the record it merged away."""
    source = repository.create(new_patient()).stored.id
    target = repository.create(new_patient()).stored.id
    plan = prepared(repository, source, target)
    visit_of(repository, source)
    assert applied(repository, plan) == (412, "merge.overtaken")


def test_a_visit_written_while_the_merge_commits_may_not_name_the_source(repository: Repository) -> None:
    """The visit is validated before the merge's writes, so its own check finds the source
    unmerged; its transaction then waits for the merge's and must find the source merged away
    (two connections, one writer thread each).  Whenever the writer's transaction starts, only
    the check inside it can refuse the visit."""
    source = repository.create(new_patient()).stored.id
    target = repository.create(new_patient()).stored.id
    plan = prepared(repository, source, target)
    stay = {**example("yy-encounter/valid-health-check-2026.json"), "subject": {"reference": f"Patient/{source}"}}
    stay["id"] = "visit-racing-the-merge"
    issues, rows = repository.checked(stay), repository.index_rows(stay)
    answered: list[tuple[int, str]] = []

    def write_visit() -> None:
        try:
            repository.store.atomically(lambda tx: repository.create_in(tx, stay, issues, rows=rows))
            answered.append((201, "written"))
        except FhirError as refusal:
            answered.append((refusal.status, refusal.message_id))

    writer = threading.Thread(target=write_visit)
    with repository.store.transaction() as tx:
        patient_merge.apply(repository, tx, plan)
        writer.start()
        time.sleep(RACE_WAIT_S)  # most often the visit's transaction is waiting for the merge's now
    writer.join()
    assert answered == [(422, "merge.replaced-patient")]


def test_a_merge_overtaken_while_it_waits_is_prepared_again(
    repository: Repository, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The visit's change is uncommitted when the merge prepares, and commits while the merge
    waits for its row: the merge's first plan is stale (412 within), and it prepares again."""
    source = repository.create(new_patient()).stored.id
    target = repository.create(new_patient()).stored.id
    stay = visit_of(repository, source)
    answered: list[str] = []
    plans: list[patient_merge.Plan] = []
    first_prepared = threading.Event()
    prepare = patient_merge.prepare

    def counted(*arguments: Any) -> patient_merge.Plan:
        plans.append(prepare(*arguments))
        first_prepared.set()
        return plans[-1]

    monkeypatch.setattr(patient_merge, "prepare", counted)

    def merge() -> None:
        try:
            patient_merge.merge(repository, parameters(source, target), "en")
            answered.append("merged")
        except FhirError as refusal:
            answered.append(refusal.message_id)

    merging = threading.Thread(target=merge)
    changed = {**{k: v for k, v in stay.items() if k != "meta"}, "status": "cancelled"}
    issues, rows = repository.checked(changed), repository.index_rows(changed)
    with repository.store.transaction() as tx:
        repository.update_in(tx, changed, issues, rows=rows)
        merging.start()
        assert first_prepared.wait(30)  # from the visit as committed before this change
        time.sleep(RACE_WAIT_S)  # most often the merge is waiting for the visit's row now
    merging.join()
    assert (answered, len(plans)) == (["merged"], 2)


def test_a_merge_prepared_again_is_judged_once_in_its_exchange(
    repository: Repository, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Prepared again, a merge validates its versions again: its exchange says what the
    preparation that stood judged, as a merge of the same shape that nothing overtook does."""

    def judged_merge(overtake: bool) -> tuple[int, int]:
        """How many times the merge was prepared, and the verdicts its exchange holds."""
        source = repository.create(new_patient()).stored.id
        target = repository.create(new_patient()).stored.id
        stay = visit_of(repository, source)
        prepare, prepared = patient_merge.prepare, []

        def overtaken(*arguments: Any) -> patient_merge.Plan:
            plan = prepare(*arguments)
            if overtake and not prepared:  # the visit changes between preparation and write
                changed = {**stay, "status": "cancelled"}
                repository.store.atomically(lambda tx: tx.resources.write(changed))
            prepared.append(plan)
            return plan

        monkeypatch.setattr(patient_merge, "prepare", overtaken)
        collector = exchanges.Collector()
        token = exchanges.activate(collector)
        try:
            patient_merge.merge(repository, parameters(source, target), "en")
        finally:
            exchanges.deactivate(token)
        return len(prepared), len(collector.verdicts)

    _, once = judged_merge(overtake=False)
    assert judged_merge(overtake=True) == (2, once)


def locking_reads(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """From now on, each row read with a lock: its type and the lock (``share``, ``update``)."""
    locked: list[tuple[str, str]] = []
    read = Resources.read

    def reading(self: Resources, kind: str, resource_id: str, **lock: bool) -> Any:
        if lock.get("for_share") or lock.get("for_update"):
            locked.append((kind, "share" if lock.get("for_share") else "update"))
        return read(self, kind, resource_id, **lock)

    monkeypatch.setattr(Resources, "read", reading)
    return locked


def first_locked(locked: list[tuple[str, str]]) -> list[str]:
    """The types in the order their rows were first locked (a write locks its own again)."""
    return list(dict.fromkeys(kind for kind, _ in locked))


def test_a_transaction_does_not_read_again_the_patient_it_creates(
    make_services: MakeServices, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Patient's own write holds it (it is new here): read for share by each of its visits,
    it cost a transaction of a Patient and nine records a locking read each on PostgreSQL."""
    locked = locking_reads(monkeypatch)
    stay = {**example("yy-encounter/valid-health-check-2026.json"), "subject": {"reference": "urn:uuid:p1"}}
    del stay["id"]
    entries = [
        {"fullUrl": "urn:uuid:p1", "resource": new_patient(), "request": {"method": "POST", "url": "Patient"}},
        {"resource": stay, "request": {"method": "POST", "url": "Encounter"}},
    ]
    make_services().bundles.process({"resourceType": "Bundle", "type": "transaction", "entry": entries})
    assert [kind for kind, lock in locked if lock == "share"] == []


@pytest.mark.parametrize(
    ("example_file", "order"),
    [
        ("yy-encounter/valid-health-check-2026.json", ["Encounter", "Patient"]),
        ("yy-servicerequest-referral/valid-downward-rehab.json", ["Patient", "ServiceRequest"]),
    ],
)
def test_an_update_locks_its_row_and_its_patient_in_the_order_a_merge_does(
    make_services: MakeServices, monkeypatch: pytest.MonkeyPatch, example_file: str, order: list[str]
) -> None:
    """A merge locks what it writes in (type, id) order: a referral's writer holding its
    ServiceRequest while it waited for the Patient the merge held, with the merge waiting for
    that ServiceRequest, deadlocked on PostgreSQL."""
    repository = make_services().repository
    person = repository.create(new_patient()).stored.id
    record = {**example(example_file), "subject": {"reference": f"Patient/{person}"}}
    stored = repository.update(record["resourceType"], record["id"], record).stored.resource or {}
    locked = locking_reads(monkeypatch)
    repository.update(stored["resourceType"], stored["id"], {**stored, "status": "entered-in-error"})
    assert first_locked(locked) == order


def test_a_transaction_holds_the_patients_it_names_in_the_order_a_merge_does(
    make_services: MakeServices, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A transaction locks the rows it changes first, in one order: the Patient its
    ServiceRequest names is held in that order too, before the ServiceRequest, as a merge
    takes them."""
    services = make_services()
    person = services.repository.create(new_patient()).stored.id
    record = {
        **example("yy-servicerequest-referral/valid-downward-rehab.json"),
        "subject": {"reference": f"Patient/{person}"},
    }
    stored = services.repository.update(record["resourceType"], record["id"], record).stored.resource or {}
    locked = locking_reads(monkeypatch)
    changed = {**stored, "status": "entered-in-error"}
    entry = {"resource": changed, "request": {"method": "PUT", "url": f"ServiceRequest/{stored['id']}"}}
    services.bundles.process({"resourceType": "Bundle", "type": "transaction", "entry": [entry]})
    assert first_locked(locked) == ["Patient", "ServiceRequest"]

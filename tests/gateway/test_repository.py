"""FHIR interactions below HTTP (gateway/fhir), on a store of each backend: the validation
policy of writes, and the demo archive loading idempotently."""

from __future__ import annotations

import contextlib
import copy
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from bench.synthetic import patient as synthetic_patient
from conformance.validator import Validator
from gateway.config import Config
from gateway.fhir import search
from gateway.fhir.errors import FhirError
from gateway.ingest.identity import IdentityIndex, number_lock
from gateway.security.principal import Principal, acting
from gateway.services import Services
from gateway.storage.ingest_tables import IdentityKeys
from gateway.storage.store import Executor, StoreError
from tests.conftest import advisory_lock_held, fresh_database_url, load_example

Make = Callable[..., Services]
#: the 居民健康档案号 of a yy-patient
HEALTH_RECORD = "urn:oid:2.16.156.10011.1.2"


def new_patient(index: int) -> dict[str, Any]:
    """A valid yy-patient (bench.synthetic without its deliberate defects), without an id."""
    resource = synthetic_patient(random.Random(index), index, None)
    resource.pop("id")
    return resource


@pytest.fixture
def services(make_services: Make) -> Make:
    return make_services


def invalid(patient: dict[str, Any]) -> dict[str, Any]:
    broken = copy.deepcopy(patient)
    broken["gender"] = "unknown-sex"
    return broken


def test_an_invalid_write_is_refused_by_default(services: Make, patient: dict[str, Any]) -> None:
    with pytest.raises(FhirError) as refused:
        services().repository.update("Patient", patient["id"], invalid(patient))
    assert refused.value.status == 422


def test_in_warn_mode_an_invalid_write_is_stored_with_its_issues(services: Make, patient: dict[str, Any]) -> None:
    written = services("warn").repository.update("Patient", patient["id"], invalid(patient))
    assert (written.status, any(i.expression == "Patient.gender" and i.is_error for i in written.issues)) == (201, True)


def test_a_version_id_written_with_a_leading_zero_names_no_version(services: Make, patient: dict[str, Any]) -> None:
    """meta.versionId is text: "01" is not "1"."""
    made = services()
    made.repository.update("Patient", patient["id"], patient)
    with pytest.raises(FhirError) as refused:
        made.repository.vread("Patient", patient["id"], "01")
    assert refused.value.status == 404


def test_a_record_number_another_person_holds_is_refused_over_rest(services: Make) -> None:
    """The same record by ingest is quarantined (ingest.document-mismatch); over REST it was a
    second Patient under one 健康档案编号, and nobody was told."""
    made, number = services(), {"system": HEALTH_RECORD, "value": "41010500100100040"}

    def numbered(index: int) -> dict[str, Any]:
        person = new_patient(index)
        return {**person, "identifier": [*(i for i in person["identifier"] if i["system"] != HEALTH_RECORD), number]}

    made.repository.create(numbered(801))
    with pytest.raises(FhirError) as refused:
        made.repository.create(numbered(802))
    assert (refused.value.status, refused.value.message_id) == (409, "http.number-of-another-person")


def test_a_replaced_by_link_written_by_an_update_is_refused(services: Make) -> None:
    """replaced-by marks a Patient merged away, which Patient/$merge (an operator's) alone
    does: written by a PUT, it froze the record for good (every later write of it, its delete
    and every record naming it refused) without any merge."""
    made = services()
    one, other = (made.repository.create(new_patient(index)).stored.resource or {} for index in (61, 62))
    link = {"other": {"reference": f"Patient/{other['id']}"}, "type": "replaced-by"}
    with pytest.raises(FhirError) as refused:
        made.repository.update("Patient", one["id"], {**one, "link": [link]})
    assert (refused.value.status, refused.value.expression) == (422, "Patient.link[0].type")


def test_a_replaced_by_link_in_a_transaction_is_refused_at_its_entry(services: Make) -> None:
    made = services()
    other = made.repository.create(new_patient(63)).stored.resource or {}
    link = {"other": {"reference": f"Patient/{other['id']}"}, "type": "replaced-by"}
    entry = {"resource": {**new_patient(64), "link": [link]}, "request": {"method": "POST", "url": "Patient"}}
    with pytest.raises(FhirError) as refused:
        made.bundles.process({"resourceType": "Bundle", "type": "transaction", "entry": [entry]})
    assert (refused.value.status, refused.value.expression) == (422, "Bundle.entry[0].resource.link[0].type")


def test_loading_the_demo_twice_writes_nothing_the_second_time(services: Make) -> None:
    from gateway.demo import load_demo

    demo = services()
    first = list(load_demo(demo, "en"))
    with demo.store.reading() as tx:
        before = tx.resources.history()[1]
    second = list(load_demo(demo, "en"))
    with demo.store.reading() as tx:
        # (once, under heavy load on PostgreSQL, 695 versions became 718: what each load said)
        assert tx.resources.history()[1] == before, (first, second)


def test_a_draft_profile_is_not_imposed_on_every_write_of_its_type() -> None:
    from gateway.fhir.repository import default_profiles
    from profiles.registry import Registry

    defaults = default_profiles(Registry())
    assert ("Claim" in defaults, defaults.get("Condition", "").rsplit("/", 1)[-1]) == (False, "yy-condition")


# -- targets in the archive -------------------------------------------------------------------
def home_visit() -> dict[str, Any]:
    from tests.conftest import load_example

    return copy.deepcopy(load_example("yy-encounter/valid-home-visit.json"))


def stored_directly(services: Services, resource: dict[str, Any]) -> None:
    """Into the archive without validation, as an old store or another writer may have left it."""
    with services.store.transaction() as tx:
        tx.resources.write(resource)


def target_errors(services: Services, resource: dict[str, Any]) -> list[str]:
    issues = services.repository.validate(resource)
    return [i.expression for i in issues if i.message_id == "profile.reference-target-profile"]


def test_a_stored_target_meeting_the_demanded_profile_passes(services: Make, patient: dict[str, Any]) -> None:
    made = services()
    stored_directly(made, patient)
    assert target_errors(made, home_visit()) == []


def test_a_stored_target_failing_the_demanded_profile_is_an_error(services: Make, patient: dict[str, Any]) -> None:
    made = services()
    stored_directly(made, {"resourceType": "Patient", "id": patient["id"], "gender": "female"})
    assert target_errors(made, home_visit()) == ["Encounter.subject"]


def test_a_stored_target_the_caller_may_not_see_resolves_to_nothing(services: Make, patient: dict[str, Any]) -> None:
    from gateway.security.principal import Principal, acting

    made = services()
    stored_directly(made, {"resourceType": "Patient", "id": patient["id"], "gender": "female"})
    stranger = Principal("platform", "some-other-org", frozenset({"system/*.rs"}), "elderly-care")
    token = acting.set(stranger)
    try:
        found = target_errors(made, home_visit())
    finally:
        acting.reset(token)
    assert found == []


def transaction(*entries: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "transaction", "entry": list(entries)}


def counting_write_transactions(made: Services) -> list[int]:
    """Counts the store's write transactions (the real store's, wrapped)."""
    opened: list[int] = []
    real = made.store.transaction

    def counted(*args: Any, **kwargs: Any) -> Any:
        opened.append(1)
        return real(*args, **kwargs)

    made.store.transaction = counted  # type: ignore[method-assign]
    return opened


def test_an_invalid_transaction_without_conditions_is_refused_before_any_write(
    services: Make, patient: dict[str, Any]
) -> None:
    made = services()
    opened = counting_write_transactions(made)
    entry = {"fullUrl": "urn:uuid:1", "resource": invalid(patient), "request": {"method": "POST", "url": "Patient"}}
    with pytest.raises(FhirError):
        made.bundles.process(transaction(entry))
    assert opened == []


def test_a_conditional_reference_in_a_transaction_is_resolved_before_validation(
    services: Make, patient: dict[str, Any]
) -> None:
    made = services()
    stored_directly(made, patient)
    system, value = patient["identifier"][0]["system"], patient["identifier"][0]["value"]
    visit = {**home_visit(), "subject": {"reference": f"Patient?identifier={system}|{value}"}}
    visit.pop("id", None)
    answer = made.bundles.process(transaction({"resource": visit, "request": {"method": "POST", "url": "Encounter"}}))
    assert answer["entry"][0]["response"]["status"] == "201 Created"


def test_a_reference_to_another_entry_is_checked_against_that_entry(services: Make, patient: dict[str, Any]) -> None:
    """The Encounter's subject is the Bundle's own Patient, not yet in the archive: the profile
    its reference demands is checked on that entry (here the Patient fails it)."""
    made = services()
    visit = {**home_visit(), "subject": {"reference": "urn:uuid:person"}}
    visit.pop("id", None)
    person = {"resourceType": "Patient", "gender": "female"}
    bundle = transaction(
        {"fullUrl": "urn:uuid:person", "resource": person, "request": {"method": "POST", "url": "Patient"}},
        {"resource": visit, "request": {"method": "POST", "url": "Encounter"}},
    )
    with pytest.raises(FhirError) as refused:
        made.bundles.process(bundle)
    located = [i.expression for i in refused.value.issues if i.message_id == "profile.reference-target-profile"]
    assert located == ["Bundle.entry[1].resource.subject"]


@dataclass
class ArchiveReads:
    """The keys the archive was asked for: one at a time (``Resources.read``) and together
    (``Resources.read_many``), and those a write's transaction held shared (a Patient it
    names, read again there: Repository._hold_people)."""

    single: list[tuple[str, str]] = field(default_factory=list)
    together: list[tuple[str, str]] = field(default_factory=list)
    held: list[tuple[str, str]] = field(default_factory=list)


@pytest.fixture
def watch_reads(monkeypatch: pytest.MonkeyPatch) -> Callable[[], ArchiveReads]:
    """Starts recording the archive's reads when called: after the test's setup, whose own
    reads are not the ones asked about."""
    from gateway.storage.resources import Resources

    def start() -> ArchiveReads:
        reads = ArchiveReads()
        read, read_many = Resources.read, Resources.read_many

        def recorded_read(self: Resources, kind: str, resource_id: str, **options: Any) -> Any:
            (reads.held if options.get("for_share") else reads.single).append((kind, resource_id))
            return read(self, kind, resource_id, **options)

        def recorded_read_many(self: Resources, keys: Any) -> Any:
            keys = list(keys)
            reads.together.extend(keys)
            return read_many(self, keys)

        monkeypatch.setattr(Resources, "read", recorded_read)
        monkeypatch.setattr(Resources, "read_many", recorded_read_many)
        return reads

    return start


def three_visits_of_the_archived_patient() -> dict[str, Any]:
    """A transaction creating three home visits, each naming the example Patient."""
    visit = home_visit()
    visit.pop("id", None)
    return transaction(
        *({"resource": copy.deepcopy(visit), "request": {"method": "POST", "url": "Encounter"}} for _ in range(3))
    )


@pytest.fixture
def reads_of_three_visits(
    services: Make, patient: dict[str, Any], watch_reads: Callable[[], ArchiveReads]
) -> ArchiveReads:
    """The archive reads of a transaction of three visits to the archived example Patient."""
    made = services()
    stored_directly(made, patient)
    reads = watch_reads()
    made.bundles.process(three_visits_of_the_archived_patient())
    return reads


def test_entries_naming_one_archive_resource_look_it_up_once(
    reads_of_three_visits: ArchiveReads, patient: dict[str, Any]
) -> None:
    reads = reads_of_three_visits
    assert (reads.single + reads.together).count(("Patient", patient["id"])) == 1


def test_a_transaction_holds_the_patient_its_entries_name_once(
    reads_of_three_visits: ArchiveReads, patient: dict[str, Any]
) -> None:
    assert reads_of_three_visits.held == [("Patient", patient["id"])]


def test_the_archive_resources_a_transaction_names_are_read_together(
    reads_of_three_visits: ArchiveReads, patient: dict[str, Any]
) -> None:
    """Each lookup alone was a round trip the worker waited for (PostgreSQL)."""
    assert ("Patient", patient["id"]) not in reads_of_three_visits.single


def test_a_transaction_creating_one_patient_reads_no_patient_first(
    services: Make, patient: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two Patients of one number are looked for among two or more only, and a POST's new id
    holds nothing to compare (each read was a round trip on PostgreSQL)."""
    from gateway.storage.resources import Resources

    made = services()
    asked: list[str] = []
    read = Resources.read
    monkeypatch.setattr(Resources, "read", lambda self, kind, i, **o: asked.append(kind) or read(self, kind, i, **o))
    person = {k: v for k, v in patient.items() if k != "id"}
    made.bundles.process(transaction({"resource": person, "request": {"method": "POST", "url": "Patient"}}))
    assert "Patient" not in asked


def test_a_create_walks_its_resource_for_references_once(services: Make, monkeypatch: pytest.MonkeyPatch) -> None:
    """Its reachability, its stored references' form and its index rows read one walk's
    References: each walked the whole resource for them (three walks a create)."""
    from conformance import stored_references

    made = services()
    person = new_patient(1)
    walked: list[Any] = []
    walk = stored_references._references
    monkeypatch.setattr(stored_references, "_references", lambda node: walked.append(node) or walk(node))
    made.repository.create(person)
    assert len(walked) == 1


def test_a_transaction_walks_an_entry_for_references_once(services: Make, monkeypatch: pytest.MonkeyPatch) -> None:
    """Its index rows read the References its checks found (``Entry.references``)."""
    from conformance import stored_references

    made = services()
    walked: list[Any] = []
    walk = stored_references._references
    monkeypatch.setattr(stored_references, "_references", lambda node: walked.append(node) or walk(node))
    made.bundles.process(transaction({"resource": new_patient(1), "request": {"method": "POST", "url": "Patient"}}))
    assert len(walked) == 1


def test_a_patch_walks_its_resource_for_references_once(services: Make, monkeypatch: pytest.MonkeyPatch) -> None:
    """Its own-base references are localised from the walk its checks and index rows read
    (``Repository._prepared``): the patch localised them by a walk of its own first."""
    from conformance import stored_references
    from gateway.fhir import archive_references

    made = services()
    written = made.repository.create(new_patient(1)).stored
    walked: list[Any] = []
    walk, nodes = stored_references._references, archive_references.reference_nodes
    monkeypatch.setattr(stored_references, "_references", lambda node: walked.append(node) or walk(node))
    monkeypatch.setattr(archive_references, "reference_nodes", lambda node: walked.append(node) or nodes(node))
    made.repository.patch("Patient", written.id, [{"op": "add", "path": "/active", "value": False}])
    assert len(walked) == 1


def test_an_update_reads_its_row_for_update_once(services: Make, monkeypatch: pytest.MonkeyPatch) -> None:
    """The write uses the version the update holds: read again, it was another statement (a
    round trip on PostgreSQL) for every PUT."""
    from gateway.storage.resources import Resources

    made = services()
    person = made.repository.create(new_patient(1)).stored.resource
    locked: list[tuple[str, str]] = []
    read = Resources.read

    def recorded(self: Resources, kind: str, resource_id: str, **options: Any) -> Any:
        if options.get("for_update"):
            locked.append((kind, resource_id))
        return read(self, kind, resource_id, **options)

    monkeypatch.setattr(Resources, "read", recorded)
    made.repository.update("Patient", person["id"], {**person, "active": False})
    assert locked == [("Patient", person["id"])]


def test_a_settled_process_has_its_validator_and_collects_none_of_it(services: Make) -> None:
    import gc

    made = services()
    made.__dict__.pop("validator")  # as a fresh worker: nothing built yet
    try:
        made.settle()
        settled = ("validator" in made.__dict__, gc.get_freeze_count() > 0)
    finally:
        gc.unfreeze()
    assert settled == (True, True)


def test_a_process_settled_twice_validates_the_examples_once(services: Make, monkeypatch: pytest.MonkeyPatch) -> None:
    import gc

    from conformance.validator import Validator

    made = services()
    validated: list[str] = []
    try:
        made.settle()
        monkeypatch.setattr(Validator, "validate", lambda self, resource, *a, **o: validated.append(resource["id"]))
        made.settle()
    finally:
        gc.unfreeze()
    assert validated == []


def test_a_settled_process_expands_no_value_set_for_its_first_patient(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker's first create expanded GB/T 2260 and the rest (0.3–0.6 s against 3 ms)."""
    import gc

    from conformance.terminology import Terminology

    made = Services(Config.load(database_url=f"sqlite:///{tmp_path / 'unused.sqlite'}"))
    try:
        made.settle()
    finally:
        gc.unfreeze()
    built: list[str] = []
    real = Terminology._build
    monkeypatch.setattr(Terminology, "_build", lambda self, url: built.append(url) or real(self, url))
    made.validator.validate(load_example("yy-patient/valid-zhang-xiuying.json"))
    made.close()
    assert built == []


def test_a_conditional_create_racing_an_ingest_of_the_same_person_makes_one(services: Make) -> None:
    """The ingest merges under the identity lock; a conditional create under a lock of its own
    found nothing yet committed and made a second 张秀英 (PostgreSQL)."""
    made = services()
    person = load_example("yy-patient/valid-zhang-xiuying.json")
    card = next(i["value"] for i in person["identifier"] if i["system"] == "urn:oid:2.16.156.10011.1.3")
    inside, release = threading.Event(), threading.Event()

    def ingest() -> None:
        with made.store.transaction() as tx:
            merged, _ = IdentityIndex().resolve(tx, {**person, "id": "from-a-legacy-row"})
            stored, _ = tx.resources.write(merged)
            IdentityIndex.remember(tx, stored.resource)
            tx.sql.flush()
            inside.set()
            release.wait(10)

    batch = threading.Thread(target=ingest)
    batch.start()
    inside.wait(10)
    body = {k: v for k, v in person.items() if k != "id"}
    rest = threading.Thread(target=made.repository.create, args=(body, f"identifier=urn:oid:2.16.156.10011.1.3|{card}"))
    rest.start()
    rest.join(0.5)
    release.set()
    batch.join(10)
    rest.join(30)
    with made.store.reading() as tx:
        holders = made.searcher.matching(tx, "Patient", f"identifier=urn:oid:2.16.156.10011.1.3|{card}", None, count=5)
    assert len(holders) == 1


def test_a_conditional_patch_overtaken_by_a_write_moving_its_criteria_patches_nothing(
    services: Make, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Between the match and the patch, the health record number moves off the record: the
    patch must not land on a record the criteria no longer select."""
    repository = services().repository
    resident = repository.create(new_patient(index=7)).stored.resource
    record = next(i for i in resident["identifier"] if i["system"] == HEALTH_RECORD)
    moved = {**resident, "identifier": [i for i in resident["identifier"] if i is not record]}
    patch = repository.patch

    def overtaken(kind: str, resource_id: str, operations: Any, if_match: int | None = None) -> Any:
        monkeypatch.setattr(repository, "patch", patch)  # once: the next attempt runs unhindered
        repository.update("Patient", resident["id"], moved)
        return patch(kind, resource_id, operations, if_match)

    monkeypatch.setattr(repository, "patch", overtaken)
    criteria = f"identifier={HEALTH_RECORD}|{record['value']}"
    with pytest.raises(FhirError) as refused:
        repository.conditional_patch("Patient", criteria, [{"op": "add", "path": "/active", "value": False}])
    assert refused.value.message_id == "http.conditional-no-match"


def test_an_iterating_include_brings_at_most_its_limit(services: Make, monkeypatch: pytest.MonkeyPatch) -> None:
    """Organization ← Patients ← their Encounters: the iterated round stops at the limit."""
    monkeypatch.setattr(search, "MAX_ITERATED", 2)
    made = services()
    repository = made.repository
    centre = load_example("yy-organization/valid-yiyang-center.json")
    repository.update("Organization", centre["id"], centre)
    stay = load_example("yy-encounter/valid-home-bed.json")
    for index in range(3):
        resident = repository.create(
            {**new_patient(index=index), "managingOrganization": {"reference": f"Organization/{centre['id']}"}}
        )
        repository.update(
            "Encounter",
            f"stay-{index}",
            {**stay, "id": f"stay-{index}", "subject": {"reference": resident.stored.reference}},
        )
    pairs = [
        ("_id", centre["id"]),
        ("_revinclude", "Patient:organization"),
        ("_revinclude:iterate", "Encounter:subject"),
    ]
    with made.store.reading() as tx:
        result = made.searcher.search(tx, made.searcher.parse("Organization", pairs))
    assert sorted(stored.type for stored in result.included) == [
        "Encounter",
        "Encounter",
        "Patient",
        "Patient",
        "Patient",
    ]


def test_a_full_last_page_without_a_total_links_no_next_page(services: Make) -> None:
    """With ``_total=none`` nothing is counted: a page exactly as long as ``_count`` was taken
    for one with more behind it, and linked a next page that was empty."""
    made = services()
    for index in range(2):
        made.repository.create(new_patient(index=900 + index))
    query = made.searcher.parse("Patient", [("_total", "none"), ("_count", "2")])
    with made.store.reading() as tx:
        bundle = search.searchset(made.searcher.search(tx, query), "http://h/fhir", "Patient", [])
    assert [link["relation"] for link in bundle["link"]] == ["self", "first"]


def test_a_page_of_no_matches_without_a_total_links_no_next_page(services: Make) -> None:
    """``_count=0&_total=none`` read one match beyond its empty page and linked a next page
    at the same offset: the page itself again, which a client following ``next`` asks forever."""
    made = services()
    made.repository.create(new_patient(index=910))
    query = made.searcher.parse("Patient", [("_total", "none"), ("_count", "0")])
    with made.store.reading() as tx:
        bundle = search.searchset(made.searcher.search(tx, query), "http://h/fhir", "Patient", [])
    assert [link["relation"] for link in bundle["link"]] == ["self", "first"]


# -- one record per person -----------------------------------------------------------------------
def _refusal(attempt: Callable[[], Any]) -> tuple[int, str, str | None]:
    with pytest.raises(FhirError) as refused:
        attempt()
    return refused.value.status, refused.value.message_id, refused.value.expression


def test_a_create_bringing_a_number_another_patient_holds_is_refused(services: Make) -> None:
    made = services()
    made.repository.create(new_patient(1))
    assert _refusal(lambda: made.repository.create(new_patient(1))) == (
        409,
        "http.duplicate-person",
        "Patient.identifier[0]",
    )


def test_on_postgresql_a_new_patients_identity_claim_goes_with_its_commit(
    tmp_path: Path, validator: Validator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The claim of the person's identity keys (and the lock on its 身份证号 before it) went
    with the BEGIN, and its answer was read before the rest was sent: five statements to wait
    for, where the BEGIN and the write barrier go as one text.  Claimed as no one's, the keys
    go with the COMMIT: when it is sent, the number's lock has not been asked for yet."""
    person = new_patient(8)
    lock = number_lock(f"idcard|{person['identifier'][0]['value']}")
    locked_before_commit: list[bool] = []
    commit = Executor.commit
    with fresh_database_url("postgresql", tmp_path) as url:

        def committing(executor: Executor) -> None:
            locked_before_commit.append(advisory_lock_held(url, lock))
            commit(executor)

        made = Services(Config.load(database_url=url))
        made.__dict__["validator"] = validator  # a cached_property, preset: no second compile
        try:
            monkeypatch.setattr(Executor, "commit", committing)
            made.repository.create(person)
        finally:
            made.close()
    assert locked_before_commit == [False]


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_on_postgresql_a_creates_rows_go_with_its_commit_as_one_statement(
    services: Make, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its person key, current row and search index rows went as three INSERTs of the
    COMMIT's pipeline (psycopg's CPU about 40 µs each); they are one statement now.  (A
    create writes no history row: its version is the current one, migration 0019.)"""
    made = services()
    made.repository.create(new_patient(10))  # the schema made, the validator warm
    sent: list[str] = []
    run = Executor._run
    monkeypatch.setattr(Executor, "_run", lambda self, sql, params=(): sent.append(sql) or run(self, sql, params))
    made.repository.create(new_patient(9))
    writes = [sql for sql in sent if sql.startswith(("INSERT", "WITH"))]
    assert [sql.count("INSERT INTO") for sql in writes] == [3]


def test_an_update_bringing_a_number_another_patient_holds_is_refused(services: Make) -> None:
    made = services()
    made.repository.create(new_patient(2))
    other = {**new_patient(2), "id": "someone-else"}
    assert _refusal(lambda: made.repository.update("Patient", "someone-else", other))[0] == 409


def test_a_deleted_persons_number_passes_to_the_next_record(services: Make) -> None:
    made = services()
    first = made.repository.create(new_patient(3)).stored
    made.repository.delete("Patient", first.id)
    second = made.repository.create(new_patient(3)).stored
    with made.store.reading() as tx:
        holder = tx.identity.person_of(f"idcard|{new_patient(3)['identifier'][0]['value']}")
    assert holder == second.id


def test_a_number_corrected_away_from_a_patient_is_free_for_another(services: Make) -> None:
    made = services()
    first = made.repository.create(new_patient(6)).stored
    corrected = {**new_patient(7), "id": first.id}
    made.repository.update("Patient", first.id, corrected)
    assert made.repository.create(new_patient(6)).status == 201


def test_a_second_record_a_client_may_not_be_told_of_is_an_identity_conflict(services: Make) -> None:
    """The care home is not told the person is in the archive; the 主索引 staff are."""
    made = services()
    first = made.repository.create(new_patient(12)).stored
    home = Principal("home", "a-care-home", frozenset({"system/*.cruds"}), "elderly-care")
    token = acting.set(home)
    try:
        second = made.repository.create(new_patient(12)).stored
    finally:
        acting.reset(token)
    with made.store.reading() as tx:
        reported = [(e["kept"], e["offered"], e["source"]) for e in tx.conflicts.entries()]
    assert reported == [(f"Patient/{first.id}", f"Patient/{second.id}", "rest")]


def test_a_second_record_of_one_person_from_before_may_still_be_updated(services: Make) -> None:
    """Two records of one person written before the rule (or by a restore) stay writable."""
    made = services()
    made.repository.create(new_patient(4))
    with made.store.transaction() as tx:
        tx.resources.write({**new_patient(4), "id": "older-twin"})
    assert made.repository.update("Patient", "older-twin", {**new_patient(4), "id": "older-twin"}).status == 200


def test_a_create_racing_an_ingest_of_the_same_new_person_is_refused(services: Make) -> None:
    """On PostgreSQL the create found the number free while the ingest, which had found no one,
    held it queued unseen: both records were written.  The create now waits for the ingest's
    identity lock, and then finds the number taken."""
    made = services()
    inside, release, statuses = threading.Event(), threading.Event(), []

    def first() -> None:
        with made.store.transaction() as tx:
            merged, _ = IdentityIndex().resolve(tx, {**new_patient(5), "id": "from-a-legacy-row"})
            stored, _ = tx.resources.write(merged)
            IdentityIndex.remember(tx, stored.resource)  # queued, as an ingest batch leaves it
            inside.set()
            release.wait(10)

    def second() -> None:
        try:
            statuses.append(made.repository.create(new_patient(5)).status)
        except FhirError as refused:
            statuses.append(refused.status)

    holder = threading.Thread(target=first)
    holder.start()
    inside.wait(10)
    racer = threading.Thread(target=second)
    racer.start()
    racer.join(0.5)
    release.set()
    holder.join(10)
    racer.join(30)
    assert statuses == [409]


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_create_the_database_gives_up_in_a_deadlock_is_run_again(services: Make) -> None:
    """An ingest has claimed a person's number (uncommitted) and then waits for the number's
    lock, which a REST create of the same person holds while it waits on that claim.
    PostgreSQL breaks the deadlock by failing the create, which waited first: its client got
    a 503.  The create is run again and, the ingest's record having failed, writes the person."""
    made = services()
    person = new_patient(11)
    key = f"idcard|{person['identifier'][0]['value']}"
    claimed, create_waits, statuses = threading.Event(), threading.Event(), []

    def ingest() -> None:
        with contextlib.suppress(RecordFailed), made.store.transaction() as tx:
            tx.identity.claim("from-a-legacy-row", [key])
            claimed.set()
            create_waits.wait(10)
            tx.lock(number_lock(key))
            raise RecordFailed  # nothing it claimed is kept

    def create() -> None:
        try:
            statuses.append(made.repository.create(person).status)
        except StoreError as failed:
            statuses.append(503 if failed.retryable else 500)

    holder, creator = threading.Thread(target=ingest), threading.Thread(target=create)
    holder.start()
    claimed.wait(10)
    creator.start()
    while creator.is_alive() and not _waiting_on_a_lock(made):
        time.sleep(0.01)
    create_waits.set()
    holder.join(10)
    creator.join(30)
    assert statuses == [201]


@pytest.mark.parametrize("change", ["update", "delete"])
def test_an_ingest_of_a_number_a_write_takes_away_waits_for_it(
    services: Make, monkeypatch: pytest.MonkeyPatch, change: str
) -> None:
    """A PUT correcting a person's 身份证号 (or a DELETE) releases the number it drops, but
    did not lock it: on PostgreSQL an ingest of that number meanwhile found the person still
    holding it and merged a stranger's legacy record into them (or into the deleted record).
    The ingest now waits for the write, and then finds the number free: a new person."""
    made = services()
    person = made.repository.create(new_patient(12)).stored
    number = person.resource["identifier"][0]["value"]
    released, go_on, merged_into = threading.Event(), threading.Event(), []
    release = IdentityKeys.release

    def paused_release(self: IdentityKeys, person_id: str, keys: Any) -> None:
        release(self, person_id, keys)
        released.set()  # the write's transaction is still open
        go_on.wait(10)

    monkeypatch.setattr(IdentityKeys, "release", paused_release)

    def write() -> None:
        if change == "update":
            made.repository.update("Patient", person.id, {**new_patient(13), "id": person.id})
        else:
            made.repository.delete("Patient", person.id)

    def ingest() -> None:
        legacy = new_patient(14)
        legacy["identifier"] = [{**legacy["identifier"][0], "value": number}]
        with made.store.transaction() as tx:
            merged, _ = IdentityIndex().resolve(tx, {**legacy, "id": "from-a-legacy-row"})
            merged_into.append(merged["id"])

    writer, ingester = threading.Thread(target=write), threading.Thread(target=ingest)
    writer.start()
    released.wait(10)
    ingester.start()
    ingester.join(0.5)
    go_on.set()
    writer.join(30)
    ingester.join(30)
    assert merged_into == ["from-a-legacy-row"]


class RecordFailed(Exception):
    """A legacy record the ingest quarantines: its transaction's savepoint rolls back."""


def _waiting_on_a_lock(made: Services) -> bool:
    with made.store.reading(snapshot=False) as tx:
        found = tx.sql.one(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
    return int(found[0]) > 0


def test_a_deleted_or_corrected_number_leaves_the_identity_index(services: Make) -> None:
    """An ingest merged a legacy record of the number into the deleted (or corrected) record."""
    made = services()
    deleted = made.repository.create(new_patient(8)).stored
    made.repository.delete("Patient", deleted.id)
    corrected = made.repository.create(new_patient(9)).stored
    made.repository.update("Patient", corrected.id, {**new_patient(10), "id": corrected.id})
    with made.store.reading() as tx:
        holders = [tx.identity.person_of(f"idcard|{new_patient(n)['identifier'][0]['value']}") for n in (8, 9)]
    assert holders == [None, None]


def test_an_organisation_bringing_another_ones_identifier_is_refused(services: Make) -> None:
    """A hospital registered a copy of another's 统一社会信用代码 under itself; the code then named
    two organisations, and the owner's own writes naming itself by it were refused."""
    made = services()
    hospital = load_example("yy-organization/valid-hospital.json")
    made.repository.update("Organization", hospital["id"], hospital)
    copy_of_it = {**hospital, "id": "squatter", "name": "某医院"}
    with pytest.raises(FhirError) as refused:
        made.repository.update("Organization", "squatter", copy_of_it)
    assert (refused.value.status, refused.value.message_id) == (409, "http.duplicate-organization")

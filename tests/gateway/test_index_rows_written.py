"""The search index rows a write stores are those a fresh walk of the stored version gives
(``SearchIndexer.rows``), whatever path wrote it: the rows are made before the transaction from
the References its checks found, and those must be the References of the version stored (a
transaction's ``urn:uuid`` links rewritten, a patch's own-base references localised)."""

from __future__ import annotations

import base64
import itertools
import json
import random
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.synthetic import patient as synthetic_patient
from gateway.fhir.errors import FhirError
from gateway.services import Services

Make = Callable[..., Services]
BASE = "http://127.0.0.1:8080/fhir"
NOTE = "http://example.org/fhir/StructureDefinition/noted-by"


@pytest.fixture
def made(make_services: Make) -> Services:
    return make_services("warn")


def person(index: int, **extra: Any) -> dict[str, Any]:
    resource = synthetic_patient(random.Random(index), index, None)
    resource.pop("id")
    return {**resource, **extra}


def noted_by(reference: str) -> list[dict[str, Any]]:
    """An extension whose Reference no search parameter indexes (an unindexed reference row)."""
    return [{"url": NOTE, "valueReference": {"reference": reference}}]


def stored_and_fresh(made: Services, kind: str, resource_id: str) -> tuple[set[tuple[Any, ...]], set[tuple[Any, ...]]]:
    """The index rows stored for the current version, and those a fresh walk of it gives."""
    with made.store.reading() as tx:
        current = tx.resources.read(kind, resource_id)
        stored = tx.sql.all(
            "SELECT name, system, value, low, high, number FROM search_index WHERE type = ? AND id = ?",
            (kind, resource_id),
        )
    assert current is not None and current.resource is not None
    return {tuple(row) for row in stored}, set(made.indexer.rows(current.resource))


def test_a_created_patients_rows_are_a_fresh_walks(made: Services) -> None:
    other = made.repository.create(person(1)).stored
    written = made.repository.create(person(2, extension=noted_by(other.reference))).stored
    stored, fresh = stored_and_fresh(made, "Patient", written.id)
    assert stored == fresh


def test_a_create_stores_an_own_base_reference_as_the_relative_one(made: Services) -> None:
    """The REST create hands its body over as sent: the repository localises it."""
    other = made.repository.create(person(1)).stored
    absolute = f"{made.config.base_url}/{other.reference}"
    written = made.repository.create(person(2, extension=noted_by(absolute))).stored
    assert written.resource is not None and written.resource["extension"] == noted_by(other.reference)


def test_an_update_stores_an_own_base_reference_as_the_relative_one(made: Services) -> None:
    """The REST update hands its body over as sent: the repository localises it."""
    other = made.repository.create(person(1)).stored
    written = made.repository.create(person(2)).stored
    assert written.resource is not None
    absolute = f"{made.config.base_url}/{other.reference}"
    changed = {**written.resource, "extension": noted_by(absolute)}
    updated = made.repository.update("Patient", written.id, changed).stored
    assert updated.resource is not None and updated.resource["extension"] == noted_by(other.reference)


def test_a_patch_stores_an_own_base_reference_as_the_relative_one(made: Services) -> None:
    """The patched resource is localised with the References its checks read."""
    other = made.repository.create(person(1)).stored
    written = made.repository.create(person(2)).stored
    operations = [{"op": "add", "path": "/extension", "value": noted_by(f"{made.config.base_url}/{other.reference}")}]
    patched = made.repository.patch("Patient", written.id, operations).stored
    assert patched.resource is not None and patched.resource["extension"] == noted_by(other.reference)


def test_a_transactions_patch_entry_stores_an_own_base_reference_as_the_relative_one(made: Services) -> None:
    """A Bundle's patch is localised before its links are resolved, which ``_prepared`` does not see."""
    other = made.repository.create(person(1)).stored
    written = made.repository.create(person(2)).stored
    operations = [{"op": "add", "path": "/extension", "value": noted_by(f"{made.config.base_url}/{other.reference}")}]
    data = base64.b64encode(json.dumps(operations).encode()).decode()
    entry = {
        "resource": {"resourceType": "Binary", "contentType": "application/json-patch+json", "data": data},
        "request": {"method": "PATCH", "url": f"Patient/{written.id}"},
    }
    made.bundles.process({"resourceType": "Bundle", "type": "transaction", "entry": [entry]})
    patched = made.repository.read("Patient", written.id)
    assert patched.resource is not None and patched.resource["extension"] == noted_by(other.reference)


def test_a_patched_patients_rows_are_a_fresh_walks(made: Services) -> None:
    other = made.repository.create(person(3)).stored
    written = made.repository.create(person(4)).stored
    operations = [{"op": "add", "path": "/extension", "value": noted_by(f"{BASE}/{other.reference}")}]
    made.repository.patch("Patient", written.id, operations)
    stored, fresh = stored_and_fresh(made, "Patient", written.id)
    assert stored == fresh


def test_a_transactions_linked_entries_rows_are_a_fresh_walks(made: Services) -> None:
    entries = [
        {"fullUrl": "urn:uuid:first", "resource": person(5), "request": {"method": "POST", "url": "Patient"}},
        {
            "fullUrl": "urn:uuid:second",
            "resource": person(6, extension=noted_by("urn:uuid:first")),
            "request": {"method": "POST", "url": "Patient"},
        },
    ]
    answer = made.bundles.process({"resourceType": "Bundle", "type": "transaction", "entry": entries})
    second = answer["entry"][1]["response"]["location"].split("/")[1]
    stored, fresh = stored_and_fresh(made, "Patient", second)
    assert stored == fresh


def test_a_transactions_own_base_links_rows_are_a_fresh_walks(made: Services) -> None:
    first = f"{BASE}/Patient/own-first"
    entries = [
        {
            "fullUrl": first,
            "resource": person(7, id="own-first"),
            "request": {"method": "PUT", "url": "Patient/own-first"},
        },
        {
            "fullUrl": f"{BASE}/Patient/own-second",
            "resource": person(8, id="own-second", extension=noted_by(first)),
            "request": {"method": "PUT", "url": "Patient/own-second"},
        },
    ]
    made.bundles.process({"resourceType": "Bundle", "type": "transaction", "entry": entries})
    stored, fresh = stored_and_fresh(made, "Patient", "own-second")
    assert stored == fresh


def merging(source: str, target: str) -> dict[str, Any]:
    return {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "source-patient", "valueReference": {"reference": f"Patient/{source}"}},
            {"name": "target-patient", "valueReference": {"reference": f"Patient/{target}"}},
        ],
    }


def test_a_merges_rewritten_referrers_rows_are_a_fresh_walks(made: Services) -> None:
    from gateway.fhir.patient_merge import merge

    source = made.repository.create(person(11)).stored
    made.repository.update(
        "Patient", source.id, {**person(11), "id": source.id, "extension": noted_by(source.reference)}
    )
    target = made.repository.create(person(12)).stored
    referrer = made.repository.create(person(13, extension=noted_by(source.reference))).stored
    merge(made.repository, merging(source.id, target.id), "en")
    rows = [stored_and_fresh(made, "Patient", key) for key in (source.id, target.id, referrer.id)]
    assert all(stored == fresh for stored, fresh in rows)


_people = itertools.count(100)
#: where an entry may name another entry: (how the reference is spelt, given the entry's index)
SPELLINGS = (
    lambda i: f"urn:uuid:entry-{i}",
    lambda i: f"{BASE}/Patient/entry-{i}",
    lambda i: f"Patient/entry-{i}",
)


def placed(where: int, reference: str) -> dict[str, Any]:
    """A Patient's element naming ``reference``: indexed (``link``), unindexed (an
    extension's ``valueReference``) or in a contained resource."""
    if where == 0:
        return {"link": [{"other": {"reference": reference}, "type": "seealso"}]}
    if where == 1:
        return {"extension": noted_by(reference)}
    return {"contained": [{"resourceType": "RelatedPerson", "id": "r", "patient": {"reference": reference}}]}


@settings(max_examples=12, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    links=st.lists(
        st.tuples(st.integers(0, 2), st.integers(0, 2), st.sampled_from(range(len(SPELLINGS))), st.integers(0, 2)),
        max_size=4,
    ),
    methods=st.lists(st.sampled_from(["POST", "PUT"]), min_size=3, max_size=3),
)
def test_a_transactions_entries_rows_are_a_fresh_walks(
    made: Services, links: list[tuple[int, int, int, int]], methods: list[str]
) -> None:
    """Entries naming each other however spelt, wherever: rows made before the transaction from
    the References found before the links were rewritten."""
    resources = [person(next(_people)) for _ in range(3)]
    for source, target, spelling, where in links:
        for key, value in placed(where, SPELLINGS[spelling](target)).items():
            resources[source][key] = [*resources[source].get(key, []), *value]
    entries = []
    for i, (resource, method) in enumerate(zip(resources, methods, strict=True)):
        full_url = f"urn:uuid:entry-{i}" if method == "POST" else f"{BASE}/Patient/entry-{i}"
        body = resource if method == "POST" else {**resource, "id": f"entry-{i}"}
        url = "Patient" if method == "POST" else f"Patient/entry-{i}"
        entries.append({"fullUrl": full_url, "resource": body, "request": {"method": method, "url": url}})
    try:
        answer = made.bundles.process({"resourceType": "Bundle", "type": "transaction", "entry": entries})
    except FhirError:
        return  # a link to an entry spelt as the Bundle does not name it: refused, nothing written
    for entry in answer["entry"]:
        stored, fresh = stored_and_fresh(made, "Patient", entry["response"]["location"].split("/")[1])
        assert stored == fresh

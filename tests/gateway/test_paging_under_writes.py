"""Pages that stay consistent while the archive changes between them, on both databases: a
client following ``next`` sees each record once.  Offsets alone shifted under writes: a
version written between two history pages repeated an entry, and a member of a
``$everything`` deleted between two pages left another on no page."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from flask.testing import FlaskClient

from gateway import create_app
from tests.conftest import ASSERTION_TYPE, MakeServices, add_client, assertion

FHIR_JSON = "application/fhir+json"


@pytest.fixture
def client(make_services: MakeServices) -> Iterator[FlaskClient]:
    """The API without authentication, on a fresh store of each database."""
    app = create_app(services=make_services("warn"), secure=False)
    yield app.test_client()
    app.extensions["yiyang.exchanges"].flush()  # while its store is there to take the records


def put(client: FlaskClient, resource: dict[str, Any]) -> None:
    path = f"/fhir/{resource['resourceType']}/{resource['id']}"
    answer = client.put(path, data=json.dumps(resource), content_type=FHIR_JSON)
    assert answer.status_code in (200, 201), answer.get_data(as_text=True)


def basic(resource_id: str, code: str = "first") -> dict[str, Any]:
    return {"resourceType": "Basic", "id": resource_id, "code": {"text": code}}


def following(client: FlaskClient, bundle: dict[str, Any]) -> dict[str, Any]:
    """The page the bundle's ``next`` link leads to."""
    url = next(link["url"] for link in bundle["link"] if link["relation"] == "next")
    return client.get(url).get_json()


def versions(*pages: dict[str, Any]) -> list[str]:
    return [f"{e['request']['url']}@{e['response']['etag']}" for page in pages for e in page.get("entry", [])]


def test_a_history_followed_past_a_write_lists_each_version_once(client: FlaskClient) -> None:
    """The write comes first in the history now; the pages begun before it leave it out."""
    for n in range(6):
        put(client, basic(f"h-{n}"))
    first = client.get("/fhir/Basic/_history?_count=4").get_json()
    put(client, basic("h-0", "second"))
    expected = [f'Basic/h-{n}@W/"1"' for n in reversed(range(6))]
    assert versions(first, following(client, first)) == expected


# on PostgreSQL alone: SQLite has one writer at a time, so no other write commits while one is
# under way
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_history_followed_past_a_write_under_way_lists_each_version_once(client: FlaskClient) -> None:
    """On PostgreSQL a write under way when the first page is read may commit after it with a
    place below the page's ``_upto``: counted by offset, the next page repeated an entry."""
    store = client.application.config["SERVICES"].store
    for n in range(4):
        put(client, basic(f"w-{n}"))
    under_way, release = threading.Event(), threading.Event()

    def slow_write() -> None:
        with store.transaction() as tx:
            tx.resources.write(basic("w-late"))
            tx.sql.flush()  # its version has its place now, and commits after the first page
            under_way.set()
            release.wait(60)

    writer = threading.Thread(target=slow_write)
    writer.start()
    under_way.wait(60)
    put(client, basic("w-4"))
    first = client.get("/fhir/Basic/_history?_count=2").get_json()
    release.set()
    writer.join(60)
    expected = [f'Basic/w-{n}@W/"1"' for n in reversed(range(5))]
    assert versions(first, *pages_after(client, first)) == expected


def test_a_history_refuses_a_page_cursor_naming_no_version(client: FlaskClient) -> None:
    put(client, basic("c-0"))
    answer = client.get("/fhir/Basic/_history?_after=Basic/c-0/_history/9")
    assert (answer.status_code, answer.get_json()["issue"][0]["details"]["coding"][0]["code"]) == (
        400,
        "http.not-a-page-cursor",
    )


#: the members of :func:`resident`'s compartment the tests page through, in $everything's order
MEMBERS = [f"Observation/m-{n}" for n in range(7)]


@pytest.fixture
def resident(client: FlaskClient) -> str:
    """The $everything of a resident with the Observations :data:`MEMBERS`, paged by three."""
    put(client, {"resourceType": "Patient", "id": "resident", "gender": "female"})
    for reference in MEMBERS:
        observation = {"resourceType": "Observation", "id": reference.split("/")[1], "status": "final"}
        put(client, {**observation, "code": {"text": "bp"}, "subject": {"reference": "Patient/resident"}})
    return "/fhir/Patient/resident/$everything?_type=Observation&_count=3"


def matches(*pages: dict[str, Any]) -> list[str]:
    return [e["fullUrl"].split("/fhir/")[1] for page in pages for e in page.get("entry", [])]


def pages_after(client: FlaskClient, first: dict[str, Any]) -> list[dict[str, Any]]:
    """The pages the ``next`` links lead to from ``first``, to the last."""
    pages = [first]
    while any(link["relation"] == "next" for link in pages[-1]["link"]):
        pages.append(following(client, pages[-1]))
    return pages[1:]


@pytest.mark.parametrize("deleted", [MEMBERS[0], MEMBERS[2]], ids=["first-shown", "last-shown"])
def test_everything_followed_past_a_deletion_lists_every_remaining_member(
    client: FlaskClient, resident: str, deleted: str
) -> None:
    """A member shown on the first page, deleted before the next: the others shift no page."""
    first = client.get(resident).get_json()
    assert client.delete(f"/fhir/{deleted}").status_code == 200
    assert matches(first, *pages_after(client, first)) == MEMBERS


def test_everything_links_a_page_past_a_deletion_to_the_members_left(client: FlaskClient, resident: str) -> None:
    """Pages of two; the first member goes after the second page.  The third page, at offset
    4 of the 6 members left, would have been the last by its offset: the seventh member was on
    no page."""
    first = client.get(resident.replace("_count=3", "_count=2")).get_json()
    second = following(client, first)
    assert client.delete(f"/fhir/{MEMBERS[0]}").status_code == 200
    assert matches(*pages_after(client, second)) == MEMBERS[4:]


def test_everything_refuses_a_page_cursor_it_cannot_read(client: FlaskClient, resident: str) -> None:
    answer = client.get(f"{resident}&_after=m-1")
    assert (answer.status_code, answer.get_json()["issue"][0]["details"]["coding"][0]["code"]) == (
        400,
        "http.not-a-page-cursor",
    )


#: the Basics :func:`coded` writes, in id order
CODED = [f"Basic/s-{n}" for n in range(6)]


@pytest.fixture
def coded(client: FlaskClient) -> None:
    """Six Basics of one code."""
    for reference in CODED:
        coding = {"system": "urn:test", "code": "s"}
        put(client, {"resourceType": "Basic", "id": reference.split("/")[1], "code": {"coding": [coding]}})


@pytest.mark.parametrize(
    ("query", "order"),
    [
        ("", CODED),
        ("code=urn:test|s", CODED),
        ("_sort=-_id", CODED[::-1]),
        ("_sort=_lastUpdated", CODED),
        ("_sort=-_lastUpdated", CODED[::-1]),
    ],
    ids=["all", "by-one-value", "descending", "last-updated", "last-updated-descending"],
)
@pytest.mark.usefixtures("coded")
def test_a_search_by_id_or_last_update_followed_past_a_deletion_lists_every_remaining_match(
    client: FlaskClient, query: str, order: list[str]
) -> None:
    first = client.get(f"/fhir/Basic?{query}&_count=2").get_json()
    assert client.delete(f"/fhir/{order[0]}").status_code == 200
    assert matches(first, *pages_after(client, first)) == order


#: people with their names (Li Na has two: a parameter of several values sorts by the least
#: ascending, the greatest descending) and (but Zhao Min) a birth date, by id
PEOPLE = {
    "a": ([("Wang", "Li")], "1950-03-01"),
    "b": ([("Li", "Na"), ("Zhou", "Na")], "1948-07-15"),
    "c": ([("Wang", "Fang")], "1950-03-01"),
    "d": ([("Zhao", "Min")], None),
    "e": ([("Li", "Jun")], "1952-01-20"),
    "f": ([("Chen", "Hua")], "1945-11-02"),
}


def person(resource_id: str, names: list[tuple[str, str]], birth_date: str | None) -> dict[str, Any]:
    written = [{"family": family, "given": [given]} for family, given in names]
    patient = {"resourceType": "Patient", "id": resource_id, "name": written}
    return {**patient, "birthDate": birth_date} if birth_date else patient


@pytest.fixture
def people(client: FlaskClient) -> None:
    for resource_id, (names, birth_date) in PEOPLE.items():
        put(client, person(resource_id, names, birth_date))


#: sorted searches: each order of :data:`PEOPLE` (one without a birth date last, ties by id),
#: and a person written between the pages whom it puts first
SORTED = {
    "ascending": ("_sort=birthdate", "fbaced", person("n", [("Bai", "Xue")], "1940-01-01")),
    "descending": ("_sort=-birthdate", "eacbfd", person("n", [("Bai", "Xue")], "1960-01-01")),
    "two-keys": ("_sort=family,given", "febcad", person("n", [("Bai", "Xue")], None)),
    "two-keys-descending": ("_sort=-family,given", "bdcaef", person("n", [("Zu", "Xue")], None)),
}


@pytest.mark.parametrize("change", ["delete", "write"])
@pytest.mark.parametrize("name", list(SORTED))
@pytest.mark.usefixtures("people")
def test_a_sorted_search_followed_past_a_change_lists_each_remaining_match_once(
    client: FlaskClient, name: str, change: str
) -> None:
    """By offset, a match deleted from the first page left the next on none, and one written
    before the page's end showed its last match again."""
    query, order, newcomer = SORTED[name]
    first = client.get(f"/fhir/Patient?{query}&_count=2").get_json()
    if change == "delete":
        assert client.delete(f"/fhir/Patient/{order[0]}").status_code == 200
    else:
        put(client, newcomer)
    assert matches(first, *pages_after(client, first)) == [f"Patient/{resource_id}" for resource_id in order]


@pytest.mark.usefixtures("people")
def test_a_sorted_search_refuses_a_page_cursor_of_another_order(client: FlaskClient) -> None:
    first = client.get("/fhir/Patient?_sort=birthdate&_count=2").get_json()
    after = next(link["url"] for link in first["link"] if link["relation"] == "next").split("_after=")[1]
    answer = client.get(f"/fhir/Patient?_sort=-birthdate&_after={after}")
    assert (answer.status_code, answer.get_json()["issue"][0]["expression"]) == (400, ["_after"])


@pytest.mark.usefixtures("coded")
def test_a_search_refuses_a_page_cursor_no_link_gave(client: FlaskClient) -> None:
    answer = client.get("/fhir/Basic?_sort=_lastUpdated,_id&_after=s-1")
    assert (answer.status_code, answer.get_json()["issue"][0]["details"]["coding"][0]["code"]) == (
        400,
        "http.not-a-page-cursor",
    )


def test_the_audit_trail_followed_newest_first_lists_each_event_once(
    make_services: MakeServices, database_url: str, client_key: Any
) -> None:
    """Each request adds events of its own: newest first, the page after began one event
    further back for each, and repeated the last events of the page before."""
    services = make_services()
    app = create_app(services=services)
    add_client(database_url, "auditor", key=client_key, scope="system/AuditEvent.rs", role="auditor")
    client = app.test_client()
    form = {
        "grant_type": "client_credentials",
        "scope": "system/AuditEvent.rs",
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": assertion(services.config.base_url, "auditor", client_key),
    }
    token = client.post("/fhir/token", data=form).get_json()["access_token"]
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    for n in range(4):
        client.get(f"/fhir/AuditEvent/{n}")  # events of their own, to page through
    first = client.get("/fhir/AuditEvent?_sort=-date&_count=2").get_json()
    pages = [first, *pages_after(client, first)]
    for buffer in ("yiyang.audit", "yiyang.exchanges"):
        app.extensions[buffer].flush()  # while its store is there to take the records
    listed = [e["resource"]["id"] for page in pages for e in page.get("entry", [])]
    assert sorted(listed, key=int, reverse=True) == listed == list(dict.fromkeys(listed))

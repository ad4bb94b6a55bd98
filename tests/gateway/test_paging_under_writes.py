"""Pages that stay consistent while the archive changes between them, on both databases: a
client following ``next`` sees each record once.  Offsets alone shifted under writes: a
version written between two history pages repeated an entry, and a member of a
``$everything`` deleted between two pages left another on no page."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from flask.testing import FlaskClient

from gateway import create_app
from tests.conftest import MakeServices

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

"""References an archive holds on this server's own base (written by a gateway before request
bodies were localised, or by a path that does not read one) stand for the relative reference,
in what the gateway reads of them, on both databases (docs/api.md, references)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from flask.testing import FlaskClient

from gateway.api import build_app
from gateway.services import Services
from tests.conftest import MakeServices, load_example
from tests.gateway.test_patient_merge import parameters

PERSON = "Patient/zhang-xiuying"


@pytest.fixture
def services(make_services: MakeServices) -> Services:
    made = make_services()
    made.repository.update("Patient", "zhang-xiuying", load_example("yy-patient/valid-zhang-xiuying.json"))
    return made


@pytest.fixture
def client(services: Services) -> Iterator[FlaskClient]:
    app = build_app(services, secure=False)
    yield app.test_client()
    app.extensions["yiyang.exchanges"].flush()


def stored_absolutely(services: Services) -> str:
    """The id of a stay stored naming 张秀英 by an absolute URL on the gateway's base."""
    stay: dict[str, Any] = load_example("yy-encounter/valid-home-visit.json")
    stay["subject"] = {"reference": f"{services.config.base_url}/{PERSON}"}
    services.repository.update("Encounter", stay["id"], stay)
    return stay["id"]


def test_a_stay_stored_naming_its_person_absolutely_is_found_by_the_relative_reference(
    services: Services, client: FlaskClient
) -> None:
    stay = stored_absolutely(services)
    bundle = client.get(f"/fhir/Encounter?subject={PERSON}").get_json()
    assert [e["resource"]["id"] for e in bundle.get("entry", [])] == [stay]


def test_everything_brings_the_organisation_a_stay_names_absolutely(services: Services, client: FlaskClient) -> None:
    organisation = {**load_example("yy-organization/valid-yiyang-center.json"), "id": "named-absolutely"}
    services.repository.update("Organization", organisation["id"], organisation)
    stay: dict[str, Any] = load_example("yy-encounter/valid-home-visit.json")
    stay["serviceProvider"] = {"reference": f"{services.config.base_url}/Organization/{organisation['id']}"}
    services.repository.update("Encounter", stay["id"], stay)
    bundle = client.get(f"/fhir/{PERSON}/$everything").get_json()
    assert f"Organization/{organisation['id']}" in [
        f"{e['resource']['resourceType']}/{e['resource']['id']}" for e in bundle["entry"]
    ]


def test_a_person_a_stay_names_absolutely_is_not_deleted(services: Services, client: FlaskClient) -> None:
    stored_absolutely(services)
    assert client.delete(f"/fhir/{PERSON}").status_code == 409


def test_a_merge_moves_a_stay_naming_the_source_in_another_spelling_of_the_base(
    services: Services, client: FlaskClient
) -> None:
    """``HTTP://`` and the written default port name the same resource as the base does."""
    target = load_example("yy-patient/valid-li-jianguo-minimal.json")
    services.repository.update("Patient", target["id"], target)
    stay: dict[str, Any] = load_example("yy-encounter/valid-home-visit.json")
    stay["subject"] = {"reference": f"{services.config.base_url.replace('http://', 'HTTP://')}/{PERSON}"}
    services.repository.update("Encounter", stay["id"], stay)
    merge = parameters("zhang-xiuying", target["id"])
    answer = client.post("/fhir/Patient/$merge", json=merge, headers={"Content-Type": "application/fhir+json"})
    assert answer.status_code == 200, answer.get_data(as_text=True)
    moved = client.get(f"/fhir/Encounter/{stay['id']}").get_json()["subject"]["reference"]
    assert moved == f"Patient/{target['id']}"

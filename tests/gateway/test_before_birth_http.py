"""A REST write dated before its person's birth is refused (422) at the dated element: against
a Patient the archive holds, and against one the same transaction writes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from gateway import create_app
from gateway.config import Config
from tests.conftest import load_example

FHIR_JSON = {"Content-Type": "application/fhir+json"}


@pytest.fixture
def client(tmp_path: Path) -> FlaskClient:
    app = create_app(Config(database_url=f"sqlite:///{tmp_path / 'archive.sqlite'}"), secure=False)
    return app.test_client()


def visit(start: str, person: str = "Patient/zhang-xiuying") -> dict[str, Any]:
    """The package's home visit to 张秀英 (born 1949-12-31), starting at ``start``."""
    encounter = load_example("yy-encounter/valid-home-visit.json")
    del encounter["id"]
    encounter["subject"] = {"reference": person}
    encounter["period"] = {"start": start}
    return encounter


def refusals(answer: Any) -> tuple[int, list[tuple[str, str, list[str]]]]:
    issues = answer.get_json().get("issue", [])
    found = [(i["severity"], i["details"]["coding"][0]["code"], i.get("expression")) for i in issues]
    return answer.status_code, [issue for issue in found if issue[1].startswith("rule.before-birth")]


def test_a_visit_before_the_stored_persons_birth_is_refused_at_its_start(client: FlaskClient) -> None:
    client.put(
        "/fhir/Patient/zhang-xiuying", json=load_example("yy-patient/valid-zhang-xiuying.json"), headers=FHIR_JSON
    )
    answer = client.post("/fhir/Encounter", json=visit("1948-11-01T09:30:00+08:00"), headers=FHIR_JSON)
    assert refusals(answer) == (422, [("error", "rule.before-birth", ["Encounter.period.start"])])


def test_a_visit_before_the_birth_of_a_person_the_same_transaction_writes_is_refused(client: FlaskClient) -> None:
    person = load_example("yy-patient/valid-zhang-xiuying.json")
    del person["id"]
    uuid = "urn:uuid:6c1b1b36-0a55-4c53-9d8e-2a4c9f0e1d01"
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"fullUrl": uuid, "resource": person, "request": {"method": "POST", "url": "Patient"}},
            {"resource": visit("1948-11-01T09:30:00+08:00", uuid), "request": {"method": "POST", "url": "Encounter"}},
        ],
    }
    answer = client.post("/fhir", json=bundle, headers=FHIR_JSON)
    assert refusals(answer) == (422, [("error", "rule.before-birth", ["Bundle.entry[1].resource.period.start"])])

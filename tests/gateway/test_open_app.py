"""The app built without security (``create_app(secure=False)``), which the benchmark prices
security against: with no principal it must act as unrestricted, not fail where the secured
app consults the caller's scopes (transaction entries, ``$everything``, ``$document``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from bench import server_data
from conformance.validator import Validator
from gateway.api import build_app
from gateway.config import Config
from gateway.services import Services

FHIR_JSON = "application/fhir+json"


@pytest.fixture
def client(tmp_path: Path, validator: Validator) -> Iterator[FlaskClient]:
    services = Services(Config.load(database_url=f"sqlite:///{tmp_path / 'open.sqlite'}"), validator.registry)
    services.__dict__["validator"] = validator  # a cached_property, preset: no second compile
    yield build_app(services, secure=False).test_client()
    services.close()


def test_a_transaction_bundle_commits_without_a_principal(client: FlaskClient) -> None:
    bundle = server_data.transaction_bundles(1)[0]
    answer = client.post("/fhir", json=bundle, content_type=FHIR_JSON)
    assert (answer.status_code, len(answer.get_json()["entry"])) == (200, 10)


def test_everything_answers_without_a_principal(client: FlaskClient) -> None:
    bundle = server_data.transaction_bundles(1)[0]
    location = client.post("/fhir", json=bundle, content_type=FHIR_JSON).get_json()["entry"][0]["response"]["location"]
    patient_id = location.split("/")[1]
    answer = client.get(f"/fhir/Patient/{patient_id}/$everything")
    assert (answer.status_code, answer.get_json()["total"]) == (200, 10)


def test_a_requests_principal_does_not_outlive_the_request(client: FlaskClient) -> None:
    """The layers below the API learn whom they act for from a ContextVar; left set, it would
    carry one client's rights into whatever the thread runs next."""
    from flask import g

    from gateway.security.principal import Principal, acting

    app = client.application
    with app.test_request_context("/fhir/metadata"):
        g.principal = Principal("a-hospital", "its-org", frozenset(), "hospital")
        app.preprocess_request()
        during = acting.get()
    assert (during and during.client_id, acting.get()) == ("a-hospital", None)


def test_a_requests_exchange_does_not_outlive_the_request(client: FlaskClient) -> None:
    """A request ended before its after-request hooks (here: never answered) still leaves
    no collector behind to take the thread's next notes."""
    from gateway import exchanges

    app = client.application
    with app.test_request_context("/fhir/metadata"):
        app.preprocess_request()
        during = exchanges.current()
    assert (during is not None, exchanges.current()) == (True, None)

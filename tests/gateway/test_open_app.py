"""The app built without security (``create_app(secure=False)``), which the benchmark prices
security against: with no principal it must act as unrestricted, not fail where the secured
app consults the caller's scopes (transaction entries, ``$everything``, ``$document``).  Run
in process, it also shows what a request reads from the store."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from bench import server_data
from conformance.validator import Validator
from gateway.api import build_app
from gateway.config import Config
from gateway.services import Services
from gateway.storage.store import Executor
from tests.conftest import MakeServices

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


@pytest.fixture
def open_app(make_services: MakeServices) -> Iterator[Flask]:
    """The open app on a fresh store of each backend."""
    app = build_app(make_services(), secure=False)
    yield app
    app.extensions["yiyang.exchanges"].flush()  # while its store is there to take the records


def rows_read_for_a_page(app: Flask, members: int, monkeypatch: pytest.MonkeyPatch) -> int:
    """The rows the store hands over to the request while the app answers the second page
    (``_count=5``) of the $everything of a new person with ``members`` Observations (the
    exchange log writes on a thread of its own)."""
    person = f"elder-of-{members}"
    with app.config["SERVICES"].store.transaction() as tx:
        tx.resources.write({"resourceType": "Patient", "id": person})
        observation = {"resourceType": "Observation", "status": "final", "subject": {"reference": f"Patient/{person}"}}
        for n in range(members):
            tx.resources.write({**observation, "id": f"{person}-{n}"})
    read: list[int] = []
    all_rows, request_thread = Executor.all, threading.get_ident()

    def counted(executor: Executor, sql: str, params: Sequence[Any] = ()) -> list[Sequence[Any]]:
        rows = all_rows(executor, sql, params)
        if threading.get_ident() == request_thread:
            read.append(len(rows))
        return rows

    monkeypatch.setattr(Executor, "all", counted)
    answer = app.test_client().get(f"/fhir/Patient/{person}/$everything?_count=5&_offset=5")
    monkeypatch.undo()
    assert answer.status_code == 200, answer.get_data(as_text=True)
    return sum(read)


def test_a_page_of_everything_reads_no_more_of_a_long_record_than_of_a_short_one(
    open_app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Paging through an elder's years of follow-ups once read the whole record for every
    page: a platform paid for the record times its pages."""
    short, long = rows_read_for_a_page(open_app, 12, monkeypatch), rows_read_for_a_page(open_app, 120, monkeypatch)
    assert long == short


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


def test_a_bundle_entry_method_in_lower_case_is_refused_at_its_method(client: FlaskClient) -> None:
    """R4's HTTPVerb codes are case-sensitive: ``get`` was upper-cased and served."""
    bundle = {"resourceType": "Bundle", "type": "batch", "entry": [{"request": {"method": "get", "url": "Patient"}}]}
    response = client.post("/fhir", json=bundle, content_type=FHIR_JSON).get_json()["entry"][0]["response"]
    issue = response["outcome"]["issue"][0]
    assert (response["status"], issue["details"]["coding"][0]["code"], issue["expression"]) == (
        "400",
        "http.bad-bundle",
        ["Bundle.entry[0].request.method"],
    )


def batch_of(url: str) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "batch", "entry": [{"request": {"method": "GET", "url": url}}]}


def test_a_bundle_read_entry_refuses_a_parameter_it_does_not_know_under_strict_handling(client: FlaskClient) -> None:
    """As the read on its own does: the request's ``Prefer: handling=strict`` was not read."""
    made = client.post("/fhir/Basic", json={"resourceType": "Basic", "code": {"text": "x"}}, content_type=FHIR_JSON)
    bundle = batch_of(f"Basic/{made.get_json()['id']}?_=1733450000")
    answer = client.post("/fhir", json=bundle, content_type=FHIR_JSON, headers={"Prefer": "handling=strict"})
    response = answer.get_json()["entry"][0]["response"]
    code = response["outcome"]["issue"][0]["details"]["coding"][0]["code"]
    assert (response["status"], code) == ("400", "http.unsupported-parameter")


def test_a_bundle_search_entry_skips_a_parameter_it_does_not_know_under_lenient_handling(client: FlaskClient) -> None:
    """As the search on its own does: the request's ``Prefer: handling=lenient`` was not read."""
    bundle = batch_of("Basic?no-such-parameter=1")
    answer = client.post("/fhir", json=bundle, content_type=FHIR_JSON, headers={"Prefer": "handling=lenient"})
    assert answer.get_json()["entry"][0]["response"]["status"] == "200 OK"


def test_a_patients_read_matches_a_rule_of_its_own_and_takes_the_methods_of_any_read(client: FlaskClient) -> None:
    """werkzeug matches a path's static parts first: ``/fhir/Patient/<id>`` led it through the
    Patient-only routes before it came back to ``<kind>`` (a quarter more of the matching of a
    read).  The Patient's own rule answers as the general one: the same endpoint and values,
    the same methods allowed, no redirect; it takes FHIR ids alone."""
    app = client.application
    rule, values = app.url_map.bind("localhost").match("/fhir/Patient/p1", "GET", return_rule=True)
    assert (rule.rule, rule.endpoint, values) == (
        "/fhir/Patient/<fhir_id:resource_id>",
        "fhir.read",
        {"kind": "Patient", "resource_id": "p1"},
    )
    refused = [client.post(f"/fhir/{kind}/p1", json={}) for kind in ("Patient", "Encounter")]
    assert [(answer.status_code, answer.headers["Allow"]) for answer in refused] == [
        (405, "GET, HEAD, PUT, PATCH, DELETE")
    ] * 2
    assert client.get("/fhir/Patient/p1").status_code == 404
    # what is no id is matched by the routes of every type, as before
    assert [client.get(f"/fhir/Patient/{part}").status_code for part in ("_history", "$validate")] == [200, 405]

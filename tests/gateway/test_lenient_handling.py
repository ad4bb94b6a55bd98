"""``Prefer: handling=lenient`` on a history and the operations read by GET: a parameter they
do not take is ignored, as a search ignores one (R4 search.html#errors), and the answer says
what it was answered by (its links, or a warning where it has room for one); without the
preference, or with ``handling=strict``, it is still a 400 at the parameter's name."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from flask.testing import FlaskClient

from gateway.api import build_app
from gateway.messages import text
from tests.conftest import MakeServices, load_example

FHIR_JSON = {"Content-Type": "application/fhir+json"}
LENIENT = {"Prefer": "handling=lenient"}


@pytest.fixture
def client(make_services: MakeServices) -> Iterator[FlaskClient]:
    app = build_app(make_services(), secure=False)
    yield app.test_client()
    app.extensions["yiyang.exchanges"].flush()  # while its store is there to take the records


@pytest.fixture
def patient(client: FlaskClient) -> str:
    answer = client.post("/fhir/Patient", json=load_example("yy-patient/valid-zhang-xiuying.json"), headers=FHIR_JSON)
    assert answer.status_code == 201, answer.get_data(as_text=True)
    return str(answer.get_json()["id"])


def codes(resource: dict[str, Any]) -> list[tuple[str, str, list[str] | None]]:
    return [(i["severity"], i["details"]["coding"][0]["code"], i.get("expression")) for i in resource["issue"]]


def self_link(bundle: dict[str, Any]) -> str:
    return next(link["url"] for link in bundle["link"] if link["relation"] == "self")


@pytest.mark.parametrize("path", ["_history", "Patient/_history", "Patient/{patient}/_history"])
def test_a_history_ignores_an_unknown_parameter_under_lenient_handling(
    client: FlaskClient, patient: str, path: str
) -> None:
    answer = client.get(f"/fhir/{path.format(patient=patient)}?_at=2026&_count=5", headers=LENIENT)
    assert (answer.status_code, answer.get_json()["total"]) == (200, 1)


def test_a_lenient_history_leaves_the_ignored_parameter_out_of_its_links(client: FlaskClient, patient: str) -> None:
    bundle = client.get(f"/fhir/Patient/{patient}/_history?_at=2026&_count=5", headers=LENIENT).get_json()
    assert "_at" not in self_link(bundle)


@pytest.mark.parametrize("prefer", [{}, {"Prefer": "handling=strict"}])
def test_a_history_still_refuses_an_unknown_parameter_unless_lenient(
    client: FlaskClient, patient: str, prefer: dict[str, str]
) -> None:
    answer = client.get(f"/fhir/Patient/{patient}/_history?_at=2026", headers=prefer)
    assert (answer.status_code, codes(answer.get_json())) == (
        400,
        [("error", "http.unsupported-parameter", ["_at"])],
    )


def test_a_batch_history_entry_ignores_an_unknown_parameter_under_lenient_handling(
    client: FlaskClient, patient: str
) -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [{"request": {"method": "GET", "url": f"Patient/{patient}/_history?_at=2026"}}],
    }
    answer = client.post("/fhir", json=bundle, headers={**FHIR_JSON, **LENIENT})
    assert answer.get_json()["entry"][0]["response"]["status"] == "200 OK"


def test_a_batch_search_entry_words_the_parameter_it_ignored_in_the_readers_language(client: FlaskClient) -> None:
    """The entry's searchset was worded in the default language whatever Accept-Language asked."""
    bundle = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [{"request": {"method": "GET", "url": "Patient?_at=2026"}}],
    }
    answer = client.post("/fhir", json=bundle, headers={**FHIR_JSON, **LENIENT, "Accept-Language": "en"})
    outcome = answer.get_json()["entry"][0]["resource"]["entry"][-1]["resource"]
    assert outcome["issue"][0]["details"]["text"] == text(
        "search.unknown-parameter", "en", {"param": "_at", "type": "Patient"}
    )


def test_everything_names_the_parameter_it_ignored_in_an_outcome_entry(client: FlaskClient, patient: str) -> None:
    bundle = client.get(f"/fhir/Patient/{patient}/$everything?start=2026", headers=LENIENT).get_json()
    outcomes = [e["resource"] for e in bundle["entry"] if e["search"]["mode"] == "outcome"]
    assert [codes(outcome) for outcome in outcomes] == [[("warning", "http.unsupported-parameter", ["start"])]]


def test_everything_leaves_the_parameter_it_ignored_out_of_its_links(client: FlaskClient, patient: str) -> None:
    bundle = client.get(f"/fhir/Patient/{patient}/$everything?start=2026&_count=5", headers=LENIENT).get_json()
    assert "start" not in self_link(bundle)


def test_everything_still_refuses_an_unknown_parameter_under_strict_handling(client: FlaskClient, patient: str) -> None:
    answer = client.get(f"/fhir/Patient/{patient}/$everything?start=2026", headers={"Prefer": "handling=strict"})
    assert (answer.status_code, codes(answer.get_json())) == (
        400,
        [("error", "http.unsupported-parameter", ["start"])],
    )


def test_validate_warns_of_the_parameter_it_ignored(client: FlaskClient, patient: str) -> None:
    answer = client.get(f"/fhir/Patient/{patient}/$validate?profil=x", headers=LENIENT)
    warned = [issue for issue in codes(answer.get_json()) if issue[1] == "http.unsupported-parameter"]
    assert (answer.status_code, warned) == (200, [("warning", "http.unsupported-parameter", ["profil"])])


def test_validate_still_refuses_an_unknown_parameter_by_default(client: FlaskClient, patient: str) -> None:
    answer = client.get(f"/fhir/Patient/{patient}/$validate?profil=x")
    assert (answer.status_code, codes(answer.get_json())) == (
        400,
        [("error", "http.unsupported-parameter", ["profil"])],
    )


def test_evaluate_measure_ignores_an_unknown_parameter_under_lenient_handling(client: FlaskClient) -> None:
    query = "periodStart=2026-01-01&periodEnd=2026-12-31&lastReceivedOn=2026-12-01"
    answer = client.get(f"/fhir/Measure/ltc-insured-count/$evaluate-measure?{query}", headers=LENIENT)
    assert answer.status_code == 200, answer.get_data(as_text=True)


@pytest.mark.parametrize("prefer", [LENIENT, {}])
@pytest.mark.parametrize("name", ["patient", "practitioner", "subject"])
def test_evaluate_measure_refuses_a_subject_report_whatever_the_handling(
    client: FlaskClient, name: str, prefer: dict[str, str]
) -> None:
    """Ignored under lenient handling, the population's report was answered for the one
    patient's (or practitioner's patients') asked; refused as any unknown one otherwise."""
    query = f"periodStart=2026-01-01&periodEnd=2026-12-31&{name}=Patient/x"
    answer = client.get(f"/fhir/Measure/ltc-insured-count/$evaluate-measure?{query}", headers=prefer)
    assert (answer.status_code, codes(answer.get_json())) == (400, [("error", "measure.subject-report", [name])])


def test_document_ignores_an_unknown_parameter_under_lenient_handling(client: FlaskClient) -> None:
    """The Composition is then looked for (none here): the parameter no longer stops it."""
    answer = client.get("/fhir/Composition/none/$document?style=x", headers=LENIENT)
    assert answer.status_code == 404


def test_document_refuses_a_graph_under_lenient_handling(client: FlaskClient) -> None:
    """Ignored, the default document was answered for the one the GraphDefinition shapes."""
    answer = client.get("/fhir/Composition/none/$document?graph=GraphDefinition/x", headers=LENIENT)
    assert (answer.status_code, codes(answer.get_json())) == (400, [("error", "http.takes-no-parameters", ["graph"])])


@pytest.mark.parametrize(("accepted", "wording"), [({"Accept-Language": "en"}, "en"), ({}, "zh-CN")])
def test_a_lenient_search_words_the_parameter_it_ignored_in_the_readers_language(
    client: FlaskClient, patient: str, accepted: dict[str, str], wording: str
) -> None:
    """A search looks the reader's language up only for a Bundle with warnings to word."""
    bundle = client.get("/fhir/Patient?_at=2026", headers={**LENIENT, **accepted}).get_json()
    outcome = bundle["entry"][-1]["resource"]
    assert [issue["details"]["text"] for issue in outcome["issue"]] == [
        text("search.unknown-parameter", wording, {"param": "_at", "type": "Patient"})
    ]

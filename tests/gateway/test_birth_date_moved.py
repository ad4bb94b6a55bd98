"""A Patient's ``birthDate`` moved later is judged against what the archive holds of them: a
stored visit now dated before the birth would be a contradiction the archive keeps, so the
update is refused (422 at ``Patient.birthDate``, naming the visit), or, when the gateway
accepts with warnings, written with a warning.  On both databases."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from flask.testing import FlaskClient

from conformance.id_card import check_char
from gateway.fhir.repository import Repository
from gateway.security.principal import Principal, acting
from tests.conftest import MakeServices, load_example
from tests.gateway.conftest import open_client

FHIR_JSON = {"Content-Type": "application/fhir+json"}
PERSON = "Patient/zhang-xiuying"  # born 1949-12-31
MOVED = "rule.birth-date-after-events"
#: the elderly-care home of 张秀英's stay (yy-encounter/valid-elderly-care-admission.json)
HOME = Principal("fushou-platform", "jinshui-fushou-elderly-home", frozenset({"system/*.cruds"}), "elderly-care")


@pytest.fixture
def client(make_services: MakeServices) -> Iterator[FlaskClient]:
    yield from open_client(make_services, "reject", person())


@pytest.fixture
def lenient_client(make_services: MakeServices) -> Iterator[FlaskClient]:
    yield from open_client(make_services, "warn", person())


def person(born: str = "1949-12-31") -> dict[str, Any]:
    """张秀英 born on ``born``, her 身份证号 saying so too (else that rule refuses the date)."""
    patient = load_example("yy-patient/valid-zhang-xiuying.json")
    first17 = f"410105{born.replace('-', '')}002"
    patient["identifier"][0]["value"] = first17 + check_char(first17)
    return {**patient, "birthDate": born}


def visit(start: str) -> dict[str, Any]:
    encounter = load_example("yy-encounter/valid-home-visit.json")
    del encounter["id"]
    return {**encounter, "subject": {"reference": PERSON}, "period": {"start": start}}


def stored_visit(client: FlaskClient, start: str = "1960-03-01T09:30:00+08:00") -> str:
    answer = client.post("/fhir/Encounter", json=visit(start), headers=FHIR_JSON)
    assert answer.status_code == 201, answer.get_data(as_text=True)
    return f"Encounter/{answer.get_json()['id']}"


def moved(outcome: dict[str, Any]) -> list[tuple[str, list[str], str]]:
    """(severity, expression, English text) of each moved-birth issue."""
    return [
        (i["severity"], i.get("expression", []), i["details"]["text"])
        for i in outcome.get("issue", [])
        if i["details"]["coding"][0]["code"] == MOVED
    ]


def test_a_birth_date_moved_past_a_stored_visit_is_refused_at_the_birth_date(client: FlaskClient) -> None:
    reference = stored_visit(client)
    answer = client.put(f"/fhir/{PERSON}", json=person("1965-01-01"), headers=FHIR_JSON)
    [(severity, expression, text)] = moved(answer.get_json())
    assert (answer.status_code, severity, expression, reference in text) == (422, "error", ["Patient.birthDate"], True)


def test_a_birth_date_patched_past_a_stored_visit_is_refused(client: FlaskClient) -> None:
    stored_visit(client)
    later = person("1965-01-01")
    operations = [
        {"op": "replace", "path": "/birthDate", "value": later["birthDate"]},
        {"op": "replace", "path": "/identifier/0/value", "value": later["identifier"][0]["value"]},
    ]
    headers = {"Content-Type": "application/json-patch+json"}
    answer = client.patch(f"/fhir/{PERSON}", json=operations, headers=headers)
    assert (answer.status_code, len(moved(answer.get_json()))) == (422, 1)


def test_a_refused_birth_date_is_not_written(client: FlaskClient) -> None:
    stored_visit(client)
    client.put(f"/fhir/{PERSON}", json=person("1965-01-01"), headers=FHIR_JSON)
    assert client.get(f"/fhir/{PERSON}").get_json()["birthDate"] == "1949-12-31"


def test_a_birth_date_moved_later_but_before_every_visit_is_written(client: FlaskClient) -> None:
    stored_visit(client)
    answer = client.put(f"/fhir/{PERSON}", json=person("1950-06-01"), headers=FHIR_JSON)
    assert answer.status_code == 200, answer.get_data(as_text=True)


def test_a_birth_date_moved_past_a_visit_is_a_warning_when_the_gateway_accepts_with_warnings(
    lenient_client: FlaskClient,
) -> None:
    stored_visit(lenient_client)
    headers = {**FHIR_JSON, "Prefer": "return=OperationOutcome"}
    answer = lenient_client.put(f"/fhir/{PERSON}", json=person("1965-01-01"), headers=headers)
    assert (answer.status_code, [issue[:2] for issue in moved(answer.get_json())]) == (
        200,
        [("warning", ["Patient.birthDate"])],
    )


def test_a_birth_date_moved_past_a_visit_under_warn_leaves_its_warning_in_the_exchange_record(
    lenient_client: FlaskClient,
) -> None:
    """The write's issues are in the exchange record under ``warn`` too: this one, found after
    the validation the record is noted from, was left out (the update was a clean pass)."""
    stored_visit(lenient_client)
    lenient_client.put(f"/fhir/{PERSON}", json=person("1965-01-01"), headers=FHIR_JSON)
    lenient_client.application.extensions["yiyang.exchanges"].flush()
    with lenient_client.application.config["SERVICES"].store.reading() as tx:
        found = tx.sql.all("SELECT severity, location FROM exchange_issue WHERE rule = ?", (MOVED,))
    assert [tuple(row) for row in found] == [("warning", "Patient.birthDate")]


def transaction(*entries: tuple[str, str, dict[str, Any]]) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"resource": resource, "request": {"method": method, "url": url}} for method, url, resource in entries
        ],
    }


def test_a_transaction_moving_the_birth_date_past_a_visit_is_refused_at_its_entry(client: FlaskClient) -> None:
    stored_visit(client)
    bundle = transaction(("PUT", PERSON, person("1965-01-01")))
    answer = client.post("/fhir", json=bundle, headers=FHIR_JSON)
    assert (answer.status_code, [issue[1] for issue in moved(answer.get_json())]) == (
        422,
        [["Bundle.entry[0].resource.birthDate"]],
    )


def test_a_transaction_correcting_the_visit_with_the_birth_date_is_written(client: FlaskClient) -> None:
    """Judged as the transaction leaves the archive: the visit is moved too, after the Patient."""
    reference = stored_visit(client)
    corrected = {**visit("1970-03-01T09:30:00+08:00"), "id": reference.split("/")[1]}
    bundle = transaction(("PUT", PERSON, person("1965-01-01")), ("PUT", reference, corrected))
    answer = client.post("/fhir", json=bundle, headers=FHIR_JSON)
    assert answer.status_code == 200, answer.get_data(as_text=True)


def test_a_transaction_moving_the_birth_date_earlier_with_a_visit_between_is_written(client: FlaskClient) -> None:
    """The visit is judged against the birth date the transaction leaves: the one it moved
    from (1965, stored) is what its write held of the person, not what the archive keeps."""
    client.put(f"/fhir/{PERSON}", json=person("1965-01-01"), headers=FHIR_JSON)
    bundle = transaction(("PUT", PERSON, person()), ("POST", "Encounter", visit("1960-03-01T09:30:00+08:00")))
    answer = client.post("/fhir", json=bundle, headers=FHIR_JSON)
    assert answer.status_code == 200, answer.get_data(as_text=True)


#: 张秀英 managed by the home of her stay, so the home may write her record
AT_HOME = {"managingOrganization": {"reference": f"Organization/{HOME.organization}"}}


@pytest.fixture
def home_resident(make_services: MakeServices) -> Repository:
    """张秀英 in the home's care, and her son, whom the home does not serve (a cover he holds
    for her is hidden from the home)."""
    repository = make_services("reject").repository
    repository.update("Patient", "zhang-xiuying", {**person(), **AT_HOME})
    son = person("1975-06-01")
    repository.update("Patient", "son", {**son, "id": "son", "identifier": son["identifier"][:1]})
    stay = load_example("yy-encounter/valid-elderly-care-admission.json")
    repository.create({**{k: v for k, v in stay.items() if k != "id"}, "subject": {"reference": PERSON}})
    return repository


def held_by_son(repository: Repository, start: str) -> str:
    cover = load_example("yy-coverage/valid-employee-insurance.json")
    cover = {**{k: v for k, v in cover.items() if k != "id"}, "policyHolder": {"reference": "Patient/son"}}
    return repository.create({**cover, "period": {"start": start}}).stored.reference


def moved_by_home(repository: Repository, born: str) -> None:
    token = acting.set(HOME)
    try:
        repository.update("Patient", "zhang-xiuying", {**person(born), **AT_HOME})
    finally:
        acting.reset(token)


def birth_conflicts(repository: Repository) -> list[str]:
    with repository.store.reading() as tx:
        return [entry["offered"] for entry in tx.conflicts.entries() if entry["element"] == "birthDate"]


def test_a_record_the_writer_may_not_see_is_listed_for_the_staff_not_told(home_resident: Repository) -> None:
    """An elderly-care home moving a resident's birth date past a record it may not see (a cover
    whose policy holder is someone it does not serve) is not told of it (that would tell it what
    others hold): the write lands, and the contradiction is listed among the identity conflicts
    for the 主索引 staff."""
    hidden = held_by_son(home_resident, "1960-01-01")
    moved_by_home(home_resident, "1965-01-01")
    assert birth_conflicts(home_resident) == [hidden]


def test_a_second_move_past_other_hidden_records_is_listed_too(home_resident: Repository) -> None:
    first = held_by_son(home_resident, "1960-01-01")
    moved_by_home(home_resident, "1965-01-01")
    second = held_by_son(home_resident, "1968-01-01")
    moved_by_home(home_resident, "1970-01-01")
    assert [set(offered.split(", ")) for offered in birth_conflicts(home_resident)] == [{first}, {first, second}]


def test_a_birth_date_refused_past_a_stored_visit_leaves_its_reason_in_the_exchange_record(
    client: FlaskClient,
) -> None:
    """The update was judged valid, then refused: its record failed it with no reason, as a
    422 was taken for the validator's, whose issues were noted already."""
    stored_visit(client)
    client.put(f"/fhir/{PERSON}", json=person("1965-01-01"), headers=FHIR_JSON)
    client.application.extensions["yiyang.exchanges"].flush()
    with client.application.config["SERVICES"].store.reading() as tx:
        found = tx.sql.all("SELECT location FROM exchange_issue WHERE rule = ?", (MOVED,))
    assert [row[0] for row in found] == ["Patient.birthDate"]

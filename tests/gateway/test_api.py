"""The FHIR REST API against a real running server (gunicorn, real sockets), on SQLite and on
PostgreSQL: every interaction the CapabilityStatement claims, and errors as OperationOutcomes.

The tests of a module share one server and store, so each test makes its own people."""

from __future__ import annotations

import base64
import io
import itertools
import json
import random
from typing import Any
from urllib.parse import quote

import pytest
import requests
from openpyxl import Workbook

from bench.synthetic import patient as synthetic_patient
from mappings.readers import COMPOUND_FILE
from profiles.registry import Registry, examples_dir
from tests.conftest import Api

ID_CARD = "urn:oid:2.16.156.10011.1.3"
FHIR_JSON = {"Content-Type": "application/fhir+json"}
_people = itertools.count(1)


def new_patient(**changes: Any) -> dict[str, Any]:
    """A valid yy-patient no other test uses (its own 身份证号), without an id."""
    number = next(_people)
    resource = synthetic_patient(random.Random(number * 7919), number)
    resource.pop("id")
    return {**resource, "active": True, **changes}


def id_card(resource: dict[str, Any]) -> str:
    return next(i["value"] for i in resource["identifier"] if i["system"] == ID_CARD)


def example(relative: str) -> dict[str, Any]:
    return json.loads((examples_dir() / relative).read_text(encoding="utf-8"))


def post(api: Api, path: str, body: Any, **headers: str) -> requests.Response:
    return api.post(f"{api.base}/{path}", data=json.dumps(body), headers={**FHIR_JSON, **headers}, timeout=60)


def put(api: Api, path: str, body: Any, **headers: str) -> requests.Response:
    return api.put(f"{api.base}/{path}", data=json.dumps(body), headers={**FHIR_JSON, **headers}, timeout=60)


def get(api: Api, path: str, **headers: str) -> requests.Response:
    return api.get(f"{api.base}/{path}", headers=headers, timeout=60)


def created(api: Api, resource: dict[str, Any]) -> dict[str, Any]:
    answer = post(api, resource["resourceType"], resource)
    assert answer.status_code == 201, answer.text
    return answer.json()


def message_ids(answer: requests.Response) -> list[str]:
    return [issue["details"]["coding"][0]["code"] for issue in answer.json()["issue"]]


#: a Parameters part holding a Patient to validate
RESOURCE_PART = {"name": "resource", "resource": {"resourceType": "Patient", "gender": "female"}}


def parameters(**values: str) -> dict[str, Any]:
    return {"resourceType": "Parameters", "parameter": [{"name": k, "valueString": v} for k, v in values.items()]}


# -- capability ------------------------------------------------------------------------------
def test_the_capability_statement_advertises_the_provincial_search_parameter(api: Api) -> None:
    statement = get(api, "metadata").json()
    coverage = next(r for r in statement["rest"][0]["resource"] if r["type"] == "Coverage")
    assert "subscriber-id" in {p["name"] for p in coverage["searchParam"]}


def test_the_capability_statement_offers_only_r4_resources_with_an_endpoint(api: Api) -> None:
    offered = {r["type"] for r in get(api, "metadata").json()["rest"][0]["resource"]}
    assert offered & {"Parameters", "SubscriptionStatus", "Citation"} == set()


@pytest.mark.parametrize("kind", ["Parameters", "SubscriptionStatus"])
def test_a_resource_without_an_r4_endpoint_cannot_be_created(api: Api, kind: str) -> None:
    answer = post(api, kind, {"resourceType": kind})
    assert (answer.status_code, message_ids(answer)) == (404, ["http.unknown-type"])


def test_the_capability_statement_claims_only_read_and_search_of_the_audit_trail(api: Api) -> None:
    statement = get(api, "metadata").json()
    trail = next(r for r in statement["rest"][0]["resource"] if r["type"] == "AuditEvent")
    assert [i["code"] for i in trail["interaction"]] == ["read", "search-type"]


def test_the_capability_statement_says_the_audit_trail_takes_no_modifiers(api: Api) -> None:
    """Its parameters point at R4's definitions, whose :missing and _sort the trail refuses."""
    statement = get(api, "metadata").json()
    trail = next(r for r in statement["rest"][0]["resource"] if r["type"] == "AuditEvent")
    assert all(":missing" in p["documentation"] for p in trail["searchParam"])


def test_the_capability_statement_says_how_a_client_gets_through(api: Api) -> None:
    """Every route but a few needs a SMART Backend Services token: rest.security says so, with
    the token endpoint, and claims no CORS, which the gateway does not send."""
    security = get(api, "metadata").json()["rest"][0]["security"]
    service = security["service"][0]["coding"][0]
    named = [
        f"{api.base}/token" in security["description"],
        "/.well-known/smart-configuration" in security["description"],
    ]
    assert (service["system"], service["code"], security["cors"], named) == (
        "http://terminology.hl7.org/CodeSystem/restful-security-service",
        "SMART-on-FHIR",
        False,
        [True, True],
    )


def test_the_capability_statement_is_summarised_as_asked(api: Api) -> None:
    """_summary=true keeps the elements R4 marks as summary (a resource's type and operations,
    not its search parameters) and marks the answer SUBSETTED."""
    summary = get(api, "metadata?_summary=true").json()
    patient = next(r for r in summary["rest"][0]["resource"] if r["type"] == "Patient")
    kept = (summary["fhirVersion"], "searchParam" in patient, bool(patient["operation"]))
    assert (kept, summary["meta"]["tag"][0]["code"]) == (("4.0.1", False, True), "SUBSETTED")


def test_the_capability_statement_refuses_mode_given_twice(api: Api) -> None:
    answer = get(api, "metadata?mode=full&mode=terminology")
    assert (answer.status_code, message_ids(answer)) == (400, ["http.repeated-parameter"])


def test_the_capability_statement_is_cut_to_the_elements_asked(api: Api) -> None:
    elements = get(api, "metadata?_elements=format").json()
    assert (bool(elements["format"]), "rest" in elements) == (True, False)


@pytest.mark.parametrize("mode", ["terminology", "everything"])
def test_a_capability_mode_the_server_does_not_answer_is_refused(api: Api, mode: str) -> None:
    """mode=terminology asks for a TerminologyCapabilities: answering a CapabilityStatement in
    its place, as an unknown mode too, gave another resource than was asked for."""
    answer = get(api, f"metadata?mode={mode}")
    assert (answer.status_code, message_ids(answer)) == (400, ["http.unsupported-value"])
    assert answer.json()["issue"][0]["expression"] == ["mode"]


@pytest.mark.parametrize("mode", ["full", "normative"])
def test_the_capability_statement_is_answered_in_each_mode_it_takes(api: Api, mode: str) -> None:
    assert get(api, f"metadata?mode={mode}").json()["resourceType"] == "CapabilityStatement"


def test_the_capability_statement_is_answered_in_each_format_asked_in_turn(api: Api) -> None:
    kinds = [
        get(api, f"metadata?_format={answer}").headers["Content-Type"].split(";")[0]
        for answer in ("xml", "json", "xml")
    ]
    assert kinds == ["application/fhir+xml", "application/fhir+json", "application/fhir+xml"]


# -- create, read, update, delete ------------------------------------------------------------------
def test_a_created_patient_is_read_back_at_its_location(api: Api) -> None:
    answer = post(api, "Patient", new_patient())
    location = answer.headers["Location"].split("/fhir/", 1)[1].split("/_history")[0]
    assert get(api, location).json()["id"] == answer.json()["id"]


def test_an_invalid_patient_is_refused_with_the_fhirpath_of_its_fault(api: Api) -> None:
    answer = post(api, "Patient", new_patient(gender="unknown-sex"))
    assert (answer.status_code, ["Patient.gender"] in [i.get("expression") for i in answer.json()["issue"]]) == (
        422,
        True,
    )


def test_a_selfcare_total_that_is_not_its_items_sum_is_refused_at_the_total(api: Api) -> None:
    """yy-sc-4: the items of 不能自理 (37) under a total of 3."""
    observation = example("yy-observation-selfcare/invalid-total-not-item-sum.json")
    del observation["id"]
    observation["subject"] = {"reference": f"Patient/{created(api, new_patient())['id']}"}
    answer = post(api, "Observation", observation)
    refusals = [(i["details"]["coding"][0]["code"], i.get("expression")) for i in answer.json()["issue"]]
    assert (answer.status_code, ("invariant.failed", ["Observation.valueInteger"]) in refusals) == (422, True)


def test_a_patient_born_after_today_is_refused_at_the_birth_date(api: Api) -> None:
    answer = post(api, "Patient", new_patient(birthDate="2099-01-01"), **{"Accept-Language": "en"})
    said = [i["details"]["text"] for i in answer.json()["issue"] if i.get("expression") == ["Patient.birthDate"]]
    assert (
        answer.status_code,
        "Constraint yy-pat-3 failed: the birth date is not after today (Beijing time)" in said,
    ) == (
        422,
        True,
    )


def test_errors_are_worded_in_english_when_the_client_asks(api: Api) -> None:
    answer = get(api, "Patient/no-such-person", **{"Accept-Language": "en"})
    assert answer.json()["issue"][0]["details"]["text"] == "Patient/no-such-person does not exist"


def test_errors_are_worded_in_chinese_by_default(api: Api) -> None:
    assert get(api, "Patient/no-such-person").json()["issue"][0]["details"]["text"] == "Patient/no-such-person 不存在"


def test_an_update_makes_a_new_version_and_keeps_the_old_one(api: Api) -> None:
    resource = created(api, new_patient())
    put(api, f"Patient/{resource['id']}", {**resource, "active": False})
    assert get(api, f"Patient/{resource['id']}/_history/1").json()["active"] is True


def test_an_update_naming_a_stale_version_is_refused(api: Api) -> None:
    resource = created(api, new_patient())
    put(api, f"Patient/{resource['id']}", {**resource, "active": False})
    answer = put(api, f"Patient/{resource['id']}", {**resource, "active": True}, **{"If-Match": 'W/"1"'})
    assert (answer.status_code, message_ids(answer)[0]) == (412, "http.version-conflict")


def test_an_update_if_match_any_changes_an_existing_resource(api: Api) -> None:
    resource = created(api, new_patient())
    answer = put(api, f"Patient/{resource['id']}", {**resource, "active": False}, **{"If-Match": "*"})
    assert (answer.status_code, answer.json()["meta"]["versionId"]) == (200, "2")


def test_an_update_if_match_any_creates_nothing(api: Api) -> None:
    """RFC 9110: * holds only if a current representation exists."""
    resource = {**new_patient(), "id": f"any-{next(_people)}"}
    answer = put(api, f"Patient/{resource['id']}", resource, **{"If-Match": "*"})
    assert (answer.status_code, get(api, f"Patient/{resource['id']}").status_code) == (404, 404)


def test_an_update_with_if_none_match_does_not_overwrite(api: Api) -> None:
    """If-None-Match: * asks for a create only if absent (RFC 9110); ignored, the PUT replaced
    the existing resource."""
    resource = created(api, new_patient())
    answer = put(api, f"Patient/{resource['id']}", {**resource, "active": False}, **{"If-None-Match": "*"})
    assert (answer.status_code, message_ids(answer), get(api, f"Patient/{resource['id']}").headers["ETag"]) == (
        400,
        ["http.if-none-match-on-write"],
        'W/"1"',
    )


def test_an_update_if_match_version_zero_names_no_version(api: Api) -> None:
    resource = created(api, new_patient())
    answer = put(api, f"Patient/{resource['id']}", {**resource, "active": False}, **{"If-Match": 'W/"0"'})
    assert answer.status_code == 412


def test_a_resource_read_subsetted_cannot_overwrite_the_whole_one(api: Api) -> None:
    """R4 tags a read cut by _elements SUBSETTED so that it never replaces the whole resource:
    put back as read, it was stored, and the record lost every element it did not show."""
    resource = created(api, new_patient())
    part = get(api, f"Patient/{resource['id']}?_elements=gender").json()
    answer = put(api, f"Patient/{resource['id']}", part)
    assert (answer.status_code, message_ids(answer), get(api, f"Patient/{resource['id']}").headers["ETag"]) == (
        422,
        ["http.subsetted"],
        'W/"1"',
    )


def test_a_put_to_a_new_id_creates_the_resource_there(api: Api) -> None:
    answer = put(api, "Patient/client-chosen-1", {**new_patient(), "id": "client-chosen-1"})
    assert (answer.status_code, answer.headers["ETag"]) == (201, 'W/"1"')


def test_a_body_whose_id_differs_from_the_url_is_refused(api: Api) -> None:
    answer = put(api, "Patient/one-id", {**new_patient(), "id": "another-id"})
    assert (answer.status_code, message_ids(answer)[0]) == (400, "http.id-mismatch")


def test_a_json_patch_changes_one_element(api: Api) -> None:
    resource = created(api, new_patient())
    answer = api.patch(
        f"{api.base}/Patient/{resource['id']}",
        data=json.dumps([{"op": "replace", "path": "/active", "value": False}]),
        headers={"Content-Type": "application/json-patch+json"},
        timeout=60,
    )
    assert (answer.status_code, answer.json()["active"], answer.json()["meta"]["versionId"]) == (200, False, "2")


def test_a_json_patch_that_leaves_no_resource_is_refused(api: Api) -> None:
    resource = created(api, new_patient())
    answer = api.patch(
        f"{api.base}/Patient/{resource['id']}",
        data=json.dumps([{"op": "replace", "path": "", "value": 42}]),
        headers={"Content-Type": "application/json-patch+json"},
        timeout=60,
    )
    assert (answer.status_code, message_ids(answer)[0]) == (400, "http.bad-patch")


def json_patch(api: Api, path: str, operations: list[dict[str, Any]]) -> requests.Response:
    headers = {"Content-Type": "application/json-patch+json"}
    return api.patch(f"{api.base}/{path}", data=json.dumps(operations), headers=headers, timeout=60)


def test_a_conditional_patch_changes_the_one_match(api: Api) -> None:
    resource = created(api, new_patient())
    condition = f"identifier={ID_CARD}|{id_card(resource)}"
    answer = json_patch(api, f"Patient?{condition}", [{"op": "replace", "path": "/active", "value": False}])
    assert (answer.status_code, answer.json()["id"], answer.json()["active"]) == (200, resource["id"], False)


def test_a_conditional_patch_matching_nothing_is_a_404(api: Api) -> None:
    answer = json_patch(api, f"Patient?identifier={ID_CARD}|nobody", [{"op": "remove", "path": "/active"}])
    assert (answer.status_code, message_ids(answer)[0]) == (404, "http.conditional-no-match")


def test_a_transactions_conditional_patch_changes_the_one_match(api: Api) -> None:
    resource = created(api, new_patient())
    operations = [{"op": "replace", "path": "/active", "value": False}]
    data = base64.b64encode(json.dumps(operations).encode()).decode()
    entry = {
        "resource": {"resourceType": "Binary", "contentType": "application/json-patch+json", "data": data},
        "request": {"method": "PATCH", "url": f"Patient?identifier={ID_CARD}|{id_card(resource)}"},
    }
    post(api, "", transaction(entry))
    assert get(api, f"Patient/{resource['id']}").json()["active"] is False


def test_a_batch_patch_entry_without_a_readable_patch_is_refused_alone(api: Api) -> None:
    resource = created(api, new_patient())
    entry = {"request": {"method": "PATCH", "url": f"Patient/{resource['id']}"}}
    bad = {**entry, "resource": {"resourceType": "Binary", "contentType": "application/json-patch+json", "data": "!!"}}
    read = {"request": {"method": "GET", "url": f"Patient/{resource['id']}"}}
    answer = post(api, "", {"resourceType": "Bundle", "type": "batch", "entry": [bad, read]})
    assert [e["response"]["status"] for e in answer.json()["entry"]] == ["400", "200 OK"]


def test_a_deleted_patient_is_gone(api: Api) -> None:
    resource = created(api, new_patient())
    api.delete(f"{api.base}/Patient/{resource['id']}", timeout=60)
    assert get(api, f"Patient/{resource['id']}").status_code == 410


def test_the_history_of_a_deleted_patient_lists_every_version(api: Api) -> None:
    resource = created(api, new_patient())
    put(api, f"Patient/{resource['id']}", {**resource, "active": False})
    api.delete(f"{api.base}/Patient/{resource['id']}", timeout=60)
    history = get(api, f"Patient/{resource['id']}/_history").json()
    assert [e["request"]["method"] for e in history["entry"]] == ["DELETE", "PUT", "POST"]


def test_the_next_page_of_a_history_keeps_its_since(api: Api) -> None:
    resource = created(api, new_patient())
    put(api, f"Patient/{resource['id']}", {**resource, "active": False})
    history = get(api, f"Patient/{resource['id']}/_history?_since=2020-01-01T00:00:00%2B08:00&_count=1").json()
    following = next(link["url"] for link in history["link"] if link["relation"] == "next")
    assert "_since=2020-01-01T00%3A00%3A00%2B08%3A00" in following


def test_an_instance_history_since_its_last_change_is_empty_not_missing(api: Api) -> None:
    """Polling an instance for changes: nothing new is an empty history, not a 404."""
    resource = created(api, new_patient())
    answer = get(api, f"Patient/{resource['id']}/_history?_since=2999-01-01T00:00:00Z")
    assert (answer.status_code, answer.json()["total"], answer.json().get("entry", [])) == (200, 0, [])
    assert get(api, "Patient/no-such-patient/_history?_since=2999-01-01T00:00:00Z").status_code == 404


@pytest.mark.parametrize("path", ["Patient/_history", "_history"])
def test_a_history_given_since_twice_is_refused(api: Api, path: str) -> None:
    answer = get(api, f"{path}?_since=2026-01-01T00:00:00Z&_since=2999-01-01T00:00:00Z")
    found = answer.json()["issue"][0]
    assert (answer.status_code, found["details"]["coding"][0]["code"], found["expression"]) == (
        400,
        "http.repeated-parameter",
        ["_since"],
    )


def test_prefer_minimal_answers_without_a_body(api: Api) -> None:
    answer = post(api, "Patient", new_patient(), Prefer="return=minimal")
    assert (answer.status_code, answer.content) == (201, b"")


def test_prefer_operation_outcome_answers_with_the_validation_outcome(api: Api) -> None:
    answer = post(api, "Patient", new_patient(), Prefer="return=OperationOutcome")
    assert answer.json()["resourceType"] == "OperationOutcome"


# -- conditional interactions --------------------------------------------------------------------
def test_a_conditional_create_on_the_id_card_finds_the_patient_already_there(api: Api) -> None:
    first = created(api, new_patient())
    again = post(api, "Patient", {**first, "id": None}, **{"If-None-Exist": f"identifier={ID_CARD}|{id_card(first)}"})
    assert (again.status_code, again.json()["id"]) == (200, first["id"])


def test_a_plain_create_of_a_person_the_archive_holds_is_refused_naming_them(api: Api) -> None:
    """A second record of one 身份证号 split the person's care, and made every later
    conditional create on the number a 412."""
    first = created(api, new_patient())
    again = post(api, "Patient", {**first, "id": None})
    issue = again.json()["issue"][0]
    named = f"Patient/{first['id']}" in issue["details"]["text"]
    assert (again.status_code, issue["code"], issue["expression"], named) == (
        409,
        "duplicate",
        ["Patient.identifier[0]"],
        True,
    )


def test_a_conditional_create_that_finds_its_match_ignores_the_body(api: Api) -> None:
    first = created(api, new_patient())
    invalid = {"resourceType": "Patient", "gender": "not-a-gender"}
    again = post(api, "Patient", invalid, **{"If-None-Exist": f"identifier={ID_CARD}|{id_card(first)}"})
    assert (again.status_code, again.json()["id"]) == (200, first["id"])


def test_a_conditional_create_that_finds_its_match_names_it_in_location(api: Api) -> None:
    """Under return=minimal its 200 had no body and no Location: nothing told which matched."""
    first = created(api, new_patient())
    criteria = f"identifier={ID_CARD}|{id_card(first)}"
    again = post(api, "Patient", new_patient(), **{"If-None-Exist": criteria, "Prefer": "return=minimal"})
    assert (again.status_code, again.headers.get("Location")) == (
        200,
        f"{api.base}/Patient/{first['id']}/_history/1",
    )


def test_a_conditional_update_updates_the_one_match(api: Api) -> None:
    first = created(api, new_patient())
    answer = put(api, f"Patient?identifier={ID_CARD}|{id_card(first)}", {**first, "active": False})
    assert (answer.status_code, answer.json()["id"], answer.json()["active"]) == (200, first["id"], False)


def test_a_conditional_update_matching_nothing_does_not_replace_the_resource_its_id_names(api: Api) -> None:
    """R4 says "performs a create"; R5 settles that an id already taken is a 409."""
    first = created(api, new_patient())
    stranger = {**new_patient(), "id": first["id"]}
    answer = put(api, f"Patient?identifier={ID_CARD}|{id_card(stranger)}", stranger)
    assert (answer.status_code, get(api, f"Patient/{first['id']}").json()["meta"]["versionId"]) == (409, "1")


def test_a_conditional_update_matching_nothing_creates_at_a_free_id_it_names(api: Api) -> None:
    person = {**new_patient(), "id": f"free-{next(_people)}"}
    answer = put(api, f"Patient?identifier={ID_CARD}|{id_card(person)}", person)
    assert (answer.status_code, answer.json()["id"]) == (201, person["id"])


def test_a_conditional_update_with_if_match_matching_nothing_says_so(api: Api) -> None:
    """Its 404 named an id the server had minted for a create it never made."""
    person = new_patient()
    answer = put(api, f"Patient?identifier={ID_CARD}|{id_card(person)}", person, **{"If-Match": 'W/"1"'})
    assert (answer.status_code, message_ids(answer)) == (404, ["http.conditional-no-match"])


def test_a_conditional_create_reads_criteria_sent_as_raw_utf8(api: Api) -> None:
    """Header values reach WSGI as Latin-1; read so, 日期 matched nothing and made a duplicate."""
    first = created(api, new_patient())
    criteria = f"name:exact={first['name'][0]['text']}&birthdate={first['birthDate']}".encode()
    again = api.post(
        f"{api.base}/Patient", data=json.dumps(new_patient()), headers={**FHIR_JSON, "If-None-Exist": criteria}
    )
    assert (again.status_code, again.json()["id"]) == (200, first["id"])


def test_a_blank_if_none_exist_is_refused_not_ignored(api: Api) -> None:
    """A client building the header from a missing value made the duplicate it meant to prevent."""
    answer = api.post(f"{api.base}/Patient", data=json.dumps(new_patient()), headers={**FHIR_JSON, "If-None-Exist": ""})
    assert (answer.status_code, message_ids(answer)[0]) == (400, "http.conditional-needs-criteria")


def test_a_conditional_create_finds_the_holder_of_an_id_card_number_spelt_with_a_lowercase_x(api: Api) -> None:
    """A 身份证号's check character X is written x as often: one person to the identity keys,
    which answered the conditional create 409 http.duplicate-person (use a conditional
    create, it said), while the search it made had found no one."""
    holder = synthetic_patient(random.Random(9001), 9001)  # 身份证号 41010219430715725X
    holder.pop("id")
    first = created(api, holder)
    lowercase = id_card(holder).lower()
    again = json.loads(json.dumps(holder).replace(id_card(holder), lowercase))
    answer = post(api, "Patient", again, **{"If-None-Exist": f"identifier={ID_CARD}|{lowercase}"})
    assert (answer.status_code, answer.json().get("id")) == (200, first["id"])


def test_a_paging_parameter_in_a_condition_is_refused_at_its_name(api: Api) -> None:
    """As any refused query parameter is: the refusal located nothing."""
    answer = api.post(
        f"{api.base}/Patient",
        data=json.dumps(new_patient()),
        headers={**FHIR_JSON, "If-None-Exist": "gender=male&_count=1"},
    )
    assert answer.json()["issue"][0].get("expression") == ["_count"]


def test_a_conditional_delete_removes_the_match(api: Api) -> None:
    first = created(api, new_patient())
    api.delete(f"{api.base}/Patient?identifier={ID_CARD}|{id_card(first)}", timeout=60)
    assert get(api, f"Patient/{first['id']}").status_code == 410


def test_a_conditional_delete_of_several_matches_says_how_many_it_deleted(api: Api) -> None:
    value = f"several-{next(_people)}"
    basic = {"resourceType": "Basic", "identifier": [{"system": "urn:t", "value": value}], "code": {"text": "t"}}
    for _ in range(2):
        post(api, "Basic", basic)
    answer = api.delete(f"{api.base}/Basic?identifier=urn:t|{value}", timeout=60)
    assert message_ids(answer) == ["http.deleted-count"]


def test_a_conditional_delete_with_an_old_if_match_is_a_412(api: Api) -> None:
    first = created(api, new_patient())
    put(api, f"Patient/{first['id']}", {**first, "active": False})
    criteria = f"Patient?identifier={ID_CARD}|{id_card(first)}"
    answer = api.delete(f"{api.base}/{criteria}", headers={"If-Match": 'W/"1"'}, timeout=60)
    assert (answer.status_code, get(api, f"Patient/{first['id']}").status_code) == (412, 200)


# -- search ------------------------------------------------------------------------------------------
def test_search_by_identifier_finds_exactly_the_patient(api: Api) -> None:
    first = created(api, new_patient())
    bundle = get(api, f"Patient?identifier={ID_CARD}|{id_card(first)}").json()
    assert [e["resource"]["id"] for e in bundle["entry"]] == [first["id"]]


def test_search_by_name_and_birthdate_finds_the_patient(api: Api) -> None:
    first = created(api, new_patient())
    family = first["name"][0]["text"][0]
    bundle = get(api, f"Patient?name={family}&birthdate={first['birthDate']}&_count=100").json()
    assert first["id"] in [e["resource"]["id"] for e in bundle["entry"]]


def test_an_unknown_search_parameter_is_refused_naming_it(api: Api) -> None:
    answer = get(api, "Patient?favourite-colour=blue")
    assert (answer.status_code, answer.json()["issue"][0]["expression"]) == (400, ["favourite-colour"])


def test_a_lenient_search_skips_an_unknown_parameter_and_says_so(api: Api) -> None:
    first = created(api, new_patient())
    answer = get(api, f"Patient?favourite-colour=blue&identifier={id_card(first)}", Prefer="handling=lenient")
    bundle = answer.json()
    outcome = [e["resource"] for e in bundle["entry"] if e["search"]["mode"] == "outcome"]
    found = [e["resource"]["id"] for e in bundle["entry"] if e["search"]["mode"] == "match"]
    assert (found, outcome[0]["issue"][0]["expression"]) == ([first["id"]], ["favourite-colour"])


def test_a_lenient_search_leaves_the_skipped_parameter_out_of_its_links(api: Api) -> None:
    bundle = get(api, "Patient?favourite-colour=blue&_count=1", Prefer="handling=lenient").json()
    assert not any("favourite-colour" in link["url"] for link in bundle["link"])


@pytest.mark.parametrize("sort", ["_sort=-_id,shoe-size", "_sort=shoe-size,-_id", "_sort=shoe-size&_sort=-_id"])
def test_a_lenient_search_pages_in_the_order_of_the_sort_keys_it_applied(api: Api, sort: str) -> None:
    """An unknown sort key under handling=lenient took ``_sort`` out of the paging links (all
    of it, and any other ``_sort`` with it), though the first page was sorted by the keys
    before it: the next pages came in id order, repeating and missing matches."""
    people = [created(api, new_patient()) for _ in range(3)]
    wanted = ",".join(id_card(person) for person in people)
    url: str | None = f"{api.base}/Patient?identifier={wanted}&{sort}&_count=1"
    found = []
    while url:
        page = api.get(url, headers={"Prefer": "handling=lenient"}, timeout=60).json()
        found += [e["resource"]["id"] for e in page.get("entry", []) if e["search"]["mode"] == "match"]
        url = next((link["url"] for link in page["link"] if link["relation"] == "next"), None)
    assert found == sorted((person["id"] for person in people), reverse=True)


def test_summary_count_gives_only_the_total(api: Api) -> None:
    first = created(api, new_patient())
    bundle = get(api, f"Patient?identifier={ID_CARD}|{id_card(first)}&_summary=count").json()
    assert (bundle["total"], "entry" in bundle) == (1, False)


def test_elements_keeps_only_what_was_asked_and_marks_the_subset(api: Api) -> None:
    first = created(api, new_patient())
    bundle = get(api, f"Patient?identifier={ID_CARD}|{id_card(first)}&_elements=gender").json()
    resource = bundle["entry"][0]["resource"]
    assert (sorted(resource), resource["meta"]["tag"][-1]["code"]) == (
        ["_gender", "gender", "id", "meta", "resourceType"],
        "SUBSETTED",
    )


def test_paging_links_walk_the_results_without_overlap(api: Api) -> None:
    tag = {"system": "urn:yiyang:test", "code": "paging"}
    for _ in range(3):
        resource = new_patient()
        created(api, {**resource, "meta": {**resource["meta"], "tag": [tag]}})
    first = get(api, "Patient?_tag=urn:yiyang:test|paging&_count=2&_sort=_id").json()
    second = api.get(next(link["url"] for link in first["link"] if link["relation"] == "next"), timeout=60).json()
    ids = [e["resource"]["id"] for e in first["entry"] + second["entry"]]
    assert (len(ids), len(set(ids)), ids == sorted(ids)) == (first["total"], first["total"], True)


def test_a_search_for_the_total_alone_has_no_next_page(api: Api) -> None:
    created(api, new_patient())
    bundle = get(api, "Patient?_count=0").json()
    assert (bundle["total"] > 0, [link["relation"] for link in bundle["link"]]) == (True, ["self", "first"])


# -- Bundles -------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def home_visit(api: Api) -> dict[str, Any]:
    """The package's transaction example, posted once: a Patient, an Organization and an
    Encounter naming both (by urn:uuid and by a conditional reference)."""
    answer = post(api, "", example("bundle/valid-transaction-home-visit.json"))
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_a_transaction_creates_every_entry(home_visit: dict[str, Any]) -> None:
    assert [e["response"]["status"] for e in home_visit["entry"]] == ["201 Created"] * 3


def test_a_transaction_response_names_each_entry_by_its_absolute_url(api: Api, home_visit: dict[str, Any]) -> None:
    assert all(e["fullUrl"].startswith(f"{api.base}/") for e in home_visit["entry"])


def test_a_transaction_points_references_at_the_new_ids(api: Api, home_visit: dict[str, Any]) -> None:
    patient, organization, encounter = (e["fullUrl"].removeprefix(f"{api.base}/") for e in home_visit["entry"])
    stored = get(api, encounter).json()
    assert (stored["subject"]["reference"], stored["serviceProvider"]["reference"]) == (patient, organization)


def test_a_transaction_follows_a_full_url_on_the_own_base_to_the_new_id(api: Api) -> None:
    """A POST entry's fullUrl may be an absolute URL on this server; references to it, as
    written or relative, point at the id the server gives it."""
    temporary = f"{api.base}/Patient/to-be-named"
    encounter = {**example("yy-encounter/valid-home-visit.json"), "subject": {"reference": temporary}}
    del encounter["id"]
    bundle = transaction(
        {"fullUrl": temporary, "resource": new_patient(), "request": {"method": "POST", "url": "Patient"}},
        {"resource": encounter, "request": {"method": "POST", "url": "Encounter"}},
    )
    answer = post(api, "", bundle)
    assert answer.status_code == 200, answer.text
    patient, stay = (e["fullUrl"].removeprefix(f"{api.base}/") for e in answer.json()["entry"])
    assert get(api, stay).json()["subject"]["reference"] == patient


def test_a_chained_search_finds_the_encounter_by_its_patients_id_card(api: Api, home_visit: dict[str, Any]) -> None:
    patient = get(api, home_visit["entry"][0]["fullUrl"].removeprefix(f"{api.base}/")).json()
    bundle = get(api, f"Encounter?patient.identifier={ID_CARD}|{id_card(patient)}&_include=Encounter:subject").json()
    assert sorted(e["resource"]["resourceType"] for e in bundle["entry"]) == ["Encounter", "Patient"]


def test_an_iterating_include_follows_what_a_revinclude_added(api: Api, home_visit: dict[str, Any]) -> None:
    """Patient ← Encounter (revinclude) → Organization (include:iterate on the Encounters)."""
    patient = get(api, home_visit["entry"][0]["fullUrl"].removeprefix(f"{api.base}/")).json()
    criteria = f"identifier={ID_CARD}|{id_card(patient)}&_revinclude=Encounter:subject"
    bundle = get(api, f"Patient?{criteria}&_include:iterate=Encounter:service-provider").json()
    assert sorted(e["resource"]["resourceType"] for e in bundle["entry"]) == ["Encounter", "Organization", "Patient"]


def test_a_reverse_chain_finds_the_patient_of_the_encounter(api: Api, home_visit: dict[str, Any]) -> None:
    """Of every Patient in the archive, only the one the Encounter is about."""
    patient_id = home_visit["entry"][0]["fullUrl"].rsplit("/", 1)[1]
    stay_id = next(e["fullUrl"] for e in home_visit["entry"] if "/Encounter/" in e["fullUrl"]).rsplit("/", 1)[1]
    bundle = get(api, f"Patient?_has:Encounter:subject:_id={stay_id}").json()
    assert [entry["resource"]["id"] for entry in bundle["entry"]] == [patient_id]


def test_everything_returns_the_patient_their_encounter_and_its_organisation(
    api: Api, home_visit: dict[str, Any]
) -> None:
    """The organisation supports the record (OperationDefinition Patient-everything): included."""
    patient_id = home_visit["entry"][0]["fullUrl"].rsplit("/", 1)[1]
    bundle = get(api, f"Patient/{patient_id}/$everything").json()
    assert sorted((e["search"]["mode"], e["resource"]["resourceType"]) for e in bundle["entry"]) == [
        ("include", "Organization"),
        ("match", "Encounter"),
        ("match", "Patient"),
    ]


def test_everything_narrowed_by_type_returns_only_that_type(api: Api, home_visit: dict[str, Any]) -> None:
    patient_id = home_visit["entry"][0]["fullUrl"].rsplit("/", 1)[1]
    bundle = get(api, f"Patient/{patient_id}/$everything?_type=Encounter").json()
    assert [e["resource"]["resourceType"] for e in bundle["entry"]] == ["Encounter"]


def test_everything_reads_a_type_list_spaced_after_its_commas_as_an_export_does(
    api: Api, home_visit: dict[str, Any]
) -> None:
    """``_type=Encounter, Patient`` was a 400 naming the unknown type `` Patient``, where an
    export of the same list exports both."""
    patient_id = home_visit["entry"][0]["fullUrl"].rsplit("/", 1)[1]
    answer = get(api, f"Patient/{patient_id}/$everything?_type=Encounter,%20Patient")
    assert sorted(e["resource"]["resourceType"] for e in answer.json().get("entry", [])) == ["Encounter", "Patient"]


def test_everything_unpaged_says_in_its_self_link_what_it_was_asked(api: Api, home_visit: dict[str, Any]) -> None:
    """Unpaged, the searchset had no link at all: R4 has a search answer name the parameters
    it was answered by in its self link, as the paged answer did."""
    patient_id = home_visit["entry"][0]["fullUrl"].rsplit("/", 1)[1]
    bundle = get(api, f"Patient/{patient_id}/$everything?_type=Encounter").json()
    address = f"{api.base}/Patient/{patient_id}/$everything"
    bare = get(api, f"Patient/{patient_id}/$everything").json()
    assert (bundle["link"], bare["link"]) == (
        [{"relation": "self", "url": f"{address}?_type=Encounter"}],
        [{"relation": "self", "url": address}],
    )


def test_everything_pages_the_members_and_links_the_next_page(api: Api, home_visit: dict[str, Any]) -> None:
    """The Patient comes first, then its Encounter on the next page, with the organisation
    the Encounter refers to; the total counts every member."""
    patient_id = home_visit["entry"][0]["fullUrl"].rsplit("/", 1)[1]
    first = get(api, f"Patient/{patient_id}/$everything?_count=1").json()
    following = next(link["url"] for link in first["link"] if link["relation"] == "next")
    second = api.get(following, timeout=60).json()
    pages = [[(e["search"]["mode"], e["resource"]["resourceType"]) for e in page["entry"]] for page in (first, second)]
    assert (first["total"], pages) == (
        2,
        [[("match", "Patient")], [("match", "Encounter"), ("include", "Organization")]],
    )


def test_everything_counted_alone_links_no_next_page(api: Api, home_visit: dict[str, Any]) -> None:
    patient_id = home_visit["entry"][0]["fullUrl"].rsplit("/", 1)[1]
    bundle = get(api, f"Patient/{patient_id}/$everything?_count=0").json()
    relations = [link["relation"] for link in bundle["link"]]
    assert (bundle["total"], "entry" in bundle, "next" in relations) == (2, False, False)


def test_everything_since_a_later_moment_returns_nothing(api: Api, home_visit: dict[str, Any]) -> None:
    patient_id = home_visit["entry"][0]["fullUrl"].rsplit("/", 1)[1]
    bundle = get(api, f"Patient/{patient_id}/$everything?_since=2999-01-01T00:00:00Z").json()
    assert bundle["total"] == 0


#: the blood pressures of :func:`long_record`, in the order $everything lists them
LATER_PRESSURES = [f"Observation/long-record-bp-{n}" for n in (1, 2, 3)]


@pytest.fixture(scope="module")
def long_record(api: Api, home_visit: dict[str, Any]) -> dict[str, str]:
    """A person with three stays at the centre of ``home_visit`` and, written after them,
    three blood pressures taken during the first stay: seven members, four pages at
    ``_count=2``.  Its ``path`` is the person's $everything, ``since`` the moment between the
    stays and the pressures, ``centre`` the centre's reference."""
    doctor = example("yy-practitioner/valid-family-doctor.json")
    put(api, f"Practitioner/{doctor['id']}", doctor)
    centre = next(e["fullUrl"] for e in home_visit["entry"] if "/Organization/" in e["fullUrl"]).split("/fhir/")[1]
    person = created(api, new_patient())["id"]
    stay = {**example("yy-encounter/valid-home-bed.json"), "subject": {"reference": f"Patient/{person}"}}
    stay["serviceProvider"] = {"reference": centre}
    since = ""
    for n in (1, 2, 3):
        answer = put(api, f"Encounter/long-record-stay-{n}", {**stay, "id": f"long-record-stay-{n}"})
        since = answer.json()["meta"]["lastUpdated"]
    pressure = example("yy-observation-blood-pressure/valid-blood-pressure.json")
    pressure = {**pressure, "subject": {"reference": f"Patient/{person}"}}
    pressure["encounter"] = {"reference": "Encounter/long-record-stay-1"}
    for reference in LATER_PRESSURES:
        answer = put(api, reference, {**pressure, "id": reference.split("/")[1]})
        assert answer.status_code == 201, answer.text
    return {"path": f"Patient/{person}/$everything", "since": quote(since), "centre": centre}


def everything_pages(session: requests.Session, url: str) -> list[dict[str, Any]]:
    """The $everything page at ``url`` and every page its ``next`` links lead to."""
    pages = [session.get(url, timeout=60).json()]
    while following := [link["url"] for link in pages[-1].get("link", []) if link["relation"] == "next"]:
        pages.append(session.get(following[0], timeout=60).json())
    return pages


def entries(pages: list[dict[str, Any]], mode: str) -> list[str]:
    """The ``Type/id`` of the pages' entries of one search mode ("match", "include"), in order."""
    return [
        f"{entry['resource']['resourceType']}/{entry['resource']['id']}"
        for page in pages
        for entry in page.get("entry", [])
        if entry["search"]["mode"] == mode
    ]


@pytest.mark.parametrize(("first", "skipped"), [("_count=2", 0), ("_count=1", 0), ("_count=3&_offset=1", 1)])
def test_everything_pages_followed_to_the_end_hold_the_unpaged_members_in_order(
    api: Api, long_record: dict[str, str], first: str, skipped: int
) -> None:
    unpaged = entries([get(api, long_record["path"]).json()], "match")
    paged = entries(everything_pages(api, f"{api.base}/{long_record['path']}?{first}"), "match")
    assert paged == unpaged[skipped:]


def test_everything_pages_each_count_every_member(api: Api, long_record: dict[str, str]) -> None:
    pages = everything_pages(api, f"{api.base}/{long_record['path']}?_count=2")
    assert [page["total"] for page in pages] == [7, 7, 7, 7]


def test_everything_pages_narrowed_by_type_and_since_hold_the_later_members_alone(
    api: Api, long_record: dict[str, str]
) -> None:
    """The Patient and the stays were written before ``since``: they are no members."""
    query = f"_type=Encounter,Observation,Patient&_since={long_record['since']}"
    unpaged = entries([get(api, f"{long_record['path']}?{query}").json()], "match")
    pages = everything_pages(api, f"{api.base}/{long_record['path']}?{query}&_count=2")
    assert (entries(pages, "match"), unpaged, pages[0]["total"]) == (LATER_PRESSURES, LATER_PRESSURES, 3)


def test_everything_pages_include_what_their_own_members_refer_to(api: Api, long_record: dict[str, str]) -> None:
    """The pressures name the first stay, a member of the first page: no page includes it."""
    pages = everything_pages(api, f"{api.base}/{long_record['path']}?_count=2")
    assert [entries([page], "include") for page in pages[1:]] == [
        ["Practitioner/wang-fang", long_record["centre"]],
        ["Practitioner/wang-fang"],
        ["Practitioner/wang-fang"],
    ]


def test_everything_offset_past_the_last_member_is_an_empty_page_counting_them_all(
    api: Api, long_record: dict[str, str]
) -> None:
    bundle = get(api, f"{long_record['path']}?_count=2&_offset=50").json()
    relations = [link["relation"] for link in bundle["link"]]
    assert ("entry" in bundle, bundle["total"], "next" in relations) == (False, 7, False)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("start=2026-01-01", "http.unsupported-parameter"),
        ("_count=many", "http.not-a-count"),
        ("_type=Foo", "http.unknown-type"),
        # the audit trail is no part of the archive $everything reads: it answered an empty
        # searchset, as if no one had ever read the person's record
        ("_type=Encounter,AuditEvent", "http.everything-type-not-archived"),
    ],
)
def test_everything_refuses_what_it_would_otherwise_ignore(
    api: Api, home_visit: dict[str, Any], query: str, expected: str
) -> None:
    patient_id = home_visit["entry"][0]["fullUrl"].rsplit("/", 1)[1]
    answer = get(api, f"Patient/{patient_id}/$everything?{query}")
    assert (answer.status_code, message_ids(answer)) == (400, [expected])


@pytest.mark.parametrize("path", ["Patient/_history?_pretty=true", "Patient/{patient}/$everything?_pretty=true"])
def test_pretty_is_taken_wherever_an_answer_is_written(api: Api, home_visit: dict[str, Any], path: str) -> None:
    patient_id = home_visit["entry"][0]["fullUrl"].rsplit("/", 1)[1]
    assert get(api, path.format(patient=patient_id)).status_code == 200


def test_a_history_refuses_a_search_criterion_it_would_ignore(api: Api) -> None:
    answer = get(api, "Patient/_history?_id=zhang-xiuying")
    assert (answer.status_code, message_ids(answer)) == (400, ["http.unsupported-parameter"])


def test_a_posted_search_reads_its_criteria_from_the_form(api: Api) -> None:
    first = created(api, new_patient())
    answer = api.post(f"{api.base}/Patient/_search", data={"identifier": f"{ID_CARD}|{id_card(first)}"})
    assert [e["resource"]["id"] for e in answer.json()["entry"]] == [first["id"]]


def test_a_search_too_large_for_the_database_is_the_clients_error(api: Api) -> None:
    answer = api.post(
        f"{api.base}/Patient/_search",
        data={"name:contains": "a" * 60_000},
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert answer.status_code == 400, answer.text[:300]
    assert message_ids(answer) == ["search.too-large"]


@pytest.mark.parametrize("media", ["text/plain", "application/json"])
def test_a_posted_search_whose_body_is_no_form_is_refused(api: Api, media: str) -> None:
    answer = api.post(f"{api.base}/Patient/_search", data="identifier=x|1", headers={"Content-Type": media})
    assert (answer.status_code, message_ids(answer)) == (415, ["http.search-form-media-type"])


def test_everything_may_be_invoked_by_post(api: Api, home_visit: dict[str, Any]) -> None:
    patient_id = home_visit["entry"][0]["fullUrl"].rsplit("/", 1)[1]
    bundle = post(api, f"Patient/{patient_id}/$everything", parameters(_type="Encounter")).json()
    assert [e["resource"]["resourceType"] for e in bundle["entry"]] == ["Encounter"]


def test_type_and_system_history_list_a_new_patient(api: Api) -> None:
    resource = created(api, new_patient())
    since = resource["meta"]["lastUpdated"].replace("+", "%2B")
    found = [
        [e["resource"]["id"] for e in get(api, f"{path}?_since={since}&_count=1000").json().get("entry", [])]
        for path in ("Patient/_history", "_history")
    ]
    assert [resource["id"] in ids for ids in found] == [True, True]


def test_a_transaction_conditional_create_finds_the_patient_already_there(api: Api) -> None:
    first = created(api, new_patient())
    entry = {
        "resource": {k: v for k, v in first.items() if k not in ("id", "meta")},
        "request": {"method": "POST", "url": "Patient", "ifNoneExist": f"identifier={ID_CARD}|{id_card(first)}"},
    }
    answer = post(api, "", {"resourceType": "Bundle", "type": "transaction", "entry": [entry]}).json()
    assert answer["entry"][0]["response"]["status"] == "200 OK"


def test_a_transaction_conditional_update_changes_the_one_match(api: Api) -> None:
    first = created(api, new_patient())
    entry = {
        "resource": {**{k: v for k, v in first.items() if k not in ("id", "meta")}, "active": False},
        "request": {"method": "PUT", "url": f"Patient?identifier={ID_CARD}|{id_card(first)}"},
    }
    post(api, "", {"resourceType": "Bundle", "type": "transaction", "entry": [entry]})
    assert get(api, f"Patient/{first['id']}").json()["active"] is False


def test_a_uri_search_below_a_prefix_finds_the_profiled_patient(api: Api) -> None:
    first = created(api, new_patient())
    prefix = first["meta"]["profile"][0].rsplit("/", 1)[0]
    bundle = get(api, f"Patient?_profile:below={prefix}&identifier={ID_CARD}|{id_card(first)}").json()
    assert [e["resource"]["id"] for e in bundle.get("entry", [])] == [first["id"]]


def test_a_transaction_with_one_invalid_entry_writes_nothing(api: Api) -> None:
    good, bad = new_patient(), new_patient(gender="unknown-sex")
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [{"resource": r, "request": {"method": "POST", "url": "Patient"}} for r in (good, bad)],
    }
    answer = post(api, "", bundle)
    found = get(api, f"Patient?identifier={ID_CARD}|{id_card(good)}&_summary=count").json()["total"]
    assert (answer.status_code, found) == (422, 0)


def test_the_issues_of_a_refused_transaction_are_located_in_their_entry(api: Api) -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"resource": r, "request": {"method": "POST", "url": "Patient"}}
            for r in (new_patient(), new_patient(gender="unknown-sex"))
        ],
    }
    expressions = [i.get("expression", [""])[0] for i in post(api, "", bundle).json()["issue"]]
    assert "Bundle.entry[1].resource.gender" in expressions


def test_a_batch_answers_each_entry_on_its_own(api: Api) -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [
            {"resource": r, "request": {"method": "POST", "url": "Patient"}}
            for r in (new_patient(), new_patient(gender="unknown-sex"))
        ],
    }
    assert [e["response"]["status"] for e in post(api, "", bundle).json()["entry"]] == ["201 Created", "422"]


def test_a_batch_words_each_entrys_outcome_in_the_language_asked(api: Api) -> None:
    entry = {"request": {"method": "GET", "url": "Patient/no-such-person"}}
    answer = post(api, "", transaction(entry, kind="batch"), **{"Accept-Language": "en"}).json()
    assert answer["entry"][0]["response"]["outcome"]["issue"][0]["details"]["text"].endswith("does not exist")


def test_an_audit_trail_entry_in_a_batch_is_refused_for_what_it_is(api: Api) -> None:
    """A Bundle reads the archive, not the trail: it would have found nothing where /AuditEvent answers."""
    entry = {"request": {"method": "GET", "url": "AuditEvent?_count=1"}}
    answer = post(api, "", transaction(entry, kind="batch")).json()
    assert answer["entry"][0]["response"]["status"] == "400"


@pytest.mark.parametrize("reference", ["Patient/a b", "Patient?", "urn:uuid:99999999-9999-9999-9999-999999999999"])
def test_a_reference_that_can_never_be_followed_is_refused_at_its_path(api: Api, reference: str) -> None:
    encounter = {**example("yy-encounter/valid-home-visit.json"), "subject": {"reference": reference}}
    del encounter["id"]
    answer = post(api, "Encounter", encounter)
    located = {(i["details"]["coding"][0]["code"], i.get("expression", [""])[0]) for i in answer.json()["issue"]}
    assert answer.status_code == 422 and any(where == "Encounter.subject.reference" for _, where in located), located


@pytest.mark.parametrize("method", ["DELETE", "POST", "PUT"])
def test_the_capability_statement_takes_no_other_method(api: Api, method: str) -> None:
    assert api.request(method, f"{api.base}/metadata", timeout=60).status_code == 405


def test_a_nul_in_a_search_is_a_bad_request_on_either_database(api: Api) -> None:
    """PostgreSQL refused the text (a 503, "retry"); SQLite cut a :contains pattern at it."""
    assert message_ids(get(api, "Patient?name:contains=ang%00zzzz")) == ["http.nul-character"]


def test_a_nul_in_a_batch_entrys_id_is_a_bad_request_of_that_entry(api: Api) -> None:
    entry = {"request": {"method": "GET", "url": "Patient/a%00b"}}
    answered = post(api, "", transaction(entry, kind="batch")).json()["entry"][0]["response"]
    codes = [issue["details"]["coding"][0]["code"] for issue in answered["outcome"]["issue"]]
    assert (answered["status"], codes) == ("400", ["http.nul-character"])


def test_a_nul_in_a_conditional_reference_is_a_bad_request(api: Api) -> None:
    encounter = {**example("yy-encounter/valid-home-visit.json"), "subject": {"reference": "Patient?identifier=a%00b"}}
    del encounter["id"]
    entry = {"resource": encounter, "request": {"method": "POST", "url": "Encounter"}}
    assert message_ids(post(api, "", transaction(entry))) == ["http.nul-character"]


@pytest.mark.parametrize("since", ["2026-W49-1T08:00:00Z", "20261207T080000Z"])
def test_a_since_that_is_no_fhir_instant_is_refused(api: Api, since: str) -> None:
    """A week date and the basic format were read by ``datetime.fromisoformat`` as instants."""
    assert get(api, f"Patient/_history?_since={since}").status_code == 400


def test_a_since_before_year_one_in_utc_is_the_beginning(api: Api) -> None:
    """0001-01-01T00:00+14:00 is in year 0 in UTC, which Python cannot hold: it was a 500."""
    assert get(api, "Patient/_history?_since=0001-01-01T00:00:00%2B14:00&_count=1").status_code == 200


def test_options_is_no_interaction(api: Api) -> None:
    answer = api.options(f"{api.base}/Patient", timeout=60)
    assert (answer.status_code, answer.json()["resourceType"]) == (405, "OperationOutcome")


def test_an_operation_at_a_level_that_does_not_offer_it_is_named_so(api: Api) -> None:
    assert message_ids(get(api, "Patient/$everything")) == ["http.unknown-operation"]


def transaction(*entries: dict[str, Any], kind: str = "transaction") -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": kind, "entry": list(entries)}


def test_a_transaction_entry_may_not_write_another_type_than_its_url_names(api: Api) -> None:
    """Otherwise a client with Organization scopes could write Patients."""
    entry = {"resource": new_patient(), "request": {"method": "POST", "url": "Organization"}}
    assert message_ids(post(api, "", transaction(entry))) == ["http.wrong-type"]


@pytest.mark.parametrize(
    "request_fields",
    [
        {"method": "PUT", "url": "Patient"},
        {"method": "POST", "url": "Patient", "ifMatch": 1},
        {"method": "POST", "url": "Patient", "ifNoneExist": 5},
        {"method": "GET", "url": "Patient/x/y"},
    ],
)
def test_a_malformed_transaction_entry_is_a_bad_request(api: Api, request_fields: dict[str, Any]) -> None:
    entry = {"resource": new_patient(), "request": request_fields}
    assert post(api, "", transaction(entry)).status_code == 400


def test_a_transaction_conditional_update_may_not_name_another_id(api: Api) -> None:
    first = created(api, new_patient())
    entry = {
        "resource": {**{k: v for k, v in first.items() if k != "meta"}, "id": "someone-else"},
        "request": {"method": "PUT", "url": f"Patient?identifier={ID_CARD}|{id_card(first)}"},
    }
    assert message_ids(post(api, "", transaction(entry))) == ["http.id-mismatch"]


def test_a_transaction_may_not_change_one_resource_twice(api: Api) -> None:
    first = created(api, new_patient())
    entries = [
        {"resource": {**first, "active": active}, "request": {"method": "PUT", "url": f"Patient/{first['id']}"}}
        for active in (True, False)
    ]
    answer = post(api, "", transaction(*entries))
    assert (answer.status_code, get(api, f"Patient/{first['id']}").json()["meta"]["versionId"]) == (400, "1")


def test_a_transaction_may_not_delete_by_condition_what_another_entry_changes(api: Api) -> None:
    first = created(api, new_patient())
    entries = [
        {"resource": {**first, "active": False}, "request": {"method": "PUT", "url": f"Patient/{first['id']}"}},
        {"request": {"method": "DELETE", "url": f"Patient?identifier={ID_CARD}|{id_card(first)}"}},
    ]
    answer = post(api, "", transaction(*entries))
    assert (answer.status_code, get(api, f"Patient/{first['id']}").json()["meta"]["versionId"]) == (400, "1")


def test_a_batch_reads_a_deleted_resource_as_gone_and_its_earlier_version_as_it_was(api: Api) -> None:
    first = created(api, new_patient())
    api.delete(f"{api.base}/Patient/{first['id']}", timeout=60)
    reads = [{"request": {"method": "GET", "url": f"Patient/{first['id']}{tail}"}} for tail in ("", "/_history/1")]
    answer = post(api, "", transaction(*reads, kind="batch")).json()
    assert [e["response"]["status"] for e in answer["entry"]] == ["410", "200 OK"]


def test_a_batch_reads_an_instances_history(api: Api) -> None:
    first = created(api, new_patient())
    put(api, f"Patient/{first['id']}", {**first, "active": False})
    entry = {"request": {"method": "GET", "url": f"Patient/{first['id']}/_history?_count=5"}}
    history = post(api, "", transaction(entry, kind="batch")).json()["entry"][0]["resource"]
    assert (history["type"], history["total"]) == ("history", 2)


@pytest.mark.parametrize("paging", ["_count=²", "_offset=99999999999999999999999"])
def test_a_history_page_the_databases_cannot_take_is_a_bad_request(api: Api, paging: str) -> None:
    assert get(api, f"Patient/_history?{paging}").status_code == 400


def test_a_batch_reads_an_earlier_version(api: Api) -> None:
    first = created(api, new_patient())
    put(api, f"Patient/{first['id']}", {**first, "active": False})
    entry = {"request": {"method": "GET", "url": f"Patient/{first['id']}/_history/1"}}
    answer = post(api, "", transaction(entry, kind="batch")).json()
    assert answer["entry"][0]["resource"]["active"] is True


@pytest.mark.parametrize("paging", ["_offset=1", "_count=1", "_after=zzz"])
def test_a_conditional_delete_with_paging_parameters_deletes_nothing(api: Api, paging: str) -> None:
    """It deleted every match: paging is no criterion, and a client meaning one page lost all."""
    first = created(api, new_patient())
    answer = api.delete(f"{api.base}/Patient?_id={first['id']}&{paging}", timeout=60)
    assert (answer.status_code, get(api, f"Patient/{first['id']}").status_code) == (400, 200)


@pytest.mark.parametrize("criteria", ["_sort=_id", "identifier=", "_count=1"])
def test_a_conditional_delete_without_real_criteria_deletes_nothing(api: Api, criteria: str) -> None:
    first = created(api, new_patient())
    answer = api.delete(f"{api.base}/Patient?{criteria}", timeout=60)
    assert (answer.status_code, get(api, f"Patient/{first['id']}").status_code) == (400, 200)


def test_the_documented_transaction_runs_again_on_an_archive_that_holds_its_people(api: Api) -> None:
    """docs/api.md posts it to the demo archive, which already holds 张秀英 and her centre."""
    post(api, "", example("bundle/valid-transaction-home-visit.json"))
    again = post(api, "", example("bundle/valid-transaction-home-visit.json"))
    assert [e["response"]["status"] for e in again.json()["entry"]] == ["200 OK", "200 OK", "201 Created"]


def test_a_read_refuses_a_summary_it_does_not_honour(api: Api) -> None:
    first = created(api, new_patient())
    assert get(api, f"Patient/{first['id']}?_summary=bogus").status_code == 400


def test_a_minimal_answer_has_no_body_and_no_media_type(api: Api) -> None:
    answer = post(api, "Patient", new_patient(), Prefer="return=minimal")
    assert (answer.status_code, answer.content, "Content-Type" in answer.headers) == (201, b"", False)


@pytest.mark.parametrize("path", ["Patient?_count=1&_format=json", "Patient/_history?_count=1&_format=json"])
def test_paging_links_keep_the_format_asked_for(api: Api, path: str) -> None:
    bundle = get(api, path).json()
    assert all("_format=json" in link["url"] for link in bundle["link"])


def test_the_capability_statement_lists_the_revincludes_it_serves(api: Api) -> None:
    statement = get(api, "metadata").json()
    patient = next(r for r in statement["rest"][0]["resource"] if r["type"] == "Patient")
    assert "Observation:subject" in patient["searchRevInclude"] and "*" not in patient["searchRevInclude"]


# -- operations --------------------------------------------------------------------------------------
def test_validate_with_a_profile_parameter_without_a_value_is_a_bad_request(api: Api) -> None:
    parameters = {
        "resourceType": "Parameters",
        "parameter": [{"name": "profile"}, {"name": "resource", "resource": new_patient()}],
    }
    assert message_ids(post(api, "Patient/$validate", parameters)) == ["http.profile-parameter-without-url"]


def test_validate_in_delete_mode_needs_no_body_and_deletes_nothing(api: Api) -> None:
    first = created(api, new_patient())
    answer = api.post(f"{api.base}/Patient/{first['id']}/$validate?mode=delete", timeout=60)
    still_there = get(api, f"Patient/{first['id']}").status_code
    assert (answer.status_code, message_ids(answer), still_there) == (200, ["http.ok"], 200)


def test_validate_by_get_checks_the_stored_instance(api: Api) -> None:
    """R4 allows GET for an operation that changes nothing and takes primitive parameters."""
    first = created(api, new_patient())  # stored without a narrative: dom-6 warns of it
    answer = get(api, f"Patient/{first['id']}/$validate?profile=http://hl7.org/fhir/StructureDefinition/Patient")
    severities = {issue["severity"] for issue in answer.json()["issue"]}
    assert (answer.status_code, message_ids(answer)[0], "error" in severities) == (200, "invariant.failed", False)


def test_validate_by_head_answers_as_the_get(api: Api) -> None:
    """RFC 9110: HEAD is the GET without its body; it was read as a POST without one (415)."""
    first = created(api, new_patient())
    path = f"{api.base}/Patient/{first['id']}/$validate"
    got, headed = api.get(path, timeout=60), api.head(path, timeout=60)
    assert (headed.status_code, headed.headers["Content-Type"], headed.content) == (
        got.status_code,
        got.headers["Content-Type"],
        b"",
    )
    assert got.status_code == 200


def test_validate_refuses_a_mode_it_does_not_know(api: Api) -> None:
    answer = post(api, "Patient/$validate?mode=bogus", new_patient())
    assert (answer.status_code, message_ids(answer)) == (400, ["http.unsupported-value"])


@pytest.mark.parametrize("value", [{"valueString": "delete"}, {"valueCode": "delete"}])
def test_validate_takes_its_mode_from_a_parameters_part_of_any_primitive_type(api: Api, value: dict[str, str]) -> None:
    """A mode part in valueString was dropped: the body was validated as if no mode were given
    (200, the resource's issues) instead of being asked of an instance (400)."""
    parameters = {"resourceType": "Parameters", "parameter": [{"name": "mode", **value}]}
    answer = post(api, "Patient/$validate", {**parameters, "parameter": [*parameters["parameter"], RESOURCE_PART]})
    assert (answer.status_code, message_ids(answer)) == (400, ["http.validate-delete-needs-instance"])


@pytest.mark.parametrize(
    ("query", "part", "refusal"),
    [
        ("", {"name": "mode"}, "http.parameter-needs-one-value"),
        ("", {"name": "mode", "valueCoding": {"code": "create"}}, "http.parameter-needs-one-value"),
        ("?mode=create", {"name": "mode", "valueCode": "delete"}, "http.repeated-parameter"),
    ],
)
def test_validate_refuses_a_mode_part_it_cannot_take_whole(
    api: Api, query: str, part: dict[str, Any], refusal: str
) -> None:
    """mode is 0..1 and a primitive: one without a value, or given again in the body, was
    dropped or took the query's place, the server choosing which mode was validated."""
    parameters = {"resourceType": "Parameters", "parameter": [part, RESOURCE_PART]}
    answer = post(api, f"Patient/$validate{query}", parameters)
    assert (answer.status_code, message_ids(answer)) == (400, [refusal])


def test_validate_answers_in_the_language_the_reader_ranks_highest(api: Api) -> None:
    """en-GB first and zh-CN at q=0.5 was answered in Chinese: an exact tag anywhere in the
    header beat the reader's first choice."""
    answer = post(
        api, "Patient/$validate", {"resourceType": "Patient", "gender": "x"}, **{"Accept-Language": "en-GB,zh-CN;q=0.5"}
    )
    assert answer.status_code == 200 and "is not in the value set" in answer.text


@pytest.mark.parametrize(
    ("profile", "status"),
    [
        ("http://fhir.yiyang.cn/StructureDefinition/yy-patient|0.3.0", 200),
        ("http://fhir.yiyang.cn/StructureDefinition/yy-patient|9.9", 400),
        ("http://hl7.org/fhir/StructureDefinition/Patient|4.0.1", 200),
        ("http://hl7.org/fhir/StructureDefinition/Patient|3.0.2", 400),
        ("http://hl7.org/fhir/StructureDefinition/bodyweight|4.0.1", 200),
    ],
)
def test_validate_against_a_profile_version_the_server_does_not_hold_is_refused(
    api: Api, profile: str, status: int
) -> None:
    """yy-patient|9.9 was answered by validating against 0.1.0, the version held: a verdict
    on a profile the client had not nominated."""
    answer = post(api, f"Patient/$validate?profile={quote(profile)}", new_patient())
    assert answer.status_code == status
    if status == 400:
        assert message_ids(answer) == ["http.unknown-profile"]


@pytest.mark.parametrize(
    ("path", "parts", "where"),
    [
        ("Patient/$validate?profil=http://hl7.org/fhir/StructureDefinition/Patient", [], "profil"),
        ("Patient/$validate", [{"name": "profiles", "valueUri": "urn:x"}], "Parameters.parameter[0]"),
    ],
)
def test_validate_refuses_a_parameter_it_does_not_take(
    api: Api, path: str, parts: list[dict[str, str]], where: str
) -> None:
    """A misspelt profile (or mode) was ignored: the resource was judged without the profile
    the client named, and the 200 read as if it met it, where every other operation refuses
    what it would otherwise ignore."""
    body = {"resourceType": "Parameters", "parameter": [*parts, RESOURCE_PART]} if parts else new_patient()
    answer = post(api, path, body)
    assert (answer.status_code, message_ids(answer)) == (400, ["http.unsupported-parameter"])
    assert answer.json()["issue"][0]["expression"] == [where]


def test_validate_reports_the_checksum_error_and_stores_nothing(api: Api) -> None:
    resource = example("yy-patient/invalid-id-card-checksum.json")
    answer = post(api, "Patient/$validate", resource)
    stored = get(api, f"Patient/{resource['id']}").status_code
    assert ("rule.id-card-checksum" in message_ids(answer), stored) == (True, 404)


def test_validating_an_update_of_a_deleted_instance_foretells_the_put(api: Api) -> None:
    """A PUT writes a deleted resource again (201); its $validate answered 410."""
    first = created(api, new_patient())
    api.delete(f"{api.base}/Patient/{first['id']}", timeout=60)
    assert post(api, f"Patient/{first['id']}/$validate?mode=update", first).status_code == 200


def test_validating_an_update_whose_body_names_no_id_is_refused_as_the_put_is(api: Api) -> None:
    """$validate passed it, and the PUT it foretold answered 400 http.id-missing."""
    first = created(api, new_patient())
    body = {k: v for k, v in first.items() if k != "id"}
    answer = post(api, f"Patient/{first['id']}/$validate?mode=update", body)
    assert (answer.status_code, message_ids(answer)) == (400, ["http.id-missing"])


def test_validating_an_instance_that_does_not_exist_is_not_found(api: Api) -> None:
    assert post(api, "Patient/no-such-patient/$validate", new_patient()).status_code == 404


def test_validating_an_instance_with_another_id_in_the_body_is_refused(api: Api) -> None:
    first = created(api, new_patient())
    answer = post(api, f"Patient/{first['id']}/$validate", {**first, "id": "another-id"})
    assert (answer.status_code, message_ids(answer)[0]) == (400, "http.id-mismatch")


def test_validating_an_instance_as_a_profile_with_an_id_that_is_no_string_is_a_bad_id(api: Api) -> None:
    first = created(api, new_patient())
    answer = post(api, f"Patient/{first['id']}/$validate?mode=profile", {**first, "id": [first["id"]]})
    assert (answer.status_code, message_ids(answer)[0]) == (400, "http.bad-id")


def test_validating_against_the_core_definition_of_another_type_is_an_error(api: Api) -> None:
    answer = post(api, "Patient/$validate?profile=http://hl7.org/fhir/StructureDefinition/Observation", new_patient())
    assert "profile.wrong-type" in message_ids(answer)


def ingest_sample(api: Api, filename: str) -> requests.Response:
    """The community-health sample 个人基本信息表.csv posted to $ingest as ``filename``."""
    sample = examples_dir().parents[1] / "../mappings/samples/community-health/个人基本信息表.csv"
    return api.post(
        f"{api.base}/$ingest?source=community-health&filename={filename}",
        data=sample.resolve().read_bytes(),
        headers={"Content-Type": "text/csv"},
        timeout=120,
    )


def test_ingest_of_a_legacy_csv_reconciles_its_counts(api: Api) -> None:
    answer = ingest_sample(api, "个人基本信息表.csv")
    counts = {p["name"]: p.get("valueInteger") for p in answer.json()["parameter"] if "valueInteger" in p}
    assert (counts["read"], counts["mapped"] + counts["quarantined"]) == (18, 18)


def test_ingest_of_a_file_named_dot_dot_stays_in_its_folder(api: Api) -> None:
    assert ingest_sample(api, "..").status_code == 200


@pytest.mark.parametrize("filename", ["个人基本信息表", "个人基本信息表.txt"])
def test_ingest_reads_the_body_as_its_media_type_says_when_the_filename_names_no_format(
    api: Api, filename: str
) -> None:
    """text/csv named without a suffix (or one no reader takes) was refused 400, "no format"."""
    answer = ingest_sample(api, filename)
    counts = {p["name"]: p.get("valueInteger") for p in answer.json()["parameter"] if "valueInteger" in p}
    assert (answer.status_code, counts["read"]) == (200, 18)


def test_ingest_of_a_file_name_no_file_system_holds_is_a_bad_request(api: Api) -> None:
    """86 Chinese characters are 258 bytes of UTF-8, over NAME_MAX: writing the body under that
    name failed, a 500 http.internal."""
    answer = ingest_sample(api, "健" * 86 + ".csv")
    assert (answer.status_code, message_ids(answer)) == (400, ["http.ingest-filename-too-long"])
    assert answer.json()["issue"][0]["expression"] == ["filename"]


@pytest.mark.parametrize(
    ("source", "media", "content"),
    [
        ("insurance", "application/json", b"{not json"),
        ("hl7v2", "application/hl7-v2", b"hello world"),
        # an empty body is no export, whichever reader would have read it
        ("insurance", "application/json", b""),
        ("community-health", "text/csv", b""),
        ("hl7v2", "x-application/hl7-v2+er7", b""),
    ],
)
def test_ingest_of_a_body_that_cannot_be_read_is_a_bad_request(
    api: Api, source: str, media: str, content: bytes
) -> None:
    answer = api.post(f"{api.base}/$ingest?source={source}", data=content, headers={"Content-Type": media})
    assert (answer.status_code, message_ids(answer)) == (400, ["http.ingest-unreadable"])


def test_ingest_of_a_body_that_cannot_be_read_says_why_in_chinese(api: Api) -> None:
    answer = api.post(
        f"{api.base}/$ingest?source=insurance&filename=1101.json",
        data=b"{not json",
        headers={"Content-Type": "application/json"},
    )
    text = answer.json()["issue"][0]["details"]["text"]
    assert text.startswith("上传的insurance文件无法读取，未处理任何记录：1101.json：第 1 行第 2 列处不是有效的 JSON")


def overlapping_merges() -> bytes:
    """An .xlsx whose second data row lies under two merged ranges: its first row is read, then
    the file is refused."""
    book = Workbook()
    for row in [["姓名", "县区代码", "血型"], ["张三", "410105", "A"], ["李四", None, None], ["王五", None, None]]:
        book.active.append(row)
    for cells in ("B2:B4", "A3:C3"):
        book.active.merge_cells(cells)
    saved = io.BytesIO()
    book.save(saved)
    return saved.getvalue()


def test_ingest_words_a_file_error_after_the_first_records_in_the_users_language(api: Api) -> None:
    media = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    url = f"{api.base}/$ingest?source=community-health&filename=登记表.xlsx"
    errors = [
        [
            p["valueString"]
            for p in api.post(url, data=overlapping_merges(), headers={"Content-Type": media, **lang}).json()[
                "parameter"
            ]
            if p["name"] == "fileError"
        ]
        for lang in ({}, {"Accept-Language": "en"})
    ]
    assert errors == [
        ["登记表.xlsx 工作表“Sheet”：合并单元格区域在 B3 处相互重叠"],
        ["登记表.xlsx: sheet Sheet: merged ranges overlap at B3"],
    ]


def test_ingest_reads_an_xlsx_under_its_title_lines(api: Api) -> None:
    """A title merged across row 1 and a note in row 2 above the header: every row was
    quarantined, "20 cells under a header of 1"."""
    book = Workbook()
    for row in [["金水区2026年个人基本信息表"], ["导出时间：2026-11-30"], ["姓名", "身份证号", "性别", "出生日期"]]:
        book.active.append(row)
    book.active.append(["张秀英", "11010519491231002X", "女", "1949-12-31"])
    book.active.merge_cells("A1:D1")
    saved = io.BytesIO()
    book.save(saved)
    media = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    url = f"{api.base}/$ingest?source=community-health&filename=登记表.xlsx"
    answer = api.post(url, data=saved.getvalue(), headers={"Content-Type": media}, timeout=120).json()
    counts = {p["name"]: p["valueInteger"] for p in answer["parameter"] if "valueInteger" in p}
    [record] = [p["part"] for p in answer["parameter"] if p["name"] == "record"]
    where = {p["name"]: p.get("valueString") for p in record}
    assert (counts["read"], counts["mapped"], where["location"]) == (1, 1, "sheet Sheet row 4")


def test_ingest_counts_the_quarantined_records_a_later_row_of_their_key_resolved(api: Api) -> None:
    """The sample workbook corrects each of its five broken rows further down, under the same
    个人档案编号: each correction that lands resolves the entry of the row it replaces."""
    sample = examples_dir().parents[1] / "../mappings/samples/community-health/个人基本信息表.xlsx"
    media = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    url = f"{api.base}/$ingest?source=community-health&filename=个人基本信息表-resolved.xlsx"
    answer = api.post(url, data=sample.resolve().read_bytes(), headers={"Content-Type": media}, timeout=120).json()
    assert {p["name"]: p.get("valueInteger") for p in answer["parameter"]}["resolved"] == 5


def test_ingest_names_the_hidden_sheets_it_did_not_read(api: Api) -> None:
    book = Workbook()
    for row in [["姓名", "身份证号", "性别", "出生日期"], ["张秀英", "11010519491231002X", "女", "1949-12-31"]]:
        book.active.append(row)
    book.create_sheet("代码表").sheet_state = "veryHidden"
    saved = io.BytesIO()
    book.save(saved)
    media = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    url = f"{api.base}/$ingest?source=community-health&filename=登记表.xlsx"
    answer = api.post(url, data=saved.getvalue(), headers={"Content-Type": media, "Accept-Language": "en"}, timeout=120)
    sheets = [p["part"] for p in answer.json()["parameter"] if p["name"] == "skippedSheet"]
    assert sheets == [
        [
            {"name": "file", "valueString": "登记表.xlsx"},
            {"name": "sheet", "valueString": "sheet 代码表 (very hidden: only a macro shows it)"},
        ]
    ]


def test_ingest_names_the_title_lines_it_skipped(api: Api) -> None:
    book = Workbook()
    for row in [["金水区2026年个人基本信息表"], ["姓名", "身份证号"], ["张秀英", "11010519491231002X"]]:
        book.active.append(row)
    book.active.merge_cells("A1:B1")
    saved = io.BytesIO()
    book.save(saved)
    media = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    url = f"{api.base}/$ingest?source=community-health&filename=登记表.xlsx"
    answer = api.post(url, data=saved.getvalue(), headers={"Content-Type": media, "Accept-Language": "en"}).json()
    skipped = [
        {p["name"]: p["valueString"] for p in parameter["part"]}
        for parameter in answer["parameter"]
        if parameter["name"] == "skippedLine"
    ]
    assert skipped == [{"file": "登记表.xlsx", "line": "sheet Sheet row 1 '金水区2026年个人基本信息表'"}]


def test_ingest_reads_tab_separated_values_in_utf16(api: Api) -> None:
    """Excel's "Unicode Text" export posted as text/tab-separated-values, named as Excel names
    it: a 415, and as text/csv one long column, every row ingest.no-spec."""
    rows = [["姓名", "身份证号", "性别", "出生日期"], ["张秀英", "11010519491231002X", "女", "1949-12-31"]]
    body = "".join("\t".join(row) + "\r\n" for row in rows).encode("utf-16")
    url = f"{api.base}/$ingest?source=community-health&filename=导出.txt"
    answer = api.post(url, data=body, headers={"Content-Type": "text/tab-separated-values"}, timeout=120).json()
    counts = {p["name"]: p["valueInteger"] for p in answer["parameter"] if "valueInteger" in p}
    [record] = [p["part"] for p in answer["parameter"] if p["name"] == "record"]
    where = {p["name"]: p.get("valueString") for p in record}
    assert (counts["read"], counts["mapped"], where["location"]) == (1, 1, "row 2")


def test_ingest_reads_a_txt_export_sent_as_bytes_by_its_header_line(api: Api) -> None:
    """Excel's "Unicode Text" export under its own name, of no declared type: a 415."""
    rows = [["姓名", "身份证号", "性别", "出生日期"], ["张秀英", "11010519491231002X", "女", "1949-12-31"]]
    body = "".join("\t".join(row) + "\r\n" for row in rows).encode("utf-16")
    url = f"{api.base}/$ingest?source=community-health&filename=导出.txt"
    answer = api.post(url, data=body, headers={"Content-Type": "application/octet-stream"}, timeout=120).json()
    counts = {p["name"]: p["valueInteger"] for p in answer["parameter"] if "valueInteger" in p}
    assert (counts["read"], counts["mapped"]) == (1, 1)


def test_ingest_refuses_a_txt_file_that_is_no_table_saying_to_rename_it(api: Api) -> None:
    body = b"MSH|^~\\&|HIS|H4101050001|YY|YY|20261102091502||ADT^A01|1|P|2.5\r"
    url = f"{api.base}/$ingest?source=hl7v2&filename=adt.txt"
    headers = {"Content-Type": "application/octet-stream", "Accept-Language": "en"}
    answer = api.post(url, data=body, headers=headers, timeout=120)
    assert (answer.status_code, "rename it to the suffix of its format" in answer.text) == (400, True)


def gb18030_a08(control: str, id_card: str, charset: str = "") -> bytes:
    """An ADT^A08 of 谢伟 in GB18030, whose bytes (D0 BB CE B0) are UTF-8 too, for лΰ; MSH-18
    ``charset``, or none."""
    return (
        f"MSH|^~\\&|HIS|H41010500012|YY|GW|20261115160244||ADT^A08^ADT_A01|{control}|P|2.5|||||CHN|{charset}\r"
        f"EVN|A08|20261115160240\rPID|1||{id_card}^^^^ID||谢伟||19480302|M\r"
    ).encode("gb18030")


def ingested_name(api: Api, body: bytes, content_type: str) -> str:
    """The name of the Patient the one message posted to $ingest landed as."""
    url = f"{api.base}/$ingest?source=hl7v2"
    answer = api.post(url, data=body, headers={"Content-Type": content_type}, timeout=120).json()
    [record] = [p["part"] for p in answer["parameter"] if p["name"] == "record"]
    [patient] = [p["valueReference"]["reference"] for p in record if p["name"] == "resource" and "Patient/" in str(p)]
    return get(api, patient).json()["name"][0]["text"]


def test_ingest_reads_an_hl7_message_declaring_no_charset_in_the_one_its_content_type_declares(api: Api) -> None:
    """``charset=gb18030`` was ignored: without MSH-18 the message was guessed UTF-8, 谢伟 read as лΰ."""
    body = gb18030_a08("CS1", "410105194803020032")
    assert ingested_name(api, body, "x-application/hl7-v2+er7; charset=gb18030") == "谢伟"


def test_ingest_reads_an_hl7_message_in_its_msh18_charset_whatever_its_content_type_says(api: Api) -> None:
    """MSH-18 is the sender's own word on its message, as a file or an MLLP frame reads it; a
    client library's default charset=utf-8 does not override it."""
    body = gb18030_a08("CS2", "410105194803020059", "GB 18030-2000")
    assert ingested_name(api, body, "x-application/hl7-v2+er7; charset=utf-8") == "谢伟"


def test_ingest_of_a_legacy_xls_workbook_says_to_save_it_as_xlsx_or_csv(api: Api) -> None:
    """application/vnd.ms-excel was a 415 naming the types $ingest reads, not what to do."""
    headers = {"Content-Type": "application/vnd.ms-excel", "Accept-Language": "en"}
    url = f"{api.base}/$ingest?source=community-health&filename=登记表.xls"
    answer = api.post(url, data=COMPOUND_FILE + bytes(504), headers=headers)
    told = answer.json()["issue"][0]["details"]["text"]
    assert (answer.status_code, message_ids(answer), "save it as" in told) == (
        415,
        ["http.ingest-refused-format"],
        True,
    )


def test_ingest_of_a_media_type_it_does_not_read_names_the_types_it_reads(api: Api) -> None:
    headers = {"Content-Type": "text/plain", "Accept-Language": "en"}
    answer = api.post(f"{api.base}/$ingest?source=hl7v2", data=b"MSH|^~\\&|", headers=headers)
    text = answer.json()["issue"][0]["details"]["text"]
    named = all(media in text for media in ("text/csv", "application/json", "x-application/hl7-v2+er7", ".hl7"))
    assert (answer.status_code, message_ids(answer), named) == (415, ["http.ingest-unsupported-media-type"], True)


# -- formats and hostile bodies ----------------------------------------------------------------------
def test_a_body_without_a_content_type_is_refused(api: Api) -> None:
    answer = api.post(f"{api.base}/Patient", data=json.dumps(new_patient()).encode(), timeout=60)
    assert (answer.status_code, message_ids(answer)[0]) == (415, "http.unsupported-media-type")


@pytest.mark.parametrize(
    ("content_type", "data"), [("text/plain", "5byg56eA6Iux"), ("text/plain; charset=utf-8", "5byg\n56eA6Iux")]
)
def test_a_binary_is_read_as_its_content_when_no_fhir_format_is_accepted(
    api: Api, content_type: str, data: str
) -> None:
    binary = created(api, {"resourceType": "Binary", "contentType": content_type, "data": data})
    answer = get(api, f"Binary/{binary['id']}", Accept="text/plain")
    assert (answer.headers["Content-Type"], answer.content) == (content_type, "张秀英".encode())


def test_a_resource_is_read_as_xml_when_asked(api: Api) -> None:
    first = created(api, new_patient())
    answer = get(api, f"Patient/{first['id']}?_format=xml")
    assert (answer.headers["Content-Type"].split(";")[0], answer.content.startswith(b"<?xml")) == (
        "application/fhir+xml",
        True,
    )


def test_each_accept_header_gets_its_own_format(api: Api) -> None:
    first = created(api, new_patient())
    kinds = [
        get(api, f"Patient/{first['id']}", Accept=accept).headers["Content-Type"].split(";")[0]
        for accept in ("application/fhir+xml", "application/fhir+json", "application/fhir+xml")
    ]
    assert kinds == ["application/fhir+xml", "application/fhir+json", "application/fhir+xml"]


def test_an_error_echoing_a_control_character_is_still_answered_in_xml(api: Api) -> None:
    answer = get(api, "Patient/a%01b?_format=xml")
    assert (answer.status_code, answer.headers["Content-Type"].split(";")[0]) == (404, "application/fhir+xml")


def test_a_patient_posted_as_xml_is_stored(api: Api) -> None:
    first = created(api, new_patient())
    xml = get(api, f"Patient/{first['id']}?_format=xml").content
    api.delete(f"{api.base}/Patient/{first['id']}", timeout=60)  # its 身份证号 is free again
    answer = api.post(f"{api.base}/Patient", data=xml, headers={"Content-Type": "application/fhir+xml"}, timeout=60)
    assert (answer.status_code, answer.json()["name"]) == (201, first["name"])


def test_a_json_body_with_a_repeated_key_is_refused(api: Api) -> None:
    body = '{"resourceType": "Patient", "resourceType": "Observation"}'
    answer = api.post(f"{api.base}/Patient", data=body, headers=FHIR_JSON, timeout=60)
    assert (answer.status_code, message_ids(answer)) == (400, ["http.duplicate-key"])


def test_an_xml_body_refused_for_an_element_names_it(api: Api) -> None:
    body = b'<Patient xmlns="http://hl7.org/fhir"><active value="1"/></Patient>'
    answer = api.post(f"{api.base}/Patient", data=body, headers={"Content-Type": "application/fhir+xml"}, timeout=60)
    assert (answer.status_code, answer.json()["issue"][0]["expression"]) == (400, ["Patient.active"])


def test_an_xml_body_declaring_entities_is_refused(api: Api) -> None:
    body = b'<?xml version="1.0"?><!DOCTYPE p [<!ENTITY x SYSTEM "file:///etc/passwd">]><Patient xmlns="http://hl7.org/fhir"><id value="&x;"/></Patient>'
    answer = api.post(f"{api.base}/Patient", data=body, headers={"Content-Type": "application/fhir+xml"}, timeout=60)
    assert (answer.status_code, message_ids(answer)) == (400, ["http.not-xml"])


def test_a_doubled_slash_is_an_operation_outcome_not_a_redirect(api: Api) -> None:
    answer = api.get(f"{api.base}//Patient", allow_redirects=False, timeout=60)
    assert (answer.status_code, answer.json()["resourceType"]) == (404, "OperationOutcome")


def test_an_unknown_route_is_an_operation_outcome_not_an_html_page(api: Api) -> None:
    answer = get(api, "Patient/x/y/z")
    assert (answer.status_code, answer.json()["resourceType"]) == (404, "OperationOutcome")


def test_an_unknown_resource_type_is_refused(api: Api) -> None:
    answer = get(api, "Elder/1")
    assert (answer.status_code, message_ids(answer)) == (404, ["http.unknown-type"])


# -- $evaluate-measure ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def checked_in_1999(api: Api, home_visit: dict[str, Any]) -> dict[str, Any]:
    """A person 65 or over in 1999 with a health check that year: the only one in 1999, as no
    other test writes that year."""
    organization = home_visit["entry"][1]["fullUrl"].removeprefix(f"{api.base}/")
    person = created(api, next(p for p in (new_patient() for _ in range(500)) if p["birthDate"] <= "1934-12-31"))
    check = {
        **example("yy-encounter/valid-home-visit.json"),
        "type": [{"coding": [{"system": "http://fhir.yiyang.cn/CodeSystem/encounter-type", "code": "health-check"}]}],
        "subject": {"reference": f"Patient/{person['id']}"},
        "period": {"start": "1999-05-04T09:00:00+08:00", "end": "1999-05-04T09:30:00+08:00"},
        "serviceProvider": {"reference": organization},
    }
    for element in ("id", "participant"):
        check.pop(element)
    return created(api, check)


def test_evaluate_measure_counts_what_hospitals_pushed(api: Api, checked_in_1999: dict[str, Any]) -> None:
    path = "Measure/elderly-health-management-rate/$evaluate-measure?periodStart=1999-01-01&periodEnd=1999-12-31"
    report = get(api, path).json()
    counts = {p["code"]["coding"][0]["code"]: p.get("count") for p in report["group"][0]["population"]}
    assert counts == {"initial-population": counts["initial-population"], "denominator": None, "numerator": 1}


def test_evaluate_measure_may_be_invoked_by_post(api: Api, checked_in_1999: dict[str, Any]) -> None:
    """R4: every operation may be invoked with POST and a Parameters body."""
    path = "Measure/elderly-health-management-rate/$evaluate-measure"
    report = post(api, path, parameters(periodStart="1999-01-01", periodEnd="1999-12-31")).json()
    counts = {p["code"]["coding"][0]["code"]: p.get("count") for p in report["group"][0]["population"]}
    assert counts["numerator"] == 1


def test_evaluate_measure_refuses_what_the_definition_the_statement_names_refuses(api: Api) -> None:
    """The CapabilityStatement names the operation's definition, a built-in one; the parameters
    it names with max 0 are refused, even under lenient handling (ignored, they had the
    population's report answer for one patient's)."""
    [measure] = [r for r in get(api, "metadata").json()["rest"][0]["resource"] if r["type"] == "Measure"]
    [url] = [o["definition"] for o in measure["operation"] if o["name"] == "evaluate-measure"]
    definition = Registry().get(url) or {}
    refused = [p["name"] for p in definition.get("parameter", []) if p["use"] == "in" and p["max"] == "0"]
    assert refused == ["patient", "practitioner", "subject"]
    for name in refused:
        path = f"Measure/ltc-insured-count/$evaluate-measure?periodStart=2026&periodEnd=2026&{name}=Patient/1"
        answer = get(api, path, Prefer="handling=lenient")
        assert (answer.status_code, message_ids(answer)) == (400, ["measure.subject-report"])


def test_evaluate_measure_of_an_unknown_measure_is_a_404_outcome(api: Api) -> None:
    answer = get(api, "Measure/no-such-indicator/$evaluate-measure?periodStart=2026-01-01&periodEnd=2026-12-31")
    assert (answer.status_code, message_ids(answer)) == (404, ["measure.unknown"])


@pytest.mark.parametrize("control", ["_format=json", "_pretty=true"])
def test_evaluate_measure_takes_the_controls_every_answer_takes(api: Api, control: str) -> None:
    """R4 http.html: _format and _pretty apply to every interaction; _pretty was a 400."""
    answer = get(api, f"Measure/ltc-insured-count/$evaluate-measure?periodStart=2026&periodEnd=2026&{control}")
    assert (answer.status_code, answer.json()["resourceType"]) == (200, "MeasureReport")


def test_evaluate_measure_of_all_is_no_measure(api: Api) -> None:
    """The command line's "all" is no Measure id: it answered the first Measure's report."""
    for path in ("Measure/all/$evaluate-measure?", "Measure/$evaluate-measure?measure=all&"):
        answer = get(api, f"{path}periodStart=2026-01-01&periodEnd=2026-12-31")
        assert (answer.status_code, message_ids(answer)) == (404, ["measure.unknown"])


def test_evaluate_measure_on_the_type_needs_the_measure(api: Api) -> None:
    """R4 makes measure 0..1 for the instance's sake; on the type it is required."""
    answer = get(api, "Measure/$evaluate-measure?periodStart=2026-01-01&periodEnd=2026-12-31")
    issue = answer.json()["issue"][0]
    assert (answer.status_code, issue["details"]["coding"][0]["code"], issue["expression"]) == (
        400,
        "http.parameter-required",
        ["measure"],
    )


def test_evaluate_measure_with_a_backwards_period_is_a_400_outcome(api: Api) -> None:
    """It said the period was not understood; it was, and ends before it starts."""
    answer = get(api, "Measure/ltc-insured-count/$evaluate-measure?periodStart=2026-12-31&periodEnd=2026-01-01")
    assert (answer.status_code, message_ids(answer)) == (400, ["measure.period-reversed"])


@pytest.mark.parametrize(
    ("query", "message_id", "where"),
    [
        (
            "measure=ltc-insured-count&periodStart=2026-01-01T00:00:00%2B08:00&periodEnd=2026",
            "measure.bad-period-date",
            ["periodStart"],
        ),
        (
            "measure=ltc-insured-count&periodStart=2026-01-01/2026-03-31&periodEnd=2026",
            "measure.bad-period-date",
            ["periodStart"],
        ),
        ("measure=ltc-insured-count&periodStart=2026&periodEnd=2026-02-30", "measure.bad-period-date", ["periodEnd"]),
        (
            "measure=ltc-insured-count&periodStart=2026-12-31&periodEnd=2026-01-01",
            "measure.period-reversed",
            ["periodEnd"],
        ),
        (
            "measure=ltc-insured-count&periodStart=2026&periodEnd=2026&division=4101x",
            "measure.bad-division",
            ["division"],
        ),
        ("periodStart=2026&periodEnd=2026&measure=no-such-indicator", "measure.unknown", ["measure"]),
    ],
)
def test_evaluate_measure_refusals_name_the_parameter_at_fault(
    api: Api, query: str, message_id: str, where: list[str]
) -> None:
    """Each is an R4 date (a dateTime, or the command line's start/end pair, is none): the
    refusal had no location, and a periodStart of 2026-01-01/2026-03-31 was taken."""
    answer = get(api, f"Measure/$evaluate-measure?{query}")
    issue = answer.json()["issue"][0]
    status = 404 if message_id == "measure.unknown" else 400
    assert (answer.status_code, issue["details"]["coding"][0]["code"], issue.get("expression")) == (
        status,
        message_id,
        where,
    )


@pytest.mark.parametrize(
    ("given", "missing"), [("periodStart=2026-01-01", "periodEnd"), ("periodEnd=2026-12-31", "periodStart")]
)
def test_evaluate_measure_needs_both_ends_of_its_period(api: Api, given: str, missing: str) -> None:
    """Each is 1..1 in R4; one alone was read as a period of that one day."""
    answer = get(api, f"Measure/family-doctor-contract-rate/$evaluate-measure?{given}")
    issue = answer.json()["issue"][0]
    assert (answer.status_code, issue["details"]["coding"][0]["code"], issue["expression"]) == (
        400,
        "http.parameter-required",
        [missing],
    )


# -- Composition/$document ----------------------------------------------------------------------------
def _composition(patient_id: str, *entries: str) -> dict[str, Any]:
    return {
        "resourceType": "Composition",
        "status": "final",
        "type": {"text": "健康档案"},
        "subject": {"reference": f"Patient/{patient_id}"},
        "date": "2026-11-30",
        "author": [{"reference": f"Patient/{patient_id}"}],
        "title": "健康档案",
        "section": [{"title": "个人基本信息", "entry": [{"reference": e} for e in entries]}],
    }


def test_document_gathers_the_composition_and_what_it_references(api: Api) -> None:
    person = created(api, new_patient())
    composition = created(api, _composition(person["id"], f"Patient/{person['id']}"))
    bundle = get(api, f"Composition/{composition['id']}/$document").json()
    assert (bundle["type"], [e["resource"]["resourceType"] for e in bundle["entry"]]) == (
        "document",
        ["Composition", "Patient"],
    )


def test_document_missing_a_referenced_resource_is_refused_whole(api: Api) -> None:
    person = created(api, new_patient())
    composition = created(api, _composition(person["id"], "Observation/never-written"))
    answer = get(api, f"Composition/{composition['id']}/$document")
    assert (answer.status_code, message_ids(answer)) == (422, ["http.document-incomplete"])


def test_document_holds_what_its_resources_reference_in_turn(api: Api) -> None:
    """An organisation the person's record names: the document must resolve it inside."""
    organization = {k: v for k, v in example("yy-organization/valid-yiyang-center.json").items() if k != "partOf"}
    organization["id"] = "document-home"  # a home of its own, with its own licence number
    organization["identifier"] = [{**organization["identifier"][0], "value": "PDY00002-341010515A1001"}]
    assert put(api, f"Organization/{organization['id']}", organization).status_code in (200, 201)
    person = created(api, new_patient(managingOrganization={"reference": f"Organization/{organization['id']}"}))
    composition = created(api, _composition(person["id"], f"Patient/{person['id']}"))
    bundle = get(api, f"Composition/{composition['id']}/$document").json()
    assert [e["resource"]["resourceType"] for e in bundle["entry"]] == ["Composition", "Patient", "Organization"]


def test_a_document_asked_with_persist_false_is_made_as_by_default(api: Api) -> None:
    """R4's persist defaults to false: saying so was refused as a parameter $document does not take."""
    person = created(api, new_patient())
    composition = created(api, _composition(person["id"], f"Patient/{person['id']}"))
    assert get(api, f"Composition/{composition['id']}/$document?persist=false").status_code == 200


def test_a_document_made_again_after_a_change_is_another_document(api: Api) -> None:
    person = created(api, new_patient())
    composition = created(api, _composition(person["id"], f"Patient/{person['id']}"))
    first = get(api, f"Composition/{composition['id']}/$document").json()["identifier"]
    put(api, f"Patient/{person['id']}", {**person, "active": False})
    again = get(api, f"Composition/{composition['id']}/$document").json()["identifier"]
    assert first != again


def test_validate_against_a_profile_the_server_does_not_know_is_an_error(api: Api) -> None:
    """Resource-validate: a nominated profile the server cannot validate against SHALL be an error."""
    answer = post(api, "Patient/$validate?profile=http://example.org/StructureDefinition/nope", new_patient())
    assert (answer.status_code, message_ids(answer)) == (400, ["http.unknown-profile"])


@pytest.mark.parametrize("headers", [{}, {"Content-Type": "application/pdf"}])
def test_ingest_of_an_empty_body_is_a_400_whatever_its_type(api: Api, headers: dict[str, str]) -> None:
    """Without a media type it was a 415, as if the type were the fault."""
    answer = api.post(f"{api.base}/$ingest?source=community-health", data=b"", headers=headers)
    assert (answer.status_code, message_ids(answer)) == (400, ["http.ingest-unreadable"])


def test_ingest_from_an_unknown_source_names_the_sources_it_takes(api: Api) -> None:
    answer = api.post(f"{api.base}/$ingest?source=hospital", data=b"x", headers={"Content-Type": "text/csv"})
    assert (answer.status_code, message_ids(answer)) == (400, ["http.unsupported-value"])


@pytest.mark.parametrize(
    ("query", "refusal"),
    [
        ("", ("http.parameter-required", ["source"])),
        ("source=insurance&sorce=x", ("http.unsupported-parameter", ["sorce"])),
    ],
)
def test_ingest_refuses_a_missing_source_or_a_parameter_it_does_not_take(
    api: Api, query: str, refusal: tuple[str, list[str]]
) -> None:
    """A missing source read as "source cannot be ''"; a mistyped parameter was ignored."""
    answer = api.post(f"{api.base}/$ingest?{query}", data=b"x", headers={"Content-Type": "text/csv"})
    issue = answer.json()["issue"][0]
    assert (answer.status_code, (issue["details"]["coding"][0]["code"], issue["expression"])) == (400, refusal)


def test_validate_against_the_types_core_definition_is_the_base_model_check(api: Api) -> None:
    """It was accepted as known, then warned of as an unknown profile."""
    answer = post(api, "Patient/$validate?profile=http://hl7.org/fhir/StructureDefinition/Patient", new_patient())
    assert (answer.status_code, "profile.unknown" in message_ids(answer)) == (200, False)


@pytest.mark.parametrize(
    ("path", "name"),
    [
        (
            "Measure/family-doctor-contract-rate/$evaluate-measure?periodStart=2026&periodStart=2025&periodEnd=2026",
            "periodStart",
        ),
        ("Patient/zhang-xiuying/$everything?_count=5&_count=100", "_count"),
    ],
)
def test_an_operation_parameter_of_one_value_given_twice_is_refused(api: Api, path: str, name: str) -> None:
    """The first of the two was taken, silently: which one counted was the server's choice."""
    answer = get(api, path)
    assert (answer.status_code, answer.json()["issue"][0]["expression"]) == (400, [name])


def test_validate_takes_one_resource(api: Api) -> None:
    parameters = {
        "resourceType": "Parameters",
        "parameter": [{"name": "resource", "resource": new_patient()}, {"name": "resource", "resource": new_patient()}],
    }
    assert post(api, "Patient/$validate", parameters).status_code == 400


def test_a_vread_is_shaped_by_elements_as_a_read_is(api: Api) -> None:
    resource = created(api, new_patient())
    answer = get(api, f"Patient/{resource['id']}/_history/1?_elements=gender").json()
    assert (sorted(answer), answer["meta"]["tag"][-1]["code"]) == (
        ["_gender", "gender", "id", "meta", "resourceType"],
        "SUBSETTED",
    )


def test_a_read_keeps_the_elements_of_every_elements_parameter(api: Api) -> None:
    resource = created(api, new_patient())
    answer = get(api, f"Patient/{resource['id']}?_elements=gender&_elements=birthDate").json()
    assert {"gender", "birthDate"} <= set(answer)


def test_a_read_with_summary_given_twice_is_refused(api: Api) -> None:
    resource = created(api, new_patient())
    answer = get(api, f"Patient/{resource['id']}?_summary=true&_summary=false")
    assert (answer.status_code, message_ids(answer)) == (400, ["http.repeated-parameter"])


def test_a_read_with_summary_true_leaves_out_what_is_not_summary(api: Api) -> None:
    resource = created(api, new_patient())
    answer = get(api, f"Patient/{resource['id']}?_summary=true").json()
    assert ("extension" in resource, "extension" in answer, answer["name"]) == (True, False, resource["name"])


def test_a_read_naming_the_current_etag_is_not_modified(api: Api) -> None:
    """Conditional read (R4 http.html#cread): a platform polling unchanged records gets no body."""
    resource = created(api, new_patient())
    answer = get(api, f"Patient/{resource['id']}", **{"If-None-Match": 'W/"1"'})
    assert (answer.status_code, answer.content, answer.headers["ETag"]) == (304, b"", 'W/"1"')


def test_a_read_naming_an_earlier_etag_gets_the_resource(api: Api) -> None:
    resource = created(api, new_patient())
    put(api, f"Patient/{resource['id']}", {**resource, "active": False})
    answer = get(api, f"Patient/{resource['id']}", **{"If-None-Match": 'W/"1"'})
    assert (answer.status_code, answer.json()["meta"]["versionId"]) == (200, "2")


def test_a_read_modified_since_the_date_given_gets_the_resource(api: Api) -> None:
    resource = created(api, new_patient())
    unchanged = get(api, f"Patient/{resource['id']}", **{"If-Modified-Since": "Fri, 31 Dec 9999 00:00:00 GMT"})
    changed = get(api, f"Patient/{resource['id']}", **{"If-Modified-Since": "Mon, 01 Jan 2001 00:00:00 GMT"})
    assert (unchanged.status_code, changed.status_code) == (304, 200)


@pytest.mark.parametrize("path", ["$ingest", "Patient/$validate"])
def test_an_operation_asked_by_a_method_it_does_not_take_is_a_405(api: Api, path: str) -> None:
    assert get(api, path).status_code == 405


def test_a_batch_read_entry_is_shaped_by_elements_as_a_read_is(api: Api) -> None:
    resource = created(api, new_patient())
    entry = {"request": {"method": "GET", "url": f"Patient/{resource['id']}?_elements=gender"}}
    answer = post(api, "", transaction(entry, kind="batch")).json()["entry"][0]["resource"]
    assert sorted(answer) == ["_gender", "gender", "id", "meta", "resourceType"]


def test_ingest_names_a_column_no_mapping_rule_read(api: Api) -> None:
    """A column the spec does not know (补充说明) holds values nobody will see in FHIR: said so."""
    sample = examples_dir().parents[1] / "../mappings/samples/community-health/家庭医生签约.csv"
    header, *rows = sample.resolve().read_text(encoding="utf-8-sig").strip("\n").split("\n")
    body = "\n".join([f"{header},补充说明", *(f"{row},有值" for row in rows)]) + "\n"
    answer = api.post(
        f"{api.base}/$ingest?source=community-health&filename=签约.csv",
        data=body.encode(),
        headers={"Content-Type": "text/csv"},
        timeout=120,
    )
    unread = [
        {part["name"]: part["valueString"] for part in p["part"]}
        for p in answer.json()["parameter"]
        if p["name"] == "unreadColumn"
    ]
    assert unread == [{"file": "签约.csv", "column": "补充说明"}]


def test_a_conditional_create_without_the_system_finds_the_holder_of_a_number_spelt_with_a_lowercase_x(
    api: Api,
) -> None:
    """The system-qualified criteria upper-case a 身份证号 as the index stores it; without the
    system, ``identifier=…187x`` found no one and the keys refused the create as the holder's
    second record (409)."""
    holder = synthetic_patient(random.Random(9002), 9002)  # 身份证号 41030219590104187X
    holder.pop("id")
    first = created(api, holder)
    lowercase = id_card(holder).lower()
    again = json.loads(json.dumps(holder).replace(id_card(holder), lowercase))
    answer = post(api, "Patient", again, **{"If-None-Exist": f"identifier={lowercase}"})
    assert (answer.status_code, answer.json().get("id")) == (200, first["id"])


def test_a_search_without_the_system_reads_case_only_under_identity_document_systems(api: Api) -> None:
    """Under any other system a number's case counts: ``tag-7x`` is not ``TAG-7X``."""
    basic = {"resourceType": "Basic", "identifier": [{"system": "urn:t", "value": "TAG-7X"}], "code": {"text": "t"}}
    created(api, basic)
    totals = [get(api, f"Basic?identifier={value}&_summary=count").json()["total"] for value in ("tag-7x", "TAG-7X")]
    assert totals == [0, 1]

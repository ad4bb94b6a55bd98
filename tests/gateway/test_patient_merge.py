"""Patient/$merge over HTTP against a real server on both databases: the 主索引 staff make the
two records of one person (an elderly-care platform's Patient created beside a holder it may
not see) one, and every record of the person follows."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import date
from typing import Any

import pytest
import requests

from conformance.id_card import check_char
from gateway.match_keys import match_keys
from gateway.storage import open_store
from tests.conftest import Api, Served, add_client, audited
from tests.gateway.test_api import ID_CARD, example, id_card, new_patient

HOME = "jinshui-yiyang-center"


@pytest.fixture(scope="module")
def centre(served: Served, api: Api, client_key: Any) -> Iterator[Api]:
    """An elderly-care platform's session: it may create people, and is not told of a holder
    it may not see (so it makes the second record the staff then merge)."""
    organization = example("yy-organization/valid-yiyang-center.json")
    assert api.put(f"{served.base}/Organization/{organization['id']}", json=organization).status_code in (200, 201)
    add_client(
        served.database_url,
        "merge-centre",
        key=client_key,
        scope="system/*.cruds",
        role="elderly-care",
        organization=HOME,
    )
    with Api(served.base, "merge-centre", client_key, "system/*.cruds") as session:
        yield session


def two_records(served: Served, api: Api, centre: Api) -> tuple[str, str, dict[str, Any]]:
    """(the first record, the centre's second record of the same person, the person)."""
    person = new_patient()
    first = api.post(f"{served.base}/Patient", json=person)
    second = centre.post(f"{served.base}/Patient", json=person)
    assert (first.status_code, second.status_code) == (201, 201), second.text
    return first.json()["id"], second.json()["id"], person


def parameters(source: str, target: str, *more: dict[str, Any]) -> dict[str, Any]:
    return {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "source-patient", "valueReference": {"reference": f"Patient/{source}"}},
            {"name": "target-patient", "valueReference": {"reference": f"Patient/{target}"}},
            *more,
        ],
    }


def merged(served: Served, api: Api, source: str, target: str, *more: dict[str, Any]) -> requests.Response:
    return api.post(f"{served.base}/Patient/$merge", json=parameters(source, target, *more))


def encounter_of(served: Served, api: Api, person: str) -> str:
    stay = {**example("yy-encounter/valid-health-check-2026.json"), "subject": {"reference": f"Patient/{person}"}}
    del stay["id"]
    answer = api.post(f"{served.base}/Encounter", json=stay)
    assert answer.status_code == 201, answer.text
    return answer.json()["id"]


def coverage_of(served: Served, api: Api, person: str) -> str:
    cover = {**example("yy-coverage/valid-employee-insurance.json"), "beneficiary": {"reference": f"Patient/{person}"}}
    cover["period"] = {"start": "2026-01-01"}
    del cover["id"]
    answer = api.post(f"{served.base}/Coverage", json=cover)
    assert answer.status_code == 201, answer.text
    return answer.json()["id"]


def code_of(answer: requests.Response) -> tuple[int, str]:
    return answer.status_code, answer.json()["issue"][0]["details"]["coding"][0]["code"]


def refusal(answer: requests.Response) -> tuple[int, str, list[str]]:
    issue = answer.json()["issue"][0]
    return answer.status_code, issue["details"]["coding"][0]["code"], issue.get("expression", [])


def born_on(person: dict[str, Any], day: date) -> dict[str, Any]:
    """The person born on ``day``, their 身份证号 saying so (same county and sequence)."""
    number = id_card(person)
    body = f"{number[:6]}{day:%Y%m%d}{number[14:17]}"
    identifiers = [
        {**i, "value": body + check_char(body)} if i["system"] == ID_CARD else i for i in person["identifier"]
    ]
    return {**person, "birthDate": day.isoformat(), "identifier": identifiers}


# -- what a merge moves ------------------------------------------------------------------------
def test_a_merge_moves_an_encounters_subject_to_the_target(served: Served, api: Api, centre: Api) -> None:
    source, target, _ = two_records(served, api, centre)
    stay = encounter_of(served, api, source)
    assert merged(served, api, source, target).status_code == 200
    assert api.get(f"{served.base}/Encounter/{stay}").json()["subject"]["reference"] == f"Patient/{target}"


def test_a_merge_moves_a_coverages_beneficiary_to_the_target(served: Served, api: Api, centre: Api) -> None:
    source, target, _ = two_records(served, api, centre)
    cover = coverage_of(served, api, source)
    merged(served, api, source, target)
    assert api.get(f"{served.base}/Coverage/{cover}").json()["beneficiary"]["reference"] == f"Patient/{target}"


def test_a_referrers_reference_no_search_parameter_indexes_is_moved_too(served: Served, api: Api, centre: Api) -> None:
    """Found by its ``subject``, the Condition is walked whole: its ``recorder``, which no R4
    search parameter indexes, names the target too."""
    source, target, _ = two_records(served, api, centre)
    condition = {**example("yy-condition/valid-hypertension.json"), "subject": {"reference": f"Patient/{source}"}}
    condition["recorder"] = {"reference": f"Patient/{source}"}
    del condition["id"]
    written = api.post(f"{served.base}/Condition", json=condition)
    assert written.status_code == 201, written.text
    merged(served, api, source, target)
    moved = api.get(f"{served.base}/Condition/{written.json()['id']}").json()
    assert moved["recorder"]["reference"] == f"Patient/{target}"


#: a 随访 notice (Basic) naming a person only where no search parameter looks: who receives it,
#: by an extension's ``valueReference``, or by the contained relative it is sent to
RECEIVER = "http://hl7.org/fhir/StructureDefinition/cqf-receivingPerson"
#: where each kind of notice names the person
NAMED_WITHOUT_A_PARAMETER: dict[str, Callable[[dict[str, Any]], str]] = {
    "extension": lambda notice: notice["extension"][0]["valueReference"]["reference"],
    "contained": lambda notice: notice["contained"][0]["patient"]["reference"],
}


def notice_naming(served: Served, api: Api, person: str, where: str) -> str:
    """The id of a notice naming ``person`` in an extension, or in a resource it contains."""
    notice: dict[str, Any] = {"resourceType": "Basic", "code": {"text": "随访通知"}}
    if where == "extension":
        notice["extension"] = [{"url": RECEIVER, "valueReference": {"reference": f"Patient/{person}"}}]
    else:
        relative = {"resourceType": "RelatedPerson", "id": "kin", "patient": {"reference": f"Patient/{person}"}}
        notice["contained"] = [relative]
        notice["extension"] = [{"url": RECEIVER, "valueReference": {"reference": "#kin"}}]
    answer = api.post(f"{served.base}/Basic", json=notice)
    assert answer.status_code == 201, answer.text
    return answer.json()["id"]


@pytest.mark.parametrize("where", NAMED_WITHOUT_A_PARAMETER)
def test_a_resource_naming_the_source_only_where_no_parameter_looks_is_moved(
    served: Served, api: Api, centre: Api, where: str
) -> None:
    """Found by its index rows of the references no parameter indexes: else it kept naming
    the retired record, which it may not be written naming again."""
    source, target, _ = two_records(served, api, centre)
    notice = notice_naming(served, api, source, where)
    merged(served, api, source, target)
    moved = api.get(f"{served.base}/Basic/{notice}").json()
    assert NAMED_WITHOUT_A_PARAMETER[where](moved) == f"Patient/{target}"


def test_the_provenance_names_a_moved_resource_naming_the_source_in_an_extension(
    served: Served, api: Api, centre: Api
) -> None:
    source, target, _ = two_records(served, api, centre)
    notice = notice_naming(served, api, source, "extension")
    merged(served, api, source, target)
    found = api.get(f"{served.base}/Provenance", params={"target": f"Patient/{target}"}).json()
    named = [t["reference"] for e in found["entry"] for t in e["resource"]["target"]]
    assert f"Basic/{notice}/_history/2" in named


def test_a_record_of_another_type_with_the_targets_id_is_moved(served: Served, api: Api, centre: Api) -> None:
    source, target, _ = two_records(served, api, centre)
    stay = {**example("yy-encounter/valid-health-check-2026.json"), "id": target}
    stay["subject"] = {"reference": f"Patient/{source}"}
    assert api.put(f"{served.base}/Encounter/{target}", json=stay).status_code == 201
    merged(served, api, source, target)
    assert api.get(f"{served.base}/Encounter/{target}").json()["subject"]["reference"] == f"Patient/{target}"


def test_a_source_naming_itself_is_written_once_as_the_retired_record(served: Served, api: Api, centre: Api) -> None:
    """A source whose ``link`` names its own id is no referrer of itself (the index leaves a
    Patient out of its own compartment): were it rewritten as one, its retired version would
    then be written at a version already passed (412 on every attempt)."""
    source, target, person = two_records(served, api, centre)
    itself = {**person, "id": source, "link": [{"other": {"reference": f"Patient/{source}"}, "type": "seealso"}]}
    assert api.put(f"{served.base}/Patient/{source}", json=itself).status_code == 200
    answer = merged(served, api, source, target)
    assert (answer.status_code, api.get(f"{served.base}/Patient/{source}").json()["meta"]["versionId"]) == (200, "3")


def test_a_moved_resource_keeps_its_history(served: Served, api: Api, centre: Api) -> None:
    source, target, _ = two_records(served, api, centre)
    stay = encounter_of(served, api, source)
    merged(served, api, source, target)
    first = api.get(f"{served.base}/Encounter/{stay}/_history/1").json()
    assert first["subject"]["reference"] == f"Patient/{source}"


def test_a_search_by_the_target_finds_the_moved_encounter(served: Served, api: Api, centre: Api) -> None:
    source, target, _ = two_records(served, api, centre)
    stay = encounter_of(served, api, source)
    merged(served, api, source, target)
    found = api.get(f"{served.base}/Encounter", params={"subject": f"Patient/{target}"}).json()
    assert [entry["resource"]["id"] for entry in found.get("entry", [])] == [stay]


def test_the_source_is_inactive_and_replaced_by_the_target(served: Served, api: Api, centre: Api) -> None:
    source, target, _ = two_records(served, api, centre)
    merged(served, api, source, target)
    record = api.get(f"{served.base}/Patient/{source}").json()
    link = {"other": {"reference": f"Patient/{target}"}, "type": "replaced-by"}
    assert (record["active"], record["link"]) == (False, [link])


def test_the_target_replaces_the_source(served: Served, api: Api, centre: Api) -> None:
    source, target, _ = two_records(served, api, centre)
    result = merged(served, api, source, target).json()
    answered = next(p["resource"] for p in result["parameter"] if p["name"] == "result")
    assert answered["link"] == [{"other": {"reference": f"Patient/{source}"}, "type": "replaces"}]


def test_a_result_patient_becomes_the_targets_content(served: Served, api: Api, centre: Api) -> None:
    source, target, person = two_records(served, api, centre)
    result = {"name": "result-patient", "resource": {**person, "id": target, "maritalStatus": None}}
    del result["resource"]["maritalStatus"]
    merged(served, api, source, target, result)
    assert "maritalStatus" not in api.get(f"{served.base}/Patient/{target}").json()


def test_a_copied_identifier_keeps_its_contained_assigner_by_name(served: Served, api: Api, centre: Api) -> None:
    person = new_patient()
    target = api.post(f"{served.base}/Patient", json=person).json()["id"]
    local = {"system": "urn:oid:1.2.3.4.5.99", "value": "X-1", "assigner": {"reference": "#a1"}}
    second = {
        **person,
        "contained": [{"resourceType": "Organization", "id": "a1", "name": "某医院"}],
        "identifier": [*person["identifier"], local],
    }
    source = centre.post(f"{served.base}/Patient", json=second)
    assert source.status_code == 201, source.text
    merged(served, api, source.json()["id"], target)
    copied = [i for i in api.get(f"{served.base}/Patient/{target}").json()["identifier"] if i["value"] == "X-1"]
    assert copied == [{"system": "urn:oid:1.2.3.4.5.99", "value": "X-1", "assigner": {"display": "某医院"}}]


def test_the_merge_is_recorded_in_a_provenance(served: Served, api: Api, centre: Api) -> None:
    source, target, _ = two_records(served, api, centre)
    merged(served, api, source, target)
    found = api.get(f"{served.base}/Provenance", params={"target": f"Patient/{target}"}).json()
    activities = [e["resource"]["activity"]["coding"][0]["code"] for e in found.get("entry", [])]
    assert activities == ["merge"]


def test_the_merges_provenance_has_a_narrative(served: Served, api: Api, centre: Api) -> None:
    """Without one, dom-6 warned of every merge's Provenance."""
    source, target, _ = two_records(served, api, centre)
    merged(served, api, source, target)
    found = api.get(f"{served.base}/Provenance", params={"target": f"Patient/{target}"}).json()
    record = {k: v for k, v in found["entry"][0]["resource"].items() if k != "meta"}
    outcome = api.post(f"{served.base}/Provenance/$validate", json=record).json()
    assert [i for i in outcome["issue"] if "dom-6" in i["details"]["text"]] == []


def versioned_encounter_of(served: Served, api: Api, person: str) -> str:
    """A visit naming the version 1 of ``person``'s record: that version it stays about."""
    stay = {
        **example("yy-encounter/valid-health-check-2026.json"),
        "subject": {"reference": f"Patient/{person}/_history/1"},
    }
    del stay["id"]
    answer = api.post(f"{served.base}/Encounter", json=stay)
    assert answer.status_code == 201, answer.text
    return answer.json()["id"]


def test_the_provenance_names_only_versions_there_are(served: Served, api: Api, centre: Api) -> None:
    source, target, _ = two_records(served, api, centre)
    versioned_encounter_of(served, api, source)
    merged(served, api, source, target)
    found = api.get(f"{served.base}/Provenance", params={"target": f"Patient/{target}"}).json()
    named = [t["reference"] for e in found["entry"] for t in e["resource"]["target"]]
    assert {n: api.get(f"{served.base}/{n}").status_code for n in named} == dict.fromkeys(named, 200)


def test_a_versioned_referrer_is_not_said_to_be_rewritten(served: Served, api: Api, centre: Api) -> None:
    source, target, _ = two_records(served, api, centre)
    stay = versioned_encounter_of(served, api, source)
    answer = merged(served, api, source, target).json()
    outcome = next(p["resource"] for p in answer["parameter"] if p["name"] == "outcome")
    assert [i for i in outcome["issue"] if f"Encounter/{stay}" in i["details"]["text"]] == []


def test_records_may_be_named_by_identifier(served: Served, api: Api, centre: Api) -> None:
    source, target, person = two_records(served, api, centre)
    record_number = next(i for i in person["identifier"] if i["system"] != ID_CARD)
    api.put(f"{served.base}/Patient/{target}", json={**person, "id": target, "identifier": [person["identifier"][0]]})
    body = {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "source-patient-identifier", "valueIdentifier": record_number},
            {"name": "target-patient", "valueReference": {"reference": f"Patient/{target}"}},
        ],
    }
    api.post(f"{served.base}/Patient/$merge", json=body)
    assert api.get(f"{served.base}/Patient/{source}").json()["active"] is False


def test_an_identifier_a_merged_record_keeps_names_its_survivor(served: Served, api: Api, centre: Api) -> None:
    source, target, person = two_records(served, api, centre)
    record_number = next(i for i in person["identifier"] if i["system"] != ID_CARD)
    merged(served, api, source, target)  # both now carry the record number
    third = centre.post(
        f"{served.base}/Patient",
        json={**person, "identifier": [i for i in person["identifier"] if i["system"] == ID_CARD]},
    )
    body = {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "source-patient", "valueReference": {"reference": f"Patient/{third.json()['id']}"}},
            {"name": "target-patient-identifier", "valueIdentifier": record_number},
        ],
    }
    api.post(f"{served.base}/Patient/$merge", json=body)
    link = {"other": {"reference": f"Patient/{target}"}, "type": "replaced-by"}
    assert api.get(f"{served.base}/Patient/{third.json()['id']}").json().get("link") == [link]


# -- preview -----------------------------------------------------------------------------------
def test_a_preview_changes_nothing(served: Served, api: Api, centre: Api) -> None:
    source, target, _ = two_records(served, api, centre)
    stay = encounter_of(served, api, source)
    answer = merged(served, api, source, target, {"name": "preview", "valueBoolean": True})
    after = (api.get(f"{served.base}/Encounter/{stay}").json()["subject"]["reference"], answer.status_code)
    assert after == (f"Patient/{source}", 200)


def test_a_preview_says_what_would_change(served: Served, api: Api, centre: Api) -> None:
    source, target, _ = two_records(served, api, centre)
    stay = encounter_of(served, api, source)
    answer = merged(served, api, source, target, {"name": "preview", "valueBoolean": True}).json()
    outcome = next(p["resource"] for p in answer["parameter"] if p["name"] == "outcome")
    said = [(i["details"]["coding"][0]["code"], i["details"]["text"]) for i in outcome["issue"]]
    assert [code for code, text in said if f"Encounter/{stay}" in text] == ["merge.rewrites"]


def test_a_preview_says_a_resource_naming_the_source_in_an_extension_would_change(
    served: Served, api: Api, centre: Api
) -> None:
    source, target, _ = two_records(served, api, centre)
    notice = notice_naming(served, api, source, "extension")
    answer = merged(served, api, source, target, {"name": "preview", "valueBoolean": True}).json()
    outcome = next(p["resource"] for p in answer["parameter"] if p["name"] == "outcome")
    said = [(i["details"]["coding"][0]["code"], i["details"]["text"]) for i in outcome["issue"]]
    assert [code for code, text in said if f"Basic/{notice}" in text] == ["merge.rewrites"]


# -- the identity index ------------------------------------------------------------------------
def test_a_conditional_create_of_the_persons_number_finds_the_target(served: Served, api: Api, centre: Api) -> None:
    source, target, person = two_records(served, api, centre)
    merged(served, api, source, target)
    condition = f"identifier={ID_CARD}|{id_card(person)}"
    answer = api.post(f"{served.base}/Patient", json=person, headers={"If-None-Exist": condition})
    assert (answer.status_code, answer.json()["id"]) == (200, target)


def test_the_sources_numbers_now_name_the_target(served: Served, api: Api, centre: Api) -> None:
    source, target, person = two_records(served, api, centre)
    merged(served, api, source, target)
    store = open_store(served.database_url, upgrade=False)
    try:
        with store.reading() as tx:
            holders = {tx.identity.person_of(key) for key in match_keys(person)}
    finally:
        store.close()
    assert holders == {target}


def test_the_identity_conflict_of_the_pair_is_resolved(served: Served, api: Api, centre: Api) -> None:
    source, target, _ = two_records(served, api, centre)
    merged(served, api, source, target)
    store = open_store(served.database_url, upgrade=False)
    try:
        with store.reading() as tx:
            pair = {f"Patient/{source}", f"Patient/{target}"}
            entries = [e for e in tx.conflicts.entries() if pair <= {e.get("person"), e.get("offered")}]
    finally:
        store.close()
    assert [entry["resolved"]["into"] for entry in entries] == [f"Patient/{target}"]


# -- after the merge ---------------------------------------------------------------------------
def visit_of(person: str) -> dict[str, Any]:
    stay = {**example("yy-encounter/valid-health-check-2026.json"), "subject": {"reference": f"Patient/{person}"}}
    del stay["id"]
    return stay


def test_a_new_visit_naming_the_merged_record_is_refused(served: Served, api: Api, centre: Api) -> None:
    source, target, _ = two_records(served, api, centre)
    merged(served, api, source, target)
    answer = api.post(f"{served.base}/Encounter", json=visit_of(source))
    assert refusal(answer) == (422, "merge.replaced-patient", ["Encounter.subject.reference"])


def test_a_visit_naming_the_merged_record_is_refused_without_the_survivor_to_a_non_reader(
    served: Served, api: Api, centre: Api, client_key: Any
) -> None:
    """A client that may not read people is not told which record the person is kept under."""
    source, target, _ = two_records(served, api, centre)
    merged(served, api, source, target)
    add_client(served.database_url, "merge-visit-writer", key=client_key, scope="system/Encounter.c")
    with Api(served.base, "merge-visit-writer", client_key, "system/Encounter.c") as writer:
        answer = writer.post(f"{served.base}/Encounter", json=visit_of(source))
    assert (refusal(answer), target in answer.text) == (
        (422, "merge.replaced-patient-unseen", ["Encounter.subject.reference"]),
        False,
    )


def test_a_transaction_naming_the_merged_record_is_refused(served: Served, api: Api, centre: Api) -> None:
    source, target, _ = two_records(served, api, centre)
    merged(served, api, source, target)
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [{"resource": visit_of(source), "request": {"method": "POST", "url": "Encounter"}}],
    }
    answer = api.post(f"{served.base}", json=bundle)
    assert refusal(answer) == (422, "merge.replaced-patient", ["Bundle.entry[0].resource.subject.reference"])


def test_the_merged_record_cannot_be_brought_back(served: Served, api: Api, centre: Api) -> None:
    source, target, person = two_records(served, api, centre)
    merged(served, api, source, target)
    answer = api.put(f"{served.base}/Patient/{source}", json={**person, "id": source, "active": True})
    assert code_of(answer) == (422, "merge.replaced-patient")


def test_the_merged_record_cannot_be_deleted(served: Served, api: Api, centre: Api) -> None:
    """Not even once the survivor no longer links to it: the merge's Provenance still does."""
    source, target, _ = two_records(served, api, centre)
    survivor = next(
        p["resource"] for p in merged(served, api, source, target).json()["parameter"] if p["name"] == "result"
    )
    unlinked = {k: v for k, v in survivor.items() if k not in ("meta", "link")}
    assert api.put(f"{served.base}/Patient/{target}", json=unlinked).status_code == 200
    answer = api.delete(f"{served.base}/Patient/{source}")
    assert refusal(answer) == (409, "merge.source-delete", ["Patient.link[0]"])


def test_the_survivor_may_still_be_updated(served: Served, api: Api, centre: Api) -> None:
    """Its ``replaces`` link names the merged record, as it should."""
    source, target, _ = two_records(served, api, centre)
    survivor = next(
        p["resource"] for p in merged(served, api, source, target).json()["parameter"] if p["name"] == "result"
    )
    answer = api.put(f"{served.base}/Patient/{target}", json={k: v for k, v in survivor.items() if k != "meta"})
    assert answer.status_code == 200, answer.text


# -- refusals ----------------------------------------------------------------------------------
def test_a_client_of_another_role_is_refused(served: Served, api: Api, client_key: Any) -> None:
    add_client(served.database_url, "merge-hospital", key=client_key, role="hospital")
    with Api(served.base, "merge-hospital", client_key) as hospital:
        assert code_of(merged(served, hospital, "a", "b")) == (403, "http.merge-role")


def test_an_unknown_source_is_not_found_at_its_parameter(served: Served, api: Api) -> None:
    target = api.post(f"{served.base}/Patient", json=new_patient()).json()["id"]
    answer = merged(served, api, "no-such-person", target)
    assert refusal(answer) == (404, "http.not-found", ["Parameters.parameter[0].valueReference"])


def test_an_unknown_target_is_not_found_at_its_parameter(served: Served, api: Api) -> None:
    source = api.post(f"{served.base}/Patient", json=new_patient()).json()["id"]
    answer = merged(served, api, source, "no-such-person")
    assert refusal(answer) == (404, "http.not-found", ["Parameters.parameter[1].valueReference"])


def test_merging_a_record_into_itself_is_refused(served: Served, api: Api) -> None:
    person = api.post(f"{served.base}/Patient", json=new_patient()).json()["id"]
    assert code_of(merged(served, api, person, person)) == (422, "merge.same-patient")


def test_a_source_merged_already_is_refused(served: Served, api: Api, centre: Api) -> None:
    source, target, _ = two_records(served, api, centre)
    merged(served, api, source, target)
    other = api.post(f"{served.base}/Patient", json=new_patient()).json()["id"]
    assert code_of(merged(served, api, source, other)) == (422, "merge.already-merged")


def test_a_result_patient_of_another_id_is_refused(served: Served, api: Api, centre: Api) -> None:
    source, target, person = two_records(served, api, centre)
    answer = merged(served, api, source, target, {"name": "result-patient", "resource": {**person, "id": source}})
    assert refusal(answer) == (400, "merge.result-id", ["Parameters.parameter[2].resource.id"])


def test_an_unknown_parameter_is_refused_at_its_place(served: Served, api: Api) -> None:
    answer = merged(served, api, "a", "b", {"name": "delete-source", "valueBoolean": True})
    assert refusal(answer) == (400, "http.unsupported-parameter", ["Parameters.parameter[2]"])


def test_a_merge_a_moved_resource_would_not_survive_changes_nothing(served: Served, api: Api) -> None:
    """The visit is dated before the target's birth: rewritten, it would break the after-birth
    rule, so the whole merge is refused and the visit, and the source, stay as they were."""
    source = api.post(f"{served.base}/Patient", json=new_patient()).json()["id"]
    younger = api.post(f"{served.base}/Patient", json=born_on(new_patient(), date(2026, 7, 1)))
    assert younger.status_code == 201, younger.text
    cover = coverage_of(served, api, source)  # fine after the merge, and so written first
    stay = encounter_of(served, api, source)
    answer = merged(served, api, source, younger.json()["id"])
    kept = [
        api.get(f"{served.base}/{path}").json()["meta"]["versionId"]
        for path in (f"Coverage/{cover}", f"Encounter/{stay}", f"Patient/{source}")
    ]
    assert (code_of(answer), kept) == ((422, "merge.referrer-invalid"), ["1", "1", "1"])


def test_a_refused_rewrite_is_located_at_the_source_parameter(served: Served, api: Api) -> None:
    source = api.post(f"{served.base}/Patient", json=new_patient()).json()["id"]
    younger = api.post(f"{served.base}/Patient", json=born_on(new_patient(), date(2026, 7, 1))).json()["id"]
    encounter_of(served, api, source)
    answer = merged(served, api, source, younger)
    assert refusal(answer) == (422, "merge.referrer-invalid", ["Parameters.parameter[0].valueReference"])


def test_a_result_patient_born_after_a_moved_visit_is_refused_at_its_birth_date(
    served: Served, api: Api, centre: Api
) -> None:
    source, target, person = two_records(served, api, centre)
    encounter_of(served, api, source)  # 2026-06-15
    later = {"name": "result-patient", "resource": {**born_on(person, date(2026, 7, 1)), "id": target}}
    answer = merged(served, api, source, target, later)
    where = [
        i.get("expression") for i in answer.json()["issue"] if i["details"]["coding"][0]["code"].startswith("rule.")
    ]
    assert (answer.status_code, where) == (422, [["Parameters.parameter[2].resource.birthDate"]])


def test_a_preview_refuses_a_result_patient_born_after_a_moved_visit(served: Served, api: Api, centre: Api) -> None:
    source, target, person = two_records(served, api, centre)
    encounter_of(served, api, source)  # 2026-06-15
    later = {"name": "result-patient", "resource": {**born_on(person, date(2026, 7, 1)), "id": target}}
    answer = merged(served, api, source, target, later, {"name": "preview", "valueBoolean": True})
    where = [
        i.get("expression") for i in answer.json()["issue"] if i["details"]["coding"][0]["code"].startswith("rule.")
    ]
    assert (answer.status_code, where) == (422, [["Parameters.parameter[2].resource.birthDate"]])


# -- how it is offered -------------------------------------------------------------------------
def test_the_capability_statement_offers_merge_on_patient(served: Served, api: Api) -> None:
    statement = api.get(f"{served.base}/metadata").json()
    patient = next(r for r in statement["rest"][0]["resource"] if r["type"] == "Patient")
    assert {"name": "merge", "definition": "http://fhir.yiyang.cn/OperationDefinition/Patient-merge"} in patient[
        "operation"
    ]


def test_a_merge_is_audited_as_the_operation(served: Served, api: Api) -> None:
    api.post(
        f"{served.base}/Patient/$merge",
        data=json.dumps({"resourceType": "Parameters"}),
        headers={"Content-Type": "application/fhir+json"},
    )
    assert audited(served, api, "$merge") != []


def elder_file(person: dict[str, Any]) -> bytes:
    """An elderly-care platform's 老人档案 export holding the person by their 身份证号."""
    number = id_card(person)
    elder = {
        "elderId": f"YL{number[:6]}{number[-6:]}",
        "elderName": person["name"][0]["text"],
        "idCardNo": number,
        "gender": "男" if person["gender"] == "male" else "女",
        "birthday": person["birthDate"],
        "nation": "汉族",
        "address": {"detail": person["address"][0]["text"], "areaCode": number[:6]},
        "archiveDate": "2026-11-02",
    }
    return json.dumps({"code": 200, "msg": "操作成功", "data": [elder]}, ensure_ascii=False).encode()


def test_a_later_ingest_of_the_persons_number_lands_on_the_target(served: Served, api: Api, centre: Api) -> None:
    source, target, person = two_records(served, api, centre)
    merged(served, api, source, target)
    answer = api.post(
        f"{served.base}/$ingest?source=elderly-care&filename=老人档案.json",
        data=elder_file(person),
        headers={"Content-Type": "application/json"},
    ).json()
    landed = [
        part["valueReference"]["reference"]
        for record in answer["parameter"]
        if record["name"] == "record"
        for part in record["part"]
        if part["name"] == "resource" and part["valueReference"]["reference"].startswith("Patient/")
    ]
    assert landed == [f"Patient/{target}"], json.dumps(answer, ensure_ascii=False)[:2000]


def test_merge_is_offered_by_post_alone(served: Served, api: Api) -> None:
    """A GET would otherwise be the read of a Patient with the id "$merge"."""
    answer = api.get(f"{served.base}/Patient/$merge")
    assert (answer.status_code, answer.headers["Allow"]) == (405, "POST")

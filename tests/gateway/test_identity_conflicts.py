"""``$identity-conflicts`` over HTTP against a real server on both databases: the 主索引 staff
find the two records of one person an elderly-care platform made beside a holder it may not
see, merge them, and see the entry move from the open list to the resolved one."""

from __future__ import annotations

import base64
import json
import re
from typing import Any

import pytest
import requests

from tests.conftest import TEST_CLIENT, Api, Served, add_client, audited, running_server
from tests.gateway import test_patient_merge as merging
from tests.gateway.test_api import id_card, new_patient

OPERATION = "$identity-conflicts"
LENIENT = {"Prefer": "handling=lenient"}
centre = merging.centre  # the elderly-care platform's session, which makes the second record


def listed(served: Served, api: Api, **params: str) -> requests.Response:
    return api.get(f"{served.base}/{OPERATION}", params=params)


def conflicts(answer: dict[str, Any]) -> list[dict[str, list[Any]]]:
    """Each conflict part's parts, by name: the values of each (a reference's text)."""
    found = []
    for parameter in answer.get("parameter", []):
        if parameter["name"] != "conflict":
            continue
        parts: dict[str, list[Any]] = {}
        for part in parameter["part"]:
            value = next(v for k, v in part.items() if k.startswith("value"))
            parts.setdefault(part["name"], []).append(value["reference"] if isinstance(value, dict) else value)
        found.append(parts)
    return found


def people_listed(served: Served, api: Api, patient: str, status: str = "open") -> list[list[str]]:
    answer = listed(served, api, patient=f"Patient/{patient}", status=status)
    assert answer.status_code == 200, answer.text
    return [entry["patient"] for entry in conflicts(answer.json())]


def refusal(answer: requests.Response) -> tuple[int, str, list[str]]:
    issue = answer.json()["issue"][0]
    return answer.status_code, issue["details"]["coding"][0]["code"], issue.get("expression", [])


# -- what the staff find ---------------------------------------------------------------------
def test_a_pair_made_beside_a_hidden_holder_is_listed_open(served: Served, api: Api, centre: Api) -> None:
    first, second, _ = merging.two_records(served, api, centre)
    assert people_listed(served, api, second) == [[f"Patient/{first}", f"Patient/{second}"]]


def test_an_entry_says_what_was_kept_and_what_offered(served: Served, api: Api, centre: Api) -> None:
    first, second, _ = merging.two_records(served, api, centre)
    [entry] = conflicts(listed(served, api, patient=f"Patient/{second}").json())
    assert (entry["kept"], entry["offered"], entry["source"]) == ([f"Patient/{first}"], [f"Patient/{second}"], ["rest"])


def test_an_entry_says_when_it_was_recorded(served: Served, api: Api, centre: Api) -> None:
    _, second, _ = merging.two_records(served, api, centre)
    [entry] = conflicts(listed(served, api, patient=f"Patient/{second}").json())
    assert len(entry["recorded"]) == 1 and entry["recorded"][0].endswith("Z")


def test_after_a_merge_the_pair_is_listed_resolved_and_not_open(served: Served, api: Api, centre: Api) -> None:
    first, second, _ = merging.two_records(served, api, centre)
    assert merging.merged(served, api, second, first).status_code == 200
    found = (people_listed(served, api, second, "open"), people_listed(served, api, second, "resolved"))
    assert found == ([], [[f"Patient/{first}", f"Patient/{second}"]])


def test_a_resolved_entry_names_the_merge(served: Served, api: Api, centre: Api) -> None:
    first, second, _ = merging.two_records(served, api, centre)
    merging.merged(served, api, second, first)
    [entry] = conflicts(listed(served, api, patient=f"Patient/{second}", status="resolved").json())
    assert (entry["merged"], entry["into"]) == ([f"Patient/{second}"], [f"Patient/{first}"])


def test_patient_lists_only_the_entries_naming_it(served: Served, api: Api, centre: Api) -> None:
    first, _, _ = merging.two_records(served, api, centre)
    merging.two_records(served, api, centre)  # another person's pair
    found = conflicts(listed(served, api, patient=f"Patient/{first}").json())
    assert [f"Patient/{first}" in entry["patient"] for entry in found] == [True]


def test_patient_may_be_the_id_alone(served: Served, api: Api, centre: Api) -> None:
    first, _, _ = merging.two_records(served, api, centre)
    assert len(conflicts(listed(served, api, patient=first).json())) == 1


def test_pages_list_every_entry_once(served: Served, api: Api, centre: Api) -> None:
    for _ in range(3):
        merging.two_records(served, api, centre)
    whole = conflicts(listed(served, api, status="all", _count="1000").json())
    paged: list[dict[str, list[Any]]] = []
    page = listed(served, api, status="all", _count="2").json()
    while True:
        paged += conflicts(page)
        following = [p["valueUri"] for p in page.get("parameter", []) if p["name"] == "next"]
        if not following:
            break
        page = api.get(following[0]).json()
    assert paged == whole


def test_a_post_of_parameters_lists_as_the_get(served: Served, api: Api, centre: Api) -> None:
    first, second, _ = merging.two_records(served, api, centre)
    body = {"resourceType": "Parameters", "parameter": [{"name": "patient", "valueString": f"Patient/{second}"}]}
    answer = api.post(f"{served.base}/{OPERATION}", json=body).json()
    assert [entry["patient"] for entry in conflicts(answer)] == [[f"Patient/{first}", f"Patient/{second}"]]


# -- refusals --------------------------------------------------------------------------------
def test_a_client_of_another_role_is_refused(served: Served, client_key: Any) -> None:
    add_client(served.database_url, "conflicts-hospital", key=client_key, role="hospital")
    with Api(served.base, "conflicts-hospital", client_key) as hospital:
        assert refusal(listed(served, hospital))[:2] == (403, "http.identity-conflicts-role")


def test_an_unknown_parameter_is_refused_at_its_name(served: Served, api: Api) -> None:
    assert refusal(listed(served, api, person="Patient/a")) == (400, "http.unsupported-parameter", ["person"])


def test_an_unknown_parameter_is_ignored_when_the_client_prefers_lenient_handling(served: Served, api: Api) -> None:
    answer = api.get(f"{served.base}/{OPERATION}", params={"person": "Patient/a"}, headers=LENIENT)
    assert answer.status_code == 200, answer.text


def test_a_parameter_given_twice_is_refused_at_it(served: Served, api: Api) -> None:
    answer = api.get(f"{served.base}/{OPERATION}", params=[("status", "open"), ("status", "all")])
    assert refusal(answer) == (400, "http.repeated-parameter", ["status"])


def test_an_unknown_status_is_refused_at_it(served: Served, api: Api) -> None:
    assert refusal(listed(served, api, status="closed")) == (400, "http.unsupported-value", ["status"])


def test_a_patient_that_is_no_patient_reference_is_refused_at_it(served: Served, api: Api) -> None:
    refused = refusal(listed(served, api, patient="Organization/x"))
    assert refused == (400, "http.identity-conflicts-patient", ["patient"])


# the second carries 30 nines, digits the databases cannot compare with a 64-bit seq: a 500
@pytest.mark.parametrize(
    "token", ["Patient/x", base64.urlsafe_b64encode(b'["","' + b"9" * 30 + b'"]').decode().rstrip("=")]
)
def test_a_cursor_no_page_wrote_is_refused_at_it(served: Served, api: Api, token: str) -> None:
    assert refusal(listed(served, api, _after=token)) == (400, "http.not-a-page-cursor", ["_after"])


def test_a_put_is_refused_with_405(served: Served, api: Api) -> None:
    assert api.put(f"{served.base}/{OPERATION}", json={"resourceType": "Parameters"}).status_code == 405


# -- how it is offered -----------------------------------------------------------------------
def test_the_capability_statement_offers_it_at_system_level(served: Served, api: Api) -> None:
    statement = api.get(f"{served.base}/metadata").json()
    definition = "http://fhir.yiyang.cn/OperationDefinition/identity-conflicts"
    assert {"name": "identity-conflicts", "definition": definition} in statement["rest"][0]["operation"]


def test_a_province_publishing_under_its_own_base_serves_the_list(served: Served, client_key: Any) -> None:
    """The package's canonical URLs, the operation's definition among them, move to the base."""
    province = {"YIYANG_CANONICAL_BASE": "http://fhir.example-province.cn"}
    with running_server(served.database_url, env=province) as base, Api(base, TEST_CLIENT, client_key) as session:
        assert session.get(f"{base}/{OPERATION}").status_code == 200


def test_every_look_at_the_list_is_audited(served: Served, api: Api) -> None:
    listed(served, api, status="all")
    assert audited(served, api, OPERATION) != []


def test_the_trail_of_a_look_by_a_number_shaped_id_holds_no_number(served: Served, api: Api) -> None:
    """A Patient id may be a 身份证号; the audit trail masks it in the query it records."""
    number = id_card(new_patient())
    listed(served, api, patient=f"Patient/{number}")
    recorded = json.dumps(audited(served, api, OPERATION, "patient="), ensure_ascii=False)
    queries = [base64.b64decode(q).decode() for q in re.findall(r'"query": "([^"]*)"', recorded)]
    assert (recorded != "[]", any(number in text for text in [recorded, *queries])) == (True, False)

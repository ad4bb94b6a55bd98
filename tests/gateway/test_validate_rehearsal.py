"""``$validate`` in create and update modes tells what the write itself would refuse, over HTTP
against a real server on both databases: a person or an organisation the archive holds already,
a record number another person holds, a person the client does not serve.  Each refusal is
compared with the one the write answers: the same message id at the same FHIRPath."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from tests.conftest import Api, Served, add_client
from tests.gateway.test_access_http import centre_session
from tests.gateway.test_api import example, new_patient, post, put

HEALTH_RECORD = "urn:oid:2.16.156.10011.1.2"


@pytest.fixture(scope="module")
def archive(api: Api) -> Api:
    """张秀英 (served by the 金水区 centre through her home bed), 李建国 (served by no one),
    and the centre itself."""
    for relative in (
        "yy-organization/valid-yiyang-center.json",
        "yy-patient/valid-zhang-xiuying.json",
        "yy-patient/valid-li-jianguo-minimal.json",
        "yy-encounter/valid-home-bed.json",
    ):
        resource = example(relative)
        answer = put(api, f"{resource['resourceType']}/{resource['id']}", resource)
        assert answer.status_code in (200, 201), answer.text
    return api


@pytest.fixture(scope="module")
def centre(served: Served, archive: Api, client_key: Any) -> Iterator[Api]:
    """The centre's platform (role elderly-care), writing only about the people it serves."""
    yield from centre_session(served, client_key, "rehearsal-platform", "system/*.cruds")


def refusal(answer: requests.Response) -> tuple[str, list[str]] | None:
    """The first error of an OperationOutcome: its message id and FHIRPath."""
    for found in answer.json().get("issue", []):
        if found["severity"] in ("error", "fatal"):
            return found["details"]["coding"][0]["code"], found.get("expression", [])
    return None


def validated_and_written(api: Api, kind: str, resource: dict[str, Any]) -> tuple[Any, ...]:
    """$validate?mode=create then the POST: their statuses and refusals."""
    checked = post(api, f"{kind}/$validate?mode=create", resource)
    written = post(api, kind, resource)
    return checked.status_code, refusal(checked), written.status_code, refusal(written)


def without_id(relative: str) -> dict[str, Any]:
    resource = example(relative)
    resource.pop("id")
    return resource


def test_a_copy_of_a_person_is_refused_by_validate_as_by_the_create(archive: Api) -> None:
    checked, said, status, refused = validated_and_written(
        archive, "Patient", without_id("yy-patient/valid-zhang-xiuying.json")
    )
    assert (checked, said, status) == (200, refused, 409) and refused[0] == "http.duplicate-person"


def test_a_copy_of_an_organisation_is_refused_by_validate_as_by_the_create(archive: Api) -> None:
    checked, said, status, refused = validated_and_written(
        archive, "Organization", without_id("yy-organization/valid-yiyang-center.json")
    )
    assert (checked, said, status) == (200, refused, 409) and refused[0] == "http.duplicate-organization"


def test_a_record_number_of_another_person_is_refused_by_validate_as_by_the_create(archive: Api) -> None:
    number = {"system": HEALTH_RECORD, "value": "41010500100100917"}
    first, second = (new_patient() for _ in range(2))
    for person in (first, second):
        person["identifier"] = [*(i for i in person["identifier"] if i["system"] != HEALTH_RECORD), number]
    assert post(archive, "Patient", first).status_code == 201
    checked, said, status, refused = validated_and_written(archive, "Patient", second)
    assert (checked, said, status) == (200, refused, 409) and refused[0] == "http.number-of-another-person"


def test_an_observation_about_someone_unserved_is_refused_by_validate_as_by_the_create(centre: Api) -> None:
    observation = without_id("yy-observation-blood-pressure/valid-blood-pressure.json")
    observation["subject"] = {"reference": "Patient/li-jianguo"}
    observation.pop("encounter", None)
    checked, said, status, refused = validated_and_written(centre, "Observation", observation)
    assert (checked, said, status) == (200, refused, 403) and refused[0] == "http.forbidden-person"


def test_an_update_taking_another_persons_number_is_refused_by_validate_as_by_the_put(archive: Api) -> None:
    li = example("yy-patient/valid-li-jianguo-minimal.json")
    zhang = example("yy-patient/valid-zhang-xiuying.json")
    taken = copy.deepcopy(zhang)
    taken["id"] = li["id"]
    checked = post(archive, "Patient/li-jianguo/$validate", taken)
    written = put(archive, "Patient/li-jianguo", taken)
    assert (checked.status_code, refusal(checked), written.status_code) == (200, refusal(written), 409)


def test_a_rehearsed_create_leaves_nothing_behind(archive: Api) -> None:
    """The rehearsal's transaction is rolled back: the person it made is not there, and their
    numbers are no one's (the create made next is not refused as a copy of it)."""
    person = new_patient()
    checked = post(archive, "Patient/$validate?mode=create", person)
    assert (checked.status_code, refusal(checked), post(archive, "Patient", person).status_code) == (200, None, 201)


def test_a_client_that_may_not_create_is_told_so_rather_than_whom_the_archive_holds(
    served: Served, archive: Api, client_key: Any
) -> None:
    """The rehearsal reads the archive: a client with no create scope learns only that it
    may not create (the 403 its POST gets), not which Patient holds a 身份证号."""
    add_client(served.database_url, "rehearsal-reader", key=client_key, scope="system/Observation.rs")
    with Api(served.base, "rehearsal-reader", client_key, "system/Observation.rs") as reader:
        checked = post(reader, "Patient/$validate?mode=create", without_id("yy-patient/valid-zhang-xiuying.json"))
        written = post(reader, "Patient", without_id("yy-patient/valid-zhang-xiuying.json"))
    assert (checked.status_code, refusal(checked), written.status_code) == (200, refusal(written), 403)


def test_a_stored_instance_validated_by_get_foretells_no_write(served: Served, archive: Api, client_key: Any) -> None:
    """GET …/$validate judges the instance as it stands: a client that may only read it is
    not told that it may not update it."""
    add_client(served.database_url, "rehearsal-patient-reader", key=client_key, scope="system/Patient.rs")
    with Api(served.base, "rehearsal-patient-reader", client_key, "system/Patient.rs") as reader:
        checked = reader.get(f"{served.base}/Patient/zhang-xiuying/$validate", timeout=60)
    assert (checked.status_code, refusal(checked)) == (200, None)

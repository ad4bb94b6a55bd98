"""A write's refusal quotes no value of a record the client may not read, over HTTP against a
real server on both databases.  The rules reading the referenced record still refuse the write
(the archive keeps no contradiction), in a sibling message that leaves the hidden values out,
at the same FHIRPath."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests

from gateway import messages
from gateway.security.withheld import ANY_TYPE, UNSEEN, quoting
from gateway.storage import open_store
from profiles.registry import r4_resource_types
from tests.conftest import Api, Served, add_client
from tests.gateway.test_api import example, post, put
from tests.gateway.test_birth_date_moved import person, visit

BORN = "1949-12-31"  # 张秀英's birth date, which a client without Patient.r may not learn
VISIT = "unseen-visit"  # which a client without Encounter.r may not learn


@pytest.fixture(scope="module")
def archive(api: Api) -> Api:
    """张秀英 and a visit to her dated 1960-03-01."""
    answer = put(api, "Patient/zhang-xiuying", example("yy-patient/valid-zhang-xiuying.json"))
    assert answer.status_code in (200, 201), answer.text
    answer = put(api, f"Encounter/{VISIT}", {**visit("1960-03-01T09:30:00+08:00"), "id": VISIT})
    assert answer.status_code == 201, answer.text
    return api


def session(served: Served, key: Any, client_id: str, scope: str) -> Iterator[Api]:
    add_client(served.database_url, client_id, key=key, scope=scope)
    with Api(served.base, client_id, key, scope) as opened:
        yield opened


@pytest.fixture(scope="module")
def recorder(served: Served, archive: Api, client_key: Any) -> Iterator[Api]:
    """A device that records readings and reads nothing."""
    yield from session(served, client_key, "unseen-recorder", "system/Observation.c")


@pytest.fixture(scope="module")
def registrar(served: Served, archive: Api, client_key: Any) -> Iterator[Api]:
    """A registry that keeps people and reads none of their visits."""
    yield from session(served, client_key, "unseen-registrar", "system/Patient.cru")


def refused(answer: requests.Response) -> tuple[int, list[tuple[str, list[str]]]]:
    """The status and the errors (message id, FHIRPath) of a refused write."""
    issues = answer.json().get("issue", [])
    return answer.status_code, [(i["details"]["coding"][0]["code"], i.get("expression", [])) for i in issues]


def reading_of_1900() -> dict[str, Any]:
    reading = example("yy-observation-blood-pressure/valid-blood-pressure.json")
    reading.pop("id")
    reading["effectiveDateTime"] = "1900-06-15T09:00:00+08:00"
    return reading


def test_a_reading_before_birth_is_refused_without_the_birth_date_it_may_not_read(recorder: Api) -> None:
    answer = post(recorder, "Observation", reading_of_1900())
    assert (refused(answer), BORN in answer.text) == (
        (422, [("http.invalid-resource", []), ("rule.before-birth-unseen", ["Observation.effectiveDateTime"])]),
        False,
    )


def test_a_reading_before_birth_is_refused_with_the_birth_date_to_a_reader(archive: Api) -> None:
    answer = post(archive, "Observation", reading_of_1900())
    assert (refused(answer)[1][1], BORN in answer.text) == (
        ("rule.before-birth", ["Observation.effectiveDateTime"]),
        True,
    )


def test_a_birth_moved_past_visits_is_refused_without_naming_visits_it_may_not_read(registrar: Api) -> None:
    answer = put(registrar, "Patient/zhang-xiuying", person("1960-06-01"))
    assert (refused(answer), VISIT in answer.text) == (
        (422, [("http.invalid-resource", []), ("rule.birth-date-after-events-unseen", ["Patient.birthDate"])]),
        False,
    )


def test_each_message_quoting_another_record_has_a_sibling_in_both_languages() -> None:
    siblings = [messages.catalog().get(message_id + UNSEEN, {}) for message_id in quoting()]
    assert all({"zh-CN", "en"} <= set(sibling) for sibling in siblings)


def quoted_types() -> dict[str, str]:
    """Each catalogued message saying what it quotes, with the type it says."""
    return {message_id: entry["quotes"] for message_id, entry in messages.catalog().items() if "quotes" in entry}


def test_a_message_says_the_type_it_quotes_exactly_when_it_has_an_unseen_sibling() -> None:
    siblings = {message_id.removesuffix(UNSEEN) for message_id in messages.catalog() if message_id.endswith(UNSEEN)}
    assert set(quoted_types()) == siblings


def test_the_type_a_message_quotes_is_a_resource_type_or_any() -> None:
    assert {kind for kind in quoted_types().values() if kind != ANY_TYPE} <= r4_resource_types()


@pytest.fixture(scope="module")
def enroller(served: Served, archive: Api, client_key: Any) -> Iterator[Api]:
    """A registry that adds people and reads none."""
    yield from session(served, client_key, "unseen-enroller", "system/Patient.c")


def test_a_persons_own_death_before_birth_is_told_with_the_birth_date_it_wrote(enroller: Api) -> None:
    """The birth date a Patient's own dates are judged by is the one its writer sends."""
    born = person("1960-06-01")
    del born["id"]
    answer = post(enroller, "Patient", {**born, "deceasedDateTime": "1950-01-01"})
    assert refused(answer)[1][1:] == [("rule.before-birth", ["Patient.deceasedDateTime"])]


# -- a target the client may not read ----------------------------------------------------------
UNFIT = "unfit-for-yy-patient"  # a Patient stored as an older profile let it be: no name, no number


@pytest.fixture(scope="module")
def unfit(served: Served, archive: Api) -> str:
    """A Patient the archive holds that does not meet ``yy-patient``, which ``Encounter.subject``
    demands (stored as an older gateway, or one under ``warn``, left it)."""
    store = open_store(served.database_url, upgrade=False)
    try:
        with store.transaction() as tx:
            tx.resources.write({"resourceType": "Patient", "id": UNFIT, "gender": "female"})
    finally:
        store.close()
    return f"Patient/{UNFIT}"


@pytest.fixture(scope="module")
def visitor(served: Served, archive: Api, client_key: Any) -> Iterator[Api]:
    """A hospital's system that records visits and reads no one."""
    yield from session(served, client_key, "unseen-visitor", "system/Encounter.c")


def visit_to(subject: str) -> dict[str, Any]:
    return {**visit("2026-11-01T09:30:00+08:00"), "subject": {"reference": subject}}


def test_a_visit_tells_nothing_of_whether_a_patient_it_may_not_read_meets_its_profile(visitor: Api, unfit: str) -> None:
    """Judged by the Patient's content, the 201 or 422 told the writer whether a record it may
    not read meets ``yy-patient``: it is judged as a Patient the archive lacks would be."""
    subjects = ("Patient/zhang-xiuying", unfit, "Patient/no-one-at-all")
    answers = [refused(post(visitor, "Encounter", visit_to(subject))) for subject in subjects]
    assert answers == [answers[0]] * 3


def test_a_visit_to_a_patient_failing_its_profile_is_refused_to_a_reader(archive: Api, unfit: str) -> None:
    assert refused(post(archive, "Encounter", visit_to(unfit))) == (
        422,
        [("http.invalid-resource", []), ("profile.reference-target-profile", ["Encounter.subject"])],
    )

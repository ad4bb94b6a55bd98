"""A write's refusal quotes no value of a record the client may not read, over HTTP against a
real server on both databases.  The rules reading the referenced record still refuse the write
(the archive keeps no contradiction), in a sibling message that leaves the hidden values out,
at the same FHIRPath."""

from __future__ import annotations

import time
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


def test_validating_a_reading_before_birth_tells_what_its_write_is_refused_for(recorder: Api) -> None:
    """A client that may make the write ``$validate`` foretells is judged as that write is:
    read only as far as its scopes read, the Patient was one the archive lacked, and the
    reading its POST is refused for (``rule.before-birth-unseen``) passed."""
    validated, written = (post(recorder, path, reading_of_1900()) for path in ("Observation/$validate", "Observation"))
    assert refused(validated)[1][-1:] == refused(written)[1][-1:]


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


def stored_directly(served: Served, resource: dict[str, Any]) -> str:
    """Into the server's archive without validation, as an older gateway (or one under
    ``warn``, or a merge) left it; its reference."""
    store = open_store(served.database_url, upgrade=False)
    try:
        with store.transaction() as tx:
            tx.resources.write(resource)
    finally:
        store.close()
    return f"{resource['resourceType']}/{resource['id']}"


@pytest.fixture(scope="module")
def unfit(served: Served, archive: Api) -> str:
    """A Patient the archive holds that does not meet ``yy-patient``, which ``Encounter.subject``
    demands."""
    return stored_directly(served, {"resourceType": "Patient", "id": UNFIT, "gender": "female"})


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


# -- what the auditors' record keeps -----------------------------------------------------------
MERGED = "merged-away"


@pytest.fixture(scope="module")
def auditor(served: Served, archive: Api, client_key: Any) -> Iterator[Api]:
    add_client(served.database_url, "unseen-auditor", key=client_key, scope="system/AuditEvent.rs", role="auditor")
    with Api(served.base, "unseen-auditor", client_key, "system/AuditEvent.rs") as opened:
        yield opened


@pytest.fixture(scope="module")
def merged(served: Served, archive: Api) -> str:
    """A Patient merged into 张秀英, as Patient/$merge leaves it."""
    link = {"other": {"reference": "Patient/zhang-xiuying"}, "type": "replaced-by"}
    return stored_directly(served, {"resourceType": "Patient", "id": MERGED, "active": False, "link": [link]})


@pytest.fixture(scope="module")
def remover(served: Served, archive: Api, client_key: Any) -> Iterator[Api]:
    """A registry that removes people and reads none of their visits."""
    yield from session(served, client_key, "unseen-remover", "system/Patient.d")


def newest_refused(served: Served, client_id: str) -> int | None:
    """The newest exchange of ``client_id`` with an error (a batch is answered 200)."""
    store = open_store(served.database_url, upgrade=False)
    try:
        with store.reading() as tx:
            row = tx.sql.one("SELECT MAX(id) FROM exchange WHERE client = ? AND errors > 0", (client_id,))
    finally:
        store.close()
    return row[0] if row else None


def reported(served: Served, auditor: Api, client_id: str) -> list[tuple[str, str]]:
    """The findings (rule, English text) of the auditors' report of the newest refused exchange
    of ``client_id``, once a worker's buffer has brought it to the store (each appends its
    records every 0.2 s)."""
    deadline = time.monotonic() + 20
    while (newest := newest_refused(served, client_id)) is None:
        assert time.monotonic() < deadline, f"no refused exchange of {client_id} reached the store in 20 s"
        time.sleep(0.2)
    page = f"{served.base.removesuffix('/fhir')}/reports/exchanges/{newest}"
    document = auditor.get(page, params={"_format": "json", "lang": "en"}, timeout=60).json()
    return [(finding["rule"], finding["text"]) for finding in document["findings"]]


def test_the_auditors_read_the_birth_date_a_reading_was_refused_for(
    served: Served, recorder: Api, auditor: Api
) -> None:
    told = refused(post(recorder, "Observation", reading_of_1900()))[1][1:]
    kept = [(rule, BORN in text) for rule, text in reported(served, auditor, recorder.client_id)]
    assert (told, kept) == (
        [("rule.before-birth-unseen", ["Observation.effectiveDateTime"])],
        [("rule.before-birth", True)],
    )


def test_the_auditors_read_the_visits_a_moved_birth_date_was_refused_for(
    served: Served, registrar: Api, auditor: Api
) -> None:
    told = refused(put(registrar, "Patient/zhang-xiuying", person("1960-06-01")))[1][1:]
    kept = [(rule, VISIT in text) for rule, text in reported(served, auditor, registrar.client_id)]
    assert (told, kept) == (
        [("rule.birth-date-after-events-unseen", ["Patient.birthDate"])],
        [("http.invalid-resource", False), ("rule.birth-date-after-events", True)],
    )


def test_the_auditors_read_whom_a_patient_merged_away_became(
    served: Served, visitor: Api, merged: str, auditor: Api
) -> None:
    told = refused(post(visitor, "Encounter", visit_to(merged)))[1]
    kept = [(rule, "zhang-xiuying" in text) for rule, text in reported(served, auditor, visitor.client_id)]
    assert (told, kept) == (
        [("merge.replaced-patient-unseen", ["Encounter.subject.reference"])],
        [("merge.replaced-patient", True)],
    )


def test_the_auditors_read_what_a_refused_delete_is_referred_to_by(served: Served, remover: Api, auditor: Api) -> None:
    told = refused(remover.delete(f"{served.base}/Patient/zhang-xiuying", timeout=60))[1]
    kept = [(rule, "Encounter/" in text) for rule, text in reported(served, auditor, remover.client_id)]
    assert (told, kept) == ([("http.delete-referenced-unseen", [])], [("http.delete-referenced", True)])


@pytest.fixture(scope="module")
def batcher(served: Served, archive: Api, client_key: Any) -> Iterator[Api]:
    """A hospital's system that sends its visits in batches and reads no one."""
    yield from session(served, client_key, "unseen-batcher", "system/Encounter.c")


def test_the_auditors_read_whom_a_batch_entrys_patient_became(
    served: Served, batcher: Api, merged: str, auditor: Api
) -> None:
    entry = {"resource": visit_to(merged), "request": {"method": "POST", "url": "Encounter"}}
    answer = post(batcher, "", {"resourceType": "Bundle", "type": "batch", "entry": [entry]})
    outcome = answer.json()["entry"][0]["response"]["outcome"]
    told = [issue["details"]["coding"][0]["code"] for issue in outcome["issue"]]
    kept = [(rule, "zhang-xiuying" in text) for rule, text in reported(served, auditor, batcher.client_id)]
    assert (told, kept) == (["merge.replaced-patient-unseen"], [("merge.replaced-patient", True)])

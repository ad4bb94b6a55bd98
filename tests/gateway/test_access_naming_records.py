"""Records naming records (gateway/security/naming_records.json), over HTTP on both databases:
a record of 张秀英 (served by the centre) naming a record of 李建国 (served by no one) through a
reference would show the centre his record's id, so it answers 404 and is in no search or
``$everything`` of hers; one naming a record the archive never stored tells nothing about
anyone, and is shown as any record of hers."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.conftest import Api, Served
from tests.gateway.test_access_http import example, home  # noqa: F401 - the centre's session, a fixture

Resource = dict[str, Any]


def _of_li(resource: Resource, record_id: str, person: str = "subject") -> Resource:
    return {**copy.deepcopy(resource), "id": record_id, person: {"reference": "Patient/li-jianguo"}}


#: 李建国's records the residents' records below name (his blood pressure, bp-li, is the
#: ``home`` fixture's): a finished check-up at a community health centre, his hospice episode,
#: a procedure, a referral and a document
STRANGERS_RECORDS = [
    _of_li(example("yy-encounter/valid-health-check-2026.json"), "check-up-li"),
    example("yy-episodeofcare/valid-hospice-finished.json"),
    {
        "resourceType": "Procedure",
        "id": "procedure-li",
        "status": "completed",
        "subject": {"reference": "Patient/li-jianguo"},
    },
    _of_li(example("yy-servicerequest-referral/valid-upward-stroke.json"), "referral-li"),
    _of_li(example("yy-documentreference/valid-discharge-summary-url.json"), "document-li"),
]


def _reading(**naming: Any) -> Resource:
    return {**example("yy-observation-blood-pressure/valid-blood-pressure.json"), "id": "bp-naming", **naming}


def _procedure(**naming: Any) -> Resource:
    base = {"resourceType": "Procedure", "id": "procedure-naming", "status": "completed"}
    return {**base, "subject": {"reference": "Patient/zhang-xiuying"}, **naming}


def _medication(**naming: Any) -> Resource:
    return {
        "resourceType": "MedicationStatement",
        "id": "medication-naming",
        "status": "active",
        "medicationCodeableConcept": {"text": "硝苯地平控释片"},
        "subject": {"reference": "Patient/zhang-xiuying"},
        **naming,
    }


def _message(**naming: Any) -> Resource:
    base = {"resourceType": "Communication", "id": "message-naming", "status": "completed"}
    return {**base, "subject": {"reference": "Patient/zhang-xiuying"}, **naming}


def _from(relative: str, record_id: str, **naming: Any) -> Resource:
    return {**example(relative), "id": record_id, **naming}


def _of_zhang(kind: str, record_id: str, **content: Any) -> Resource:
    """A record of 张秀英 of a type the provincial package does not profile."""
    return {"resourceType": kind, "id": record_id, "subject": {"reference": "Patient/zhang-xiuying"}, **content}


def _document(target: str) -> Resource:
    document = _from("yy-composition-health-record/valid-zhang-xiuying.json", "health-record-naming")
    document["section"][1]["entry"].append({"reference": target})  # 健康体检
    return document


#: (the resident's record, the search finding her records of its type), named by the
#: reference parameter each case is about
CASES: dict[str, Callable[[str], Resource]] = {
    "Observation encounter": lambda target: _reading(encounter={"reference": target}),
    "Observation part-of": lambda target: _reading(partOf=[{"reference": target}]),
    "Observation based-on": lambda target: _reading(basedOn=[{"reference": target}]),
    "Observation focus": lambda target: _reading(focus=[{"reference": target}]),
    "Procedure part-of": lambda target: _procedure(partOf=[{"reference": target}]),
    "MedicationStatement part-of": lambda target: _medication(partOf=[{"reference": target}]),
    "Communication part-of": lambda target: _message(partOf=[{"reference": target}]),
    "QuestionnaireResponse part-of": lambda target: _from(
        "yy-questionnaireresponse-nursing-needs/valid-completed.json", "answers-naming", partOf=[{"reference": target}]
    ),
    "Task focus": lambda target: _from(
        "yy-task-referral/valid-downward-completed.json", "task-naming", focus={"reference": target}
    ),
    "Composition entry": _document,
    "Condition evidence-detail": lambda target: _from(
        "yy-condition/valid-hypertension.json", "condition-naming", evidence=[{"detail": [{"reference": target}]}]
    ),
    "DocumentReference relatesto": lambda target: _from(
        "yy-documentreference/valid-discharge-summary-url.json",
        "document-naming",
        relatesTo=[{"code": "appends", "target": {"reference": target}}],
    ),
    "Encounter episode-of-care": lambda target: _from(
        "yy-encounter/valid-health-check-2026.json", "check-up-naming", episodeOfCare=[{"reference": target}]
    ),
    "ServiceRequest based-on": lambda target: _from(
        "yy-servicerequest-referral/valid-upward-stroke.json", "referral-naming", basedOn=[{"reference": target}]
    ),
    "Communication based-on": lambda target: _message(basedOn=[{"reference": target}]),
    "ClinicalImpression investigation": lambda target: _of_zhang(
        "ClinicalImpression",
        "impression-naming",
        status="completed",
        investigation=[{"code": {"text": "体格检查"}, "item": [{"reference": target}]}],
    ),
    "List item": lambda target: _of_zhang(
        "List", "list-naming", status="current", mode="working", entry=[{"item": {"reference": target}}]
    ),
    "DocumentManifest item": lambda target: _of_zhang(
        "DocumentManifest", "manifest-naming", status="current", content=[{"reference": target}]
    ),
}
#: 李建国's record each case names
STRANGERS = {
    "Observation encounter": "Encounter/check-up-li",
    "Observation part-of": "Procedure/procedure-li",
    "Observation based-on": "ServiceRequest/referral-li",
    "Observation focus": "Observation/bp-li",
    "Procedure part-of": "Procedure/procedure-li",
    "MedicationStatement part-of": "Procedure/procedure-li",
    "Communication part-of": "Observation/bp-li",
    "QuestionnaireResponse part-of": "Procedure/procedure-li",
    "Task focus": "ServiceRequest/referral-li",
    "Composition entry": "Observation/bp-li",
    "Condition evidence-detail": "Observation/bp-li",
    "DocumentReference relatesto": "DocumentReference/document-li",
    "Encounter episode-of-care": "EpisodeOfCare/hospice-episode-2026",
    "ServiceRequest based-on": "ServiceRequest/referral-li",
    "Communication based-on": "ServiceRequest/referral-li",
    "ClinicalImpression investigation": "Observation/bp-li",
    "List item": "Observation/bp-li",
    "DocumentManifest item": "DocumentReference/document-li",
}


@pytest.fixture(scope="module")
def strangers(served: Served, api: Api, home: Api) -> None:  # noqa: F811 - the fixture imported above
    for resource in STRANGERS_RECORDS:
        answer = api.put(f"{served.base}/{resource['resourceType']}/{resource['id']}", json=resource)
        assert answer.status_code in (200, 201), answer.text


@pytest.fixture
def written(served: Served, api: Api) -> Iterator[Callable[[Resource], Resource]]:
    """Writes a record of 张秀英 as the operator, deleted when the test ends so that her other
    searches stay as they were."""
    done: list[Resource] = []

    def write(resource: Resource) -> Resource:
        answer = api.put(f"{served.base}/{resource['resourceType']}/{resource['id']}", json=resource)
        assert answer.status_code in (200, 201), answer.text
        done.append(resource)
        return resource

    yield write
    for resource in done:
        assert api.delete(f"{served.base}/{resource['resourceType']}/{resource['id']}").status_code in (200, 204)


def _found(served: Served, home: Api, resource: Resource) -> tuple[int, bool, bool]:  # noqa: F811
    """How the centre sees a record of 张秀英: its read's status, and whether her search of its
    type and her ``$everything`` hold it."""
    kind, record_id = resource["resourceType"], resource["id"]
    read = home.get(f"{served.base}/{kind}/{record_id}").status_code
    search = home.get(f"{served.base}/{kind}", params={"patient": "zhang-xiuying", "_count": 200}).json()
    everything = home.get(f"{served.base}/Patient/zhang-xiuying/$everything", params={"_count": 500}).json()
    return (
        read,
        record_id in [e["resource"]["id"] for e in search.get("entry", [])],
        f"{kind}/{record_id}"
        in [f"{e['resource']['resourceType']}/{e['resource']['id']}" for e in everything["entry"]],
    )


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_residents_record_naming_a_strangers_record_is_not_found(
    served: Served,
    home: Api,  # noqa: F811
    strangers: None,
    written: Callable[[Resource], Resource],
    case: str,
) -> None:
    """Shown, it told the centre the id of 李建国's record."""
    resource = written(CASES[case](STRANGERS[case]))
    assert _found(served, home, resource) == (404, False, False)


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_residents_record_naming_a_record_never_stored_is_shown(
    served: Served,
    home: Api,  # noqa: F811
    written: Callable[[Resource], Resource],
    case: str,
) -> None:
    """A reading whose visit never landed (never sent, or quarantined) names no one: hidden,
    the centre lost its resident's reading for nothing."""
    kind = STRANGERS[case].split("/")[0]
    resource = written(CASES[case](f"{kind}/never-stored"))
    assert _found(served, home, resource) == (200, True, True)


@pytest.mark.parametrize("naming", ["derivedFrom", "hasMember"])
def test_a_reading_naming_a_reading_never_stored_is_shown(
    served: Served,
    home: Api,  # noqa: F811
    written: Callable[[Resource], Resource],
    naming: str,
) -> None:
    """A reading whose source never landed (never sent, or quarantined) names no one: hidden,
    the centre lost its resident's reading for nothing."""
    resource = written(_reading(**{naming: [{"reference": "Observation/never-stored"}]}))
    assert _found(served, home, resource) == (200, True, True)


def test_a_reading_naming_a_deleted_reading_is_not_found(
    served: Served,
    api: Api,
    home: Api,  # noqa: F811
    written: Callable[[Resource], Resource],
) -> None:
    """Whose a deleted record was, the index no longer tells: it counts as a stranger's."""
    gone = {**_reading(), "id": "bp-gone", "subject": {"reference": "Patient/li-jianguo"}}
    assert api.put(f"{served.base}/Observation/bp-gone", json=gone).status_code in (200, 201)
    assert api.delete(f"{served.base}/Observation/bp-gone").status_code in (200, 204)
    resource = written(_reading(derivedFrom=[{"reference": "Observation/bp-gone"}]))
    assert _found(served, home, resource) == (404, False, False)

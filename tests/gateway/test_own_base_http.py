"""A reference written as an absolute URL on this server's own base behaves, over HTTP against
a real server on both databases, exactly as the relative reference it stands for: in the
write rules, a delete's referrers, searches, ``_include``, ``$everything`` and ``$merge``."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Api, Served
from tests.gateway.test_api import example, new_patient
from tests.gateway.test_patient_merge import parameters


def person(served: Served, api: Api) -> str:
    answer = api.post(f"{served.base}/Patient", json=new_patient())
    assert answer.status_code == 201, answer.text
    return answer.json()["id"]


def stay_of(served: Served, api: Api, reference: str) -> dict[str, Any]:
    """A stay whose subject is ``reference``, as written."""
    stay = {**example("yy-encounter/valid-health-check-2026.json"), "subject": {"reference": reference}}
    del stay["id"]
    answer = api.post(f"{served.base}/Encounter", json=stay)
    assert answer.status_code == 201, answer.text
    return answer.json()


@pytest.fixture
def absolute_stay(served: Served, api: Api) -> tuple[str, str]:
    """(a new person's id, the id of a stay naming them by an absolute URL on the own base)."""
    patient = person(served, api)
    return patient, stay_of(served, api, f"{served.base}/Patient/{patient}")["id"]


def test_a_stay_naming_no_one_by_absolute_url_is_answered_as_the_relative_one(served: Served, api: Api) -> None:
    codes = []
    for reference in ("Patient/no-such-person", f"{served.base}/Patient/no-such-person"):
        stay = {**example("yy-encounter/valid-health-check-2026.json"), "subject": {"reference": reference}}
        del stay["id"]
        codes.append(api.post(f"{served.base}/Encounter", json=stay).status_code)
    assert codes[0] == codes[1]


def test_a_person_named_by_absolute_url_is_not_deleted(
    served: Served, api: Api, absolute_stay: tuple[str, str]
) -> None:
    patient, _ = absolute_stay
    assert api.delete(f"{served.base}/Patient/{patient}").status_code == 409


@pytest.mark.parametrize("criterion", ["subject=Patient/{id}", "patient={id}", "subject:Patient={id}"])
def test_a_stay_naming_its_person_by_absolute_url_is_found(
    served: Served, api: Api, absolute_stay: tuple[str, str], criterion: str
) -> None:
    patient, stay = absolute_stay
    bundle = api.get(f"{served.base}/Encounter?{criterion.format(id=patient)}").json()
    assert [e["resource"]["id"] for e in bundle.get("entry", [])] == [stay]


def test_an_include_follows_an_absolute_reference(served: Served, api: Api, absolute_stay: tuple[str, str]) -> None:
    patient, stay = absolute_stay
    bundle = api.get(f"{served.base}/Encounter?_id={stay}&_include=Encounter:subject").json()
    assert sorted(e["fullUrl"].removeprefix(f"{served.base}/") for e in bundle["entry"]) == [
        f"Encounter/{stay}",
        f"Patient/{patient}",
    ]


def test_everything_holds_a_stay_naming_the_person_absolutely(
    served: Served, api: Api, absolute_stay: tuple[str, str]
) -> None:
    patient, stay = absolute_stay
    bundle = api.get(f"{served.base}/Patient/{patient}/$everything").json()
    assert f"Encounter/{stay}" in [e["fullUrl"].removeprefix(f"{served.base}/") for e in bundle["entry"]]


def test_a_merge_moves_a_stay_naming_the_source_absolutely(
    served: Served, api: Api, absolute_stay: tuple[str, str]
) -> None:
    source, stay = absolute_stay
    target = person(served, api)
    answer = api.post(f"{served.base}/Patient/$merge", json=parameters(source, target))
    assert answer.status_code == 200, answer.text
    moved = api.get(f"{served.base}/Encounter/{stay}").json()["subject"]["reference"]
    assert moved == f"Patient/{target}"

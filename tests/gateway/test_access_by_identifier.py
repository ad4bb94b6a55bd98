"""A person named by number alone (a Reference carrying only a 身份证号) counts for the read rule
as one named by reference does, over HTTP on both databases: a hospital's Device of 李建国
written ``{identifier: his 身份证号, display: "李建国"}`` was shown to the centre, which does not
serve him, on every read path."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import Api, Served
from tests.gateway.test_access_http import example, flag_on_zhang, home  # noqa: F401 - the centre's session
from tests.gateway.test_api import everything_pages
from tests.gateway.test_bulk_export import export, exported

ID_CARD = "urn:oid:2.16.156.10011.1.3"
LI, ZHANG, NO_ONE = "440524193801010019", "410105194912310020", "440524193801010035"


def by_number(number: str, display: str = "") -> dict[str, Any]:
    """A logical reference to a person: the 身份证号 alone, as a hospital's interface writes it."""
    return {"identifier": {"system": ID_CARD, "value": number}, **({"display": display} if display else {})}


def device(device_id: str, number: str) -> dict[str, Any]:
    return {"resourceType": "Device", "id": device_id, "patient": by_number(number, "李建国")}


@pytest.fixture(scope="module")
def written(served: Served, api: Api, home: Api) -> Iterator[None]:  # noqa: F811 - the imported fixture
    """李建国's walker and 张秀英's, each named by number; a reading of 张秀英 whose focus is 李建国
    by number; a Flag on 张秀英 written by 李建国's walker; a walker of a number no one holds."""
    reading = {**example("yy-observation-blood-pressure/valid-blood-pressure.json"), "id": "bp-focus-li-by-number"}
    reading["focus"] = [by_number(LI)]
    for resource in [
        device("walker-li-by-number", LI),
        device("walker-zhang-by-number", ZHANG),
        device("walker-of-no-one", NO_ONE),
        reading,
        flag_on_zhang("flag-by-li-walker", "Device/walker-li-by-number"),
    ]:
        answer = api.put(f"{served.base}/{resource['resourceType']}/{resource['id']}", json=resource)
        assert answer.status_code in (200, 201), answer.text
    yield


def ids(bundle: dict[str, Any]) -> set[str]:
    return {entry["resource"]["id"] for entry in bundle.get("entry", [])}


def test_a_device_naming_someone_else_by_number_is_not_found(served: Served, home: Api, written: None) -> None:  # noqa: F811
    assert home.get(f"{served.base}/Device/walker-li-by-number").status_code == 404


def test_a_device_naming_the_resident_by_number_is_shown(served: Served, home: Api, written: None) -> None:  # noqa: F811
    assert home.get(f"{served.base}/Device/walker-zhang-by-number").status_code == 200


def test_a_reading_whose_focus_is_someone_else_by_number_is_not_found(
    served: Served,
    home: Api,  # noqa: F811
    written: None,
) -> None:
    assert home.get(f"{served.base}/Observation/bp-focus-li-by-number").status_code == 404


@pytest.mark.parametrize("query", ["", "_id=walker-li-by-number,walker-zhang-by-number"])
def test_a_search_finds_only_the_device_naming_the_resident(
    served: Served,
    home: Api,  # noqa: F811
    written: None,
    query: str,
) -> None:
    """Both forms of the rule: against everyone served (no criteria) and person by person (few ids)."""
    assert ids(home.get(f"{served.base}/Device?{query}").json()) == {"walker-zhang-by-number"}


def test_a_search_leaves_out_a_reading_whose_focus_is_someone_else_by_number(
    served: Served,
    home: Api,  # noqa: F811
    written: None,
) -> None:
    assert "bp-focus-li-by-number" not in ids(home.get(f"{served.base}/Observation?_count=100").json())


def test_an_include_leaves_out_a_device_naming_someone_else_by_number(
    served: Served,
    home: Api,  # noqa: F811
    written: None,
) -> None:
    bundle = home.get(f"{served.base}/Flag?_id=flag-by-li-walker&_include=Flag:author:Device").json()
    assert ids(bundle) == {"flag-by-li-walker"}


def test_a_revinclude_leaves_out_a_reading_naming_someone_else_by_number(
    served: Served,
    home: Api,  # noqa: F811
    written: None,
) -> None:
    bundle = home.get(f"{served.base}/Patient?_id=zhang-xiuying&_revinclude=Observation:subject").json()
    assert "bp-focus-li-by-number" not in ids(bundle)


def test_a_history_leaves_out_a_reading_naming_someone_else_by_number(
    served: Served,
    home: Api,  # noqa: F811
    written: None,
) -> None:
    found = (
        home.get(f"{served.base}/Observation/bp-focus-li-by-number/_history").status_code,
        "bp-focus-li-by-number" in ids(home.get(f"{served.base}/Observation/_history").json()),
    )
    assert found == (404, False)


def test_everything_leaves_out_a_reading_naming_someone_else_by_number(
    served: Served,
    home: Api,  # noqa: F811
    written: None,
) -> None:
    pages = everything_pages(home, f"{served.base}/Patient/zhang-xiuying/$everything")
    assert "bp-focus-li-by-number" not in {i for page in pages for i in ids(page)}


def test_an_export_leaves_out_a_reading_naming_someone_else_by_number(
    served: Served,
    home: Api,  # noqa: F811
    written: None,
) -> None:
    files = exported(home, export(home, "Patient/$export", _type="Observation"))
    assert "bp-focus-li-by-number" not in {r["id"] for resources in files.values() for r in resources}


def test_a_device_naming_a_number_no_one_holds_is_not_found(served: Served, home: Api, written: None) -> None:  # noqa: F811
    """Fail closed: the person may be registered later, and need not be the centre's."""
    assert home.get(f"{served.base}/Device/walker-of-no-one").status_code == 404


def test_a_device_naming_a_number_is_shown_once_its_resident_is_registered(
    served: Served,
    api: Api,
    home: Api,  # noqa: F811
    written: None,
) -> None:
    """Who holds a number is asked when the Device is read, not when it was written: the person
    registered later, with a home bed at the centre, is its resident."""
    person = {**example("yy-patient/valid-li-jianguo-minimal.json"), "id": "registered-later"}
    person["identifier"] = [{"system": ID_CARD, "value": NO_ONE}]
    stay = {**example("yy-encounter/valid-home-bed.json"), "id": "stay-registered-later"}
    stay["subject"] = {"reference": "Patient/registered-later"}
    for resource in (person, stay):
        answer = api.put(f"{served.base}/{resource['resourceType']}/{resource['id']}", json=resource)
        assert answer.status_code in (200, 201), answer.text
    status = home.get(f"{served.base}/Device/walker-of-no-one").status_code
    api.delete(f"{served.base}/Encounter/stay-registered-later")
    assert status == 200

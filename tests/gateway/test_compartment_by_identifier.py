"""A record naming a person by number alone (a subject carrying only their 身份证号) is in that
person's Patient compartment, over HTTP on both databases: their ``$everything`` and a Patient
export hold it, for the operator and for an elderly-care centre serving them, and an
incremental export brings a resident's record naming, by number, someone the centre has begun
to serve since.  The archive is one per older person: a hospital's reading about 张秀英 that
names her by 身份证号 is hers."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import Api, Served
from tests.gateway.test_access_by_identifier import ID_CARD, LI, ZHANG, by_number
from tests.gateway.test_access_http import example, group, home, sent_after_li_permits  # noqa: F401 - the session
from tests.gateway.test_api import everything_pages
from tests.gateway.test_bulk_export import deletions, export, exported, provenance


def reading(reading_id: str, **elements: Any) -> dict[str, Any]:
    """A blood pressure (张秀英's by reference, as the example has it), changed by ``elements``."""
    return {**example("yy-observation-blood-pressure/valid-blood-pressure.json"), "id": reading_id, **elements}


@pytest.fixture(scope="module")
def written(served: Served, api: Api, home: Api) -> Iterator[None]:  # noqa: F811 - the imported fixture
    """A reading of 张秀英 and one of 李建国 (whom the centre does not serve), each naming its
    person by 身份证号 alone."""
    for resource in [
        reading("bp-zhang-by-number", subject=by_number(ZHANG, "张秀英")),
        reading("bp-li-by-number", subject=by_number(LI, "李建国")),
    ]:
        answer = api.put(f"{served.base}/Observation/{resource['id']}", json=resource)
        assert answer.status_code in (200, 201), answer.text
    yield


def everything(session: Api, served: Served, person: str) -> set[str]:
    pages = everything_pages(session, f"{served.base}/Patient/{person}/$everything")
    return {entry["resource"]["id"] for page in pages for entry in page.get("entry", [])}


def test_everything_holds_a_record_naming_the_person_by_number(served: Served, api: Api, written: None) -> None:
    assert "bp-zhang-by-number" in everything(api, served, "zhang-xiuying")


def test_everything_leaves_out_a_record_naming_another_person_by_number(
    served: Served, api: Api, written: None
) -> None:
    assert "bp-li-by-number" not in everything(api, served, "zhang-xiuying")


def test_the_centres_everything_holds_its_residents_record_by_number(
    served: Served,
    home: Api,  # noqa: F811
    written: None,
) -> None:
    assert "bp-zhang-by-number" in everything(home, served, "zhang-xiuying")


def test_the_centre_reads_its_residents_record_naming_her_by_number(
    served: Served,
    home: Api,  # noqa: F811
    written: None,
) -> None:
    """The read rule places it in her compartment as ``$everything`` does (both forms of the
    rule: one resource, and a search against everyone served)."""
    found = (
        home.get(f"{served.base}/Observation/bp-zhang-by-number").status_code,
        home.get(f"{served.base}/Observation?_id=bp-zhang-by-number,bp-li-by-number&_summary=count").json()["total"],
        "bp-zhang-by-number" in {e["resource"]["id"] for e in home.get(f"{served.base}/Observation").json()["entry"]},
    )
    assert found == (200, 1, True)


def test_a_patient_export_holds_a_record_naming_the_person_by_number(
    served: Served,
    home: Api,  # noqa: F811
    written: None,
) -> None:
    files = exported(home, export(home, "Patient/$export", _type="Observation"))
    ids = [resource["id"] for resource in files.get("Observation", [])]
    assert (ids.count("bp-zhang-by-number"), "bp-li-by-number" in ids) == (1, False)


def test_an_incremental_export_sends_a_residents_record_naming_a_newcomer_by_number(
    served: Served,
    api: Api,
    home: Api,  # noqa: F811
    written: None,
) -> None:
    """A reading of 张秀英 whose focus is 李建国 by 身份证号 was hidden while the centre did not
    serve him; unchanged since, it is not in his compartment but in hers: his permit must
    still bring it, as it brings one naming him by id."""
    api.put(f"{served.base}/Observation/bp-focus-li", json=reading("bp-focus-li", focus=[by_number(LI)]))
    found = sent_after_li_permits(served, api, home, "li-permit-by-number")
    api.delete(f"{served.base}/Observation/bp-focus-li")
    assert "bp-focus-li" in found


def test_a_group_export_lists_as_deleted_a_members_record_naming_her_by_number(
    served: Served,
    api: Api,
    home: Api,  # noqa: F811
    written: None,
) -> None:
    """Its earlier export sent the reading as 张秀英's; deleted since, the platform's copy must
    drop it (a Group's few people: its text names none of them by id)."""
    api.put(f"{served.base}/Group/residents-by-number", json=group("residents-by-number", "zhang-xiuying"))
    api.put(f"{served.base}/Observation/bp-gone", json=reading("bp-gone", subject=by_number(ZHANG)))
    since = export(home, "Group/residents-by-number/$export", _type="Observation")["transactionTime"]
    api.delete(f"{served.base}/Observation/bp-gone")
    manifest = export(home, "Group/residents-by-number/$export", _type="Observation", _since=since)
    assert deletions(home, manifest) == ["Observation/bp-gone"]


def test_an_export_writes_once_a_record_in_two_compartments_one_by_number(
    served: Served, api: Api, written: None
) -> None:
    """A reading of 张秀英 (by id) performed by 李建国 (by number) is in both their compartments:
    the export meets it twice and writes it once."""
    api.put(f"{served.base}/Observation/bp-two", json=reading("bp-two", performer=[by_number(LI)]))
    files = exported(api, export(api, "Patient/$export", _type="Observation"))
    api.delete(f"{served.base}/Observation/bp-two")
    assert [resource["id"] for resource in files["Observation"]].count("bp-two") == 1


#: 王建华's 身份证号 (born 1950-01-01, male), held by no one else in these tests
WANG = "41010519500101003X"


def wang(patient_id: str) -> dict[str, Any]:
    return {
        **example("yy-patient/valid-li-jianguo-minimal.json"),
        "id": patient_id,
        "identifier": [{"system": ID_CARD, "value": WANG}],
        "birthDate": "1950-01-01",
        "name": [{"text": "王建华"}],
    }


def test_a_record_naming_a_deleted_person_by_number_stays_and_joins_their_new_record(
    served: Served, api: Api, written: None
) -> None:
    """A record naming the person by number alone does not keep their Patient from being
    deleted, as a reference by id does (409): it names the number, which stays true of the
    person, and is left in no one's compartment, as one arriving before the person was
    registered is; registered again, the person has it in their compartment once more."""
    api.put(f"{served.base}/Patient/wang-first", json=wang("wang-first"))
    api.put(f"{served.base}/Observation/bp-wang", json=reading("bp-wang", subject=by_number(WANG, "王建华")))
    deleted = api.delete(f"{served.base}/Patient/wang-first").status_code
    kept = api.get(f"{served.base}/Observation/bp-wang").status_code
    api.put(f"{served.base}/Patient/wang-again", json=wang("wang-again"))
    assert (deleted, kept, "bp-wang" in everything(api, served, "wang-again")) == (200, 200, True)


def test_a_group_export_since_holds_a_provenance_written_since_of_a_members_record_by_number(
    served: Served, api: Api, written: None
) -> None:
    """A Provenance recorded after the last export, of 张秀英's reading that names her by
    身份证号 alone (unchanged since), is hers as the reading is: only the Provenances of
    records naming a member by id were looked for."""
    api.put(f"{served.base}/Group/provenanced-by-number", json=group("provenanced-by-number", "zhang-xiuying"))
    path = "Group/provenanced-by-number/$export"
    since = export(api, path, _type="Observation,Provenance")["transactionTime"]
    recorded = provenance("prov-by-number", "Observation/bp-zhang-by-number")
    api.put(f"{served.base}/Provenance/prov-by-number", json=recorded)
    files = exported(api, export(api, path, _type="Observation,Provenance", _since=since))
    api.delete(f"{served.base}/Provenance/prov-by-number")
    assert [resource["id"] for resource in files.get("Provenance", [])] == ["prov-by-number"]

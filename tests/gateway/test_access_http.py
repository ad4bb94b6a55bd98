"""Who may see whom, over HTTP against a real server on both databases: an elderly-care
platform's token reaches only the people its organisation serves, through every read path."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from mappings.engine import DEFAULT_BASE, ID_NAMESPACE
from profiles.registry import examples_dir
from tests.conftest import TEST_ORGANIZATION, Api, Served, add_client
from tests.gateway.test_api import entries, everything_pages, new_patient
from tests.gateway.test_bulk_export import (
    deletions,
    export,
    exported,
    lines,
    organisations_sent_after_renaming,
    provenance,
    stay,
)

HOME = "jinshui-yiyang-center"  # 金水区医养服务中心, where 张秀英 has a home bed (in progress)


def example(relative: str) -> dict[str, Any]:
    return json.loads((examples_dir() / relative).read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def home(served: Served, api: Api, client_key: Any) -> Iterator[Api]:
    """The archive: 张秀英 (served by the centre through her home bed) and 李建国 (served by no
    one), each with a blood pressure; and the centre's own session (role elderly-care)."""
    zhang_bp = example("yy-observation-blood-pressure/valid-blood-pressure.json")
    li_bp = {**zhang_bp, "id": "bp-li", "subject": {"reference": "Patient/li-jianguo"}}
    for resource in [
        example("yy-organization/valid-yiyang-center.json"),
        example("yy-patient/valid-zhang-xiuying.json"),
        example("yy-patient/valid-li-jianguo-minimal.json"),
        example("yy-encounter/valid-home-bed.json"),
        zhang_bp,
        li_bp,
    ]:
        answer = api.put(f"{served.base}/{resource['resourceType']}/{resource['id']}", json=resource)
        assert answer.status_code in (200, 201), answer.text
    yield from centre_session(served, client_key, "jinshui-platform", "system/*.rs")


def centre_session(served: Served, key: Any, client_id: str, scope: str) -> Iterator[Api]:
    """A session of the centre's platform (role elderly-care), registered as ``client_id``."""
    add_client(served.database_url, client_id, key=key, scope=scope, role="elderly-care", organization=HOME)
    with Api(served.base, client_id, key, scope) as session:
        yield session


def test_a_search_finds_only_the_people_the_centre_serves(served: Served, home: Api) -> None:
    bundle = home.get(f"{served.base}/Patient").json()
    assert (bundle["total"], [e["resource"]["id"] for e in bundle["entry"]]) == (1, ["zhang-xiuying"])


def test_reading_someone_the_centre_does_not_serve_is_not_found(served: Served, home: Api) -> None:
    assert home.get(f"{served.base}/Patient/li-jianguo").status_code == 404


def test_a_conditional_read_of_someone_else_is_not_found_either(served: Served, home: Api) -> None:
    """If-None-Match: * would otherwise answer 304 for whoever exists, telling who does."""
    answer = home.get(f"{served.base}/Patient/li-jianguo", headers={"If-None-Match": "*"})
    assert answer.status_code == 404


def test_an_include_never_brings_in_someone_else(served: Served, home: Api) -> None:
    bundle = home.get(f"{served.base}/Observation?_include=Observation:subject:Patient").json()
    assert sorted(e["resource"]["id"] for e in bundle["entry"]) == ["bp-2026", "zhang-xiuying"]


def test_everything_of_someone_else_is_not_found(served: Served, home: Api) -> None:
    assert home.get(f"{served.base}/Patient/li-jianguo/$everything").status_code == 404


def test_the_centre_may_not_export_the_whole_archive(served: Served, home: Api) -> None:
    answer = home.get(f"{served.base}/$export", headers={"Prefer": "respond-async"})
    code = answer.json()["issue"][0]["details"]["coding"][0]["code"]
    assert (answer.status_code, code) == (403, "http.export-system-restricted")


def test_a_consent_refusing_the_centre_hides_its_own_resident(served: Served, api: Api, home: Api) -> None:
    refusal = example("yy-consent/valid-deny-all.json")
    api.put(f"{served.base}/Consent/{refusal['id']}", json=refusal)
    found = home.get(f"{served.base}/Patient?_summary=count").json()["total"]
    api.delete(f"{served.base}/Consent/{refusal['id']}")
    assert found == 0


def absolute(served: Served, node: dict[str, Any]) -> dict[str, Any]:
    """The reference written on the server's own base, as FHIR allows."""
    return {**node, "reference": f"{served.base}/{node['reference']}"}


def test_a_consent_naming_the_centre_by_absolute_url_still_refuses(served: Served, api: Api, home: Api) -> None:
    refusal = example("yy-consent/valid-deny-all.json")
    actor = example("yy-consent/valid-permit-yiyang-center.json")["provision"]["actor"][0]
    refusal["patient"] = absolute(served, refusal["patient"])
    refusal["provision"]["actor"] = [{**actor, "reference": absolute(served, actor["reference"])}]
    api.put(f"{served.base}/Consent/{refusal['id']}", json=refusal)
    found = home.get(f"{served.base}/Patient?_summary=count").json()["total"]
    api.delete(f"{served.base}/Consent/{refusal['id']}")
    assert found == 0


def test_a_reference_on_the_own_base_is_stored_relative(served: Served, api: Api) -> None:
    observation = example("yy-observation-blood-pressure/valid-blood-pressure.json")
    observation = {**observation, "id": "bp-absolute", "subject": absolute(served, observation["subject"])}
    stored = api.put(f"{served.base}/Observation/bp-absolute", json=observation).json()
    api.delete(f"{served.base}/Observation/bp-absolute")
    assert stored["subject"]["reference"] == "Patient/zhang-xiuying"


def test_a_revinclude_never_brings_in_someone_elses_resources(served: Served, home: Api) -> None:
    bundle = home.get(f"{served.base}/Patient?_revinclude=Observation:subject").json()
    assert sorted(e["resource"]["id"] for e in bundle["entry"]) == ["bp-2026", "zhang-xiuying"]


def test_type_history_shows_and_counts_only_the_served(served: Served, home: Api) -> None:
    bundle = home.get(f"{served.base}/Observation/_history").json()
    seen = {e["resource"]["id"] for e in bundle["entry"] if "resource" in e}  # not a deletion's
    assert (seen, bundle["total"]) == ({"bp-2026"}, len(bundle["entry"]))


def test_a_history_cursor_naming_a_hidden_version_is_refused_as_an_absent_one(served: Served, home: Api) -> None:
    """``_after`` was looked up whoever's version it named: 200 for 李建国's reading and 400 for
    no reading at all told the centre which of his records exist (ids may be business keys)."""
    answers = [
        home.get(f"{served.base}/Observation/_history", params={"_after": f"Observation/{reading}/_history/1"})
        for reading in ("bp-li", "bp-never-written")
    ]
    assert [answer.status_code for answer in answers] == [400, 400]


def test_a_history_cursor_naming_another_type_is_refused(served: Served, api: Api, client_key: Any) -> None:
    """A Patient's history paged past an Observation's version: a client holding Patient scopes
    alone learnt which Observations exist."""
    scope = "system/Patient.rs"
    add_client(served.database_url, "patient-historian", key=client_key, scope=scope, organization=TEST_ORGANIZATION)
    with Api(served.base, "patient-historian", client_key, scope) as historian:
        answer = historian.get(
            f"{served.base}/Patient/zhang-xiuying/_history", params={"_after": "Observation/bp-li/_history/1"}
        )
    assert code_of(answer) == (400, "http.not-a-page-cursor")


@pytest.fixture(scope="module")
def deleted_readings(served: Served, api: Api, home: Api) -> dict[str, str]:
    """A reading of 张秀英 and one of 李建国, each written and deleted by the operator: the
    deletion (version 2) of each, as a history's entry names it."""
    reading = example("yy-observation-blood-pressure/valid-blood-pressure.json")
    deleted = {}
    for person in ("zhang-xiuying", "li-jianguo"):
        gone = {**reading, "id": f"bp-gone-{person}", "subject": {"reference": f"Patient/{person}"}}
        assert api.put(f"{served.base}/Observation/{gone['id']}", json=gone).status_code in (200, 201)
        assert api.delete(f"{served.base}/Observation/{gone['id']}").status_code in (200, 204)
        deleted[person] = f"Observation/{gone['id']}/_history/2"
    return deleted


def _deletions(bundle: dict[str, Any]) -> list[str]:
    """The deletions of the readings :func:`deleted_readings` deleted a history Bundle lists,
    as ``Type/id`` and status."""
    return [
        f"{e['request']['url']} {e['response']['status']}"
        for e in bundle["entry"]
        if e["request"]["method"] == "DELETE" and e["request"]["url"].startswith("Observation/bp-gone-")
    ]


def test_type_history_lists_the_deletion_of_a_residents_record_alone(
    served: Served, home: Api, deleted_readings: dict[str, str]
) -> None:
    """A deleted record has no index rows to judge, so no deletion was listed: a platform
    synchronising from the history kept 张秀英's deleted reading for ever.  Judged by the
    version it deleted, hers is listed (R4 http.html#history: DELETE, no resource) and
    李建国's is not."""
    bundle = home.get(f"{served.base}/Observation/_history", params={"_count": 500}).json()
    assert _deletions(bundle) == ["Observation/bp-gone-zhang-xiuying 200"]


def test_a_history_page_may_start_past_a_residents_deletion_alone(
    served: Served, home: Api, deleted_readings: dict[str, str]
) -> None:
    """A page ending with her deletion names it in its next link; 李建国's, never listed, is
    refused as a version that does not exist."""
    answers = [
        home.get(f"{served.base}/Observation/_history", params={"_after": deleted_readings[person]}).status_code
        for person in ("zhang-xiuying", "li-jianguo")
    ]
    assert answers == [200, 400]


def test_the_history_of_someone_else_is_not_found(served: Served, home: Api) -> None:
    assert home.get(f"{served.base}/Patient/li-jianguo/_history").status_code == 404


def test_the_whole_archives_history_is_refused(served: Served, home: Api) -> None:
    answer = home.get(f"{served.base}/_history")
    code = answer.json()["issue"][0]["details"]["coding"][0]["code"]
    assert (answer.status_code, code) == (403, "http.history-system-restricted")


def group(group_id: str, *people: str) -> dict[str, Any]:
    """A Group of people (outside the Patient compartment, it names each of them)."""
    members = [{"entity": {"reference": f"Patient/{person}"}} for person in people]
    return {"resourceType": "Group", "id": group_id, "type": "person", "actual": True, "member": members}


def test_a_group_export_holds_its_members_data(served: Served, api: Api, home: Api) -> None:
    api.put(f"{served.base}/Group/jinshui-residents", json=group("jinshui-residents", "zhang-xiuying"))
    files = exported(home, export(home, "Group/jinshui-residents/$export", _type="Patient,Observation"))
    found = sorted(resource["id"] for resources in files.values() for resource in resources)
    assert found == ["bp-2026", "zhang-xiuying"]


def test_an_export_fetched_after_a_refusal_no_longer_holds_the_person(served: Served, api: Api, home: Api) -> None:
    """A Consent counts at the moment of each request, the download of an export included."""
    manifest = export(home, "Patient/$export", _type="Patient")
    refusal = example("yy-consent/valid-deny-all.json")
    api.put(f"{served.base}/Consent/{refusal['id']}", json=refusal)
    files = exported(home, manifest)
    api.delete(f"{served.base}/Consent/{refusal['id']}")
    assert files == {"Patient": []}


def test_an_export_manifest_promises_no_more_lines_than_a_download_serves(served: Served, api: Api, home: Api) -> None:
    """Each download judges its lines again (a Consent withdrawn since hides the person): the
    count the job wrote promised the platform a line it never received."""
    manifest = export(home, "Patient/$export", _type="Patient")
    refusal = example("yy-consent/valid-deny-all.json")
    api.put(f"{served.base}/Consent/{refusal['id']}", json=refusal)
    received = {entry["type"]: len(lines(home, entry["url"])) for entry in manifest["output"]}
    promised = {entry["type"]: entry.get("count", received[entry["type"]]) for entry in manifest["output"]}
    api.delete(f"{served.base}/Consent/{refusal['id']}")
    assert promised == received


def test_an_export_fetched_after_a_record_moved_away_no_longer_holds_it(served: Served, api: Api, home: Api) -> None:
    """The line was the resident's, but the record is someone else's now: a vread would not show it."""
    reading = {**example("yy-observation-blood-pressure/valid-blood-pressure.json"), "id": "bp-moving"}
    api.put(f"{served.base}/Observation/bp-moving", json=reading)
    manifest = export(home, "Patient/$export", _type="Observation")
    api.put(f"{served.base}/Observation/bp-moving", json={**reading, "subject": {"reference": "Patient/li-jianguo"}})
    files = exported(home, manifest)
    api.delete(f"{served.base}/Observation/bp-moving")
    assert "bp-moving" not in {resource["id"] for resource in files.get("Observation", [])}


def test_an_incremental_export_leaves_out_a_renamed_organisation_only_the_unserved_name(
    served: Served, api: Api, home: Api
) -> None:
    """The nursing home running 李建国's stay, whom the centre does not serve, is renamed: none
    of the centre's business, unlike the care home running 张秀英's."""
    stays = [
        stay("stay-home", "zhang-xiuying", "jinshui-fushou-elderly-home"),
        stay("stay-nursing", "li-jianguo", "jinshui-nursing-home"),
    ]
    sent = organisations_sent_after_renaming(api, "Patient/$export", stays, reader=home)
    assert sent == {"jinshui-fushou-elderly-home"}


def sent_after(home: Api, change: Callable[[], object]) -> set[str]:
    """The ids the centre's incremental export sends for what ``change`` did after its last
    export (the readings and the people, as a platform synchronises them)."""
    since = export(home, "Patient/$export", _type="Patient,Observation")["transactionTime"]
    change()
    files = exported(home, export(home, "Patient/$export", _type="Patient,Observation", _since=since))
    return {resource["id"] for resources in files.values() for resource in resources}


def sent_after_li_permits(served: Served, api: Api, home: Api, permit_id: str) -> set[str]:
    """The ids the centre's incremental export sends once 李建国 has permitted it to see him
    (the permit withdrawn afterwards)."""
    permit = {**example("yy-consent/valid-permit-yiyang-center.json"), "id": permit_id}
    permit["patient"] = {"reference": "Patient/li-jianguo"}
    found = sent_after(home, lambda: api.put(f"{served.base}/Consent/{permit_id}", json=permit))
    api.delete(f"{served.base}/Consent/{permit_id}")
    return found


def test_an_incremental_export_sends_a_newly_served_persons_whole_record(served: Served, api: Api, home: Api) -> None:
    """李建国's blood pressure predates the export the centre synchronises from; it was hidden
    then, and a permit given afterwards must not leave it behind for good."""
    assert {"li-jianguo", "bp-li"} <= sent_after_li_permits(served, api, home, "li-permit-sync")


def test_an_incremental_export_sends_a_residents_record_naming_someone_newly_served(
    served: Served, api: Api, home: Api
) -> None:
    """A reading of 张秀英 whose focus is 李建国 was hidden while the centre did not serve him;
    it is unchanged since, and in 张秀英's compartment, not his: his permit must still bring it."""
    reading = {**example("yy-observation-blood-pressure/valid-blood-pressure.json"), "id": "bp-zhang-focus-li"}
    reading["focus"] = [{"reference": "Patient/li-jianguo"}]
    api.put(f"{served.base}/Observation/bp-zhang-focus-li", json=reading)
    found = sent_after_li_permits(served, api, home, "li-permit-focus")
    api.delete(f"{served.base}/Observation/bp-zhang-focus-li")
    assert "bp-zhang-focus-li" in found


def test_an_incremental_export_sends_the_record_of_someone_a_new_contract_serves(
    served: Served, api: Api, home: Api
) -> None:
    """A family-doctor contract names one of the centre's existing teams: the CarePlan is new,
    the team is not."""
    team = example("yy-careteam/valid-family-doctor-team.json")
    api.put(f"{served.base}/CareTeam/{team['id']}", json=team)
    contract = {**example("yy-careplan/valid-family-doctor-package.json"), "id": "li-contract-sync"}
    contract |= {"subject": {"reference": "Patient/li-jianguo"}, "careTeam": [{"reference": f"CareTeam/{team['id']}"}]}
    found = sent_after(home, lambda: api.put(f"{served.base}/CarePlan/li-contract-sync", json=contract))
    api.delete(f"{served.base}/CarePlan/li-contract-sync")
    assert {"li-jianguo", "bp-li"} <= found


def test_an_incremental_export_sends_the_record_of_someone_whose_refusal_lapsed(
    served: Served, api: Api, home: Api
) -> None:
    """Nothing is written when a refusal's period ends: the lapse alone must count."""
    ends = datetime.now(UTC) + timedelta(seconds=3)
    refusal = example("yy-consent/valid-deny-all.json")
    refusal["provision"]["period"]["end"] = ends.isoformat(timespec="seconds").replace("+00:00", "Z")
    api.put(f"{served.base}/Consent/{refusal['id']}", json=refusal)
    found = sent_after(home, lambda: time.sleep(max(0.0, (ends - datetime.now(UTC)).total_seconds()) + 1))
    api.delete(f"{served.base}/Consent/{refusal['id']}")
    assert {"zhang-xiuying", "bp-2026"} <= found


def test_an_incremental_export_sends_the_record_of_someone_whose_refusal_was_deleted(
    served: Served, api: Api, home: Api
) -> None:
    """Deleting the refusal withdraws it; the deleted Consent has no index rows left to say so."""
    refusal = example("yy-consent/valid-deny-all.json")
    api.put(f"{served.base}/Consent/{refusal['id']}", json=refusal)
    found = sent_after(home, lambda: api.delete(f"{served.base}/Consent/{refusal['id']}"))
    assert {"zhang-xiuying", "bp-2026"} <= found


def test_an_incremental_export_does_not_resend_a_resident_served_all_along(served: Served, home: Api) -> None:
    assert sent_after(home, lambda: None) == set()


def test_an_incremental_export_lists_only_the_deletions_of_served_peoples_records(
    served: Served, api: Api, home: Api
) -> None:
    reading = example("yy-observation-blood-pressure/valid-blood-pressure.json")
    for reading_id, person in (("bp-zhang-gone", "zhang-xiuying"), ("bp-li-gone", "li-jianguo")):
        api.put(
            f"{served.base}/Observation/{reading_id}",
            json={**reading, "id": reading_id, "subject": {"reference": f"Patient/{person}"}},
        )
    since = export(home, "Patient/$export", _type="Observation")["transactionTime"]
    for reading_id in ("bp-zhang-gone", "bp-li-gone"):
        api.delete(f"{served.base}/Observation/{reading_id}")
    manifest = export(home, "Patient/$export", _type="Observation", _since=since)
    assert deletions(home, manifest) == ["Observation/bp-zhang-gone"]


def test_an_incremental_export_lists_a_residents_record_that_now_names_someone_else(
    served: Served, api: Api, home: Api
) -> None:
    """A reading of 张秀英 given 李建国 as its focus is hidden from the centre now; its copy
    holds the reading from the export before, which nothing else would tell it to drop."""
    reading = {**example("yy-observation-blood-pressure/valid-blood-pressure.json"), "id": "bp-zhang-now-li"}
    api.put(f"{served.base}/Observation/bp-zhang-now-li", json=reading)
    since = export(home, "Patient/$export", _type="Observation")["transactionTime"]
    api.put(
        f"{served.base}/Observation/bp-zhang-now-li", json={**reading, "focus": [{"reference": "Patient/li-jianguo"}]}
    )
    manifest = export(home, "Patient/$export", _type="Observation", _since=since)
    api.delete(f"{served.base}/Observation/bp-zhang-now-li")
    assert deletions(home, manifest) == ["Observation/bp-zhang-now-li"]


def test_a_group_naming_someone_the_centre_does_not_serve_is_not_found(served: Served, api: Api, home: Api) -> None:
    """Its member list would tell the stranger's id (and that they belong to the group)."""
    api.put(f"{served.base}/Group/mixed-residents", json=group("mixed-residents", "zhang-xiuying", "li-jianguo"))
    listed = home.get(f"{served.base}/Group?member=Patient/li-jianguo&_summary=count").json()["total"]
    assert (home.get(f"{served.base}/Group/mixed-residents").status_code, listed) == (404, 0)


def test_binaries_and_stored_bundles_are_not_shown_to_the_centre(served: Served, api: Api, home: Api) -> None:
    """Their content is no one's by any index, so it may be anyone's."""
    binary = {"resourceType": "Binary", "contentType": "text/plain", "data": "5byg56eA6Iux"}
    binary["securityContext"] = {"reference": "Patient/zhang-xiuying"}
    made = api.post(f"{served.base}/Binary", json=binary, headers={"Content-Type": "application/fhir+json"}).json()
    found = (
        home.get(f"{served.base}/Binary/{made['id']}").status_code,
        home.get(f"{served.base}/Binary").json()["total"],
    )
    assert found == (404, 0)


@pytest.fixture(scope="module")
def home_writer(served: Served, home: Api, client_key: Any) -> Iterator[Api]:
    """The centre again, with write scopes: what it may change is what it may see."""
    yield from centre_session(served, client_key, "jinshui-writer", "system/*.cruds")


def batch(*requests: dict[str, str]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "batch", "entry": [{"request": r} for r in requests]}


def test_a_batch_read_of_someone_else_is_not_found(served: Served, home: Api) -> None:
    answer = home.post(served.base, json=batch({"method": "GET", "url": "Patient/li-jianguo"})).json()
    assert answer["entry"][0]["response"]["status"] == "404"


def test_a_batch_search_counts_only_the_served(served: Served, home: Api) -> None:
    answer = home.post(served.base, json=batch({"method": "GET", "url": "Patient?_summary=count"})).json()
    assert answer["entry"][0]["resource"]["total"] == 1


def test_a_conditional_create_never_answers_with_someone_else(served: Served, api: Api, home_writer: Api) -> None:
    li = example("yy-patient/valid-li-jianguo-minimal.json")
    key = li["identifier"][0]
    answer = home_writer.post(
        f"{served.base}/Patient",
        json={k: v for k, v in li.items() if k != "id"},
        headers={"If-None-Exist": f"identifier={key['system']}|{key['value']}"},
    )
    created = answer.json().get("id")
    if answer.status_code == 201:
        api.delete(f"{served.base}/Patient/{created}")
    assert (answer.status_code, created != "li-jianguo") == (201, True)


def test_a_create_of_a_person_held_by_a_record_it_may_not_see_names_no_one(
    served: Served, api: Api, home_writer: Api
) -> None:
    """A 409 naming the holder would tell an elderly-care client who is in the archive."""
    li = example("yy-patient/valid-li-jianguo-minimal.json")
    answer = home_writer.post(f"{served.base}/Patient", json={k: v for k, v in li.items() if k != "id"})
    if answer.status_code == 201:
        api.delete(f"{served.base}/Patient/{answer.json()['id']}")
    assert (answer.status_code, "li-jianguo" in answer.text) == (201, False)


@pytest.mark.parametrize("method", ["PUT", "PATCH"])
def test_changing_someone_else_is_not_found(served: Served, home_writer: Api, method: str) -> None:
    url = f"{served.base}/Patient/li-jianguo"
    if method == "PUT":
        answer = home_writer.put(url, json=example("yy-patient/valid-li-jianguo-minimal.json"))
    else:
        patch = [{"op": "replace", "path": "/active", "value": False}]
        answer = home_writer.patch(url, json=patch, headers={"Content-Type": "application/json-patch+json"})
    assert answer.status_code == 404


def test_deleting_someone_else_deletes_nothing(served: Served, api: Api, home_writer: Api) -> None:
    home_writer.delete(f"{served.base}/Patient/li-jianguo")
    assert api.get(f"{served.base}/Patient/li-jianguo").status_code == 200


def test_a_delete_with_if_match_of_someone_else_answers_as_for_no_one(served: Served, home_writer: Api) -> None:
    """With If-Match, an absent resource is a 404: a hidden one must be too."""
    hidden, absent = (
        code_of(home_writer.delete(f"{served.base}/Patient/{who}", headers={"If-Match": 'W/"1"'}))
        for who in ("li-jianguo", "no-such-person")
    )
    assert hidden == absent == (404, "http.not-found")


def test_a_withdrawn_consent_ends_the_access_it_gave(served: Served, api: Api, home: Api) -> None:
    permit = {**example("yy-consent/valid-permit-yiyang-center.json"), "id": "li-permit"}
    permit["patient"] = {"reference": "Patient/li-jianguo"}
    api.put(f"{served.base}/Consent/li-permit", json=permit)
    while_given = home.get(f"{served.base}/Patient/li-jianguo").status_code
    api.put(f"{served.base}/Consent/li-permit", json={**permit, "status": "inactive"})
    withdrawn = home.get(f"{served.base}/Patient/li-jianguo").status_code
    api.delete(f"{served.base}/Consent/li-permit")
    assert (while_given, withdrawn) == (200, 404)


def test_the_audit_trail_is_for_auditors_only(served: Served, home: Api) -> None:
    answer = home.get(f"{served.base}/AuditEvent")
    code = answer.json()["issue"][0]["details"]["coding"][0]["code"]
    assert (answer.status_code, code) == (403, "http.forbidden-role")


@pytest.fixture(scope="module")
def hospital(served: Served, client_key: Any) -> Iterator[Api]:
    """A hospital of another organisation than the centre, with every scope."""
    add_client(served.database_url, "other-hospital", key=client_key, role="hospital", organization="other-hospital")
    with Api(served.base, "other-hospital", client_key) as session:
        yield session


@pytest.mark.parametrize("method", ["PUT", "DELETE"])
def test_writing_to_the_audit_trail_is_refused_alike_for_everyone(served: Served, hospital: Api, method: str) -> None:
    """405, as for an auditor: not a 403 that makes it sound like a matter of role."""
    assert (
        hospital.request(method, f"{served.base}/AuditEvent/1", json={"resourceType": "AuditEvent"}).status_code == 405
    )


def test_a_hospital_cannot_update_another_organisations_record(served: Served, hospital: Api) -> None:
    stay = example("yy-encounter/valid-home-bed.json")
    answer = hospital.put(f"{served.base}/Encounter/{stay['id']}", json={**stay, "status": "finished"})
    code = answer.json()["issue"][0]["details"]["coding"][0]["code"]
    assert (answer.status_code, code) == (403, "http.forbidden-organization")


def test_a_hospital_cannot_write_for_another_naming_it_by_identifier(served: Served, api: Api, hospital: Api) -> None:
    """serviceProvider as a logical reference (the identifier alone, as the HL7 v2 adapter
    writes MSH-4's code): a hospital wrote a stay for the centre past the organisation check."""
    api.put(f"{served.base}/Organization/{HOME}", json=example("yy-organization/valid-yiyang-center.json"))
    stay = example("yy-encounter/valid-home-bed.json")
    stay.pop("id")
    licence = {"system": "http://fhir.yiyang.cn/sid/medical-institution-license", "value": "PDY00001-341010515A1001"}
    answer = hospital.post(f"{served.base}/Encounter", json={**stay, "serviceProvider": {"identifier": licence}})
    assert code_of(answer) == (403, "http.forbidden-organization")


def claimed_organization(organization_id: str, licence: str, parent: str) -> dict[str, Any]:
    """An Organization at ``organization_id`` placed under ``parent``, with a licence of its own."""
    found = {k: v for k, v in example("yy-organization/valid-yiyang-center.json").items() if k != "partOf"}
    found["identifier"] = [{**found["identifier"][0], "value": licence}]
    return {**found, "id": organization_id, "partOf": {"reference": f"Organization/{parent}"}}


@pytest.mark.parametrize(
    ("victim", "licence"), [("victim-hospital", "PDY00011-341010515A1001"), ("named-clinic", "PDY00012-341010515A1001")]
)
def test_a_hospital_cannot_place_an_organisation_others_act_for_under_itself(
    served: Served, api: Api, hospital: Api, client_key: Any, victim: str, licence: str
) -> None:
    """An organisation the archive holds no Organization of yet, for which a client acts (its
    records are made by it) or which records name as their owner: placed under another
    hospital by that hospital's PUT, it made every one of them that hospital's to change and
    delete (``_within`` follows partOf)."""
    if victim == "victim-hospital":
        add_client(served.database_url, "victim-his", key=client_key, role="hospital", organization=victim)
    else:
        stay = {**example("yy-encounter/valid-home-bed.json"), "id": "stay-at-named-clinic"}
        stay["serviceProvider"] = {"reference": f"Organization/{victim}"}
        assert api.put(f"{served.base}/Encounter/stay-at-named-clinic", json=stay).status_code in (200, 201)
    answer = hospital.put(
        f"{served.base}/Organization/{victim}", json=claimed_organization(victim, licence, "other-hospital")
    )
    assert code_of(answer) == (403, "http.organization-claimed")


def test_a_hospital_ingest_cannot_make_an_institution_another_client_acts_for(
    served: Served, api: Api, hospital: Api, client_key: Any
) -> None:
    """$ingest (and MLLP, the same pipeline) writes Organizations without the REST check
    ``http.organization-claimed``, but cannot place one under the hospital: no mapping writes
    ``partOf``, and an Organization that names none owns itself, so one at another's id is
    written for another organisation and refused (``ingest.forbidden-organization``).  The
    id is the keyed one the admission spec gives 颐康养老院 (its 统一社会信用代码)."""
    key = f"Organization|{DEFAULT_BASE}/sid/uscc|52410105MJY123456L"
    victim = str(uuid.uuid5(ID_NAMESPACE, key))
    add_client(served.database_url, "yikang-his", key=client_key, role="hospital", organization=victim)
    sample = examples_dir().parents[1] / "../mappings/samples/elderly-care/入住登记.json"
    answer = hospital.post(
        f"{served.base}/$ingest?source=elderly-care&filename=入住登记.json",
        data=sample.resolve().read_bytes(),
        headers={"Content-Type": "application/json"},
    )
    made = api.get(f"{served.base}/Organization/{victim}").status_code
    assert ("ingest.forbidden-organization" in answer.text, made) == (True, 404)


def test_validating_a_delete_tells_a_hospital_it_would_be_refused(served: Served, api: Api, hospital: Api) -> None:
    api.put(f"{served.base}/Encounter/home-bed-2026", json=example("yy-encounter/valid-home-bed.json"))
    parameters = {"resourceType": "Parameters", "parameter": [{"name": "mode", "valueCode": "delete"}]}
    answer = hospital.post(f"{served.base}/Encounter/home-bed-2026/$validate", json=parameters)
    assert (answer.status_code, code_of(answer)[1]) == (200, "http.forbidden-organization")


def test_a_hospital_cannot_delete_another_organisations_records_by_criteria(
    served: Served, api: Api, hospital: Api
) -> None:
    answer = hospital.delete(f"{served.base}/Encounter?status=in-progress")
    still_there = api.get(f"{served.base}/Encounter/home-bed-2026").status_code
    assert (answer.status_code, still_there) == (403, 200)


def test_an_elderly_care_client_may_not_ingest_legacy_files(served: Served, home_writer: Api) -> None:
    answer = home_writer.post(
        f"{served.base}/$ingest?source=community-health", data=b"a,b\n1,2\n", headers={"Content-Type": "text/csv"}
    )
    code = answer.json()["issue"][0]["details"]["coding"][0]["code"]
    assert (answer.status_code, code) == (403, "http.ingest-restricted")


def test_a_hospital_ingest_writing_for_another_organisation_quarantines_those_records(
    served: Served, hospital: Api
) -> None:
    sample = examples_dir().parents[1] / "../mappings/samples/community-health/个人基本信息表.csv"
    answer = hospital.post(
        f"{served.base}/$ingest?source=community-health&filename=个人基本信息表.csv",
        data=sample.resolve().read_bytes(),
        headers={"Content-Type": "text/csv"},
    ).json()
    assert "ingest.forbidden-organization" in json.dumps(answer)


def code_of(answer: Any) -> tuple[int, str]:
    return answer.status_code, answer.json()["issue"][0]["details"]["coding"][0]["code"]


def test_a_stay_the_centre_records_for_someone_it_does_not_serve_is_refused(served: Served, home_writer: Api) -> None:
    """Otherwise a platform would make itself a relationship with anyone, and read them."""
    stay = {**example("yy-encounter/valid-home-bed.json"), "subject": {"reference": "Patient/li-jianguo"}}
    del stay["id"]
    assert code_of(home_writer.post(f"{served.base}/Encounter", json=stay)) == (403, "http.forbidden-person")


def test_the_centre_may_not_take_over_a_team_whose_contracts_serve_someone_else(
    served: Served, api: Api, home_writer: Api
) -> None:
    """A family-doctor contract serves whoever the organisation managing its team is: a team
    about 张秀英 that the operator wrote without a manager, used by 李建国's contract, made
    the centre serve 李建国 once it named itself the team's manager, a write naming only her."""
    team = {**example("yy-careteam/valid-family-doctor-team.json"), "id": "household-team"}
    del team["managingOrganization"]
    api.put(f"{served.base}/CareTeam/household-team", json=team)
    contract = {**example("yy-careplan/valid-family-doctor-package.json"), "id": "li-household-contract"}
    contract |= {"subject": {"reference": "Patient/li-jianguo"}, "careTeam": [{"reference": "CareTeam/household-team"}]}
    api.put(f"{served.base}/CarePlan/li-household-contract", json=contract)
    claimed = {**team, "managingOrganization": [{"reference": f"Organization/{HOME}"}]}
    answer = home_writer.put(f"{served.base}/CareTeam/household-team", json=claimed)
    api.delete(f"{served.base}/CarePlan/li-household-contract")
    api.delete(f"{served.base}/CareTeam/household-team")
    assert code_of(answer) == (403, "http.forbidden-care-team")


def test_a_patch_writing_a_reference_on_the_own_base_stores_it_relative(served: Served, api: Api) -> None:
    """A JSON Patch may write the reference as a string value, not only as an object."""
    observation = {**example("yy-observation-blood-pressure/valid-blood-pressure.json"), "id": "bp-patched"}
    api.put(f"{served.base}/Observation/bp-patched", json=observation)
    patch = [{"op": "replace", "path": "/subject/reference", "value": f"{served.base}/Patient/zhang-xiuying"}]
    stored = api.patch(
        f"{served.base}/Observation/bp-patched", json=patch, headers={"Content-Type": "application/json-patch+json"}
    ).json()
    api.delete(f"{served.base}/Observation/bp-patched")
    assert stored["subject"]["reference"] == "Patient/zhang-xiuying"


def test_a_stay_naming_someone_unserved_by_absolute_url_is_refused(served: Served, home_writer: Api) -> None:
    stay = {
        **example("yy-encounter/valid-home-bed.json"),
        "subject": {"reference": f"{served.base}/Patient/li-jianguo"},
    }
    del stay["id"]
    assert code_of(home_writer.post(f"{served.base}/Encounter", json=stay)) == (403, "http.forbidden-person")


@pytest.mark.parametrize("person", ["li-jianguo", "zhang-xiuying"])
def test_a_consent_the_centre_records_is_refused_whoever_it_is_about(
    served: Served, home_writer: Api, person: str
) -> None:
    """About someone it does not serve it was refused; about its own resident, naming another
    home in provision.actor, it put that home in the resident's care (201)."""
    permit = {**example("yy-consent/valid-permit-yiyang-center.json"), "patient": {"reference": f"Patient/{person}"}}
    permit["provision"] = {
        **permit["provision"],
        "actor": [{**permit["provision"]["actor"][0], "reference": {"reference": "Organization/another-home"}}],
    }
    del permit["id"]
    assert code_of(home_writer.post(f"{served.base}/Consent", json=permit)) == (403, "http.consent-restricted")


def test_the_centre_cannot_withdraw_a_refusal_the_health_side_recorded(
    served: Served, api: Api, home_writer: Api
) -> None:
    """A refusal naming another home, about a resident the centre serves: the centre made it
    inactive (200), and the other home could read the resident again."""
    refusal = {**example("yy-consent/valid-permit-yiyang-center.json"), "id": "zhang-refusal-kept"}
    actor = {**refusal["provision"]["actor"][0], "reference": {"reference": "Organization/another-home"}}
    refusal["provision"] = {**refusal["provision"], "type": "deny", "actor": [actor]}
    api.put(f"{served.base}/Consent/zhang-refusal-kept", json=refusal)
    operations = [{"op": "replace", "path": "/status", "value": "inactive"}]
    headers = {"Content-Type": "application/json-patch+json"}
    answer = home_writer.patch(f"{served.base}/Consent/zhang-refusal-kept", json=operations, headers=headers)
    api.delete(f"{served.base}/Consent/zhang-refusal-kept")
    assert code_of(answer) == (403, "http.consent-restricted")


def test_an_auditor_registered_with_write_scopes_cannot_write(served: Served, client_key: Any) -> None:
    add_client(served.database_url, "auditor-cruds", key=client_key, scope="system/*.cruds", role="auditor")
    with Api(served.base, "auditor-cruds", client_key) as auditor:
        stay = example("yy-encounter/valid-home-bed.json")
        del stay["id"]
        assert code_of(auditor.post(f"{served.base}/Encounter", json=stay)) == (403, "http.forbidden-scope")


def test_the_centre_records_a_stay_for_a_resident_it_registered(served: Served, home_writer: Api) -> None:
    resident = {k: v for k, v in example("yy-patient/valid-li-jianguo-minimal.json").items() if k != "id"}
    resident["managingOrganization"] = {"reference": f"Organization/{HOME}"}
    resident["identifier"] = [{**resident["identifier"][0], "value": "440524193801010115"}]
    registered = home_writer.post(f"{served.base}/Patient", json=resident)
    assert registered.status_code == 201, registered.text
    stay = {
        **example("yy-encounter/valid-home-bed.json"),
        "subject": {"reference": f"Patient/{registered.json()['id']}"},
    }
    del stay["id"]
    assert home_writer.post(f"{served.base}/Encounter", json=stay).status_code == 201


def test_a_refused_delete_names_no_referrer_the_scopes_do_not_read(served: Served, api: Api, client_key: Any) -> None:
    """A client holding Patient scopes alone was told which Observation named the Patient it
    tried to delete (``仍被 Observation/… 引用``): as much as a search it may not make."""
    person = api.post(f"{served.base}/Patient", json=new_patient()).json()["id"]
    reading = {**example("yy-observation-blood-pressure/valid-blood-pressure.json"), "id": "bp-unread-referrer"}
    api.put(
        f"{served.base}/Observation/bp-unread-referrer", json={**reading, "subject": {"reference": f"Patient/{person}"}}
    )
    scope = "system/Patient.cruds"
    add_client(
        served.database_url,
        "patients-only",
        key=client_key,
        scope=scope,
        role="hospital",
        organization=TEST_ORGANIZATION,
    )
    with Api(served.base, "patients-only", client_key, scope) as patients_only:
        answer = patients_only.delete(f"{served.base}/Patient/{person}")
    assert (answer.status_code, "bp-unread-referrer" in answer.text) == (409, False)


def test_a_refused_delete_names_no_referrer_the_centre_may_not_see(served: Served, api: Api, home_writer: Api) -> None:
    """The centre's reading of its resident, which a hospital's reading of 李建国 was derived from."""
    reading = {k: v for k, v in example("yy-observation-blood-pressure/valid-blood-pressure.json").items() if k != "id"}
    own = home_writer.post(f"{served.base}/Observation", json=reading).json()["id"]
    derived = {
        **reading,
        "id": "bp-hidden-referrer",
        "subject": {"reference": "Patient/li-jianguo"},
        "derivedFrom": [{"reference": f"Observation/{own}"}],
    }
    put = api.put(f"{served.base}/Observation/bp-hidden-referrer", json=derived)
    assert put.status_code in (200, 201), put.text
    answer = home_writer.delete(f"{served.base}/Observation/{own}")
    api.delete(f"{served.base}/Observation/bp-hidden-referrer")
    assert (answer.status_code, "bp-hidden-referrer" in answer.text) == (409, False)


@pytest.fixture(scope="module")
def device_of_li(served: Served, api: Api) -> str:
    """A Device (outside the Patient compartment) naming 李建国, whom the centre does not serve."""
    device = {"resourceType": "Device", "id": "walker-li", "patient": {"reference": "Patient/li-jianguo"}}
    assert api.put(f"{served.base}/Device/walker-li", json=device).status_code in (200, 201)
    return "walker-li"


def test_a_device_of_someone_else_is_not_found(served: Served, home: Api, device_of_li: str) -> None:
    assert home.get(f"{served.base}/Device/{device_of_li}").status_code == 404


def test_a_chain_through_someone_elses_device_finds_nothing(served: Served, home: Api, device_of_li: str) -> None:
    found = home.get(f"{served.base}/Device?patient.identifier=440524193801010019&_summary=count").json()
    assert found["total"] == 0


def test_a_reverse_chain_never_looks_into_someone_elses_records(served: Served, api: Api, home: Api) -> None:
    """The doctor measured 李建国's blood pressure, which the centre may not see: asked whose
    records name the doctor, it must not learn that one of someone else's does."""
    doctor = example("yy-practitioner/valid-family-doctor.json")
    api.put(f"{served.base}/Practitioner/{doctor['id']}", json=doctor)
    asked = f"{served.base}/Practitioner?_has:Observation:performer:subject=Patient/li-jianguo&_summary=count"
    assert (api.get(asked).json()["total"], home.get(asked).json()["total"]) == (1, 0)


def test_a_group_naming_someone_else_is_not_exported(served: Served, api: Api, home: Api) -> None:
    api.put(f"{served.base}/Group/li-only", json=group("li-only", "li-jianguo"))
    answer = home.get(f"{served.base}/Group/li-only/$export", headers={"Prefer": "respond-async"})
    assert answer.status_code == 404


@pytest.fixture(scope="module")
def encounters_only(served: Served, client_key: Any) -> Iterator[Api]:
    """A hospital system that may write and search Encounters and nothing else."""
    scope = "system/Encounter.crus"
    add_client(served.database_url, "encounters-only", key=client_key, scope=scope, role="hospital", organization=HOME)
    with Api(served.base, "encounters-only", client_key, scope) as session:
        yield session


def test_a_batch_search_may_not_include_what_the_scopes_do_not_cover(served: Served, encounters_only: Api) -> None:
    entry = {"method": "GET", "url": "Encounter?_include=Encounter:subject"}
    answer = encounters_only.post(served.base, json=batch(entry)).json()
    assert answer["entry"][0]["response"]["status"] == "403"


def test_a_chain_needs_search_on_the_type_it_searches(served: Served, encounters_only: Api) -> None:
    answer = encounters_only.get(f"{served.base}/Encounter?subject:Patient.identifier=440524193801010019")
    assert code_of(answer) == (403, "http.forbidden-scope")


def test_a_search_and_a_read_of_one_type_each_need_their_own_permission(served: Served, client_key: Any) -> None:
    """A read's and a plain search's needs are worked out once per endpoint and type: one
    worked out for the other would let a client that may only search a type read it."""
    scope = "system/Encounter.s"
    add_client(
        served.database_url, "encounters-searched", key=client_key, scope=scope, role="hospital", organization=HOME
    )
    with Api(served.base, "encounters-searched", client_key, scope) as searcher:
        searched = searcher.get(f"{served.base}/Encounter?status=finished&_summary=count").status_code
        read = code_of(searcher.get(f"{served.base}/Encounter/home-bed-zhang"))
    assert (searched, read) == (200, (403, "http.forbidden-scope"))


def test_a_conditional_reference_needs_search_on_the_type_it_names(served: Served, encounters_only: Api) -> None:
    stay = {
        **example("yy-encounter/valid-home-bed.json"),
        "subject": {"reference": "Patient?identifier=440524193801010019"},
    }
    del stay["id"]
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [{"request": {"method": "POST", "url": "Encounter"}, "resource": stay}],
    }
    assert code_of(encounters_only.post(served.base, json=bundle)) == (403, "http.forbidden-scope")


def test_validating_an_instance_needs_read(served: Served, encounters_only: Api) -> None:
    li = example("yy-patient/valid-li-jianguo-minimal.json")
    answer = encounters_only.post(f"{served.base}/Patient/li-jianguo/$validate", json=li)
    assert code_of(answer) == (403, "http.forbidden-scope")


def test_validating_tells_nothing_of_a_record_the_scopes_do_not_read(
    served: Served, home: Api, encounters_only: Api
) -> None:
    """``$validate`` on a type needs no scope: its verdict read the Patient a reading names, and
    told a system holding Encounter scopes alone (an auditor too) 张秀英's birth date."""
    reading = {**example("yy-observation-blood-pressure/valid-blood-pressure.json"), "effectiveDateTime": "1900-01-01"}
    told = [
        encounters_only.post(f"{served.base}/Observation/$validate", json={**reading, "subject": subject}).json()
        for subject in ({"reference": "Patient/zhang-xiuying"}, {"reference": "Patient/no-one-at-all"})
    ]
    assert told[0] == told[1]


def flag_on_zhang(flag_id: str, author: str) -> dict[str, Any]:
    """A Flag on 张秀英, whom the centre serves, written by ``author``."""
    return {
        "resourceType": "Flag",
        "id": flag_id,
        "status": "active",
        "code": {"text": "跌倒风险"},
        "subject": {"reference": "Patient/zhang-xiuying"},
        "author": {"reference": author},
    }


def test_a_resource_on_a_resident_naming_someone_else_too_is_not_shown(served: Served, api: Api, home: Api) -> None:
    """A Flag on 张秀英 names 李建国 as its author: shown, it would tell the centre his id, and
    a chain through the author who he is."""
    flag = flag_on_zhang("flag-by-li", "Patient/li-jianguo")
    assert api.put(f"{served.base}/Flag/flag-by-li", json=flag).status_code in (200, 201)
    seen = home.get(f"{served.base}/Flag?_id=flag-by-li&_summary=count").json()["total"]
    chained = home.get(f"{served.base}/Flag?_id=flag-by-li&author:Patient.identifier=440524193801010019&_summary=count")
    assert (seen, chained.json()["total"]) == (0, 0)


def test_an_export_leaves_out_a_residents_record_naming_someone_else(served: Served, api: Api, home: Api) -> None:
    flag = flag_on_zhang("flag-by-li-exported", "Patient/li-jianguo")
    assert api.put(f"{served.base}/Flag/{flag['id']}", json=flag).status_code in (200, 201)
    files = exported(home, export(home, "Patient/$export", _type="Flag"))
    assert flag["id"] not in {resource["id"] for resource in files.get("Flag", [])}


@pytest.fixture(scope="module")
def moved(served: Served, api: Api) -> str:
    """A blood pressure recorded for 李建国 by mistake, then moved to 张秀英 (version 2)."""
    reading = {**example("yy-observation-blood-pressure/valid-blood-pressure.json"), "id": "bp-moved"}
    api.put(f"{served.base}/Observation/bp-moved", json={**reading, "subject": {"reference": "Patient/li-jianguo"}})
    api.put(f"{served.base}/Observation/bp-moved", json=reading)
    return "bp-moved"


def test_a_version_that_concerned_someone_else_is_not_found(served: Served, home: Api, moved: str) -> None:
    first = home.get(f"{served.base}/Observation/{moved}/_history/1").status_code
    second = home.get(f"{served.base}/Observation/{moved}/_history/2").status_code
    assert (first, second) == (404, 200)


def test_a_history_shows_and_counts_only_the_versions_of_served_people(served: Served, home: Api, moved: str) -> None:
    bundle = home.get(f"{served.base}/Observation/{moved}/_history").json()
    assert (bundle["total"], [e["resource"]["meta"]["versionId"] for e in bundle["entry"]]) == (1, ["2"])


def test_a_history_followed_page_by_page_lists_what_it_lists_at_once(served: Served, home: Api, moved: str) -> None:
    """Each next page starts past the last version shown, among those the client may see."""
    listed = [home.get(f"{served.base}/Observation/_history?_count=1").json()]
    while following := [link["url"] for link in listed[-1]["link"] if link["relation"] == "next"]:
        listed.append(home.get(following[0]).json())
    whole = home.get(f"{served.base}/Observation/_history").json()
    assert [e["fullUrl"] + e["response"]["etag"] for page in listed for e in page.get("entry", [])] == [
        e["fullUrl"] + e["response"]["etag"] for e in whole["entry"]
    ]


@pytest.fixture(scope="module")
def first_hospital(served: Served, client_key: Any) -> Iterator[Api]:
    """The hospital that records 李建国's conditions."""
    add_client(served.database_url, "first-hospital", key=client_key, role="hospital", organization="first-hospital")
    with Api(served.base, "first-hospital", client_key) as session:
        yield session


@pytest.fixture(scope="module")
def condition(served: Served, first_hospital: Api) -> dict[str, Any]:
    """A Condition, which names no owner organisation, created by the first hospital."""
    diagnosis = {k: v for k, v in example("yy-condition/valid-hypertension.json").items() if k != "id"}
    answer = first_hospital.post(f"{served.base}/Condition", json=diagnosis)
    assert answer.status_code == 201, answer.text
    return answer.json()


def test_a_hospital_cannot_change_a_record_another_hospital_created(
    served: Served, hospital: Api, condition: dict[str, Any]
) -> None:
    answer = hospital.put(f"{served.base}/Condition/{condition['id']}", json={**condition, "note": [{"text": "x"}]})
    assert code_of(answer) == (403, "http.forbidden-organization")


def test_the_hospital_that_created_a_record_changes_it(
    served: Served, first_hospital: Api, condition: dict[str, Any]
) -> None:
    answer = first_hospital.put(
        f"{served.base}/Condition/{condition['id']}", json={**condition, "note": [{"text": "复查"}]}
    )
    assert answer.status_code == 200


def test_a_chain_to_several_types_is_answered_for_the_centre(served: Served, home: Api) -> None:
    """subject may be a Patient, a Group or a Device: the served-people condition is not
    repeated per type (SQLite's parser overflowed)."""
    answer = home.get(f"{served.base}/Observation?subject.identifier=440524193801010019&_summary=count")
    assert (answer.status_code, answer.json().get("total")) == (200, 0)


def test_a_conditional_create_needs_search_on_the_types_its_chain_reaches(served: Served, encounters_only: Api) -> None:
    stay = {k: v for k, v in example("yy-encounter/valid-home-bed.json").items() if k != "id"}
    condition = {"If-None-Exist": "subject:Patient.identifier=440524193801010019"}
    answer = encounters_only.post(f"{served.base}/Encounter", json=stay, headers=condition)
    assert code_of(answer) == (403, "http.forbidden-scope")


def test_the_centre_registers_a_resident_and_a_stay_in_one_transaction(served: Served, home_writer: Api) -> None:
    """The stay comes first in the Bundle: the people a transaction names are checked once it
    is all written."""
    resident = {k: v for k, v in example("yy-patient/valid-li-jianguo-minimal.json").items() if k != "id"}
    resident["managingOrganization"] = {"reference": f"Organization/{HOME}"}
    resident["identifier"] = [{**resident["identifier"][0], "value": "440524193801010131"}]
    stay = {k: v for k, v in example("yy-encounter/valid-home-bed.json").items() if k != "id"}
    stay["subject"] = {"reference": "urn:uuid:7d0f3a52-1111-4c3b-9a55-0c6f1e2d3b4a"}
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"resource": stay, "request": {"method": "POST", "url": "Encounter"}},
            {
                "fullUrl": "urn:uuid:7d0f3a52-1111-4c3b-9a55-0c6f1e2d3b4a",
                "resource": resident,
                "request": {"method": "POST", "url": "Patient"},
            },
        ],
    }
    answer = home_writer.post(served.base, json=bundle)
    assert answer.status_code == 200, answer.text


def test_a_chain_never_reads_what_a_hidden_device_says(served: Served, api: Api, home: Api, device_of_li: str) -> None:
    """A Flag on 张秀英 names, as its author, a Device of 李建国's that the centre may not see."""
    flag = flag_on_zhang("flag-by-device", f"Device/{device_of_li}")
    assert api.put(f"{served.base}/Flag/flag-by-device", json=flag).status_code in (200, 201)
    query = "_id=flag-by-device&author:Device.patient=Patient/li-jianguo&_summary=count"
    assert home.get(f"{served.base}/Flag?{query}").json()["total"] == 0


def test_a_stay_for_someone_else_in_a_transaction_is_refused(served: Served, home_writer: Api) -> None:
    """Checked before it is written, not after, when it would already count as a relationship."""
    stay = {k: v for k, v in example("yy-encounter/valid-home-bed.json").items() if k != "id"}
    stay["subject"] = {"reference": "Patient/li-jianguo"}
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [{"resource": stay, "request": {"method": "POST", "url": "Encounter"}}],
    }
    answer = home_writer.post(served.base, json=bundle)
    assert (code_of(answer), home_writer.get(f"{served.base}/Patient/li-jianguo").status_code) == (
        (403, "http.forbidden-person"),
        404,
    )


def test_a_record_deleted_and_made_again_belongs_to_who_made_it_again(
    served: Served, first_hospital: Api, hospital: Api
) -> None:
    diagnosis = {k: v for k, v in example("yy-condition/valid-hypertension.json").items() if k != "id"}
    made = first_hospital.post(f"{served.base}/Condition", json=diagnosis).json()
    first_hospital.delete(f"{served.base}/Condition/{made['id']}")
    hospital.put(f"{served.base}/Condition/{made['id']}", json=made)
    again = hospital.put(f"{served.base}/Condition/{made['id']}", json={**made, "note": [{"text": "复查"}]})
    assert again.status_code == 200, again.text


def test_a_record_of_no_one_stays_no_ones_after_an_update(
    served: Served, api: Api, first_hospital: Api, hospital: Api
) -> None:
    """The operator's records belong to no organisation: one hospital's update does not make
    them its own."""
    diagnosis = {**example("yy-condition/valid-hypertension.json"), "id": "cond-of-no-one"}
    api.put(f"{served.base}/Condition/cond-of-no-one", json=diagnosis)
    hospital.put(f"{served.base}/Condition/cond-of-no-one", json={**diagnosis, "note": [{"text": "一"}]})
    answer = first_hospital.put(f"{served.base}/Condition/cond-of-no-one", json={**diagnosis, "note": [{"text": "二"}]})
    assert answer.status_code == 200, answer.text


def test_everything_leaves_out_a_residents_record_naming_someone_else(served: Served, api: Api, home: Api) -> None:
    """张秀英's $everything would have shown a Flag on her that 李建国 wrote, and so his id."""
    flag = flag_on_zhang("flag-by-li-everything", "Patient/li-jianguo")
    assert api.put(f"{served.base}/Flag/{flag['id']}", json=flag).status_code in (200, 201)
    answer = home.get(f"{served.base}/Patient/zhang-xiuying/$everything?_type=Flag,Patient")
    found = {entry["resource"]["id"] for entry in answer.json().get("entry", [])}
    assert (answer.status_code, "zhang-xiuying" in found, flag["id"] in found) == (200, True, False)


def test_everything_paged_shows_and_counts_only_what_the_centre_sees_unpaged(
    served: Served, api: Api, home: Api
) -> None:
    """A page's total counts no record the centre may not see (the Flag 李建国 wrote on her)."""
    flag = flag_on_zhang("flag-by-li-paged", "Patient/li-jianguo")
    assert api.put(f"{served.base}/Flag/{flag['id']}", json=flag).status_code in (200, 201)
    address = f"{served.base}/Patient/zhang-xiuying/$everything"
    unpaged = entries([home.get(address, timeout=60).json()], "match")
    pages = everything_pages(home, f"{address}?_count=1")
    totals = {page["total"] for page in pages}
    assert (entries(pages, "match"), totals, "Flag/flag-by-li-paged" in unpaged) == (unpaged, {len(unpaged)}, False)


def test_everything_paged_shows_a_residents_record_naming_another_resident(served: Served, api: Api, home: Api) -> None:
    """A record naming someone besides 张秀英 is judged by everyone it names: a Flag on her
    written by a neighbour in the centre's home beds concerns only people the centre serves."""
    neighbour = api.post(f"{served.base}/Patient", json=new_patient()).json()["id"]
    stay = {**example("yy-encounter/valid-home-bed.json"), "id": "stay-of-the-neighbour"}
    api.put(f"{served.base}/Encounter/{stay['id']}", json={**stay, "subject": {"reference": f"Patient/{neighbour}"}})
    flag = flag_on_zhang("flag-by-the-neighbour", f"Patient/{neighbour}")
    api.put(f"{served.base}/Flag/{flag['id']}", json=flag)
    pages = everything_pages(home, f"{served.base}/Patient/zhang-xiuying/$everything?_count=1")
    for reference in (f"Flag/{flag['id']}", f"Encounter/{stay['id']}", f"Patient/{neighbour}"):
        api.delete(f"{served.base}/{reference}")
    assert "Flag/flag-by-the-neighbour" in entries(pages, "match")


@pytest.mark.parametrize("identifier", ["440524193801010019", "440524193801010027"])  # his, and no one's
def test_a_conditional_reference_cannot_probe_someone_a_stay_in_the_same_bundle_names(
    served: Served, home_writer: Api, identifier: str
) -> None:
    """The Bundle's resources were written provisionally, without the write rules, while its
    conditional references were resolved: the stay made 李建国 served for that moment, and
    a refusal after the match against "0 matches" told the centre which identifier is his."""
    stay = {k: v for k, v in example("yy-encounter/valid-home-bed.json").items() if k != "id"}
    stay["subject"] = {"reference": "Patient/li-jianguo"}
    probe = {
        "resourceType": "Flag",
        "status": "active",
        "code": {"text": "探测"},
        "subject": {"reference": f"Patient?identifier={identifier}"},
    }
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": "urn:uuid:0d2d1c6e-4c53-4b3a-9f8e-1b0e7f6a5c01",
                "resource": stay,
                "request": {"method": "POST", "url": "Encounter"},
            },
            {
                "fullUrl": "urn:uuid:0d2d1c6e-4c53-4b3a-9f8e-1b0e7f6a5c02",
                "resource": probe,
                "request": {"method": "POST", "url": "Flag"},
            },
        ],
    }
    assert code_of(home_writer.post(served.base, json=bundle)) == (403, "http.forbidden-person")


@pytest.mark.parametrize("person", ["li-jianguo", "no-one-at-all"])  # someone it does not serve, and no one
def test_a_transaction_cannot_claim_someone_elses_record_to_make_a_stay_with_them(
    served: Served, home_writer: Api, person: str
) -> None:
    """A PUT of 李建国's record naming the centre as its manager, with a stay: the stay was
    judged by the PUT's claim, made him served, and the PUT then took his record over."""
    claimed = {**example("yy-patient/valid-li-jianguo-minimal.json"), "id": person}
    claimed["managingOrganization"] = {"reference": f"Organization/{HOME}"}
    stay = {k: v for k, v in example("yy-encounter/valid-home-bed.json").items() if k != "id"}
    stay["subject"] = {"reference": f"Patient/{person}"}
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"resource": claimed, "request": {"method": "PUT", "url": f"Patient/{person}"}},
            {"resource": stay, "request": {"method": "POST", "url": "Encounter"}},
        ],
    }
    assert code_of(home_writer.post(served.base, json=bundle)) == (403, "http.forbidden-person")


def reading_derived_from(target: str) -> dict[str, Any]:
    """A blood pressure of 张秀英 (served by the centre) derived from ``target``."""
    reading = {k: v for k, v in example("yy-observation-blood-pressure/valid-blood-pressure.json").items() if k != "id"}
    return {**reading, "derivedFrom": [{"reference": target}]}


@pytest.mark.parametrize("target", ["Observation/bp-li", "Observation/no-such-reading"])
def test_the_centre_may_not_refer_to_a_record_it_cannot_see(served: Served, home_writer: Api, target: str) -> None:
    """李建国's reading (hidden) and one the archive lacks are refused alike: a stored reference
    to another organisation's record kept its owner from deleting it (409), and a difference
    between the two answers would tell the centre what the archive holds."""
    answer = home_writer.post(f"{served.base}/Observation", json=reading_derived_from(target))
    assert (code_of(answer), answer.json()["issue"][0]["expression"]) == (
        (403, "http.forbidden-reference"),
        ["Observation.derivedFrom[0].reference"],
    )


def test_the_centre_may_not_refer_to_a_hidden_record_by_absolute_url(served: Served, home_writer: Api) -> None:
    """On the server's own base the URL names 李建国's reading as ``Observation/bp-li`` does."""
    answer = home_writer.post(
        f"{served.base}/Observation", json=reading_derived_from(f"{served.base}/Observation/bp-li")
    )
    assert code_of(answer) == (403, "http.forbidden-reference")


def test_the_centre_may_refer_to_a_record_of_its_resident(served: Served, home_writer: Api) -> None:
    resident_reading = example("yy-observation-blood-pressure/valid-blood-pressure.json")["id"]
    answer = home_writer.post(
        f"{served.base}/Observation", json=reading_derived_from(f"Observation/{resident_reading}")
    )
    assert answer.status_code == 201, answer.text


def test_a_centre_transaction_may_not_refer_to_a_record_it_cannot_see(served: Served, home_writer: Api) -> None:
    entry = {"resource": reading_derived_from("Observation/bp-li"), "request": {"method": "POST", "url": "Observation"}}
    answer = home_writer.post(served.base, json={"resourceType": "Bundle", "type": "transaction", "entry": [entry]})
    assert (code_of(answer), answer.json()["issue"][0]["expression"]) == (
        (403, "http.forbidden-reference"),
        ["Bundle.entry[0].resource.derivedFrom[0].reference"],
    )


def test_the_centre_may_not_refer_to_a_hidden_record_from_a_primitives_extension(
    served: Served, home_writer: Api
) -> None:
    """A Reference in ``_status``'s extension is stored and followed as any other: passed
    over, it named 李建国's reading from a record of the centre's resident."""
    reading = {k: v for k, v in example("yy-observation-blood-pressure/valid-blood-pressure.json").items() if k != "id"}
    site = {
        "url": "http://hl7.org/fhir/StructureDefinition/bodySite",
        "valueReference": {"reference": "Observation/bp-li"},
    }
    answer = home_writer.post(f"{served.base}/Observation", json={**reading, "_status": {"extension": [site]}})
    assert (code_of(answer), answer.json()["issue"][0]["expression"]) == (
        (403, "http.forbidden-reference"),
        ["Observation.status.extension[0].valueReference.reference"],
    )


@pytest.fixture(scope="module")
def provenances(served: Served, api: Api, home: Api) -> dict[str, str]:
    """Provenances naming 张秀英: one of her reading alone, one of 李建国's reading too, one of
    hers drawing on his."""
    written = {
        "own": provenance("prov-zhang", "Patient/zhang-xiuying", "Observation/bp-2026"),
        "mixed": provenance("prov-mixed", "Patient/zhang-xiuying", "Observation/bp-li"),
        "drawn": {
            **provenance("prov-drawn", "Patient/zhang-xiuying", "Observation/bp-2026"),
            "entity": [{"role": "source", "what": {"reference": "Observation/bp-li"}}],
        },
    }
    for resource in written.values():
        answer = api.put(f"{served.base}/Provenance/{resource['id']}", json=resource)
        assert answer.status_code in (200, 201), answer.text
    return {name: resource["id"] for name, resource in written.items()}


def test_a_provenance_drawing_on_someone_elses_record_is_not_found(served: Served, home: Api, provenances: Any) -> None:
    """Its ``entity`` (what the activity drew on) names a record as its target does."""
    assert home.get(f"{served.base}/Provenance/{provenances['drawn']}").status_code == 404


def test_a_provenance_naming_someone_elses_record_is_not_found(served: Served, home: Api, provenances: Any) -> None:
    """Judged by its Patient references alone, it showed the centre the id of 李建国's reading."""
    assert home.get(f"{served.base}/Provenance/{provenances['mixed']}").status_code == 404


def test_a_search_finds_only_the_provenances_of_the_residents_records(
    served: Served, home: Api, provenances: Any
) -> None:
    bundle = home.get(f"{served.base}/Provenance", params={"patient": "zhang-xiuying"}).json()
    assert [e["resource"]["id"] for e in bundle.get("entry", [])] == [provenances["own"]]


@pytest.fixture
def reading_provenance(served: Served, api: Api) -> Iterator[str]:
    """A Provenance of 张秀英's blood pressure alone, as a REST client writes one: its target
    is the reading, and it names no Patient."""
    written = provenance("prov-reading", "Observation/bp-2026")
    assert api.put(f"{served.base}/Provenance/{written['id']}", json=written).status_code in (200, 201)
    yield written["id"]
    assert api.delete(f"{served.base}/Provenance/{written['id']}").status_code in (200, 204)


def test_the_provenance_of_a_residents_reading_is_the_centres_to_read_and_export(
    served: Served, home: Api, reading_provenance: str
) -> None:
    """It named no Patient, so it was in no one's compartment and hidden from the home: a
    404 on read, absent from the reading's _revinclude and from the Patient export, which
    the IG has hold every Provenance of the records it holds."""
    revinclude = home.get(f"{served.base}/Observation", params={"_id": "bp-2026", "_revinclude": "Provenance:target"})
    files = exported(home, export(home, "Patient/$export", _type="Observation,Provenance"))
    assert (
        home.get(f"{served.base}/Provenance/{reading_provenance}").status_code,
        reading_provenance in [e["resource"]["id"] for e in revinclude.json()["entry"]],
        reading_provenance in [resource["id"] for resource in files.get("Provenance", [])],
    ) == (200, True, True)


def test_her_everything_includes_the_provenance_of_her_reading(
    served: Served, home: Api, reading_provenance: str
) -> None:
    """Naming no Patient, it is in no one's compartment, so her ``$everything`` left it out
    while her Patient export held it (placed among her records by the reading it targets)."""
    bundle = home.get(f"{served.base}/Patient/zhang-xiuying/$everything", params={"_count": 500}).json()
    modes = {e["resource"]["id"]: e["search"]["mode"] for e in bundle["entry"]}
    assert modes.get(reading_provenance) == "include"


def test_her_everything_leaves_out_the_provenance_of_her_reading_and_someone_elses(
    served: Served, api: Api, home: Api
) -> None:
    """Placed by her reading, it is judged by every record it names: 李建国's is not the home's."""
    written = provenance("prov-both-readings", "Observation/bp-2026", "Observation/bp-li")
    assert api.put(f"{served.base}/Provenance/{written['id']}", json=written).status_code in (200, 201)
    bundle = home.get(f"{served.base}/Patient/zhang-xiuying/$everything", params={"_count": 500}).json()
    api.delete(f"{served.base}/Provenance/{written['id']}")
    assert written["id"] not in [e["resource"]["id"] for e in bundle["entry"]]


def test_the_provenance_of_someone_elses_reading_alone_is_not_found(served: Served, api: Api, home: Api) -> None:
    """Placed by the record it targets, it is judged by that record: 李建国's is not the home's."""
    written = provenance("prov-bp-li", "Observation/bp-li")
    assert api.put(f"{served.base}/Provenance/{written['id']}", json=written).status_code in (200, 201)
    found = home.get(f"{served.base}/Provenance/{written['id']}").status_code
    api.delete(f"{served.base}/Provenance/{written['id']}")
    assert found == 404


@pytest.fixture
def drawn_reading(served: Served, api: Api, home: Api, request: Any) -> Iterator[str]:
    """A reading of 张秀英 (served by the centre) naming 李建国's through ``request.param``
    (``hasMember`` or ``derivedFrom``), written by an operator; deleted afterwards so that her
    other searches stay as they were."""
    reading = {
        **example("yy-observation-blood-pressure/valid-blood-pressure.json"),
        "id": "bp-zhang-drawn",
        request.param: [{"reference": "Observation/bp-li"}],
    }
    answer = api.put(f"{served.base}/Observation/{reading['id']}", json=reading)
    assert answer.status_code in (200, 201), answer.text
    yield reading["id"]
    assert api.delete(f"{served.base}/Observation/{reading['id']}").status_code in (200, 204)


@pytest.mark.parametrize("drawn_reading", ["hasMember", "derivedFrom"], indirect=True)
def test_a_reading_naming_someone_elses_reading_is_not_found(served: Served, home: Api, drawn_reading: str) -> None:
    """Judged by its subject alone, it showed the centre the id of 李建国's reading."""
    assert home.get(f"{served.base}/Observation/{drawn_reading}").status_code == 404


@pytest.mark.parametrize("drawn_reading", ["hasMember", "derivedFrom"], indirect=True)
def test_a_search_leaves_out_a_reading_naming_someone_elses(served: Served, home: Api, drawn_reading: str) -> None:
    bundle = home.get(f"{served.base}/Observation", params={"patient": "zhang-xiuying", "_count": 200}).json()
    assert drawn_reading not in [e["resource"]["id"] for e in bundle.get("entry", [])]


@pytest.mark.parametrize("drawn_reading", ["hasMember"], indirect=True)
def test_her_everything_leaves_out_a_reading_naming_someone_elses(
    served: Served, home: Api, drawn_reading: str
) -> None:
    """Judged on content (:meth:`Access.among_served`) as the search judges it in SQL."""
    bundle = home.get(f"{served.base}/Patient/zhang-xiuying/$everything", params={"_count": 500}).json()
    assert drawn_reading not in [e["resource"]["id"] for e in bundle.get("entry", [])]


@pytest.fixture
def report_of_others(served: Served, api: Api, home: Api) -> Iterator[str]:
    """A report on 张秀英 whose results are her reading and 李建国's, written by an operator."""
    report = {
        "resourceType": "DiagnosticReport",
        "id": "report-mixed",
        "status": "final",
        "code": {"text": "血压随访"},
        "subject": {"reference": "Patient/zhang-xiuying"},
        "result": [{"reference": "Observation/bp-2026"}, {"reference": "Observation/bp-li"}],
    }
    answer = api.put(f"{served.base}/DiagnosticReport/{report['id']}", json=report)
    assert answer.status_code in (200, 201), answer.text
    yield report["id"]
    assert api.delete(f"{served.base}/DiagnosticReport/{report['id']}").status_code in (200, 204)


def test_a_report_with_someone_elses_result_is_not_found(served: Served, home: Api, report_of_others: str) -> None:
    assert home.get(f"{served.base}/DiagnosticReport/{report_of_others}").status_code == 404


def test_her_everything_leaves_out_a_provenance_naming_someone_elses_record(
    served: Served, home: Api, provenances: Any
) -> None:
    bundle = home.get(f"{served.base}/Patient/zhang-xiuying/$everything", params={"_count": 500}).json()
    assert provenances["mixed"] not in [e["resource"]["id"] for e in bundle.get("entry", [])]


@pytest.mark.parametrize(
    "asked",
    [
        "Patient?_has:Provenance:patient:target=Observation/bp-li",
        "Patient?_has:Provenance:patient:_id=prov-drawn",
        "Observation?_has:Provenance:target:entity=Observation/bp-li",
    ],
)
def test_a_has_through_a_provenance_naming_someone_elses_record_finds_nothing(
    served: Served, api: Api, home: Api, provenances: Any, asked: str
) -> None:
    """The Provenances walked are judged as a read judges them (hidden: they name 李建国's
    reading), or 张秀英's record would answer whether they exist and what they name."""
    url = f"{served.base}/{asked}&_summary=count"
    assert (api.get(url).json()["total"], home.get(url).json()["total"]) == (1, 0)


@pytest.mark.parametrize("drawn_reading", ["derivedFrom"], indirect=True)
@pytest.mark.parametrize(
    "asked",
    [
        "Patient?_has:Observation:subject:derived-from=Observation/bp-li",
        "Provenance?target:Observation.derived-from=Observation/bp-li",
    ],
)
def test_a_chain_through_a_reading_naming_someone_elses_finds_nothing(
    served: Served, api: Api, home: Api, drawn_reading: str, asked: str
) -> None:
    """A reading of 张秀英 derived from 李建国's is hidden from the centre; a chain or
    ``_has`` walking it would tell that 李建国's reading exists and what was drawn from it."""
    written = api.put(
        f"{served.base}/Provenance/prov-of-drawn", json=provenance("prov-of-drawn", f"Observation/{drawn_reading}")
    )
    assert written.status_code in (200, 201), written.text
    url = f"{served.base}/{asked}&_summary=count"
    counts = (api.get(url).json()["total"], home.get(url).json()["total"])
    assert api.delete(f"{served.base}/Provenance/prov-of-drawn").status_code in (200, 204)
    assert counts == (1, 0)

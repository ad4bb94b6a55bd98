"""Bulk Data ``$export``: kick-off, status, files and cancel on a real server (both databases),
and the stale-job rule on the store itself."""

from __future__ import annotations

import logging
import os
import random
import socket
import stat
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
import requests
from hypothesis import given
from hypothesis import strategies as st

from bench.synthetic import patient as synthetic_patient
from gateway.fhir.bulk_export import FAILED, IN_PROGRESS, BulkExports, Job, batches
from gateway.fhir.bulk_export.batches import _Halted
from gateway.fhir.bulk_export.downloads import _visible_lines
from gateway.fhir.bulk_export.files import _NdjsonFiles
from gateway.fhir.bulk_export.job_run import _JobRun, _Progress
from gateway.fhir.bulk_export.kick_off import _parameters
from gateway.fhir.bulk_export.naming import _may_name_by_number, _names_any
from gateway.fhir.bulk_export.provenance import _provenances_since
from gateway.fhir.errors import FhirError
from gateway.fhir.export_filters import Filtering
from gateway.fhir.search import Searcher, shaped
from gateway.security.access import Access, PersonalData
from gateway.security.principal import Principal, acting
from gateway.storage import open_store
from gateway.storage.dialect import Dialect
from gateway.storage.resources import Resources, now_instant
from gateway.storage.store import Store, Stored
from profiles.registry import Registry, r4_resource_types
from tests.conftest import TEST_CLIENT, Api, Served, load_example

ASYNC = {"Prefer": "respond-async", "Accept": "application/fhir+json"}
EXPORT_DIR = "YIYANG_EXPORT_DIR"


@pytest.fixture(scope="module", autouse=True)
def export_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The servers of this module write their exports here (autouse: set before ``server``
    starts its child process, which reads YIYANG_EXPORT_DIR)."""
    folder = tmp_path_factory.mktemp("exports")
    previous = os.environ.get(EXPORT_DIR)
    os.environ[EXPORT_DIR] = str(folder)
    yield folder
    if previous is None:
        del os.environ[EXPORT_DIR]
    else:
        os.environ[EXPORT_DIR] = previous


def observation(observation_id: str, patient_id: str, systolic: int) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": observation_id,
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]},
        "subject": {"reference": f"Patient/{patient_id}"},
        "effectiveDateTime": "2026-11-30T08:00:00+08:00",
        "valueQuantity": {"value": systolic, "unit": "mmHg", "system": "http://unitsofmeasure.org", "code": "mm[Hg]"},
    }


@pytest.fixture(scope="module")
def archive(api: Api) -> dict[str, list[str]]:
    """Three residents, four blood pressures, an organisation, and a care home Group of whom
    one resident is a member still (one is inactive, one's membership ended); returns the ids by type."""
    zhang = load_example("yy-patient/valid-zhang-xiuying.json")
    li = load_example("yy-patient/valid-li-jianguo-minimal.json")
    wang = {**synthetic_patient(random.Random(7), 7), "id": "wang-guihua"}  # another 身份证号: another person
    resources = [
        zhang,
        li,
        wang,
        observation("bp-zhang-1", zhang["id"], 150),
        observation("bp-zhang-2", zhang["id"], 142),
        observation("bp-li-1", li["id"], 128),
        observation("bp-wang-1", "wang-guihua", 135),
        load_example("yy-organization/valid-yiyang-center.json"),
        {
            "resourceType": "Group",
            "id": "home-a",
            "type": "person",
            "actual": True,
            "member": [
                {"entity": {"reference": f"Patient/{zhang['id']}"}},
                {"entity": {"reference": f"Patient/{li['id']}"}, "inactive": True},
                {"entity": {"reference": f"Patient/{wang['id']}"}, "period": {"end": "2021-05-01"}},  # moved out
            ],
        },
    ]
    ids: dict[str, list[str]] = {}
    for resource in resources:
        answer = api.put(f"{api.base}/{resource['resourceType']}/{resource['id']}", json=resource, timeout=30)
        assert answer.status_code in (200, 201), answer.text
        ids.setdefault(resource["resourceType"], []).append(resource["id"])
    return ids


def post_kick_off(
    api: Api, path: str, body: dict[str, Any], query: str = "", prefer: str = ASYNC["Prefer"]
) -> requests.Response:
    """A kick-off by POST with a Parameters body (IG v2)."""
    headers = {**ASYNC, "Prefer": prefer, "Content-Type": "application/fhir+json"}
    return api.post(f"{api.base}/{path}{query}", data=orjson.dumps(body), headers=headers, timeout=30)


def parameters(*parts: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Parameters", "parameter": list(parts)}


def export(
    api: Api, path: str = "$export", body: dict[str, Any] | None = None, prefer: str = ASYNC["Prefer"], **params: str
) -> dict[str, Any]:
    """Kick off (by GET with ``params``, or by POST with a Parameters ``body``) with this
    ``Prefer``, poll until done, and return the manifest."""
    if body is None:
        kicked = api.get(f"{api.base}/{path}", params=params, headers={**ASYNC, "Prefer": prefer}, timeout=30)
    else:
        kicked = post_kick_off(api, path, body, prefer=prefer)
    assert kicked.status_code == 202, kicked.text
    status_url = kicked.headers["Content-Location"]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        answer = api.get(status_url, timeout=30)
        if answer.status_code != 202:
            assert answer.status_code == 200, answer.text
            return {**answer.json(), "status_url": status_url}
        time.sleep(0.05)
    raise AssertionError(f"{status_url} still in progress after 60 s")


def lines(api: Api, url: str) -> list[dict[str, Any]]:
    answer = api.get(url, timeout=30)
    assert answer.headers["Content-Type"].startswith("application/fhir+ndjson")
    return [orjson.loads(line) for line in answer.content.splitlines()]


def exported(api: Api, manifest: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    return {entry["type"]: lines(api, entry["url"]) for entry in manifest["output"]}


def deletions(api: Api, manifest: dict[str, Any]) -> list[str]:
    """The references an incremental export's ``deleted`` files name (IG v2), each a DELETE."""
    bundles = [bundle for entry in manifest["deleted"] for bundle in lines(api, entry["url"])]
    requests = [entry["request"] for bundle in bundles for entry in bundle["entry"]]
    assert {request["method"] for request in requests} <= {"DELETE"}
    return sorted(request["url"] for request in requests)


def subjects(resources: list[dict[str, Any]]) -> set[str]:
    return {resource["subject"]["reference"] for resource in resources}


# -- kick-off --------------------------------------------------------------------------------
def test_kick_off_without_prefer_respond_async_is_refused(api: Api) -> None:
    answer = api.get(f"{api.base}/$export", headers={"Accept": "application/fhir+json"}, timeout=30)
    assert (answer.status_code, answer.json()["resourceType"]) == (400, "OperationOutcome")


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ("_outputFormat=text/csv", "_outputFormat"),
        ("_type=NoSuchType", "_type"),
    ],
)
def test_a_refused_kick_off_parameter_is_named_in_the_outcome(api: Api, query: str, parameter: str) -> None:
    answer = api.get(f"{api.base}/$export?{query}", headers=ASYNC, timeout=30)
    assert (answer.status_code, answer.json()["issue"][0].get("expression")) == (400, [parameter])


LENIENT = "respond-async, handling=lenient"


def warnings_reported(api: Api, manifest: dict[str, Any]) -> list[tuple[str, str, list[str]]]:
    """The issues of the OperationOutcomes a manifest's ``error`` files hold: severity, message
    id and where."""
    outcomes = [outcome for entry in manifest["error"] for outcome in lines(api, entry["url"])]
    return [
        (found["severity"], found["details"]["coding"][0]["code"], found["expression"])
        for outcome in outcomes
        for found in outcome["issue"]
    ]


def test_a_lenient_kick_off_reports_each_parameter_it_ignored_in_the_manifest(
    api: Api, archive: dict[str, list[str]]
) -> None:
    """IG v2 (manifest ``error``): with handling=lenient, an OperationOutcome for each invalid
    or unsupported parameter the server ignored.  Ignored in silence, the client believed its
    filter applied."""
    manifest = export(api, "Patient/$export", prefer=LENIENT, _type="Patient", includeAssociatedData="x", _until="y")
    assert warnings_reported(api, manifest) == [
        ("warning", "http.unsupported-parameter", ["includeAssociatedData"]),
        ("warning", "http.unsupported-parameter", ["_until"]),
    ]


def test_a_lenient_post_kick_off_reports_an_ignored_part_at_its_name(api: Api, archive: dict[str, list[str]]) -> None:
    body = parameters(string("_type", "Patient"), {"name": "organizeOutputBy", "valueString": "Patient"})
    manifest = export(api, "Patient/$export", body, prefer=LENIENT)
    assert warnings_reported(api, manifest) == [
        ("warning", "http.unsupported-parameter", ["Parameters.parameter[1].name"])
    ]


def test_a_kick_off_ignoring_nothing_has_an_empty_error_array(api: Api, archive: dict[str, list[str]]) -> None:
    assert export(api, "Patient/$export", prefer=LENIENT, _type="Patient")["error"] == []


def test_an_unknown_kick_off_parameter_is_refused_as_every_endpoint_refuses_one() -> None:
    """With the one message id every other endpoint answers an unknown parameter with (the
    Bulk Data IG asks only for a 400 OperationOutcome), naming what the kick-off takes."""
    with pytest.raises(FhirError) as refused:
        _parameters([("_type", "Patient"), ("includeAssociatedData", "LatestProvenanceResources")], lenient=False)
    assert (refused.value.status, refused.value.message_id, refused.value.params) == (
        400,
        "http.unsupported-parameter",
        {
            "name": "includeAssociatedData",
            "where": "$export",
            "supported": "_outputFormat, _since, _type, _elements, _typeFilter, patient",
        },
    )


@pytest.mark.parametrize("parameter", ["_since", "_outputFormat"])
def test_a_kick_off_parameter_of_one_value_given_twice_is_refused(api: Api, parameter: str) -> None:
    values = {"_since": ["2026-12-01T00:00:00Z", "2026-12-02T00:00:00Z"], "_outputFormat": ["ndjson", "ndjson"]}
    answer = api.get(f"{api.base}/$export", params={parameter: values[parameter]}, headers=ASYNC, timeout=30)
    found = answer.json()["issue"][0]
    assert (answer.status_code, found["details"]["coding"][0]["code"], found["expression"]) == (
        400,
        "http.repeated-parameter",
        [parameter],
    )


def kick_off(api: Api, query: str, headers: dict[str, str] = ASYNC) -> requests.Response:
    """A system kick-off whose job, if it starts, is cancelled at once: the test reads the
    answer alone, and a job left running holds one of the two its client may run at once."""
    answer = api.get(f"{api.base}/$export?{query}", headers=headers, timeout=30)
    if answer.status_code == 202:
        api.delete(answer.headers["Content-Location"], timeout=30)
    return answer


@pytest.mark.parametrize("control", ["_format=json", "_pretty=true"])
def test_a_kick_off_takes_the_controls_every_answer_takes(api: Api, control: str) -> None:
    """R4 http.html: _format and _pretty apply to every interaction; _pretty was a 400."""
    assert kick_off(api, f"_type=Patient&{control}").status_code == 202


def test_prefer_respond_async_is_read_in_any_case(api: Api) -> None:
    """RFC 7240 §2: preference names are case-insensitive."""
    assert kick_off(api, "_type=Patient", {**ASYNC, "Prefer": "Respond-Async"}).status_code == 202


def test_a_kick_off_with_unescaped_plus_signs_reads_them_as_meant(api: Api) -> None:
    """``application/fhir+ndjson`` and ``+08:00`` sent raw arrive with spaces (form decoding)."""
    answer = kick_off(api, "_outputFormat=application/fhir+ndjson&_since=2026-12-01T08:00:00+08:00")
    assert answer.status_code == 202, answer.text


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("PUT", "$export", "GET, POST"),
        ("DELETE", "Patient/$export", "GET, POST"),
        ("PUT", "Patient/$export", "GET, POST"),
        ("PATCH", "Group/home-a/$export", "GET, POST"),
        ("PUT", "$export-status/0123456789abcdef0123456789abcdef", "GET, HEAD, DELETE"),
        ("DELETE", "$export-file/0123456789abcdef0123456789abcdef/Patient.ndjson", "GET, HEAD"),
    ],
)
def test_another_method_at_an_export_path_is_405(api: Api, method: str, path: str, allowed: str) -> None:
    """Not the create, update or delete of a resource of type "$export" or id "$export"."""
    answer = api.request(method, f"{api.base}/{path}", headers=ASYNC, json={"resourceType": "Parameters"}, timeout=30)
    code = answer.json()["issue"][0]["details"]["coding"][0]["code"]
    assert (answer.status_code, code, answer.headers.get("Allow")) == (405, "http.method-not-allowed", allowed)


# -- kick-off by POST with a Parameters body, and patient ---------------------------------------
def string(name: str, value: str) -> dict[str, Any]:
    return {"name": name, "valueString": value}


def patient(reference: str) -> dict[str, Any]:
    return {"name": "patient", "valueReference": {"reference": reference}}


def refusal(answer: requests.Response) -> tuple[int, str, list[str] | None]:
    found = answer.json()["issue"][0]
    return answer.status_code, found["details"]["coding"][0]["code"], found.get("expression")


def test_a_post_kick_off_reads_its_parameters_from_the_body(api: Api, archive: dict[str, list[str]]) -> None:
    manifest = export(api, "Patient/$export", parameters(string("_type", "Patient")))
    assert [entry["type"] for entry in manifest["output"]] == ["Patient"]


def test_a_post_kick_off_takes_a_parameters_body_in_xml(api: Api, archive: dict[str, list[str]]) -> None:
    body = (
        '<Parameters xmlns="http://hl7.org/fhir"><parameter><name value="_type"/>'
        '<valueString value="Patient"/></parameter></Parameters>'
    )
    headers = {**ASYNC, "Content-Type": "application/fhir+xml"}
    answer = api.post(f"{api.base}/Patient/$export", data=body.encode(), headers=headers, timeout=30)
    api.delete(answer.headers.get("Content-Location", f"{api.base}/$export-status/none"), timeout=30)
    assert answer.status_code == 202, answer.text


@pytest.mark.parametrize(
    ("parts", "expected"),
    [
        ([string("_type", "Patient"), string("_type", "NoSuchType")], ("http.unknown-type", "[1].valueString")),
        ([{"name": "_since", "valueString": "2026-12-01T00:00:00Z"}], ("http.export-part-type", "[0].valueString")),
        ([{"name": "_since", "valueInstant": "yesterday"}], ("http.not-a-date", "[0].valueInstant")),
        (
            [string("_type", "Patient"), string("_type", "Patient"), patient("Group/x")],
            ("http.export-patient-reference", "[2].valueReference"),
        ),
        ([{"name": "patient", "valueString": "Patient/x"}], ("http.export-part-type", "[0].valueString")),
        ([string("includeAssociatedData", "x")], ("http.unsupported-parameter", "[0].name")),
        ([string("_typeFilter", "Observation?nosuch=1")], ("search.unknown-parameter", "[0].valueString")),
        ([string("_elements", "nosuch")], ("search.unknown-element", "[0].valueString")),
        ([{"name": "_type"}], ("http.export-part-type", "[0]")),
    ],
)
def test_a_refused_part_of_a_post_kick_off_is_located_in_the_body(
    api: Api, parts: list[dict[str, Any]], expected: tuple[str, str]
) -> None:
    """The checks a query string's parameter meets, named at the part's value (or name)."""
    message_id, where = expected
    answer = post_kick_off(api, "Patient/$export", parameters(*parts))
    assert refusal(answer) == (400, message_id, [f"Parameters.parameter{where}"])


def test_a_post_kick_off_refuses_parameters_in_the_url_besides_its_body(api: Api) -> None:
    answer = post_kick_off(api, "Patient/$export", parameters(string("_type", "Patient")), "?_type=Observation")
    assert refusal(answer) == (400, "http.export-query-and-body", ["_type"])


def test_a_post_kick_off_whose_body_is_not_parameters_is_refused(api: Api) -> None:
    answer = post_kick_off(api, "Patient/$export", {"resourceType": "Patient"})
    assert refusal(answer) == (400, "http.wrong-type", ["resourceType"])


def test_patient_in_a_query_string_is_refused(api: Api) -> None:
    """IG v2 types it a Reference, which a Parameters body alone carries."""
    answer = api.get(f"{api.base}/Patient/$export?patient=Patient/zhang-xiuying", headers=ASYNC, timeout=30)
    assert refusal(answer) == (400, "http.export-patient-needs-post", ["patient"])


def test_a_system_export_refuses_patient(api: Api) -> None:
    answer = post_kick_off(api, "$export", parameters(patient("Patient/zhang-xiuying")))
    assert refusal(answer) == (400, "http.export-patient-system", ["Parameters.parameter[0].valueReference"])


def test_a_patient_export_of_someone_who_does_not_exist_is_404(api: Api, archive: dict[str, list[str]]) -> None:
    answer = post_kick_off(api, "Patient/$export", parameters(patient("Patient/no-such-person")))
    assert refusal(answer) == (404, "http.not-found", ["Parameters.parameter[0].valueReference"])


def test_patient_limits_a_patient_export_to_the_named(api: Api, archive: dict[str, list[str]]) -> None:
    body = parameters(string("_type", "Patient,Observation"), patient("Patient/li-jianguo"))
    files = exported(api, export(api, "Patient/$export", body))
    assert ({r["id"] for r in files["Patient"]}, subjects(files["Observation"])) == (
        {"li-jianguo"},
        {"Patient/li-jianguo"},
    )


def test_patient_limits_a_group_export_to_the_named_members(api: Api, archive: dict[str, list[str]]) -> None:
    """Of a home's two residents, the one named alone is exported."""
    members = [{"entity": {"reference": f"Patient/{person}"}} for person in ("zhang-xiuying", "li-jianguo")]
    home = {"resourceType": "Group", "id": "home-b", "type": "person", "actual": True, "member": members}
    api.put(f"{api.base}/Group/home-b", json=home, timeout=30)
    try:
        body = parameters(string("_type", "Patient"), patient("Patient/li-jianguo"))
        files = exported(api, export(api, "Group/home-b/$export", body))
    finally:
        api.delete(f"{api.base}/Group/home-b", timeout=30)
    assert [r["id"] for r in files["Patient"]] == ["li-jianguo"]


def test_a_group_export_naming_someone_no_active_member_is_refused(api: Api, archive: dict[str, list[str]]) -> None:
    """IG v2 (patient): a patient who is no member of the group SHOULD be answered with an
    error.  李建国's membership of home-a is inactive: left out, he came back as an empty
    export, as if the archive held nothing of him."""
    body = parameters(string("_type", "Patient"), patient("Patient/zhang-xiuying"), patient("Patient/li-jianguo"))
    answer = post_kick_off(api, "Group/home-a/$export", body)
    assert refusal(answer) == (400, "http.export-patient-not-member", ["Parameters.parameter[2].valueReference"])


def test_a_group_export_naming_someone_who_does_not_exist_answers_as_for_no_member(
    api: Api, archive: dict[str, list[str]]
) -> None:
    """A Patient no one may read and a Patient who is no member of the Group get one answer:
    a 404 for the first made ``patient`` an oracle of who is in the archive."""
    answers = [
        post_kick_off(api, "Group/home-a/$export", parameters(string("_type", "Patient"), patient(f"Patient/{who}")))
        for who in ("no-such-person", "li-jianguo")
    ]
    assert refusal(answers[0]) == refusal(answers[1])


def test_a_patient_export_since_lists_the_deletions_of_the_named_alone(api: Api, archive: dict[str, list[str]]) -> None:
    for reading, person in (("bp-gone-zhang", "zhang-xiuying"), ("bp-gone-li", "li-jianguo")):
        api.put(f"{api.base}/Observation/{reading}", json=observation(reading, person, 120), timeout=30)
    body = parameters(string("_type", "Observation"), patient("Patient/zhang-xiuying"))
    since = export(api, "Patient/$export", body)["transactionTime"]
    for reading in ("bp-gone-zhang", "bp-gone-li"):
        api.delete(f"{api.base}/Observation/{reading}", timeout=30)
    body["parameter"].append({"name": "_since", "valueInstant": since})
    assert deletions(api, export(api, "Patient/$export", body)) == ["Observation/bp-gone-zhang"]


def test_group_export_of_an_unknown_group_is_404(api: Api) -> None:
    assert api.get(f"{api.base}/Group/no-such-group/$export", headers=ASYNC, timeout=30).status_code == 404


# -- what is exported ------------------------------------------------------------------------
def test_system_export_lists_each_type_with_its_count(api: Api, archive: dict[str, list[str]]) -> None:
    manifest = export(api)
    assert {entry["type"]: entry["count"] for entry in manifest["output"]} == {
        kind: len(ids) for kind, ids in archive.items()
    }


def test_the_manifest_says_its_files_need_the_token_and_they_do(api: Api, archive: dict[str, list[str]]) -> None:
    manifest = export(api)
    anonymous = requests.get(manifest["output"][0]["url"], timeout=30).status_code
    assert (manifest["requiresAccessToken"], anonymous) == (True, 401)


def narrowed_to_patients(served: Served, client_key: Any) -> Api:
    """The test client's session with a token it asked to carry ``system/Patient.rs`` alone, as
    it gets once its registration is narrowed to Patients (``yiyang client``)."""
    return Api(served.base, TEST_CLIENT, client_key, scope="system/Patient.rs")


def test_a_file_needs_a_token_whose_scopes_cover_what_was_exported(
    served: Served, api: Api, client_key: Any, archive: dict[str, list[str]]
) -> None:
    """IG v2 (Privacy and Security Considerations): a file is protected as its kick-off was, by
    a token whose scopes cover every resource exported; a token for Patients alone fetched the
    readings exported under a wider one."""
    manifest = export(api, _type="Patient,Observation")
    url = next(entry["url"] for entry in manifest["output"] if entry["type"] == "Observation")
    with narrowed_to_patients(served, client_key) as narrowed:
        assert narrowed.get(url, timeout=30).status_code == 403


def test_a_status_request_needs_a_token_whose_scopes_cover_what_was_exported(
    served: Served, api: Api, client_key: Any, archive: dict[str, list[str]]
) -> None:
    """The manifest (each type's count and file) is protected as the files are."""
    manifest = export(api, _type="Patient,Observation")
    with narrowed_to_patients(served, client_key) as narrowed:
        assert narrowed.get(manifest["status_url"], timeout=30).status_code == 403


#: a token for residents and their readings alone
PATIENTS_AND_READINGS = "system/Patient.rs system/Observation.rs"


@pytest.mark.parametrize("path", ["$export", "Patient/$export"])
def test_an_export_without_type_holds_the_types_the_token_may_read(
    served: Served, client_key: Any, archive: dict[str, list[str]], path: str
) -> None:
    """IG v2: with ``_type`` omitted the server SHALL return the resources within the client's
    authorisation; a token for two types was refused 403 asking for ``system/*.rs``.  Its
    status and files are then protected by those two types (it fetches them itself)."""
    with Api(served.base, TEST_CLIENT, client_key, scope=PATIENTS_AND_READINGS) as narrow:
        files = exported(narrow, export(narrow, path))
    assert sorted(files) == ["Observation", "Patient"]


def test_an_export_without_type_by_a_token_reading_no_exported_type_is_403(
    served: Served, client_key: Any, archive: dict[str, list[str]]
) -> None:
    """The audit trail is no part of an export: a token that may read it alone may export nothing."""
    with Api(served.base, TEST_CLIENT, client_key, scope="system/AuditEvent.rs") as auditor:
        answer = auditor.get(f"{served.base}/$export", headers=ASYNC, timeout=30)
    assert (answer.status_code, answer.headers.get("WWW-Authenticate", "")) == (
        403,
        'Bearer realm="yiyang", error="insufficient_scope", scope="system/*.rs"',
    )


def test_a_type_filter_of_a_type_the_token_may_not_read_is_403_without_type(
    served: Served, client_key: Any, archive: dict[str, list[str]]
) -> None:
    """Without ``_type`` a ``_typeFilter`` names a type the export is to hold: one outside the
    token's scopes is refused as ``_type`` naming it would be."""
    with Api(served.base, TEST_CLIENT, client_key, scope=PATIENTS_AND_READINGS) as narrow:
        query = {"_typeFilter": "Encounter?status=finished"}
        answer = narrow.get(f"{served.base}/Patient/$export", params=query, headers=ASYNC, timeout=30)
    assert (answer.status_code, answer.headers.get("WWW-Authenticate", "")) == (
        403,
        'Bearer realm="yiyang", error="insufficient_scope", scope="system/Encounter.rs"',
    )


def test_system_export_lines_are_the_stored_resources(api: Api, archive: dict[str, list[str]]) -> None:
    files = exported(api, export(api))
    stored = {
        kind: [api.get(f"{api.base}/{kind}/{resource['id']}", timeout=30).json() for resource in resources]
        for kind, resources in files.items()
    }
    assert files == stored


def test_an_export_file_is_stored_by_no_cache(api: Api, archive: dict[str, list[str]]) -> None:
    """docs/security.md: no-store on everything but the public discovery documents; the
    file server's own no-cache let a cache keep the health data to revalidate it."""
    answer = api.get(export(api)["output"][0]["url"], timeout=30)
    assert (answer.status_code, answer.headers["Cache-Control"], "Expires" in answer.headers) == (
        200,
        "no-store",
        False,
    )


def details(event: dict[str, Any]) -> dict[str, str]:
    """An AuditEvent's entity details by type (the request id, a delivery's bytes)."""
    return {detail["type"]: detail["valueString"] for detail in event["entity"][0].get("detail", [])}


def download_events(served: Served, api: Api, url: str, since: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The events of the one download of ``url``, begun after ``since``: its request's (those
    sharing the delivery's request id) and, once the body has ended, its delivery's (the one
    with a ``period``).  Read oldest first from ``since``: each look at the trail is an event
    too, and once the newest twenty were all such looks a delivery appended late (a loaded
    machine, in CI) could no longer be found among them."""
    path = url.split("/fhir", 1)[1]
    asked_for = {"date": f"ge{since}", "_sort": "date", "_count": "500"}
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        page = api.get(f"{served.base}/AuditEvent", params=asked_for, timeout=30).json()
        events = [
            entry["resource"]
            for entry in page.get("entry", [])
            if "$export-file" in [coding["code"] for coding in entry["resource"].get("subtype", [])]
            and path in entry["resource"].get("entity", [{}])[0].get("description", "")
        ]
        delivered = [event for event in events if "period" in event]
        if delivered:
            request_id = details(delivered[0])["request"]
            asked = [e for e in events if "period" not in e and details(e).get("request") == request_id]
            return asked, delivered[0]
        time.sleep(0.1)
    raise AssertionError(f"no delivery recorded for {path}")


def trail_instant() -> str:
    """Now, to the second below, as a ``date`` search of the trail reads it."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_a_whole_download_is_recorded_as_delivered_with_its_bytes(
    served: Served, api: Api, archive: dict[str, list[str]]
) -> None:
    """The request's event is written before a byte is sent; a second event of the same
    request says the file went out whole, and how many bytes."""
    url = export(api, _type="Patient")["output"][0]["url"]
    since = trail_instant()
    size = len(api.get(url, timeout=30).content)
    asked, delivered = download_events(served, api, url, since)
    sent = details(delivered)
    assert (len(asked), delivered["outcome"], sent["bytes-sent"], sent["bytes-total"]) == (1, "0", str(size), str(size))


def test_a_download_the_client_cuts_short_is_recorded_as_not_delivered(
    served: Served, api: Api, archive: dict[str, list[str]], export_dir: Path
) -> None:
    """A client that reads the first 64 KiB of a 32 MiB file and closes: more than the
    sockets' buffers hold is still unsent, so the server's writes fail and the delivery's
    event says outcome 4 with fewer bytes than the file's."""
    manifest = export(api, _type="Organization")
    url = manifest["output"][0]["url"]
    job_id, name = url.rsplit("/", 2)[1:]
    path = export_dir / job_id / name
    line = path.read_bytes().splitlines(keepends=True)[0]
    with path.open("ab") as handle:
        handle.write(line * (32 * 2**20 // len(line)))
    host, port = url.split("//", 1)[1].split("/", 1)[0].split(":")
    api.get(f"{api.base}/metadata", timeout=30)  # a fresh token in the session's header
    since = trail_instant()
    with socket.create_connection((host, int(port)), timeout=30) as client:
        head = f"GET {url.split(port, 1)[1]} HTTP/1.1\r\nHost: {host}\r\n"
        client.sendall(f"{head}Authorization: {api.headers['Authorization']}\r\n\r\n".encode())
        client.recv(65536)
    _, delivered = download_events(served, api, url, since)
    sent = details(delivered)
    assert (delivered["outcome"], int(sent["bytes-sent"]) < int(sent["bytes-total"])) == ("4", True)


def test_type_restricts_the_export(api: Api, archive: dict[str, list[str]]) -> None:
    manifest = export(api, _type="Patient,Group")
    assert sorted(entry["type"] for entry in manifest["output"]) == ["Group", "Patient"]


def test_since_exports_only_what_changed(api: Api, archive: dict[str, list[str]]) -> None:
    first = export(api)
    changed = observation("bp-li-1", "li-jianguo", 131)
    assert api.put(f"{api.base}/Observation/bp-li-1", json=changed, timeout=30).status_code == 200
    files = exported(api, export(api, _since=first["transactionTime"]))
    assert {kind: [r["id"] for r in resources] for kind, resources in files.items()} == {"Observation": ["bp-li-1"]}


def test_since_lists_what_was_deleted_since(api: Api, archive: dict[str, list[str]]) -> None:
    api.put(f"{api.base}/Observation/bp-gone", json=observation("bp-gone", "li-jianguo", 120), timeout=30)
    first = export(api, _type="Observation")
    api.delete(f"{api.base}/Observation/bp-gone", timeout=30)
    assert deletions(api, export(api, _type="Observation", _since=first["transactionTime"])) == ["Observation/bp-gone"]


def test_the_count_of_the_deletions_file_is_its_bundles(api: Api, archive: dict[str, list[str]]) -> None:
    """IG v2: a ``deleted`` item's ``count`` is the resources its file holds, one Bundle a
    line, however many DELETE entries each Bundle carries."""
    for reading in ("bp-gone-1", "bp-gone-2"):
        api.put(f"{api.base}/Observation/{reading}", json=observation(reading, "li-jianguo", 120), timeout=30)
    first = export(api, _type="Observation")
    for reading in ("bp-gone-1", "bp-gone-2"):
        api.delete(f"{api.base}/Observation/{reading}", timeout=30)
    [entry] = export(api, _type="Observation", _since=first["transactionTime"])["deleted"]
    assert entry["count"] == len(lines(api, entry["url"])) == 1


def test_a_group_export_since_sends_a_new_members_whole_record(api: Api, archive: dict[str, list[str]]) -> None:
    """李建国 joins the home after its last export: his older readings come with the next one."""
    home = {"resourceType": "Group", "id": "home-b", "type": "person", "actual": True}
    zhang = {"entity": {"reference": "Patient/zhang-xiuying"}}
    api.put(f"{api.base}/Group/home-b", json={**home, "member": [zhang]}, timeout=30)
    since = export(api, "Group/home-b/$export", _type="Observation")["transactionTime"]
    api.put(
        f"{api.base}/Group/home-b", json={**home, "member": [zhang, {"entity": {"reference": "Patient/li-jianguo"}}]}
    )
    files = exported(api, export(api, "Group/home-b/$export", _type="Observation", _since=since))
    api.delete(f"{api.base}/Group/home-b", timeout=30)  # the module's other exports know home-a alone
    assert subjects(files["Observation"]) == {"Patient/li-jianguo"}


def test_a_group_export_since_lists_the_deletion_of_what_it_exported(api: Api, archive: dict[str, list[str]]) -> None:
    """A reading of a member (张秀英) whose focus is someone outside the Group (李建国) is in
    the Group's export, so its deletion is in the next one's ``deleted``."""
    reading = {**observation("bp-focus-li", "zhang-xiuying", 138), "focus": [{"reference": "Patient/li-jianguo"}]}
    api.put(f"{api.base}/Observation/bp-focus-li", json=reading, timeout=30)
    first = export(api, "Group/home-a/$export", _type="Observation")
    held = {resource["id"] for resource in exported(api, first)["Observation"]}
    api.delete(f"{api.base}/Observation/bp-focus-li", timeout=30)
    manifest = export(api, "Group/home-a/$export", _type="Observation", _since=first["transactionTime"])
    assert ("bp-focus-li" in held, deletions(api, manifest)) == (True, ["Observation/bp-focus-li"])


def test_a_group_export_since_lists_a_members_record_moved_to_someone_else(
    api: Api, archive: dict[str, list[str]]
) -> None:
    """A reading filed under a member (张秀英) and then moved to 李建国's record, outside the
    Group: the platform's copy holds it as hers, so the next export's ``deleted`` removes it."""
    api.put(f"{api.base}/Observation/bp-moved", json=observation("bp-moved", "zhang-xiuying", 141), timeout=30)
    since = export(api, "Group/home-a/$export", _type="Observation")["transactionTime"]
    api.put(f"{api.base}/Observation/bp-moved", json=observation("bp-moved", "li-jianguo", 141), timeout=30)
    manifest = export(api, "Group/home-a/$export", _type="Observation", _since=since)
    api.delete(f"{api.base}/Observation/bp-moved", timeout=30)
    assert deletions(api, manifest) == ["Observation/bp-moved"]


def test_a_patient_export_since_lists_a_supporting_resource_deleted_since(
    api: Api, archive: dict[str, list[str]]
) -> None:
    """张秀英's reading names the care home that took it, so her export without ``_type`` sent
    the home along; the reading is then changed to name none and the home deleted: the next
    export's ``deleted`` lists it, and not a nursing home deleted meanwhile that nothing of
    the export ever named."""
    homes = [load_example(f"yy-organization/{name}.json") for name in ("valid-elderly-care-home", "valid-nursing-home")]
    for home in homes:
        api.put(f"{api.base}/Organization/{home['id']}", json=home, timeout=30)
    gone = f"Organization/{homes[0]['id']}"
    reading = observation("bp-by-home", "zhang-xiuying", 133)
    api.put(f"{api.base}/Observation/bp-by-home", json={**reading, "performer": [{"reference": gone}]}, timeout=30)
    first = export(api, "Patient/$export")
    sent = {f"Organization/{resource['id']}" for resource in exported(api, first)["Organization"]}
    api.put(f"{api.base}/Observation/bp-by-home", json=reading, timeout=30)
    for home in homes:
        api.delete(f"{api.base}/Organization/{home['id']}", timeout=30)
    manifest = export(api, "Patient/$export", _since=first["transactionTime"])
    api.delete(f"{api.base}/Observation/bp-by-home", timeout=30)
    assert (gone in sent, deletions(api, manifest)) == (True, [gone])


def stay(stay_id: str, patient_id: str, provider: str) -> dict[str, Any]:
    """A resident's home-bed stay run by ``provider`` (an Organization's id)."""
    home_bed = load_example("yy-encounter/valid-home-bed.json")
    return {
        **home_bed,
        "id": stay_id,
        "subject": {"reference": f"Patient/{patient_id}"},
        "serviceProvider": {"reference": f"Organization/{provider}"},
    }


def organisations_sent_after_renaming(
    api: Api, path: str, stays: list[dict[str, Any]], reader: Api | None = None, **params: str
) -> set[str]:
    """The Organizations a ``_since`` export sends when the providers of ``stays`` (written
    before the export it follows, unchanged since) were renamed after it; the stays and the
    providers are removed again.  ``reader`` runs the exports (by default ``api``)."""
    reader = reader or api
    providers = [
        load_example(f"yy-organization/{name}.json") for name in ("valid-elderly-care-home", "valid-nursing-home")
    ]
    for resource in [*providers, *stays]:
        answer = api.put(f"{api.base}/{resource['resourceType']}/{resource['id']}", json=resource, timeout=30)
        assert answer.status_code in (200, 201), answer.text
    since = export(reader, path, **params)["transactionTime"]
    for provider in providers:
        api.put(f"{api.base}/Organization/{provider['id']}", json={**provider, "name": f"{provider['name']}（新）"})
    files = exported(reader, export(reader, path, **params, _since=since))
    for resource in [*stays, *providers]:
        gone = api.delete(f"{api.base}/{resource['resourceType']}/{resource['id']}", timeout=30)
        assert gone.status_code < 300, gone.text
    return {resource["id"] for resource in files.get("Organization", [])}


def test_a_since_export_sends_a_renamed_organisation_an_unchanged_stay_names(
    api: Api, archive: dict[str, list[str]]
) -> None:
    """张秀英's stay, unchanged since the last export, is run by a care home renamed since: the
    platform's copy of the home would otherwise keep its old name for good.  The nursing home
    renamed meanwhile, which nothing of hers names, is not sent."""
    stays = [stay("stay-home", "zhang-xiuying", "jinshui-fushou-elderly-home")]
    assert organisations_sent_after_renaming(api, "Patient/$export", stays) == {"jinshui-fushou-elderly-home"}


def test_a_since_export_leaves_out_a_renamed_organisation_only_others_records_name(
    api: Api, archive: dict[str, list[str]]
) -> None:
    """The home's export is of 张秀英 alone: the nursing home that runs 李建国's stay is none of
    its business, renamed or not."""
    stays = [
        stay("stay-home", "zhang-xiuying", "jinshui-fushou-elderly-home"),
        stay("stay-nursing", "li-jianguo", "jinshui-nursing-home"),
    ]
    assert organisations_sent_after_renaming(api, "Group/home-a/$export", stays) == {"jinshui-fushou-elderly-home"}


def test_a_since_export_leaves_out_a_renamed_organisation_only_filtered_out_records_name(
    api: Api, archive: dict[str, list[str]]
) -> None:
    """Only finished stays are exported: the nursing home running one still in progress is not sent."""
    stays = [
        {**stay("stay-home", "zhang-xiuying", "jinshui-fushou-elderly-home"), "status": "finished"},
        stay("stay-nursing", "zhang-xiuying", "jinshui-nursing-home"),
    ]
    sent = organisations_sent_after_renaming(api, "Patient/$export", stays, _typeFilter="Encounter?status=finished")
    assert sent == {"jinshui-fushou-elderly-home"}


def test_a_since_export_leaves_out_a_renamed_organisation_only_elements_cut_out(
    api: Api, archive: dict[str, list[str]]
) -> None:
    """The stays are exported cut to their status: the care home they no longer name is not sent."""
    stays = [stay("stay-home", "zhang-xiuying", "jinshui-fushou-elderly-home")]
    assert organisations_sent_after_renaming(api, "Patient/$export", stays, _elements="Encounter.status") == set()


def ids(resources: list[dict[str, Any]]) -> list[str]:
    return sorted(resource["id"] for resource in resources)


def test_a_type_filter_keeps_only_what_its_search_matches(api: Api, archive: dict[str, list[str]]) -> None:
    manifest = export(api, _type="Observation", _typeFilter="Observation?value-quantity=gt140")
    assert ids(exported(api, manifest)["Observation"]) == ["bp-zhang-1", "bp-zhang-2"]


def test_a_type_filter_leaves_the_other_types_whole(api: Api, archive: dict[str, list[str]]) -> None:
    manifest = export(api, _typeFilter="Observation?value-quantity=gt140")
    assert ids(exported(api, manifest)["Patient"]) == sorted(archive["Patient"])


def test_type_filters_of_one_type_keep_what_any_of_them_matches(api: Api, archive: dict[str, list[str]]) -> None:
    """Two searches, as two parameters or as one comma list (IG v2), are either's matches."""
    searches = ["Observation?subject=Patient/wang-guihua", "Observation?value-quantity=gt145"]
    repeated = export(api, _type="Observation", _typeFilter=searches)
    listed = export(api, _type="Observation", _typeFilter=",".join(searches))
    assert (ids(exported(api, repeated)["Observation"]), ids(exported(api, listed)["Observation"])) == (
        ["bp-wang-1", "bp-zhang-1"],
        ["bp-wang-1", "bp-zhang-1"],
    )


def test_a_comma_within_a_type_filters_value_is_sent_encoded(api: Api, archive: dict[str, list[str]]) -> None:
    """``%2C`` inside the search (encoded once more as the parameter's value) is the search's
    own comma, an "or" of its values, not a second search."""
    li = load_example("yy-patient/valid-li-jianguo-minimal.json")["id"]
    manifest = export(api, _type="Observation", _typeFilter=f"Observation?subject=Patient/wang-guihua%2CPatient/{li}")
    assert ids(exported(api, manifest)["Observation"]) == ["bp-li-1", "bp-wang-1"]


def test_a_patient_export_filters_each_residents_compartment(api: Api, archive: dict[str, list[str]]) -> None:
    manifest = export(api, "Patient/$export", _type="Observation", _typeFilter="Observation?value-quantity=lt145")
    assert ids(exported(api, manifest)["Observation"]) == ["bp-li-1", "bp-wang-1", "bp-zhang-2"]


def test_a_group_export_since_lists_what_its_type_filter_no_longer_keeps(
    api: Api, archive: dict[str, list[str]]
) -> None:
    """A member's high reading the platform received, since corrected below the filter's
    bound: its copy must drop it, as a deletion."""
    high = {"_type": "Observation", "_typeFilter": "Observation?value-quantity=gt140"}
    api.put(f"{api.base}/Observation/bp-high", json=observation("bp-high", "zhang-xiuying", 160), timeout=30)
    since = export(api, "Group/home-a/$export", **high)["transactionTime"]
    api.put(f"{api.base}/Observation/bp-high", json=observation("bp-high", "zhang-xiuying", 125), timeout=30)
    manifest = export(api, "Group/home-a/$export", **high, _since=since)
    api.delete(f"{api.base}/Observation/bp-high", timeout=30)
    assert deletions(api, manifest) == ["Observation/bp-high"]


def test_elements_cut_the_exported_resources_of_their_type(api: Api, archive: dict[str, list[str]]) -> None:
    """Mandatory elements stay and the cut resource says it is SUBSETTED; other types whole."""
    files = exported(api, export(api, _type="Observation,Organization", _elements="Observation.subject"))
    cut = files["Observation"][0]
    assert (
        sorted(set(cut) - {"meta"}),
        cut["meta"]["tag"][-1]["code"],
        files["Organization"][0].get("name") is not None,
    ) == (["code", "id", "resourceType", "status", "subject"], "SUBSETTED", True)


def test_type_filter_searches_given_as_many_parameters_count_together(api: Api) -> None:
    searches = [f"Observation?code=8480-{number}" for number in range(33)]
    answer = api.get(f"{api.base}/$export", params={"_typeFilter": searches}, headers=ASYNC, timeout=30)
    assert (answer.status_code, answer.json()["issue"][0]["details"]["coding"][0]["code"]) == (
        400,
        "http.export-too-many-type-filters",
    )


@pytest.mark.parametrize("elements", ["Patient.name.given", "Observation.nosuch", "nosuch"])
def test_elements_naming_no_top_level_element_are_refused(api: Api, elements: str) -> None:
    answer = api.get(f"{api.base}/$export", params={"_elements": elements}, headers=ASYNC, timeout=30)
    issue = answer.json()["issue"][0]
    assert (answer.status_code, issue["details"]["coding"][0]["code"], issue["expression"]) == (
        400,
        "search.unknown-element",
        ["_elements"],
    )


def test_a_system_export_since_lists_what_its_type_filter_no_longer_keeps(
    api: Api, archive: dict[str, list[str]]
) -> None:
    high = {"_type": "Observation", "_typeFilter": "Observation?value-quantity=gt140"}
    api.put(f"{api.base}/Observation/bp-sys", json=observation("bp-sys", "zhang-xiuying", 160), timeout=30)
    since = export(api, **high)["transactionTime"]
    api.put(f"{api.base}/Observation/bp-sys", json=observation("bp-sys", "zhang-xiuying", 125), timeout=30)
    manifest = export(api, **high, _since=since)
    api.delete(f"{api.base}/Observation/bp-sys", timeout=30)
    assert deletions(api, manifest) == ["Observation/bp-sys"]


def test_what_elements_cut_out_brings_no_supporting_resource(api: Api, archive: dict[str, list[str]]) -> None:
    """张秀英's managing organisation comes along only with the reference that names it."""
    files = exported(api, export(api, "Patient/$export", _elements="Patient.name"))
    assert "Organization" not in files


def test_elements_naming_a_type_the_export_does_not_hold_are_refused(api: Api) -> None:
    params = {"_type": "Patient", "_elements": "Observation.code"}
    answer = api.get(f"{api.base}/Patient/$export", params=params, headers=ASYNC, timeout=30)
    assert (answer.status_code, answer.json()["issue"][0]["details"]["coding"][0]["code"]) == (
        400,
        "search.unknown-element",
    )


@pytest.mark.parametrize(
    ("path", "params", "message_id"),
    [
        ("$export", {"_typeFilter": "Observation"}, "http.export-type-filter-form"),
        ("$export", {"_typeFilter": "Observation?"}, "http.export-type-filter-form"),
        ("$export", {"_typeFilter": "Observation?_count=5"}, "http.export-type-filter-result-parameter"),
        ("$export", {"_typeFilter": "Observation?code=8480-6&_sort=date"}, "http.export-type-filter-result-parameter"),
        ("$export", {"_typeFilter": "Observation?no-such-parameter=1"}, "search.unknown-parameter"),
        ("$export", {"_typeFilter": "NoSuchType?name=x"}, "http.unknown-type"),
        ("$export", {"_typeFilter": ",".join(["Observation?code=8480-6"] * 33)}, "http.export-too-many-type-filters"),
        (
            "$export",
            {"_type": "Patient", "_typeFilter": "Observation?code=8480-6"},
            "http.export-type-filter-not-exported",
        ),
        (
            "Patient/$export",
            {"_type": "Patient", "_typeFilter": "Organization?name=x"},
            "http.export-type-outside-compartment",
        ),
    ],
)
def test_a_type_filter_the_export_cannot_run_is_refused_at_kick_off(
    api: Api, path: str, params: dict[str, str], message_id: str
) -> None:
    answer = api.get(f"{api.base}/{path}", params=params, headers=ASYNC, timeout=30)
    issue = answer.json()["issue"][0]
    assert (answer.status_code, issue["details"]["coding"][0]["code"], issue["expression"]) == (
        400,
        message_id,
        ["_typeFilter"],
    )


def test_a_type_filter_keeps_of_what_a_patient_export_sends_along_only_its_matches(
    api: Api, archive: dict[str, list[str]]
) -> None:
    """Organization is no type of the Patient compartment, but a Patient export without
    ``_type`` sends along the one its residents' records name: a filter of it was refused 400,
    as if the export could not hold one."""
    files = exported(api, export(api, "Patient/$export", _typeFilter="Organization?active=false"))
    assert "Organization" not in files


def test_elements_cut_what_a_patient_export_sends_along(api: Api, archive: dict[str, list[str]]) -> None:
    files = exported(api, export(api, "Patient/$export", _elements="Organization.identifier"))
    assert {key for key in files["Organization"][0] if key not in ("resourceType", "id", "meta")} == {"identifier"}


def test_a_patient_export_since_deletes_what_it_sent_along_that_its_filter_no_longer_keeps(
    api: Api, archive: dict[str, list[str]]
) -> None:
    """The organisation managing 张秀英's record, sent along while active, closed since: the
    platform's copy of it must go, as a system export's of a filtered type does."""
    organisation = load_example("yy-organization/valid-yiyang-center.json")
    url = f"{api.base}/Organization/{organisation['id']}"
    since = export(api, "Patient/$export", _typeFilter="Organization?active=true")["transactionTime"]
    api.put(url, json={**organisation, "active": False}, timeout=30)
    try:
        manifest = export(api, "Patient/$export", _typeFilter="Organization?active=true", _since=since)
    finally:
        api.put(url, json=organisation, timeout=30)
    assert f"Organization/{organisation['id']}" in deletions(api, manifest)


def test_patient_export_holds_the_residents_their_compartments_and_what_they_refer_to(
    api: Api, archive: dict[str, list[str]]
) -> None:
    """张秀英's record names the organisation managing it: it comes along, or the platform's
    copy would hold a reference that resolves to nothing (it may not export Organizations)."""
    files = exported(api, export(api, "Patient/$export"))
    assert {kind: {r["id"] for r in resources} for kind, resources in files.items()} == {
        "Patient": set(archive["Patient"]),
        "Observation": set(archive["Observation"]),
        "Group": {"home-a"},
        "Organization": {"jinshui-yiyang-center"},
    }


def provenance(provenance_id: str, *targets: str) -> dict[str, Any]:
    """A Provenance of ``targets`` (references), recorded by a nurse."""
    return {
        "resourceType": "Provenance",
        "id": provenance_id,
        "target": [{"reference": target} for target in targets],
        "recorded": "2026-12-01T08:00:00+08:00",
        "agent": [{"who": {"display": "护士"}}],
    }


def exported_with(api: Api, written: dict[str, Any], path: str, **params: str) -> dict[str, list[dict[str, Any]]]:
    """The files of an export of ``path`` run while ``written`` is in the archive (removed again)."""
    answer = api.put(f"{api.base}/{written['resourceType']}/{written['id']}", json=written, timeout=30)
    assert answer.status_code in (200, 201), answer.text
    files = exported(api, export(api, path, **params))
    api.delete(f"{api.base}/{written['resourceType']}/{written['id']}", timeout=30)
    return files


@pytest.mark.parametrize("path", ["Patient/$export", "Group/home-a/$export"])
def test_a_patient_or_group_export_holds_the_provenance_of_an_exported_record(
    api: Api, archive: dict[str, list[str]], path: str
) -> None:
    """IG v2: without ``includeAssociatedData`` a Patient or Group export SHALL hold every
    Provenance whose target is in the Patient compartment, not only those targeting a Patient:
    here one of 张秀英's first blood pressure."""
    files = exported_with(api, provenance("prov-bp-zhang-1", "Observation/bp-zhang-1"), path)
    assert "prov-bp-zhang-1" in ids(files.get("Provenance", []))


def test_a_group_export_leaves_out_the_provenance_of_a_non_members_record(
    api: Api, archive: dict[str, list[str]]
) -> None:
    """The Provenance of 李建国's reading (an inactive member) is not the home's to receive."""
    files = exported_with(api, provenance("prov-bp-li-1", "Observation/bp-li-1"), "Group/home-a/$export")
    assert "prov-bp-li-1" not in ids(files.get("Provenance", []))


def test_a_provenance_of_two_exported_records_is_written_once(api: Api, archive: dict[str, list[str]]) -> None:
    """A Provenance of a resident and two of her readings is met three times, written once."""
    targets = ["Observation/bp-zhang-1", "Observation/bp-zhang-2", "Patient/zhang-xiuying"]
    files = exported_with(api, provenance("prov-zhang-all", *targets), "Patient/$export")
    assert ids(files.get("Provenance", [])).count("prov-zhang-all") == 1


@pytest.mark.parametrize("path", ["Patient/$export", "Group/home-a/$export"])
def test_a_since_export_holds_a_provenance_written_since_of_an_unchanged_record(
    api: Api, archive: dict[str, list[str]], path: str
) -> None:
    """A Provenance recorded after the last export, of 张秀英's first blood pressure (unchanged
    since): only the records changed since were asked for their Provenances."""
    since = export(api, path)["transactionTime"]
    files = exported_with(api, provenance("prov-late-zhang", "Observation/bp-zhang-1"), path, _since=since)
    assert "prov-late-zhang" in ids(files.get("Provenance", []))


def test_a_group_export_since_leaves_out_a_provenance_written_since_of_a_non_members_record(
    api: Api, archive: dict[str, list[str]]
) -> None:
    """李建国 (an inactive member) is not the home's: nor is a Provenance of his reading."""
    since = export(api, "Group/home-a/$export")["transactionTime"]
    written = provenance("prov-late-li", "Observation/bp-li-1")
    files = exported_with(api, written, "Group/home-a/$export", _since=since)
    assert "prov-late-li" not in ids(files.get("Provenance", []))


@pytest.mark.parametrize("path", ["Patient/$export", "Group/home-a/$export"])
def test_a_since_export_lists_the_deletion_of_a_provenance_of_a_record(
    api: Api, archive: dict[str, list[str]], path: str
) -> None:
    """A Provenance of 张秀英's reading alone (no Patient among its targets), exported and
    deleted since: the platform's copy must drop it too."""
    written = provenance("prov-gone-zhang", "Observation/bp-zhang-2")
    api.put(f"{api.base}/Provenance/prov-gone-zhang", json=written, timeout=30)
    since = export(api, path)["transactionTime"]
    api.delete(f"{api.base}/Provenance/prov-gone-zhang", timeout=30)
    assert "Provenance/prov-gone-zhang" in deletions(api, export(api, path, _since=since))


def test_a_since_export_lists_the_deletion_of_a_provenance_of_a_record_deleted_too(
    api: Api, archive: dict[str, list[str]]
) -> None:
    """A reading of 张秀英 and its Provenance, both exported and deleted since: the reading no
    longer says whose it was, its listed deletion does."""
    api.put(f"{api.base}/Observation/bp-gone-prov", json=observation("bp-gone-prov", "zhang-xiuying", 133), timeout=30)
    written = provenance("prov-of-gone", "Observation/bp-gone-prov")
    api.put(f"{api.base}/Provenance/prov-of-gone", json=written, timeout=30)
    since = export(api, "Patient/$export")["transactionTime"]
    api.delete(f"{api.base}/Provenance/prov-of-gone", timeout=30)
    api.delete(f"{api.base}/Observation/bp-gone-prov", timeout=30)
    assert "Provenance/prov-of-gone" in deletions(api, export(api, "Patient/$export", _since=since))


def test_a_patient_export_of_named_types_holds_those_types_alone(api: Api, archive: dict[str, list[str]]) -> None:
    files = exported(api, export(api, "Patient/$export", _type="Patient"))
    assert sorted(files) == ["Patient"]


def test_group_export_holds_only_the_active_members(api: Api, archive: dict[str, list[str]]) -> None:
    files = exported(api, export(api, "Group/home-a/$export", _type="Patient,Observation"))
    found = ({r["id"] for r in files["Patient"]}, subjects(files["Observation"]), len(files["Observation"]))
    assert found == ({"zhang-xiuying"}, {"Patient/zhang-xiuying"}, 2)


def test_export_files_are_owner_only(api: Api, archive: dict[str, list[str]], export_dir: Path) -> None:
    manifest = export(api, _type="Patient")
    folder = export_dir / manifest["status_url"].rsplit("/", 1)[1]
    modes = {stat.S_IMODE(path.stat().st_mode) for path in [folder, *folder.iterdir()]}
    assert modes == {0o700, 0o600}


# -- status, cancel, files -------------------------------------------------------------------
def test_unknown_job_is_404(api: Api) -> None:
    assert api.get(f"{api.base}/$export-status/{'0' * 32}", timeout=30).status_code == 404


def test_delete_removes_the_job_and_its_files(api: Api, archive: dict[str, list[str]], export_dir: Path) -> None:
    manifest = export(api, _type="Patient")
    assert api.delete(manifest["status_url"], timeout=30).status_code == 202
    gone = (
        api.get(manifest["status_url"], timeout=30).status_code,
        api.get(manifest["output"][0]["url"], timeout=30).status_code,
        (export_dir / manifest["status_url"].rsplit("/", 1)[1]).exists(),
    )
    assert gone == (404, 404, False)


def test_a_file_name_with_dot_dot_is_refused(api: Api, archive: dict[str, list[str]]) -> None:
    manifest = export(api, _type="Patient")
    job_id = manifest["status_url"].rsplit("/", 1)[1]
    answer = api.get(f"{api.base}/$export-file/{job_id}/%2E%2E", timeout=30)
    assert answer.status_code == 400


def test_capability_statement_advertises_the_exports(api: Api) -> None:
    statement = api.get(f"{api.base}/metadata", timeout=30).json()
    resources = {entry["type"]: entry for entry in statement["rest"][0]["resource"]}
    definitions = {
        operation["definition"]
        for operations in (
            statement["rest"][0]["operation"],
            *(resources[k]["operation"] for k in ("Patient", "Group")),
        )
        for operation in operations
        if operation["name"] == "export"
    }
    assert definitions == {
        "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/export",
        "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/patient-export",
        "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/group-export",
    }


def test_a_finished_export_says_when_it_expires(api: Api, archive: dict[str, list[str]]) -> None:
    """IG v2: Expires on the manifest, a day after the job ended by default."""
    answer = api.get(export(api, _type="Patient")["status_url"], timeout=30)
    lag = abs(parsedate_to_datetime(answer.headers["Expires"]) - (datetime.now(UTC) + timedelta(days=1)))
    assert lag < timedelta(minutes=5), answer.headers.get("Expires")


@pytest.fixture
def running_jobs_of_the_test_client(served: Served) -> Iterator[None]:
    """As many jobs in progress, beating now, as one client may run at once (2 by default),
    removed afterwards: a real job would end before the next kick-off."""
    store = open_store(served.database_url, upgrade=False)
    ids = [f"{n:032x}" for n in range(1, 3)]
    row = "(id, request, scope, status, created, heartbeat, progress, client) VALUES (?, 'http://x/', 'system', ?, ?, ?, 0, ?)"
    with store.transaction() as tx:
        for job_id in ids:
            tx.sql.execute(
                f"INSERT INTO export_job {row}", (job_id, IN_PROGRESS, now_instant(), now_instant(), TEST_CLIENT)
            )
    yield
    with store.transaction() as tx:
        for job_id in ids:
            tx.sql.execute("DELETE FROM export_job WHERE id = ?", (job_id,))
    store.close()


def test_a_kick_off_beyond_the_clients_running_jobs_is_429_with_retry_after(
    api: Api, running_jobs_of_the_test_client: None
) -> None:
    answer = api.get(f"{api.base}/$export", headers=ASYNC, timeout=30)
    refusal = (answer.status_code, answer.json()["issue"][0]["code"], "Retry-After" in answer.headers)
    assert refusal == (429, "throttled", True)


# -- the stale-job rule ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def personal() -> PersonalData:
    return PersonalData(Registry())


def exports(
    store: Store,
    folder: Path,
    personal: PersonalData,
    stale_seconds: int,
    searcher: Searcher,
    **limits: int,
) -> BulkExports:
    return BulkExports(
        store, personal, frozenset(personal.compartment), folder, stale_seconds, searcher=searcher, **limits
    )


def test_a_job_whose_worker_stopped_beating_fails_at_the_next_status_request(
    store: Store, tmp_path: Path, personal: PersonalData, searcher: Searcher
) -> None:
    job = exports(store, tmp_path, personal, 3600, searcher).kick_off("http://x/fhir/$export", "system", [])
    (tmp_path / job.id).mkdir()
    (tmp_path / job.id / "Patient.ndjson").write_text("{}\n")
    time.sleep(0.01)
    found = exports(store, tmp_path, personal, 0, searcher).status(job.id)
    assert (found.status, found.error["message_id"], (tmp_path / job.id).exists()) == (
        FAILED,
        "http.export-abandoned",
        False,
    )


def test_a_job_beating_within_the_limit_stays_in_progress(
    store: Store, tmp_path: Path, personal: PersonalData, searcher: Searcher
) -> None:
    job = exports(store, tmp_path, personal, 3600, searcher).kick_off("http://x/fhir/$export", "system", [])
    assert exports(store, tmp_path, personal, 3600, searcher).status(job.id).status == IN_PROGRESS


def test_an_export_of_the_audit_trail_is_refused_naming_type(
    store: Store, tmp_path: Path, personal: PersonalData, searcher: Searcher
) -> None:
    """The trail is not in the archive an export reads: it answered 202 and an empty output."""
    jobs = BulkExports(store, personal, r4_resource_types(), tmp_path, 3600, searcher=searcher)
    with pytest.raises(FhirError) as refused:
        jobs.kick_off("http://x/fhir/$export?_type=AuditEvent", "system", [("_type", "AuditEvent")])
    assert (refused.value.status, refused.value.message_id, refused.value.expression) == (
        400,
        "http.export-type-not-archived",
        "_type",
    )


def test_a_job_that_cannot_write_its_files_fails_with_an_incident(
    store: Store, tmp_path: Path, personal: PersonalData, searcher: Searcher
) -> None:
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("")
    jobs = exports(store, blocked, personal, 3600, searcher)
    job = jobs.kick_off("http://x/fhir/$export", "system", [])
    jobs.run(job.id)
    assert jobs.status(job.id).failure().message_id == "http.export-internal"


def test_a_group_deleted_after_its_export_began_fails_the_job_with_404(
    store: Store, tmp_path: Path, personal: PersonalData, searcher: Searcher
) -> None:
    """It exported nothing, completed, as if the home had no residents left."""
    with store.transaction() as tx:
        tx.resources.write({"resourceType": "Patient", "id": "gone-member"})
        tx.resources.write(
            {
                "resourceType": "Group",
                "id": "gone",
                "type": "person",
                "actual": True,
                "member": [{"entity": {"reference": "Patient/gone-member"}}],
            }
        )
    jobs = exports(store, tmp_path, personal, 3600, searcher)
    job = jobs.kick_off("http://x/fhir/Group/gone/$export", "Group/gone", [])
    with store.transaction() as tx:
        tx.resources.delete("Group", "gone")
    jobs.run(job.id)
    failure = jobs.status(job.id).failure()
    assert (failure.status, failure.message_id) == (404, "http.export-group-gone")


def test_a_job_cancelled_while_it_writes_logs_no_incident(
    store: Store,
    tmp_path: Path,
    personal: PersonalData,
    searcher: Searcher,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The DELETE removes the folder the job writes into; its next file then cannot be opened."""
    jobs = exports(store, tmp_path, personal, 3600, searcher)
    job = jobs.kick_off("http://x/fhir/$export", "system", [])

    def cancelled_midway(*_args: object) -> list[dict[str, Any]]:
        jobs.cancel(job.id)
        raise FileNotFoundError(tmp_path / job.id / "Patient.ndjson")

    monkeypatch.setattr(jobs, "_write", cancelled_midway)
    with caplog.at_level(logging.WARNING, logger="yiyang.export"):
        jobs.run(job.id)
    assert [record.getMessage() for record in caplog.records] == []


def moved_in_and_out_during_an_export(store: Store, jobs: BulkExports, reading: str) -> Job:
    """An export reads the archive after its kick-off: the first export of the home sends
    张秀英 a reading of 李建国 moved to her after its ``transactionTime``, which is then moved
    back to him.  The first export's job."""
    home = {"resourceType": "Group", "id": "home", "type": "person", "actual": True}
    with store.transaction() as tx:
        for person in ("zhang", "li"):
            tx.resources.write({"resourceType": "Patient", "id": person})
        tx.resources.write({**home, "member": [{"entity": {"reference": "Patient/zhang"}}]})
        tx.resources.write(observation(reading, "li", 120))
    first = jobs.kick_off("http://x/fhir/Group/home/$export", "Group/home", [("_type", "Observation")])
    with store.transaction() as tx:
        tx.resources.write(observation(reading, "zhang", 120))
    jobs.run(first.id)
    with store.transaction() as tx:
        tx.resources.write(observation(reading, "li", 120))
    return first


def deletions_since(jobs: BulkExports, tmp_path: Path, first: Job) -> list[str]:
    """What the home's next export, since the first, lists as deleted."""
    since = [("_type", "Observation"), ("_since", first.created)]
    second = jobs.kick_off("http://x/fhir/Group/home/$export", "Group/home", since)
    jobs.run(second.id)
    deleted = (tmp_path / second.id / "Deleted.ndjson").read_bytes().splitlines()
    return [entry["request"]["url"] for line in deleted for entry in orjson.loads(line)["entry"]]


def test_a_group_export_since_lists_a_version_the_export_before_it_sent_after_its_kick_off(
    store: Store, tmp_path: Path, personal: PersonalData, searcher: Searcher
) -> None:
    """The reading is 李建国's at both ends of the next export's window, yet the platform's
    copy holds it as 张秀英's."""
    jobs = exports(store, tmp_path, personal, 3600, searcher)
    first = moved_in_and_out_during_an_export(store, jobs, "bp-back")
    sent = [orjson.loads(line)["id"] for line in (tmp_path / first.id / "Observation.ndjson").read_bytes().splitlines()]
    assert (sent, deletions_since(jobs, tmp_path, first)) == (["bp-back"], ["Observation/bp-back"])


def test_a_group_export_since_lists_the_deletion_of_a_version_the_export_before_sent(
    store: Store, tmp_path: Path, personal: PersonalData, searcher: Searcher
) -> None:
    """As above, but the reading is then deleted: its last content names 李建国 alone, and yet
    the platform's copy holds it as 张秀英's."""
    jobs = exports(store, tmp_path, personal, 3600, searcher)
    first = moved_in_and_out_during_an_export(store, jobs, "bp-gone")
    with store.transaction() as tx:
        tx.resources.delete("Observation", "bp-gone")
    assert deletions_since(jobs, tmp_path, first) == ["Observation/bp-gone"]


def test_a_group_export_leaves_out_a_member_whose_period_has_not_begun(
    store: Store, tmp_path: Path, personal: PersonalData, searcher: Searcher
) -> None:
    """A resident booked to move in next year is not yet the home's: exporting them sent their
    archive to the home before it served them."""
    jobs = exports(store, tmp_path, personal, 3600, searcher)
    members = [
        {"entity": {"reference": "Patient/zhang"}, "period": {"start": "2020-01-01"}},
        {"entity": {"reference": "Patient/li"}, "period": {"start": "2999-01-01"}},
    ]
    with store.transaction() as tx:
        for person in ("zhang", "li"):
            tx.resources.write({"resourceType": "Patient", "id": person})
        tx.resources.write({"resourceType": "Group", "id": "home", "type": "person", "actual": True, "member": members})
    job = jobs.kick_off("http://x/fhir/Group/home/$export", "Group/home", [("_type", "Patient")])
    jobs.run(job.id)
    written = (tmp_path / job.id / "Patient.ndjson").read_bytes().splitlines()
    assert [orjson.loads(line)["id"] for line in written] == ["zhang"]


def test_a_sweep_reads_the_jobs_to_clear_in_one_statement(
    store: Store, tmp_path: Path, personal: PersonalData, searcher: Searcher, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every kick-off and status poll sweeps: it read the abandoned jobs and the expired ones by
    a statement each, where one finds both."""
    jobs = exports(store, tmp_path, personal, 3600, searcher)
    statements: list[str] = []
    original = Dialect.sql

    def recorded(dialect: Dialect, text: str) -> str:
        statements.append(text)
        return original(dialect, text)

    monkeypatch.setattr(Dialect, "sql", recorded)
    jobs.sweep()
    assert len([text for text in statements if text.startswith("SELECT") and "FROM export_job" in text]) == 1


def visit(visit_id: str, patient_id: str, doctors: list[str], status: str = "finished") -> dict[str, Any]:
    """A stay of ``patient_id`` in which each of ``doctors`` (Practitioner ids) took part."""
    return {
        "resourceType": "Encounter",
        "id": visit_id,
        "status": status,
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "HH"},
        "subject": {"reference": f"Patient/{patient_id}"},
        "participant": [{"individual": {"reference": f"Practitioner/{doctor}"}} for doctor in doctors],
    }


def rename(store: Store, doctors: list[str], name: str) -> None:
    with store.transaction() as tx:
        for doctor in doctors:
            tx.resources.write({"resourceType": "Practitioner", "id": doctor, "name": [{"text": name}]})


def statements_of(work: Callable[[], Any], monkeypatch: pytest.MonkeyPatch) -> int:
    """How many statements ``work`` issues."""
    statements: list[str] = []
    original = Dialect.sql

    def recorded(dialect: Dialect, text: str) -> str:
        statements.append(text)
        return original(dialect, text)

    with monkeypatch.context() as patched:
        patched.setattr(Dialect, "sql", recorded)
        work()
    return len(statements)


def statements_run(jobs: BulkExports, job: Job, monkeypatch: pytest.MonkeyPatch) -> int:
    """How many statements running ``job`` issues."""
    return statements_of(lambda: jobs.run(job.id), monkeypatch)


def exported_with_doctors(store: Store, jobs: BulkExports, doctors: list[str]) -> Job:
    """张's stay naming ``doctors``, each named 王医生, exported in full: the job done."""
    with store.transaction() as tx:
        tx.resources.write({"resourceType": "Patient", "id": "zhang"})
        tx.resources.write(visit("stay", "zhang", doctors))
    rename(store, doctors, "王医生")
    first = jobs.kick_off("http://x/fhir/Patient/$export", "Patient", [])
    jobs.run(first.id)
    return first


def test_a_since_export_asks_about_the_renamed_doctors_in_statements_not_one_each(
    store: Store, tmp_path: Path, personal: PersonalData, searcher: Searcher, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each Practitioner renamed since the last export is sent if a record of the export names
    it: they were looked up a statement each (~3 ms; 200 renamed took 0.4–1.3 s).  An export
    after 25 renamings issues as many statements as one after a single renaming."""
    jobs = BulkExports(store, personal, r4_resource_types(), tmp_path, 3600, searcher=searcher)
    doctors = [f"dr-{number}" for number in range(25)]
    first = exported_with_doctors(store, jobs, doctors)
    rename(store, doctors[:1], "李医生")
    one = jobs.kick_off("http://x/fhir/Patient/$export", "Patient", [("_since", first.created)])
    after_one = statements_run(jobs, one, monkeypatch)
    rename(store, doctors, "赵医生")
    many = jobs.kick_off("http://x/fhir/Patient/$export", "Patient", [("_since", one.created)])
    assert statements_run(jobs, many, monkeypatch) == after_one


def test_a_since_export_sends_a_renamed_doctor_only_a_later_record_of_many_names(
    store: Store, tmp_path: Path, personal: PersonalData, searcher: Searcher
) -> None:
    """Of the many stays naming the doctor, those first by id are filtered out: the one after
    them, which the export holds, still brings the renamed doctor along."""
    jobs = BulkExports(store, personal, r4_resource_types(), tmp_path, 3600, searcher=searcher)
    with store.transaction() as tx:
        tx.resources.write({"resourceType": "Patient", "id": "zhang"})
        for number in range(30):
            tx.resources.write(visit(f"stay-{number:02d}", "zhang", ["dr-zhou"], status="in-progress"))
        tx.resources.write(visit("stay-99", "zhang", ["dr-zhou"]))
    rename(store, ["dr-zhou"], "周医生")
    filtered = [("_typeFilter", "Encounter?status=finished")]
    first = jobs.kick_off("http://x/fhir/Patient/$export", "Patient", filtered)
    jobs.run(first.id)
    rename(store, ["dr-zhou"], "周主任")
    second = jobs.kick_off("http://x/fhir/Patient/$export", "Patient", [*filtered, ("_since", first.created)])
    jobs.run(second.id)
    sent = (tmp_path / second.id / "Practitioner.ndjson").read_bytes().splitlines()
    assert [orjson.loads(line)["name"][0]["text"] for line in sent] == ["周主任"]


def asked_before_halting(
    jobs: BulkExports, store: Store, job: Job, folder: Path, method: str, monkeypatch: pytest.MonkeyPatch
) -> int:
    """How many times writing ``job`` asks ``Resources.<method>`` when the job is cancelled
    during the first time, as the heartbeat does once it finds the job deleted."""
    halt, asked = threading.Event(), []
    original = getattr(Resources, method)

    def cancelled_meanwhile(resources: Resources, *args: Any) -> Any:
        asked.append(args)
        halt.set()
        return original(resources, *args)

    monkeypatch.setattr(Resources, method, cancelled_meanwhile)
    with store.reading() as tx, pytest.raises(_Halted):
        jobs._write(tx, job, folder / job.id, _Progress(), halt)
    return len(asked)


def test_a_job_cancelled_while_it_asks_about_renamed_doctors_stops_there(
    store: Store, tmp_path: Path, personal: PersonalData, searcher: Searcher, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The 250 doctors renamed since are asked about 100 at a time; the heartbeat finds the job
    cancelled while it asks about the first 100, and it stops before the next: it went on
    through the whole step, however many there were, before it looked again."""
    jobs = BulkExports(store, personal, r4_resource_types(), tmp_path, 3600, searcher=searcher)
    doctors = [f"dr-{number:03d}" for number in range(250)]
    first = exported_with_doctors(store, jobs, doctors)
    rename(store, doctors, "李医生")
    second = jobs.find(jobs.kick_off("http://x/fhir/Patient/$export", "Patient", [("_since", first.created)]).id)
    assert asked_before_halting(jobs, store, second, tmp_path, "referrers_of_each", monkeypatch) == 1


def home_of_one(store: Store, jobs: BulkExports, others: int) -> Job:
    """A home's Group of 张秀英 alone, and ``others`` people outside it with a reading each:
    the home's first export, run."""
    members = [{"entity": {"reference": "Patient/zhang"}}]
    with store.transaction() as tx:
        tx.resources.write({"resourceType": "Group", "id": "home", "type": "person", "actual": True, "member": members})
        for person in ["zhang", *(f"other-{number}" for number in range(others))]:
            tx.resources.write({"resourceType": "Patient", "id": person})
            tx.resources.write(observation(f"bp-{person}", person, 120))
    first = jobs.kick_off("http://x/fhir/Group/home/$export", "Group/home", [])
    jobs.run(first.id)
    return first


def after_corrections(store: Store, jobs: BulkExports, since: Job, others: range, systolic: int) -> Job:
    """The home's next export, since ``since`` (kicked off, not run), once the readings of the
    ``others`` are corrected to ``systolic``."""
    with store.transaction() as tx:
        for number in others:
            tx.resources.write(observation(f"bp-other-{number}", f"other-{number}", systolic))
    return jobs.find(jobs.kick_off("http://x/fhir/Group/home/$export", "Group/home", [("_since", since.created)]).id)


def test_a_group_export_since_judges_others_changed_records_in_statements_not_one_each(
    store: Store, tmp_path: Path, personal: PersonalData, searcher: Searcher, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every record changed since in the whole archive is judged for whether the home's copy
    held a version of it (its deletions): each was read a statement or two, so that one
    resident's export cost two statements per reading corrected anywhere in the province.
    Its statements are as many after one other person's reading was corrected as after twenty."""
    jobs = exports(store, tmp_path, personal, 3600, searcher)
    one = after_corrections(store, jobs, home_of_one(store, jobs, 20), range(1), 125)
    after_one = statements_run(jobs, one, monkeypatch)
    twenty = after_corrections(store, jobs, one, range(20), 130)
    assert statements_run(jobs, twenty, monkeypatch) == after_one


def statements_finding_provenances_since(
    jobs: BulkExports, store: Store, job: Job, searcher: Searcher, monkeypatch: pytest.MonkeyPatch
) -> int:
    """How many statements ``job`` issues to find the Provenances changed since its ``_since``
    that target its people's records."""
    with store.reading() as tx:
        access = jobs._access(job)
        filtering = Filtering([], searcher, access)
        run = _JobRun(tx, job, access, filtering, threading.Event(), jobs.personal, searcher, jobs.resource_types)
        return statements_of(lambda: list(_provenances_since(run, set())), monkeypatch)


def test_a_group_export_since_reads_no_provenance_of_others_records(
    store: Store, tmp_path: Path, personal: PersonalData, searcher: Searcher, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every Provenance changed since in the archive was read, 500 at a time, to find the few
    of the home's records: at province scale, most of the archive.  Those of others' records
    are no longer read: as many statements after six others' Provenances as after one (here
    two to a batch, so that six made more batches)."""
    jobs = exports(store, tmp_path, personal, 3600, searcher)
    first = home_of_one(store, jobs, 6)
    monkeypatch.setattr(batches, "BATCH", 2)

    def since_provenances_of(*people: str) -> Job:
        with store.transaction() as tx:
            for person in people:
                tx.resources.write(provenance(f"prov-{person}", f"Observation/bp-{person}"))
        return jobs.find(
            jobs.kick_off("http://x/fhir/Group/home/$export", "Group/home", [("_since", first.created)]).id
        )

    after_one = statements_finding_provenances_since(
        jobs, store, since_provenances_of("zhang", "other-0"), searcher, monkeypatch
    )
    later = since_provenances_of(*(f"other-{number}" for number in range(1, 6)))
    assert statements_finding_provenances_since(jobs, store, later, searcher, monkeypatch) == after_one


def test_a_group_export_since_indexes_no_changed_record_that_names_none_of_its_people(
    store: Store, tmp_path: Path, personal: PersonalData, searcher: Searcher, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whether the home's copy held a version of another person's corrected reading was
    learnt by indexing that version whole (~1 ms, for every record changed in the archive):
    one whose text names none of the home's people is passed over unindexed."""
    jobs = exports(store, tmp_path, personal, 3600, searcher)
    job = after_corrections(store, jobs, home_of_one(store, jobs, 20), range(20), 125)
    indexed: list[str] = []
    original = personal.index_rows

    def recorded(resource: dict[str, Any]) -> list[Any]:
        indexed.append(resource["id"])
        return original(resource)

    monkeypatch.setattr(personal, "index_rows", recorded)
    jobs.run(job.id)
    assert indexed == []


_IDS = st.text("ab-.1", min_size=1, max_size=3)
_REFERENCES = st.one_of(
    _IDS.map(lambda key: f"Patient/{key}"),
    st.tuples(_IDS, st.integers(1, 3)).map(lambda pair: f"Patient/{pair[0]}/_history/{pair[1]}"),
    _IDS.map(lambda key: f"Practitioner/{key}"),
    _IDS.map(lambda key: f"http://other.example/fhir/Patient/{key}"),
    _IDS.map(lambda key: f"#{key}"),
)


#: a note's text around the word the text test looks for: escaped quotes and backslashes
_NOTES = st.lists(st.sampled_from(["Patient/a", "Patient", '"', "\\", "/b", " "]), max_size=6).map("".join)


#: a Reference naming a person by 身份证号 alone, or a literal one
_BY_NUMBER_OR_ID = st.one_of(
    _REFERENCES.map(lambda reference: {"reference": reference}),
    st.sampled_from(["440524193801010019", "410105194912310020"]).map(
        lambda number: {"identifier": {"system": "urn:oid:2.16.156.10011.1.3", "value": number}}
    ),
)


@given(
    subject=_BY_NUMBER_OR_ID,
    performers=st.lists(_BY_NUMBER_OR_ID, max_size=3),
    people=st.frozensets(_IDS, max_size=3),
    note=_NOTES,
)
def test_a_version_in_the_compartment_of_one_of_the_people_names_one_of_them(
    personal: PersonalData, subject: dict[str, Any], performers: list[dict[str, Any]], people: frozenset[str], note: str
) -> None:
    """The text tests that spare the indexing never pass over a version the index places in
    the compartment of one of the export's people, whatever else its text says: by id, or by
    a number (here everyone's number is held by one of them)."""
    reading = {**observation("bp", "x", 120), "subject": subject, "note": [{"text": note}], "performer": performers}
    stored = Stored("Observation", "bp", 1, now_instant(), False, text=orjson.dumps(reading).decode())
    holder = (lambda _key: min(people)) if people else (lambda _key: None)
    assert (
        _names_any(stored, people.__contains__)
        or _may_name_by_number(stored)
        or not personal.in_compartment_of(reading, people.__contains__, holder)
    )


def test_a_job_cancelled_while_it_judges_changed_records_stops_there(
    store: Store, tmp_path: Path, personal: PersonalData, searcher: Searcher, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The records changed since are judged a batch at a time (here two, of three); the
    heartbeat finds the job cancelled while it judges the first, and it stops before the next."""
    jobs = exports(store, tmp_path, personal, 3600, searcher)
    job = after_corrections(store, jobs, home_of_one(store, jobs, 3), range(3), 125)
    monkeypatch.setattr(batches, "BATCH", 2)
    assert asked_before_halting(jobs, store, job, tmp_path, "versions_since", monkeypatch) == 1


def served_by_the_home(personal: PersonalData) -> Access:
    """What the home's platform may see (whom it serves is read on first use)."""
    return Access(Principal("home-app", "home", frozenset(), "elderly-care"), personal)


def statements_streaming(store: Store, path: Path, personal: PersonalData, monkeypatch: pytest.MonkeyPatch) -> int:
    """How many statements streaming the home's platform's file issues."""
    return statements_of(lambda: list(_visible_lines(store, path, served_by_the_home(personal))), monkeypatch)


def test_a_restricted_clients_file_is_checked_in_statements_not_one_per_line(
    store: Store, tmp_path: Path, personal: PersonalData, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each line of an elderly-care platform's file is checked against the current version as
    it streams: that was read a statement per line.  A file of 30 readings of its resident is
    checked in as many statements as one of 3."""
    stay = {
        **visit("stay", "zhang", []),
        "status": "in-progress",
        "serviceProvider": {"reference": "Organization/home"},
    }
    readings = [observation(f"bp-{number}", "zhang", 120 + number) for number in range(30)]
    with store.transaction() as tx:
        for resource in [{"resourceType": "Patient", "id": "zhang"}, stay, *readings]:
            tx.resources.write(resource)
    few, many = tmp_path / "few.ndjson", tmp_path / "many.ndjson"
    few.write_bytes(b"".join(orjson.dumps(reading) + b"\n" for reading in readings[:3]))
    many.write_bytes(b"".join(orjson.dumps(reading) + b"\n" for reading in readings))
    after_few = statements_streaming(store, few, personal, monkeypatch)
    assert statements_streaming(store, many, personal, monkeypatch) == after_few


def test_a_restricted_clients_file_keeps_the_lines_it_may_see_now(
    store: Store, tmp_path: Path, personal: PersonalData
) -> None:
    """Of three readings of its resident, one since moved to someone it does not serve and one
    deleted: only the third is sent."""
    stay = {
        **visit("stay", "zhang", []),
        "status": "in-progress",
        "serviceProvider": {"reference": "Organization/home"},
    }
    readings = [observation(f"bp-{number}", "zhang", 120 + number) for number in range(3)]
    with store.transaction() as tx:
        for resource in [{"resourceType": "Patient", "id": "zhang"}, {"resourceType": "Patient", "id": "li"}, stay]:
            tx.resources.write(resource)
        for reading in readings:
            tx.resources.write(reading)
        tx.resources.write(observation("bp-0", "li", 120))
        tx.resources.delete("Observation", "bp-1")
    path = tmp_path / "Observation.ndjson"
    path.write_bytes(b"".join(orjson.dumps(reading) + b"\n" for reading in readings))
    assert [orjson.loads(line)["id"] for line in _visible_lines(store, path, served_by_the_home(personal))] == ["bp-2"]


def test_a_restricted_clients_file_cut_by_elements_keeps_its_residents_lines(
    store: Store, tmp_path: Path, personal: PersonalData
) -> None:
    """``_elements=Observation.code`` cuts the subject out of each line: judged by what is
    left, a reading of the home's own resident named no one, and its file came empty."""
    stay = {
        **visit("stay", "zhang", []),
        "status": "in-progress",
        "serviceProvider": {"reference": "Organization/home"},
    }
    with store.transaction() as tx:
        for resource in [{"resourceType": "Patient", "id": "zhang"}, stay]:
            tx.resources.write(resource)
        reading, _ = tx.resources.write(observation("bp-0", "zhang", 120))
    path = tmp_path / "Observation.ndjson"
    path.write_bytes(orjson.dumps(shaped(reading.resource, None, ["Observation.code"])) + b"\n")
    assert [orjson.loads(line)["id"] for line in _visible_lines(store, path, served_by_the_home(personal))] == ["bp-0"]


def group_export_of(store: Store, jobs: BulkExports, residents: int) -> Job:
    """A home's Group of ``residents`` people, one of them deleted since it was written: its
    export of their Patients (kicked off, not run)."""
    members = [{"entity": {"reference": f"Patient/r{residents}-{number:02d}"}} for number in range(residents)]
    group = {"resourceType": "Group", "id": f"home-{residents}", "type": "person", "actual": True, "member": members}
    with store.transaction() as tx:
        tx.resources.write(group)
        for number in range(residents):
            tx.resources.write({"resourceType": "Patient", "id": f"r{residents}-{number:02d}"})
        tx.resources.delete("Patient", f"r{residents}-00")
    return jobs.kick_off(
        f"http://x/fhir/Group/home-{residents}/$export", f"Group/home-{residents}", [("_type", "Patient")]
    )


def test_a_system_export_keeps_no_key_of_each_resource_it_writes(
    store: Store, tmp_path: Path, personal: PersonalData, searcher: Searcher, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each resource comes once to a system export: the key it kept of each (so as to write
    none twice) grew by ~170 MB a million resources, and a province's archive holds tens of
    millions."""
    jobs = exports(store, tmp_path, personal, 3600, searcher)
    with store.transaction() as tx:
        tx.resources.write({"resourceType": "Patient", "id": "zhang"})
        for reading in range(3):
            tx.resources.write(observation(f"bp-{reading}", "zhang", 120 + reading))
    kept: list[int] = []
    written = _NdjsonFiles.output

    def output(files: _NdjsonFiles) -> list[dict[str, Any]]:
        kept.append(len(files.seen))
        return written(files)

    monkeypatch.setattr(_NdjsonFiles, "output", output)
    job = jobs.kick_off("http://x/fhir/$export", "system", [])
    jobs.run(job.id)
    assert kept == [0]


def residents_sharing_a_reading(store: Store) -> None:
    """Two residents, three readings of the first, and a reading of the first taken by the
    second (``performer``): in both residents' compartments."""
    shared = {**observation("bp-shared", "zhang", 130), "performer": [{"reference": "Patient/li"}]}
    with store.transaction() as tx:
        for resource in [{"resourceType": "Patient", "id": "zhang"}, {"resourceType": "Patient", "id": "li"}]:
            tx.resources.write(resource)
        for reading in [*(observation(f"bp-{number}", "zhang", 120 + number) for number in range(3)), shared]:
            tx.resources.write(reading)


def test_a_patient_export_keeps_a_key_only_of_what_names_two_people(
    store: Store, tmp_path: Path, personal: PersonalData, searcher: Searcher, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A record naming one Patient comes once to a Patient export: the key it kept of each
    (so as to write none twice) was ~170 MB a million, and a hospital exports its archive."""
    jobs = exports(store, tmp_path, personal, 3600, searcher)
    residents_sharing_a_reading(store)
    kept: list[set[tuple[str, str]]] = []
    written = _NdjsonFiles.output

    def output(files: _NdjsonFiles) -> list[dict[str, Any]]:
        kept.append(set(files.seen))
        return written(files)

    monkeypatch.setattr(_NdjsonFiles, "output", output)
    jobs.run(jobs.kick_off("http://x/fhir/Patient/$export", "Patient", []).id)
    assert kept == [{("Observation", "bp-shared")}]


def test_a_reading_in_two_residents_compartments_is_written_once(
    store: Store, tmp_path: Path, personal: PersonalData, searcher: Searcher
) -> None:
    jobs = exports(store, tmp_path, personal, 3600, searcher)
    residents_sharing_a_reading(store)
    job = jobs.kick_off("http://x/fhir/Patient/$export", "Patient", [])
    jobs.run(job.id)
    lines = (tmp_path / job.id / "Observation.ndjson").read_bytes().splitlines()
    assert sorted(orjson.loads(line)["id"] for line in lines) == ["bp-0", "bp-1", "bp-2", "bp-shared"]


def test_a_reading_naming_its_resident_twice_is_written_once_in_an_export_of_its_type(
    store: Store, tmp_path: Path, personal: PersonalData, searcher: Searcher
) -> None:
    """A blood pressure the resident took herself names her as subject and performer: the
    index holds a row of each, and an export of Observations alone read it twice."""
    own = {**observation("bp-own", "zhang", 118), "performer": [{"reference": "Patient/zhang"}]}
    with store.transaction() as tx:
        tx.resources.write({"resourceType": "Patient", "id": "zhang"})
        tx.resources.write(own)
    jobs = exports(store, tmp_path, personal, 3600, searcher)
    job = jobs.kick_off("http://x/fhir/Patient/$export?_type=Observation", "Patient", [("_type", "Observation")])
    jobs.run(job.id)
    lines = (tmp_path / job.id / "Observation.ndjson").read_bytes().splitlines()
    assert [orjson.loads(line)["id"] for line in lines] == ["bp-own"]


def test_a_group_export_reads_its_members_in_statements_not_one_each(
    store: Store, tmp_path: Path, personal: PersonalData, searcher: Searcher, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each member's Patient was read by a statement of its own: the export of a home of 30
    issues as many statements as that of a home of 3."""
    jobs = exports(store, tmp_path, personal, 3600, searcher)
    of_three = statements_run(jobs, group_export_of(store, jobs, 3), monkeypatch)
    assert statements_run(jobs, group_export_of(store, jobs, 30), monkeypatch) == of_three


def test_a_group_export_holds_its_current_members_in_the_groups_order(
    store: Store, tmp_path: Path, personal: PersonalData, searcher: Searcher
) -> None:
    jobs = exports(store, tmp_path, personal, 3600, searcher)
    job = group_export_of(store, jobs, 3)
    jobs.run(job.id)
    written = (tmp_path / job.id / "Patient.ndjson").read_bytes().splitlines()
    assert [orjson.loads(line)["id"] for line in written] == ["r3-01", "r3-02"]


# -- expiry ----------------------------------------------------------------------------------
def finished_and_expired(
    store: Store, folder: Path, personal: PersonalData, searcher: Searcher
) -> tuple[BulkExports, str]:
    """A completed job, under exports whose expiry (1 s) it has outlived."""
    jobs = exports(store, folder, personal, 3600, searcher, expiry_seconds=1)
    job = jobs.kick_off("http://x/fhir/$export", "system", [])
    jobs.run(job.id)
    time.sleep(1.1)
    return jobs, job.id


def test_an_expired_job_is_unknown(store: Store, tmp_path: Path, personal: PersonalData, searcher: Searcher) -> None:
    jobs, job_id = finished_and_expired(store, tmp_path, personal, searcher)
    with pytest.raises(FhirError) as unknown:
        jobs.status(job_id)
    assert unknown.value.status == 404


def test_an_expired_jobs_files_are_refused_before_any_sweep(
    store: Store, tmp_path: Path, personal: PersonalData, searcher: Searcher
) -> None:
    with store.transaction() as tx:
        tx.resources.write({"resourceType": "Patient", "id": "zhang"})
    jobs, job_id = finished_and_expired(store, tmp_path, personal, searcher)
    with pytest.raises(FhirError) as unknown:
        jobs.file(job_id, "Patient.ndjson")
    assert unknown.value.status == 404


def test_the_next_kick_off_removes_an_expired_jobs_files(
    store: Store, tmp_path: Path, personal: PersonalData, searcher: Searcher
) -> None:
    """No client has to ask, nor a cron job to run: health data leaves the disk by itself."""
    with store.transaction() as tx:
        tx.resources.write({"resourceType": "Patient", "id": "zhang"})
    jobs, job_id = finished_and_expired(store, tmp_path, personal, searcher)
    jobs.kick_off("http://x/fhir/$export", "system", [])
    assert not (tmp_path / job_id).exists()


def test_a_job_within_its_expiry_keeps_its_files(
    store: Store, tmp_path: Path, personal: PersonalData, searcher: Searcher
) -> None:
    with store.transaction() as tx:
        tx.resources.write({"resourceType": "Patient", "id": "zhang"})
    jobs = exports(store, tmp_path, personal, 3600, searcher, expiry_seconds=3600)
    job = jobs.kick_off("http://x/fhir/$export", "system", [])
    jobs.run(job.id)
    jobs.kick_off("http://x/fhir/$export", "system", [])
    assert jobs.file(job.id, "Patient.ndjson").is_file()


def test_an_abandoned_job_is_failed_by_the_next_kick_off(
    store: Store, tmp_path: Path, personal: PersonalData, searcher: Searcher
) -> None:
    """Its partial files go even if its client never asks again."""
    job = exports(store, tmp_path, personal, 3600, searcher).kick_off("http://x/fhir/$export", "system", [])
    (tmp_path / job.id).mkdir()
    time.sleep(0.01)
    exports(store, tmp_path, personal, 0, searcher).kick_off("http://x/fhir/$export", "system", [])
    assert not (tmp_path / job.id).exists()


# -- jobs at once ------------------------------------------------------------------------------
def test_a_client_beyond_its_running_jobs_is_refused(
    store: Store, tmp_path: Path, personal: PersonalData, searcher: Searcher
) -> None:
    jobs = exports(store, tmp_path, personal, 3600, searcher, max_jobs_per_client=1)
    jobs.kick_off("http://x/fhir/$export", "system", [])
    with pytest.raises(FhirError) as refused:
        jobs.kick_off("http://x/fhir/$export", "system", [])
    assert (refused.value.status, refused.value.message_id) == (429, "http.export-too-many-client-jobs")


def test_the_gateway_beyond_its_running_jobs_refuses_another_client(
    store: Store, tmp_path: Path, personal: PersonalData, searcher: Searcher
) -> None:
    jobs = exports(store, tmp_path, personal, 3600, searcher, max_jobs=1)
    jobs.kick_off("http://x/fhir/$export", "system", [])
    token = acting.set(Principal("another-his", "another-hospital", frozenset({"system/*.rs"}), "hospital"))
    try:
        with pytest.raises(FhirError) as refused:
            jobs.kick_off("http://x/fhir/$export", "system", [])
    finally:
        acting.reset(token)
    assert (refused.value.status, refused.value.message_id) == (429, "http.export-too-many-jobs")


def test_a_finished_job_holds_no_room(store: Store, tmp_path: Path, personal: PersonalData, searcher: Searcher) -> None:
    jobs = exports(store, tmp_path, personal, 3600, searcher, max_jobs=1)
    jobs.run(jobs.kick_off("http://x/fhir/$export", "system", []).id)
    assert jobs.kick_off("http://x/fhir/$export", "system", []).status == IN_PROGRESS


def test_an_abandoned_job_holds_no_room(
    store: Store, tmp_path: Path, personal: PersonalData, searcher: Searcher
) -> None:
    """A worker killed mid-job must not keep the gateway's last room taken for ever."""
    exports(store, tmp_path, personal, 3600, searcher).kick_off("http://x/fhir/$export", "system", [])
    time.sleep(0.01)
    jobs = exports(store, tmp_path, personal, 0, searcher, max_jobs=1)
    assert jobs.kick_off("http://x/fhir/$export", "system", []).status == IN_PROGRESS

"""A refused parameter reads well in the client's language: each refusal is a catalogued
message with its values as parameters (never an English free-text ``detail`` inside a
Chinese sentence), worded in zh-CN or English as Accept-Language asks, with the status and
FHIRPath it always had.  Every message id the API and the FHIR layer raise is catalogued in
both languages.

The requests go to the app in process (no security, as the benchmark builds it: these
refusals come before any access decision); the audit trail's search, served only by the
secured app, is asked at the level below its route."""

from __future__ import annotations

import ast
import re
import string
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from flask import Flask, request
from flask.testing import FlaskClient
from werkzeug.exceptions import BadRequest

from conformance.validator import Validator
from gateway.api import build_app
from gateway.api.audit import parse_query
from gateway.config import Config
from gateway.fhir.errors import FhirError
from gateway.messages import catalog
from gateway.services import Services
from tests.conftest import load_example

ROOT = Path(__file__).resolve().parents[2]
FHIR_JSON = "application/fhir+json"
#: the message ids that replaced ``http.bad-parameter`` with an English ``detail``
NEW_IDS = (
    "http.unsupported-parameter",
    "http.takes-no-parameters",
    "http.unsupported-value",
    "http.not-a-count",
    "http.not-a-date",
    "http.repeated-parameter",
    "http.start-after-end",
    "http.parameters-not-a-list",
    "http.parameter-needs-one-value",
    "http.profile-parameter-without-url",
    "http.validate-delete-needs-instance",
    "http.request-refused",
    "http.report-limit-too-large",
)
#: the words the English details were made of: none may reach a Chinese answer
ENGLISH_DETAIL = re.compile(
    r"\b(?:supported|not|or|of|on|the|a|an|at|than|most|must|be|takes|needs|alone|after|given|whole|number|once|primitive)\b"
)
CJK = re.compile(r"[\u4e00-\u9fff]")


@dataclass(frozen=True)
class Asked:
    """One request a parameter refusal answers (``{patient}`` in the path: a stored one)."""

    method: str
    path: str
    body: dict[str, Any] | None = None


def parameters(*parts: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Parameters", "parameter": list(parts)}


#: one request for each place that refused with an English detail, and what it answers now
REFUSALS = {
    "history-criterion": (Asked("GET", "Patient/_history?_id=x"), "http.unsupported-parameter"),
    "everything-start": (Asked("GET", "Patient/{patient}/$everything?start=2026"), "http.unsupported-parameter"),
    "measure-parameter": (Asked("GET", "Measure/$evaluate-measure?foo=x"), "http.unsupported-parameter"),
    "measure-subject": (Asked("GET", "Measure/$evaluate-measure?subject=x"), "measure.subject-report"),
    "reports-parameter": (Asked("GET", "/reports?organisation=x"), "http.unsupported-parameter"),
    "document-persist": (Asked("GET", "Composition/x/$document?persist=true"), "http.takes-no-parameters"),
    "read-summary": (Asked("GET", "Patient/{patient}?_summary=count"), "http.unsupported-value"),
    "validate-mode": (
        Asked("POST", "Patient/$validate?mode=bogus", {"resourceType": "Patient"}),
        "http.unsupported-value",
    ),
    "measure-report-type": (
        Asked("GET", "Measure/$evaluate-measure?reportType=subject-list"),
        "http.unsupported-value",
    ),
    "reports-table": (Asked("GET", "/reports?table=summary"), "http.unsupported-value"),
    "reports-lang": (Asked("GET", "/reports?lang=fr"), "http.unsupported-value"),
    "history-count": (Asked("GET", "Patient/_history?_count=many"), "http.not-a-count"),
    "reports-limit": (Asked("GET", "/reports?limit=many"), "http.not-a-count"),
    "reports-limit-max": (Asked("GET", "/reports?limit=10001"), "http.report-limit-too-large"),
    "history-since": (Asked("GET", "Patient/_history?_since=2026-12-01"), "http.not-a-date"),
    "reports-day": (Asked("GET", "/reports?since=2026-02-30"), "http.not-a-date"),
    "reports-repeated": (Asked("GET", "/reports?limit=1&limit=2"), "http.repeated-parameter"),
    "validate-two-resources": (
        Asked(
            "POST",
            "Patient/$validate",
            parameters(*[{"name": "resource", "resource": {"resourceType": "Patient"}}] * 2),
        ),
        "http.repeated-parameter",
    ),
    "reports-period": (Asked("GET", "/reports?since=2026-07-02&until=2026-07-01"), "http.start-after-end"),
    "validate-parameter-list": (
        Asked("POST", "Patient/$validate", {"resourceType": "Parameters", "parameter": "resource"}),
        "http.parameters-not-a-list",
    ),
    "operation-part": (
        Asked("POST", "Measure/$evaluate-measure", parameters({"name": "periodStart"})),
        "http.parameter-needs-one-value",
    ),
    "validate-profile": (
        Asked("POST", "Patient/$validate", parameters({"name": "profile"})),
        "http.profile-parameter-without-url",
    ),
    "validate-delete-type": (Asked("POST", "Patient/$validate?mode=delete"), "http.validate-delete-needs-instance"),
}
#: the audit trail's search refusals: the query, and what it answers
AUDIT_REFUSALS = {
    "audit-parameter": ("patient=Patient/1", "http.unsupported-parameter"),
    "audit-sort": ("_sort=_lastUpdated", "http.unsupported-value"),
    "audit-summary": ("_summary=true", "http.unsupported-value"),
    "audit-count": ("_count=many", "http.not-a-count"),
    "audit-date": ("date=2026-13", "http.not-a-date"),
    "audit-repeated-count": ("_count=5&_count=50", "http.repeated-parameter"),
    "audit-repeated-offset": ("_offset=0&_offset=20", "http.repeated-parameter"),
    "audit-repeated-upto": ("_upto=7&_upto=9", "http.repeated-parameter"),
    "audit-prefixed-date": ("date=ge2026-07-01T08", "http.not-a-date"),
}
#: for each message id, the first request above that answers with it
FIRST_REFUSAL = {message_id: case for case, (_, message_id) in reversed(REFUSALS.items())}


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory, validator: Validator) -> Iterator[Flask]:
    folder = tmp_path_factory.mktemp("refusals")
    services = Services(Config.load(database_url=f"sqlite:///{folder / 'archive.sqlite'}"), validator.registry)
    services.__dict__["validator"] = validator  # a cached_property, preset: no second compile
    yield build_app(services, secure=False)
    services.close()


@pytest.fixture(scope="module")
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture(scope="module")
def patient_id(client: FlaskClient) -> str:
    answer = client.post(
        "/fhir/Patient", json=load_example("yy-patient/valid-zhang-xiuying.json"), content_type=FHIR_JSON
    )
    assert answer.status_code == 201, answer.get_data(as_text=True)
    return answer.get_json()["id"]


def refusal(client: FlaskClient, patient: str, asked: Asked, lang: str) -> tuple[int, dict[str, Any]]:
    """The status and the first issue of the answer to ``asked`` in ``lang``."""
    path = asked.path.format(patient=patient)
    url = path if path.startswith("/") else f"/fhir/{path}"
    headers = {"Accept-Language": lang, "Accept": "application/fhir+json"}
    answer = client.open(url, method=asked.method, json=asked.body, headers=headers, content_type=FHIR_JSON)
    return answer.status_code, answer.get_json()["issue"][0]


def audit_refusal(query: str, lang: str) -> tuple[int, dict[str, Any]]:
    """What the audit trail's search answers ``query`` with, parsed as the route parses it."""
    with Flask(__name__).test_request_context(f"/fhir/AuditEvent?{query}"):
        with pytest.raises(FhirError) as caught:
            parse_query(list(request.args.items(multi=True)), 20, 100)
    return caught.value.status, caught.value.outcome(lang)["issue"][0]


def werkzeug_refusal(app: Flask, lang: str) -> tuple[int, dict[str, Any]]:
    """What the app answers when werkzeug refuses a request itself (its description is English)."""
    with app.test_request_context("/fhir/Patient", method="POST", headers={"Accept-Language": lang}):
        answer = app.handle_user_exception(BadRequest())
    return answer.status_code, answer.get_json()["issue"][0]


def message_id(issue: dict[str, Any]) -> str:
    return issue["details"]["coding"][0]["code"]


def worded_in(issue: dict[str, Any], lang: str) -> bool:
    """Whether the issue's text is fully worded (no placeholder left) in ``lang``: Chinese
    characters in zh-CN, none in English."""
    text = issue["details"]["text"]
    return "{" not in text and bool(CJK.search(text)) == (lang == "zh-CN")


# -- each new message, in both languages -------------------------------------------------------------
@pytest.mark.parametrize("lang", ["zh-CN", "en"])
@pytest.mark.parametrize("wanted", [i for i in NEW_IDS if i != "http.request-refused"])
def test_each_parameter_refusal_answers_in_the_clients_language(
    client: FlaskClient, patient_id: str, wanted: str, lang: str
) -> None:
    asked, _ = REFUSALS[FIRST_REFUSAL[wanted]]
    status, issue = refusal(client, patient_id, asked, lang)
    assert (status, message_id(issue), worded_in(issue, lang)) == (400, wanted, True)


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
def test_a_refusal_by_werkzeug_keeps_its_status_and_is_worded_in_the_clients_language(app: Flask, lang: str) -> None:
    status, issue = werkzeug_refusal(app, lang)
    assert (status, message_id(issue), worded_in(issue, lang)) == (400, "http.request-refused", True)


def test_a_chinese_refusal_of_a_parameter_reads_as_chinese(client: FlaskClient, patient_id: str) -> None:
    _, issue = refusal(client, patient_id, REFUSALS["everything-start"][0], "zh-CN")
    assert (
        issue["details"]["text"] == "$everything 不支持参数 start；可用的参数为：_since, _type, _count, _offset, _after"
    )


def test_a_measure_refusal_lists_only_the_parameters_it_honours(client: FlaskClient, patient_id: str) -> None:
    """As every other operation's: _format and _pretty are taken everywhere, so the list of
    what $evaluate-measure takes named them alone of all the endpoints."""
    _, issue = refusal(client, patient_id, Asked("GET", "Measure/$evaluate-measure?foo=1"), "en")
    assert issue["details"]["text"] == (
        "$evaluate-measure does not take the parameter foo; it takes measure, periodStart, periodEnd, reportType, division"
    )


def test_a_report_type_refusal_names_the_codes_the_definition_binds(client: FlaskClient, patient_id: str) -> None:
    """The codes are those of the value set the operation's definition binds ``reportType`` to:
    ``summary``, the report's type, was taken but left out of the list of what it can be."""
    _, issue = refusal(client, patient_id, REFUSALS["measure-report-type"][0], "en")
    assert (issue["expression"], issue["details"]["text"]) == (
        ["reportType"],
        "The parameter reportType cannot be 'subject-list' here; it can be population, summary",
    )


@pytest.mark.parametrize(
    ("case", "parameter"),
    [
        ("history-criterion", "_id"),
        ("everything-start", "start"),
        ("history-since", "_since"),
        ("read-summary", "_summary"),
        ("reports-repeated", "limit"),
        ("reports-limit-max", "limit"),
    ],
)
def test_a_refused_query_parameter_is_located_at_its_name(
    client: FlaskClient, patient_id: str, case: str, parameter: str
) -> None:
    """As a search's refusals are, so a client finds the parameter to fix."""
    _, issue = refusal(client, patient_id, REFUSALS[case][0], "en")
    assert issue["expression"] == [parameter]


def test_an_audit_search_date_refused_is_located_at_its_name() -> None:
    _, issue = audit_refusal(AUDIT_REFUSALS["audit-date"][0], "en")
    assert issue.get("expression") == ["date"]


def test_a_format_no_fhir_format_names_is_located_at_format(client: FlaskClient, patient_id: str) -> None:
    _, issue = refusal(client, patient_id, Asked("GET", "Patient?_format=text/csv"), "en")
    assert (message_id(issue), issue.get("expression")) == ("http.not-acceptable", ["_format"])


def test_a_refusal_keeps_its_fhirpath(client: FlaskClient, patient_id: str) -> None:
    _, issue = refusal(client, patient_id, REFUSALS["operation-part"][0], "zh-CN")
    assert issue["expression"] == ["Parameters.parameter[0]"]


# -- no English detail left --------------------------------------------------------------------------
@pytest.mark.parametrize("case", list(REFUSALS))
def test_no_refusal_of_a_request_carries_an_english_detail(client: FlaskClient, patient_id: str, case: str) -> None:
    asked, wanted = REFUSALS[case]
    status, issue = refusal(client, patient_id, asked, "zh-CN")
    english = ENGLISH_DETAIL.findall(issue["details"]["text"])
    assert (status, message_id(issue), english, worded_in(issue, "zh-CN")) == (400, wanted, [], True)


@pytest.mark.parametrize("case", list(AUDIT_REFUSALS))
def test_no_refusal_of_an_audit_search_carries_an_english_detail(case: str) -> None:
    query, wanted = AUDIT_REFUSALS[case]
    status, issue = audit_refusal(query, "zh-CN")
    english = ENGLISH_DETAIL.findall(issue["details"]["text"])
    assert (status, message_id(issue), english, worded_in(issue, "zh-CN")) == (400, wanted, [], True)


def test_no_werkzeug_refusal_carries_its_english_description(app: Flask) -> None:
    _, issue = werkzeug_refusal(app, "zh-CN")
    assert ENGLISH_DETAIL.findall(issue["details"]["text"]) == []


def test_no_refusal_is_worded_with_a_free_text_detail_any_more() -> None:
    """``http.bad-parameter`` carried an English ``detail``; with no code raising it, it left
    the catalogue, so the completeness test below fails any new use of it."""
    assert "http.bad-parameter" not in catalog()


# -- the catalogue -----------------------------------------------------------------------------------
#: where a call takes its message id: FhirError(status, id), issue(severity, id), text(id), worded(id)
ID_ARGUMENT = {"FhirError": 1, "issue": 1, "text": 0, "worded": 0}


def used_ids(folder: Path) -> set[str]:
    """Every message id the code in ``folder`` passes as a literal to a call that words it."""
    found = set()
    for path in folder.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call):
                continue
            at = ID_ARGUMENT.get(getattr(node.func, "id", None) or getattr(node.func, "attr", ""))
            if at is not None and len(node.args) > at and isinstance(node.args[at], ast.Constant):
                found.add(node.args[at].value)
    return found


def placeholders(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def test_every_message_the_api_raises_is_catalogued_in_both_languages_with_the_same_parameters() -> None:
    used = used_ids(ROOT / "gateway" / "api") | used_ids(ROOT / "gateway" / "fhir")
    entries = catalog()
    missing = sorted(i for i in used if not {"zh-CN", "en"} <= set(entries.get(i, {})))
    uneven = sorted(
        i for i in used - set(missing) if placeholders(entries[i]["zh-CN"]) != placeholders(entries[i]["en"])
    )
    assert (set(NEW_IDS) - used, missing, uneven) == (set(), [], [])


# -- one wording of a refused method -----------------------------------------------------------------
@pytest.mark.parametrize(
    ("method", "path"),
    [("OPTIONS", "/fhir/Patient"), ("DELETE", "/fhir/metadata"), ("HEAD", "/fhir/Patient/$export")],
)
def test_a_refused_method_names_the_path_as_requested(app: Flask, method: str, path: str) -> None:
    """Werkzeug's 405 named ``/fhir/Patient`` and a refusing route ``metadata``: one form,
    the path the client asked for, wherever the 405 comes from (dispatched in a request
    context: a HEAD's answer reaches a client without its body)."""
    with app.test_request_context(path, method=method, headers={"Accept-Language": "en"}):
        issue = app.full_dispatch_request().get_json()["issue"][0]
    assert issue["details"]["text"] == f"{path} does not accept {method}"


# -- a parameter of one value given twice --------------------------------------------------------------
@pytest.mark.parametrize(
    ("path", "form"),
    [("/fhir/Basic?_format=json&_format=xml", None), ("/fhir/Basic/_search?_format=json", {"_format": "xml"})],
)
def test_a_format_given_twice_is_refused_at_format(client: FlaskClient, path: str, form: dict[str, str] | None) -> None:
    """The first was taken: ``_format=json&_format=xml`` answered in JSON without a word."""
    answer = client.open(path, method="POST" if form else "GET", data=form)
    issue = answer.get_json()["issue"][0]
    assert (answer.status_code, message_id(issue), issue["expression"]) == (400, "http.repeated-parameter", ["_format"])


def test_a_write_asking_for_no_fhir_format_is_refused_before_it_is_made(client: FlaskClient) -> None:
    """It was made, then answered 406, and the client's retry made a second."""

    def basics() -> int:
        return int(client.get("/fhir/Basic", query_string={"_summary": "count"}).get_json()["total"])

    before = basics()
    refused = client.post("/fhir/Basic?_format=text/csv", json={"resourceType": "Basic", "code": {"text": "x"}})
    assert (refused.status_code, basics() - before) == (406, 0)


@pytest.mark.parametrize(
    "query",
    [
        "_summary=count&_summary=false",
        "_count=5&_count=10",
        "_offset=0&_offset=20",
        "_after=a&_after=b",
        "_total=none&_total=accurate",
    ],
)
def test_a_search_control_given_twice_is_refused_at_its_name(client: FlaskClient, query: str) -> None:
    """``_summary=count&_summary=false`` listed the matches and the reverse order counted
    them: a search took the last of each, silently, where a read refuses a second ``_summary``."""
    answer = client.get(f"/fhir/Basic?{query}")
    issue = answer.get_json()["issue"][0]
    name = query.partition("=")[0]
    assert (answer.status_code, message_id(issue), issue["expression"]) == (400, "http.repeated-parameter", [name])


@pytest.mark.parametrize("case", ["audit-repeated-count", "audit-repeated-offset", "audit-repeated-upto"])
def test_an_audit_search_control_given_twice_is_refused_at_its_name(case: str) -> None:
    """The trail's search took the first _count or _offset and the last _upto, silently; a
    history refuses each given twice."""
    query, wanted = AUDIT_REFUSALS[case]
    status, issue = audit_refusal(query, "en")
    assert (status, message_id(issue), issue.get("expression")) == (400, wanted, [query.partition("=")[0]])


# -- parameters a read does not know ---------------------------------------------------------------------
READS = ("Patient/{patient}", "Patient/{patient}/_history/1", "metadata")


@pytest.mark.parametrize("path", READS)
def test_a_read_ignores_a_parameter_it_does_not_know(client: FlaskClient, patient_id: str, path: str) -> None:
    """A cache-buster (``?_=…``, which browsers and caching clients add) reads as without it:
    nothing a read ignores widens its answer."""
    answer = client.get(f"/fhir/{path.format(patient=patient_id)}?_=1733450000")
    assert answer.status_code == 200


@pytest.mark.parametrize("path", READS)
def test_a_read_refuses_a_parameter_it_does_not_know_under_strict_handling(
    client: FlaskClient, patient_id: str, path: str
) -> None:
    """``Prefer: handling=strict`` asks for the refusal R4 search.html describes, as a search's."""
    headers = {"Prefer": "handling=strict"}
    answer = client.get(f"/fhir/{path.format(patient=patient_id)}?_=1733450000", headers=headers)
    issue = answer.get_json()["issue"][0]
    assert (answer.status_code, message_id(issue), issue["expression"]) == (400, "http.unsupported-parameter", ["_"])

"""Content negotiation's shortcuts answer as the general code does: the answer format
remembered per Accept header as werkzeug ranks it, query parameters that answer an absent name
without an exception, and Last-Modified written as ``email.utils`` writes an HTTP date."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from flask import Flask, Response
from hypothesis import given, settings
from hypothesis import strategies as st
from werkzeug.datastructures import ImmutableMultiDict
from werkzeug.test import EnvironBuilder, run_wsgi_app

from gateway import create_app
from gateway.api import negotiation
from gateway.api.negotiation import FhirRequest, FhirResponse, Parameters, answer_format, plain_url
from gateway.config import Config
from gateway.search.values import format_instant
from gateway.wire import JSON_TYPES, XML_TYPES, parse_xml
from tests.conftest import MakeServices

APP = Flask("negotiation-test")
APP.request_class = FhirRequest
MEDIA = [*JSON_TYPES, *XML_TYPES, "text/html", "*/*", "application/*", "image/png"]
accept_headers = st.lists(
    st.tuples(st.sampled_from(MEDIA), st.sampled_from(["", ";q=0", ";q=0.5", ";q=0.9", ";q=1"])), max_size=4
).map(lambda parts: ", ".join(media + weight for media, weight in parts))


def ranked(accept: str) -> str:
    """The answer format werkzeug's ranking gives, computed afresh."""
    with APP.test_request_context("/fhir/Patient", headers={"Accept": accept}):
        from flask import request

        best = request.accept_mimetypes.best_match([*JSON_TYPES, *XML_TYPES], default=JSON_TYPES[0])
    return "xml" if best in XML_TYPES else "json"


@settings(max_examples=200, deadline=None)
@given(st.lists(accept_headers, min_size=1, max_size=6))
def test_the_remembered_format_of_each_accept_header_is_werkzeugs_ranking(headers: list[str]) -> None:
    negotiation._by_accept.clear()
    answers = []
    for accept in headers + headers:  # the second round is answered from memory
        with APP.test_request_context("/fhir/Patient", headers={"Accept": accept}):
            answers.append(answer_format())
    assert answers == [ranked(accept) for accept in headers + headers]


hosts = st.sampled_from(["127.0.0.1", "localhost", "fhir.example-1.cn", "a", "A.cn", "Bücher.de", "a..b", "[::1]"])
ports = st.sampled_from(["", ":8080", ":1", ":65535", ":65536", ":99999", ":0", ":080"])
paths = st.text(alphabet="abcXYZ019-._~$/ %?#[]@é", max_size=30)


@settings(max_examples=500, deadline=None)
@given(st.sampled_from(["http", "https", "HTTP"]), hosts, ports, paths)
def test_a_location_is_sent_as_werkzeug_would_send_it(scheme: str, host: str, port: str, path: str) -> None:
    """FhirResponse leaves out werkzeug's IRI-to-URI conversion only where it changes nothing."""
    location = f"{scheme}://{host}{port}/{path}"
    headers = {"Location": location, "ETag": 'W/"1"'}
    environ = EnvironBuilder("/fhir/Patient", method="POST").get_environ()
    try:
        expected = dict(Response(b"{}", 201, headers).get_wsgi_headers(environ))
    except ValueError:  # a port out of range: werkzeug's refusal stands
        assert not plain_url(location)
        with pytest.raises(ValueError):
            FhirResponse(b"{}", 201, headers).get_wsgi_headers(environ)
        return
    response = FhirResponse(b"{}", 201, headers)
    assert dict(response.get_wsgi_headers(environ)) == expected
    assert response.headers["Location"] == location  # the response itself unchanged


def test_a_created_resources_location_is_a_plain_url(make_services: MakeServices, patient: dict[str, Any]) -> None:
    """The case FhirResponse is for: a create's Location, on the gateway's default base."""
    app = create_app(services=make_services(), secure=False)
    answer = app.test_client().post("/fhir/Patient", data=orjson.dumps(patient), content_type="application/fhir+json")
    app.extensions["yiyang.exchanges"].flush()  # while its store is there to take the record
    assert answer.status_code == 201
    assert plain_url(answer.headers["Location"])


names = st.sampled_from(["_format", "_type", "name", "_count", ""])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(names, st.text(max_size=5)), max_size=6), names)
def test_parameters_answer_get_and_getlist_as_werkzeug_does(pairs: list[tuple[str, str]], name: str) -> None:
    ours, theirs = Parameters(pairs), ImmutableMultiDict(pairs)
    assert (ours.get(name), ours.get(name, "-"), ours.getlist(name)) == (
        theirs.get(name),
        theirs.get(name, "-"),
        theirs.getlist(name),
    )


@settings(max_examples=300, deadline=None)
@given(st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31), timezones=st.just(UTC)))
def test_last_modified_is_the_http_date_of_the_stored_instant(moment: datetime) -> None:
    assert negotiation._http_date(format_instant(moment)) == format_datetime(moment.replace(microsecond=0), usegmt=True)


def asked_format(path: str, accept: str = "") -> str:
    negotiation._by_accept.clear()
    with APP.test_request_context(path, headers={"Accept": accept} if accept else {}):
        return answer_format()


def test_an_accept_with_the_fhir_version_parameter_is_honoured() -> None:
    """http.html's own example, application/fhir+xml; fhirVersion=4.0, was answered in JSON."""
    assert asked_format("/fhir/Patient", "application/fhir+xml; fhirVersion=4.0") == "xml"


def test_a_format_with_an_unencoded_plus_is_understood() -> None:
    assert asked_format("/fhir/Patient?_format=application/fhir+xml") == "xml"


@pytest.mark.parametrize("asked", ["XML", "application/FHIR+XML", "Text/Xml"])
def test_a_format_is_read_without_regard_to_case_as_media_types_are(asked: str) -> None:
    """RFC 9110 §8.3.1: a media type's type and subtype are case-insensitive, as Accept and
    Content-Type are read here; ``_format=application/FHIR+XML`` was a 406."""
    assert asked_format(f"/fhir/Patient?_format={asked}") == "xml"


def test_a_format_in_a_search_form_is_honoured() -> None:
    """POST …/_search carries every parameter in its form, _format included."""
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    with APP.test_request_context("/fhir/Patient/_search", method="POST", data="_format=xml&name=张", headers=form):
        assert answer_format() == "xml"


def test_a_search_form_over_the_size_limit_is_a_413_outcome(tmp_path: Path) -> None:
    """Its _format cannot be read from a form too large to read: the 413 is still FHIR."""
    app = create_app(Config(database_url=f"sqlite:///{tmp_path / 'archive.sqlite'}", max_bytes=2000), secure=False)
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    answer = app.test_client().post("/fhir/Patient/_search", data="name=" + "张" * 2000, headers=form)
    assert (answer.status_code, answer.get_json()["resourceType"]) == (413, "OperationOutcome")


def test_a_chunked_body_over_the_size_limit_is_refused_not_cut(tmp_path: Path) -> None:
    """A body without Content-Length (chunked): werkzeug read it up to the limit and stopped
    without a word, so an $ingest of a larger file landed its first part as a whole run."""
    app = create_app(Config(database_url=f"sqlite:///{tmp_path / 'archive.sqlite'}", max_bytes=2000), secure=False)
    answer = app.test_client().post(
        "/fhir/$ingest?source=community-health",
        input_stream=io.BytesIO("姓名,性别\n".encode() + b"x" * 3000),
        content_type="text/csv",
        headers={"Transfer-Encoding": "chunked"},
        environ_overrides={"wsgi.input_terminated": True},
    )
    codes = [issue["details"]["coding"][0]["code"] for issue in answer.get_json()["issue"]]
    assert (answer.status_code, codes) == (413, ["http.too-large-stream"])


def test_a_chunked_body_within_the_size_limit_is_read_whole(tmp_path: Path, patient: dict[str, Any]) -> None:
    body = orjson.dumps(patient)
    app = create_app(Config(database_url=f"sqlite:///{tmp_path / 'archive.sqlite'}", max_bytes=len(body)), secure=False)
    answer = app.test_client().post(
        "/fhir/Patient",
        input_stream=io.BytesIO(body),
        content_type="application/fhir+json",
        headers={"Transfer-Encoding": "chunked"},
        environ_overrides={"wsgi.input_terminated": True},
    )
    assert answer.status_code == 201


class _Recording:
    """gunicorn's request body, which has read() alone, noting how much each read asks."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)
        self.asked: list[int] = []

    def read(self, size: int = -1) -> bytes:
        self.asked.append(size)
        return self._data.read(size)


@pytest.mark.parametrize("terminated", [True, False])
def test_a_body_of_known_length_is_read_asking_no_more_than_its_length(
    tmp_path: Path, patient: dict[str, Any], terminated: bool
) -> None:
    """werkzeug asked 64 KiB a read, into a buffer of that size zeroed each time, and under
    gunicorn (which says it ends the body itself) read twice, to the size limit."""
    body = orjson.dumps(patient)
    app = create_app(Config(database_url=f"sqlite:///{tmp_path / 'archive.sqlite'}"), secure=False)
    environ = EnvironBuilder(
        "/fhir/Patient", method="POST", data=body, content_type="application/fhir+json"
    ).get_environ()
    environ["wsgi.input"] = stream = _Recording(body)
    if terminated:
        environ["wsgi.input_terminated"] = True
    _, status, _ = run_wsgi_app(app, environ)
    assert (status, stream.asked) == ("201 CREATED", [len(body)])


def test_a_body_shorter_than_its_content_length_is_refused_saying_so(tmp_path: Path, patient: dict[str, Any]) -> None:
    """Under gunicorn the stream ends where the client stopped sending: the request was refused
    with a generic "cannot be processed", which did not say the body was cut short."""
    body = orjson.dumps(patient)
    app = create_app(Config(database_url=f"sqlite:///{tmp_path / 'archive.sqlite'}"), secure=False)
    environ = EnvironBuilder(
        "/fhir/Patient", method="POST", data=body, content_type="application/fhir+json"
    ).get_environ()
    environ["wsgi.input"], environ["wsgi.input_terminated"] = _Recording(body[:-10]), True
    answer, status, _ = run_wsgi_app(app, environ)
    code = orjson.loads(b"".join(answer))["issue"][0]["details"]["coding"][0]["code"]
    assert (status, code) == ("400 BAD REQUEST", "http.body-cut-short")


def test_a_method_the_router_does_not_take_is_a_405_naming_those_it_does(tmp_path: Path) -> None:
    """RFC 9110 asks a 405 to carry Allow; werkzeug's was answered without it."""
    app = create_app(Config(database_url=f"sqlite:///{tmp_path / 'archive.sqlite'}"), secure=False)
    answer = app.test_client().post("/fhir/.well-known/smart-configuration")
    assert (answer.status_code, "GET" in answer.headers.get("Allow", "").split(", ")) == (405, True)


def test_a_format_that_cannot_be_answered_is_a_406_saying_its_charset(tmp_path: Path) -> None:
    """Every other answer names UTF-8; the 406's Chinese text was sent without it."""
    app = create_app(Config(database_url=f"sqlite:///{tmp_path / 'archive.sqlite'}"), secure=False)
    answer = app.test_client().get("/fhir/Patient?_format=html")
    code = answer.json["issue"][0]["details"]["coding"][0]["code"]
    assert (answer.status_code, answer.headers["Content-Type"], code) == (
        406,
        "application/fhir+json; charset=utf-8",
        "http.not-acceptable",
    )


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("GET", "/fhir/$ingest", "POST"),
        ("DELETE", "/fhir/$ingest", "POST"),
        ("GET", "/fhir/Patient/$validate", "POST"),
        ("DELETE", "/fhir/metadata", "GET, HEAD"),
        ("PUT", "/fhir/$export-status/0123456789abcdef", "GET, HEAD, DELETE"),
        # OPTIONS reaches no route: werkzeug's list named the routes that only refuse too
        ("OPTIONS", "/fhir/metadata", "GET, HEAD"),
        ("OPTIONS", "/fhir/$ingest", "POST"),
        ("OPTIONS", "/fhir/Patient/$validate", "POST"),
        ("OPTIONS", "/fhir/$export-file/0123456789abcdef/Patient.ndjson", "GET, HEAD"),
    ],
)
def test_a_method_a_fhir_route_refuses_is_a_405_naming_those_it_takes(
    tmp_path: Path, method: str, path: str, allow: str
) -> None:
    """Allow names what the path takes (HEAD with every GET), never a method whose route
    exists only to refuse it."""
    app = create_app(Config(database_url=f"sqlite:///{tmp_path / 'archive.sqlite'}"), secure=False)
    answer = app.test_client().open(path, method=method)
    assert (answer.status_code, answer.headers.get("Allow")) == (405, allow)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("OPTIONS", "/fhir/metadata"),
        ("OPTIONS", "/fhir/.well-known/smart-configuration"),
        ("PUT", "/fhir/.well-known/smart-configuration"),  # reached the update of a type ".well-known"
    ],
)
def test_a_method_a_public_path_does_not_take_is_a_405_without_a_token(tmp_path: Path, method: str, path: str) -> None:
    """It asked for a token first (401), where another method the path refuses answered 405:
    the path's routes are all public, so its Allow tells nothing a token guards."""
    app = create_app(Config(database_url=f"sqlite:///{tmp_path / 'archive.sqlite'}"))
    answer = app.test_client().open(path, method=method)
    assert (answer.status_code, answer.headers.get("Allow")) == (405, "GET, HEAD")


@pytest.mark.parametrize("path", ["/fhir/Patient", "/fhir/_history", "/fhir/no/such/path/here"])
def test_a_method_a_protected_path_does_not_take_still_asks_for_a_token(tmp_path: Path, path: str) -> None:
    """What a protected path takes (or whether it exists) is told to an authenticated client alone."""
    app = create_app(Config(database_url=f"sqlite:///{tmp_path / 'archive.sqlite'}"))
    assert app.test_client().open(path, method="OPTIONS").status_code == 401


@pytest.mark.parametrize("method", ["GET", "HEAD"])
@pytest.mark.parametrize("path", ["/fhir/Patient/_search", "/fhir/AuditEvent/_search"])
def test_a_get_of_a_type_search_path_is_a_405_naming_post(tmp_path: Path, method: str, path: str) -> None:
    """R4 defines only POST at ``Type/_search``: a GET there was the read of a resource with
    id "_search" (404), while the 405 of a PUT there named GET among the methods it takes."""
    app = create_app(Config(database_url=f"sqlite:///{tmp_path / 'archive.sqlite'}"), secure=False)
    answer = app.test_client().open(path, method=method)
    assert (answer.status_code, answer.headers.get("Allow")) == (405, "POST")


def test_options_at_the_token_endpoint_is_refused_in_oauth_json(tmp_path: Path) -> None:
    """The token endpoint's clients read OAuth errors alone; OPTIONS was answered with an OperationOutcome."""
    app = create_app(Config(database_url=f"sqlite:///{tmp_path / 'archive.sqlite'}"))
    answer = app.test_client().options("/fhir/token")
    assert (answer.status_code, answer.json["error"], answer.headers["Allow"]) == (405, "invalid_request", "POST")


def test_the_head_of_an_export_kick_off_starts_no_job(tmp_path: Path) -> None:
    """HEAD must change nothing (RFC 9110 §9.2.1); answered as its GET, it started an export."""
    config = Config(database_url=f"sqlite:///{tmp_path / 'archive.sqlite'}", export_dir=str(tmp_path / "exports"))
    answer = create_app(config, secure=False).test_client().head("/fhir/$export", headers={"Prefer": "respond-async"})
    assert (answer.status_code, answer.headers.get("Allow"), "Content-Location" in answer.headers) == (
        405,
        "GET, POST",
        False,
    )


@pytest.mark.parametrize(
    ("header", "answered"),
    [
        ("en-GB,zh-CN;q=0.5", "en"),  # werkzeug's best_match answered zh-CN, the lower-ranked
        ("zh-CN;q=0.2, en;q=0.9", "en"),
        ("zh-TW, en;q=0.8", "zh-CN"),
        ("fr, en-US;q=0.5, zh;q=0.4", "en"),
        ("en;q=0, zh", "zh-CN"),
        ("fr", "zh-CN"),  # nothing served: the configured language
        ("*", "zh-CN"),
        ("EN", "en"),
    ],
)
def test_the_answer_is_in_the_served_language_the_reader_ranks_highest(header: str, answered: str) -> None:
    from werkzeug.datastructures import LanguageAccept
    from werkzeug.http import parse_accept_header

    accepted = parse_accept_header(header, LanguageAccept)
    assert negotiation.preferred_language(accepted, "zh-CN") == answered


def test_a_search_naming_a_format_resolves_it_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The hook refusing an unanswerable format, the search choosing how to write its matches
    and the answer each asked, and each read ``_format`` and ranked Accept again."""
    app = create_app(Config(database_url=f"sqlite:///{tmp_path / 'archive.sqlite'}"), secure=False)
    resolved = []
    resolve = negotiation._resolved_format
    monkeypatch.setattr(negotiation, "_resolved_format", lambda current: resolved.append(1) or resolve(current))
    answer = app.test_client().get("/fhir/Patient?_format=json")
    assert (answer.status_code, len(resolved)) == (200, 1)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, {}),
        ("", {"": ""}),
        ('Return=minimal, handling="lenient"', {"return": "minimal", "handling": "lenient"}),
        ("respond-async; handling=lenient, handling=strict", {"respond-async": "", "handling": "lenient"}),
    ],
)
def test_the_preferences_are_those_the_prefer_header_names(header: str | None, expected: dict[str, str]) -> None:
    """No Prefer header, no preference (the name "" of an empty one was found in none)."""
    with APP.test_request_context("/fhir/Patient", headers={"Prefer": header} if header is not None else {}):
        assert negotiation.preferences() == expected


def test_a_stored_resource_xml_cannot_carry_is_a_406_about_the_answer_not_the_request(tmp_path: Path) -> None:
    """Kept under ``warn`` with ``name`` as one object, its XML read was refused as "the
    request body is not valid FHIR XML" — a GET has no body — naming no element."""
    config = Config(database_url=f"sqlite:///{tmp_path / 'archive.sqlite'}", validation="warn")
    client = create_app(config, secure=False).test_client()
    patient = {"resourceType": "Patient", "id": "p1", "name": {"family": "张"}}
    assert client.put("/fhir/Patient/p1", json=patient, content_type="application/fhir+json").status_code == 201
    answer = client.get("/fhir/Patient/p1?_format=xml", headers={"Accept-Language": "en"})
    issue = parse_xml(answer.data)["issue"][0]
    assert (answer.status_code, issue["details"]["coding"][0]["code"], issue.get("expression")) == (
        406,
        "http.answer-not-xml",
        ["Patient.name"],
    )

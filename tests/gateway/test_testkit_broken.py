"""The test kit against a deliberately broken FHIR server: it must fail the specific tests
that cover each defect, say what was wrong, and exit 1.

The server is a tiny WSGI app (werkzeug, in a thread) that answers like a FHIR server but drops
identifiers, ignores tokens and scopes, creates again instead of finding, and accepts anything."""

from __future__ import annotations

import json
import threading
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from conformance.testkit.http import Http
from conformance.testkit.runner import run_test
from gateway.cli import main
from tests.conftest import free_port
from tests.gateway.test_testkit import pem

FHIR_JSON = "application/fhir+json"


class BrokenServer:
    """An in-memory "FHIR server" with the defects the kit must catch."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.stored: dict[str, dict[str, Any]] = {}

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        path = request.path.removeprefix("/fhir").strip("/")
        return self.answer(request, path)(environ, start_response)

    def answer(self, request: Request, path: str) -> Response:
        if path == "metadata":  # declares no profiles, interactions or search parameters
            return fhir({"resourceType": "CapabilityStatement", "fhirVersion": "4.0.1", "format": ["json"]})
        if path == ".well-known/smart-configuration":
            return fhir(
                {"token_endpoint": f"{self.base}/token", "token_endpoint_auth_methods_supported": ["private_key_jwt"]}
            )
        if path == "token":  # grants every scope, whatever was asked
            return fhir({"access_token": "anything", "token_type": "bearer", "scope": "system/*.cruds"})
        if request.method == "POST" and path == "":
            return self.transaction(request.get_json(force=True))
        if request.method == "POST":  # ignores If-None-Exist and validates nothing
            resource = request.get_json(force=True)
            return fhir(self.store({**resource, "id": uuid.uuid4().hex}), 201)
        if "/" in path:
            found = self.stored.get(path)
            return fhir(found) if found else fhir(outcome("not-found"), 404)
        return fhir(self.search(path, request.args.get("identifier")))

    def transaction(self, bundle: dict[str, Any]) -> Response:
        for entry in bundle.get("entry", []):
            self.store(entry["resource"])
        answered = [{"response": {"status": "201 Created"}} for _ in bundle.get("entry", [])]
        return fhir({"resourceType": "Bundle", "type": "transaction-response", "entry": answered})

    def store(self, resource: dict[str, Any]) -> dict[str, Any]:
        resource = {k: v for k, v in resource.items() if k != "identifier"}  # drops identifiers
        self.stored[f"{resource['resourceType']}/{resource['id']}"] = resource
        return resource

    def search(self, kind: str, identifier: str | None) -> dict[str, Any]:
        matches = [r for key, r in self.stored.items() if key.startswith(kind + "/")]
        if identifier:  # identifiers were dropped, so nothing matches
            matches = [r for r in matches if r.get("identifier")]
        entries = [{"resource": r, "search": {"mode": "match"}} for r in matches]
        return {"resourceType": "Bundle", "type": "searchset", "entry": entries}


def fhir(body: dict[str, Any], status: int = 200) -> Response:
    return Response(json.dumps(body), status=status, content_type=FHIR_JSON)


def outcome(code: str) -> dict[str, Any]:
    return {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": code}]}


@pytest.fixture(scope="module")
def broken() -> Iterator[str]:
    port = free_port()
    base = f"http://127.0.0.1:{port}/fhir"
    server = make_server("127.0.0.1", port, BrokenServer(base), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield base
    server.shutdown()
    thread.join()


@pytest.fixture(scope="module")
def run(broken: str, client_key: Any, tmp_path_factory: pytest.TempPathFactory) -> tuple[int, Path]:
    """One run of every suite with key credentials (so the scope test can ask for less), in
    JUnit, as a CI job would."""
    folder = tmp_path_factory.mktemp("broken")
    key = folder / "client.pem"
    key.write_text(pem(client_key), encoding="utf-8")
    out = folder / "report.xml"
    argv = ["conformance", "run", "--base-url", broken, "--client-id", "anyone", "--key", str(key)]
    return main([*argv, "--format", "junit", "--out", str(out)]), out


def verdicts(report: Path) -> dict[str, tuple[str, str]]:
    """Each testcase: its outcome (pass, failure, error, skipped) and the failure's text."""
    found = {}
    for case in ET.parse(report).getroot().iter("testcase"):
        child = next(iter(case), None)
        found[case.get("name", "")] = ("pass", "") if child is None else (child.tag, child.text or "")
    return found


def test_the_run_exits_1(run: tuple[int, Path]) -> None:
    assert run[0] == 1


@pytest.mark.parametrize(
    ("test_id", "says"),
    [
        ("capability.profiles", "Patient does not declare supportedProfile"),
        ("capability.interactions", "Patient lacks interactions ['read', 'create', 'update', 'search-type']"),
        ("capability.search-params", "Patient lacks searchParam identifier"),
        ("capability.smart", "algorithms []"),
        ("push.transaction", "Patient/zhang-xiuying does not conform: invariant.failed at Patient"),
        ("push.conditional-create", "it answered 201: a second Patient was created"),
        ("push.conditional-create", "the creates answered Patient ids"),
        ("push.invalid-rejected", "it answered HTTP 201"),
        ("pull.search-identifier", "0 Patients match"),
        ("security.no-token", "with no token it answered HTTP 200"),
        ("security.no-token", "with an invalid token it answered HTTP 200"),
        ("security.scope", "granted 'system/*.cruds'"),
        ("security.scope", "it answered HTTP 200"),
    ],
)
def test_each_defect_fails_its_own_test_saying_what_was_wrong(run: tuple[int, Path], test_id: str, says: str) -> None:
    outcome, text = verdicts(run[1])[test_id]
    assert outcome == "failure"
    assert says in text


def test_a_test_with_nothing_to_judge_is_skipped_with_its_reason(run: tuple[int, Path]) -> None:
    assert verdicts(run[1])["security.cross-organisation"][0] == "skipped"


def test_usage_problems_exit_2(tmp_path: Path, client_key: Any) -> None:
    base = ["conformance", "run", "--base-url", f"http://127.0.0.1:{free_port()}/fhir", "--client-id", "his-zz1"]
    assert main(base) == 2  # no --key
    bad, good = tmp_path / "bad.pem", tmp_path / "good.pem"
    bad.write_text("not a key", encoding="utf-8")
    good.write_text(pem(client_key), encoding="utf-8")
    assert main([*base, "--key", str(bad)]) == 2
    assert main([*base, "--key", str(good)]) == 2  # nobody answers at that URL


def test_a_server_answering_no_fhir_is_an_error_not_a_failed_check(validator: Any) -> None:
    """Against a server answering every request with a 500 HTML page, each test failed its
    checks ("the answer is None of type None") as if the server had answered wrongly."""
    from conformance.testkit.catalog import Context, KitTest
    from conformance.testkit.http import Http
    from conformance.testkit.runner import run_test

    page = Response("<html>Internal Server Error</html>", status=500, content_type="text/html")
    port = free_port()
    server = make_server("127.0.0.1", port, page, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        ctx = Context(Http(f"http://127.0.0.1:{port}/fhir"), validator, {})

        def reads_metadata(ctx: Context) -> None:
            ctx.check(ctx.http.send("GET", "metadata").status == 200, "metadata answers 200")

        result = run_test(KitTest("capability.x", "capability", "甲", "a", reads_metadata), ctx, "en", str)
    finally:
        server.shutdown()
    assert (result.verdict, "500 text/html" in result.findings[0].text) == ("error", True)


def test_cross_organisation_skips_when_the_person_is_not_on_the_server(validator: Any) -> None:
    """Against a server holding nobody (its push refused), every read answered 404 and every
    search nothing, so the test passed: an elder the server does not have proved nothing about
    whom an elderly-care client may see."""
    from conformance.testkit.catalog import Context
    from conformance.testkit.security import TESTS

    def empty(environ: dict[str, Any], start_response: Any) -> Any:
        path = Request(environ).path.removeprefix("/fhir/")
        if "/" in path:
            return fhir(outcome("not-found"), 404)(environ, start_response)
        return fhir({"resourceType": "Bundle", "type": "searchset", "entry": []})(environ, start_response)

    port = free_port()
    server = make_server("127.0.0.1", port, empty, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        ctx = Context(Http(f"http://127.0.0.1:{port}/fhir", token="kit"), validator, {}, elderly_token="home")
        test = next(t for t in TESTS if t.id == "security.cross-organisation")
        result = run_test(test, ctx, "en", str)
    finally:
        server.shutdown()
    assert result.verdict == "skip"


def test_waiting_for_a_bulk_export_records_no_blank_check(validator: Any) -> None:
    """Each poll answered 202 left a passed check without words: an empty line in the report."""
    from conformance.testkit.catalog import Context
    from conformance.testkit.pull import TESTS

    polls: list[int] = []

    def exporting(environ: dict[str, Any], start_response: Any) -> Any:
        path = Request(environ).path
        if path.endswith("$export"):
            answer = Response(status=202, headers={"Content-Location": f"http://127.0.0.1:{port}/status"})
        elif not polls:
            polls.append(1)
            answer = Response(status=202, headers={"Retry-After": "0"})
        else:
            answer = Response(json.dumps({"output": []}), content_type="application/json")
        return answer(environ, start_response)

    port = free_port()
    server = make_server("127.0.0.1", port, exporting, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        ctx = Context(Http(f"http://127.0.0.1:{port}/fhir", token="kit"), validator, {})
        test = next(t for t in TESTS if t.id == "pull.bulk-export")
        result = run_test(test, ctx, "en", str)
    finally:
        server.shutdown()
    assert [f for f in result.findings if f.rule == "testkit.check" and not f.text] == []


def test_the_kit_asks_the_server_to_answer_in_the_reports_language(tmp_path: Path) -> None:
    """A report in English quoted the server's refusals in Chinese (its default language):
    "forbidden: 客户端 … 的令牌缺少权限范围"."""
    languages: set[str] = set()

    def recording(environ: dict[str, Any], start_response: Any) -> Any:
        languages.add(Request(environ).headers.get("Accept-Language", ""))
        return fhir(outcome("forbidden"), 403)(environ, start_response)

    port = free_port()
    server = make_server("127.0.0.1", port, recording, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        argv = ["conformance", "run", "--base-url", f"http://127.0.0.1:{port}/fhir", "--token", "kit"]
        main([*argv, "--suite", "capability", "--format", "json", "--out", str(tmp_path / "r.json"), "--lang", "en"])
    finally:
        server.shutdown()
    assert languages == {"en"}


def test_a_test_is_not_blamed_for_the_probe_the_command_sent_before_it(tmp_path: Path) -> None:
    """The command's probe of metadata (is anyone there?) was left among the broken answers,
    so the first test's error named a request it had not sent."""
    probed: list[int] = []

    def flaky(environ: dict[str, Any], start_response: Any) -> Any:
        if not probed:  # only the probe gets an HTML error page
            probed.append(1)
            return Response("<html>busy</html>", status=503, content_type="text/html")(environ, start_response)
        return fhir({"resourceType": "CapabilityStatement", "fhirVersion": "4.0.1", "format": ["json"]})(
            environ, start_response
        )

    port = free_port()
    server = make_server("127.0.0.1", port, flaky, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    out = tmp_path / "r.json"
    try:
        argv = ["conformance", "run", "--base-url", f"http://127.0.0.1:{port}/fhir", "--token", "kit"]
        main([*argv, "--suite", "capability", "--format", "json", "--out", str(out), "--lang", "en"])
    finally:
        server.shutdown()
    first = json.loads(out.read_text(encoding="utf-8"))["sections"][0]["results"][0]
    assert first["verdict"] == "pass"

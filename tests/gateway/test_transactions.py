"""Transaction and batch Bundles against R4's processing rules (http.html#trules), on a store of
each backend: the order in which conditions see the Bundle's own writes, overlapping
identities, batch entries failing alone, the links rewritten, ``Prefer`` per entry, and the
single interactions a Bundle entry shares (If-Match on a deleted resource, history statuses)."""

from __future__ import annotations

import base64
import contextlib
import copy
import dataclasses
import json
import random
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from bench.synthetic import patient as synthetic_patient
from conformance.validator import Validator
from gateway import create_app
from gateway.config import Config
from gateway.fhir.bundles import Bundles
from gateway.fhir.errors import FhirError
from gateway.fhir.history import history_bundle, history_request
from gateway.services import Services
from gateway.storage.ingest_tables import IdentityKeys
from gateway.storage.store import StoreError
from tests.conftest import fresh_database_url

SYSTEM = "urn:audit"


@pytest.fixture
def make(make_services: Callable[[str], Services]) -> Callable[[str], Services]:
    return make_services


@pytest.fixture
def made(make: Callable[[str], Services]) -> Services:
    return make("reject")


@pytest.fixture
def client(made: Services) -> Iterator[FlaskClient]:
    app = create_app(services=made, secure=False)
    yield app.test_client()
    app.extensions["yiyang.exchanges"].flush()  # while its store is there to take the records


def basic(value: str, **elements: Any) -> dict[str, Any]:
    """A Basic (no provincial profile holds it) with the identifier ``urn:audit|value``."""
    return {
        "resourceType": "Basic",
        "identifier": [{"system": SYSTEM, "value": value}],
        "code": {"text": "audit"},
        **elements,
    }


def stored(made: Services, value: str) -> dict[str, Any]:
    """Basic/<value>, in the store before the Bundle."""
    return made.repository.update("Basic", value, {**basic(value), "id": value}).stored.resource or {}


def bundle(*entries: Any, kind: str = "transaction") -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": kind, "entry": list(entries)}


def post(resource: dict[str, Any], if_none_exist: str | None = None, full_url: str | None = None) -> dict[str, Any]:
    request = {"method": "POST", "url": resource["resourceType"]}
    if if_none_exist:
        request["ifNoneExist"] = if_none_exist
    return {"resource": resource, "request": request, **({"fullUrl": full_url} if full_url else {})}


def put(url: str, resource: dict[str, Any]) -> dict[str, Any]:
    return {"resource": resource, "request": {"method": "PUT", "url": url}}


def patch(url: str, operations: list[dict[str, Any]]) -> dict[str, Any]:
    data = base64.b64encode(json.dumps(operations).encode()).decode()
    resource = {"resourceType": "Binary", "contentType": "application/json-patch+json", "data": data}
    return {"resource": resource, "request": {"method": "PATCH", "url": url}}


def asked(method: str, url: str) -> dict[str, Any]:
    return {"request": {"method": method, "url": url}}


def holders(made: Services, value: str) -> list[str]:
    with made.store.reading() as tx:
        return [s.id for s in made.searcher.matching(tx, "Basic", f"identifier={SYSTEM}|{value}", None, count=5)]


def refusal(made: Services, sent: dict[str, Any]) -> FhirError:
    with pytest.raises(FhirError) as refused:
        made.bundles.process(sent)
    return refused.value


def statuses(answer: dict[str, Any]) -> list[str]:
    return [entry["response"]["status"] for entry in answer["entry"]]


# -- conditions see the transaction's deletes ---------------------------------------------------
def test_a_conditional_create_sees_the_deletes_of_its_transaction(made: Services) -> None:
    """R4 processes the DELETEs first: the condition then matches nothing, and creates (it was
    resolved against the store beforehand, matched d1, and read it back deleted: a 410)."""
    stored(made, "d1")
    answer = made.bundles.process(bundle(asked("DELETE", "Basic/d1"), post(basic("d1"), f"identifier={SYSTEM}|d1")))
    assert (statuses(answer), len(holders(made, "d1"))) == (["204 No Content", "201 Created"], 1)


def test_a_conditional_reference_to_what_the_transaction_deletes_resolves_to_nothing(made: Services) -> None:
    stored(made, "d2")
    pointing = basic("other", subject={"reference": f"Basic?identifier={SYSTEM}|d2"})
    refused = refusal(made, bundle(asked("DELETE", "Basic/d2"), post(pointing)))
    assert (refused.status, refused.message_id, holders(made, "d2")) == (400, "http.bad-reference", ["d2"])


# -- overlapping identities -----------------------------------------------------------------------
@pytest.mark.parametrize(
    "entries",
    [
        [post(basic("twin"), f"identifier={SYSTEM}|twin"), post(basic("twin"), f"identifier={SYSTEM}%7Ctwin")],
        [put(f"Basic?identifier={SYSTEM}|twin", basic("twin")), put(f"Basic?identifier={SYSTEM}|twin", basic("twin"))],
        [post(basic("twin"), f"identifier={SYSTEM}|twin"), put(f"Basic?identifier={SYSTEM}|twin", basic("twin"))],
    ],
    ids=["two conditional creates", "two conditional updates", "a create and an update"],
)
def test_two_entries_with_one_condition_fail_the_transaction(made: Services, entries: list[dict[str, Any]]) -> None:
    refused = refusal(made, bundle(*entries))
    said = str(refused.params.get("detail"))
    assert (refused.status, refused.expression, "Bundle.entry[0]" in said, holders(made, "twin")) == (
        400,
        "Bundle.entry[1].request",
        True,
        [],
    )


@pytest.mark.parametrize(
    ("body", "language", "worded"),
    [
        ("twins", "zh-CN", "Bundle 无法处理：Bundle.entry[0] 与 Bundle.entry[1] 的条件相同"),
        ("twins", "en", "Bundle.entry[0] and Bundle.entry[1] have the same condition"),
        ("collection", "zh-CN", "type 须为 transaction 或 batch，而不是 collection"),
        (None, "zh-CN", "Bundle 缺少 type，须为 transaction 或 batch"),
        (None, "en", "the Bundle has no type; it must be transaction or batch"),
    ],
)
def test_a_refused_bundle_says_why_in_the_readers_language(
    client: FlaskClient, body: str | None, language: str, worded: str
) -> None:
    """The reason was English inside the Chinese sentence: "Bundle 无法处理：Bundle.entry[0] and
    Bundle.entry[1] have the same condition …", and a Bundle without a type was told it was
    not "(none)" in either language."""
    twins = bundle(*[post(basic("twin"), f"identifier={SYSTEM}|twin")] * 2)
    untyped = {name: value for name, value in twins.items() if name != "type"}
    sent = twins if body == "twins" else untyped if body is None else {**twins, "type": body}
    answer = client.post("/fhir", json=sent, headers={"Accept-Language": language}).get_json()
    assert worded in answer["issue"][0]["details"]["text"]


def test_a_conditional_patch_may_not_change_what_another_entry_changes(made: Services) -> None:
    current = stored(made, "cp")
    entries = [
        put("Basic/cp", {**current, "code": {"text": "changed"}}),
        patch(f"Basic?identifier={SYSTEM}|cp", [{"op": "add", "path": "/code/text", "value": "patched"}]),
    ]
    refused = refusal(made, bundle(*entries))
    assert (refused.status, made.repository.read("Basic", "cp").version) == (400, 1)


def test_a_transaction_conditional_patch_matching_nothing_is_a_404(made: Services) -> None:
    entry = patch(f"Basic?identifier={SYSTEM}|nobody", [{"op": "add", "path": "/code/text", "value": "x"}])
    refused = refusal(made, bundle(entry))
    assert (refused.status, refused.message_id) == (404, "http.conditional-no-match")


def test_a_transaction_asks_each_distinct_authorisation_once(made: Services) -> None:
    """Entries asking the same (method, type, id, criteria) are one question: the caller's
    scopes answer it alike each time."""
    asked: list[tuple[str, str, str | None, str | None]] = []

    def authorize(method: str, kind: str, resource_id: str | None, criteria: str | None) -> None:
        asked.append((method, kind, resource_id, criteria))

    made.bundles.process(bundle(post(basic("a")), post(basic("b")), post(basic("c"))), authorize)
    assert asked == [("POST", "Basic", None, None)]


def test_two_entries_with_one_full_url_fail_the_transaction(made: Services) -> None:
    """bdl-7: references to urn:uuid:same would bind to whichever entry came last."""
    entries = [post(basic(value), full_url="urn:uuid:same") for value in ("first", "second")]
    refused = refusal(made, bundle(*entries))
    assert (refused.status, refused.expression, holders(made, "first")) == (400, "Bundle.entry[1].fullUrl", [])


def test_a_full_url_naming_another_resource_than_its_entry_fails_the_transaction(made: Services) -> None:
    """Bundle.entry.fullUrl "SHALL NOT disagree with the id in the resource": a PUT of Basic/b
    under the fullUrl of Basic/a had the other entry's reference to the stored Basic/a pointed
    at Basic/b instead."""
    stored(made, "a")
    moved = {**put("Basic/b", {**basic("b"), "id": "b"}), "fullUrl": f"{made.config.base_url}/Basic/a"}
    pointing = post(basic("pointing", subject={"reference": "Basic/a"}))
    refused = refusal(made, bundle(moved, pointing))
    assert (refused.status, refused.expression, holders(made, "pointing")) == (400, "Bundle.entry[0].fullUrl", [])


def test_a_version_specific_full_url_fails_the_transaction(made: Services) -> None:
    """bdl-8: a fullUrl names no version; references to ``Basic/v/_history/1`` were rewritten
    to the current ``Basic/v``."""
    versioned = {**put("Basic/v", {**basic("v"), "id": "v"}), "fullUrl": f"{made.config.base_url}/Basic/v/_history/1"}
    refused = refusal(made, bundle(versioned))
    assert (refused.status, refused.expression, holders(made, "v")) == (400, "Bundle.entry[0].fullUrl", [])


def test_a_patient_whose_link_is_no_array_named_by_another_entry_is_refused_as_invalid(made: Services) -> None:
    """The other entry's reference is asked whether it names a Patient merged away, from the
    Bundle's own Patient before that Patient is validated: its link, a string, was read as a
    list of objects, a 500."""
    person = {**{k: v for k, v in synthetic_patient(random.Random(71), 71).items() if k != "id"}, "link": "x"}
    named = post(person, full_url="urn:uuid:0d9a3a4e-7b1c-4f7e-9a51-2b8c6f3e1d71")
    refused = refusal(made, bundle(named, post(basic("naming", subject={"reference": named["fullUrl"]}))))
    assert (refused.status, refused.message_id) == (422, "http.invalid-resource")


def test_a_conditional_create_of_an_invalid_resource_is_refused_with_its_issues(made: Services) -> None:
    refused = refusal(made, bundle(post(basic("bad", code="not a concept"), f"identifier={SYSTEM}|bad")))
    assert (refused.status, holders(made, "bad")) == (422, [])


# -- batch entries fail alone ---------------------------------------------------------------------
@pytest.mark.parametrize(
    ("bad", "status", "where"),
    [
        (asked("GET", "Foo/1"), "404", "Bundle.entry[0].request.url"),
        (
            {"resource": basic("x"), "request": {"method": "POST", "url": "Patient"}},
            "400",
            "Bundle.entry[0].resource.resourceType",
        ),
        ({"request": {"method": "POST", "url": "Basic"}}, "400", "Bundle.entry[0].resource"),
        (put("Basic", basic("x")), "400", "Bundle.entry[0].request.url"),
        (asked("TRACE", "Basic"), "400", "Bundle.entry[0].request.method"),
        (asked("GET", "_history"), "400", "Bundle.entry[0].request.url"),
        (asked("GET", "_history/abc"), "404", "Bundle.entry[0].request.url"),
        ("not an entry", "400", "Bundle.entry[0]"),
        (asked("GET", "Basic/a%00b"), "400", "Bundle.entry[0].request.url"),
    ],
)
def test_a_bad_batch_entry_is_answered_alone(made: Services, bad: Any, status: str, where: str) -> None:
    stored(made, "fine")
    answer = made.bundles.process(bundle(bad, asked("GET", "Basic/fine"), kind="batch"))
    failed = answer["entry"][0]["response"]
    located = failed["outcome"]["issue"][0].get("expression", [None])[0]
    assert (statuses(answer), located) == ([status, "200 OK"], where)


def test_a_bundle_entrys_url_that_is_no_string_is_refused_as_such(made: Services) -> None:
    refused = refusal(made, bundle({"request": {"method": "GET", "url": 5}}))
    assert (refused.status, refused.expression, refused.params["detail"].message_id) == (
        400,
        "Bundle.entry[0].request.url",
        "bundle.not-a-string",
    )


def test_a_batch_entrys_validation_issues_are_located_in_the_bundle(made: Services) -> None:
    """As a transaction's are (docs/api.md): the validator's issues named the resource alone
    (``Basic.code``), which of the entries the client could not tell."""
    answer = made.bundles.process(bundle(post(basic("fine")), post(basic("bad", code="no concept")), kind="batch"))
    issues = answer["entry"][1]["response"]["outcome"]["issue"]
    located = [issue["expression"][0] for issue in issues if "expression" in issue]
    assert (statuses(answer)[1], "Bundle.entry[1].resource.code" in located) == ("422", True)
    assert all(where.startswith("Bundle.entry[1]") for where in located), located


@pytest.mark.parametrize("entries", [{"request": {}}, "entries", 5])
def test_a_bundle_whose_entries_are_no_list_is_refused_whole(made: Services, entries: Any) -> None:
    refused = refusal(made, {"resourceType": "Bundle", "type": "batch", "entry": entries})
    assert (refused.status, refused.expression) == (400, "Bundle.entry")


def test_a_transaction_writing_the_audit_trail_is_a_bad_request_at_the_entrys_method(made: Services) -> None:
    """It was a 405 for the whole Bundle, whose Allow (the base's methods) named the POST sent."""
    entry = {"resource": {"resourceType": "AuditEvent"}, "request": {"method": "POST", "url": "AuditEvent"}}
    refused = refusal(made, bundle(post(basic("kept-out-too")), entry))
    assert (refused.status, refused.expression) == (400, "Bundle.entry[1].request.method")


def test_a_bad_transaction_entry_still_fails_the_transaction(made: Services) -> None:
    refused = refusal(made, bundle(post(basic("kept-out")), asked("GET", "Foo/1")))
    assert (refused.status, holders(made, "kept-out")) == (404, [])


# -- links --------------------------------------------------------------------------------------------
def test_every_link_to_an_entry_is_rewritten_to_its_new_identity(make: Callable[[str], Services]) -> None:
    """R4: "all matching links in the bundle", in uri and url elements and in the narrative's
    href and src, not only in Reference.reference; an identifier's value is no link.  (The
    example's extensions are no profile's: stored with warnings.)"""
    made = make("warn")
    binary = {"resourceType": "Binary", "contentType": "text/plain", "data": "aGk="}
    link = "urn:uuid:8f8b7a56-3c1a-4d7c-9f4f-2a8d7a1c0b11"
    narrative = (
        '<div xmlns="http://www.w3.org/1999/xhtml"><a href="{to}">the report</a> <img src=\'{to}\' alt="scan"/> '
        '<a title=\'href="{kept}"\' href="{kept}x">href="{kept}"</a></div>'
    )
    div = narrative.format(to=link, kept=link)
    pointing = basic(
        "links",
        subject={"reference": link},
        extension=[
            {"url": "http://example.org/fhir/StructureDefinition/uri", "valueUri": link},
            {"url": "http://example.org/fhir/StructureDefinition/url", "valueUrl": link},
            {"url": "http://example.org/fhir/StructureDefinition/file", "valueAttachment": {"url": link}},
        ],
        text={"status": "generated", "div": div},
    )
    pointing["identifier"].append({"system": "urn:ietf:rfc:3986", "value": link})
    answer = made.bundles.process(bundle(post(binary, full_url=link), post(pointing)))
    target = answer["entry"][0]["response"]["location"].split("/_history")[0]
    written = answer["entry"][1]["resource"]
    expected_div = narrative.format(to=target, kept=link)
    assert (
        written["subject"]["reference"],
        [e.get("valueUri") or e.get("valueUrl") or e["valueAttachment"]["url"] for e in written["extension"]],
        written["text"]["div"],
        written["identifier"][1]["value"],
    ) == (target, [target] * 3, expected_div, link)


def test_a_link_in_a_primitives_extension_is_rewritten_and_stored(made: Services) -> None:
    """A Reference under ``_created`` is judged as stored like any other
    (``conformance.stored_references``), so the entry it names must have been put there."""
    link = "urn:uuid:3f6e2a1c-7b4d-4e8a-9c2f-1d5b6a7e8f90"
    site = {"url": "http://hl7.org/fhir/StructureDefinition/bodySite", "valueReference": {"reference": link}}
    dated = basic("dated", created="2026-01-01", _created={"extension": [site]})
    answer = made.bundles.process(bundle(post(basic("site"), full_url=link), post(dated)))
    target = answer["entry"][0]["response"]["location"].split("/_history")[0]
    assert answer["entry"][1]["resource"]["_created"]["extension"][0]["valueReference"]["reference"] == target


def test_a_string_or_code_reading_like_an_entrys_full_url_is_no_link(make: Callable[[str], Services]) -> None:
    """Only links are rewritten (uri, url, canonical, oid, uuid, Reference.reference and the
    narrative's href/src): a code and its text that read ``urn:uuid:…`` are the client's words."""
    made = make("warn")
    link = "urn:uuid:0b0d6a52-2f6c-4d1e-8a8e-5c4b9b7f2e10"
    words = {"coding": [{"system": "http://example.org/fhir/CodeSystem/x", "code": link}], "text": link}
    sent = bundle(post(basic("linked-to"), full_url=link), post(basic("words", code=copy.deepcopy(words))))
    assert made.bundles.process(sent)["entry"][1]["resource"]["code"] == words


def test_a_relative_reference_resolves_against_its_entrys_full_url_base(made: Services) -> None:
    """bundle.html: "Basic/a" in the entry http://example.org/fhir/Basic/b names the entry
    http://example.org/fhir/Basic/a; it was stored as Basic/a, naming nothing."""
    first = post(basic("base-a"), full_url="http://example.org/fhir/Basic/a")
    second = post(basic("base-b", subject={"reference": "Basic/a"}), full_url="http://example.org/fhir/Basic/b")
    answer = made.bundles.process(bundle(first, second))
    target = answer["entry"][0]["response"]["location"].split("/_history")[0]
    assert answer["entry"][1]["resource"]["subject"]["reference"] == target


# -- Prefer -------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("prefer", "shown"),
    [("representation", (True, False)), ("minimal", (False, False)), ("OperationOutcome", (False, True))],
)
def test_each_written_entry_is_answered_as_the_client_prefers(
    made: Services, prefer: str, shown: tuple[bool, bool]
) -> None:
    stored(made, "there")
    sent = bundle(post(basic("new")), post(basic("there"), f"identifier={SYSTEM}|there"))
    answer = made.bundles.process(sent, prefer=prefer)
    seen = [("resource" in e, "outcome" in e["response"], "fullUrl" in e) for e in answer["entry"]]
    assert seen == [(*shown, True), (*shown, True)]


def test_the_preference_of_the_request_reaches_the_bundle(client: FlaskClient) -> None:
    sent = bundle(post(basic("asked")), kind="batch")
    answer = client.post("/fhir", json=sent, headers={"Prefer": "return=OperationOutcome"}).get_json()
    entry = answer["entry"][0]
    assert ("resource" in entry, entry["response"]["outcome"]["resourceType"]) == (False, "OperationOutcome")


def test_a_transaction_the_database_gave_up_is_run_again_from_the_body_as_sent(
    client: FlaskClient, made: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A deadlock's victim committed nothing: it is run again, from a fresh parse (the first
    attempt assigned ids and rewrote references in the Bundle it was given)."""
    process, calls = Bundles.process, []

    def sacrificed_once(self: Bundles, sent: Any, *args: Any) -> dict[str, Any]:
        calls.append(sent)
        if len(calls) == 1:  # as PostgreSQL's deadlock victim: rolled back, nothing committed
            raise StoreError("postgresql: deadlock detected", retryable=True)
        return process(self, sent, *args)

    monkeypatch.setattr(Bundles, "process", sacrificed_once)
    status = client.post("/fhir", json=bundle(post(basic("retried")))).status_code
    assert (status, len(calls), calls[0] is not calls[1]) == (200, 2, True)


# -- what a Bundle entry shares with the single interactions --------------------------------------
def test_an_update_naming_a_version_of_a_deleted_resource_finds_it_gone(made: Services) -> None:
    """As a PATCH does: the 412 said "at version 1, but the resource is at version 2"."""
    current = stored(made, "gone")
    made.repository.delete("Basic", "gone")
    answers = []
    for write in (
        lambda: made.repository.update("Basic", "gone", current, if_match=1),
        lambda: made.repository.patch("Basic", "gone", [{"op": "add", "path": "/code/text", "value": "x"}], 2),
    ):
        with pytest.raises(FhirError) as refused:
            write()
        answers.append((refused.value.status, refused.value.message_id))
    assert answers == [(410, "http.gone"), (410, "http.gone")]


@pytest.mark.parametrize(
    ("body_id", "message"),
    [(None, "http.id-missing"), (["x"], "http.bad-id"), ("y", "http.id-mismatch")],
)
def test_a_put_entry_whose_body_does_not_name_its_id_is_refused_for_what_it_is(
    made: Services, body_id: Any, message: str
) -> None:
    resource = basic("x") | ({} if body_id is None else {"id": body_id})
    refused = refusal(made, bundle(put("Basic/x", resource)))
    assert (refused.message_id, refused.expression, "[" in str(refused.params.get("id", ""))) == (
        message,
        "Bundle.entry[0].resource.id",
        body_id == ["x"],
    )
    assert "'" not in str(refused.params.get("id", ""))


def test_a_conditional_update_naming_another_id_is_located_at_the_types_id(made: Services) -> None:
    stored(made, "cu")
    with pytest.raises(FhirError) as refused:
        made.repository.conditional_update("Basic", f"identifier={SYSTEM}|cu", {**basic("cu"), "id": "other"})
    assert (refused.value.message_id, refused.value.expression) == ("http.id-mismatch", "Basic.id")


@pytest.mark.parametrize("kind", ["transaction", "batch"])
@pytest.mark.parametrize("entries", [{}, {"entry": []}])
def test_a_bundle_of_no_entries_is_answered_with_none(client: FlaskClient, kind: str, entries: dict[str, Any]) -> None:
    """It was processed, then the request's audit facts read the answer's absent entry: a 500."""
    answer = client.post("/fhir", json={"resourceType": "Bundle", "type": kind, **entries})
    assert (answer.status_code, answer.json["type"], "entry" in answer.json) == (200, f"{kind}-response", False)


@pytest.mark.parametrize("kind", ["batch", "transaction"])
def test_a_bundle_entry_reads_the_capability_statement(client: FlaskClient, kind: str) -> None:
    """R4 lets a batch or transaction hold any interaction of http.html, capabilities too: the
    entry ``GET metadata`` was taken for a type "metadata" and answered 404."""
    answer = client.post("/fhir", json=bundle(asked("GET", "metadata?_elements=fhirVersion"), kind=kind)).get_json()
    read = answer["entry"][0]
    assert (read["response"]["status"], read["resource"]["resourceType"], read["resource"]["fhirVersion"]) == (
        "200 OK",
        "CapabilityStatement",
        "4.0.1",
    )


def test_a_batch_entry_writing_the_capability_statement_is_refused_as_metadata_refuses_it(
    client: FlaskClient,
) -> None:
    answer = client.post("/fhir", json=bundle(asked("DELETE", "metadata"), kind="batch")).get_json()
    refused = answer["entry"][0]["response"]
    assert (refused["status"], refused["outcome"]["issue"][0]["details"]["coding"][0]["code"]) == (
        "405",
        "http.method-not-allowed",
    )


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
def test_the_system_history_takes_no_write(client: FlaskClient, method: str) -> None:
    answer = client.open("/fhir/_history", method=method, json={"resourceType": "Basic"})
    assert (answer.status_code, answer.headers.get("Allow")) == (405, "GET, HEAD")


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("DELETE", "/fhir/Basic/_history", "GET, HEAD"),
        ("PUT", "/fhir/Basic/_history", "GET, HEAD"),
        ("PATCH", "/fhir/Basic/_history", "GET, HEAD"),
        ("DELETE", "/fhir/Basic/_search", "POST"),
        ("PUT", "/fhir/Basic/_search", "POST"),
    ],
)
def test_a_types_history_and_search_take_no_write(client: FlaskClient, method: str, path: str, allowed: str) -> None:
    """They reached the delete, update or patch of a Basic whose id is ``_history`` or
    ``_search``: a 400 (no FHIR id) or a 404 for a method the path does not take."""
    answer = client.open(path, method=method, json={"resourceType": "Basic", "id": path.rsplit("/", 1)[1]})
    assert (answer.status_code, answer.headers.get("Allow")) == (405, allowed)


@pytest.mark.parametrize(("method", "path"), [("PUT", "/fhir/Basic/typed"), ("POST", "/fhir/Basic"), ("POST", "/fhir")])
def test_a_resource_sent_as_a_json_patch_is_an_unsupported_media_type(
    client: FlaskClient, method: str, path: str
) -> None:
    """A JSON Patch is a PATCH's body alone: a Basic (or a Bundle) sent as
    ``application/json-patch+json`` was created or updated (or processed)."""
    sent = {"resourceType": "Bundle", "type": "batch"} if path == "/fhir" else {**basic("typed"), "id": "typed"}
    answer = client.open(path, method=method, data=json.dumps(sent), content_type="application/json-patch+json")
    assert (answer.status_code, answer.get_json()["issue"][0]["details"]["coding"][0]["code"]) == (
        415,
        "http.unsupported-media-type",
    )


def test_a_history_lists_a_re_creation_after_a_delete_as_a_creation(made: Services) -> None:
    current = stored(made, "again")
    made.repository.delete("Basic", "again")
    made.repository.update("Basic", "again", current)
    with made.store.reading() as tx:
        asked_for = history_request("Basic", "again", {}, 20, 100)
        history = history_bundle(tx, made.repository.access(), made.config.base_url, asked_for)
    assert statuses(history) == ["201", "200", "201"]


def test_a_deletions_history_entry_is_the_delete_that_succeeded(made: Services) -> None:
    """R4 http.html#history: a DELETE, without a resource, answered as a DELETE is (200); it
    was listed 410, the status of a later read of the deleted resource."""
    stored(made, "removed")
    made.repository.delete("Basic", "removed")
    with made.store.reading() as tx:
        asked_for = history_request("Basic", "removed", {}, 20, 100)
        deletion = history_bundle(tx, made.repository.access(), made.config.base_url, asked_for)["entry"][0]
    assert (deletion["request"]["method"], "resource" in deletion, deletion["response"]["status"]) == (
        "DELETE",
        False,
        "200",
    )


def test_a_re_creation_whose_deletion_is_on_another_page_is_still_a_creation(made: Services) -> None:
    """The page holds the newest version alone: the deletion before it is read from the store."""
    current = stored(made, "paged")
    made.repository.delete("Basic", "paged")
    made.repository.update("Basic", "paged", current)
    with made.store.reading() as tx:
        asked_for = history_request("Basic", "paged", {"_count": "1"}, 20, 100)
        history = history_bundle(tx, made.repository.access(), made.config.base_url, asked_for)
    assert statuses(history) == ["201"]


def test_a_history_page_without_versions_has_no_empty_entry_array(made: Services) -> None:
    """Polling for changes since now: the empty page carried ``"entry": []``, which FHIR JSON
    forbids (the gateway's own validator refuses it, ``structure.empty-array``)."""
    stored(made, "quiet")
    with made.store.reading() as tx:
        asked_for = history_request("Basic", "quiet", {"_since": "2999-01-01T00:00:00Z"}, 20, 100)
        history = history_bundle(tx, made.repository.access(), made.config.base_url, asked_for)
    assert (history["total"], "entry" in history) == (0, False)


def test_a_patched_version_is_listed_as_a_patch_in_the_history(made: Services) -> None:
    """The PUT that writes a patched resource was recorded, so its history said PUT."""
    stored(made, "patched")
    made.repository.patch("Basic", "patched", [{"op": "add", "path": "/code/text", "value": "patched"}])
    made.bundles.process(bundle(patch("Basic/patched", [{"op": "add", "path": "/code/text", "value": "again"}])))
    with made.store.reading() as tx:
        asked_for = history_request("Basic", "patched", {}, 20, 100)
        history = history_bundle(tx, made.repository.access(), made.config.base_url, asked_for)
    assert [entry["request"]["method"] for entry in history["entry"]] == ["PATCH", "PATCH", "PUT"]


# -- one record per person ------------------------------------------------------------------------
def test_a_transaction_writing_one_person_twice_is_refused_naming_both_entries(made: Services) -> None:
    """Its location was Patient.identifier[0] (which of the Bundle's Patients, it did not say),
    and it named the first entry's Patient as the number's holder: a record the transaction,
    rolled back, never made."""
    person = {k: v for k, v in synthetic_patient(random.Random(11), 11).items() if k != "id"}
    error = refusal(made, bundle(post(dict(person)), post(dict(person))))
    assert (error.status, error.message_id, error.expression, error.params) == (
        409,
        "http.bundle-same-person",
        "Bundle.entry[1].resource.identifier[0]",
        {"first": "Bundle.entry[0]", "second": "Bundle.entry[1]"},
    )


def test_a_transaction_refused_for_its_patients_number_says_so_whatever_follows(made: Services) -> None:
    """The Patient's number is claimed as its entry is applied, before the entries after it:
    a later entry's own fault (a stale ``ifMatch``) is not the answer."""
    person = synthetic_patient(random.Random(41), 41)
    made.repository.update("Patient", person["id"], person)
    stored(made, "x")
    stale = {
        **put("Basic/x", {**basic("x"), "id": "x"}),
        "request": {"method": "PUT", "url": "Basic/x", "ifMatch": 'W/"5"'},
    }
    error = refusal(made, bundle(post({k: v for k, v in person.items() if k != "id"}), stale))
    assert (error.status, error.message_id, error.expression) == (
        409,
        "http.duplicate-person",
        "Bundle.entry[0].resource.identifier[0]",
    )


def test_on_postgresql_a_transactions_new_patient_claims_its_keys_with_the_commit(
    tmp_path: Path, validator: Validator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As a single create's: the careful claim waited for its answer inside the transaction
    (a round trip of its own), a fifth of a benchmark Bundle's time on PostgreSQL."""
    from bench.server_data import transaction_bundles

    careful: list[str] = []
    claim = IdentityKeys.claim
    monkeypatch.setattr(
        IdentityKeys, "claim", lambda self, person, *rest: careful.append(person) or claim(self, person, *rest)
    )
    with fresh_database_url("postgresql", tmp_path) as url:
        made = Services(Config.load(database_url=url))
        made.__dict__["validator"] = validator  # a cached_property, preset: no second compile
        try:
            made.bundles.process(transaction_bundles(1)[0])
        finally:
            made.close()
    assert careful == []


def test_a_transactions_new_patient_takes_a_number_no_record_carries_any_more(made: Services) -> None:
    """The identity index still names a holder the archive no longer has: claimed as no one's,
    the number fails the write (PostgreSQL), and the Bundle, written again with the careful
    claim, takes the number over, as a single create does."""
    person = synthetic_patient(random.Random(43), 43)
    key = f"idcard|{person['identifier'][0]['value']}"
    with made.store.transaction() as tx:
        tx.identity.link("no-such-record", [key])
    answer = made.bundles.process(bundle(post({k: v for k, v in person.items() if k != "id"})))
    with made.store.reading() as tx:
        holder = tx.identity.person_of(key)
    assert holder == answer["entry"][0]["resource"]["id"]


def test_a_transaction_writes_its_patient_and_their_records_in_one_statement_a_table(
    made: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Patient's identity numbers are claimed before its row is queued: claimed after, the
    claim sent the Patient's rows on their own, and each table took two statements (on
    PostgreSQL a round trip more, the BEGIN one of its own).  SQLite links the numbers in the
    claim itself (``IdentityKeys.claim``), queuing no person_key row."""
    from bench.server_data import transaction_bundles
    from gateway.storage.store import Executor

    tables: list[str] = []
    insert, together = Executor._insert_rows, Executor._insert_together
    monkeypatch.setattr(
        Executor, "_insert_rows", lambda self, table, *rest: tables.append(table) or insert(self, table, *rest)
    )
    monkeypatch.setattr(  # PostgreSQL's: the tables' INSERTs in one statement
        Executor, "_insert_together", lambda self, rows: tables.extend(key[0] for key in rows) or together(self, rows)
    )
    answer = made.bundles.process(transaction_bundles(1)[0])
    written = {"resource", "search_index"}  # new resources: no superseded version to keep
    if made.store.dialect.name == "postgresql":  # SQLite's numbers went with the claim
        written.add("person_key")
    assert (len(answer["entry"]), sorted(tables)) == (10, sorted(written))


def test_a_transaction_may_write_two_records_of_one_person_from_before(made: Services) -> None:
    """Each may be updated on its own (they carried the number already); together, as when the
    主索引 staff link one to the other, they were refused as one person written twice."""
    person = synthetic_patient(random.Random(31), 31)
    made.repository.update("Patient", person["id"], person)
    with made.store.transaction() as tx:
        tx.resources.write({**person, "id": "older-twin"})
    twins = [person, {**person, "id": "older-twin", "active": False}]
    answer = made.bundles.process(bundle(*(put(f"Patient/{p['id']}", p) for p in twins)))
    assert statuses(answer) == ["200 OK", "200 OK"]


def test_a_transaction_may_swap_the_numbers_of_two_mixed_up_records(made: Services) -> None:
    """Applied entry by entry, each record found the other's number still held (409)."""
    first, second = (synthetic_patient(random.Random(n), n) for n in (21, 22))
    for person in (first, second):
        made.repository.update("Patient", person["id"], person)
    swapped = [{**second, "id": first["id"]}, {**first, "id": second["id"]}]  # each id held the other
    answer = made.bundles.process(bundle(*(put(f"Patient/{p['id']}", p) for p in swapped)))
    assert statuses(answer) == ["200 OK", "200 OK"]


@pytest.mark.parametrize("kind", ["transaction", "batch"])
def test_an_empty_bundle_is_answered_without_an_empty_entry_array(made: Services, kind: str) -> None:
    """FHIR JSON has no empty arrays: an answer with "entry": [] is no valid Bundle."""
    assert made.bundles.process({"resourceType": "Bundle", "type": kind}) == {
        "resourceType": "Bundle",
        "type": f"{kind}-response",
    }


@pytest.mark.parametrize(
    ("condition", "status"),
    [
        ({"ifNoneMatch": 'W/"1"'}, "304 Not Modified"),
        ({"ifNoneMatch": 'W/"2", W/"3"'}, "200 OK"),
        ({"ifModifiedSince": "2099-01-01T00:00:00Z"}, "304 Not Modified"),
        ({"ifModifiedSince": "2000-01-01T00:00:00+08:00"}, "200 OK"),
    ],
)
def test_a_get_entry_reads_conditionally_as_a_get_on_its_own(made: Services, condition: dict, status: str) -> None:
    """Bundle.entry.request.ifNoneMatch and ifModifiedSince were ignored: every read was a 200."""
    stored(made, "polled")
    entry = {"request": {"method": "GET", "url": "Basic/polled", **condition}}
    assert statuses(made.bundles.process(bundle(entry, kind="batch"))) == [status]


@pytest.mark.parametrize("kind", ["transaction", "batch"])
def test_an_entrys_warnings_are_located_in_the_bundle(made: Services, kind: str) -> None:
    """A batch entry's outcome (``Prefer: return=OperationOutcome``) located its warnings at
    the resource alone (``Basic``), where a transaction's are located in the Bundle."""
    answer = made.bundles.process(
        bundle(asked("GET", "Basic?_count=1"), post(basic("located")), kind=kind), prefer="OperationOutcome"
    )
    issues = answer["entry"][1]["response"]["outcome"]["issue"]
    assert {tuple(issue.get("expression", ())) for issue in issues} == {("Bundle.entry[1].resource",)}


def test_a_vread_entry_reads_conditionally_as_a_vread_on_its_own(made: Services) -> None:
    """``GET Basic/x/_history/1`` with ``If-None-Match: W/"1"`` on its own is a 304; as an
    entry with that ``ifNoneMatch`` it carried the version again (200)."""
    stored(made, "held")
    entry = {"request": {"method": "GET", "url": "Basic/held/_history/1", "ifNoneMatch": 'W/"1"'}}
    assert statuses(made.bundles.process(bundle(entry, kind="batch"))) == ["304 Not Modified"]


@pytest.mark.parametrize("kind", ["transaction", "batch"])
def test_a_conditional_delete_entry_with_an_old_if_match_deletes_nothing(made: Services, kind: str) -> None:
    """Its ifMatch was ignored: the newer version was deleted."""
    current = stored(made, "moved-on")
    made.repository.update("Basic", "moved-on", {**current, "code": {"text": "changed"}})
    entry = {"request": {"method": "DELETE", "url": f"Basic?identifier={SYSTEM}|moved-on", "ifMatch": 'W/"1"'}}
    with contextlib.suppress(FhirError):
        made.bundles.process(bundle(entry, kind=kind))
    assert made.repository.read("Basic", "moved-on").version == 2


def test_a_resource_another_still_refers_to_is_not_deleted(made: Services) -> None:
    """A deleted Patient left every Encounter, Coverage and Observation of hers dangling."""
    stored(made, "target")
    made.repository.update(
        "Basic", "referrer", {**basic("referrer"), "id": "referrer", "subject": {"reference": "Basic/target"}}
    )
    with pytest.raises(FhirError) as refused:
        made.repository.delete("Basic", "target")
    assert (refused.value.status, refused.value.params["referrer"]) == (409, "Basic/referrer")


#: an extension no search parameter reads, pointing at Basic/target
SITE = {"url": "http://hl7.org/fhir/StructureDefinition/bodySite", "valueReference": {"reference": "Basic/target"}}


@pytest.mark.parametrize(
    "pointing",
    [{"extension": [SITE]}, {"created": "2024-01-01", "_created": {"extension": [SITE]}}],
    ids=["extension", "primitive-extension"],
)
def test_a_resource_an_extension_refers_to_is_not_deleted(made: Services, pointing: dict[str, Any]) -> None:
    """No search parameter indexes an extension's valueReference: its target was deleted."""
    stored(made, "target")
    made.repository.update("Basic", "referrer", {**basic("referrer"), "id": "referrer", **pointing})
    with pytest.raises(FhirError) as refused:
        made.repository.delete("Basic", "target")
    assert (refused.value.status, refused.value.params["referrer"]) == (409, "Basic/referrer")


def test_validating_a_delete_foretells_the_reference_refusal(made: Services) -> None:
    stored(made, "pointed-at")
    pointer = {**basic("pointer"), "id": "pointer", "subject": {"reference": "Basic/pointed-at"}}
    made.repository.update("Basic", "pointer", pointer)
    with pytest.raises(FhirError) as refused:
        made.repository.check_deletable("Basic", "pointed-at")
    assert refused.value.message_id == "http.delete-referenced"


def test_a_transaction_may_delete_a_resource_with_what_refers_to_it(made: Services) -> None:
    stored(made, "held")
    made.repository.update(
        "Basic", "holder", {**basic("holder"), "id": "holder", "subject": {"reference": "Basic/held"}}
    )
    answer = made.bundles.process(bundle(asked("DELETE", "Basic/held"), asked("DELETE", "Basic/holder")))
    assert statuses(answer) == ["204 No Content", "204 No Content"]


def test_a_delete_answers_with_the_etag_of_the_deletion_version(made: Services, client: FlaskClient) -> None:
    """R4 http.html#delete: a deleted resource may be brought back to life, and the ETag of its
    deletion lets the client make that update conditional; none was sent."""
    stored(made, "brought-back")
    answer = client.delete("/fhir/Basic/brought-back")
    assert (answer.status_code, answer.headers.get("ETag")) == (200, 'W/"2"')


def test_an_update_naming_the_deletion_version_brings_the_resource_back_to_life(made: Services) -> None:
    """The ETag a DELETE answers is for this (R4 http.html#delete): the update is conditional on
    no other write having brought it back first."""
    current = stored(made, "revived")
    made.repository.delete("Basic", "revived")
    assert made.repository.update("Basic", "revived", current, if_match=2).status == 201


def test_a_transactions_delete_entry_answers_with_the_etag_of_the_deletion(made: Services) -> None:
    stored(made, "entry-deleted")
    answer = made.bundles.process(bundle(asked("DELETE", "Basic/entry-deleted")))
    assert answer["entry"][0]["response"] == {"status": "204 No Content", "etag": 'W/"2"'}


def test_a_conditional_update_selecting_the_bundles_own_create_is_refused(made: Services) -> None:
    """R4 applies the POST first, so the PUT's criteria select what it made (an overlap, which
    fails the transaction); resolved before it, they found nothing and made a twin."""
    refused = refusal(made, bundle(post(basic("twin")), put(f"Basic?identifier={SYSTEM}|twin", basic("twin"))))
    assert (refused.status, refused.expression, holders(made, "twin")) == (400, "Bundle.entry[1].request", [])


def test_a_malformed_create_beside_a_conditional_update_is_refused_by_validation(made: Services) -> None:
    """The creates written provisionally to ask the condition again were written before they
    were validated: a meta that is no object failed the write, a 500."""
    malformed = {**basic("twin"), "meta": "x"}
    refused = refusal(made, bundle(post(malformed), put(f"Basic?identifier={SYSTEM}|other", basic("other"))))
    assert refused.status == 422


def test_a_meta_that_is_no_object_beside_a_conditional_reference_is_refused(made: Services) -> None:
    """The resource written provisionally to resolve the reference failed the write (a 500)."""
    entry = post({**basic("meta"), "meta": "x", "subject": {"reference": "Patient?identifier=urn:x|1"}})
    refused = refusal(made, bundle(entry))
    assert (refused.status, refused.message_id, refused.expression) == (
        422,
        "http.meta-not-object",
        "Bundle.entry[0].resource.meta",
    )


def test_a_meta_that_is_no_object_is_refused_under_warn(make: Callable[[str], Services]) -> None:
    """Kept to the write under warn, it failed there with a TypeError (a 500)."""
    with pytest.raises(FhirError) as refused:
        make("warn").repository.create({**basic("meta"), "meta": "x"})
    assert (refused.value.status, refused.value.message_id) == (422, "http.meta-not-object")


def test_a_meta_tag_that_is_no_array_is_refused_under_warn(make: Callable[[str], Services]) -> None:
    """Stored so under warn, every read of it cut by _summary or _elements was a 500."""
    with pytest.raises(FhirError) as refused:
        make("warn").repository.create({**basic("tag"), "meta": {"tag": 5}})
    assert (refused.value.status, refused.value.message_id) == (422, "http.meta-tag-not-array")


def test_a_refused_if_match_names_its_entry(made: Services) -> None:
    """Of a transaction's entries, the 412 said nothing of which one's version was wrong."""
    stored(made, "versioned")
    entry = {
        "resource": {**basic("versioned"), "id": "versioned"},
        "request": {"method": "PUT", "url": "Basic/versioned"},
    }
    entry["request"]["ifMatch"] = 'W/"7"'
    refused = refusal(made, bundle(post(basic("first")), entry))
    assert (refused.status, refused.expression) == (412, "Bundle.entry[1]")


def test_a_conditional_update_entry_with_if_match_matching_nothing_says_so(made: Services) -> None:
    """Its 404 named an id the server had minted for a create it never made."""
    entry = put(f"Basic?identifier={SYSTEM}|nowhere", basic("nowhere"))
    entry["request"]["ifMatch"] = 'W/"1"'
    refused = refusal(made, bundle(entry))
    assert (refused.status, refused.message_id, refused.expression) == (
        404,
        "http.conditional-no-match",
        "Bundle.entry[0].request.url",
    )


def test_a_subsetted_resource_entry_is_refused_at_its_tag(made: Services) -> None:
    """A copy cut by _summary or _elements, written back, replaced the whole resource."""
    subsetted = {"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue", "code": "SUBSETTED"}
    part = {**basic("cut"), "id": "cut", "meta": {"tag": [{"system": "urn:t", "code": "x"}, subsetted]}}
    refused = refusal(made, bundle(put("Basic/cut", part)))
    assert (refused.status, refused.message_id, refused.expression) == (
        422,
        "http.subsetted",
        "Bundle.entry[0].resource.meta.tag[1]",
    )


def test_a_batch_entry_refused_by_its_if_match_is_located_at_the_entry(made: Services) -> None:
    """A transaction's 412 named its entry; a batch's named nothing."""
    stored(made, "batched")
    entry = put("Basic/batched", {**basic("batched"), "id": "batched"})
    entry["request"]["ifMatch"] = 'W/"7"'
    answer = made.bundles.process(bundle(post(basic("first")), entry, kind="batch"))
    assert answer["entry"][1]["response"]["outcome"]["issue"][0]["expression"] == ["Bundle.entry[1]"]


def test_a_condition_matching_several_names_its_entry(made: Services) -> None:
    for value in ("twin-1", "twin-2"):
        made.repository.update("Basic", value, {**basic("twins"), "id": value})
    refused = refusal(made, bundle(post(basic("twins"), f"identifier={SYSTEM}|twins")))
    assert (refused.status, refused.expression) == (412, "Bundle.entry[0].request.ifNoneExist")


def test_a_json_patch_naming_another_entry_by_its_full_url_names_what_it_became(made: Services) -> None:
    """The urn:uuid inside a PATCH entry's JSON Patch was left as written, and refused."""
    stored(made, "patched")
    link = "urn:uuid:5d1c7b0e-8a5e-4c41-9a77-2f3e9d6b1c24"
    operations = [{"op": "add", "path": "/subject", "value": {"reference": link}}]
    answer = made.bundles.process(bundle(post(basic("named"), full_url=link), patch("Basic/patched", operations)))
    target = answer["entry"][0]["response"]["location"].split("/_history")[0]
    assert answer["entry"][1]["resource"]["subject"]["reference"] == target


@pytest.mark.parametrize("conditional", [False, True], ids=["by id", "beside a conditional create"])
def test_a_transaction_patch_entry_may_carry_its_json_patch_as_the_list(made: Services, conditional: bool) -> None:
    """A batch took the lenient form (the operations themselves as the entry's resource), and
    a transaction failed on it with a 500: its links were rewritten as a resource's."""
    stored(made, "listed")
    operations = [{"op": "add", "path": "/code/text", "value": "patched"}]
    entries = [{"resource": operations, "request": {"method": "PATCH", "url": "Basic/listed"}}]
    if conditional:
        entries.append(post(basic("beside"), f"identifier={SYSTEM}|beside"))
    answer = made.bundles.process(bundle(*entries))
    assert (statuses(answer)[0], made.repository.read("Basic", "listed").resource["code"]) == (
        "200 OK",
        {"text": "patched"},
    )


def test_a_transaction_patch_entry_holding_no_json_patch_is_a_400(made: Services) -> None:
    stored(made, "unpatched")
    refused = refusal(
        made, bundle({"resource": "not a patch", "request": {"method": "PATCH", "url": "Basic/unpatched"}})
    )
    assert (refused.status, refused.message_id) == (400, "http.bad-patch")


def test_a_patch_binary_that_is_not_json_says_why_in_chinese(made: Services) -> None:
    """orjson's English reason ("unexpected character: line 1 column 2") sat inside the
    Chinese sentence; the reason is now worded as a request body's JSON is."""
    stored(made, "garbled")
    data = base64.b64encode(b"{not json").decode()
    entry = {"resource": {"resourceType": "Binary", "contentType": "application/json-patch+json", "data": data}}
    refused = refusal(made, bundle({**entry, "request": {"method": "PATCH", "url": "Basic/garbled"}}))
    assert refused.outcome("zh-CN")["issue"][0]["details"]["text"].endswith(
        "第 1 行第 2 列处应为用双引号括起的属性名）"
    )


@pytest.mark.parametrize("etag", ['W/"01"', '"01"', "01", 'W/"+1"'])
def test_an_if_match_naming_a_version_in_another_spelling_matches_nothing(made: Services, etag: str) -> None:
    """ETags compare as text (RFC 9110 §8.8.3.2): ``W/"01"`` is not version 1's ``W/"1"``,
    as a vread of ``_history/01`` and an ``If-None-Match`` tell; it changed version 1."""
    stored(made, "spelt")
    entry = put("Basic/spelt", {**basic("spelt"), "id": "spelt", "code": {"text": "changed"}})
    entry["request"]["ifMatch"] = etag
    refused = refusal(made, bundle(entry))
    assert (refused.status, refused.message_id, made.repository.read("Basic", "spelt").version) == (
        400,
        "http.bad-if-match",
        1,
    )


@pytest.mark.parametrize(("listed", "answered"), [('W/"1", W/"2"', 200), ('W/"1",W/"3"', 412)])
def test_an_if_match_listing_versions_lets_a_write_go_on_when_one_is_current(
    made: Services, client: FlaskClient, listed: str, answered: int
) -> None:
    """RFC 9110 §13.1.1 takes a list of entity tags in If-Match, any of which current lets
    the write go on, none a 412; a list was a 400 http.bad-if-match."""
    made.repository.update("Basic", "listed", {**stored(made, "listed"), "code": {"text": "second"}})
    changed = {**basic("listed"), "id": "listed", "code": {"text": "third"}}
    assert client.put("/fhir/Basic/listed", json=changed, headers={"If-Match": listed}).status_code == answered


def test_a_conditional_reference_on_the_own_base_is_resolved(made: Services) -> None:
    """``http://<base>/Basic?identifier=…`` was stored as written, a search URL for a link.
    The Bundle localises its entries' references itself (the transaction route reads its
    body as sent)."""
    stored(made, "target")
    base = made.repository.config.base_url
    sent = bundle(post(basic("pointing", subject={"reference": f"{base}/Basic?identifier={SYSTEM}|target"})))
    answer = made.bundles.process(sent)
    assert answer["entry"][0]["resource"]["subject"] == {"reference": "Basic/target"}


@pytest.mark.parametrize("bad_id", ["a_b", "a" * 65])
def test_no_write_creates_a_resource_at_an_id_fhir_does_not_allow(make: Callable[[str], Services], bad_id: str) -> None:
    """A single PUT refused such an id (400 http.bad-id) whatever the policy, but with
    ``warn`` a transaction's PUT and a conditional update naming it stored the resource there."""
    made = make("warn")
    conditional = put(f"Basic?identifier={SYSTEM}|free", {**basic("free"), "id": bad_id})
    refused = [
        refusal(made, bundle(put(f"Basic/{bad_id}", {**basic("x"), "id": bad_id}))),
        refusal(made, bundle(conditional)),
    ]
    with pytest.raises(FhirError) as single:
        made.repository.conditional_update("Basic", f"identifier={SYSTEM}|free", {**basic("free"), "id": bad_id})
    refused.append(single.value)
    assert [(r.status, r.message_id, r.expression) for r in refused] == [
        (400, "http.bad-id", "Bundle.entry[0].request.url"),
        (400, "http.bad-id", "Bundle.entry[0].resource.id"),
        (400, "http.bad-id", "Basic.id"),
    ]
    assert (holders(made, "x"), holders(made, "free")) == ([], [])


@pytest.mark.parametrize("kind", ["transaction", "batch"])
def test_a_post_entry_to_an_instance_creates_nothing(made: Services, kind: str) -> None:
    """``POST Basic/chosen`` created the resource at an id of the server's choosing, the one
    in its URL ignored; a single POST there answers 405, as /fhir/Basic/chosen takes none."""
    entry = {"resource": basic("chosen"), "request": {"method": "POST", "url": "Basic/chosen"}}
    if kind == "transaction":
        refused = refusal(made, bundle(entry))
        answer = (refused.status, refused.expression)
    else:
        failed = made.bundles.process(bundle(entry, kind="batch"))["entry"][0]["response"]
        answer = (int(failed["status"]), failed["outcome"]["issue"][0]["expression"][0])
    assert (answer, holders(made, "chosen")) == ((400, "Bundle.entry[0].request.url"), [])


@pytest.mark.parametrize("kind", ["transaction", "batch"])
def test_a_bundle_over_the_entry_limit_is_refused_before_any_entry(make: Callable[[str], Services], kind: str) -> None:
    """``YIYANG_BUNDLE_ENTRIES`` bound the validator only: a batch of 5,001 entries was
    processed, seconds of a worker's time.  The first entry would have created."""
    made = make("reject")
    made.repository.config = dataclasses.replace(made.repository.config, bundle_entries=3)
    refused = refusal(made, bundle(post(basic("over")), *[asked("GET", "Basic/none")] * 3, kind=kind))
    assert (refused.status, refused.message_id, refused.expression, holders(made, "over")) == (
        413,
        "http.too-many-entries",
        "Bundle.entry",
        [],
    )
    assert made.bundles.process(bundle(*[asked("GET", "Basic?_count=1")] * 3, kind=kind))["entry"]


@pytest.mark.parametrize("kind", ["transaction", "batch"])
def test_a_head_entry_is_answered_without_a_body(made: Services, kind: str) -> None:
    """HTTP answers a HEAD without a body; the entries carried the resource or searchset read."""
    stored(made, "headed")
    answer = made.bundles.process(bundle(asked("HEAD", "Basic/headed"), asked("HEAD", "Basic?_id=headed"), kind=kind))
    assert [sorted(entry) for entry in answer["entry"]] == [["response"], ["response"]]
    assert [sorted(entry["response"]) for entry in answer["entry"]] == [
        ["etag", "lastModified", "status"],
        ["status"],
    ]


@pytest.mark.parametrize("url", ["Basic/headed/_history/1", "Basic/headed/_history", "Basic/_history"])
def test_a_head_entry_reads_a_version_or_a_history_as_its_get_does(made: Services, url: str) -> None:
    """A HEAD of a vread or a history was refused as a write of it (400 http.bad-bundle)."""
    stored(made, "headed")
    answer = made.bundles.process(bundle(asked("HEAD", url), kind="batch"))
    assert (answer["entry"][0]["response"]["status"], "resource" in answer["entry"][0]) == ("200 OK", False)


@pytest.mark.parametrize("method", ["DELETE", "PUT", "PATCH"])
def test_an_entry_writing_version_zero_changes_nothing(made: Services, method: str) -> None:
    """``Basic/x/_history/0`` was read as ``Basic/x`` (version 0 is falsy): the entry deleted,
    updated or patched the resource itself, where any other version's URL is refused."""
    current = stored(made, "zero")
    entry = asked(method, "Basic/zero/_history/0")
    changed = {**current, "code": {"text": "x"}}
    entry["resource"] = changed if method == "PUT" else [{"op": "replace", "path": "/code/text", "value": "x"}]
    made.bundles.process(bundle(entry, kind="batch"))
    assert made.repository.read("Basic", "zero").version == 1


@pytest.mark.parametrize("kind", ["transaction", "batch"])
def test_a_delete_entry_naming_an_id_and_a_query_deletes_that_resource_alone(made: Services, kind: str) -> None:
    """``DELETE Basic/a?identifier=…`` deleted every resource the query matched, where the
    same request on its own deletes Basic/a (its query is no condition)."""
    for resource_id in ("named", "other"):
        made.repository.update("Basic", resource_id, {**basic("shared"), "id": resource_id})
    made.bundles.process(bundle(asked("DELETE", f"Basic/named?identifier={SYSTEM}|shared"), kind=kind))
    assert made.repository.read("Basic", "other").version == 1


@pytest.mark.parametrize("kind", ["transaction", "batch"])
def test_a_put_entry_naming_an_id_and_a_query_leaves_the_match_alone(made: Services, kind: str) -> None:
    """``PUT Basic/a?identifier=…`` of a body without an id updated the resource the query
    matched, not Basic/a (the same request on its own is refused: its body names no id)."""
    stored(made, "named")
    target = stored(made, "matched")
    entry = {"resource": {**basic("named"), "code": {"text": "changed"}}}
    entry["request"] = {"method": "PUT", "url": f"Basic/named?identifier={SYSTEM}|matched"}
    with contextlib.suppress(FhirError):
        made.bundles.process(bundle(entry, kind=kind))
    assert made.repository.read("Basic", "matched").resource == target


def test_a_delete_at_an_id_fhir_does_not_allow_is_refused_as_a_put_there_is(
    made: Services, client: FlaskClient
) -> None:
    """``DELETE Basic/a_b`` answered "nothing to delete" (a batch entry 204), where a PUT
    there is a 400 ``http.bad-id``: the client was told its request was sound."""
    answered = client.delete("/fhir/Basic/a_b")
    plain = answered.get_json()["issue"][0]
    batch = made.bundles.process(bundle(asked("DELETE", "Basic/a_b"), kind="batch"))["entry"][0]["response"]
    refused = refusal(made, bundle(asked("DELETE", "Basic/a_b")))
    assert [
        (answered.status_code, plain["details"]["coding"][0]["code"], plain["expression"]),
        (batch["status"], batch["outcome"]["issue"][0]["expression"][0]),
        (refused.status, refused.message_id, refused.expression),
    ] == [
        (400, "http.bad-id", ["id"]),
        ("400", "Bundle.entry[0].request.url"),
        (400, "http.bad-id", "Bundle.entry[0].request.url"),
    ]


def search_urls(made: Services, value: str) -> list[str]:
    """Basic?identifier=… as clients spell it: on the own base, relative, its query alone."""
    query = f"identifier={SYSTEM}|{value}"
    return [f"{made.repository.config.base_url}/Basic?{query}", f"Basic?{query}", query]


def test_an_if_none_exist_header_may_be_a_search_url_of_the_type_on_the_own_base(
    made: Services, client: FlaskClient
) -> None:
    """R4 has the header carry the query alone; ``http://…/fhir/Basic?identifier=…`` was read
    whole, a 400 naming an unknown parameter ``http``.  Another type or server is refused."""
    stored(made, "found")
    answers = [
        client.post("/fhir/Basic", json=basic("found"), headers={"If-None-Exist": url})
        for url in search_urls(made, "found")
    ]
    refused = [
        client.post("/fhir/Basic", json=basic("found"), headers={"If-None-Exist": url}).get_json()["issue"][0]
        for url in (f"Patient?identifier={SYSTEM}|found", f"http://elsewhere/fhir/Basic?identifier={SYSTEM}|found")
    ]
    assert ([a.status_code for a in answers], holders(made, "found")) == ([200, 200, 200], ["found"])
    assert [r["details"]["coding"][0]["code"] for r in refused] == ["http.condition-not-a-query"] * 2


def test_an_if_none_exist_entry_may_be_a_search_url_of_the_type_on_the_own_base(made: Services) -> None:
    stored(made, "entry")
    answer = made.bundles.process(
        bundle(*[post(basic("entry"), url) for url in search_urls(made, "entry")], kind="batch")
    )
    refused = refusal(made, bundle(post(basic("entry"), f"Patient?identifier={SYSTEM}|entry")))
    assert (statuses(answer), holders(made, "entry")) == (["200 OK"] * 3, ["entry"])
    assert (refused.status, refused.message_id, refused.expression) == (
        400,
        "http.condition-not-a-query",
        "Bundle.entry[0].request.ifNoneExist",
    )


@pytest.mark.parametrize("blank", ["", "Basic?"])
def test_a_blank_if_none_exist_entry_is_refused_not_a_plain_create(made: Services, blank: str) -> None:
    """As a blank If-None-Exist header is: a condition present but selecting nothing made a
    second resource where the client meant to find the first."""
    entry = post(basic("blank"))
    entry["request"]["ifNoneExist"] = blank
    refused = refusal(made, bundle(entry))
    assert (refused.status, refused.message_id, refused.expression) == (
        400,
        "http.conditional-needs-criteria",
        "Bundle.entry[0].request.ifNoneExist",
    )


@pytest.mark.parametrize(
    ("entries", "where"),
    [
        ([post(basic("paged"), f"identifier={SYSTEM}|paged&_count=1")], "Bundle.entry[0].request.ifNoneExist"),
        ([put("Basic?identifier=", basic("blank"))], "Bundle.entry[0].request.url"),
        ([patch("Basic?_sort=_id", [])], "Bundle.entry[0].request.url"),
        (
            [post(basic("linked", subject={"reference": "Basic?_count=1"}))],
            "Bundle.entry[0].resource.subject.reference",
        ),
        (
            [post(basic("kept")), asked("DELETE", f"Basic?identifier={SYSTEM}|kept&_offset=1")],
            "Bundle.entry[1].request.url",
        ),
    ],
)
def test_criteria_that_select_nothing_in_particular_are_refused_where_they_are_written(
    made: Services, entries: list[dict[str, Any]], where: str
) -> None:
    """Refused while the Bundle's conditions were resolved, they were located nowhere: in a
    Bundle of hundreds of entries, nothing said which entry's criteria to mend."""
    assert refusal(made, bundle(*entries)).expression == where


@pytest.mark.parametrize(
    ("entries", "where"),
    [
        ([post(basic("odd"), f"identifier={SYSTEM}|odd&colour=red")], "Bundle.entry[0].request.ifNoneExist"),
        ([post(basic("kept")), put("Basic?colour=red", basic("odd"))], "Bundle.entry[1].request.url"),
        ([post(basic("kept")), asked("DELETE", "Basic?colour=red")], "Bundle.entry[1].request.url"),
        ([patch("Basic?colour=red", [])], "Bundle.entry[0].request.url"),
        (
            [post(basic("linked", subject={"reference": "Basic?colour=red"}))],
            "Bundle.entry[0].resource.subject.reference",
        ),
    ],
)
def test_an_unknown_parameter_in_an_entrys_criteria_is_refused_where_it_is_written(
    made: Services, entries: list[dict[str, Any]], where: str
) -> None:
    """Located by its name alone (``colour``), it did not say which of hundreds of entries
    to mend, as the Bundle's other criteria errors do."""
    refused = refusal(made, bundle(*entries))
    assert (refused.message_id, refused.expression) == ("search.unknown-parameter", where)


def test_an_unknown_method_is_refused_naming_the_codes_of_r4s_http_verb_value_set(made: Services) -> None:
    """The codes come from the registry's copy of the ValueSet, in its order, not a second list."""
    verbs = made.validator.registry.base_valuesets["http://hl7.org/fhir/ValueSet/http-verb"] or []
    refused = refusal(made, bundle(asked("get", "Basic/x")))
    assert refused.params["detail"].params["methods"] == ", ".join(code for _, code in verbs)

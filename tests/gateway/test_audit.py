"""The audit trail: every request leaves an AuditEvent, the chain proves nothing was edited,
deleted or inserted, auditors search it through the API, and personal identifiers are masked
in its free text, in logs and in the command line's output."""

from __future__ import annotations

import base64
import json
import threading
import time
from typing import Any
from urllib.parse import unquote

import pytest
import requests
from flask import Flask, request
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway import create_app
from gateway.api import audit as audit_api
from gateway.api.audit import parse_query
from gateway.cli import main
from gateway.config import Config
from gateway.fhir.errors import FhirError
from gateway.security import audit as audit_module
from gateway.security.audit import (
    INTERACTIONS,
    AuditTrail,
    Delivered,
    Pending,
    RequestFacts,
    canonical,
    columns,
    outcome_code,
    record_columns,
    record_of,
    render,
    seal,
    verify,
)
from gateway.security.principal import Principal
from gateway.storage import open_store
from gateway.storage.store import Store
from tests.conftest import Api, request_token
from tests.gateway.test_api import ID_CARD as ID_CARD_SYSTEM
from tests.gateway.test_api import id_card, ingest_sample, new_patient
from tests.gateway.test_masking import ENCODED_ID_CARD, ID_CARD

HIS = Principal("his", "city-hospital", frozenset({"system/*.cruds"}), "hospital")


def facts(index: int = 0, **changes: Any) -> RequestFacts:
    found = RequestFacts(
        method="GET",
        path=f"/fhir/Patient/p{index}",
        endpoint="fhir.read",
        view_args={"kind": "Patient", "resource_id": f"p{index}"},
        query=[],
        status=200,
        remote_addr="10.0.0.7",
        principal=HIS,
    )
    for name, value in changes.items():
        setattr(found, name, value)
    return found


def event_of_facts(found: RequestFacts) -> dict[str, Any]:
    """The AuditEvent a request's record renders."""
    return render(record_of(found, "2026-12-03T08:00:00.000000Z"))


def appended(store: Store, count: int) -> None:
    trail = AuditTrail(store)
    for index in range(count):
        trail.record(facts(index))
    trail.close()


def tamper(database_url: str, statement: str) -> None:
    """Change the table behind the gateway's back, as someone with file or SQL access could."""
    if database_url.startswith("sqlite"):
        import sqlite3

        with sqlite3.connect(database_url.removeprefix("sqlite:///")) as connection:
            connection.execute(statement)
        return
    import psycopg

    with psycopg.connect(database_url, autocommit=True) as connection:
        connection.execute(statement)


def verified(capsys: pytest.CaptureFixture[str], database_url: str, *anchors: str, lang: str = "en") -> tuple[int, str]:
    argv = ["audit", "verify", "--lang", lang, "--database", database_url]
    code = main([*argv, *(f"--anchor={anchor}" for anchor in anchors)])
    return code, capsys.readouterr().out


def head(out: str) -> str:
    """The SEQ:HASH an intact verify printed, to keep as an anchor: its last word in either language."""
    return out.split()[-1]


# -- the chain ---------------------------------------------------------------------------------------
def test_a_chain_of_appended_events_verifies(
    store: Store, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    appended(store, 5)
    appended(store, 3)  # a second worker's batch continues the same chain
    code, out = verified(capsys, database_url)
    assert (code, out.startswith("audit trail intact: 8 events, 20")) == (0, True), out


def test_an_intact_trail_is_reported_in_chinese_with_the_same_head(
    store: Store, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    appended(store, 2)
    english = verified(capsys, database_url)[1]
    code, chinese = verified(capsys, database_url, lang="zh-CN")
    assert (code, chinese.startswith("审计日志完整：共 2 个事件，20"), head(chinese)) == (0, True, head(english))
    assert f"；链头 {head(english)}\n" in chinese


@pytest.mark.parametrize(
    ("lang", "said"), [("zh-CN", "审计日志完整：尚无事件\n"), ("en", "audit trail intact: no events\n")]
)
def test_an_empty_trail_verifies(database_url: str, capsys: pytest.CaptureFixture[str], lang: str, said: str) -> None:
    open_store(database_url).close()  # an archive with no events yet (verify creates none)
    assert verified(capsys, database_url, lang=lang) == (0, said)


@pytest.mark.parametrize(
    ("lang", "said"),
    [
        ("zh-CN", "审计日志已被破坏，断在序号 2：事件内容与计算哈希时不同（已被修改）（此前 1 个事件验证无误）\n"),
        (
            "en",
            "audit trail BROKEN at seq 2: the event differs from what was hashed (edited) (1 events before it verified)\n",
        ),
    ],
)
def test_a_broken_trail_is_reported_in_the_chosen_language(
    store: Store, database_url: str, capsys: pytest.CaptureFixture[str], lang: str, said: str
) -> None:
    appended(store, 3)
    tamper(
        database_url, """UPDATE audit_event SET event = replace(event, '"status":200', '"status":500') WHERE seq = 2"""
    )
    assert verified(capsys, database_url, lang=lang) == (1, said)


def test_an_edited_event_is_detected_naming_its_seq(
    store: Store, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    appended(store, 6)
    tamper(
        database_url,
        """UPDATE audit_event SET event = replace(event, '"status":200', '"status":404') WHERE seq = 4""",
    )
    code, out = verified(capsys, database_url)
    assert (code, "seq 4:" in out, "edited" in out) == (1, True, True), out


def test_an_edit_rehashed_by_the_tamperer_breaks_the_next_link(
    store: Store, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    appended(store, 6)
    tamper(database_url, "UPDATE audit_event SET hash = 'f00d' WHERE seq = 2")
    code, out = verified(capsys, database_url)
    assert (code, "seq 2:" in out) == (1, True), out  # its own hash no longer matches
    tamper(database_url, "UPDATE audit_event SET hash = (SELECT hash FROM audit_event WHERE seq = 5) WHERE seq = 2")
    assert verified(capsys, database_url)[0] == 1


def test_a_deleted_event_is_detected(store: Store, database_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    appended(store, 6)
    tamper(database_url, "DELETE FROM audit_event WHERE seq = 3")
    code, out = verified(capsys, database_url)
    assert (code, "seq 3 is missing" in out) == (1, True), out


def test_an_inserted_event_is_detected(store: Store, database_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    appended(store, 3)
    tamper(
        database_url,
        "INSERT INTO audit_event (seq, recorded, agent, outcome, entity_types, entities, prev_hash, hash, event) "
        "SELECT 4, recorded, agent, outcome, entity_types, entities, hash, hash, event FROM audit_event WHERE seq = 3",
    )
    code, out = verified(capsys, database_url)
    assert (code, "seq 4:" in out) == (1, True), out


def test_a_trail_cut_off_after_its_kept_head_is_detected(
    store: Store, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    appended(store, 5)
    kept = head(verified(capsys, database_url)[1])
    tamper(database_url, "DELETE FROM audit_event WHERE seq > 3")
    code, out = verified(capsys, database_url, kept)
    assert (code, "seq 5 is gone" in out) == (1, True), out


def test_a_trail_rewritten_whole_is_detected_by_its_kept_head(
    store: Store, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Deleted and appended anew (every hash recomputed), the chain holds but the head moved."""
    appended(store, 3)
    kept = head(verified(capsys, database_url)[1])
    tamper(database_url, "DELETE FROM audit_event")
    appended(store, 4)
    code, out = verified(capsys, database_url, kept)
    assert (code, "seq 3:" in out, "rewritten" in out) == (1, True, True), out


def test_a_kept_head_of_an_intact_trail_verifies(
    store: Store, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    appended(store, 3)
    kept = head(verified(capsys, database_url)[1])
    appended(store, 2)
    assert verified(capsys, database_url, kept)[0] == 0


@pytest.mark.parametrize(
    "anchors",
    # a superscript two is a digit to str.isdigit, and no number to int(): that was a traceback
    [["0:" + "f" * 64], ["1:" + "a" * 64, "1:" + "b" * 64], ["\u00b2:" + "f" * 64]],
)
def test_an_anchor_that_cannot_be_checked_is_a_usage_error(database_url: str, anchors: list[str]) -> None:
    assert main(["audit", "verify", "--database", database_url, *(f"--anchor={a}" for a in anchors)]) == 2


@pytest.mark.parametrize(
    ("lang", "said"),
    [
        ("zh-CN", "yiyang: error: --anchor “0:abc” 应写作 序号:哈希（序号从 1 起，哈希为 64 位十六进制 SHA-256）\n"),
        ("en", "yiyang: error: --anchor '0:abc' is not SEQ:HASH (a seq from 1 and a 64-digit hex SHA-256)\n"),
    ],
)
def test_a_malformed_anchor_is_refused_in_the_chosen_language(
    database_url: str, capsys: pytest.CaptureFixture[str], lang: str, said: str
) -> None:
    assert main(["audit", "verify", "--lang", lang, "--database", database_url, "--anchor", "0:abc"]) == 2
    assert capsys.readouterr().err == said


def test_a_search_column_edited_to_hide_an_event_is_detected(store: Store) -> None:
    appended(store, 2)
    with store.transaction() as tx:
        tx.sql.execute("UPDATE audit_event SET agent = 'someone-else' WHERE seq = 2")
    verdict = verify(store)
    problem = verdict.problem
    assert problem is not None
    assert (verdict.broken_seq, problem.message_id, problem.params) == (
        2,
        "audit.chain.column-differs",
        {"columns": "agent"},
    )
    assert (str(problem), problem.text("zh-CN")) == (
        "the agent column differs from the event (edited)",
        "agent 列与事件内容不符（已被修改）",
    )


def test_workers_appending_at_once_keep_one_chain(database_url: str, store: Store) -> None:
    """Two worker processes' buffers flushing concurrently (each its own store, as each worker
    opens its own) still form one linear chain."""
    others = [open_store(database_url) for _ in range(2)]
    trails = [AuditTrail(other, interval=0.01, batch=5) for other in others]

    def work(trail: AuditTrail) -> None:
        for index in range(60):
            trail.record(facts(index))
            if index % 7 == 0:
                time.sleep(0.005)

    threads = [threading.Thread(target=work, args=(trail,)) for trail in trails]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for trail in trails:
        trail.close()
    for other in others:
        other.close()
    verdict = verify(store)
    assert (verdict.intact, verdict.events) == (True, 120)


def test_a_trail_begun_before_records_verifies_and_reads_as_it_was(store: Store) -> None:
    """Events appended as whole AuditEvents (before the trail stored compact records) stay as
    they were hashed: the chain runs on through them into records, and they read unchanged."""
    old = event_of_facts(facts(7))
    with store.transaction() as tx:
        tx.audit.append([Pending(columns(old), canonical({**old, "id": "?"}))], seal)
    appended(store, 2)
    with store.reading() as tx:
        first = tx.audit.get(1)
    verdict = verify(store)
    assert (verdict.intact, verdict.events, first) == (True, 3, canonical({**old, "id": "1"}))


def test_the_stored_record_holds_no_unmasked_identifier(store: Store) -> None:
    trail = AuditTrail(store)
    trail.record(facts(path=f"/fhir/Patient/{ID_CARD}", view_args={"kind": "Patient", "resource_id": ID_CARD}))
    trail.close()
    with store.reading() as tx:
        text = tx.audit.get(1) or ""
    assert (ID_CARD in text, "410105********0020" in text) == (False, True)


def test_a_failed_append_keeps_the_events_for_the_next_flush(store: Store) -> None:
    class Broken:
        def transaction(self) -> Any:
            raise OSError("store down")

    trail = AuditTrail(Broken())  # type: ignore[arg-type]
    trail.record(facts())
    assert (trail.flush(), trail.pending()) == (0, 1)
    trail.store = store
    assert (trail.flush(), trail.pending()) == (1, 0)


def test_events_a_code_bug_fails_are_kept_until_it_is_gone(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """A TypeError fails every write of the batch while a write of no rows goes in: that is
    no row the store refuses, and dropping the batch would lose the audit events for good."""

    def broken(seq: int, prev_hash: str, waiting: Any) -> Any:
        raise TypeError("a bug")

    trail = AuditTrail(store)
    monkeypatch.setattr(audit_module, "seal", broken)
    trail.record(facts(1))
    trail.record(facts(2))
    trail.flush()
    monkeypatch.undo()
    trail.close()
    assert verify(store).events == 2


# -- the event ------------------------------------------------------------------------------------
def test_a_refused_anonymous_request_records_the_reason() -> None:
    event = event_of_facts(
        facts(principal=None, status=401, reason="http.unauthorized 需要访问令牌", endpoint="fhir.read")
    )
    assert event["agent"][0]["who"] == {"display": "anonymous"}
    assert (event["outcome"], event["outcomeDesc"]) == ("4", "HTTP 401: http.unauthorized 需要访问令牌")
    assert event["entity"][0]["what"] == {"reference": "Patient/p0"}


def test_a_search_is_recorded_with_its_query_masked() -> None:
    query = [("name", "张秀英"), ("identifier", f"urn:oid:2.16.156.10011.1.3|{ID_CARD}"), ("telecom", "13800000001")]
    event = event_of_facts(
        facts(endpoint="fhir.search", view_args={"kind": "Patient"}, query=query, path="/fhir/Patient")
    )
    entity = event["entity"][0]
    assert entity["description"] == (
        "GET /fhir/Patient?name=张**&identifier=urn:oid:2.16.156.10011.1.3|410105********0020&telecom=138****0001"
    )
    assert event["subtype"][0]["code"] == "search-type"
    assert event["agent"][1]["who"] == {"reference": "Organization/city-hospital"}


@pytest.mark.parametrize(
    ("endpoint", "code", "action"),
    [
        ("fhir.read", "read", "R"),
        ("fhir.vread", "vread", "R"),
        ("fhir.create", "create", "C"),
        ("fhir.update", "update", "U"),
        ("fhir.patch", "patch", "U"),
        ("fhir.delete", "delete", "D"),
        ("fhir.type_history", "history-type", "R"),
        ("fhir.everything", "operation", "E"),
    ],
)
def test_each_interaction_has_its_restful_interaction_code(endpoint: str, code: str, action: str) -> None:
    event = event_of_facts(facts(endpoint=endpoint))
    assert (event["type"]["code"], event["subtype"][0]["code"], event["action"]) == ("rest", code, action)


def test_every_route_is_recorded_as_its_own_interaction(tmp_path: Any) -> None:
    """A route missing from the vocabulary was recorded by its HTTP method alone ($document,
    $evaluate-measure and the auditors' reports as reads, without the operation's name)."""
    app = create_app(Config(database_url=f"sqlite:///{tmp_path / 'archive.sqlite'}"))
    # by method: they only refuse
    refusing_only = {
        "audit.refuse",
        "auth.token_method",
        "fhir.metadata_refused",
        "fhir.operation_refused",
        "bulk.export_refused",
    }
    assert {rule.endpoint for rule in app.url_map.iter_rules()} - refusing_only - INTERACTIONS.keys() == set()


def test_a_transaction_bundle_and_an_operation_are_named() -> None:
    bundle = event_of_facts(
        facts(endpoint="fhir.transaction_or_batch", view_args={}, bundle_type="batch", method="POST")
    )
    assert bundle["subtype"][0]["code"] == "batch"
    operation = event_of_facts(facts(endpoint="fhir.everything", view_args={"resource_id": "p1"}))
    assert [c["code"] for c in operation["subtype"]] == ["operation", "$everything"]
    assert operation["entity"][0]["what"] == {"reference": "Patient/p1"}


def test_a_conditional_delete_names_each_resource_it_deleted() -> None:
    deleted = event_of_facts(
        facts(
            method="DELETE",
            path="/fhir/Observation",
            endpoint="fhir.conditional_delete",
            view_args={"kind": "Observation"},
            query=[("subject", "Patient/p1")],
            touched=("Observation/o1", "Observation/o2"),
        )
    )
    assert [entity["what"]["reference"] for entity in deleted["entity"]] == ["Observation/o1", "Observation/o2"]


#: a download of 1 MiB the client cut after 64 KiB (the facts of its delivery's event)
CUT_SHORT = Delivered(
    "2026-12-03T08:00:00.000000Z", "2026-12-03T08:00:01.000000Z", "4", 65536, 1048576, "audit.delivery.cut: …"
)


def test_a_delivery_renders_as_an_export_event_of_its_request() -> None:
    """The second event of a download: DICOM Export, when it ran, its own outcome and words,
    and the request id and bytes beside the first event's entity."""
    download = facts(
        endpoint="bulk.export_file",
        path="/fhir/$export-file/j1/Patient.ndjson",
        view_args={"job_id": "j1", "name": "Patient.ndjson"},
        request_id="ab" * 16,
        delivery=CUT_SHORT,
    )
    event = event_of_facts(download)
    seen = (
        event["type"]["code"],
        event["period"],
        event["outcome"],
        event["outcomeDesc"],
        event["entity"][0]["detail"],
    )
    assert seen == (
        "110106",
        {"start": CUT_SHORT.start, "end": CUT_SHORT.end},
        "4",
        CUT_SHORT.said,
        [
            {"type": "request", "valueString": "ab" * 16},
            {"type": "bytes-sent", "valueString": "65536"},
            {"type": "bytes-total", "valueString": "1048576"},
        ],
    )


_ROUTE_ARGS = st.fixed_dictionaries(
    {},
    optional={
        "kind": st.sampled_from(["Patient", "Encounter", "Group"]),
        "resource_id": st.sampled_from(["p1", ID_CARD, "x-2"]),
        "version": st.sampled_from(["1", "7"]),
        "group_id": st.just("g1"),
        "event_id": st.just("12"),
    },
)


@settings(max_examples=300, deadline=None)
@given(
    endpoint=st.sampled_from([*INTERACTIONS, "reports.index", None]),
    view_args=_ROUTE_ARGS,
    types=st.lists(st.sampled_from(["Patient", "Encounter", "Coverage"]), max_size=3),
    location=st.sampled_from([None, "http://x/fhir/Patient/new-1/_history/1", "http://x/fhir/Encounter/e9"]),
    touched=st.lists(st.sampled_from(["Patient/p3", "Encounter/e3"]), max_size=2),
    principal=st.sampled_from([None, HIS]),
    status=st.sampled_from([200, 201, 401, 404, 503]),
    delivery=st.sampled_from([None, CUT_SHORT]),
    entries=st.lists(
        st.tuples(
            st.sampled_from(["GET", "POST", "DELETE"]),
            st.sampled_from(["Patient/p1", "Encounter?subject=Patient/p1", "Patient", "Patient/p1/_history/2"]),
            st.sampled_from(["200 OK", "404"]),
            st.sampled_from([None, "Encounter/e1/_history/1"]),
        ),
        max_size=3,
    ),
)
def test_a_records_columns_are_those_of_the_event_it_renders(
    endpoint: str | None,
    view_args: dict[str, str],
    types: list[str],
    location: str | None,
    touched: list[str],
    principal: Principal | None,
    status: int,
    delivery: Delivered | None,
    entries: list[tuple[str, str, str, str | None]],
) -> None:
    """Appends derive the searchable columns from the record without rendering it; an auditor's
    search must still find exactly the events whose AuditEvent says so."""
    changes = {
        "endpoint": endpoint,
        "view_args": view_args,
        "types": types,
        "location": location,
        "touched": touched,
        "entries": entries,
        "request_id": "0f" * 16 if delivery else None,
        "delivery": delivery,
    }
    record = record_of(facts(principal=principal, status=status, **changes), "2026-12-03T08:00:00.000000Z")
    assert record_columns(record) == columns(render(record))


@pytest.mark.parametrize(("status", "code"), [(200, "0"), (201, "0"), (304, "0"), (403, "4"), (500, "8"), (503, "12")])
def test_outcome_codes_follow_the_http_status(status: int, code: str) -> None:
    assert outcome_code(status) == code


# -- masked in the record --------------------------------------------------------------------------------------
def test_a_bundle_entry_url_with_a_form_encoded_phone_is_recorded_masked() -> None:
    """A ``+`` in a query is a space; read as a plus the number was not one the patterns know."""
    entry = ("GET", "Patient?telecom=138+0013+8000", "200 OK", None)
    assert "0013" not in json.dumps(record_of(facts(entries=[entry]), "2026-12-05T00:00:00Z"))


# -- against a real server ---------------------------------------------------------------------------
def audit_events(api: Api, query: str, wanted: int = 1) -> list[dict[str, Any]]:
    """The AuditEvents matching ``query``, waiting for the workers' buffers (≤ 200 ms each)."""
    deadline = time.monotonic() + 10
    while True:
        answer = api.get(f"{api.base}/AuditEvent?{query}", timeout=60)
        assert answer.status_code == 200, answer.text
        found = [entry["resource"] for entry in answer.json().get("entry", [])]
        if len(found) >= wanted or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


def test_a_request_leaves_an_audit_event_auditors_can_read(api: Api) -> None:
    marker = f"王{int(time.time() * 1000) % 100000}"
    assert api.get(f"{api.base}/Patient", params={"name": marker, "telecom": "13800000001"}, timeout=60).ok
    events = audit_events(api, "agent=test-admin&entity-type=Patient&outcome=0&_count=1000&date=ge2020-01-01")
    searches = [e for e in events if "name=王**&telecom=138****0001" in e["entity"][0].get("description", "")]
    assert searches, events[-3:]
    event = searches[-1]
    assert event["agent"][0]["who"]["identifier"]["value"] == "test-admin"
    assert event["agent"][1]["who"]["reference"].startswith("Organization/")
    assert (event["outcome"], event["subtype"][0]["code"]) == ("0", "search-type")
    assert marker not in str(event)
    one = api.get(f"{api.base}/AuditEvent/{event['id']}", timeout=60)
    assert (one.status_code, one.json()) == (200, event)


def test_an_audit_search_ors_comma_separated_values_and_ands_repeated_ones(api: Api) -> None:
    """``entity=A,B`` was compared as one value and matched nothing, and ``entity=A&entity=B``
    kept the last and found B's requests, though none concerned both."""
    marker = f"either-{int(time.time() * 1000)}"
    for n in (1, 2):
        assert api.get(f"{api.base}/Patient/{marker}-{n}", timeout=60).status_code == 404
    either = audit_events(api, f"entity=Patient/{marker}-1,Patient/{marker}-2&outcome=0,4", wanted=2)
    both = api.get(f"{api.base}/AuditEvent?entity=Patient/{marker}-1&entity=Patient/{marker}-2", timeout=60)
    assert (len(either), both.json().get("total")) == (2, 0)


def test_an_audit_search_for_an_entity_no_id_can_name_finds_nothing(api: Api) -> None:
    """A wildcard or a space in an entity was matched as a NUL byte, which PostgreSQL refuses
    in text: ``entity=Patient/a_b`` failed with a 500 there."""
    answer = api.get(f"{api.base}/AuditEvent?entity=Patient/a_b", timeout=60)
    assert (answer.status_code, answer.json().get("total")) == (200, 0)


def test_an_audit_search_for_an_entity_tells_ids_apart_by_case(api: Api) -> None:
    """Ids are case-sensitive and SQLite's LIKE is not: ``entity=Patient/…-abc`` found the
    requests for ``Patient/…-ABC`` there, and none on PostgreSQL."""
    marker = f"case-{int(time.time() * 1000)}"
    assert api.get(f"{api.base}/Patient/{marker}-ABC", timeout=60).status_code == 404
    assert audit_events(api, f"entity=Patient/{marker}-ABC")  # recorded, and visible to the search
    answer = api.get(f"{api.base}/AuditEvent?entity=Patient/{marker}-abc", timeout=60)
    assert answer.json().get("total") == 0


def test_a_refused_request_is_recorded_as_anonymous(api: Api) -> None:
    assert requests.get(f"{api.base}/Patient/nobody", timeout=60).status_code == 401
    events = audit_events(api, "agent=anonymous&outcome=4&entity=Patient/nobody")
    assert events and events[-1]["outcomeDesc"].startswith("HTTP 401")


def test_a_conditional_patch_over_http_is_found_by_the_resource_it_changed(api: Api) -> None:
    """An auditor asking who touched a record finds the patch whose URL named only criteria."""
    created = api.post(f"{api.base}/Patient", json=new_patient(), timeout=30).json()
    operations = json.dumps([{"op": "replace", "path": "/active", "value": False}])
    headers = {"Content-Type": "application/json-patch+json"}
    criteria = f"identifier={ID_CARD_SYSTEM}|{id_card(created)}"
    assert api.patch(f"{api.base}/Patient?{criteria}", data=operations, headers=headers, timeout=30).status_code == 200
    events = audit_events(api, f"entity=Patient/{created['id']}", wanted=2)
    assert "patch" in {event["subtype"][0]["code"] for event in events}


def test_each_entry_of_a_batch_is_in_its_audit_event(api: Api) -> None:
    """Auditors find who read a person through a batch as through a plain read."""
    marker = f"batch-read-{int(time.time() * 1000)}"
    bundle = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [{"request": {"method": "GET", "url": f"Patient/{marker}"}}],
    }
    api.post(api.base, json=bundle, timeout=60)
    events = audit_events(api, f"entity=Patient/{marker}")
    assert [e["subtype"][0]["code"] for e in events] == ["batch"]


def test_each_entry_of_a_refused_transaction_is_in_its_audit_event(api: Api) -> None:
    """A transaction failing on its second read still names the first: the reads a prober
    tried are what an auditor looks for."""
    marker = f"refused-read-{int(time.time() * 1000)}"
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [{"request": {"method": "GET", "url": f"Patient/{marker}-{n}"}} for n in (1, 2)],
    }
    assert api.post(api.base, json=bundle, timeout=60).status_code == 404
    events = audit_events(api, f"entity=Patient/{marker}-1")
    assert [(e["subtype"][0]["code"], e["outcome"]) for e in events] == [("transaction", "4")]


def test_a_request_carrying_a_nul_is_audited_too(api: Api) -> None:
    """Its types column held the NUL; PostgreSQL refused the row and the event was lost."""
    marker = f"nul-{int(time.time() * 1000)}"
    assert api.get(f"{api.base}/Patient/{marker}/$everything?_type=Observation%00", timeout=60).status_code == 400
    assert len(audit_events(api, f"entity=Patient/{marker}")) == 1


def test_a_type_list_spaced_after_its_commas_is_recorded_type_by_type(api: Api) -> None:
    """``_type=Observation, Encounter`` names Encounters as ``$everything`` and an export read
    it: recorded untrimmed, the event's entity type was `` Encounter``, no type an auditor asks for."""
    marker = f"spaced-types-{int(time.time() * 1000)}"
    api.get(f"{api.base}/Patient/{marker}/$everything", params={"_type": "Observation, Encounter"}, timeout=60)
    events = audit_events(api, f"entity=Patient/{marker}")
    assert [entity["type"]["code"] for entity in events[0]["entity"]] == ["Patient", "Observation", "Encounter"]


def test_a_nul_in_an_audit_search_form_is_a_bad_request(api: Api) -> None:
    """The trail's search does not go through the archive's: PostgreSQL refused the text (503)."""
    answer = api.post(f"{api.base}/AuditEvent/_search", data={"agent": "a\x00b"}, timeout=60)
    assert answer.status_code == 400


def test_a_page_size_and_offset_in_an_audit_search_form_are_honoured() -> None:
    """``POST AuditEvent/_search`` takes its parameters from the form: ``_count`` and
    ``_offset`` were read from the query string alone, so a form's were dropped."""
    form = {"_count": "5", "_offset": "10"}
    with Flask(__name__).test_request_context("/fhir/AuditEvent/_search", method="POST", data=form):
        query = parse_query(list(request.form.items(multi=True)), 20, 100)
    assert (query.count, query.offset) == (5, 10)


@pytest.mark.parametrize(
    ("criterion", "bounds"),
    [
        ("2026-12-01", ("2026-11-30T16:00:00.000000Z", "2026-12-01T16:00:00.000000Z")),
        ("ge2026-12-01", ("2026-11-30T16:00:00.000000Z", None)),
        ("gt2026-12-01", ("2026-12-01T16:00:00.000000Z", None)),
        ("le2026-12-01", (None, "2026-12-01T16:00:00.000000Z")),
        ("lt2026-12-01", (None, "2026-11-30T16:00:00.000000Z")),
        ("2026-12-01T08:00:00", ("2026-12-01T00:00:00.000000Z", "2026-12-01T00:00:01.000000Z")),
    ],
)
def test_an_audit_search_reads_a_date_as_every_search_does(criterion: str, bounds: tuple[str | None, ...]) -> None:
    """A day is a Beijing day and a time without an offset Beijing time, as in every other
    search (search/values.date_range): the trail read the day as a UTC one, eight hours late."""
    query = parse_query([("date", criterion)], 20, 100)
    assert (query.recorded_from, query.recorded_before) == bounds


def test_the_audit_trail_cannot_be_written_through_the_api(api: Api) -> None:
    event = {"resourceType": "AuditEvent", "id": "forged"}
    for method, path in [("POST", "AuditEvent"), ("PUT", "AuditEvent/forged"), ("DELETE", "AuditEvent/forged")]:
        answer = api.request(
            method, f"{api.base}/{path}", json=event, headers={"Content-Type": "application/fhir+json"}
        )
        assert (method, answer.status_code, answer.json()["resourceType"]) == (method, 405, "OperationOutcome")
    assert api.get(f"{api.base}/AuditEvent/forged", timeout=60).status_code == 404


def test_an_unknown_audit_search_parameter_is_refused(api: Api) -> None:
    assert api.get(f"{api.base}/AuditEvent?patient=Patient/1", timeout=60).status_code == 400


def test_an_auditor_may_ask_for_the_total_alone(api: Api) -> None:
    bundle = api.get(f"{api.base}/AuditEvent?_summary=count", timeout=60).json()
    assert (bundle["total"] > 0, "entry" in bundle, [link["relation"] for link in bundle["link"]]) == (
        True,
        False,
        ["self", "first"],
    )


def test_the_next_page_of_the_audit_trail_can_be_followed(api: Api) -> None:
    """A time zone's ``+`` in the link is encoded, so the link parses as the request did."""
    audit_events(api, "date=ge2020-01-01", wanted=3)
    first = api.get(f"{api.base}/AuditEvent?date=ge2020-01-01T00:00:00%2B08:00&_count=2", timeout=60).json()
    following = next(link["url"] for link in first["link"] if link["relation"] == "next")
    assert api.get(following, timeout=60).status_code == 200


def link(bundle: dict[str, Any], relation: str) -> str | None:
    return next((entry["url"] for entry in bundle["link"] if entry["relation"] == relation), None)


def trail_pages(api: Api, first: dict[str, Any]) -> list[dict[str, Any]]:
    """``first`` and the pages its ``next`` links lead to, to the last."""
    pages = [first]
    while (following := link(pages[-1], "next")) is not None:
        pages.append(api.get(following, timeout=60).json())
    return pages


def listed(*pages: dict[str, Any]) -> list[str]:
    return [entry["resource"]["id"] for page in pages for entry in page.get("entry", [])]


def test_the_trail_followed_past_events_recorded_meanwhile_lists_each_event_once(api: Api) -> None:
    """Newest first, each event recorded between two pages came before them all: counted by
    offset, the next page began that much further back and repeated the page before's last."""
    marker = f"paged-{int(time.time() * 1000)}"
    for _ in range(5):
        api.get(f"{api.base}/Patient/{marker}", timeout=60)
    earlier = [event["id"] for event in audit_events(api, f"entity=Patient/{marker}&_sort=-date", wanted=5)]
    first = api.get(f"{api.base}/AuditEvent?entity=Patient/{marker}&_sort=-date&_count=2", timeout=60).json()
    api.get(f"{api.base}/Patient/{marker}", timeout=60)  # recorded between the pages
    audit_events(api, f"entity=Patient/{marker}", wanted=6)
    assert listed(*trail_pages(api, first)) == earlier


def test_a_trail_page_past_an_event_starts_right_after_it_whatever_its_offset(api: Api) -> None:
    """The next link's ``_after`` names the last event shown; the page starts there."""
    marker = f"after-{int(time.time() * 1000)}"
    for _ in range(4):
        api.get(f"{api.base}/Patient/{marker}", timeout=60)
    events = [event["id"] for event in audit_events(api, f"entity=Patient/{marker}", wanted=4)]
    first = api.get(f"{api.base}/AuditEvent?entity=Patient/{marker}&_count=2", timeout=60).json()
    second = api.get(str(link(first, "next")).replace("_offset=2", "_offset=0"), timeout=60).json()
    assert listed(second) == events[2:]


def test_an_altered_trail_page_cursor_is_refused_at_after(api: Api) -> None:
    answer = api.get(f"{api.base}/AuditEvent?_after=WyJkYXRlIiwiMjAyNiIsMV0", timeout=60)
    issue = answer.json()["issue"][0]
    assert (answer.status_code, issue["details"]["coding"][0]["code"], issue["expression"]) == (
        400,
        "http.not-a-page-cursor",
        ["_after"],
    )


@pytest.mark.parametrize(
    ("pairs", "forged"),
    [
        ([("_sort", "-date")], ["date", "2026-12-01T00:00:00.000000Z", 7]),  # the other order's
        ([], ["date", "2026-12-01", 7]),  # no instant of the store's form
        ([], ["date", "2026-12-01T00:00:00.000000Z", "7"]),  # a place as text
        ([], ["date", "2026-12-01T00:00:00.000000Z", True]),  # JSON's true, Python's 1
        ([], ["date", "2026-12-01T00:00:00.000000Z", 2**63]),  # past any place in the chain
        ([], ["date", "2026-12-01T00:00:00.000000Z"]),  # a value short
    ],
    ids=["other-order", "not-an-instant", "text-place", "boolean-place", "huge-place", "short"],
)
def test_a_forged_trail_page_cursor_is_no_page_cursor(pairs: list[tuple[str, str]], forged: list[Any]) -> None:
    token = base64.urlsafe_b64encode(json.dumps(forged).encode()).rstrip(b"=").decode()
    with pytest.raises(FhirError) as refused:
        parse_query([*pairs, ("_after", token)], 20, 100)
    assert (refused.value.message_id, refused.value.expression) == ("http.not-a-page-cursor", "_after")


@pytest.mark.parametrize("control", ["_format=json", "_pretty=true"])
def test_the_trail_search_takes_the_controls_every_answer_takes(api: Api, control: str) -> None:
    """R4 http.html: _format and _pretty apply to every interaction; _pretty was a 400."""
    answer = api.get(f"{api.base}/AuditEvent?_count=1&{control}", timeout=60)
    assert (answer.status_code, answer.json()["type"]) == (200, "searchset")


def test_a_batch_cannot_delete_from_the_audit_trail(api: Api) -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [{"request": {"method": "DELETE", "url": "AuditEvent/1"}}],
    }
    answer = api.post(api.base, json=bundle, timeout=60).json()
    assert answer["entry"][0]["response"]["status"].startswith("405")


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_a_batch_entry_reading_the_audit_trail_is_refused_as_a_read(api: Api, method: str) -> None:
    """A HEAD entry reads, as its GET does: it was refused as a write (405)."""
    bundle = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [{"request": {"method": method, "url": "AuditEvent/1"}}],
    }
    response = api.post(api.base, json=bundle, timeout=60).json()["entry"][0]["response"]
    code = response["outcome"]["issue"][0]["details"]["coding"][0]["code"]
    assert (response["status"][:3], code) == ("400", "http.audit-not-in-bundle")


def test_a_login_is_audited_with_the_client_it_authenticated(api: Api) -> None:
    assert request_token(api.base, api.client_id, api.key).status_code == 200
    events = audit_events(api, "agent=test-admin&_sort=-date&_count=500")
    logins = [e for e in events if e.get("subtype", [{}])[0].get("code") == "110122"]
    assert logins and logins[0]["agent"][0]["who"]["identifier"]["value"] == "test-admin"


def test_types_and_touched_references_are_recorded_masked() -> None:
    """``_type`` is whatever the client wrote, and an id may be a 身份证号 (PUT Patient/<it>)."""
    record = record_of(facts(types=["Patient", ID_CARD], touched=[f"Patient/{ID_CARD}"]), "2026-12-05T00:00:00Z")
    assert (record["types"], record["touched"]) == (
        ["Patient", "410105********0020"],
        ["Patient/410105********0020"],
    )


def test_a_bundle_entry_url_with_an_encoded_id_card_is_recorded_masked() -> None:
    entry = ("GET", f"Patient?identifier={ENCODED_ID_CARD}", "200 OK", None)
    record = record_of(facts(entries=[entry]), "2026-12-05T00:00:00Z")
    assert ID_CARD not in unquote(json.dumps(record))
    assert "410105********0020" in json.dumps(record)


@pytest.mark.parametrize(
    ("method", "path", "allow"), [("DELETE", "AuditEvent/forged", "GET, HEAD"), ("GET", "AuditEvent/_history", "")]
)
def test_a_refused_write_to_the_trail_names_what_the_path_takes(api: Api, method: str, path: str, allow: str) -> None:
    """RFC 9110: a 405 carries Allow; the trail's history takes no method at all."""
    answer = api.request(method, f"{api.base}/{path}", timeout=60)
    assert (answer.status_code, answer.headers.get("Allow")) == (405, allow)


def test_an_ingest_is_found_by_a_resource_it_wrote(api: Api) -> None:
    """An auditor asking who wrote a record finds the $ingest that did, as an MLLP message's
    event names what the same pipeline wrote."""
    answer = ingest_sample(api, "个人基本信息表.csv").json()
    written = [
        part["valueReference"]["reference"]
        for record in answer["parameter"]
        if record["name"] == "record"
        for part in record.get("part", [])
        if "valueReference" in part
    ]
    events = audit_events(api, f"entity={written[0]}")
    assert "$ingest" in [s["code"] for e in events for s in e.get("subtype", [])]


def test_an_event_id_of_digits_int_cannot_read_is_a_404(api: Api) -> None:
    """A superscript two is a digit to str.isdigit, and no number to int(): that was a 500."""
    answer = api.get(f"{api.base}/AuditEvent/\u00b2", timeout=60)
    assert (answer.status_code, answer.json()["resourceType"]) == (404, "OperationOutcome")


def audited_over_the_size_limit(tmp_path: Any, path: str, **body: Any) -> tuple[int, int]:
    """The status of a POST of ``body`` to ``path`` under a 1,000-byte limit, and how many
    AuditEvents the trail then holds."""
    app = create_app(Config(database_url=f"sqlite:///{tmp_path / 'archive.sqlite'}", max_bytes=1000))
    answer = app.test_client().post(path, **body)
    with app.app_context():
        audit_api.trail().flush()
    services = app.config["SERVICES"]
    with services.store.reading() as tx:
        recorded = tx.audit.count()
    services.close()
    return answer.status_code, recorded


def test_a_search_form_over_the_size_limit_is_still_audited(tmp_path: Any) -> None:
    """Recording read the form of the refused search again, which raised the 413 once more:
    the request left no AuditEvent, only a log line."""
    assert audited_over_the_size_limit(tmp_path, "/fhir/Patient/_search", data={"name": "x" * 3000}) == (401, 1)


def test_a_bundle_over_the_size_limit_is_still_audited(tmp_path: Any) -> None:
    """Recording read the refused Bundle's body for its type (batch or transaction), which
    raised the 413 once more: the request left no AuditEvent."""
    bundle = b'{"resourceType":"Bundle","type":"batch"' + b" " * 3000 + b"}"
    found = audited_over_the_size_limit(tmp_path, "/fhir", data=bundle, content_type="application/fhir+json")
    assert found == (401, 1)

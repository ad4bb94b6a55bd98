"""The audit trail: every request leaves an AuditEvent, the chain proves nothing was edited,
deleted or inserted, auditors search it through the API, and personal identifiers are masked
in its free text, in logs and in the command line's output."""

from __future__ import annotations

import base64
import json
import logging
import re
import threading
import time
from typing import Any
from urllib.parse import unquote

import pytest
import requests
from flask import Flask, request
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway import create_app, masking
from gateway.api.audit import parse_query
from gateway.cli import main
from gateway.config import Config
from gateway.fhir.errors import FhirError
from gateway.masking import (
    FULL_WIDTH_DIGITS,
    install_log_masking,
    mask_id_cards,
    mask_name,
    mask_phones,
    mask_query,
    mask_repeated,
    mask_text,
)
from gateway.security.audit import (
    INTERACTIONS,
    AuditTrail,
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
from tests.gateway.test_api import id_card, new_patient

HIS = Principal("his", "city-hospital", frozenset({"system/*.cruds"}), "hospital")
ID_CARD = "410105194912310020"


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


@pytest.mark.parametrize("anchors", [["0:" + "f" * 64], ["1:" + "a" * 64, "1:" + "b" * 64]])
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
    }
    record = record_of(facts(principal=principal, status=status, **changes), "2026-12-03T08:00:00.000000Z")
    assert record_columns(record) == columns(render(record))


@pytest.mark.parametrize(("status", "code"), [(200, "0"), (201, "0"), (304, "0"), (403, "4"), (500, "8"), (503, "12")])
def test_outcome_codes_follow_the_http_status(status: int, code: str) -> None:
    assert outcome_code(status) == code


# -- masking --------------------------------------------------------------------------------------
def test_identifiers_phones_and_names_are_masked() -> None:
    assert mask_text(f"身份证{ID_CARD}，电话 13800000001") == "身份证410105********0020，电话 138****0001"
    assert mask_text("旧证 410105491231002 新证 11010519630402991X") == "旧证 410105******002 新证 110105********991X"
    assert mask_text("+86 138-0000-0001") == "+86 138****0001"
    assert mask_text("医保人员编号 41112357174961943107") == "医保人员编号 41112357174961943107"  # 20 digits: no ID
    assert (mask_name("张秀英"), mask_name("李四")) == ("张**", "李**")
    assert mask_query([("subject:Patient.name:contains", "王小明"), ("birthdate", "ge1949")]) == [
        ("subject:Patient.name:contains", "王**"),
        ("birthdate", "ge1949"),
    ]


def test_a_landline_is_masked() -> None:
    assert mask_text("Patient?telecom=0371-68801234") == "Patient?telecom=0371-****1234"


@pytest.mark.parametrize(
    ("written", "masked"), [("(0371)68801234", "(0371)****1234"), ("（0371）68801234", "（0371）****1234")]
)
def test_a_landline_with_a_bracketed_area_code_is_masked(written: str, masked: str) -> None:
    assert mask_text(f"Patient?phone={written}") == f"Patient?phone={masked}"


@pytest.mark.parametrize(
    ("written", "masked"),
    [
        ("+86 (371) 68801234", "+86 (371) ****1234"),
        ("+86（371）68801234", "+86（371）****1234"),
        ("86-371-68801234", "86-371-****1234"),
        ("+86(138)00138000", "+86(138)****8000"),
    ],
)
def test_a_phone_with_the_country_code_bracketed_or_bare_is_masked(written: str, masked: str) -> None:
    """An area code or mobile prefix in brackets after +86, or a bare 86 and a dash, and the
    number went through whole."""
    assert mask_text(f"Patient?phone={written}") == f"Patient?phone={masked}"


def test_a_code_search_is_recorded_as_asked() -> None:
    """``code`` is an OAuth word and a FHIR search parameter: only the credentials are hidden."""
    assert mask_query([("code", "http://loinc.org|8480-6")]) == [("code", "http://loinc.org|8480-6")]


@pytest.mark.parametrize("name", ["access_token", "client_secret", "client_assertion"])
def test_credentials_sent_as_query_parameters_are_never_recorded(name: str) -> None:
    assert mask_query([(name, "eyJhbGciOiJSUzM4NCJ9.secret"), ("_count", "1")]) == [(name, "***"), ("_count", "1")]


@pytest.mark.parametrize(
    ("written", "masked"),
    [
        # a Bundle entry's URL, as an audit event describes the entry
        ("GET Patient?access_token=s3cr3t-AAA → 400", "GET Patient?access_token=*** → 400"),
        ("GET Patient?Access_Token=s3cr3t&api_key=k", "GET Patient?Access_Token=***&api_key=***"),
        # dots between the groups of a 身份证号, as spaces and dashes were
        ("Patient?identifier=410105.19491231.0020", "Patient?identifier=410105********0020"),
        # a fixed line with the country code, which drops the trunk 0
        ("电话 +86-371-66884234", "电话 +86-371-****4234"),
        # a name searched through _has
        ("Organization?_has:Patient:organization:name=令狐冲", "Organization?_has:Patient:organization:name=令**"),
    ],
)
def test_what_security_qa_found_in_clear_is_masked(written: str, masked: str) -> None:
    assert mask_text(written) == masked


@pytest.mark.parametrize(
    ("pair", "masked"),
    [
        (("Access_Token", "s3cr3t"), ("Access_Token", "***")),
        (("access_token:exact", "s3cr3t"), ("access_token:exact", "***")),
        (("_has:Patient:organization:name", "令狐冲"), ("_has:Patient:organization:name", "令**")),
        (("NAME", "张秀英"), ("NAME", "张**")),
    ],
)
def test_a_query_parameter_is_masked_in_any_case_or_form(pair: tuple[str, str], masked: tuple[str, str]) -> None:
    assert mask_query([pair]) == [masked]


def test_a_uuid_is_no_landline() -> None:
    reference = "Patient/9f3c2a1e-0123-4567-8901-23456789abcd"
    assert mask_text(reference) == reference


def test_a_name_criterion_quoted_in_an_error_is_masked() -> None:
    text = "引用“Patient?name=张秀英&birthdate=1949-12-31”无法解析"
    assert mask_text(text) == "引用“Patient?name=张**&birthdate=1949-12-31”无法解析"


@pytest.mark.parametrize(
    ("written", "masked"),
    [
        ("41010519491231002", "410105********002"),  # the check character left off
        ("4101051949123100201", "410105********00201"),  # a digit doubled
        ("4101051949123100X", "410105********00X"),  # a digit dropped
        ("41010519491231", "410105********"),  # cut short after the birth date
        ("身份证号“41010519491231002”格式错误", "身份证号“410105********002”格式错误"),
        # in groups, as the division code, the birth date and the rest are read out
        ("410105 19491231 002", "410105********002"),
        ("410105-19491231-002", "410105********002"),
        ("410105 19491231 00201", "410105********00201"),
        ("出生 410105 19491231，", "出生 410105********，"),
    ],
)
def test_a_mistyped_id_card_number_is_masked(written: str, masked: str) -> None:
    """The validator's rule.id-card-format quotes the number as written, in the reports and
    the trail: 17 digits of a 身份证号 are the whole of it (its check character follows).
    Written in groups, the number went through whole, its birth date shown."""
    assert mask_text(written) == masked


@pytest.mark.parametrize(
    "number",
    [
        "S20261102091502",
        "20261119141205",
        "20261102091502123",
        "41112357174961943107",
        "4101002026100001",
        "410105 19491231 001234",
    ],
)
def test_a_time_stamp_or_an_insurance_number_is_no_mistyped_id_card(number: str) -> None:
    """An HL7 control id, time stamps (to the second, the millisecond), a 20-digit 医保人员编号 and a 长护险
    评估编号 (a division, a year, a month and a serial) begin otherwise than with a division
    code and a date, or are longer than any ID."""
    assert mask_text(number) == number


@pytest.mark.parametrize(
    ("written", "masked"),
    [("1381234567", "138****4567"), ("138 1234 567", "138****4567"), ("+86 1381234567", "+86 138****4567")],
)
def test_a_mobile_number_mistyped_to_ten_digits_is_masked(written: str, masked: str) -> None:
    """An 11-digit mobile was masked, the same number a digit short quoted in full."""
    assert mask_text(f"Patient?telecom={written}") == f"Patient?telecom={masked}"


@pytest.mark.parametrize(
    ("written", "masked"),
    [
        ("1380 0138 000", "138****8000"),
        ("1380-0138-000", "138****8000"),
        ("13800 138000", "138****8000"),
        ("+86 1380 0138 000", "+86 138****8000"),
    ],
)
def test_a_mobile_number_in_other_groups_is_masked(written: str, masked: str) -> None:
    """Only groups of 3-4-4 (or fewer of them: 3-8, 7-4) were known: grouped 4-4-3 or 5-6
    the number went through whole."""
    assert mask_text(f"电话：{written}。") == f"电话：{masked}。"


@pytest.mark.parametrize(
    "text", ["1380.0138000", "Patient/9f3c2a1e-1380-0138-000a-23456789abcd", "13 8 2026 12345", "1500  2000  300"]
)
def test_a_decimal_a_uuid_or_small_numbers_side_by_side_are_no_mobile_number(text: str) -> None:
    assert mask_text(text) == text


@pytest.mark.parametrize("text", ["Basic/p1381234567", "Observation/bp-1381234567", "0.1381234567", "4101002026"])
def test_ten_digits_inside_a_word_or_a_number_or_not_begun_as_a_mobile_stay(text: str) -> None:
    """As a fixed line's digits inside a word stay: an id, a decimal's fraction, a code."""
    assert mask_text(text) == text


def test_an_old_foreign_permanent_residence_number_is_masked() -> None:
    assert mask_text("永居证 USA123456789012") == "永居证 USA********9012"


@pytest.mark.parametrize(
    ("written", "masked"),
    [
        ("USA 1234 5678 9012", "USA********9012"),
        ("USA-123456789012", "USA********9012"),
        ("USA 123456789012", "USA********9012"),
        ("USA 1949 1231 6789", "USA********6789"),  # a date, but no time of day
        ("ＵＳＡ１２３４５６７８９０１２", "ＵＳＡ********9012"),
    ],
)
def test_an_old_foreign_permanent_residence_number_in_groups_or_full_width_is_masked(written: str, masked: str) -> None:
    """Grouped, or its letters typed full-width, the number went through whole."""
    assert mask_text(f"永居证 {written}。") == f"永居证 {masked}。"


OLD_PR = "USA123456789012"


@pytest.mark.parametrize(
    "written",
    [
        "".join(f"%{ord(c):02X}" for c in OLD_PR),
        "identifier=%55%53%41%2D123456789012",
        "%55%53%41" + OLD_PR[3:],
        "%E5%8F%B7%55%53%41%20123456789012",
        "%EF%BC%B5%EF%BC%B3%EF%BC%A1123456789012",  # full-width letters, UTF-8
    ],
)
def test_an_old_permanent_residence_number_percent_encoded_is_masked(written: str) -> None:
    """The reading decoded only digits and separators: its letters stayed escaped and the
    twelve digits went through, plain to anyone who decodes them."""
    masked = mask_text(written)
    assert "5678" not in unquote(masked)
    assert "********9012" in masked and ("USA" in masked or "ＵＳＡ" in masked)


@pytest.mark.parametrize(
    "text",
    [
        "UTC 20261206 1430",
        "UTC 2026-12-06-2359",
        "ABC 1234 - 5678 9012",
        "HIS20261102091502",
        "CDA OID 2.16.156.10011.2.3.3.6",  # a profile's description, as the validator quotes it
    ],
)
def test_a_word_before_a_time_stamp_or_numbers_side_by_side_is_no_permanent_residence_number(text: str) -> None:
    assert mask_text(text) == text


ID_LIKE = st.from_regex(r"\A[1-9]\d{16}[0-9X]\Z")
#: text around the ID: anything but a digit right beside it (digits would make it another number)
AROUND = st.text(max_size=30)


@settings(max_examples=300, deadline=None)
@given(
    st.from_regex(r"\A[A-Z]{3}[0-9]{12}\Z").filter(lambda number: number[3:5] not in ("19", "20")),
    st.sampled_from(["", " ", "-"]),
    st.booleans(),
    AROUND,
)
def test_no_old_permanent_residence_number_survives_masking(number: str, gap: str, escaped: bool, before: str) -> None:
    """Whole or in groups of four, as written or percent-encoded, after any text but a letter
    or digit (which would make its letters part of a longer word); in groups, digits that read
    as a date and a time of day of this century or the last are a time stamp, and stay."""
    last = before[-1:].translate(FULL_WIDTH_DIGITS)
    before = before + " " if last.isalnum() or last == "%" else before
    written = number[:3] + gap + gap.join((number[3:7], number[7:11], number[11:]))
    if escaped:
        written = "".join(f"%{ord(c):02X}" for c in written)
    assert number[3:11] not in unquote(mask_text(before + written)).translate(FULL_WIDTH_DIGITS).replace(gap or " ", "")


@settings(max_examples=300, deadline=None)
@given(ID_LIKE, AROUND, AROUND)
def test_no_id_card_number_survives_masking(id_card: str, before: str, after: str) -> None:
    # a digit or a percent sign right before it would make it another number or an escape
    # (test_an_id_card_number_right_after_a_percent_sign_is_masked)
    before = before + "x" if before[-1:].isdigit() or before.endswith("%") else before
    after = "x" + after if after[:1].isdigit() else after
    masked = mask_text(before + id_card + after)
    typed = id_card.translate(FULL_WIDTH_DIGITS)  # full-width digits are read as ASCII ones
    assert id_card not in masked
    assert typed[:6] + "*" * 8 + typed[-4:] in masked


@settings(max_examples=300, deadline=None)
@given(ID_LIKE, AROUND, AROUND)
def test_no_id_card_birth_date_survives_a_percent_sign_before_it(id_card: str, before: str, after: str) -> None:
    """Decoded first, ``%31`` took an ID's first digit for an escape and left 17 digits that no
    pattern matched."""
    after = "x" + after if after[:1].isdigit() else after
    assert id_card[6:14] not in mask_text(f"{before}%{id_card}{after}")


@pytest.mark.parametrize("written", ["%31010519491231002", "50%3101051949123100"])
def test_a_mistyped_id_card_number_right_after_a_percent_sign_keeps_its_birth_date_hidden(written: str) -> None:
    """Only whole ID numbers' birth dates were hidden: a mistyped one (17 or 16 characters)
    lost its first digit to ``%31`` and went through whole."""
    assert "19491231" not in mask_text(written)


@pytest.mark.parametrize(
    "written",
    [
        "Patient?_content=%E8%BA%AB%E4%BB%BD%E8%AF%81%E5%8F%B7410105194912310020",
        "identifier=%22410105194912310020%22",
        "x=%E5%8F%B7%E7%A0%8113800138000",
    ],
)
def test_a_number_right_after_an_escape_of_another_character_is_masked(written: str) -> None:
    """The escape's last hex digit (``%B7``, ``%22``) began the number's run of digits, and no
    pattern begins inside a run: the number went through whole."""
    assert mask_text(written) != written


@pytest.mark.parametrize(
    ("written", "masked"),
    [
        ("410105 1949 1231 0020", "410105********0020"),
        ("4101 0519 4912 3100 20", "410105********0020"),
        ("410105\u200919491231\u20090020", "410105********0020"),
        ("138\u00a00013\u00a08000", "138****8000"),
        ("0371\u201068801234", "0371-****1234"),
        ("138\t0013\t8000", "138****8000"),
        ("410105\t19491231\t0020", "410105********0020"),
    ],
)
def test_a_number_in_other_groups_or_apart_by_other_spaces_and_dashes_is_masked(written: str, masked: str) -> None:
    """Grouped 6-4-4-4 or 4-4-4-4-2, or apart by a no-break or thin space or a hyphen (U+2010)
    as a word processor types them, or by tabs (columns pasted from a spreadsheet), the
    numbers went through whole or half masked."""
    assert mask_text(written) == masked


@pytest.mark.parametrize(
    ("written", "masked"),
    [
        ("138 - 0013 - 8000", "138****8000"),
        ("138  0013  8000", "138****8000"),
        ("0371.68801234", "0371.****1234"),
        ("138\u200b0013\u200b8000", "138****8000"),
        ("0371\u201468801234", "0371-****1234"),
    ],
)
def test_a_number_typed_with_spaced_dashes_double_spaces_or_zero_width_characters_is_masked(
    written: str, masked: str
) -> None:
    assert mask_text(written) == masked


def test_a_bundle_entry_url_with_a_form_encoded_phone_is_recorded_masked() -> None:
    """A ``+`` in a query is a space; read as a plus the number was not one the patterns know."""
    entry = ("GET", "Patient?telecom=138+0013+8000", "200 OK", None)
    assert "0013" not in json.dumps(record_of(facts(entries=[entry]), "2026-12-05T00:00:00Z"))


def test_a_long_text_is_masked_but_not_remembered() -> None:
    """A client's claimed profile of a megabyte was kept whole, each of 4,096 kept texts."""
    before = masking._mask_remembered.cache_info().currsize
    mask_repeated("http://example.org/StructureDefinition/" + "x" * 10_000)
    assert masking._mask_remembered.cache_info().currsize == before


def test_an_id_card_number_with_an_escaped_digit_is_masked_as_an_id() -> None:
    """Its twelfth digit escaped (``%33``), read as written it began with a mobile number's
    eleven digits, and masked as one it showed eleven of its eighteen (now hidden as both)."""
    assert mask_text("Patient?identifier=13010219900%33071234") == "Patient?identifier=130***********1234"


@pytest.mark.parametrize("written", ["%13000000000", "涨幅50%13800138000", "%B13800138000"])
def test_a_mobile_number_right_after_a_literal_percent_sign_is_masked(written: str) -> None:
    """Read as a URL, ``%13`` (a control character) took the number's first two digits and left
    nine that no pattern matched: the number went through whole."""
    assert written[-11:] not in mask_text(written)


@pytest.mark.parametrize(
    ("written", "birth_day"),
    [("%110101 19900307 1234", "0307"), ("涨幅50%530514-1995-0420-6030", "0420"), ("%11 0101 1990 0307 1234", "0307")],
)
def test_a_grouped_id_card_number_after_a_literal_percent_sign_keeps_its_birth_date_hidden(
    written: str, birth_day: str
) -> None:
    """Read as a URL its digits after ``%11`` looked like a landline, whose masking hid four
    digits; the ID's own hiding was passed over for it and the month and day went through."""
    assert birth_day not in mask_text(written)


@pytest.mark.parametrize("written", ["%17%3235977512", "号%46.10431947061853%2D32号", "%138%2D0013%2D8000"])
def test_digits_a_literal_percent_sign_and_escapes_join_are_masked(written: str) -> None:
    """Neither reading alone saw the number (``%17`` literal, then ``%32`` an escaped 2): it
    went through as ``%17235977512``, which masking again would have masked."""
    masked = mask_text(written)
    assert mask_text(masked) == masked


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from("0123456789%ABCDEF -.+x号"), max_size=40))
def test_masked_text_holds_nothing_more_to_mask(text: str) -> None:
    masked = mask_text(text)
    assert mask_text(masked) == masked


def test_an_old_permanent_residence_number_after_a_percent_sign_keeps_its_own_masking() -> None:
    """``%DE`` read as an escape, the number was found only as written, and kept three more
    digits than its own masking keeps."""
    assert mask_text("%DEU123456789012") == "%DEU********9012"


@pytest.mark.parametrize(
    "written",
    [
        "Patient?telecom=" + "".join(f"%EF%BC%{0x90 + int(digit):02X}" for digit in "13800138000"),
        "Patient?telecom=138%E3%80%800013%E3%80%808000",
        "identifier=410105%C2%A019491231%C2%A00020",
    ],
)
def test_a_number_of_percent_encoded_full_width_characters_is_masked(written: str) -> None:
    """Full-width digits and ideographic or no-break spaces, escaped as UTF-8, were not read
    as a number's characters: the number went through, plain to anyone who decodes it."""
    assert mask_text(written) != written


NUL = "\0"


@pytest.mark.parametrize(
    ("written", "number"),
    [
        ("138%E2%80%8B0013%E2%80%8B8000", "13800138000"),  # escaped zero-width spaces
        ("%EF%BC%880371%EF%BC%8968801234", "68801234"),  # escaped full-width brackets
        ("%%3313800138000", "13800138000"),  # a decoded 3 would complete %33
        ("410105%2%3019491231%2%300020", "410105 19491231 0020"),  # a decoded 0 would complete %20
        ("138%2%440013%2%448000", "138-0013-8000"),  # a decoded D would complete %2D
        (NUL.join(["%", "31%", "33%", "38%", "30%", "30%", "31%", "33%", "38%", "30%", "30%", "30"]), "13800138000"),
    ],
)
def test_no_number_appears_when_the_masked_text_is_decoded(written: str, number: str) -> None:
    """Escapes the reading kept, or made, went through, and one ``unquote`` showed the number
    (as a reader sees it: zero-width spaces unseen)."""
    assert number not in unquote(mask_text(written)).translate(FULL_WIDTH_DIGITS)


@pytest.mark.parametrize(
    "written",
    [
        "100000000 - 200000000",
        "20261206143000+0800 - 20261206150000+0800",
        "2026-12-06 14:30:00.0000  20261206",
        "86 120 1300 1400",
    ],
)
def test_numbers_written_as_ranges_or_side_by_side_are_no_id_or_phone(written: str) -> None:
    assert mask_text(written) == written


def test_a_record_with_a_bad_format_string_is_masked_whatever_spaces_its_number_has(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Its arguments were written as their repr, which spells a no-break space ``\\xa0``:
    no longer a separator the number's pattern knows."""
    install_log_masking()
    with caplog.at_level(logging.INFO, logger="yiyang.test"):
        logging.getLogger("yiyang.test").info("merged %s into %s", "138\u00a00013\u00a08000")
    assert "0013" not in caplog.records[-1].getMessage()


@pytest.mark.parametrize(
    ("written", "masked"),
    [("50% 138\x0000138000", "50% 138\x0000138000"), ("%100000000000000000\x000", "%100000********0000\x000")],
)
def test_a_nul_in_the_text_is_kept_and_joins_no_number(written: str, masked: str) -> None:
    """The reading's marks are NULs, and removing every NUL joined the digits on either side
    of the text's own: into a mobile number masking had not seen, or an ID into 19 digits
    that are none (its birth date shown)."""
    assert mask_text(written) == masked


@settings(max_examples=200, deadline=None)
@given(st.from_regex(r"\A1[3-9]\d{9}\Z"), st.text(max_size=10))
def test_no_mobile_number_survives_a_percent_sign_before_it(phone: str, before: str) -> None:
    assert phone not in mask_text(f"{before}%{phone}")


@settings(max_examples=200, deadline=None)
@given(st.from_regex(r"\A1[3-9]\d{9}\Z"), AROUND)
def test_no_mobile_number_survives_masking(phone: str, before: str) -> None:
    before = before + " " if before[-1:].isdigit() else before
    assert phone not in mask_text(before + phone)


@settings(max_examples=300, deadline=None)
@given(
    st.from_regex(r"\A1[3-9][0-9]{9}\Z"),
    st.lists(st.integers(3, 8), min_size=1, max_size=2, unique=True),
    st.sampled_from([" ", "-", ".", "\t", "\u3000"]),
    AROUND,
)
def test_no_mobile_number_in_groups_survives_masking(phone: str, cuts: list[int], gap: str, before: str) -> None:
    """Cut into two or three groups of three digits or more (a single dot is a decimal point)."""
    cuts = sorted(cuts)
    if len(cuts) == 2 and cuts[1] - cuts[0] < 3:
        cuts = cuts[:1]
    gap = gap if gap != "." or len(cuts) == 2 else " "
    written = gap.join(phone[start:end] for start, end in zip([0, *cuts], [*cuts, 11], strict=True))
    last = before[-1:].translate(FULL_WIDTH_DIGITS)
    before = before + " " if last.isascii() and (last.isalnum() or last == "-") else before
    assert phone not in re.sub(r"[\s.-]", "", mask_text(before + written).translate(FULL_WIDTH_DIGITS))


@settings(max_examples=200, deadline=None)
@given(st.from_regex(r"\A0[1-9]\d{1,2}-?[2-8]\d{6,7}\Z"), AROUND)
def test_no_landline_survives_masking(phone: str, before: str) -> None:
    """Written apart from the words around it (inside a word, such as a UUID, it is no number)."""
    last = before[-1:].translate(FULL_WIDTH_DIGITS)  # a full-width digit is a digit
    before = before + " " if last.isascii() and (last.isalnum() or last == "-") else before
    assert phone not in mask_text(before + phone)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from("0123456789X +-.86USA身份证()（）af:T\t"), max_size=40))
def test_the_shortcut_for_text_without_a_long_digit_run_masks_as_the_full_scan(text: str) -> None:
    assert mask_text(text) == mask_phones(mask_id_cards(text))


def test_log_records_of_the_gateway_are_masked(caplog: pytest.LogCaptureFixture) -> None:
    install_log_masking()
    with caplog.at_level(logging.INFO, logger="yiyang.test"):
        logging.getLogger("yiyang.test").info("merged %s (phone %s)", ID_CARD, "13912345678")
    assert caplog.records[-1].getMessage() == "merged 410105********0020 (phone 139****5678)"


def test_a_record_with_a_bad_format_string_is_masked_too(caplog: pytest.LogCaptureFixture) -> None:
    """Its message could not be formatted, so it was left alone, and logging's error report
    printed the raw arguments."""
    install_log_masking()
    with caplog.at_level(logging.INFO, logger="yiyang.test"):
        logging.getLogger("yiyang.test").info("merged %s into %s", ID_CARD)
    assert ID_CARD not in caplog.records[-1].getMessage()


def explained(capsys: pytest.CaptureFixture[str], row: str) -> tuple[str, str]:
    """``mappings explain`` of one row of the community-health sample: masked, then revealed."""
    from pathlib import Path

    sample = Path(__file__).resolve().parents[2] / "mappings/samples/community-health/个人基本信息表.csv"
    main(["mappings", "explain", "community-health", str(sample), "--record", row])
    masked = capsys.readouterr().out
    main(["mappings", "explain", "community-health", str(sample), "--record", row, "--reveal"])
    return masked, capsys.readouterr().out


def test_demo_style_output_is_masked_unless_revealed(capsys: pytest.CaptureFixture[str]) -> None:
    masked, revealed = explained(capsys, "row 14")
    assert ("110105********9910" in masked, "110105196304029910" in revealed) == (True, True)


def test_a_percent_encoded_name_is_masked_as_the_name_it_encodes() -> None:
    """Masked as written it read ``name=%**``: a URL no one sent, the family name lost."""
    assert mask_text("GET /fhir/Patient?name=%E5%BC%A0%E7%A7%80%E8%8B%B1&birthdate=1949-12-31") == (
        "GET /fhir/Patient?name=%E5%BC%A0**&birthdate=1949-12-31"
    )


def test_explain_masks_the_persons_name_unless_revealed(capsys: pytest.CaptureFixture[str]) -> None:
    masked, revealed = explained(capsys, "row 2")
    assert ("孙福春" in masked, "孙**" in masked, "孙福春" in revealed) == (False, True, True)


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


@pytest.mark.parametrize(
    ("written", "masked"),
    [
        ("8613800000001", "86138****0001"),
        ("１３８０００００００１", "138****0001"),
        ("138.0000.0001", "138****0001"),
        ("410105 19491231 0020", "410105********0020"),
        ("４１０１０５１９４９１２３１００２０", "410105********0020"),
        # groups apart by the ideographic space, dash or dot of full-width input
        ("410105\u300019491231\u30000020", "410105********0020"),
        ("４１０１０５\u3000１９４９１２３１\u3000００２０", "410105********0020"),
        ("138－0000－0001", "138****0001"),
        ("138．0000．0001", "138****0001"),
    ],
)
def test_phones_and_ids_are_masked_however_typed(written: str, masked: str) -> None:
    assert mask_text(f"Patient?phone={written}") == f"Patient?phone={masked}"


ENCODED_ID_CARD = "".join(f"%{ord(c):02X}" for c in ID_CARD)


@pytest.mark.parametrize(
    ("written", "masked"),
    [
        # a Bundle entry's URL, recorded as the client wrote it
        (f"GET Patient?identifier={ENCODED_ID_CARD} → 200 OK", "GET Patient?identifier=410105********0020 → 200 OK"),
        (f"GET Patient/{ENCODED_ID_CARD.lower()} → 404", "GET Patient/410105********0020 → 404"),
        ("Patient?telecom=%31%33%38%30%30%30%30%30%30%30%31", "Patient?telecom=138****0001"),
        ("Patient?phone=%2B86%20138%200000%200001", "Patient?phone=+86 138 **** 0001"),
    ],
)
def test_a_percent_encoded_number_is_masked_as_the_number_it_encodes(written: str, masked: str) -> None:
    assert mask_text(written) == masked


def test_a_bundle_entry_url_with_an_encoded_id_card_is_recorded_masked() -> None:
    entry = ("GET", f"Patient?identifier={ENCODED_ID_CARD}", "200 OK", None)
    record = record_of(facts(entries=[entry]), "2026-12-05T00:00:00Z")
    assert ID_CARD not in unquote(json.dumps(record))
    assert "410105********0020" in json.dumps(record)


def test_a_bearer_token_in_free_text_is_hidden() -> None:
    token = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhIn0.c2lnbmF0dXJl"
    assert mask_text(f"GET /fhir/Patient?x={token}") == "GET /fhir/Patient?x=***"


@pytest.mark.parametrize("name", ["token", "api_key"])
def test_other_credential_parameters_are_never_recorded(name: str) -> None:
    assert mask_query([(name, "SuperSecret")]) == [(name, "***")]


def test_names_in_free_text_searches_and_filters_are_masked() -> None:
    assert (mask_query([("_text", "欧阳娜娜")]), mask_text("_filter=name eq 欧阳娜娜")) == (
        [("_text", "欧**")],
        "_filter=name eq 欧**",
    )


@pytest.mark.parametrize(
    ("method", "path", "allow"), [("DELETE", "AuditEvent/forged", "GET, HEAD"), ("GET", "AuditEvent/_history", "")]
)
def test_a_refused_write_to_the_trail_names_what_the_path_takes(api: Api, method: str, path: str, allow: str) -> None:
    """RFC 9110: a 405 carries Allow; the trail's history takes no method at all."""
    answer = api.request(method, f"{api.base}/{path}", timeout=60)
    assert (answer.status_code, answer.headers.get("Allow")) == (405, allow)


@pytest.mark.parametrize(
    ("written", "number"),
    [
        ("138%090013%098000", "138\t0013\t8000"),
        ("410105%0919491231%090020", "19491231"),
        ("USA%091234%095678%099012", "1234\t5678"),
    ],
)
def test_a_number_apart_by_escaped_tabs_is_masked(written: str, number: str) -> None:
    """Tabs separate groups; escaped (``%09``) they were kept as written and the number unseen."""
    assert number not in unquote(mask_text(written))


@pytest.mark.parametrize("written", ["1380 0138 000.5", "ABC 1234 5678 9012.5", "1380 0138 000-1"])
def test_a_grouped_number_followed_by_a_fraction_or_more_digits_stays(written: str) -> None:
    assert mask_text(written) == written

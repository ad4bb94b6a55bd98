"""Exchange records: what the validating layers note, the verdict an exchange gets, masking,
the buffer and retention, the ingest pipeline's and the MLLP listener's records, and the
report the store's SQL builds — the same report the records themselves would give.

Store-backed tests run on SQLite and PostgreSQL."""

from __future__ import annotations

import io
import json
import threading
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from flask import Flask
from hypothesis import given
from hypothesis import strategies as st

from conformance.issues import Issue
from conformance.report.aggregate import Facts, exchange_report, tally
from conformance.report.model import Verdict
from conformance.report.render_json import exchange_document, schema
from conformance.validator import Validator
from gateway import create_app, exchanges, masking, messages
from gateway.cli import main
from gateway.config import Config
from gateway.exchanges import Collector, ExchangeLog, Party, activate, deactivate, found_after
from gateway.fhir.bundles import Bundles
from gateway.fhir.repository import Repository
from gateway.ingest.pipeline import Ingest
from gateway.reporting import Rendering, ReportQuery, details, exchange_detail, parse_day, render, report_and_details
from gateway.services import Services
from gateway.storage import open_store
from gateway.storage.exchange_tables import ExchangeFilter
from gateway.storage.store import Store, StoreError
from tests.conftest import add_client, fresh_database_url, load_example

ROOT = Path(__file__).resolve().parents[2]
HIS = Party("his-zz1", "zhengzhou-first-hospital", "hospital", "rest", "create")
ECP = Party("ecp-1", "sunshine-home", "elderly-care", "rest", "create")
PATIENT = {"resourceType": "Patient", "id": "p1", "meta": {"profile": ["urn:yy-patient"]}}
ID_CARD = "410105194912310021"
CHECKSUM = Issue("error", "rule.id-card-checksum", "Patient.identifier[0].value", {"value": ID_CARD, "expected": "0"})
DAY = date(2026, 11, 30)


def at(day: date, hour: int = 2) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


def judged(*issues: Issue, resource: dict[str, Any] | None = None) -> Collector:
    collector = Collector()
    collector.judge(resource or PATIENT, [], list(issues))
    return collector


def append(store: Store, *records: Any) -> list[int]:
    with store.transaction() as tx:
        return exchanges.append(tx, list(records))


def verdicts_recorded(app: Flask, store: Store) -> int:
    """The verdict rows the exchange log holds once it has written what it buffered."""
    app.extensions["yiyang.exchanges"].flush()
    with store.reading() as tx:
        return int(tx.sql.one("SELECT count(*) FROM exchange_verdict")[0])


def sample(store: Store) -> None:
    """Four exchanges over two days: HIS passes once and fails once, the care home fails once
    and is refused once."""
    append(
        store,
        judged().finished(HIS, 201, at(DAY)),
        judged(CHECKSUM).finished(HIS, 422, at(DAY)),
        judged(CHECKSUM).finished(ECP, 201, at(DAY + timedelta(days=1))),
        Collector().finished(ECP, 403, at(DAY + timedelta(days=1))),
    )


WHOLE = ReportQuery(DAY, DAY + timedelta(days=1))


# -- what an exchange's verdict is --------------------------------------------------------------
@pytest.mark.parametrize(
    ("collector", "status", "verdict"),
    [
        (judged(), 201, Verdict.PASS),
        (judged(CHECKSUM), 201, Verdict.FAIL),  # stored with warnings (validation = warn) still fails
        (judged(CHECKSUM), 422, Verdict.FAIL),
        (Collector(), 400, Verdict.FAIL),  # refused for its content before it could be validated
        (Collector(), 404, Verdict.ERROR),
        (judged(), 403, Verdict.ERROR),  # valid, but not this client's to write
        (Collector(), 200, Verdict.SKIP),  # a read: nothing to judge
        (judged(), None, Verdict.PASS),  # MLLP and the command line have no HTTP status
    ],
)
def test_an_exchange_verdict_follows_its_content_then_its_status(
    collector: Collector, status: int | None, verdict: Verdict
) -> None:
    assert collector.verdict(status) == verdict


def test_every_verdict_is_worded_in_both_languages() -> None:
    entries = [messages.catalog().get(f"report.verdict.{verdict}", {}) for verdict in Verdict]
    assert all({"zh-CN", "en"} <= set(entry) for entry in entries)


def test_a_record_judged_again_after_a_rewind_is_noted_once() -> None:
    """An ingest's record the database refused for another writer's sake is judged again
    (``Ingest._attempt``): its exchange says what the attempt that stood judged."""
    collector = judged(CHECKSUM)
    before = collector.mark()
    collector.judge(PATIENT, [], [CHECKSUM])
    collector.reason("ingest.no-spec", {"zh-CN": "无", "en": "none"}, None)
    collector.rewind(before)
    collector.judge(PATIENT, [], [CHECKSUM])
    once_each = judged(CHECKSUM)
    once_each.judge(PATIENT, [], [CHECKSUM])
    fields = ("verdicts", "issues", "folded", "types", "errors", "warnings", "failed")
    assert [getattr(collector, name) for name in fields] == [getattr(once_each, name) for name in fields]


def test_a_record_judged_a_third_time_is_noted_once() -> None:
    """``retried`` runs a record up to three times, so its collector is rewound twice to one
    mark: the second rewind must not restore what the second attempt noted (the types and
    the folded counts the first rewind handed back, and the attempt then added to)."""
    collector = Collector()
    collector.verdicts.extend([("Patient", "x", "p", True, 0, 0, 1)] * exchanges.KEEP)  # full: the rest fold
    before = collector.mark()
    for attempt in range(1, 4):  # as Ingest._process's attempts rewind it
        if attempt > 1:
            collector.rewind(before)
        collector.judge(PATIENT, [], [CHECKSUM])
    once = Collector()
    once.verdicts.extend([("Patient", "x", "p", True, 0, 0, 1)] * exchanges.KEEP)
    once.judge(PATIENT, [], [CHECKSUM])
    assert (collector.types, collector.folded) == (once.types, once.folded)


def test_a_record_that_could_not_be_mapped_fails_its_exchange() -> None:
    collector = Collector()
    collector.reason("ingest.no-spec", {"zh-CN": "无映射", "en": "no spec"}, None)
    assert collector.verdict(None) == "fail"


def test_an_id_card_number_in_an_issue_is_masked_in_both_languages() -> None:
    _, _, issues = judged(CHECKSUM).finished(HIS, 422)
    texts = [text for issue in issues for text in issue[4:6]]
    assert (any(ID_CARD in t for t in texts), all("410105********0021" in t for t in texts)) == (False, True)


def test_a_mistyped_id_card_number_in_an_issue_is_masked_in_both_languages() -> None:
    """rule.id-card-format quotes the value as sent: 17 of its 18 characters reached the
    auditors' reports unmasked."""
    mistyped = Issue("error", "rule.id-card-format", "Patient.identifier[0].value", {"value": ID_CARD[:17]})
    _, _, issues = judged(mistyped).finished(HIS, 422)
    texts = [text for issue in issues for text in issue[4:6]]
    assert (any(ID_CARD[:17] in t for t in texts), all("410105********002" in t for t in texts)) == (False, True)


def test_issues_worded_alike_but_for_a_parameters_kind_each_read_as_worded() -> None:
    """Issue texts are remembered by message and parameters (each entry of a Bundle raises the
    same dom-6): 1, 1.0 and True are one key, and must not read as one another."""
    kinds = ("1", 1, 1.0, True, "1")
    checks = [Issue("error", "rule.id-card-checksum", "Patient.id", {"value": "x", "expected": v}) for v in kinds]
    _, _, issues = judged(*checks).finished(HIS, 422)
    assert [issue[5].rsplit(" ", 1)[-1] for issue in issues] == ["1", "1", "1.0", "True", "1"]


def test_an_issues_texts_kept_worded_are_remembered_there_alone() -> None:
    """An issue's texts are worded and masked once and kept by the exchange log; mask_repeated,
    which remembers a request's other repeated texts, does not keep them a second time."""
    unseen = f"41010519491231{len(exchanges._WORDED):04d}"  # no issue so worded before
    checksum = Issue(
        "error", "rule.id-card-checksum", "Patient.identifier[0].value", {"value": unseen, "expected": "0"}
    )
    masking._mask_remembered.cache_clear()
    _, _, issues = judged(checksum, checksum).finished(HIS, 422)
    remembered = masking._mask_remembered.cache_info().currsize  # the claimed profile, the location
    assert (issues[0][4:] == issues[1][4:], unseen[6:14] in str(issues), remembered) == (True, False, 2)


def test_an_id_card_number_used_as_a_resource_id_is_masked() -> None:
    _, verdicts, _ = judged(resource={"resourceType": "Patient", "id": ID_CARD}).finished(HIS, 201)
    assert verdicts[0][1] == "410105********0021"


def test_a_type_named_by_a_client_is_kept_only_if_it_looks_like_a_type() -> None:
    collector = Collector()
    collector.carried(ID_CARD, 0)
    collector.carried("Patient", 3)
    head, _, _ = collector.finished(HIS, 200)
    assert (head[9], head[10]) == (" Patient ", 3)


def test_a_bundle_answer_counts_the_resources_it_carries_by_type() -> None:
    """A history's deleted version has no resource: nothing of it was returned."""
    bundle = {
        "resourceType": "Bundle",
        "entry": [
            {"resource": {"resourceType": "Patient", "id": "p1"}},
            {"resource": {"resourceType": "Encounter", "id": "e1"}},
            {"resource": {"resourceType": "Patient", "id": "p2"}},
            {"request": {"method": "DELETE", "url": "Patient/p3"}},
        ],
    }
    collector = Collector()
    token = exchanges.activate(collector)
    try:
        exchanges.returned(bundle)
    finally:
        exchanges.deactivate(token)
    assert collector.types == {"Patient": 2, "Encounter": 1}


def test_a_resource_claiming_no_profile_is_held_to_its_base_definition() -> None:
    _, verdicts, _ = judged(resource={"resourceType": "Encounter", "id": "e1"}).finished(HIS, 201)
    assert verdicts[0][2] == "http://hl7.org/fhir/StructureDefinition/Encounter"


def test_beyond_the_kept_verdicts_passing_resources_are_counted_per_type_and_profile(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(exchanges, "KEEP", 2)
    collector = Collector()
    for index in range(5):
        collector.judge({**PATIENT, "id": f"p{index}"}, [], [])
    _, verdicts, _ = collector.finished(HIS, 200)
    assert [(v[1], v[6]) for v in verdicts] == [("p0", 1), ("p1", 1), ("", 3)]


def test_the_day_of_an_exchange_is_its_day_in_china() -> None:
    head, _, _ = Collector().finished(HIS, 200, datetime(2026, 11, 30, 17, 0, tzinfo=UTC))
    assert head[1] == "2026-12-01"


@pytest.mark.parametrize(
    ("recorded", "day"),
    [
        ("2026-11-30T15:59:59.999999Z", "2026-11-30"),
        ("2026-11-30T16:00:00.000000Z", "2026-12-01"),
        ("2026-12-31T16:00:00.000000Z", "2027-01-01"),
    ],
)
def test_a_requests_record_is_on_its_day_in_china(recorded: str, day: str) -> None:
    """The log thread dates a request's record from the instant text, its day kept an hour."""
    assert exchanges.china_day(recorded) == day


def test_a_requests_record_is_dated_in_the_stores_instant_form() -> None:
    head, _, _ = exchanges.Later(Collector(), HIS, 201).row()
    in_china = datetime.fromisoformat(head[0].replace("Z", "+00:00")) + timedelta(hours=8)
    assert (len(head[0]), head[0][10], head[0][-1], head[1]) == (27, "T", "Z", in_china.date().isoformat())


def test_noting_without_an_exchange_under_way_does_nothing() -> None:
    exchanges.judged(PATIENT, [], [CHECKSUM])
    assert exchanges.current() is None


# -- the store ----------------------------------------------------------------------------------
def test_logs_of_two_workers_append_one_sequence_of_ids(store: Store) -> None:
    first, second = ExchangeLog(store, 0, interval=3600), ExchangeLog(store, 0, interval=3600)
    for log in (first, second, first):
        log.record(judged().finished(HIS, 201))
        log.flush()
    first.close()
    second.close()
    with store.reading() as tx:
        ids = [row[0] for row in tx.sql.all("SELECT id FROM exchange ORDER BY id")]
    assert ids == [1, 2, 3]


def test_records_the_store_refused_are_appended_by_a_later_flush(store: Store) -> None:
    log = ExchangeLog(store, 0, interval=3600)
    log.record(judged(CHECKSUM).finished(HIS, 422))
    with store.transaction() as tx:
        tx.sql.execute("ALTER TABLE exchange_issue RENAME TO exchange_issue_away")
    log.flush()  # refused: the table is gone
    with store.transaction() as tx:
        tx.sql.execute("ALTER TABLE exchange_issue_away RENAME TO exchange_issue")
    log.close()
    with store.reading() as tx:
        assert tx.exchanges.count() == 1


def test_a_record_our_code_fails_to_make_is_set_aside_and_the_rest_appended(store: Store) -> None:
    """A request's record is made on the log's thread (``Later.row``): one our code failed to
    make (here, of no party) raised out of the flush with every record it had taken, and
    ended the thread, so the worker appended no exchange after it."""
    log = ExchangeLog(store, 0, interval=3600)
    log.record(exchanges.Later(Collector(), HIS, 201))
    log.record(exchanges.Later(Collector(), None, 201))  # type: ignore[arg-type]
    log.record(exchanges.Later(Collector(), ECP, 201))
    log.flush()
    with store.reading() as tx:
        assert (tx.exchanges.count(), log.pending()) == (2, 0)


def test_purge_deletes_the_days_before_the_cutoff_with_their_verdicts_and_issues(store: Store) -> None:
    sample(store)
    exchanges.purge(store, (DAY + timedelta(days=1)).isoformat())
    with store.reading() as tx:
        left = [tx.sql.one(f"SELECT COUNT(*) FROM {t}")[0] for t in ("exchange", "exchange_verdict", "exchange_issue")]
    assert left == [2, 1, 1]


def test_ids_after_a_purge_of_everything_are_never_given_again(store: Store) -> None:
    """A report or a link naming exchange 1 must never come to name another exchange."""
    sample(store)
    exchanges.purge(store, (DAY + timedelta(days=2)).isoformat())
    assert append(store, judged().finished(HIS, 201)) == [5]


def test_a_report_reaching_back_before_a_purge_says_so(store: Store) -> None:
    """Otherwise a purged period reads as one in which nothing was exchanged."""
    sample(store)
    exchanges.purge(store, (DAY + timedelta(days=1)).isoformat())
    report, _ = report_and_details(store, ReportQuery(DAY, DAY + timedelta(days=1)), "en")
    assert ("report.scope.purged-before", (DAY + timedelta(days=1)).isoformat()) in report.scope


def test_the_log_applies_the_retention_policy_when_it_flushes(store: Store) -> None:
    append(store, judged().finished(HIS, 201, datetime.now(UTC) - timedelta(days=40)))
    log = ExchangeLog(store, retention_days=30, interval=3600)
    log.record(judged().finished(HIS, 201))
    log.close()
    with store.reading() as tx:
        assert tx.exchanges.count() == 1


def test_retention_keeps_the_last_n_days_including_today() -> None:
    assert exchanges.cutoff(30, date(2026, 12, 1)) == "2026-11-02"


def test_retention_zero_keeps_everything() -> None:
    assert exchanges.cutoff(0) is None


def test_retention_is_configured_by_environment() -> None:
    assert Config.load({"YIYANG_EXCHANGE_RETENTION_DAYS": "90"}).exchange_retention_days == 90


# -- the report from the store ------------------------------------------------------------------------
def as_counted(facts: Facts) -> Facts:
    """``facts`` as a report holds them before its file is written: each failing exchange with
    how many issues it recorded; its verdicts and issues are read as the file is written."""
    failing = [replace(e, verdicts=(), findings=(), findings_counted=len(e.findings)) for e in facts.failing]
    return replace(facts, failing=failing, failing_findings_listed=sum(len(e.findings) for e in facts.failing))


def test_the_stores_aggregates_give_the_report_the_records_give(store: Store) -> None:
    sample(store)
    built, read = report_and_details(store, WHOLE, "zh-CN", "now")
    with store.reading() as tx:
        facts = tally(details(tx.exchanges, tx.sql.all("SELECT * FROM exchange ORDER BY id"), "zh-CN"))
    assert (built, list(read())) == (exchange_report(as_counted(facts), WHOLE.scope, "now"), facts.failing)


class Stale:
    """The refusal of a batch's entry written over a version it never had."""

    def audited(self, lang: str) -> dict[str, Any]:
        words = {"zh-CN": "版本冲突", "en": "version conflict"}[lang]
        coding = [{"code": "http.version-conflict"}]
        return {
            "issue": [
                {"severity": "error", "expression": ["Bundle.entry[1]"], "details": {"coding": coding, "text": words}}
            ]
        }


def batch_with_a_refused_entry() -> Collector:
    """A batch whose second entry failed its content and whose third was refused (412)."""
    collector = judged()
    collector.judge(PATIENT, [], [CHECKSUM])
    collector.entry_refused(collector.mark(), "update", 412, Stale())
    return collector


def test_a_batch_entrys_refusal_is_among_the_reasons_requests_were_refused(store: Store) -> None:
    """Not among the rules its content broke: the batch's verdict, fail, is its content's."""
    append(store, batch_with_a_refused_entry().finished(HIS, 200, at(DAY)))
    report, _ = report_and_details(store, WHOLE, "en", "now")
    assert [r.label for r in report.section("refusals").results] == ["http.version-conflict"]


def test_the_report_the_records_give_counts_a_batch_entrys_refusal_as_the_stores_does(store: Store) -> None:
    append(store, batch_with_a_refused_entry().finished(HIS, 200, at(DAY)))
    built, read = report_and_details(store, WHOLE, "zh-CN", "now")
    with store.reading() as tx:
        facts = tally(details(tx.exchanges, tx.sql.all("SELECT * FROM exchange ORDER BY id"), "zh-CN"))
    assert (built, list(read())) == (exchange_report(as_counted(facts), WHOLE.scope, "now"), facts.failing)


def test_a_batch_exchanges_json_marks_the_reason_an_entry_was_refused_for(store: Store) -> None:
    """The drill-down tells a refused entry's reason from a rule the batch's content broke."""
    [exchange_id] = append(store, batch_with_a_refused_entry().finished(HIS, 200, at(DAY)))
    found = exchange_detail(store, exchange_id, "en")
    assert found is not None
    marked = [(f["rule"], f.get("verdict")) for f in exchange_document(found)["findings"] if f["severity"] == "error"]
    assert marked == [("rule.id-card-checksum", None), ("http.version-conflict", "error")]


def test_a_report_covers_only_its_days(store: Store) -> None:
    sample(store)
    assert report_and_details(store, ReportQuery(DAY, DAY), "en")[0].summary.total == 2


def test_a_report_for_one_organisation_shows_only_its_exchanges(store: Store) -> None:
    sample(store)
    report, _ = report_and_details(store, ReportQuery(DAY, DAY + timedelta(days=1), "sunshine-home"), "en")
    assert [r.label for r in report.section("participants").results] == ["ecp-1"]


def test_a_drill_down_names_the_resource_each_issue_concerns(store: Store) -> None:
    sample(store)
    _, read = report_and_details(store, WHOLE, "en")
    # the refused create (422) names its type alone: its id was never stored
    assert {f.subject for e in read() for f in e.findings} == {"Patient", "Patient/p1"}


def test_a_report_counts_each_failing_exchanges_issues_until_they_are_read(store: Store) -> None:
    """What the served page shows of each failing exchange, which links to its own page: read
    whole, a thousand exchanges of 10,000 issues each took 700 MiB to be counted."""
    sample(store)
    counted, read = report_and_details(store, WHOLE, "en")
    assert [(e.verdicts, e.findings, e.findings_counted) for e in counted.exchanges] == [
        ((), (), len(e.findings)) for e in read()
    ]


def test_a_report_shows_when_an_exchange_came_in_china_time(store: Store) -> None:
    """The time of day was the stored UTC instant, eight hours off for readers whose days the
    report counts in China time."""
    sample(store)
    report, _ = report_and_details(store, WHOLE, "en")
    assert {e.recorded for e in report.exchanges} == {
        f"{DAY + timedelta(days=1)}T10:00:00+08:00",
        f"{DAY}T10:00:00+08:00",
    }


def test_the_reports_limit_shows_the_newest_failing_exchanges_and_counts_all(store: Store) -> None:
    sample(store)
    report, _ = report_and_details(store, ReportQuery(DAY, DAY + timedelta(days=1), limit=1), "en")
    assert ([e.id for e in report.exchanges], report.exchanges_total) == (["3"], 2)


def mixed(store: Store) -> None:
    """Three failing exchanges, a day apart, each of two warnings recorded before two errors."""
    for offset in range(3):
        issues = [
            Issue(severity, "rule.id-card-checksum", f"Patient.identifier[{n}].value", {"value": "1", "expected": "0"})
            for n, severity in enumerate(("warning", "warning", "error", "error"))
        ]
        append(store, judged(*issues).finished(HIS, 422, at(DAY + timedelta(days=offset))))


def test_a_bounded_report_lists_errors_first_newest_exchanges_first(store: Store) -> None:
    """A download listed every issue of up to 10,000 exchanges, a gigabyte of a worker's
    memory: bounded to five issues of twelve, it lists each exchange's errors, newest first,
    before any warning, and counts the seven it left out."""
    mixed(store)
    report, read = report_and_details(store, ReportQuery(DAY, DAY + timedelta(days=2)), "en", most_issues=5)
    listed = [(e.id, f.severity, f.location) for e in read() for f in e.findings]
    assert (listed, report.findings_omitted) == (
        [
            ("3", "error", "Patient.identifier[2].value"),
            ("3", "error", "Patient.identifier[3].value"),
            ("2", "error", "Patient.identifier[2].value"),
            ("2", "error", "Patient.identifier[3].value"),
            ("1", "error", "Patient.identifier[2].value"),
        ],
        7,
    )


@pytest.mark.parametrize("fmt", ["csv", "junit", "html", "json"])
def test_a_bounded_download_says_how_many_issues_it_left_out(store: Store, fmt: str) -> None:
    """Every format says the issues listed are not all there are, and how many were left out."""
    mixed(store)
    report, read = report_and_details(store, ReportQuery(DAY, DAY + timedelta(days=2)), "en", most_issues=5)
    said = "Listing 5 of the 12 issues" if fmt != "json" else '"findingsOmitted": 7'
    assert said in render(report, Rendering(fmt, "en", exchanges=read)).decode()


def test_a_bounded_workbook_ends_its_failing_sheet_saying_how_many_issues_it_left_out(store: Store) -> None:
    from openpyxl import load_workbook

    mixed(store)
    report, read = report_and_details(store, ReportQuery(DAY, DAY + timedelta(days=2)), "en", most_issues=5)
    sheet = load_workbook(io.BytesIO(render(report, Rendering("xlsx", "en", exchanges=read)))).worksheets[0]
    assert str(list(sheet.values)[-1][0]).startswith("Listing 5 of the 12 issues")


# -- who records -------------------------------------------------------------------------------------
@pytest.fixture
def services(store: Store, database_url: str, validator: Validator) -> Services:
    """Services over the test store, with the session's compiled validator."""
    found = Services(Config.load(database_url=database_url), registry=validator.registry)
    found.__dict__.update(store=store, validator=validator)
    return found


def test_the_repository_notes_each_resource_it_validates(services: Services) -> None:
    collector = Collector()
    token = exchanges.activate(collector)
    try:
        services.repository.validate(load_example("yy-patient/valid-zhang-xiuying.json"))
    finally:
        exchanges.deactivate(token)
    assert [(v[0], v[2], v[3]) for v in collector.verdicts] == [
        ("Patient", "http://fhir.yiyang.cn/StructureDefinition/yy-patient", True)
    ]


def test_an_mllp_message_is_one_exchange_of_the_client_that_sent_it(services: Services, store: Store) -> None:
    """The participant is the registered client the peer's address is, and its organisation:
    MSH-3 and MSH-4 (``HIS``, ``H41010500012``) are the message's claim, and recorded as the
    participant any engine could have its messages counted for another hospital."""
    from gateway.mllp import Peer, acknowledge
    from gateway.security.principal import Principal

    message = (ROOT / "mappings/samples/hl7v2/adt.hl7").read_bytes().replace(b"\n", b"\r").split(b"MSH")[1]
    engine = Principal("his-engine", "zhengzhou-first-hospital", frozenset({"system/*.cruds"}), "operator")
    acknowledge(services, b"MSH" + message, Peer("127.0.0.1", engine))
    with store.reading() as tx:
        row = tx.sql.one("SELECT client, organization, source, channel, interaction, verdict FROM exchange")
    assert tuple(row) == ("his-engine", "zhengzhou-first-hospital", "hl7v2", "mllp", "ADT^A01", "pass")


@pytest.mark.parametrize(
    ("sent", "recorded"),
    [(b"|HIS|", ("his-engine", "ADT^A01")), (b"|ADT^A01^", ("his-engine", "ADU+0000T^A01"))],
    ids=["MSH-3", "MSH-9"],
)
def test_an_mllp_message_with_a_nul_in_its_header_keeps_its_exchange_record(
    services: Services, store: Store, sent: bytes, recorded: tuple[str, str]
) -> None:
    """PostgreSQL's text holds no NUL: the record of a message naming its sender or type
    with one was refused, and the message, quarantined and audited, was in no report.  The
    NUL is recorded as its code point, as a refusal's reason quotes it."""
    from gateway.mllp import Peer, acknowledge
    from gateway.security.principal import Principal

    message = (ROOT / "mappings/samples/hl7v2/adt.hl7").read_bytes().replace(b"\n", b"\r").split(b"MSH")[1]
    broken = message.replace(sent, sent[:3] + b"\x00" + sent[3:], 1)
    engine = Principal("his-engine", "zhengzhou-first-hospital", frozenset({"system/*.cruds"}), "operator")
    acknowledge(services, b"MSH" + broken, Peer("127.0.0.1", engine))
    with store.reading() as tx:
        rows = tx.sql.all("SELECT client, interaction FROM exchange")
    assert [tuple(row) for row in rows] == [recorded]


def test_yiyang_ingest_records_one_exchange_per_file(database_url: str, store: Store) -> None:
    folder = ROOT / "mappings/samples/community-health"
    files = [str(folder / "个人基本信息表.csv"), str(folder / "家庭医生签约.csv")]
    main(["ingest", "--source", "community-health", "--database", database_url, *files])
    with store.reading() as tx:
        rows = tx.sql.all("SELECT client, source, channel, verdict FROM exchange ORDER BY id")
    assert [tuple(r) for r in rows] == [("yiyang-cli", "community-health", "cli", "fail")] * 2  # both have bad rows


def test_a_file_holding_no_record_is_an_exchange_too(database_url: str, store: Store, tmp_path: Path) -> None:
    """A file with a header and no rows left no exchange: the report said nothing came in."""
    empty = tmp_path / "empty.csv"
    empty.write_text("garbage\n", encoding="utf-8")
    main(["ingest", "--source", "community-health", "--database", database_url, str(empty)])
    with store.reading() as tx:
        rows = tx.sql.all("SELECT channel, verdict, resources FROM exchange")
    assert [tuple(r) for r in rows] == [("cli", "skip", 0)]


def test_a_file_yiyang_ingest_cannot_read_is_a_failed_exchange_naming_why(database_url: str, store: Store) -> None:
    """Refused before its first record (an XML with an entity declaration), it left no exchange
    at all: the report said nothing had come in."""
    unsafe = ROOT / "mappings/samples/community-health/健康档案-外部实体.xml"
    main(["ingest", "--source", "community-health", "--database", database_url, str(unsafe)])
    with store.reading() as tx:
        rows = tx.sql.all(
            "SELECT e.verdict, i.location FROM exchange e JOIN exchange_issue i ON i.exchange_id = e.id ORDER BY e.id"
        )
    assert [tuple(r) for r in rows] == [("fail", unsafe.name)]


# -- the command line ----------------------------------------------------------------------------------
def report_command(database_url: str, out: Path, *options: str) -> int:
    argv = ["report", "--since", DAY.isoformat(), "--until", "2026-12-01", "--database", database_url]
    return main([*argv, "--out", str(out), *options])


def test_yiyang_report_json_meets_the_schema(store: Store, database_url: str, tmp_path: Path) -> None:
    sample(store)
    report_command(database_url, tmp_path / "r.json", "--format", "json")
    jsonschema.validate(json.loads((tmp_path / "r.json").read_text(encoding="utf-8")), schema())


def test_yiyang_report_exits_one_when_an_exchange_failed(store: Store, database_url: str, tmp_path: Path) -> None:
    sample(store)
    assert report_command(database_url, tmp_path / "r.html", "--format", "html") == 1


def test_yiyang_report_exits_zero_when_none_failed(store: Store, database_url: str, tmp_path: Path) -> None:
    append(store, judged().finished(HIS, 201, at(DAY)))
    assert report_command(database_url, tmp_path / "r.xml", "--format", "junit") == 0


def test_yiyang_report_writes_a_workbook(store: Store, database_url: str, tmp_path: Path) -> None:
    from openpyxl import load_workbook

    sample(store)
    report_command(database_url, tmp_path / "r.xlsx", "--format", "xlsx", "--lang", "en")
    assert load_workbook(tmp_path / "r.xlsx").sheetnames == ["Failing", "Scorecard", "Scope"]


def test_yiyang_report_says_when_its_failing_table_was_cut_by_the_limit(
    store: Store, database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The file says so in its last row; whoever ran the command is told at once."""
    sample(store)
    report_command(database_url, tmp_path / "r.csv", "--format", "csv", "--lang", "en", "--limit", "1")
    assert "lists the newest 1 of the 2 failed exchanges" in capsys.readouterr().out


def test_yiyang_reports_html_shows_the_newest_details_failing_exchanges_in_full(
    store: Store, database_url: str, tmp_path: Path
) -> None:
    sample(store)
    report_command(database_url, tmp_path / "r.html", "--format", "html", "--details", "1")
    assert (tmp_path / "r.html").read_text(encoding="utf-8").count('<article class="exchange"') == 1


def test_yiyang_report_on_an_organisation_a_client_is_registered_for_is_written(
    store: Store, database_url: str, tmp_path: Path
) -> None:
    add_client(database_url, "ecp-1", secret="s" * 32, role="elderly-care", organization="sunshine-home")
    sample(store)
    assert report_command(database_url, tmp_path / "r.json", "--format", "json", "--org", "sunshine-home") == 1


def test_yiyang_report_refuses_an_organisation_no_client_is_registered_for(
    store: Store, database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A typo's report was empty and exited 0: read as a quiet period for that hospital."""
    sample(store)
    code = report_command(
        database_url, tmp_path / "r.json", "--format", "json", "--org", "sunshine-hom", "--lang", "en"
    )
    said = "--org sunshine-hom: no client is registered for this organisation"
    assert (code, said in capsys.readouterr().err) == (2, True)


def test_yiyang_report_refuses_a_period_that_ends_before_it_starts(tmp_path: Path) -> None:
    code = main(["report", "--since", "2026-12-02", "--until", "2026-12-01", "--format", "json", "--out", "x.json"])
    assert code == 2


def test_yiyang_exchanges_purge_says_how_many_went(
    store: Store, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    sample(store)
    main(["exchanges", "purge", "--before", "2026-12-01", "--database", database_url, "--lang", "en"])
    assert capsys.readouterr().out == "Deleted 2 exchange records before 2026-12-01\n"


def test_yiyang_exchanges_purge_refuses_a_day_after_today(store: Store, database_url: str) -> None:
    """--before 2099-01-01 (for 2009) was taken, and every record went, today's too."""
    sample(store)
    code = main(["exchanges", "purge", "--before", "2099-01-01", "--database", database_url])
    with store.reading() as tx:
        kept = tx.sql.one("SELECT COUNT(*) FROM exchange")[0]
    assert (code, kept > 0) == (2, True)


@given(st.dates())
def test_a_day_written_yyyy_mm_dd_is_read_back_as_that_day(day: date) -> None:
    assert parse_day(day.isoformat()) == day


def _a_day(text: str) -> bool:
    try:
        return date.fromisoformat(text).isoformat() == text
    except ValueError:
        return False


@given(
    st.one_of(st.text(max_size=12), st.from_regex(r"\d{4}-\d{2}-\d{2}", fullmatch=True)).filter(lambda s: not _a_day(s))
)
def test_anything_else_is_not_a_day(text: str) -> None:
    with pytest.raises(ValueError):
        parse_day(text)


def test_a_refused_create_names_no_id_it_was_never_stored_under(services: Services, store: Store) -> None:
    """The report pointed auditors at Encounter/<uuid>: the id the refused create was given."""
    app = create_app(services=services, secure=False)
    invalid = {"resourceType": "Patient", "gender": "nonsense"}
    assert app.test_client().post("/fhir/Patient", json=invalid).status_code == 422
    app.extensions["yiyang.exchanges"].flush()
    with store.reading() as tx:
        ids = [row[0] for row in tx.sql.all("SELECT resource_id FROM exchange_verdict")]
    assert ids == [""]


def test_a_refused_create_in_a_batch_names_no_id_it_was_never_stored_under(services: Services, store: Store) -> None:
    """As a refused create's own exchange does: the batch answers 200, its entry 422."""
    app = create_app(services=services, secure=False)
    invalid = {"resourceType": "Patient", "gender": "nonsense"}
    sent = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [{"resource": invalid, "request": {"method": "POST", "url": "Patient"}}],
    }
    assert app.test_client().post("/fhir", json=sent).json["entry"][0]["response"]["status"] == "422"
    app.extensions["yiyang.exchanges"].flush()
    with store.reading() as tx:
        ids = [row[0] for row in tx.sql.all("SELECT resource_id FROM exchange_verdict")]
    assert ids == [""]


def batch_with_a_stale_entry(services: Services, store: Store) -> Any:
    """A batch writing Basic/b, then refused (412) writing it over a version it never had:
    its record (the exchange's verdict, then its errors' rule, location and verdict, then the
    errors it counts)."""
    app = create_app(services=services, secure=False)
    basic = {"resourceType": "Basic", "id": "b", "code": {"text": "x"}}
    sent = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [
            {"resource": basic, "request": {"method": "PUT", "url": "Basic/b"}},
            {"resource": basic, "request": {"method": "PUT", "url": "Basic/b", "ifMatch": 'W/"5"'}},
        ],
    }
    answered = app.test_client().post("/fhir", json=sent).json
    assert [entry["response"]["status"][:3] for entry in answered["entry"]] == ["201", "412"]
    app.extensions["yiyang.exchanges"].flush()
    with store.reading() as tx:
        verdict, errors = tx.sql.one("SELECT verdict, errors FROM exchange")
        issues = tx.sql.all(
            "SELECT rule, location, exchange_verdict FROM exchange_issue WHERE severity = 'error' ORDER BY seq"
        )
    return verdict, [tuple(issue) for issue in issues], errors


def test_a_batch_entry_refused_leaves_its_reason_at_the_entry_in_the_batchs_record(
    services: Services, store: Store
) -> None:
    """An auditor reading a batch's record sees which entry was refused and why: the reason
    its answer gave, at the entry, kept as a refusal's (verdict error), not a rule broken."""
    assert batch_with_a_stale_entry(services, store)[1] == [("http.version-conflict", "Bundle.entry[1]", "error")]


def test_a_batch_entry_refused_for_another_reason_than_its_content_does_not_fail_the_batch(
    services: Services, store: Store
) -> None:
    """A batch is not atomic: its other entries landed, and its content conforms."""
    assert batch_with_a_stale_entry(services, store)[0] == "pass"


def test_a_batch_entry_refused_for_another_reason_than_its_content_counts_no_error_of_the_batch(
    services: Services, store: Store
) -> None:
    """A passing exchange with errors > 0 contradicts itself: the refusal's reason is kept with
    the entry (verdict error, the report's refusals), not counted against the batch."""
    assert batch_with_a_stale_entry(services, store)[2] == 0


def test_a_batch_entrys_issues_are_located_at_the_entry_as_a_transactions_are(services: Services, store: Store) -> None:
    """Judged as a request of its own, a batch entry's issues named the resource alone
    (``Patient.gender``): of a batch's several Patients, the record did not say which one
    broke the rule, nor, its create refused and its id blanked, which entry was refused."""
    app = create_app(services=services, secure=False)
    invalid = {"resourceType": "Patient", "gender": "nonsense"}
    basic = {"resourceType": "Basic", "code": {"text": "x"}}
    sent = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [
            {"resource": basic, "request": {"method": "POST", "url": "Basic"}},
            {"resource": invalid, "request": {"method": "POST", "url": "Patient"}},
        ],
    }
    assert app.test_client().post("/fhir", json=sent).json["entry"][1]["response"]["status"] == "422"
    app.extensions["yiyang.exchanges"].flush()
    with store.reading() as tx:
        found = tx.sql.all("SELECT location FROM exchange_issue WHERE severity = 'error'")
    assert {row[0].partition(".resource")[0] for row in found} == {"Bundle.entry[1]"}


def test_a_transaction_run_again_is_judged_once_in_its_exchange(
    services: Services, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A transaction the database gave up (a deadlock, an id another writer created first) is
    run again from its body as sent, validated again: its exchange says what the attempt
    that stood judged, as an ingest's record run again does."""
    app = create_app(services=services, secure=False)
    sent = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "resource": {"resourceType": "Basic", "code": {"text": "x"}},
                "request": {"method": "POST", "url": "Basic"},
            }
        ],
    }

    assert app.test_client().post("/fhir", json=sent).status_code == 200
    once = verdicts_recorded(app, store)
    write, given_up = Bundles._write, []

    def given_up_once(self: Bundles, *args: Any, **kwargs: Any) -> Any:
        if not given_up:
            given_up.append(True)
            raise StoreError("postgresql: deadlock detected", retryable=True)
        return write(self, *args, **kwargs)

    monkeypatch.setattr(Bundles, "_write", given_up_once)
    assert app.test_client().post("/fhir", json=sent).status_code == 200
    assert (given_up, verdicts_recorded(app, store) - once) == ([True], once)


def test_a_conditional_update_run_again_is_judged_once_in_its_exchange(
    services: Services, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A conditional update validates in its write transaction: run again (a deadlock, an id
    an ingest created first), its exchange says what the attempt that stood judged."""
    app = create_app(services=services, secure=False)

    def put(value: str) -> int:
        sent = {"resourceType": "Basic", "id": value, "code": {"text": value}}
        return app.test_client().put(f"/fhir/Basic?_id={value}", json=sent).status_code

    assert put("first") == 201
    once = verdicts_recorded(app, store)
    update_in, given_up = Repository.update_in, []

    def given_up_once(self: Repository, *args: Any, **kwargs: Any) -> Any:
        if not given_up:
            given_up.append(True)
            raise StoreError("postgresql: deadlock detected", retryable=True)
        return update_in(self, *args, **kwargs)

    monkeypatch.setattr(Repository, "update_in", given_up_once)
    assert put("second") == 201
    assert (given_up, verdicts_recorded(app, store) - once) == ([True], once)


@pytest.mark.parametrize("url", ["/fhir/Basic/b", "/fhir/Basic?_id=b"])
def test_a_patch_overtaken_and_run_again_is_judged_once_in_its_exchange(
    services: Services, store: Store, monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    """A PATCH without If-Match (by id, or conditional) that another write overtook between
    its read and its write is read, patched and validated again: its exchange says what the
    attempt that stood judged, not what both did."""
    app = create_app(services=services, secure=False)

    def patched(text: str) -> int:
        operations = [{"op": "replace", "path": "/code/text", "value": text}]
        headers = {"Content-Type": "application/json-patch+json"}
        return app.test_client().patch(url, json=operations, headers=headers).status_code

    services.repository.update("Basic", "b", {"resourceType": "Basic", "id": "b", "code": {"text": "x"}})
    before = verdicts_recorded(app, store)
    assert patched("first") == 200
    once = verdicts_recorded(app, store) - before
    prepared, overtaken = Repository._prepared, []

    def overtaken_once(self: Repository, resource: dict[str, Any]) -> Any:
        if not overtaken:  # another writer's version lands between the patch's read and write
            overtaken.append(True)
            store.atomically(lambda tx: tx.resources.write({**resource, "code": {"text": "other"}}))
        return prepared(self, resource)

    monkeypatch.setattr(Repository, "_prepared", overtaken_once)
    assert patched("second") == 200
    assert (overtaken, verdicts_recorded(app, store) - before - once) == ([True], once)


def test_an_ingested_record_run_again_is_judged_once_in_its_exchange(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A record the database gave up after it landed is judged and landed again
    (``Ingest._attempt``): its file's exchange says what the attempt that stood judged, as
    the same file's ingest into an archive of its own, given up nowhere, does."""

    def verdicts(url: str) -> int:
        sample_file = ROOT / "mappings/samples/community-health/家庭医生签约.csv"
        main(["ingest", "--source", "community-health", "--database", url, str(sample_file)])
        opened = open_store(url)
        try:
            with opened.reading() as tx:
                return int(tx.sql.one("SELECT count(*) FROM exchange_verdict")[0])
        finally:
            opened.close()

    (tmp_path / "elsewhere").mkdir()
    with fresh_database_url(database_url.split(":", 1)[0], tmp_path / "elsewhere") as elsewhere:
        once = verdicts(elsewhere)
    land, given_up = Ingest._land, []

    def land_then_given_up(self: Ingest, tx: Any, outcome: Any) -> None:
        land(self, tx, outcome)
        if not given_up:
            given_up.append(True)
            raise StoreError("postgresql: deadlock detected", retryable=True)

    monkeypatch.setattr(Ingest, "_land", land_then_given_up)
    assert (verdicts(database_url), given_up) == (once, [True])


def test_a_refusal_is_recorded_in_both_languages_whichever_the_client_asked(services: Services, store: Store) -> None:
    """The answer is in English; the zh-CN report must still read Chinese."""
    app = create_app(services=services, secure=False)
    assert app.test_client().get("/fhir/Observation/nope", headers={"Accept-Language": "en"}).status_code == 404
    app.extensions["yiyang.exchanges"].flush()
    with store.reading() as tx:
        texts = tx.sql.one("SELECT text_zh, text_en FROM exchange_issue WHERE rule = 'http.not-found'")
    assert (texts[0].endswith("不存在"), texts[1].endswith("does not exist")) == (True, True)


def test_a_report_read_while_exchanges_come_in_agrees_with_itself(store: Store) -> None:
    """The report's figures are several statements: on PostgreSQL each read what was committed
    by then, so exchanges landing in between were in the failing list's total but not in the
    summary it is the detail of.  Each report must be of one moment."""
    stop = threading.Event()

    def keep_failing() -> None:
        while not stop.is_set():
            append(store, judged(CHECKSUM).finished(HIS, 422, at(DAY)))

    writer = threading.Thread(target=keep_failing)
    writer.start()
    try:
        reports = [report_and_details(store, WHOLE, "en")[0] for _ in range(40)]
    finally:
        stop.set()
        writer.join()
    assert [r.summary.failed for r in reports] == [r.exchanges_total for r in reports]


def test_an_issue_found_after_validation_by_a_write_run_again_is_noted_once() -> None:
    """A write its store runs again (a deadlock PostgreSQL gave up) judges the moved birth
    date again: the exchange records the issue once."""
    moved = Issue("warning", "rule.birth-date-after-events", "Patient.birthDate", {"birthDate": "1965-01-01"})
    collector = Collector()
    token = activate(collector)
    try:
        found_after([moved])
        found_after([moved])
    finally:
        deactivate(token)
    assert [(row[1], row[2], row[3]) for row in collector.issues] == [
        ("warning", "rule.birth-date-after-events", "Patient.birthDate")
    ]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # SQLite's plans, traced
def test_a_report_over_most_exchanges_counts_its_rules_from_the_index_in_their_order(store: Store) -> None:
    """By the exchange id range each issue was looked up and sorted into its group: 2 s of
    CPU for each count at a million issues, for every report and page (0023: 0.2–0.45 s)."""
    sample(store)
    statements: list[str] = []
    with store.reading() as tx:
        tx.sql.connection.set_trace_callback(statements.append)  # type: ignore[attr-defined]
        try:
            tx.exchanges.rule_counts(ExchangeFilter())
            tx.exchanges.location_counts(ExchangeFilter())
        finally:
            tx.sql.connection.set_trace_callback(None)  # type: ignore[attr-defined]
        plans = [str(tx.sql.all(f"EXPLAIN QUERY PLAN {sql}")) for sql in statements if "GROUP BY" in sql]
    assert [("COVERING INDEX exchange_issue_groups" in plan) for plan in plans] == [True, True]

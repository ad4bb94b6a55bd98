"""Reports as data and their renderers: pass rates, trends, rules with their locations,
refusals apart from rule failures; HTML that fetches nothing and draws its charts inline;
JSON that meets conformance/report.schema.json; JUnit that CI reads; CSV and Excel that
never run a participant's text as a formula.

The wording comes from the gateway's catalog, as the command line and the API pass it."""

from __future__ import annotations

import csv
import io
import json
import re
import xml.etree.ElementTree as ET
from typing import Any

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conformance.report import render_json as render_json_module
from conformance.report.aggregate import (
    CheckedResource,
    ExchangeCount,
    Facts,
    LocationCount,
    RuleCount,
    exchange_report,
    file_report,
    iso_week,
    tally,
)
from conformance.report.model import Counts, ExchangeDetail, Finding, Report, ResourceVerdict, Result, Section, Verdict
from conformance.report.render_html import render_exchange_html, render_html
from conformance.report.render_json import exchange_document, iter_json, render_json, schema
from conformance.report.render_junit import render_junit
from conformance.report.render_tabular import render_csv, render_xlsx, tables
from conformance.report.svg import bar_chart, trend_chart
from gateway.reporting import words_in

ZH, EN = words_in("zh-CN"), words_in("en")
PATIENT = "http://fhir.yiyang.cn/StructureDefinition/yy-patient"
CHECKSUM = Finding("error", "rule.id-card-checksum", "Patient.identifier[0].value", "校验位错误", "Patient/p1")


def exchange(
    exchange_id: int, verdict: str = "pass", client: str = "his", day: str = "2026-11-30", **changes: Any
) -> ExchangeDetail:
    failed = verdict == "fail"
    fields: dict[str, Any] = {
        "id": str(exchange_id),
        "recorded": f"{day}T02:00:{exchange_id % 60:02d}.000000Z",
        "day": day,
        "client": client,
        "organization": f"{client}-org",
        "source": "hospital",
        "channel": "rest",
        "interaction": "create",
        "status": 201 if not failed else 422,
        "verdict": verdict,
        "resource_types": ("Patient",),
        "resources": 1,
        "errors": 1 if failed else 0,
        "warnings": 0,
        "verdicts": (ResourceVerdict("Patient", f"p{exchange_id}", PATIENT, not failed, int(failed), 0),),
        "findings": (CHECKSUM,) if failed else (),
    }
    fields.update(changes)
    return ExchangeDetail(**fields)


def report_of(*exchanges: ExchangeDetail) -> Report:
    return exchange_report(tally(exchanges), [("report.scope.since", "2026-11-01")], "2026-12-01T08:00:00+08:00")


SAMPLE = report_of(
    exchange(1),
    exchange(2, "fail"),
    exchange(3, "fail", client="ecp", day="2026-12-01"),
    exchange(4, "error", client="ecp", findings=(Finding("error", "http.forbidden-scope", "", "缺少权限"),)),
    exchange(5, "skip", verdicts=()),
)


def checked(position: str, *findings: Finding, file: str = "export/Patient.ndjson") -> CheckedResource:
    return CheckedResource(file, position, "Patient", position.replace(" ", "-"), (PATIENT,), findings)


#: three failing exchanges of which the report lists the newest (its limit is 1)
CUT = exchange_report(
    tally([exchange(n, "fail") for n in (1, 2, 3)], failing_limit=1),
    [("report.scope.since", "2026-11-01")],
    "2026-12-01T08:00:00+08:00",
)
#: three failing exchanges, all listed
THREE_FAILED = report_of(*(exchange(n, "fail") for n in (1, 2, 3)))
CUT_WORDS = {
    "zh-CN": "仅列出最近的 1 个不通过交换（共 3 个，另有 2 个未列出）",
    "en": "Showing the newest 1 of 3 failing exchanges (2 more not listed)",
}


FILES = file_report(
    [checked("line 1"), checked("line 2", CHECKSUM), checked("line 1", file="export/Encounter.ndjson")],
    [("report.scope.files", "export")],
    "2026-12-01T08:00:00+08:00",
)


# -- building ----------------------------------------------------------------------------------
def test_pass_rate_counts_only_what_was_judged() -> None:
    assert SAMPLE.summary.rate == pytest.approx(1 / 3)


def test_participants_are_listed_worst_pass_rate_first() -> None:
    section = SAMPLE.section("participants")
    assert [r.label for r in section.results] == ["ecp", "his"]


def test_a_participants_counts_split_by_verdict() -> None:
    his = next(r for r in SAMPLE.section("participants").results if r.label == "his")
    assert his.counts == Counts(passed=1, failed=1, skipped=1)


def test_days_roll_up_into_iso_weeks() -> None:
    assert [r.label for r in SAMPLE.section("trend-week").results] == ["2026-W49"]


def test_iso_week_of_a_sunday_is_the_week_it_ends() -> None:
    assert iso_week("2026-11-29") == "2026-W48"


def test_rules_list_where_they_were_broken() -> None:
    rule = SAMPLE.section("rules").results[0]
    assert (rule.label, rule.occurrences, rule.examples) == (
        "rule.id-card-checksum",
        2,
        ("Patient.identifier[0].value",),
    )


def test_a_refusals_reason_is_not_a_rule_broken() -> None:
    assert [r.label for r in SAMPLE.section("refusals").results] == ["http.forbidden-scope"]


def test_a_warning_on_a_refused_requests_content_is_no_reason_for_the_refusal() -> None:
    """A 403 whose Encounter lacked a narrative listed dom-6's warning among the refusals."""
    rules = [
        RuleCount("http.forbidden-organization", "error", "error", 1, 1, "o"),
        RuleCount("invariant.failed", "warning", "error", 1, 1, "w"),
    ]
    report = exchange_report(Facts([], [], rules, []), [], "now")
    assert [r.label for r in report.section("refusals").results] == ["http.forbidden-organization"]


def test_a_rules_examples_are_those_of_its_own_severity() -> None:
    """A rule broken as an error in one place and as a warning in many shows where it erred."""
    rules = [
        RuleCount("invariant.failed", "error", "fail", 1, 1, "e"),
        RuleCount("invariant.failed", "warning", "pass", 9, 9, "w"),
    ]
    locations = [
        LocationCount("invariant.failed", "error", "Patient", "fail", 1),
        LocationCount("invariant.failed", "warning", "Organization", "pass", 9),
    ]
    report = exchange_report(Facts([], [], rules, locations), [], "now")
    first = report.section("rules").results[0]
    assert (first.severity, first.examples) == ("error", ("Patient",))


def test_rules_are_ordered_errors_first_then_by_frequency() -> None:
    rules = [
        RuleCount("warn.often", "warning", "pass", 9, 9, "w"),
        RuleCount("error.rare", "error", "fail", 1, 1, "e"),
        RuleCount("error.often", "error", "fail", 5, 3, "e"),
    ]
    facts = Facts([], [], rules, [LocationCount("error.often", "error", "Patient.x", "fail", 5)])
    report = exchange_report(facts, [], "now")
    assert [r.label for r in report.section("rules").results] == ["error.often", "error.rare", "warn.often"]


def test_the_same_rule_in_passing_and_failing_exchanges_is_one_row() -> None:
    rules = [RuleCount("r", "warning", "pass", 2, 2, "b"), RuleCount("r", "warning", "fail", 3, 1, "a")]
    report = exchange_report(Facts([], [], rules, []), [], "now")
    row = report.section("rules").results[0]
    assert (row.occurrences, row.affected, row.note) == (5, 3, "a")


def test_profiles_count_resources_not_exchanges() -> None:
    facts = tally([exchange(1, verdicts=(ResourceVerdict("Patient", "", PATIENT, True, 0, 0, 250),))])
    report = exchange_report(facts, [], "now")
    assert report.section("profiles").results[0].counts == Counts(passed=250)


def test_failing_exchanges_are_drilled_down_to_newest_first() -> None:
    assert [r.link for r in SAMPLE.section("exchanges").results] == ["3", "2"]


def test_exchange_counts_are_grouped_by_participant_source_day_and_verdict() -> None:
    assert tally([exchange(1), exchange(2)]).counts == [
        ExchangeCount("his", "his-org", "hospital", "2026-11-30", "pass", 2)
    ]


def test_a_file_report_has_one_result_per_resource() -> None:
    assert [len(s.results) for s in FILES.sections if s.id.startswith("file:")] == [2, 1]


def test_a_resource_with_an_error_fails() -> None:
    first = FILES.sections[0]
    assert [r.verdict for r in first.results] == ["pass", "fail"]


# -- HTML ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("lang", ["zh-CN", "en"])
def test_a_file_report_defines_its_pass_rate_by_its_resources_not_by_requests(lang: str) -> None:
    """The check of exported files explained its figures with the exchange report's words:
    requests refused with 401/403/404 and reads with nothing to validate, which a file has not."""
    words = words_in(lang)
    page = render_html(FILES, words, lang)
    assert words("report.rate-definition.files") in page
    assert words("report.rate-definition") not in page


def test_html_fetches_nothing() -> None:
    page = render_html(SAMPLE, ZH, "zh-CN")
    assert re.findall(r"<script|<link|<img|<iframe|\bsrc=|url\(|@import", page) == []


def test_html_draws_the_trend_and_the_failures_by_rule_inline() -> None:
    page = render_html(SAMPLE, ZH, "zh-CN")
    assert ('class="chart-trend"' in page, 'class="chart-bars"' in page) == (True, True)


def test_html_links_each_failing_exchange_to_its_detail() -> None:
    page = render_html(SAMPLE, EN, "en")
    assert all(f'id="exchange-{n}"' in page for n in re.findall(r'href="#exchange-(\d+)"', page))


def test_html_marks_a_refused_batch_entrys_finding_with_its_verdict() -> None:
    """As the JSON's ``"verdict": "error"`` does: the drill-down showed a 412's reason as
    one more rule broken by the batch's content."""
    stale = Finding("error", "http.version-conflict", "Bundle.entry[1]", "版本不符", verdict="error")
    page = render_html(report_of(exchange(1, "fail", findings=(CHECKSUM, stale))), EN, "en")
    rows = re.findall(r"<tr><td>(.*?)</td></tr>", page.split('id="exchange-1"', 1)[1])
    marked = ["Refused / error" in row for row in rows if "http.version-conflict" in row or "checksum" in row]
    assert marked == [False, True]


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
def test_html_says_how_many_failing_exchanges_were_left_out(lang: str) -> None:
    assert CUT_WORDS[lang] in render_html(CUT, words_in(lang), lang)


#: an exchange with more issues than a report file lists of one (LISTED_FINDINGS = 200)
NOISY = exchange(9, "fail", findings=(CHECKSUM,) * 250)


def test_a_report_file_shows_only_its_newest_failing_exchanges_in_full() -> None:
    """Every failing exchange listed was drawn in full: a thousand of them, each with up to
    10,000 issues, was a file of ten million rows."""
    page = render_html(THREE_FAILED, EN, "en", details=1)
    assert re.findall(r'<article class="exchange" id="exchange-(\d+)"', page) == ["3"]


@pytest.mark.parametrize(
    ("lang", "said"),
    [
        ("zh-CN", "此处只展开最近的 1 个不通过交换的明细，另有 2 个未展开"),
        ("en", "Detailed here: the newest 1 of the failing exchanges listed; 2 more are not"),
    ],
)
def test_a_report_file_says_how_many_failing_exchanges_it_did_not_show_in_full(lang: str, said: str) -> None:
    assert said in render_html(THREE_FAILED, words_in(lang), lang, details=1)


def test_a_report_file_detailing_no_exchange_says_how_many_it_did_not() -> None:
    page = render_html(THREE_FAILED, EN, "en", details=0)
    assert "Detailed here: the newest 0 of the failing exchanges listed; 3 more are not" in page


def test_a_report_file_links_no_exchange_it_does_not_show_in_full() -> None:
    page = render_html(THREE_FAILED, EN, "en", details=1)
    assert re.findall(r'href="#exchange-(\d+)"', page) == ["3"]


def test_a_report_files_drill_down_lists_an_exchanges_first_issues_and_counts_the_rest() -> None:
    page = render_html(report_of(NOISY), EN, "en")
    drill_down = page.split('id="exchange-9"', 1)[1]
    assert (drill_down.count("rule.id-card-checksum"), "50 more not listed" in drill_down) == (200, True)


def test_an_exchanges_own_page_lists_every_issue() -> None:
    assert render_exchange_html(NOISY, EN, "en").count("rule.id-card-checksum") == 250


def test_html_is_chinese_by_default_and_english_on_request() -> None:
    titles = [
        re.search(r"<h1>(.*?)</h1>", render_html(SAMPLE, words, lang)).group(1)
        for words, lang in ((ZH, "zh-CN"), (EN, "en"))
    ]
    assert titles == ["医养结合数据交换一致性报告", "Conformance report on data exchanges"]


def test_html_escapes_what_participants_sent() -> None:
    hostile = report_of(exchange(1, "fail", client="<script>alert(1)</script>"))
    assert "<script>alert" not in render_html(hostile, EN, "en")


def test_a_trend_without_judged_exchanges_says_so_instead_of_drawing() -> None:
    assert "<path" not in trend_chart([("2026-11-30", Counts(skipped=3))], "trend", "none")


def test_a_trend_leaves_a_gap_where_nothing_was_judged() -> None:
    points = [("d1", Counts(passed=1)), ("d2", Counts()), ("d3", Counts(failed=1))]
    path = re.search(r'<path d="([^"]+)"', trend_chart(points, "trend", "none")).group(1)
    assert [step[0] for step in path.split()] == ["M", "M"]


def test_bars_are_as_long_as_their_counts_relative_to_the_largest() -> None:
    widths = [
        float(w)
        for w in re.findall(
            r'<rect x="\d+" y="[\d.]+" width="([\d.]+)"', bar_chart([("a", 4), ("b", 2)], "bars", "none")
        )
    ]
    assert widths[0] == pytest.approx(2 * widths[1])


# -- JSON ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("report", [SAMPLE, FILES], ids=["exchanges", "files"])
def test_json_meets_its_schema(report: Report) -> None:
    jsonschema.validate(json.loads(render_json(report, EN, "en")), schema())


def test_the_schema_is_itself_valid() -> None:
    jsonschema.Draft202012Validator.check_schema(schema())


_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)
_findings = st.builds(Finding, st.sampled_from(["fatal", "error", "warning"]), _text, _text, _text, _text)
_exchanges = st.builds(
    exchange,
    st.integers(1, 10_000),
    st.sampled_from(["pass", "fail", "error", "skip"]),
    client=_text,
    day=st.dates().map(lambda d: d.isoformat()),
    findings=st.lists(_findings, max_size=3).map(tuple),
)


@settings(max_examples=25, deadline=None)
@given(st.lists(_exchanges, max_size=6))
def test_json_of_any_exchanges_meets_the_schema(exchanges: list[ExchangeDetail]) -> None:
    jsonschema.validate(json.loads(render_json(report_of(*exchanges), ZH, "zh-CN")), schema())


def test_json_reads_its_failing_exchanges_once() -> None:
    """It lists each twice (the exchanges section's results and ``exchanges``): read twice, the
    store's reads of their issues were made twice for every download."""
    reads = []

    def read() -> tuple[ExchangeDetail, ...]:
        reads.append(SAMPLE.exchanges)
        return SAMPLE.exchanges

    "".join(iter_json(SAMPLE, EN, "en", read))
    assert len(reads) == 1


@settings(max_examples=25, deadline=None)
@given(st.lists(_exchanges, max_size=6))
def test_json_lists_each_failing_exchange_in_full_as_read(exchanges: list[ExchangeDetail]) -> None:
    report = report_of(*exchanges)
    assert json.loads(render_json(report, EN, "en"))["exchanges"] == [exchange_document(e) for e in report.exchanges]


def test_json_keeps_its_exchanges_in_a_file_past_its_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(render_json_module, "KEPT_IN_MEMORY", 1)
    document = json.loads(render_json(SAMPLE, EN, "en"))
    assert document["exchanges"] == [exchange_document(e) for e in SAMPLE.exchanges]


# -- JUnit --------------------------------------------------------------------------------------
def test_junit_has_one_testcase_per_checked_resource() -> None:
    root = ET.fromstring(render_junit(FILES, EN))
    cases = [case for suite in root if suite.get("id", "").startswith("file:") for case in suite]
    assert len(cases) == 3


def test_junit_fails_the_testcase_of_a_resource_with_an_error() -> None:
    root = ET.fromstring(render_junit(FILES, EN))
    failed = [case.get("name") for case in root.iter("testcase") if case.find("failure") is not None]
    assert "Patient/line-2" in failed


def test_junit_totals_add_up_over_its_suites() -> None:
    root = ET.fromstring(render_junit(SAMPLE, EN))
    assert int(root.get("tests")) == sum(int(suite.get("tests")) for suite in root)


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
def test_junit_says_the_failing_exchanges_were_cut_and_how_many_were_left_out(lang: str) -> None:
    """A CI job read the testsuite of a thousand failing exchanges as all there were."""
    suite = next(s for s in ET.fromstring(render_junit(CUT, words_in(lang))) if s.get("id") == "exchanges")
    assert suite.findtext("system-out") == CUT_WORDS[lang]


def test_junit_gives_the_listed_and_total_failing_exchanges_to_machines() -> None:
    suite = next(s for s in ET.fromstring(render_junit(CUT, EN)) if s.get("id") == "exchanges")
    assert {p.get("name"): p.get("value") for p in suite.iter("property")} == {
        "failing-listed": "1",
        "failing-total": "3",
    }


@pytest.mark.parametrize(("lang", "severity"), [("zh-CN", "错误"), ("en", "Error")])
def test_junit_words_a_findings_severity_in_the_reports_language(lang: str, severity: str) -> None:
    """Its text read ``error [rule…]`` in a Chinese report, as the spreadsheets did once."""
    suite = next(s for s in ET.fromstring(render_junit(SAMPLE, words_in(lang))) if s.get("id") == "exchanges")
    failure = next(suite.iter("failure"))
    assert (failure.text or "").splitlines()[0] == (
        f"{severity} [rule.id-card-checksum] Patient/p1 Patient.identifier[0].value: 校验位错误"
    )


def test_junit_leaves_trends_out() -> None:
    root = ET.fromstring(render_junit(SAMPLE, EN))
    assert {suite.get("id") for suite in root} == {
        "participants",
        "sources",
        "profiles",
        "rules",
        "refusals",
        "exchanges",
    }


# -- CSV and Excel ------------------------------------------------------------------------------
def test_csv_starts_with_a_byte_order_mark_for_excel() -> None:
    assert render_csv(SAMPLE, "scorecard", ZH).startswith("\ufeff参与方,")


def test_csv_lists_one_row_per_issue_of_each_failing_exchange() -> None:
    rows = list(csv.reader(io.StringIO(render_csv(SAMPLE, "failing", EN).lstrip("\ufeff"))))
    assert [(row[0], row[10]) for row in rows[1:]] == [("3", "rule.id-card-checksum"), ("2", "rule.id-card-checksum")]


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
def test_a_csv_cut_at_the_limit_ends_saying_how_many_were_left_out(lang: str) -> None:
    """The failing table listed the newest exchanges alone and said nothing: an auditor read
    it as every failure in the period."""
    rows = list(csv.reader(io.StringIO(render_csv(CUT, "failing", words_in(lang)).lstrip("\ufeff"))))
    assert rows[-1] == [CUT_WORDS[lang]]


def test_a_csv_listing_every_failing_exchange_has_no_note() -> None:
    rows = list(csv.reader(io.StringIO(render_csv(SAMPLE, "failing", EN).lstrip("\ufeff"))))
    assert rows[-1][0] == "2"


def csv_rows(report: Report, table: str, lang: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(render_csv(report, table, words_in(lang)).lstrip("\ufeff"))))


@pytest.mark.parametrize(("lang", "shown"), [("zh-CN", "错误"), ("en", "Error")])
def test_a_csvs_severity_is_shown_in_the_reports_language(lang: str, shown: str) -> None:
    """A zh-CN table showed ``error`` among its Chinese columns."""
    assert csv_rows(SAMPLE, "failing", lang)[1][9] == shown


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
def test_a_csv_keeps_the_severity_code_for_scripts_in_a_column_of_its_own(lang: str) -> None:
    assert [row[-1] for row in csv_rows(SAMPLE, "failing", lang)[1:]] == ["error", "error"]


def test_a_csv_lists_an_exchanges_errors_before_its_warnings() -> None:
    """Thousands of warnings of one exchange, in the order they were recorded, came before the
    error it failed for (the workbook's sheet is the same table)."""
    noted = [
        Finding(severity, f"rule.{n}", "Patient.name", "…") for n, severity in enumerate(("warning", "error", "fatal"))
    ]
    report = report_of(exchange(1, "fail", findings=(noted[0], noted[1], noted[0], noted[2])))
    assert [row[-1] for row in csv_rows(report, "failing", "en")[1:]] == ["error", "fatal", "warning", "warning"]


def test_a_checked_files_csv_shows_its_verdicts_in_the_reports_language() -> None:
    assert [row[3] for row in csv_rows(FILES, "failing", "zh-CN")[1:]] == ["不通过"]


def test_a_checked_files_csv_keeps_its_verdict_codes_for_scripts() -> None:
    assert [row[-2:] for row in csv_rows(FILES, "failing", "zh-CN")[1:]] == [["fail", "error"]]


def test_a_test_runs_csv_words_a_test_that_could_not_run_as_the_kit_means_it() -> None:
    """A test kit's error is a test that could not be completed, not a request refused."""
    broken = Result("security.no-token", "security.no-token", Verdict.ERROR, findings=(CHECKSUM,))
    run = Report("testkit", "now", (), Counts(errors=1), (Section("security", "t", "l", (broken,)),))
    assert csv_rows(run, "failing", "zh-CN")[1][3] == "出错"


def test_csv_never_hands_a_formula_to_the_spreadsheet() -> None:
    hostile = report_of(exchange(1, "fail", client='=HYPERLINK("http://x")'))
    rows = list(csv.reader(io.StringIO(render_csv(hostile, "failing", EN).lstrip("\ufeff"))))
    assert rows[1][2].startswith("'=")


def test_xlsx_holds_the_failing_exchanges_and_the_scorecard() -> None:
    from openpyxl import load_workbook

    book = load_workbook(io.BytesIO(render_xlsx(SAMPLE, ZH)))
    assert book.sheetnames == ["不通过明细", "评分卡", "报告范围"]


@pytest.mark.parametrize(("lang", "since"), [("zh-CN", "起始日期"), ("en", "From")])
def test_a_workbook_says_what_period_and_filters_it_covers(lang: str, since: str) -> None:
    """The workbook named neither its period nor its filters: one hospital's month read as
    anyone's."""
    from openpyxl import load_workbook

    sheet = load_workbook(io.BytesIO(render_xlsx(SAMPLE, words_in(lang)))).worksheets[-1]
    assert list(sheet.iter_rows(values_only=True))[2:] == [(since, "2026-11-01")]


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
def test_a_workbook_cut_at_the_limit_says_how_many_were_left_out(lang: str) -> None:
    from openpyxl import load_workbook

    sheet = load_workbook(io.BytesIO(render_xlsx(CUT, words_in(lang)))).worksheets[0]
    last = list(sheet.iter_rows(values_only=True))[-1]
    assert last[0] == CUT_WORDS[lang]


def test_a_workbooks_severities_are_shown_in_the_reports_language() -> None:
    from openpyxl import load_workbook

    sheet = load_workbook(io.BytesIO(render_xlsx(SAMPLE, ZH)))["不通过明细"]
    assert [row[9] for row in sheet.iter_rows(min_row=2, values_only=True)] == ["错误", "错误"]


def test_a_sheet_holding_more_rows_than_excel_does_stops_short_and_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    """openpyxl wrote every row, past the 1,048,576 an Excel sheet holds, which Excel does not
    show: a failing list cut without a word (SHEET_ROWS made 6 here)."""
    from openpyxl import load_workbook

    from conformance.report import render_tabular

    monkeypatch.setattr(render_tabular, "SHEET_ROWS", 6, raising=False)
    five = report_of(*(exchange(n, "fail") for n in range(1, 6)))
    sheet = load_workbook(io.BytesIO(render_xlsx(five, EN))).worksheets[0]
    assert [row[0] for row in sheet.iter_rows(values_only=True)] == [
        "Exchange",
        5,
        4,
        3,
        2,
        "This sheet holds the first 4 rows (an Excel sheet holds at most 6); rows not written here: 1; "
        "the CSV and JSON formats have no such limit",
    ]


def test_xlsx_keeps_a_formula_looking_text_as_text() -> None:
    from openpyxl import load_workbook

    hostile = report_of(exchange(1, "fail", client="=1+1"))
    sheet = load_workbook(io.BytesIO(render_xlsx(hostile, EN)))["Failing"]
    assert (sheet["C2"].value, sheet["C2"].data_type) == ("=1+1", "s")


def test_the_scorecard_of_checked_files_has_a_row_per_file() -> None:
    assert [row[0] for row in tables(FILES)["scorecard"].rows] == ["export/Patient.ndjson", "export/Encounter.ndjson"]


@pytest.mark.parametrize(("rate", "shown"), [(2 / 32, "6.3%"), (1 / 8, "12.5%"), (0.1235, "12.4%"), (1.0, "100.0%")])
def test_a_pass_rate_rounds_halves_up(rate: float, shown: str) -> None:
    """2 of 32 passed (6.25 %) showed as 6.2 %: a float rounds half to even."""
    from conformance.report.svg import percent

    assert percent(rate) == shown

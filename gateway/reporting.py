"""The gateway's side of the auditors' report: what the store holds, fed to the pure report
builder in ``conformance/report``; shared by ``yiyang report`` and the served ``/reports``.

The figures come from grouped SQL (see ``gateway/storage/exchange_tables.py``); only the
failing exchanges shown for drill-down are read row by row, a batch at a time as the file is
written (:func:`report_and_details`).
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from html import escape
from typing import IO, Any, Protocol

from conformance.report.aggregate import (
    ExchangeCount,
    Facts,
    LocationCount,
    ProfileCount,
    RuleCount,
    exchange_report,
)
from conformance.report.model import ExchangeDetail, Finding, Listed, Report, ResourceVerdict, Wording
from conformance.report.render_html import DETAILED, LISTED_FINDINGS, Link, iter_html
from conformance.report.render_json import iter_json
from conformance.report.render_junit import iter_junit
from conformance.report.render_tabular import iter_csv, write_xlsx
from gateway.exchanges import CHINA, KEEP
from gateway.messages import text
from gateway.security.audit import ANONYMOUS
from gateway.security.clients import ROLES
from gateway.storage.exchange_tables import ExchangeFilter
from mappings.specs import SOURCES

#: the formats every report is written in
FORMATS = ("html", "json", "junit", "xlsx", "csv")
#: failing exchanges shown in full unless asked otherwise
DEFAULT_LIMIT = 1000
#: the period /reports covers when not asked: the last 30 days
DEFAULT_DAYS = 30
_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


class _Readable(Protocol):
    def reading(self, *, consistent: bool = False) -> Any: ...


def words_in(lang: str) -> Wording:
    """The report's wording in ``lang`` from the gateway's one catalog."""

    def words(message_id: str, params: Mapping[str, Any] | None = None) -> str:
        return text(message_id, lang, dict(params or {}))

    return words


def parse_day(value: str) -> date:
    """A calendar day written YYYY-MM-DD; ValueError for anything else (a report silently
    covering another period than asked would mislead its reader)."""
    if not _DAY.fullmatch(value):
        raise ValueError(f"{value!r} is not a day written YYYY-MM-DD")
    return date.fromisoformat(value)


@dataclass(frozen=True, slots=True)
class Rendering:
    """How a report is written, one value passed through every writer: in which of
    :data:`FORMATS` and language; which table a CSV holds (``failing`` or ``scorecard``; an
    Excel workbook holds both); ``link``, ``nav`` and ``details`` shape the HTML page (see
    ``render_html``); the failing exchanges are read from ``exchanges`` when given (see
    :func:`report_and_details`), else the report's own."""

    fmt: str
    lang: str
    table: str = "failing"
    link: Link | None = None
    nav: str = ""
    details: int = DETAILED
    exchanges: Listed | None = None


def render(report: Report, rendering: Rendering) -> bytes:
    """``report`` written whole (see :func:`write_report`)."""
    out = io.BytesIO()
    write_report(out, report, rendering)
    return out.getvalue()


def write_report(target: IO[bytes], report: Report, rendering: Rendering) -> None:
    """``report`` to ``target`` as it is written."""
    if rendering.fmt == "xlsx":
        write_xlsx(report, words_in(rendering.lang), target, rendering.exchanges)
        return
    for chunk in text_chunks(report, rendering):
        target.write(chunk.encode())


def text_chunks(report: Report, rendering: Rendering) -> Iterator[str]:
    """``report`` in one of the text formats (all but xlsx), a piece at a time."""
    fmt, lang, exchanges = rendering.fmt, rendering.lang, rendering.exchanges
    words = words_in(lang)
    if fmt == "html":
        return iter_html(report, words, lang, rendering.link, rendering.nav, rendering.details, exchanges)
    if fmt == "json":
        return iter_json(report, words, lang, exchanges)
    if fmt == "junit":
        return iter_junit(report, words, exchanges)
    if fmt == "csv":
        return iter_csv(report, rendering.table, words, exchanges)
    raise ValueError(f"unknown report format {fmt!r}")


def incomplete(fmt: str, lang: str) -> str:
    """What a text report written as it is read ends with when an error stopped it: a CSV's
    last row says so (a CSV cut short is still a CSV, read as complete); the JSON and XML
    documents are left unclosed, so that no parser takes them for whole, and say so in a way
    their format allows; the HTML in a paragraph."""
    said = words_in(lang)("report.incomplete")
    if fmt == "csv":
        return '"' + said.replace('"', '""') + '"\r\n'
    if fmt == "junit":
        return "\n<!-- " + said.replace("--", "\u2013") + " -->\n"
    if fmt == "html":
        return f'<p class="truncated">{escape(said)}</p>'
    return "\n" + said + "\n"


def generated_now() -> str:
    return datetime.now(CHINA).isoformat(timespec="seconds")


#: the kinds of system an exchange records as its source: a legacy source (the command line's,
#: ``$ingest``'s and MLLP's records), the role of a REST client, or ``anonymous`` for a request
#: refused before it was authenticated (which the report lists among its sources: a filter on
#: it must be answered).  A filter on anything else matches nothing, and its empty report read
#: as a quiet period
REPORT_SOURCES = tuple(dict.fromkeys((*SOURCES, *ROLES, ANONYMOUS)))


def recorded_for(store: _Readable, organization: str) -> bool:
    """Whether an exchange can be recorded for ``organization``: a client is registered for it
    (revoked or not; none is ever deleted), or it is "" (the command line's records).  The
    organisation of every exchange is its client's, so a filter on any other, a typo, matches
    nothing, and its empty report read as a quiet period."""
    if not organization:
        return True
    with store.reading() as tx:
        return bool(tx.security.acts_for(organization))


@dataclass(frozen=True, slots=True)
class ReportQuery:
    """What a report covers: inclusive days (China Standard Time), optional filters, and how
    many failing exchanges to show in full."""

    since: date
    until: date
    organization: str | None = None
    source: str | None = None
    limit: int = DEFAULT_LIMIT

    @property
    def filter(self) -> ExchangeFilter:
        return ExchangeFilter(self.since.isoformat(), self.until.isoformat(), self.organization, self.source)

    @property
    def scope(self) -> list[tuple[str, str]]:
        found = [("report.scope.since", self.since.isoformat()), ("report.scope.until", self.until.isoformat())]
        if self.organization is not None:
            found.append(("report.scope.org", self.organization))
        if self.source is not None:
            found.append(("report.scope.source", self.source))
        return found


#: what a report reads of its failing exchanges at a time: about this many issue (and
#: verdict) rows, and no more exchanges than this, so that a download of 10,000 exchanges of
#: 10,000 issues each holds no more than one batch, whatever it lists
BATCH_ROWS = 5_000
BATCH_EXCHANGES = 200


class ReportIncomplete(RuntimeError):
    """The store no longer held what a report being written had planned to list (its
    exchanges purged meanwhile): the file must say it is incomplete, not end quietly."""


@dataclass(frozen=True, slots=True)
class Listing:
    """Which issues of each listed failing exchange a report holds: ``taken`` errors (and
    fatal issues) and other issues of the ``recorded`` ones, and how many issues a download's
    bound left out (``omitted``; what the report says it left out)."""

    recorded: Mapping[int, tuple[int, int]]
    taken: Mapping[int, tuple[int, int]]
    omitted: int

    @property
    def listed(self) -> int:
        return sum(map(sum, self.taken.values()))

    def partial(self, exchange_id: int) -> bool:
        return self.taken[exchange_id] != self.recorded.get(exchange_id, (0, 0))


def listing(
    recorded: Mapping[int, tuple[int, int]], ids: Sequence[int], most: int | None = None, each: int | None = None
) -> Listing:
    """What a report lists of the exchanges ``ids`` (newest first), given how many errors and
    other issues each ``recorded``: no more than ``each`` per exchange (an HTML file's
    drill-down, its errors first) and ``most`` in all, errors first, newest exchanges first,
    then their other issues likewise — a download of a thousand exchanges of 10,000 issues
    each held them all, a gigabyte, and one cut anyhow could list warnings and leave out the
    errors an exchange failed for.  Only the issues a per-exchange cut leaves out are not
    counted as omitted: the HTML says "N more" beside each exchange."""
    taken = {exchange_id: [0, 0] for exchange_id in ids}
    left = most
    for kind in (0, 1):
        for exchange_id in ids:
            count = recorded.get(exchange_id, (0, 0))[kind]
            if each is not None:
                count = min(count, each - sum(taken[exchange_id]))
            if left is not None:
                count = min(count, left)
                left -= count
            taken[exchange_id][kind] = count
    whole = (sum(recorded.get(i, (0, 0))) for i in ids)
    omitted = sum(count if each is None else min(count, each) for count in whole) - sum(map(sum, taken.values()))
    return Listing(
        recorded, {exchange_id: (errors, others) for exchange_id, (errors, others) in taken.items()}, omitted
    )


def report_and_details(
    store: _Readable,
    query: ReportQuery,
    lang: str,
    generated: str | None = None,
    most_issues: int | None = None,
    details: int | None = None,
    each: int | None = None,
) -> tuple[Report, Listed]:
    """The auditors' report over the exchanges ``query`` covers, its failing exchanges holding
    how many issues each recorded, and the way to read them in full as a file is written
    (once a file: the JSON document, which lists them twice, keeps its second listing aside):
    the newest ``details`` of them (all when None), each with no more than ``each`` issues,
    ``most_issues`` in all (see :func:`listing`), with their verdicts.  The figures are read
    in a few grouped rows; the failing exchanges are read in batches (:data:`BATCH_ROWS`)
    while they are written, never all at once: memory stays flat however many exchanges and
    issues a report lists."""
    scope = query.filter
    zh = lang == "zh-CN"
    # one snapshot for every figure: on PostgreSQL a plain reading lets each statement see the
    # exchanges committed by then, and the failing total outran the summary it details
    with store.reading(consistent=True) as tx:
        table = tx.exchanges
        counts = [ExchangeCount(*row) for row in table.counts(scope)]
        profiles = [ProfileCount(*row) for row in table.profile_counts(scope)]
        rules = [
            RuleCount(rule, severity, verdict, count, affected, zh_text if zh else en_text)
            for rule, severity, verdict, count, affected, zh_text, en_text in table.rule_counts(scope)
        ]
        locations = [LocationCount(*row) for row in table.location_counts(scope)]
        rows, total = table.failing(scope, query.limit)
        recorded = table.issue_kinds(int(row[0]) for row in rows)
        purged = table.purged_before()
    detailed = rows if details is None else rows[:details]
    listed = listing(recorded, [int(row[0]) for row in detailed], most_issues, each)
    failing = [_exchange(row, (), (), sum(recorded.get(int(row[0]), (0, 0)))) for row in rows]
    facts = Facts(counts, profiles, rules, locations, failing, total, listed.omitted, listed.listed)
    # a period reaching back before a purge is not a quiet one: its start is no longer on record
    kept = [("report.scope.purged-before", purged)] if purged and purged > query.since.isoformat() else []
    report = exchange_report(facts, [*query.scope, *kept], generated or generated_now())
    return report, lambda: read_details(store, detailed, lang, listed)


def file_report(
    store: _Readable, query: ReportQuery, lang: str, fmt: str, most_issues: int, details: int = DETAILED
) -> tuple[Report, Listed]:
    """The report ``yiyang report`` writes as a file in ``fmt``: an HTML file shows its newest
    ``details`` failing exchanges in full, each with its first :data:`LISTED_FINDINGS` issues
    (errors first); every format lists no more than ``most_issues`` issues in all, as a
    download does."""
    html = fmt == "html"
    return report_and_details(
        store,
        query,
        lang,
        most_issues=most_issues,
        details=details if html else None,
        each=LISTED_FINDINGS if html else None,
    )


def read_details(
    store: _Readable, rows: Sequence[Sequence[Any]], lang: str, listed: Listing
) -> Iterator[ExchangeDetail]:
    """The exchange ``rows`` (``exchange_tables.COLUMNS``) in full, in their order, with the
    issues ``listed`` and their verdicts (which name the resource each issue is about), read
    a batch at a time in one snapshot.  An exchange whose issues are no longer all there
    (purged since the report's figures were read) is a :class:`ReportIncomplete`: a file
    silently missing them would read as complete."""
    with store.reading(consistent=True) as tx:
        table = tx.exchanges
        for batch in _batches(rows, listed):
            ids = [int(row[0]) for row in batch]
            issues: list[Any] = []
            for kind, errors in ((0, True), (1, False)):
                whole = [i for i in ids if 0 < listed.taken[i][kind] == listed.recorded.get(i, (0, 0))[kind]]
                issues += table.issues_of(whole, errors)
                for exchange_id in ids:
                    taken = listed.taken[exchange_id][kind]
                    if 0 < taken < listed.recorded.get(exchange_id, (0, 0))[kind]:
                        issues += table.first_issues(exchange_id, errors, taken)
            found = details(table, batch, lang, issues, listed)
            for exchange in found:
                if len(exchange.findings) != sum(listed.taken[int(exchange.id)]):
                    raise ReportIncomplete(f"exchange {exchange.id} is no longer recorded in full")
            yield from found


def _batches(rows: Sequence[Sequence[Any]], listed: Listing) -> Iterator[Sequence[Sequence[Any]]]:
    """``rows`` in runs of about :data:`BATCH_ROWS` issues and verdicts (an exchange keeps one
    per resource and profile, up to ``KEEP``, estimated here by its resources) and at most
    :data:`BATCH_EXCHANGES` exchanges."""
    start, weight = 0, 0
    for index, row in enumerate(rows):
        weight += sum(listed.taken[int(row[0])]) + min(int(row[11]), KEEP)
        if weight >= BATCH_ROWS or index + 1 - start >= BATCH_EXCHANGES:
            yield rows[start : index + 1]
            start, weight = index + 1, 0
    if start < len(rows):
        yield rows[start:]


def exchange_detail(store: _Readable, exchange_id: int, lang: str) -> ExchangeDetail | None:
    """One recorded exchange in full, or None."""
    with store.reading() as tx:
        row = tx.exchanges.get(exchange_id)
        return details(tx.exchanges, [row], lang)[0] if row else None


def china_time(instant: str) -> str:
    """A stored instant (UTC) as China Standard Time, to the second, as a report shows it: its
    days are China's, and ``2026-12-05T09:21:44.270518Z`` read as a time of day was eight hours
    off for its readers (``2026-12-05T17:21:44+08:00``)."""
    try:
        moment = datetime.fromisoformat(instant.replace("Z", "+00:00"))
    except ValueError:
        return instant
    return moment.astimezone(CHINA).isoformat(timespec="seconds")


def details(
    table: Any,
    rows: Sequence[Sequence[Any]],
    lang: str,
    issues: Sequence[Any] | None = None,
    listed: Listing | None = None,
) -> list[ExchangeDetail]:
    """Exchange rows (``exchange_tables.COLUMNS``) with their verdicts and their issues: the
    ``issues`` rows given (``listed``, see :func:`read_details`), or all they recorded."""
    ids = [int(row[0]) for row in rows]
    verdicts: dict[int, list[ResourceVerdict]] = {}
    subjects: dict[tuple[int, int], str] = {}
    for exchange_id, seq, kind, resource_id, profile, passed, errors, warnings, count in table.verdicts_of(ids):
        verdicts.setdefault(exchange_id, []).append(
            ResourceVerdict(kind, resource_id, profile, bool(passed), errors, warnings, count)
        )
        subjects[(exchange_id, seq)] = f"{kind}/{resource_id}" if resource_id else kind
    findings: dict[int, list[Finding]] = {}
    judged = {int(row[0]): row[9] for row in rows}
    for exchange_id, _, verdict_seq, severity, rule, location, zh_text, en_text, verdict in (
        table.issues_of(ids) if issues is None else issues
    ):
        subject = subjects.get((exchange_id, verdict_seq), "") if verdict_seq is not None else ""
        words = zh_text if lang == "zh-CN" else en_text
        own = verdict if verdict != judged[exchange_id] else ""  # a batch entry's refusal
        findings.setdefault(exchange_id, []).append(Finding(severity, rule, location, words, subject, own))
    return [
        _exchange(
            row,
            verdicts.get(int(row[0]), ()),
            findings.get(int(row[0]), ()),
            sum(listed.recorded.get(int(row[0]), (0, 0))) if listed and listed.partial(int(row[0])) else None,
        )
        for row in rows
    ]


def _exchange(
    row: Sequence[Any],
    verdicts: Sequence[ResourceVerdict],
    findings: Sequence[Finding],
    findings_counted: int | None,
) -> ExchangeDetail:
    (exchange_id, recorded, day, client, organization, source, channel, interaction, status, verdict) = row[:10]
    resource_types, resources, errors, warnings = row[10:14]
    return ExchangeDetail(
        id=str(exchange_id),
        recorded=china_time(recorded),
        day=day,
        client=client,
        organization=organization,
        source=source,
        channel=channel,
        interaction=interaction,
        status=status,
        verdict=verdict,
        resource_types=tuple(resource_types.split()),
        resources=int(resources),
        errors=int(errors),
        warnings=int(warnings),
        verdicts=tuple(verdicts),
        findings=tuple(findings),
        findings_counted=findings_counted,
    )

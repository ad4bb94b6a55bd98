"""The gateway's side of the auditors' report: what the store holds, fed to the pure report
builder in ``conformance/report``; shared by ``yiyang report`` and the served ``/reports``.

The figures come from grouped SQL (see ``gateway/storage/exchange_tables.py``); only the
failing exchanges shown for drill-down are read row by row.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Protocol

from conformance.report.aggregate import ExchangeCount, Facts, LocationCount, ProfileCount, RuleCount, exchange_report
from conformance.report.model import ExchangeDetail, Finding, Report, ResourceVerdict, Wording
from conformance.report.render_html import DETAILED, Link, render_html
from conformance.report.render_json import render_json
from conformance.report.render_junit import render_junit
from conformance.report.render_tabular import render_csv, render_xlsx
from gateway.exchanges import CHINA
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


def render(
    report: Report,
    fmt: str,
    lang: str,
    table: str = "failing",
    link: Link | None = None,
    nav: str = "",
    details: int = DETAILED,
) -> bytes:
    """``report`` in one of :data:`FORMATS`; a CSV holds one table (``failing`` or
    ``scorecard``), an Excel workbook both.  ``link``, ``nav`` and ``details`` shape the HTML
    page (see ``render_html``)."""
    words = words_in(lang)
    if fmt == "html":
        return render_html(report, words, lang, link, nav, details).encode()
    if fmt == "json":
        return render_json(report, words, lang).encode()
    if fmt == "junit":
        return render_junit(report, words).encode()
    if fmt == "xlsx":
        return render_xlsx(report, words)
    if fmt == "csv":
        return render_csv(report, table, words).encode()
    raise ValueError(f"unknown report format {fmt!r}")


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


def build_report(
    store: _Readable,
    query: ReportQuery,
    lang: str,
    generated: str | None = None,
    findings: bool = True,
    most_issues: int | None = None,
) -> Report:
    """The auditors' report over the exchanges ``query`` covers.  Without ``findings`` the
    failing exchanges hold how many issues each recorded, not their verdicts and issues: what
    a page linking to each exchange's own shows, read in a few rows rather than millions.
    With ``most_issues`` they hold no more issues than that in all (see :func:`bounded_issues`)."""
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
        omitted = 0
        if findings:
            ids = [int(row[0]) for row in rows]
            issues, omitted = (
                (table.issues_of(ids), 0) if most_issues is None else bounded_issues(table, ids, most_issues)
            )
            failing = details(table, rows, lang, issues)
        else:
            failing = counted(table, rows)
        purged = table.purged_before()
    facts = Facts(counts, profiles, rules, locations, failing, total, omitted)
    # a period reaching back before a purge is not a quiet one: its start is no longer on record
    kept = [("report.scope.purged-before", purged)] if purged and purged > query.since.isoformat() else []
    return exchange_report(facts, [*query.scope, *kept], generated or generated_now())


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


def counted(table: Any, rows: Sequence[Sequence[Any]]) -> list[ExchangeDetail]:
    """Exchange rows (``exchange_tables.COLUMNS``) with how many issues each recorded."""
    kinds = table.issue_kinds(int(row[0]) for row in rows)
    return [_exchange(row, (), (), sum(kinds.get(int(row[0]), (0, 0)))) for row in rows]


def bounded_issues(table: Any, ids: Sequence[int], most: int) -> tuple[list[Any], int]:
    """(issue rows of the exchanges ``ids``, newest first, no more than ``most`` of them; how
    many were left out).  Their errors come first, newest exchanges first, then their other
    issues likewise: a download of a thousand exchanges of 10,000 issues each held them all,
    a gigabyte, and one cut anyhow could list warnings and leave out the errors an exchange
    failed for.  Only the rows listed are read: each exchange's errors and others are
    counted in SQL, and at most one exchange of each kind is read in part."""
    kinds = table.issue_kinds(ids)
    left = most
    found: list[Any] = []
    for errors in (True, False):
        whole: list[int] = []
        for exchange_id in ids:
            count = kinds.get(exchange_id, (0, 0))[0 if errors else 1]
            taken = min(count, left)
            left -= taken
            if taken and taken == count:
                whole.append(exchange_id)
            elif taken:
                found += table.first_issues(exchange_id, errors, taken)
        found += table.issues_of(whole, errors)
    recorded = sum(errors + others for errors, others in kinds.values())
    return found, recorded - len(found)


def details(
    table: Any, rows: Sequence[Sequence[Any]], lang: str, issues: Sequence[Any] | None = None
) -> list[ExchangeDetail]:
    """Exchange rows (``exchange_tables.COLUMNS``) with their verdicts and their issues: the
    ``issues`` rows given (see :func:`bounded_issues`), or all they recorded."""
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
    return [_exchange(row, verdicts.get(int(row[0]), ()), findings.get(int(row[0]), ()), None) for row in rows]


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

"""The auditors' report served at ``/reports``: the same report as ``yiyang report``, as an
HTML page (what a browser asks for) or JSON (``Accept: application/json`` or
``_format=json``; also ``junit``, ``csv`` and ``xlsx`` as downloads), and each exchange on a
page of its own at ``/reports/exchanges/<id>``, where the report's drill-down links lead.

Like every route, it needs a bearer token; reading reports needs ``system/AuditEvent.rs``,
the scope auditors hold (``gateway/security/scopes.py``).  Refusals are OperationOutcomes.
The page is self-contained: its Content-Security-Policy allows inline styles and nothing else.

Parameters: ``since``/``until`` (days, YYYY-MM-DD; default the last 30 days), ``org``,
``source``, ``limit`` (failing exchanges shown), ``lang`` (zh-CN or en; default by
Accept-Language), ``_format`` and ``table`` (csv: failing or scorecard).  Anything else is a
400: a filter silently ignored would show an auditor more than they think; so is an ``org``
no client is registered for, whose empty report would read as a quiet period.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterator
from datetime import date, timedelta
from html import escape
from typing import Any

import orjson
from flask import Blueprint, Response, request, stream_with_context, url_for

from conformance.report.model import Listed, Report
from conformance.report.render_html import render_exchange_html
from conformance.report.render_json import exchange_document
from gateway.api.exchanges import exchange_log
from gateway.api.negotiation import language
from gateway.api.serving import services
from gateway.exchanges import today
from gateway.fhir.errors import FhirError
from gateway.fhir.parameters import unsupported_parameter, unsupported_value
from gateway.messages import LANGUAGES
from gateway.reporting import (
    DEFAULT_DAYS,
    DEFAULT_LIMIT,
    FORMATS,
    REPORT_SOURCES,
    Rendering,
    ReportQuery,
    exchange_detail,
    incomplete,
    parse_day,
    recorded_for,
    report_and_details,
    text_chunks,
    words_in,
    write_report,
)
from gateway.search.values import ascii_digits

reports = Blueprint("reports", __name__, url_prefix="/reports")
PARAMETERS = frozenset({"since", "until", "org", "source", "limit", "lang", "_format", "table"})
#: the tables a CSV download holds one of, the default first
TABLES = ("failing", "scorecard")
#: how ``since`` and ``until`` are written (YYYY-MM-DD): the example a refusal gives
DAY_EXAMPLE = "2026-07-01"
MEDIA = {
    "html": "text/html; charset=utf-8",
    "json": "application/json; charset=utf-8",
    "junit": "application/xml; charset=utf-8",
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
#: the media types Accept may ask for, and the format each is answered in
_MEDIA_FORMATS = {
    "text/html": "html",
    "application/json": "json",
    "application/fhir+json": "json",
    "application/xml": "junit",
    "text/xml": "junit",
    "text/csv": "csv",
    MEDIA["xlsx"]: "xlsx",
}
_FORMAT_NAMES = {**{name: name for name in FORMATS}, **_MEDIA_FORMATS}
#: what a download's file name keeps of an organisation id: none of a header's quotes, no path
_UNSAFE = re.compile(r"[^A-Za-z0-9.-]+")
#: the page is one document: inline CSS and SVG, nothing fetched, nothing run
POLICY = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'"


@reports.get("")
def page() -> Response:
    asked = _parameters()
    query = _query(asked)
    lang = _language(asked)
    fmt = _format(asked)
    table = asked.get("table", TABLES[0])
    if table not in TABLES:
        raise unsupported_value("table", table, TABLES)
    store = services().store
    if query.organization is not None and not recorded_for(store, query.organization):
        raise FhirError(400, "http.report-unknown-org", "org", org=query.organization)
    exchange_log().flush()  # this worker's latest exchanges count at once
    # the page shows how many issues each failing exchange has, linking to its own page: read
    # the issues only for a format that lists them, and those as the download is written
    listed = fmt in ("json", "junit", "xlsx") or (fmt == "csv" and table == "failing")
    most = services().config.report_max_issues if listed else None
    report, exchanges = report_and_details(store, query, lang, most_issues=most)
    kept = {k: v for k, v in asked.items() if k == "lang"}

    def link(exchange_id: str) -> str:
        return url_for(".exchange", exchange_id=exchange_id, **kept)

    name = f"{_download_name(query)}.{_suffix(fmt)}"
    if fmt == "xlsx":  # a zip is whole only at its end: built in a temporary file first
        return _answer(_spooled(report, lang, exchanges), fmt, name)
    nav = _nav(asked, lang) if fmt == "html" else ""
    chunks = text_chunks(report, Rendering(fmt, lang, table, link, nav, exchanges=exchanges))
    return _answer(stream_with_context(_streamed(chunks, fmt, lang)), fmt, name)


@reports.get("/exchanges/<exchange_id>")
def exchange(exchange_id: str) -> Response:
    asked = _parameters()
    lang = _language(asked)
    fmt = _format(asked)
    if fmt not in ("html", "json"):
        where = "_format" if "_format" in asked else None  # else Accept asked for it
        raise FhirError(406, "http.report-not-acceptable", where, format=fmt, formats="html, json")
    found = None
    if ascii_digits(exchange_id) and len(exchange_id) < 10:
        exchange_log().flush()
        found = exchange_detail(services().store, int(exchange_id), lang)
    if found is None:
        raise FhirError(404, "http.not-found", reference=f"reports/exchanges/{exchange_id}")
    if fmt == "json":
        return _answer(orjson.dumps(exchange_document(found)), "json", None)
    back = url_for(".page", **({"lang": asked["lang"]} if "lang" in asked else {}))
    return _answer(render_exchange_html(found, words_in(lang), lang, back).encode(), "html", None)


# -- the request -----------------------------------------------------------------------------------
def _parameters() -> dict[str, str]:
    asked: dict[str, str] = {}
    for name, value in request.args.items(multi=True):
        if name not in PARAMETERS:
            raise unsupported_parameter(name, "/reports", sorted(PARAMETERS))
        if name in asked:
            raise FhirError(400, "http.repeated-parameter", name, name=name)
        asked[name] = value
    return asked


def _query(asked: dict[str, str]) -> ReportQuery:
    """The period (by default the 30 days up to ``until``, itself by default today) and the
    filters."""
    until = _day(asked, "until") or today()
    # the calendar's first days have fewer before them: subtracting past 0001-01-01 was a 500
    since = _day(asked, "since") or until - min(timedelta(days=DEFAULT_DAYS - 1), until - date.min)
    if since > until:
        dates = {"start_value": since.isoformat(), "end_value": until.isoformat()}
        raise FhirError(400, "http.start-after-end", "since", start="since", end="until", **dates)
    limit = asked.get("limit", str(DEFAULT_LIMIT))
    if not ascii_digits(limit) or len(limit) > 7:
        raise FhirError(400, "http.not-a-count", "limit", name="limit", value=limit)
    most = services().config.report_max_limit
    if int(limit) > most:  # a bound on what a worker reads and sends
        raise FhirError(400, "http.report-limit-too-large", "limit", value=int(limit), limit=most)
    source = asked.get("source")
    if source is not None and source not in REPORT_SOURCES:
        raise unsupported_value("source", source, REPORT_SOURCES)
    return ReportQuery(since, until, asked.get("org"), source, int(limit))


def _day(asked: dict[str, str], name: str) -> date | None:
    if name not in asked:
        return None
    try:
        return parse_day(asked[name])
    except ValueError as exc:  # its message is English: the refusal names the form instead
        raise FhirError(400, "http.not-a-date", name, name=name, value=asked[name], examples=DAY_EXAMPLE) from exc


def _language(asked: dict[str, str]) -> str:
    lang = asked.get("lang")
    if lang is None:
        return language()
    if lang not in LANGUAGES:
        raise unsupported_value("lang", lang, LANGUAGES)
    return lang


def _format(asked: dict[str, str]) -> str:
    """``_format``, else the best of Accept's media types (HTML for a browser, or for no
    Accept at all); one asking only for what no report comes as is a 406 naming those it
    does.  Accept asked for CSV or a workbook answered HTML."""
    named = asked.get("_format")
    if named is not None:
        found = _FORMAT_NAMES.get(named.split(";")[0].strip())
        if found is None:
            raise FhirError(406, "http.report-not-acceptable", "_format", format=named, formats=", ".join(FORMATS))
        return found
    accept = request.accept_mimetypes
    best = accept.best_match(list(_MEDIA_FORMATS))
    if best is None and accept:
        raise FhirError(406, "http.report-not-acceptable", format=accept.to_header(), formats=", ".join(FORMATS))
    return _MEDIA_FORMATS.get(best or "text/html", "html")


def _nav(asked: dict[str, str], lang: str) -> str:
    """Links to the same report in the other formats and the other language."""
    words = words_in(lang)
    kept = {k: v for k, v in asked.items() if k not in ("_format", "table", "lang")}
    other = "en" if lang == "zh-CN" else "zh-CN"
    links = [(url_for(".page", **kept, lang=other), "English" if other == "en" else "中文")]
    links += [(url_for(".page", **kept, lang=lang, _format=fmt), fmt.upper()) for fmt in ("json", "junit", "xlsx")]
    links += [
        (url_for(".page", **kept, lang=lang, _format="csv", table=table), f"CSV · {words('report.sheet.' + table)}")
        for table in TABLES
    ]
    return '<p class="generated">' + " · ".join(f'<a href="{escape(h)}">{escape(t)}</a>' for h, t in links) + "</p>"


def _answer(data: Any, fmt: str, filename: str | None) -> Response:
    headers: dict[str, Any] = {}
    if fmt == "html":
        headers["Content-Security-Policy"] = POLICY
    elif fmt in ("csv", "xlsx") and filename:
        headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return Response(data, content_type=MEDIA[fmt], headers=headers)


def _streamed(chunks: Iterator[str], fmt: str, lang: str) -> Iterator[bytes]:
    """A text report as it is written: its failing exchanges are read batch by batch as it is
    sent.  An error after the first bytes went cannot be a status any more: the report ends
    with what says it is incomplete (see ``reporting.incomplete``), and the error goes on to
    the server, which drops the connection without the chunked body's last chunk, so an
    HTTP client reports the download failed too."""
    try:
        for chunk in chunks:
            yield chunk.encode()
    except Exception:
        yield incomplete(fmt, lang).encode()
        raise


def _spooled(report: Report, lang: str, exchanges: Listed) -> Iterator[bytes]:
    """A workbook written to a temporary file (its rows stream through openpyxl's write-only
    sheets) before the first byte is sent, so that an error is still an OperationOutcome;
    then sent from the file a block at a time."""
    spool = tempfile.TemporaryFile()
    try:
        write_report(spool, report, Rendering("xlsx", lang, exchanges=exchanges))
        spool.seek(0)
    except BaseException:
        spool.close()
        raise

    def blocks() -> Iterator[bytes]:
        with spool:
            while block := spool.read(_BLOCK):
                yield block

    return blocks()


#: bytes of a spooled workbook sent at a time
_BLOCK = 1 << 16


def _download_name(query: ReportQuery) -> str:
    """``report_<since>_<until>[_<org>][_<source>]``: a CSV has no room to say what it covers,
    and downloads all named ``report.csv`` lost it once saved side by side.  An organisation
    id is kept to the characters a file name and the header carry safely."""
    named = [query.since.isoformat(), query.until.isoformat(), query.organization, query.source]
    return "_".join(["report", *(_UNSAFE.sub("-", part)[:64] for part in named if part)])


def _suffix(fmt: str) -> str:
    return {"junit": "xml"}.get(fmt, fmt)

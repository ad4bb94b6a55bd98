"""A report as one self-contained HTML page: inline CSS, inline SVG charts, no script and no
fetch of anything, so it can be mailed, archived and opened offline — and served under a
Content-Security-Policy that allows nothing but inline styles.

Every section is a table; trend sections also draw the pass-rate line (daily, or weekly over
long periods) and the rules section the failures by rule.  Results that drill down link to
their exchange: an anchor in the same file, or a URL when the page is served.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from html import escape
from itertools import islice

from conformance.report.aggregate import charted_rules
from conformance.report.model import (
    Counts,
    ExchangeDetail,
    Finding,
    Listed,
    Report,
    Result,
    Section,
    Verdict,
    Wording,
    errors_first,
    exchanges_of,
    issues_truncation,
    truncation,
    worded_for,
)
from conformance.report.svg import bar_chart, percent, rate_bar, trend_chart

#: a trend over more days than this is drawn week by week
DAILY_POINTS = 62
#: findings listed in one table cell before "… N more"
CELL_FINDINGS = 20
#: resource verdicts listed per exchange (the failing ones first)
LISTED_VERDICTS = 200
#: issues listed per exchange in a report's own drill-down (errors first): an exchange keeps up
#: to 10,000, and a file of a thousand such was ten million rows no browser opens; the page of
#: one exchange (the served drill-down) lists them all
LISTED_FINDINGS = 200
#: failing exchanges a report file shows in full by default (the newest): each is up to
#: LISTED_VERDICTS + LISTED_FINDINGS rows
DETAILED = 100

CSS = """
:root{--ink:#24292f;--muted:#57606a;--line:#d0d7de;--pass:#2e7d32;--fail:#c62828;--error:#ef6c00;--skip:#8c959f}
*{box-sizing:border-box}
body{margin:0;padding:24px 32px;font:14px/1.5 "PingFang SC","Microsoft YaHei","Noto Sans CJK SC","Source Han Sans SC",
"Helvetica Neue",Arial,sans-serif;color:var(--ink);background:#fff}
h1{font-size:24px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid var(--line);padding-bottom:4px}
h2 small{font-weight:normal;color:var(--muted);font-size:13px;margin-left:8px}h3{font-size:15px;margin:18px 0 6px}
.scope,.generated,.note,.truncated{color:var(--muted);margin:2px 0}
.cards{display:flex;flex-wrap:wrap;gap:12px;margin:16px 0}
.card{border:1px solid var(--line);border-radius:6px;padding:10px 16px;min-width:120px}
.card b{display:block;font-size:22px}.card span{color:var(--muted);font-size:12px}
table{border-collapse:collapse;width:100%;margin:6px 0 12px;font-size:13px}
th,td{border-bottom:1px solid var(--line);padding:5px 8px;text-align:left;vertical-align:top}
th{background:#f6f8fa;font-weight:600}td.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
code{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:12px;word-break:break-all}
.verdict{display:inline-block;border-radius:10px;padding:0 8px;color:#fff;font-size:12px;white-space:nowrap}
.v-pass{background:var(--pass)}.v-fail{background:var(--fail)}.v-error{background:var(--error)}.v-skip{background:var(--skip)}
.sev-error,.sev-fatal{color:var(--fail);font-weight:600}.sev-warning{color:var(--error)}
ul.findings{margin:0;padding-left:16px}
.chart{margin:8px 0 16px;overflow-x:auto}svg.rate{vertical-align:middle;margin-left:6px}
details summary{cursor:pointer;color:var(--muted);margin:6px 0}
article.exchange{border:1px solid var(--line);border-radius:6px;padding:4px 16px 8px;margin:12px 0}
article.exchange:target{outline:3px solid #0969da}
dl.facts{display:grid;grid-template-columns:max-content 1fr;gap:2px 16px;margin:6px 0}dl.facts dt{color:var(--muted)}
dl.facts dd{margin:0}a{color:#0969da}footer{margin-top:32px;color:var(--muted);font-size:12px}
@media print{body{padding:0}.chart{overflow:visible}}
"""

#: an exchange's drill-down href, or None where the report shows it nowhere
Link = Callable[[str], str | None]


def anchor(exchange_id: str) -> str:
    """Where a drill-down link points inside a saved report."""
    return f"#exchange-{exchange_id}"


def render_html(
    report: Report, words: Wording, lang: str, link: Link | None = None, nav: str = "", details: int = DETAILED
) -> str:
    """The whole report (see :func:`iter_html`)."""
    return "".join(iter_html(report, words, lang, link, nav, details))


def iter_html(
    report: Report,
    words: Wording,
    lang: str,
    link: Link | None = None,
    nav: str = "",
    details: int = DETAILED,
    exchanges: Listed | None = None,
) -> Iterator[str]:
    """The report a section at a time.  ``link`` makes a drill-down href from an exchange id,
    to pages of their own; without it the report is one file, and its newest ``details``
    failing exchanges are shown in full at its end as they are read (see :data:`Listed`),
    linked by anchors (the others are listed, and the file says how many were not detailed).
    ``nav`` is HTML placed under the title (the served page's links to its other formats)."""
    words = worded_for(report.kind, words)
    title = words(f"report.title.{report.kind}")
    yield _page_start(title, lang) + "".join(
        [
            f"<header><h1>{escape(title)}</h1>",
            *(f'<p class="scope">{escape(words(name))}: {escape(value)}</p>' for name, value in report.scope),
            f'<p class="generated">{escape(words("report.generated"))}: {escape(report.generated)}</p>',
            nav,
            "</header>",
            _cards(report.summary, words, report.kind),
            f'<p class="note">{escape(words(RATE_DEFINITIONS[report.kind]))}</p>',
        ]
    )
    detailed = report.exchanges[:details] if link is None else ()
    linked = link or _anchors({exchange.id for exchange in detailed})
    for section in report.sections:
        yield _section(report, section, words, linked)
    if link is None and report.exchanges:  # even none detailed (--details 0) says how many were not
        yield f'<section id="drill-down"><h2>{escape(words("report.section.drill-down"))}</h2>'
        yield _truncation(report, words)
        left = len(report.exchanges) - len(detailed)
        if left:
            counted = {"shown": f"{len(detailed):,}", "omitted": f"{left:,}"}
            yield f'<p class="truncated">{escape(words("report.details-cut", counted))}</p>'
        for exchange in islice(exchanges_of(report, exchanges)(), len(detailed)):
            yield exchange_block(exchange, words, listed=LISTED_FINDINGS)
        yield "</section>"
    yield f"<footer>{escape(words('report.footer'))}</footer>" + _PAGE_END


def _anchors(shown: set[str]) -> Link:
    """Links to the exchanges a file shows in full: an anchor to one it does not would lead
    nowhere."""

    def link(exchange_id: str) -> str | None:
        return anchor(exchange_id) if exchange_id in shown else None

    return link


def render_exchange_html(exchange: ExchangeDetail, words: Wording, lang: str, back: str | None = None) -> str:
    """One exchange on a page of its own (the served report's drill-down target)."""
    title = f"{words('report.column.exchange')} #{exchange.id}"
    nav = f'<p><a href="{escape(back)}">← {escape(words("report.back"))}</a></p>' if back else ""
    return _page(title, lang, nav + exchange_block(exchange, words, heading="h1"))


def exchange_block(exchange: ExchangeDetail, words: Wording, heading: str = "h3", listed: int | None = None) -> str:
    """One exchange's facts, resource verdicts (the failing ones first) and issues (errors
    first; the first ``listed`` of them, when given, and how many more there are)."""
    facts = [
        ("report.column.time", exchange.recorded),
        ("report.column.participant", exchange.client),
        ("report.column.organization", exchange.organization or "–"),
        ("report.column.source", exchange.source),
        ("report.column.channel", exchange.channel),
        ("report.column.interaction", exchange.interaction),
        ("report.column.status", "–" if exchange.status is None else str(exchange.status)),
        ("report.column.resource-types", " ".join(exchange.resource_types) or "–"),
        ("report.column.resources", f"{exchange.resources:,}"),
        ("report.column.errors", f"{exchange.errors:,}"),
        ("report.column.warnings", f"{exchange.warnings:,}"),
    ]
    parts = [
        f'<article class="exchange" id="exchange-{escape(exchange.id)}">',
        f"<{heading}>#{escape(exchange.id)} {_badge(exchange.verdict, words)}</{heading}>",
        '<dl class="facts">',
        *(f"<dt>{escape(words(name))}</dt><dd>{escape(value)}</dd>" for name, value in facts),
        "</dl>",
    ]
    if exchange.verdicts:
        ordered = sorted(exchange.verdicts, key=lambda v: v.passed)
        parts.append(
            _table(
                [words(n) for n in ("report.column.resource", "report.column.profile", "report.column.verdict")]
                + [words("report.column.errors"), words("report.column.warnings")],
                (
                    [
                        f"<code>{escape(_reference(v.resource_type, v.resource_id, v.resources))}</code>",
                        f"<code>{escape(v.profile)}</code>",
                        _badge(Verdict.PASS if v.passed else Verdict.FAIL, words),
                        _number(v.errors),
                        _number(v.warnings),
                    ]
                    for v in ordered[:LISTED_VERDICTS]
                ),
                numeric={3, 4},
            )
        )
        if len(ordered) > LISTED_VERDICTS:
            parts.append(
                f'<p class="truncated">{escape(words("report.more", {"count": len(ordered) - LISTED_VERDICTS}))}</p>'
            )
    # a report file reads no more of an exchange's issues than it lists, and counts the rest
    shown = errors_first(exchange.findings)[:listed]
    more = (len(exchange.findings) if exchange.findings_counted is None else exchange.findings_counted) - len(shown)
    if shown:
        parts.append(_findings_table(shown, words))
    if more > 0:
        parts.append(f'<p class="truncated">{escape(words("report.more", {"count": more}))}</p>')
    parts.append("</article>")
    return "".join(parts)


# -- pieces ------------------------------------------------------------------------------------------
def _page(title: str, lang: str, body: str) -> str:
    return _page_start(title, lang) + body + _PAGE_END


def _page_start(title: str, lang: str) -> str:
    return (
        f'<!DOCTYPE html><html lang="{escape(lang)}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{CSS}</style></head><body>"
    )


_PAGE_END = "</body></html>\n"


#: what the cards count and how the pass rate reads, by what the report is about
CARD_NOUNS = {"exchanges": "report.card.total", "files": "report.card.resources", "testkit": "report.card.tests"}
RATE_DEFINITIONS = {
    "exchanges": "report.rate-definition",
    "files": "report.rate-definition.files",
    "testkit": "report.rate-definition.testkit",
}


def _cards(summary: Counts, words: Wording, kind: str) -> str:
    noun = CARD_NOUNS[kind]
    cards = [
        (noun, f"{summary.total:,}"),
        ("report.card.pass-rate", percent(summary.rate)),
        ("report.verdict.pass", f"{summary.passed:,}"),
        ("report.verdict.fail", f"{summary.failed:,}"),
        ("report.verdict.error", f"{summary.errors:,}"),
        ("report.verdict.skip", f"{summary.skipped:,}"),
    ]
    inner = "".join(f'<div class="card"><b>{escape(v)}</b><span>{escape(words(k))}</span></div>' for k, v in cards)
    return f'<section class="cards" id="summary">{inner}</section>'


def _section(report: Report, section: Section, words: Wording, link: Link) -> str:
    title = escape(words(section.title))
    subtitle = f"<small>{escape(section.subtitle)}</small>" if section.subtitle else ""
    parts = [f'<section id="section-{escape(section.id)}"><h2>{title}{subtitle}</h2>']
    if section.kind == "trend":
        if _drawn_trend(report) is section:
            points = [(r.label, r.counts or Counts()) for r in section.results]
            parts.append(f'<div class="chart">{trend_chart(points, words(section.title), words("report.none"))}</div>')
        parts.append(f"<details><summary>{escape(words('report.table'))}</summary>")
    elif section.kind == "bars":
        bars = [(r.label, r.occurrences or 0) for r in charted_rules(section)]
        parts.append(f'<div class="chart">{bar_chart(bars, words("report.chart.rules"), words("report.none"))}</div>')
    if section.id == "exchanges":
        parts.append(_truncation(report, words))
    parts.append(_results_table(section, words, link) if section.results else f"<p>{escape(words('report.none'))}</p>")
    if section.kind == "trend":
        parts.append("</details>")
    parts.append("</section>")
    return "".join(parts)


def _drawn_trend(report: Report) -> Section | None:
    """The trend section whose line is drawn: by day, unless the period is long."""
    daily, weekly = report.section("trend-day"), report.section("trend-week")
    if daily is not None and (weekly is None or len(daily.results) <= DAILY_POINTS):
        return daily
    return weekly


def _results_table(section: Section, words: Wording, link: Link) -> str:
    results = section.results
    counted = any(r.counts is not None for r in results)
    ruled = any(r.occurrences is not None for r in results)
    found = any(r.finding_count for r in results)
    header = [words(section.label_title)]
    if section.note_title:
        header.append(words(section.note_title))
    numeric: set[int] = set()
    if ruled:
        header += [words("report.column.severity")]
        numeric |= {len(header), len(header) + 1}
        header += [words("report.column.occurrences"), words("report.column.affected"), words("report.column.examples")]
    if counted:
        numeric |= set(range(len(header), len(header) + 5))
        header += [words(n) for n in ("report.column.total", "report.verdict.pass", "report.verdict.fail")]
        header += [words("report.verdict.error"), words("report.verdict.skip"), words("report.column.pass-rate")]
    if found:
        header.append(words("report.column.findings"))
    header.append(words("report.column.verdict"))
    rows = []
    for result in results:
        label = f"<code>{escape(result.label)}</code>"
        href = link(result.link) if result.link is not None else None
        if href is not None:
            label = f'<a class="drill" href="{escape(href)}">{escape(result.label)}</a>'
        row = [label]
        if section.note_title:
            row.append(escape(result.note))
        if ruled:
            row += [
                f'<span class="sev-{escape(result.severity)}">{escape(words("report.severity." + result.severity))}</span>',
                _number(result.occurrences or 0),
                _number(result.affected or 0),
                "<br>".join(f"<code>{escape(e)}</code>" for e in result.examples),
            ]
        if counted:
            counts = result.counts or Counts()
            row += [_number(n) for n in (counts.total, counts.passed, counts.failed, counts.errors, counts.skipped)]
            row.append(f"{percent(counts.rate)}{rate_bar(counts.rate)}")
        if found:
            row.append(_findings_cell(result, words))
        row.append(_badge(result.verdict, words))
        rows.append(row)
    return _table(header, rows, numeric)


def _findings_cell(result: Result, words: Wording) -> str:
    if result.link is not None:  # the exchange's own page lists them
        return escape(words("report.findings-count", {"count": result.finding_count}))
    items = [_finding_item(f, words) for f in result.findings[:CELL_FINDINGS]]
    more = len(result.findings) - CELL_FINDINGS
    if more > 0:
        items.append(f"<li>{escape(words('report.more', {'count': more}))}</li>")
    return f'<ul class="findings">{"".join(items)}</ul>' if items else ""


def _finding_item(finding: Finding, words: Wording) -> str:
    where = f" <code>{escape(finding.location)}</code>" if finding.location else ""
    return f"<li>{_severity(finding, words)} <code>{escape(finding.rule)}</code>{where} {escape(finding.text)}</li>"


def _severity(finding: Finding, words: Wording) -> str:
    """How severe a finding is, and the verdict of the request it concerns when not its
    exchange's (a batch's entry refused for another reason than its content), as the JSON
    says it: else its reason reads as one more rule the batch's content broke."""
    severity = (
        f'<span class="sev-{escape(finding.severity)}">{escape(words("report.severity." + finding.severity))}</span>'
    )
    return f"{severity} {_badge(finding.verdict, words)}" if finding.verdict else severity


def _findings_table(findings: Iterable[Finding], words: Wording) -> str:
    names = ("severity", "rule", "location", "resource", "message")
    return _table(
        [words(f"report.column.{n}") for n in names],
        (
            [
                _severity(f, words),
                f"<code>{escape(f.rule)}</code>",
                f"<code>{escape(f.location or '–')}</code>",
                f"<code>{escape(f.subject or '–')}</code>",
                escape(f.text),
            ]
            for f in findings
        ),
    )


def _truncation(report: Report, words: Wording) -> str:
    cuts = (cut for cut in (truncation(report), issues_truncation(report)) if cut is not None)
    return "".join(f'<p class="truncated">{escape(words(*cut))}</p>' for cut in cuts)


def _table(header: list[str], rows: Iterable[list[str]], numeric: set[int] | None = None) -> str:
    numeric = numeric or set()
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>"
        + "".join(f'<td class="n">{c}</td>' if i in numeric else f"<td>{c}</td>" for i, c in enumerate(r))
        + "</tr>"
        for r in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _badge(verdict: str, words: Wording) -> str:
    return f'<span class="verdict v-{escape(verdict)}">{escape(words("report.verdict." + verdict))}</span>'


def _number(value: int) -> str:
    return f"{value:,}"


def _reference(kind: str, resource_id: str, count: int) -> str:
    if resource_id:
        return f"{kind}/{resource_id}"
    return f"{kind} × {count:,}"

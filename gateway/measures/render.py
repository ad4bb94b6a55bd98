"""Evaluated measures for people: an HTML page and an XLSX workbook in zh-CN or en, each
indicator next to its programme target, then its strata.

The JSON form is the MeasureReport Bundle (report.py); these two are its readable views and
say in words what the JSON says with data-absent-reason (e.g. no population file).
"""

from __future__ import annotations

import html
import io
from collections.abc import Mapping
from typing import Any

from openpyxl import Workbook
from openpyxl.styles import Font

from gateway.measures.evaluate import MeasureResult
from gateway.messages import text

FORMATS = ("json", "html", "xlsx")


def status(result: MeasureResult) -> str:
    """Against the target: met, not-met, unknown (no score) or none (no target)."""
    measure = result.measure
    if measure.target is None:
        return "none"
    if result.score is None:
        return "unknown"
    met = result.score >= measure.target if measure.improvement == "increase" else result.score <= measure.target
    return "met" if met else "not-met"


def localised(title: str, lang: str) -> str:
    """The zh-CN or en half of a bilingual "中文 / English" text."""
    zh, _, en = title.partition(" / ")
    return (zh if lang == "zh-CN" else en or zh).strip()


def rows(results: list[MeasureResult], lang: str) -> list[list[Any]]:
    """One row per indicator: title, numerator, denominator, result, target, status."""
    table = []
    for result in results:
        measure = result.measure
        if measure.scoring in ("proportion", "ratio"):
            top, bottom = result.count("numerator"), result.count("denominator")
            score = "" if result.score is None else f"{result.score:.2f}%"
            target = "" if measure.target is None else f"≥{measure.target:g}%"
        elif measure.scoring == "continuous-variable":  # the count of subjects, and the sum
            top, bottom, score, target = result.count("measure-population"), None, f"{result.score:g}", ""
        else:
            top, bottom, score, target = result.count("initial-population"), None, f"{result.score:g}", ""
        table.append(
            [
                localised(measure.title, lang),
                "" if top is None else top,
                _unknown(lang)
                if bottom is None and measure.scoring == "proportion"
                else ("" if bottom is None else bottom),
                score or _unknown(lang),
                target,
                text(f"measure.status.{status(result)}", lang),
            ]
        )
    return table


def strata_rows(result: MeasureResult, lang: str, names: Mapping[str, str]) -> list[list[Any]]:
    """(stratifier, value, numerator or count, denominator, result) per stratum."""
    found = []
    proportion = result.measure.scoring in ("proportion", "ratio")
    top = result.populations["numerator" if proportion else "initial-population"]
    bottom = result.populations.get("denominator") if proportion else None
    for stratifier in result.measure.stratifiers:
        values = sorted(
            {v for (s, v) in top.strata if s == stratifier}
            | {v for (s, v) in (bottom.strata if bottom else {}) if s == stratifier}
        )
        for value in values:
            score = result.strata_scores.get((stratifier, value))
            found.append(
                [
                    text(f"measure.stratifier.{stratifier}", lang),
                    _value(stratifier, value, lang, names),
                    top.strata.get((stratifier, value), 0),
                    ""
                    if bottom is None
                    else (_unknown(lang) if bottom.count is None else bottom.strata.get((stratifier, value), 0)),
                    "" if score is None else f"{score:.2f}%",
                ]
            )
    return found


def render_html(results: list[MeasureResult], lang: str, names: Mapping[str, str]) -> bytes:
    words = lambda key, **params: html.escape(text(key, lang, params))  # noqa: E731
    head = ["measure", "numerator", "denominator", "score", "target", "status"]
    period = results[0].period if results else None
    parts = [
        "<!DOCTYPE html>",
        f'<html lang="{lang}"><head><meta charset="utf-8"><title>{words("measure.report.title")}</title>',
        "<style>body{font-family:system-ui,'Noto Sans CJK SC',sans-serif;margin:2em;color:#222}"
        "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left}"
        "td.n{text-align:right}.met{color:#176c2b}.not-met{color:#b3261e}.note{background:#fff6d5;padding:.6em}</style>",
        f"</head><body><h1>{words('measure.report.title')}</h1>",
    ]
    if period:
        parts.append(f"<p>{words('measure.period', start=period.start, end=period.end)}")
        if results[0].division:
            parts.append(" · " + words("measure.division", division=results[0].division))
        parts.append("</p>")
    notes = sorted({note for result in results for note in result.notes})
    parts += [f'<p class="note">{words(note)}</p>' for note in notes]
    parts.append("<table><tr>" + "".join(f"<th>{words('measure.column.' + h)}</th>" for h in head) + "</tr>")
    for result, row in zip(results, rows(results, lang), strict=True):
        cells = "".join(
            f'<td class="n">{html.escape(str(c))}</td>' if i in (1, 2, 3) else f"<td>{html.escape(str(c))}</td>"
            for i, c in enumerate(row[:5])
        )
        parts.append(f'<tr>{cells}<td class="{status(result)}">{html.escape(row[5])}</td></tr>')
    parts.append("</table>")
    for result in results:
        strata = strata_rows(result, lang, names)
        if not strata:
            continue
        parts.append(f"<h2>{html.escape(localised(result.measure.title, lang))}</h2>")
        parts.append(f"<p>{html.escape(localised(result.measure.resource.get('description', ''), lang))}</p>")
        columns = ["stratifier", "stratum", "numerator", "denominator", "score"]
        parts.append("<table><tr>" + "".join(f"<th>{words('measure.column.' + c)}</th>" for c in columns) + "</tr>")
        for row in strata:
            parts.append("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>")
        parts.append("</table>")
        sources = [s for s in result.measure.sources if s]
        if sources:
            parts.append(f"<p><small>{words('measure.column.source')}: {html.escape('; '.join(sources))}</small></p>")
    parts.append("</body></html>")
    return "\n".join(parts).encode("utf-8")


def render_xlsx(results: list[MeasureResult], lang: str, names: Mapping[str, str]) -> bytes:
    """Sheet 1 the indicators against their targets; sheet 2 every stratum."""
    book = Workbook()
    sheet = book.active
    sheet.title = text("measure.report.title", lang)[:31]
    head = ["measure", "numerator", "denominator", "score", "target", "status"]
    sheet.append([text(f"measure.column.{h}", lang) for h in head])
    for row in rows(results, lang):
        _append_text(sheet, row)
    for note in sorted({note for result in results for note in result.notes}):
        sheet.append([])
        _append_text(sheet, [text(note, lang)])
    strata = book.create_sheet(text("measure.column.stratum", lang)[:31])
    strata.append(
        [
            text(f"measure.column.{h}", lang)
            for h in ("measure", "stratifier", "stratum", "numerator", "denominator", "score")
        ]
    )
    for result in results:
        title = localised(result.measure.title, lang)
        for row in strata_rows(result, lang, names):
            _append_text(strata, [title, *row])
    for worksheet in (sheet, strata):
        for cell in worksheet[1]:
            cell.font = Font(bold=True)
        worksheet.column_dimensions["A"].width = 40
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _append_text(sheet: Any, row: list[Any]) -> None:
    """Append ``row`` with every string a text cell: a county is the code a record stored,
    and openpyxl makes a string beginning with ``=`` a formula the reader's Excel would run."""
    sheet.append(row)
    for cell in sheet[sheet.max_row]:
        if isinstance(cell.value, str):
            cell.data_type = "s"


def _value(stratifier: str, value: str, lang: str, names: Mapping[str, str]) -> str:
    if value == "unknown":
        return text("measure.unknown-value", lang)
    if stratifier == "sex":
        return {"male": "男", "female": "女"}.get(value, value) if lang == "zh-CN" else value
    if stratifier == "division" and value in names:
        return f"{value} {names[value]}"
    return value


def _unknown(lang: str) -> str:
    return text("measure.unknown-value", lang)

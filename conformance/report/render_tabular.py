"""What auditors open in a spreadsheet: the failing items, one row per issue, and the
scorecard, one row per participant (or per file, or per test suite).  CSV (UTF-8 with a
byte-order mark, so Excel shows Chinese) holds one of the two tables; an Excel workbook holds
both, one sheet each, and a third saying what the report covers (period, filters, when it was
made).  A table cut short (the failing exchanges beyond the report's limit)
ends with a row saying so: how many are listed, of how many, and how many are left out; so
does one whose issues were cut to bound the download, and a sheet whose rows are more than Excel holds (a thousand exchanges of 10,000 issues each).

Severities and verdicts are shown in the report's language, as in its HTML (a zh-CN table of
``error`` and ``fail`` read as a half-translated one); their codes follow in columns of their
own at the end, so a script reading the table matches on those, whatever the language.

A cell that a spreadsheet would run as a formula (``=``, ``+``, ``-``, ``@`` first) is written
as text: a report must not execute what a participant sent.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from itertools import islice
from typing import IO

from conformance.report.model import (
    Counts,
    ExchangeDetail,
    Listed,
    Note,
    Report,
    Section,
    Verdict,
    Wording,
    errors_first,
    exchanges_of,
    issues_truncation,
    truncation,
    worded_for,
)
from conformance.report.svg import percent
from conformance.report.xml_text import xml_text

Cell = str | int | float | None
TABLES = ("failing", "scorecard")
#: CSV rows written at a time
CSV_ROWS = 1_000
#: the rows an Excel sheet holds (Excel's specifications and limits); openpyxl writes more all
#: the same, and Excel does not show them
SHEET_ROWS = 1_048_576
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True, slots=True)
class Table:
    name: str
    #: message ids: the sheet's title and the column headings
    title: str
    header: tuple[str, ...]
    #: read once, as the table is written (a failing table's rows are read from the store)
    rows: Iterable[list[Cell]]
    #: the column holding a pass rate (a fraction, shown as a percentage)
    rate_column: int | None = None
    #: the last rows' one cell each: that the rows above are not all there are
    notes: tuple[Note, ...] = ()
    #: the columns holding a code shown by its wording: column → message id prefix
    labels: Mapping[int, str] = field(default_factory=dict)

    def labeller(self, words: Wording) -> Callable[[list[Cell]], list[Cell]]:
        """A row with its coded cells worded (each wording looked up once: a table is up to a
        million rows of a few codes)."""
        worded: dict[str, str] = {}

        def shown(row: list[Cell]) -> list[Cell]:
            if not self.labels:
                return row
            row = list(row)
            for index, prefix in self.labels.items():
                code = row[index]
                if isinstance(code, str) and code:
                    key = prefix + code
                    row[index] = worded.get(key) or worded.setdefault(key, words(key))
            return row

        return shown


def tables(report: Report, exchanges: Listed | None = None) -> dict[str, Table]:
    """The failing items and the scorecard of ``report`` (the failing exchanges in full read
    from ``exchanges`` when given, see :data:`Listed`)."""
    if report.kind == "exchanges":
        return {
            "failing": _failing_exchanges(report, exchanges_of(report, exchanges)),
            "scorecard": _participants(report),
        }
    return {"failing": _failing_results(report), "scorecard": _sections(report)}


def render_csv(report: Report, name: str, words: Wording) -> str:
    """The table ``name`` (one of :data:`TABLES`) of ``report``."""
    return "".join(iter_csv(report, name, words))


def iter_csv(report: Report, name: str, words: Wording, exchanges: Listed | None = None) -> Iterator[str]:
    """:func:`render_csv` a thousand rows at a time, as the rows are read."""
    words = worded_for(report.kind, words)
    table = tables(report, exchanges)[name]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([words(h) for h in table.header])
    shown = table.labeller(words)
    yield "\ufeff" + _drained(out)  # before the first row is read
    rows = iter(table.rows)
    while chunk := list(islice(rows, CSV_ROWS)):
        for row in chunk:
            writer.writerow(
                [
                    percent(cell) if index == table.rate_column and isinstance(cell, float) else _text_safe(cell)
                    for index, cell in enumerate(shown(row))
                ]
            )
        yield _drained(out)
    for note in table.notes:
        writer.writerow([words(*note)])
    yield _drained(out)


def _drained(out: io.StringIO) -> str:
    written = out.getvalue()
    out.seek(0)
    out.truncate()
    return written


def render_xlsx(report: Report, words: Wording) -> bytes:
    out = io.BytesIO()
    write_xlsx(report, words, out)
    return out.getvalue()


def write_xlsx(report: Report, words: Wording, target: IO[bytes], exchanges: Listed | None = None) -> None:
    """The workbook to ``target``, its rows written as they are read (openpyxl's write-only
    sheets keep them in temporary files, not in memory)."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell

    words = worded_for(report.kind, words)
    book = Workbook(write_only=True)
    for table in tables(report, exchanges).values():
        sheet = book.create_sheet(title=_sheet_title(words(table.title)))
        sheet.append([words(h) for h in table.header])
        # the header, and the notes below, take rows of their own
        fits = SHEET_ROWS - 2 - len(table.notes)
        shown = table.labeller(words)
        rows = iter(table.rows)
        for row in islice(rows, fits):
            cells = []
            for index, value in enumerate(shown(row)):
                # a control character a client sent is shown as U+FFFD: openpyxl refuses it
                text = isinstance(value, str)
                cell = WriteOnlyCell(sheet, value=xml_text(value) if text else value)
                if text:
                    cell.data_type = "s"  # never a formula, whatever the text starts with
                if index == table.rate_column and isinstance(value, float):
                    cell.number_format = "0.0%"
                cells.append(cell)
            sheet.append(cells)
        left = sum(1 for _ in rows)
        if left:
            counted = {"shown": f"{fits:,}", "omitted": f"{left:,}", "limit": f"{SHEET_ROWS:,}"}
            sheet.append([words("report.sheet-full", counted)])
        for note in table.notes:
            sheet.append([words(*note)])
    about = book.create_sheet(title=_sheet_title(words("report.sheet.scope")))
    for row in _scope_rows(report, words):
        cells = [WriteOnlyCell(about, value=xml_text(cell)) for cell in row]
        for cell in cells:
            cell.data_type = "s"  # an organisation id asked for is text, whatever it starts with
        about.append(cells)
    book.save(target)


def _scope_rows(report: Report, words: Wording) -> list[list[str]]:
    """What the workbook covers, as its HTML header says it: the title, when it was made, the
    period and the filters (a workbook of one hospital's month read as the province's year)."""
    rows = [[words(f"report.title.{report.kind}")], [words("report.generated"), report.generated]]
    return rows + [[words(name), value] for name, value in report.scope]


# -- the tables ------------------------------------------------------------------------------------
def _failing_exchanges(report: Report, exchanges: Listed) -> Table:
    header = (
        "report.column.exchange",
        "report.column.time",
        "report.column.participant",
        "report.column.organization",
        "report.column.source",
        "report.column.channel",
        "report.column.interaction",
        "report.column.status",
        "report.column.resource",
        "report.column.severity",
        "report.column.rule",
        "report.column.location",
        "report.column.message",
        "report.column.severity-code",
    )
    labels = {header.index("report.column.severity"): SEVERITY}
    notes = tuple(note for note in (truncation(report), issues_truncation(report)) if note is not None)
    rows = (row for exchange in exchanges() for row in _exchange_rows(exchange))
    return Table("failing", "report.sheet.failing", header, rows, notes=notes, labels=labels)


def _exchange_rows(exchange: ExchangeDetail) -> Iterator[list[Cell]]:
    """One row per issue of a failing exchange, its errors first (one row when none)."""
    head: list[Cell] = [
        int(exchange.id) if exchange.id.isdigit() else exchange.id,
        exchange.recorded,
        exchange.client,
        exchange.organization,
        exchange.source,
        exchange.channel,
        exchange.interaction,
        exchange.status,
    ]
    if not exchange.findings:
        yield [*head, "", "", "", "", "", ""]
    for finding in errors_first(exchange.findings):
        yield [*head, finding.subject, finding.severity, finding.rule, finding.location, finding.text, finding.severity]


def _participants(report: Report) -> Table:
    header = ("report.column.participant", "report.column.organization", *_COUNT_HEADER)
    section = report.section("participants")
    rows = [[r.label, r.note, *_count_cells(r.counts or Counts())] for r in (section.results if section else ())]
    return Table("scorecard", "report.sheet.scorecard", header, rows, rate_column=len(header) - 1)


def _failing_results(report: Report) -> Table:
    header = (
        "report.column.section",
        "report.column.resource",
        "report.column.position",
        "report.column.verdict",
        "report.column.severity",
        "report.column.rule",
        "report.column.location",
        "report.column.message",
        "report.column.verdict-code",
        "report.column.severity-code",
    )
    rows: list[list[Cell]] = []
    for section in _own_sections(report):
        where = section.subtitle or section.id
        for result in section.results:
            if result.verdict not in (Verdict.FAIL, Verdict.ERROR):
                continue
            base: list[Cell] = [where, result.label, result.note, result.verdict]
            if not result.findings:
                rows.append([*base, "", "", "", "", result.verdict, ""])
            for finding in result.findings:
                found = [finding.severity, finding.rule, finding.location, finding.text]
                rows.append([*base, *found, result.verdict, finding.severity])
    labels = {header.index("report.column.verdict"): VERDICT, header.index("report.column.severity"): SEVERITY}
    return Table("failing", "report.sheet.failing", header, rows, labels=labels)


def _sections(report: Report) -> Table:
    header = ("report.column.section", *_COUNT_HEADER)
    rows = []
    for section in _own_sections(report):
        counts = Counts()
        for result in section.results:
            counts += Counts.of(result.verdict)
        rows.append([section.subtitle or section.id, *_count_cells(counts)])
    return Table("scorecard", "report.sheet.scorecard", header, rows, rate_column=len(header) - 1)


def _own_sections(report: Report) -> list[Section]:
    """The sections of checked things (files, test suites), not the summaries by profile and
    rule that every report ends with."""
    return [s for s in report.sections if s.kind == "table" and s.id not in SUMMARIES]


SUMMARIES = frozenset({"profiles", "rules"})
#: the message id prefixes of the coded columns' wordings
SEVERITY, VERDICT = "report.severity.", "report.verdict."
_COUNT_HEADER = (
    "report.column.total",
    "report.verdict.pass",
    "report.verdict.fail",
    "report.verdict.error",
    "report.verdict.skip",
    "report.column.pass-rate",
)


def _count_cells(counts: Counts) -> list[Cell]:
    rate = None if counts.rate is None else round(counts.rate, 4)
    return [counts.total, counts.passed, counts.failed, counts.errors, counts.skipped, rate]


def _text_safe(cell: Cell) -> Cell:
    if isinstance(cell, str) and cell.startswith(_FORMULA_START) and len(cell) > 1:
        return "'" + cell
    return cell


def _sheet_title(text: str) -> str:
    """Excel's limits on a sheet name: 31 characters, none of []:*?/\\."""
    cleaned = "".join("_" if c in "[]:*?/\\" else c for c in text)
    return cleaned[:31] or "sheet"

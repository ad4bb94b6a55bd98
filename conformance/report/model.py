"""What a report is: sections of results with verdicts, and the exchanges to drill down to.

Plain frozen dataclasses, so a report built from the store, from files or from a test run is
rendered by the same code, and compared in tests field by field.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal, Protocol


class Verdict(StrEnum):
    """The verdict on an exchange, a resource, a rule or a test kit's test: one vocabulary for
    the exchange records (``gateway/exchanges.py``, stored as its text), the reports and the
    test kit, and the suffix of its wording's message id (``report.verdict.pass``)."""

    #: judged conformant
    PASS = "pass"
    #: judged non-conformant
    FAIL = "fail"
    #: refused or broken for another reason than the content
    ERROR = "error"
    #: nothing to judge
    SKIP = "skip"


ReportKind = Literal["exchanges", "files", "testkit"]
#: how a section is shown besides its table: a pass-rate trend line, or bars of occurrences
SectionKind = Literal["table", "trend", "bars"]
ERROR_SEVERITIES = frozenset({"fatal", "error"})


#: a message id and its parameters, worded when rendered
Note = tuple[str, Mapping[str, Any]]


class Wording(Protocol):
    """A message id (and its parameters) in the reader's language: the gateway's catalog."""

    def __call__(self, message_id: str, params: Mapping[str, Any] | None = None) -> str: ...


#: verdicts a kind of report words its own way: a test kit's error is a test that could not be
#: completed and its skip a test not run for want of credentials or data, not a request refused
#: for another reason than its content or one with nothing to judge, as an exchange's are
OWN_VERDICTS: dict[str, frozenset[str]] = {"testkit": frozenset({Verdict.ERROR, Verdict.SKIP})}


def worded_for(kind: str, words: Wording) -> Wording:
    """``words`` with the verdicts ``kind`` words its own way (``report.verdict.testkit.skip``
    for ``report.verdict.skip``), so every renderer's cards, badges and headers agree with the
    report's own definition of them."""
    own = OWN_VERDICTS.get(kind)
    if not own:
        return words

    def kind_words(message_id: str, params: Mapping[str, Any] | None = None) -> str:
        verdict = message_id.removeprefix("report.verdict.")
        if verdict != message_id and verdict in own:
            message_id = f"report.verdict.{kind}.{verdict}"
        return words(message_id, params)

    return kind_words


@dataclass(frozen=True, slots=True)
class Counts:
    """How many of something passed, failed, were refused (error) or had nothing to judge."""

    passed: int = 0
    failed: int = 0
    errors: int = 0
    skipped: int = 0

    @property
    def total(self) -> int:
        return self.passed + self.failed + self.errors + self.skipped

    @property
    def judged(self) -> int:
        return self.passed + self.failed

    @property
    def rate(self) -> float | None:
        """The pass rate: passed among those judged (None when nothing was judged)."""
        return self.passed / self.judged if self.judged else None

    @property
    def verdict(self) -> Verdict:
        if self.failed:
            return Verdict.FAIL
        if self.passed:
            return Verdict.PASS
        return Verdict.ERROR if self.errors else Verdict.SKIP

    def __add__(self, other: Counts) -> Counts:
        return Counts(
            self.passed + other.passed,
            self.failed + other.failed,
            self.errors + other.errors,
            self.skipped + other.skipped,
        )

    @classmethod
    def of(cls, verdict: str, count: int = 1) -> Counts:
        """``count`` things with one verdict."""
        return cls(
            passed=count if verdict == Verdict.PASS else 0,
            failed=count if verdict == Verdict.FAIL else 0,
            errors=count if verdict == Verdict.ERROR else 0,
            skipped=count if verdict == Verdict.SKIP else 0,
        )


@dataclass(frozen=True, slots=True)
class Finding:
    """One issue found, or one check made: the rule (a stable message id), where (FHIRPath or
    a file position), how severe, the (masked) text, and the resource it concerns."""

    severity: str
    rule: str
    location: str
    text: str
    subject: str = ""
    #: the verdict of the request it concerns when not its exchange's: ``error`` for the
    #: reason a batch's entry was refused for another reason than its content
    verdict: str = ""

    @property
    def is_error(self) -> bool:
        return self.severity in ERROR_SEVERITIES


@dataclass(frozen=True, slots=True)
class Result:
    """One row of a section: a participant, a rule, a resource checked, a test."""

    id: str
    label: str
    verdict: Verdict
    #: a second descriptive column (an organisation, a resource type, an example message)
    note: str = ""
    counts: Counts | None = None
    #: for rules: how severe, how often, in how many exchanges, and where most often
    severity: str = ""
    occurrences: int | None = None
    affected: int | None = None
    examples: tuple[str, ...] = ()
    findings: tuple[Finding, ...] = ()
    #: the id of the exchange this row drills down to
    link: str | None = None
    #: how many findings there are when ``findings`` was not read (see ExchangeDetail)
    findings_counted: int | None = None

    @property
    def finding_count(self) -> int:
        return len(self.findings) if self.findings_counted is None else self.findings_counted


@dataclass(frozen=True, slots=True)
class Section:
    id: str
    #: message ids: the section's title, its label column's heading and its note column's
    title: str
    label_title: str
    results: tuple[Result, ...]
    note_title: str | None = None
    kind: SectionKind = "table"
    #: data shown beside the title (the file a section of checked resources is about)
    subtitle: str = ""


@dataclass(frozen=True, slots=True)
class ResourceVerdict:
    """The verdict on one resource (or, with ``resources`` > 1 and no id, on that many
    resources of one type and profile) against one profile."""

    resource_type: str
    resource_id: str
    profile: str
    passed: bool
    errors: int
    warnings: int
    resources: int = 1


@dataclass(frozen=True, slots=True)
class ExchangeDetail:
    """One recorded exchange in full: the drill-down of a failing one."""

    id: str
    recorded: str
    day: str
    client: str
    organization: str
    source: str
    channel: str
    interaction: str
    status: int | None
    verdict: Verdict
    resource_types: tuple[str, ...]
    resources: int
    errors: int
    warnings: int
    verdicts: tuple[ResourceVerdict, ...] = ()
    findings: tuple[Finding, ...] = ()
    #: how many issues it recorded, when not all of them were read: a page that shows only
    #: their number (the served report's, which links to each exchange's own page) read a
    #: thousand exchanges of 10,000 issues each, 700 MiB, to count them; a file's drill-down
    #: lists the first of them and says how many more there are
    findings_counted: int | None = None


def errors_first(findings: Iterable[Finding]) -> list[Finding]:
    """An exchange's findings, its errors (and fatal ones) first, each kind in recorded order:
    thousands of warnings of one exchange listed before its one error hid the reason it
    failed."""
    return sorted(findings, key=lambda finding: not finding.is_error)


@dataclass(frozen=True, slots=True)
class Report:
    kind: ReportKind
    generated: str
    #: what the report covers, as (message id of the name, value): period, filters, files
    scope: tuple[tuple[str, str], ...]
    summary: Counts
    sections: tuple[Section, ...]
    #: the failing exchanges to drill down to (the newest, when there are more)
    exchanges: tuple[ExchangeDetail, ...] = ()
    #: how many failed in all
    exchanges_total: int = 0
    #: issues of the listed exchanges left out to bound the download (see
    #: :func:`issues_truncation`)
    findings_omitted: int = 0
    #: how many issues the listed exchanges list, when they are read as the report is written
    #: (None: as many as ``exchanges`` hold)
    findings_listed: int | None = None

    def section(self, section_id: str) -> Section | None:
        return next((s for s in self.sections if s.id == section_id), None)


#: a report's failing exchanges in full, read anew at each call: a file is written as they are
#: read from the store (``gateway/reporting.py``), never all of them held at once
Listed = Callable[[], Iterable[ExchangeDetail]]


def exchanges_of(report: Report, exchanges: Listed | None) -> Listed:
    """Where a renderer reads the failing exchanges in full: ``exchanges``, or the report's."""
    return exchanges or (lambda: report.exchanges)


def truncation(report: Report) -> Note | None:
    """What every format says when the failing exchanges listed are only the newest of them:
    how many are listed, of how many, and how many are left out; None when none is.  A list
    cut at its limit without a word reads as every failure there was."""
    shown = len(report.exchanges)
    if report.exchanges_total <= shown:
        return None
    counted = {"shown": shown, "total": report.exchanges_total, "omitted": report.exchanges_total - shown}
    return "report.truncated", {name: f"{count:,}" for name, count in counted.items()}


def issues_truncation(report: Report) -> Note | None:
    """What every format says when the issues listed are not all the listed exchanges
    recorded: a download is bounded to a number of issues (errors first, newest exchanges
    first), since a thousand exchanges of 10,000 issues each ran a worker out of memory;
    None when none was left out."""
    if not report.findings_omitted:
        return None
    shown = report.findings_listed
    if shown is None:
        shown = sum(len(exchange.findings) for exchange in report.exchanges)
    counted = {"shown": shown, "total": shown + report.findings_omitted, "omitted": report.findings_omitted}
    return "report.issues-truncated", {name: f"{count:,}" for name, count in counted.items()}

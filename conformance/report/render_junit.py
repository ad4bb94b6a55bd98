"""A report as JUnit XML, the format CI systems read: one ``testsuite`` per section, one
``testcase`` per result — a ``failure`` for a fail verdict, an ``error`` for an error, a
``skipped`` for a skip.  Trend sections are left out (each day is already counted in the
other sections).

For checked files this is one testcase per resource, failing when the resource has an error;
for the auditors' report, one per participant, source, profile, rule and failing exchange.
When the failing exchanges are only the newest of them (the report's limit), their testsuite
says so: ``failing-listed`` and ``failing-total`` properties, and the sentence in
``system-out``.

A failure's text lists its findings one a line, each one's severity in the report's language
(``错误 [rule.id-card-checksum] Patient.identifier: …``), as the HTML and the spreadsheets show
it; the codes stay in the attributes scripts read (``type``, the rule).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator

from conformance.report.aggregate import failing_result
from conformance.report.model import (
    Finding,
    Listed,
    Report,
    Result,
    Verdict,
    Wording,
    exchanges_of,
    issues_truncation,
    truncation,
    worded_for,
)
from conformance.report.svg import percent
from conformance.report.xml_text import xml_text as _clean

#: the finding in which a test kit's skipped test gives its reason (conformance/testkit/runner.py)
SKIP_REASON = "testkit.skipped"

_TAGS = {Verdict.FAIL: "failure", Verdict.ERROR: "error"}


def render_junit(report: Report, words: Wording) -> str:
    return "".join(iter_junit(report, words))


def iter_junit(report: Report, words: Wording, exchanges: Listed | None = None) -> Iterator[str]:
    """The document a testsuite at a time, the failing exchanges' testcases as they are read
    (see :data:`Listed`)."""
    words = worded_for(report.kind, words)
    read = exchanges_of(report, exchanges)
    sections = [section for section in report.sections if section.kind != "trend"]
    root = ET.Element("testsuites", name=_clean(words(f"report.title.{report.kind}")), timestamp=report.generated)
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    severity = _severities(words)
    suites = []
    for section in sections:
        counted = {
            "tests": len(section.results),
            "failures": sum(r.verdict == Verdict.FAIL for r in section.results),
            "errors": sum(r.verdict == Verdict.ERROR for r in section.results),
            "skipped": sum(r.verdict == Verdict.SKIP for r in section.results),
        }
        title = words(section.title) + (f" {section.subtitle}" if section.subtitle else "")
        suite = ET.Element(
            "testsuite",
            name=_clean(title),
            id=_clean(section.id),
            timestamp=report.generated,
            **{k: str(v) for k, v in counted.items()},
        )
        cut = truncation(report) if section.id == "exchanges" else None
        issues_cut = issues_truncation(report) if section.id == "exchanges" else None
        if cut is not None or issues_cut is not None:  # not every failing exchange or issue
            properties = ET.SubElement(suite, "properties")
        if cut is not None:  # the testcases are the newest failing exchanges, not all of them
            shown, total = len(report.exchanges), report.exchanges_total
            ET.SubElement(properties, "property", name="failing-listed", value=str(shown))
            ET.SubElement(properties, "property", name="failing-total", value=str(total))
        if issues_cut is not None:  # their failures list only some of their issues
            ET.SubElement(properties, "property", name="issues-omitted", value=str(report.findings_omitted))
        ET.SubElement(suite, _CASES)
        said = [_clean(words(*note)) for note in (cut, issues_cut) if note is not None]
        if said:
            ET.SubElement(suite, "system-out").text = "\n".join(said)
        suites.append((section, suite))
        for key in totals:
            totals[key] += counted[key]
    root.attrib.update({k: str(v) for k, v in totals.items()})
    ET.SubElement(root, _CASES)  # the testsuites, as written
    opening, closing = _around(root, 0)
    yield '<?xml version="1.0" encoding="UTF-8"?>\n' + opening
    for index, (section, suite) in enumerate(suites):
        before, after = _around(suite, 1)
        yield ("" if index == 0 else "\n  ") + before
        results = (failing_result(e) for e in read()) if section.id == "exchanges" else section.results
        for number, result in enumerate(results):
            case = _testcase(f"yiyang.{report.kind}.{section.id}", result, words, severity)
            ET.indent(case, level=2)
            yield ("" if number == 0 else "\n    ") + ET.tostring(case, encoding="unicode")
        yield after
    yield closing + "\n"


#: where a testsuite's testcases (and the testsuites' testsuites) go, written as they are made
_CASES = "testcases-written-here"


def _around(element: ET.Element, level: int) -> tuple[str, str]:
    """``element`` written indented at ``level``, before and after its :data:`_CASES`."""
    ET.indent(element, level=level)
    before, after = ET.tostring(element, encoding="unicode").split(f"<{_CASES} />")
    return before, after


def _testcase(classname: str, result: Result, words: Wording, severity: Callable[[str], str]) -> ET.Element:
    case = ET.Element("testcase", classname=_clean(classname), name=_clean(result.label))
    if result.verdict == Verdict.SKIP:  # a test kit's test not run says why
        reason = next((f.text for f in result.findings if f.rule == SKIP_REASON), words("report.verdict.skip"))
        ET.SubElement(case, "skipped", message=_clean(reason))
        return case
    tag = _TAGS.get(result.verdict)
    if tag is None:
        return case
    first = next((f for f in result.findings if f.is_error), result.findings[0] if result.findings else None)
    outcome = ET.SubElement(
        case, tag, message=_clean(_message(result, first, words)), type=_clean(_type(result, first))
    )
    lines = [_line(f, severity) for f in result.findings]
    if result.examples:
        lines.append(words("report.column.examples") + ": " + ", ".join(result.examples))
    if result.note:
        lines.append(result.note)
    outcome.text = _clean("\n".join(lines))
    return case


def _message(result: Result, first: Finding | None, words: Wording) -> str:
    if result.counts is not None:
        counts = result.counts
        return words(
            "report.junit.rate",
            {"rate": percent(counts.rate), "failed": counts.failed, "errors": counts.errors, "total": counts.total},
        )
    if result.occurrences is not None:
        return words("report.junit.rule", {"occurrences": result.occurrences, "affected": result.affected or 0})
    if first is not None:
        return f"{first.rule} {first.location}: {first.text}".strip()
    return words(f"report.verdict.{result.verdict}")


def _type(result: Result, first: Finding | None) -> str:
    if result.occurrences is not None:
        return result.label
    return first.rule if first is not None else result.verdict


def _severities(words: Wording) -> Callable[[str], str]:
    """A severity code's wording, each looked up once: a failing exchange lists up to 10,000
    findings, a report up to a thousand such exchanges."""
    worded: dict[str, str] = {}

    def severity(code: str) -> str:
        return worded.get(code) or worded.setdefault(code, words(f"report.severity.{code}"))

    return severity


def _line(finding: Finding, severity: Callable[[str], str]) -> str:
    where = " ".join(part for part in (finding.subject, finding.location) if part)
    return f"{severity(finding.severity)} [{finding.rule}] {where}: {finding.text}"

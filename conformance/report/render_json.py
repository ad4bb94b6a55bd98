"""A report as JSON for machines, in the shape ``conformance/report.schema.json`` documents.

Ids, verdicts and numbers are the contract; titles and verdict names are given in the
report's language beside them, for tools that show them as they are.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from conformance.report.aggregate import failing_result
from conformance.report.model import (
    Counts,
    ExchangeDetail,
    Finding,
    Listed,
    Report,
    Result,
    Section,
    Wording,
    exchanges_of,
)

#: the schema's $id, and the value of every document's "schema" member
SCHEMA_ID = "urn:yiyang:conformance-report:1"
SCHEMA_PATH = Path(__file__).resolve().parent.parent / "report.schema.json"
#: bytes of failing exchanges' documents a JSON report keeps in memory between their two
#: listings before it moves them to a temporary file
KEPT_IN_MEMORY = 1 << 20


def schema() -> dict[str, Any]:
    with SCHEMA_PATH.open(encoding="utf-8") as handle:
        return json.load(handle)


def render_json(report: Report, words: Wording, lang: str) -> str:
    return "".join(iter_json(report, words, lang))


def iter_json(report: Report, words: Wording, lang: str, exchanges: Listed | None = None) -> Iterator[str]:
    """The document a member at a time, each failing exchange on a line of its own as it is
    read (see :data:`Listed`).  They are listed twice, as the exchanges section's results and
    as ``exchanges``, and read once: each one's second listing is kept, written, in a
    temporary file (in memory up to :data:`KEPT_IN_MEMORY` bytes) until its place comes, so
    that the store's reads of their issues are not made twice and no more than one of them
    is held at a time."""
    read = exchanges_of(report, exchanges)
    with tempfile.SpooledTemporaryFile(KEPT_IN_MEMORY) as kept:
        sectioned = False

        def listed_once() -> Iterator[ExchangeDetail]:
            nonlocal sectioned
            sectioned = True
            for exchange in read():
                kept.write(_exchange_json(exchange).encode() + b"\n")
                yield exchange

        head = {
            "schema": SCHEMA_ID,
            "kind": report.kind,
            "lang": lang,
            "title": words(f"report.title.{report.kind}"),
            "generated": report.generated,
            "scope": [{"name": name, "label": words(name), "value": value} for name, value in report.scope],
            "summary": counts_document(report.summary),
        }
        yield "{" + ",\n ".join(f"{_dumps(name)}: {_dumps(value)}" for name, value in head.items())
        yield ',\n "sections": '
        yield from _array(_section(section, words, listed_once) for section in report.sections)
        yield ',\n "exchanges": '
        kept.seek(0)
        # a report with no exchanges section (a file check's) reads them here, for the first time
        documents = (line[:-1].decode() for line in kept) if sectioned else map(_exchange_json, read())
        yield from _array((document,) for document in documents)
        tail = {"exchangesTotal": report.exchanges_total, "findingsOmitted": report.findings_omitted}
        yield "".join(f",\n {_dumps(name)}: {_dumps(value)}" for name, value in tail.items()) + "}\n"


def _exchange_json(exchange: ExchangeDetail) -> str:
    return _dumps(exchange_document(exchange))


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _array(items: Iterable[Iterable[str]]) -> Iterator[str]:
    """A JSON array, one item a line; each item is given as the chunks it is written in."""
    yield "["
    for index, chunks in enumerate(items):
        yield "\n  " if index == 0 else ",\n  "
        yield from chunks
    yield "]"


def counts_document(counts: Counts) -> dict[str, Any]:
    return {
        "total": counts.total,
        "passed": counts.passed,
        "failed": counts.failed,
        "errors": counts.errors,
        "skipped": counts.skipped,
        "passRate": None if counts.rate is None else round(counts.rate, 6),
    }


def exchange_document(exchange: ExchangeDetail) -> dict[str, Any]:
    return {
        "id": exchange.id,
        "recorded": exchange.recorded,
        "day": exchange.day,
        "client": exchange.client,
        "organization": exchange.organization,
        "source": exchange.source,
        "channel": exchange.channel,
        "interaction": exchange.interaction,
        "status": exchange.status,
        "verdict": exchange.verdict,
        "resourceTypes": list(exchange.resource_types),
        "resources": exchange.resources,
        "errors": exchange.errors,
        "warnings": exchange.warnings,
        "verdicts": [
            {
                "resourceType": v.resource_type,
                "resourceId": v.resource_id,
                "profile": v.profile,
                "passed": v.passed,
                "errors": v.errors,
                "warnings": v.warnings,
                "resources": v.resources,
            }
            for v in exchange.verdicts
        ],
        "findings": [_finding(f) for f in exchange.findings],
    }


def _section(section: Section, words: Wording, read: Callable[[], Iterable[ExchangeDetail]]) -> Iterator[str]:
    """A section's document; the exchanges section's results as they are read."""
    found: dict[str, Any] = {"id": section.id, "title": words(section.title), "kind": section.kind}
    if section.subtitle:
        found["subtitle"] = section.subtitle
    if section.id != "exchanges":
        found["results"] = [_result(result) for result in section.results]
        yield _dumps(found)
        return
    yield _dumps(found)[:-1] + ', "results": '
    yield from _array((_dumps(_result(failing_result(exchange))),) for exchange in read())
    yield "}"


def _result(result: Result) -> dict[str, Any]:
    found: dict[str, Any] = {"id": result.id, "label": result.label, "verdict": result.verdict}
    if result.note:
        found["note"] = result.note
    if result.counts is not None:
        found["counts"] = counts_document(result.counts)
    if result.severity:
        found["severity"] = result.severity
    if result.occurrences is not None:
        found["occurrences"] = result.occurrences
    if result.affected is not None:
        found["affected"] = result.affected
    if result.examples:
        found["examples"] = list(result.examples)
    if result.findings:
        found["findings"] = [_finding(f) for f in result.findings]
    if result.link is not None:
        found["link"] = result.link
    return found


def _finding(finding: Finding) -> dict[str, Any]:
    found = {"severity": finding.severity, "rule": finding.rule, "location": finding.location, "text": finding.text}
    if finding.subject:
        found["subject"] = finding.subject
    if finding.verdict:
        found["verdict"] = finding.verdict
    return found

"""A report as JSON for machines, in the shape ``conformance/report.schema.json`` documents.

Ids, verdicts and numbers are the contract; titles and verdict names are given in the
report's language beside them, for tools that show them as they are.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from conformance.report.model import Counts, ExchangeDetail, Finding, Report, Result, Section, Wording

#: the schema's $id, and the value of every document's "schema" member
SCHEMA_ID = "urn:yiyang:conformance-report:1"
SCHEMA_PATH = Path(__file__).resolve().parent.parent / "report.schema.json"


def schema() -> dict[str, Any]:
    with SCHEMA_PATH.open(encoding="utf-8") as handle:
        return json.load(handle)


def render_json(report: Report, words: Wording, lang: str) -> str:
    return json.dumps(report_document(report, words, lang), ensure_ascii=False, indent=1) + "\n"


def report_document(report: Report, words: Wording, lang: str) -> dict[str, Any]:
    return {
        "schema": SCHEMA_ID,
        "kind": report.kind,
        "lang": lang,
        "title": words(f"report.title.{report.kind}"),
        "generated": report.generated,
        "scope": [{"name": name, "label": words(name), "value": value} for name, value in report.scope],
        "summary": counts_document(report.summary),
        "sections": [_section(section, words) for section in report.sections],
        "exchanges": [exchange_document(exchange) for exchange in report.exchanges],
        "exchangesTotal": report.exchanges_total,
        "findingsOmitted": report.findings_omitted,
    }


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


def _section(section: Section, words: Wording) -> dict[str, Any]:
    found: dict[str, Any] = {"id": section.id, "title": words(section.title), "kind": section.kind}
    if section.subtitle:
        found["subtitle"] = section.subtitle
    found["results"] = [_result(result) for result in section.results]
    return found


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

"""References inside a Bundle must resolve: urn:uuid to a fullUrl, Type/id to an entry,
and conditional references (``Patient?identifier=sys|value``) to exactly one entry."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl

from conformance.issues import IssueList


def _references(node: Any, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "reference" and isinstance(value, str):
                yield value, f"{path}.reference"
            elif isinstance(value, (dict, list)) and key != "contained":
                yield from _references(value, f"{path}.{key}")
    elif isinstance(node, list):
        for index, item in enumerate(node):
            yield from _references(item, f"{path}[{index}]")


def _matches_query(resource: dict[str, Any], query: str) -> bool:
    for name, wanted in parse_qsl(query, keep_blank_values=True):
        if name != "identifier":
            return False  # only identifier queries can be decided offline
        system, _, value = wanted.rpartition("|")
        if not any(
            isinstance(i, dict) and i.get("value") == value and (not system or i.get("system") == system)
            for i in resource.get("identifier", [])
        ):
            return False
    return True


def check_bundle(bundle: dict[str, Any], path: str, issues: IssueList) -> None:
    entries = [e for e in bundle.get("entry", []) if isinstance(e, dict)]
    full_urls = {e["fullUrl"] for e in entries if isinstance(e.get("fullUrl"), str)}
    local_ids = set()
    for entry in entries:
        resource = entry.get("resource")
        if isinstance(resource, dict) and isinstance(resource.get("id"), str):
            local_ids.add(f"{resource.get('resourceType')}/{resource['id']}")
    must_resolve = bundle.get("type") == "document"
    for index, entry in enumerate(entries):
        resource = entry.get("resource")
        if not isinstance(resource, dict):
            continue
        for reference, where in _references(resource, f"{path}.entry[{index}].resource"):
            if reference.startswith("#"):
                continue
            if reference.startswith(("urn:uuid:", "urn:oid:")):
                if reference not in full_urls:
                    issues.error("rule.reference-unresolved", where, reference=reference)
            elif "?" in reference:
                _conditional(reference, entries, where, issues)
            elif (
                reference in full_urls or reference in local_ids or any(u.endswith("/" + reference) for u in full_urls)
            ):
                continue
            elif must_resolve:
                issues.error("rule.reference-unresolved", where, reference=reference)
            else:
                issues.add("information", "rule.reference-external", where, reference=reference)


def _conditional(reference: str, entries: list[dict[str, Any]], where: str, issues: IssueList) -> None:
    resource_type, _, query = reference.partition("?")
    if not resource_type.isalpha() or "=" not in query:
        issues.error("rule.conditional-reference-malformed", where, reference=reference)
        return
    count = sum(
        1
        for e in entries
        if isinstance(e.get("resource"), dict)
        and e["resource"].get("resourceType") == resource_type
        and _matches_query(e["resource"], query)
    )
    if count > 1:
        issues.error("rule.conditional-reference-ambiguous", where, reference=reference, count=count)
    elif count == 0:
        issues.add("information", "rule.reference-external", where, reference=reference)

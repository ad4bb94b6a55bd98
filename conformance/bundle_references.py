"""References inside a Bundle must resolve: urn:uuid to a fullUrl, Type/id to an entry (a
version-specific one to that version), and conditional references
(``Patient?identifier=sys|value``) to exactly one entry.

How strictly depends on what the Bundle is for.  A document, a transaction or a batch is
processed as a whole, so a ``urn:`` reference that names no entry can never be followed: an
error.  In a collection, searchset, history or message Bundle the reference HL7 validator only
warns about it, and so do we; a relative reference that names no entry may be on a server
(information).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from conformance.bundle_index import BundleIndex, split_version
from conformance.issues import IssueList

#: Bundle types whose urn: references must all resolve inside the Bundle
URN_MUST_RESOLVE = frozenset({"document", "transaction", "batch"})


def _references(node: Any, path: str) -> Iterator[tuple[str, str]]:
    """(reference, FHIRPath of it) below ``node``; a primitive's ``_status`` is its
    ``status`` in FHIRPath, as the base walk locates its extensions."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "reference" and isinstance(value, str):
                yield value, f"{path}.reference"
            elif isinstance(value, (dict, list)) and key != "contained":
                yield from _references(value, f"{path}.{key.removeprefix('_')}")
    elif isinstance(node, list):
        for index, item in enumerate(node):
            yield from _references(item, f"{path}[{index}]")


def check_bundle(bundle: dict[str, Any], path: str, issues: IssueList, index: BundleIndex | None = None) -> None:
    index = index or BundleIndex(bundle)
    entries = bundle.get("entry")
    kind = bundle.get("type") if isinstance(bundle.get("type"), str) else None
    urn_severity = "error" if kind in URN_MUST_RESOLVE else "warning"
    for position, entry in enumerate(entries if isinstance(entries, list) else ()):
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if not isinstance(resource, dict):
            continue
        full_url = entry.get("fullUrl") if isinstance(entry.get("fullUrl"), str) else None
        for reference, where in _references(resource, f"{path}.entry[{position}].resource"):
            if reference.startswith("#"):
                continue
            if "?" in reference:
                _conditional(index, reference, where, issues)
            elif index.find(reference, full_url) is not None:
                continue
            elif split_version(reference)[1] is not None and index.has_version(reference, full_url):
                issues.add(urn_severity, "rule.reference-version-unresolved", where, reference=reference)
            elif reference.startswith(("urn:uuid:", "urn:oid:")):
                issues.add(urn_severity, "rule.reference-unresolved", where, reference=reference)
            elif kind == "document":
                issues.error("rule.reference-unresolved", where, reference=reference)
            else:
                issues.add("information", "rule.reference-external", where, reference=reference)


def _conditional(index: BundleIndex, reference: str, where: str, issues: IssueList) -> None:
    verdict, count = index.conditional(reference)
    if verdict == "malformed":
        issues.error("rule.conditional-reference-malformed", where, reference=reference)
    elif count > 1:
        issues.error("rule.conditional-reference-ambiguous", where, reference=reference, count=count)
    elif count == 0:
        issues.add("information", "rule.reference-external", where, reference=reference)

"""What a reference may be in a resource a server keeps (references.html#literal).

A stored resource is read on its own, later, by anyone: its references must be followable
from there.  A relative reference is ``Type/id`` (or ``Type/id/_history/vid``) with an R4
resource type and a FHIR id; an absolute URL names a resource on another server; ``#id`` a
contained one.  A ``urn:uuid:``/``urn:oid:`` reference resolves only inside the Bundle that
carried it, and a conditional one (``Patient?identifier=…``) only while a transaction is
processed: once stored, neither can ever be followed, and a search by the reference never
finds them.  ``Patient/a b``, ``Patient/`` and ``Patient?`` are no references at all.

Bundles are judged by their own rules (``bundle_references``); this is for the resource a
server is about to store, after a transaction has rewritten what it resolves.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from conformance.issues import IssueList
from profiles.registry import r4_base_types

_RELATIVE = re.compile(r"(?P<type>[A-Za-z]+)/[A-Za-z0-9\-.]{1,64}(?:/_history/[A-Za-z0-9\-.]{1,64})?")
_ABSOLUTE = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://\S+")
#: the keys a Reference may have, from the R4 base model: a ``reference`` beside others is a
#: uri element of its own (DetectedIssue.reference, Immunization.education.reference)
REFERENCE_KEYS = frozenset(r4_base_types()["Reference"]["nodes"]["Reference"])


def check_stored_references(
    resource: dict[str, Any], path: str, resource_types: frozenset[str], issues: IssueList
) -> None:
    if resource.get("resourceType") == "Bundle":
        return  # a stored document keeps its urn: references, resolved by its own entries
    for reference, where in _references(resource, path or str(resource.get("resourceType", ""))):
        if reference.startswith("#") or _ABSOLUTE.fullmatch(reference):
            continue
        if reference.startswith("urn:"):
            issues.error("reference.bundle-only", where, reference=reference)
        elif "?" in reference:
            issues.error("reference.conditional-not-resolved", where, reference=reference)
        elif (match := _RELATIVE.fullmatch(reference)) is None or match["type"] not in resource_types:
            issues.error("reference.malformed", where, reference=reference)


def _references(node: Any, path: str) -> Iterator[tuple[str, str]]:
    """(reference, FHIRPath of it) for every Reference, contained resources' too; iterative,
    so no nesting depth can exhaust the stack."""
    stack = [(node, path)]
    while stack:
        current, where = stack.pop()
        if isinstance(current, dict):
            value = current.get("reference")
            if isinstance(value, str) and {k.lstrip("_") for k in current} <= REFERENCE_KEYS:
                yield value, f"{where}.reference"
            stack.extend((child, f"{where}.{key}") for key, child in current.items() if not key.startswith("_"))
        elif isinstance(current, list):
            stack.extend((item, f"{where}[{index}]") for index, item in enumerate(current))

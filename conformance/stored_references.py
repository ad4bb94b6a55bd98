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
    references = References(resource, path)
    for node in references:
        message_id = _refusal(node["reference"], resource_types)
        if message_id is not None:
            issues.error(message_id, references.where(node), reference=node["reference"])


class References:
    """Every Reference of one resource, contained resources' too (iterated, each time anew),
    each located, its FHIRPath (``Observation.encounter.reference``), only when asked: for the
    rules that judge what a reference is or points at, which nearly never refuse one.
    Locating them walks every element building its path: judged by their locations, a
    benchmark transaction's ten entries cost 215 µs, judged as found and located on a
    refusal, under 80."""

    __slots__ = ("_located", "_path", "_resource")

    def __init__(self, resource: dict[str, Any], path: str) -> None:
        self._resource = resource
        self._path = path or str(resource.get("resourceType", ""))
        self._located: dict[int, str] | None = None

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(_references(self._resource))

    def where(self, node: dict[str, Any]) -> str:
        """The FHIRPath of ``node``'s ``reference``; the resource is walked for it once."""
        if self._located is None:
            self._located = _locations(self._resource, self._path)
        return self._located[id(node)]


def _refusal(reference: str, resource_types: frozenset[str]) -> str | None:
    """The message id refusing ``reference`` for a stored resource, or None."""
    if reference.startswith("#") or _ABSOLUTE.fullmatch(reference):
        return None
    if reference.startswith("urn:"):
        return "reference.bundle-only"
    if "?" in reference:
        return "reference.conditional-not-resolved"
    match = _RELATIVE.fullmatch(reference)
    return None if match is not None and match["type"] in resource_types else "reference.malformed"


def _is_reference(node: dict[str, Any]) -> bool:
    """A Reference: a string ``reference`` among a Reference's keys alone (or their ``_``
    extensions, which only then need stripping: a set made for every Reference was a tenth
    of a transaction's reachability check)."""
    return isinstance(node.get("reference"), str) and (
        node.keys() <= REFERENCE_KEYS or {k.lstrip("_") for k in node} <= REFERENCE_KEYS
    )


def _references(node: Any) -> list[dict[str, Any]]:
    """Every Reference, contained resources' too; iterative, so no nesting depth can exhaust
    the stack, and no paths: nearly every resource has nothing to report.  Only containers
    are pushed, by a plain loop: a generator per object and a push of every list's strings
    made this walk, run twice on every write, twice as slow; and a list, which its callers'
    loops ran through a tenth faster than a generator yielding them."""
    found: list[dict[str, Any]] = []
    stack = [node]
    push, pop = stack.append, stack.pop
    while stack:
        current = pop()
        if type(current) is dict:
            if "reference" in current and _is_reference(current):
                found.append(current)
            for key, child in current.items():
                if (type(child) is dict or type(child) is list) and key[:1] != "_":
                    push(child)
        elif type(current) is list:
            for child in current:
                if type(child) is dict or type(child) is list:
                    push(child)
    return found


def _locations(node: Any, path: str) -> dict[int, str]:
    """The FHIRPath ``.reference`` of every Reference (by object identity), for the rare
    resource with a refusal to locate."""
    located, stack = {}, [(node, path)]
    while stack:
        current, where = stack.pop()
        if type(current) is dict:
            if "reference" in current and _is_reference(current):
                located[id(current)] = f"{where}.reference"
            stack.extend((child, f"{where}.{key}") for key, child in current.items() if key[:1] != "_")
        elif type(current) is list:
            stack.extend((item, f"{where}[{index}]") for index, item in enumerate(current))
    return located

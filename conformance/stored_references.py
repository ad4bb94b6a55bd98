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
    resource: dict[str, Any],
    path: str,
    resource_types: frozenset[str],
    issues: IssueList,
    references: References | None = None,
) -> None:
    """``references``: the resource's, found already (:class:`References`), or None."""
    if resource.get("resourceType") == "Bundle":
        return  # a stored document keeps its urn: references, resolved by its own entries
    references = references if references is not None else References(resource, path)
    for node in references:
        message_id = _refusal(node["reference"], resource_types)
        if message_id is not None:
            issues.error(message_id, references.where(node), reference=node["reference"])


class References:
    """Every Reference of one resource, contained resources' too, found in one walk the first
    time anyone asks and then shared by every rule that reads them (a transaction's entry asks
    six times: whether it refers conditionally, what the archive must resolve, which people
    it names, whether a restricted client may name them, and whether they may be stored);
    each located, its FHIRPath (``Observation.encounter.reference``), only when asked: for the
    rules that judge what a reference is or points at, which nearly never refuse one.
    Locating them walks every element building its path: judged by their locations, a
    benchmark transaction's ten entries cost 215 µs, judged as found and located on a
    refusal, under 80.

    Found once, they stay the nodes found: a rewrite of a ``reference`` in place (a
    transaction's links, its conditional references resolved) is read through them, and a
    shallow copy of the resource (an id assigned) has the same ones (:meth:`of_copy`), but a
    resource whose elements are replaced needs References of its own."""

    __slots__ = ("_every", "_located", "_path", "_resource", "_stored")

    def __init__(self, resource: Any, path: str) -> None:
        self._resource = resource
        resource_type = resource.get("resourceType", "") if isinstance(resource, dict) else ""
        self._path = path or str(resource_type)
        self._located: dict[int, str] | None = None
        self._stored: list[dict[str, Any]] | None = None
        self._every: list[dict[str, Any]] = []

    @property
    def resource(self) -> Any:
        return self._resource

    def of_copy(self, resource: dict[str, Any]) -> References:
        """These References, of ``resource``: a shallow copy of this one's (its own top-level
        keys, its elements the same objects), whose references are therefore not sought again."""
        copied = References(resource, self._path)
        copied._stored, copied._every, copied._located = self._stored, self._every, self._located
        return copied

    def __iter__(self) -> Iterator[dict[str, Any]]:
        """The References as a stored resource has them (of a Reference's keys alone, a
        primitive's extensions' too)."""
        if self._stored is None:
            self._stored, self._every = _references(self._resource)
        return iter(self._stored)

    @property
    def every(self) -> list[dict[str, Any]]:
        """Every object with a string ``reference``, wherever it is (a primitive's
        extensions, a ``reference`` beside other keys too), in the order
        :func:`mappings.engine.reference_nodes` finds them: what a transaction resolves and
        rewrites, and the people a write names."""
        if self._stored is None:
            self._stored, self._every = _references(self._resource)
        return self._every

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


def _references(node: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(the stored form's References, every object with a string ``reference``), in one
    walk, contained resources' too, and a primitive's extensions' (``_birthDate``): a
    ``valueReference`` there is stored, followed and named as any other.  Iterative, so no
    nesting depth can exhaust the stack, and no paths: nearly every resource has nothing to
    report.  A container's values are pushed whole (strings too, dropped when popped: a loop
    over them in Python cost half as much again)."""
    stored: list[dict[str, Any]] = []
    every: list[dict[str, Any]] = []
    stack = [node]
    extend, pop = stack.extend, stack.pop
    while stack:
        current = pop()
        kind = type(current)
        if kind is dict:
            if type(current.get("reference")) is str:
                every.append(current)
                if _is_reference(current):
                    stored.append(current)
            extend(current.values())
        elif kind is list:
            extend(current)
    return stored, every


def _locations(node: Any, path: str) -> dict[int, str]:
    """The FHIRPath ``.reference`` of every Reference (by object identity), for the rare
    resource with a refusal to locate; a primitive's ``_birthDate`` is its ``birthDate`` in
    FHIRPath, as the validator locates it (``Patient.birthDate.extension[0]``)."""
    located, stack = {}, [(node, path)]
    while stack:
        current, where = stack.pop()
        if type(current) is dict:
            if "reference" in current and _is_reference(current):
                located[id(current)] = f"{where}.reference"
            stack.extend((child, f"{where}.{key.removeprefix('_')}") for key, child in current.items())
        elif type(current) is list:
            stack.extend((item, f"{where}[{index}]") for index, item in enumerate(current))
    return located

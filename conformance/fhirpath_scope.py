"""What FHIRPath's ``%resource`` and ``%rootResource`` name, and where ``resolve()`` looks.

The FHIR FHIRPath variables (fhirpath.html#vars): ``%resource`` is the resource the element
belongs to — never going past it into a Bundle or a Parameters — and ``%rootResource`` is the
container of a contained resource, else ``%resource`` again.  Handing every nested resource the
outermost one made bdl-*, ref-1 and dom-* answer for the wrong resource, both ways.

The walk builds one :class:`Scope` per resource as it descends: a Bundle entry's resource, a
resource inside Parameters or any other resource-typed element starts a scope of its own; a
contained resource keeps its container as root and the container's Bundle for resolution.

A reference the instance does not hold may still resolve *elsewhere*: the gateway, validating
a write, hands the validator a resolver over its archive (:func:`resolving_elsewhere`); offline
validation has none, and such a reference resolves to nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, NamedTuple

from conformance.bundle_index import BundleIndex

#: a literal reference (``Patient/1``, absolute, ``…/_history/2``) → the resource, or None
Resolver = Callable[[str], dict[str, Any] | None]
_ELSEWHERE: ContextVar[Resolver | None] = ContextVar("resolving_elsewhere", default=None)


@contextmanager
def resolving_elsewhere(resolver: Resolver | None) -> Iterator[None]:
    """References not found in the instance are looked up with ``resolver`` inside the block."""
    token = _ELSEWHERE.set(resolver)
    try:
        yield
    finally:
        _ELSEWHERE.reset(token)


class Scope(NamedTuple):
    """Immutable, as a tuple: every resource a walk meets makes one (a target's another), and
    a frozen dataclass's field-by-field ``object.__setattr__`` cost four times a tuple's making."""

    #: %resource
    resource: dict[str, Any]
    #: %rootResource
    root: dict[str, Any]
    #: the Bundle whose entry holds ``root``, where non-local references resolve
    bundle: BundleIndex | None = None
    #: that entry's fullUrl, the base relative references resolve against
    full_url: str | None = None
    #: when ``resource`` is itself a Bundle: its own entries, for the scopes of its entries
    entries: BundleIndex | None = None

    @staticmethod
    def of(resource: dict[str, Any]) -> Scope:
        """The scope of a resource validated on its own (or one nested in a non-Bundle)."""
        return Scope(resource, resource, entries=_entries_of(resource))

    def contained(self, item: dict[str, Any]) -> Scope:
        """A contained resource: its container stays %rootResource and keeps its Bundle."""
        return Scope(item, self.resource, self.bundle, self.full_url)

    def entry(self, item: dict[str, Any], full_url: Any) -> Scope:
        """The resource of one of this Bundle's entries."""
        return Scope(item, item, self.entries, full_url if isinstance(full_url, str) else None, _entries_of(item))

    def resolve(self, reference: str) -> dict[str, Any] | None:
        """The resource a reference names, or None (external, or absent).

        ``#id`` is a contained resource of the root, ``#`` the root itself seen from one of its
        contained resources; anything else is looked up in the enclosing Bundle, then elsewhere
        (the archive) when a resolver is in force.
        """
        if reference.startswith("#"):
            if reference == "#":
                return self.root if self.root is not self.resource else None
            contained = self.root.get("contained")
            for item in contained if isinstance(contained, list) else ():
                if isinstance(item, dict) and item.get("id") == reference[1:]:
                    return item
            return None
        found = self.bundle.resource(reference, self.full_url) if self.bundle is not None else None
        if found is None and not reference.startswith("urn:"):
            elsewhere = _ELSEWHERE.get()
            if elsewhere is not None:
                return elsewhere(reference)
        return found


def _entries_of(resource: dict[str, Any]) -> BundleIndex | None:
    return BundleIndex(resource) if resource.get("resourceType") == "Bundle" else None

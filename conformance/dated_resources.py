"""Which elements of a resource type date what happened to its person, and which names that
person: the data of the rule that nothing happens before a birth (:mod:`conformance.after_birth`).

A province may date its events by other elements, or name the person otherwise, so the rule is
data in the package: one ``yy-ext-after-birth`` extension per resource type on an
ImplementationGuide (the provincial package's own, or an ``--ig`` package's), read from the
registry and compiled once per set of definitions.  Where two guides speak of one type, the
first in the registry's order answers, as a definition's URL does.  An extension that names no
type or no person is skipped (the validator reports its shape where it is written, and
:func:`unknown_names` a type or element R4 lacks), so the rest of the rule still applies.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from profiles.registry import Registry

#: the extension's slug under the registry's canonical base
EXTENSION = "yy-ext-after-birth"


@dataclass(frozen=True)
class DatedResource:
    """One type's part of the rule: ``events`` must not precede the birth of the person
    ``person`` names, ``prenatal`` may (a warning); each a primitive, a Period or the stem of
    a choice (``effective`` is ``effectiveDateTime``, ``effectivePeriod``…).  Where
    ``held_by`` names another than ``person`` does (a dependant on a parent's policy), the
    events are the holder's, so one before the birth is a warning too."""

    person: str
    events: tuple[str, ...]
    prenatal: tuple[str, ...]
    held_by: str | None = None


class DatedResources:
    """The compiled rule of a registry, by resource type, compiled again when definitions are
    added to it (``--ig``, a runtime addition)."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self._compiled: tuple[int, dict[str, DatedResource]] | None = None

    def get(self, kind: object) -> DatedResource | None:
        """The rule for a ``resourceType``, which in hostile input may be any JSON value."""
        return self.by_type().get(kind) if isinstance(kind, str) else None

    def by_type(self) -> Mapping[str, DatedResource]:
        if self._compiled is None or self._compiled[0] != self.registry.generation:
            self._compiled = (self.registry.generation, _compile(self.registry))
        return self._compiled[1]


def _compile(registry: Registry) -> dict[str, DatedResource]:
    url = registry.url("StructureDefinition", EXTENSION)
    found: dict[str, DatedResource] = {}
    for guide in registry.all("ImplementationGuide"):
        for _, parts in _rules(guide, url):
            kind, person = _single(parts, "type", "valueCode"), _single(parts, "person", "valueString")
            if kind is not None and person is not None and kind not in found:
                events, prenatal = _strings(parts, "event"), _strings(parts, "prenatal")
                found[kind] = DatedResource(person, events, prenatal, _single(parts, "heldBy", "valueString"))
    return found


def unknown_names(guide: Mapping[str, Any], registry: Registry, path: str) -> Iterator[tuple[str, str, str | None]]:
    """(FHIRPath, type, element) of each name in a guide's rule that R4 lacks: a type that is
    no R4 resource type (element None), an element its type lacks.  A misspelt name is a date
    never judged, so it is reported where it is written, at the part's value.  The extension's
    ``type`` is bound to R4's resource-types too, whose finding on the same value the type's
    supersedes (the catalog's ``definition.unknown-type``): this one says what is wrong."""
    url = registry.url("StructureDefinition", EXTENSION)
    types = registry.base_types
    for index, parts in _rules(guide, url):
        kind = _single(parts, "type", "valueCode")
        if kind is None:
            continue  # no single type: the extension's cardinality says so
        nodes = (
            types.get(kind, {}).get("nodes", {}).get(kind) if types.get(kind, {}).get("kind") == "resource" else None
        )
        if nodes is None:
            yield f"{path}.extension[{index}].extension[{_position(parts, 'type')}].value", kind, None
            continue
        for part_index, part in enumerate(parts):
            named = isinstance(part, dict) and part.get("url") in ("person", "heldBy", "event", "prenatal")
            element = part.get("valueString") if named else None
            if isinstance(element, str) and element not in nodes and f"{element}[x]" not in nodes:
                yield f"{path}.extension[{index}].extension[{part_index}].value", kind, element


def _rules(guide: Mapping[str, Any], url: str) -> Iterator[tuple[int, list[Any]]]:
    """(position, parts) of each of a guide's extensions of the rule."""
    extensions = guide.get("extension")
    for index, extension in enumerate(extensions if isinstance(extensions, list) else ()):
        if isinstance(extension, dict) and extension.get("url") == url and isinstance(extension.get("extension"), list):
            yield index, extension["extension"]


def _position(parts: list[Any], name: str) -> int:
    """Where the part ``name`` stands among a rule's parts (the caller knows there is one)."""
    return next(i for i, part in enumerate(parts) if isinstance(part, dict) and part.get("url") == name)


def _single(parts: list[Any], name: str, value: str) -> str | None:
    values = [part.get(value) for part in parts if isinstance(part, dict) and part.get("url") == name]
    return values[0] if len(values) == 1 and isinstance(values[0], str) and values[0] else None


def _strings(parts: list[Any], name: str) -> tuple[str, ...]:
    return tuple(
        part["valueString"]
        for part in parts
        if isinstance(part, dict) and part.get("url") == name and isinstance(part.get("valueString"), str)
    )

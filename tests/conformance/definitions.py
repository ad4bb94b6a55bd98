"""Conformance resources built in tests: a StructureDefinition from a few differential (or
snapshot) elements, and a validator that knows them on top of the provincial package."""

from __future__ import annotations

from typing import Any

from conformance.validator import Validator
from profiles.registry import Registry

CORE = "http://hl7.org/fhir/StructureDefinition/"


def sd(
    url: str,
    type_: str,
    elements: list[dict[str, Any]],
    kind: str = "resource",
    snapshot: bool = False,
    base: str | None = None,
) -> dict[str, Any]:
    """A constraint profile of ``type_``; each element's ``path`` is derived from its ``id``."""
    for element in elements:
        element.setdefault("path", ".".join(step.split(":")[0] for step in element["id"].split(".")))
    return {
        "resourceType": "StructureDefinition",
        "url": url,
        "name": "T",
        "status": "active",
        "kind": kind,
        "abstract": False,
        "type": type_,
        "baseDefinition": base or CORE + type_,
        "derivation": "constraint",
        ("snapshot" if snapshot else "differential"): {"element": [{"id": type_, "path": type_}, *elements]},
    }


def validator_with(*resources: dict[str, Any]) -> Validator:
    registry = Registry()
    for resource in resources:
        registry.add_resource(resource, "test")
    return Validator(registry)


def invariant(key: str, expression: str, severity: str = "error") -> dict[str, Any]:
    return {"key": key, "severity": severity, "human": key, "expression": expression}

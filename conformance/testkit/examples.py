"""The data the kit pushes and then expects to pull back: the provincial package's examples
(profiles/package/examples), read from its manifest so the kit follows the package."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from profiles.registry import example_manifest, examples_dir

ID_CARD = "urn:oid:2.16.156.10011.1.3"
#: the elder whom the examples are about, and the one conditionally created twice
PATIENT, SECOND_PATIENT = "yy-patient/valid-zhang-xiuying.json", "yy-patient/valid-li-jianguo-minimal.json"


@cache
def manifest() -> list[dict[str, Any]]:
    return example_manifest()


def load(relative: str) -> dict[str, Any]:
    with (examples_dir() / relative).open(encoding="utf-8") as handle:
        return dict(json.load(handle))


def valid_resources() -> list[dict[str, Any]]:
    """Every valid example that is a resource with an id (Bundles are requests, not data)."""
    found = [load(e["file"]) for e in manifest() if e.get("valid")]
    return [r for r in found if r.get("resourceType") != "Bundle" and r.get("id")]


def invalid_patient() -> tuple[dict[str, Any], list[str]]:
    """An invalid Patient example and the FHIRPath locations its problems must be named at."""
    entry = next(e for e in manifest() if not e.get("valid") and e["file"].startswith("yy-patient/"))
    return load(entry["file"]), [x["expression"] for x in entry.get("expect", []) if x.get("expression")]


def id_card(resource: dict[str, Any]) -> str:
    """The 身份证号 identifier value of a Patient example."""
    return next(i["value"] for i in resource.get("identifier", []) if i.get("system") == ID_CARD)


def id_card_query(resource: dict[str, Any]) -> str:
    return f"{ID_CARD}|{id_card(resource)}"

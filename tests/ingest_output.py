"""Reading what an ingest run wrote: NDJSON per type and the quarantine, for the ingest tests."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

from gateway.storage.store import without_version
from mappings.engine import ID_NAMESPACE


def ndjson(path: Path) -> list[dict[str, Any]]:
    """The lines of an exported file, without the store's volatile version bookkeeping
    (meta.versionId and meta.lastUpdated differ from run to run)."""
    if not path.exists():
        return []
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [without_version(line) if "resourceType" in line else line for line in lines]


def keyed_id(kind: str, *key: str) -> str:
    """The id of a keyed resource: its type and business key (the ``key`` of its spec)."""
    return str(uuid.uuid5(ID_NAMESPACE, "|".join([kind, *key])))


def written(out: Path, kind: str, resource_id: str) -> dict[str, Any]:
    return next(r for r in ndjson(out / f"{kind}.ndjson") if r["id"] == resource_id)


def quarantined(out: Path, *where: str) -> dict[str, Any]:
    """The quarantine line at (file, location), or at a location when one file was ingested."""
    *file, location = where
    return next(
        e for e in ndjson(out / "quarantine.ndjson") if e["location"] == location and (not file or e["file"] == file[0])
    )


def reasons(out: Path, *where: str) -> list[tuple[str, str | None, str | None]]:
    """(message id, FHIRPath, legacy source) of every reason a quarantined record carries."""
    return [(r["id"], r.get("fhirpath"), r.get("source")) for r in quarantined(out, *where)["reasons"]]


def coding(system: str, code: str, display: str | None = None) -> dict[str, str]:
    found = {"system": system, "code": code}
    if display:
        found["display"] = display
    return found

"""Reading what an ingest run wrote: NDJSON per type and the quarantine, for the ingest tests."""

from __future__ import annotations

import json
import uuid
from functools import cache
from pathlib import Path
from typing import Any

from gateway.storage.store import without_version
from mappings.engine import ID_NAMESPACE, MappingEngine, record_id
from mappings.readers import read
from profiles.registry import Registry

SAMPLES = Path(__file__).resolve().parents[1] / "mappings" / "samples"


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


def made_id(spec: str, key: str, name: str, source: str = "community-health") -> str:
    """The id of the resource ``name`` that a record with this source key yields under its spec
    (see mappings.engine.record_id): ids come from what a record is, not from file and row."""
    return str(uuid.uuid5(ID_NAMESPACE, f"{spec}|{source}|key|{key}|{name}"))


@cache
def _engine() -> MappingEngine:
    from gateway.ingest.commands import build_engine

    return build_engine(Registry())


def sample_id(source: str, file: str, location: str, name: str) -> str:
    """The id the engine gives the resource ``name`` of the shipped sample record at
    ``file``/``location`` (before people are merged): from its spec and source key."""
    path = SAMPLES / source / file
    record = next(r for r in read(path, source) if r.location == location)
    mapped = _engine().map(record)
    assert mapped is not None, f"no spec maps {file} {location}"
    return record_id(mapped, name)


def mapped_resources(path: Path, source: str) -> list[dict[str, dict[str, Any]]]:
    """What the engine makes of each record of a file, by resource name (no validation, no
    archive): for tests of a spec's output alone."""
    found = []
    for record in read(path, source):
        mapped = _engine().map(record)
        assert mapped is not None, f"no spec maps {path.name} {record.location}"
        found.append(mapped.resources)
    return found


def personal_info_file(folder: Path, column: str, value: str) -> Path:
    """The first row of the shipped 个人基本信息表.csv with one cell changed, as a file in ``folder``."""
    header, row = (SAMPLES / "community-health/个人基本信息表.csv").read_text(encoding="utf-8-sig").splitlines()[:2]
    cells = row.split(",")
    cells[header.split(",").index(column)] = value
    path = folder / "个人基本信息表.csv"
    path.write_text(f"{header}\n{','.join(cells)}\n", encoding="utf-8")
    return path


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

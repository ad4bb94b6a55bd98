"""Mapping specs: one YAML file per kind of legacy record, grouped by source system.

A spec says which records it applies to (``match``: the columns, keys or message types the
record must have) and which resources it produces.  Adding a source or a province variant is
adding a spec file here; see docs/mappings.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

FOLDER = Path(__file__).parent
# libyaml's safe loader when PyYAML was built with it (10× faster start-up), else the pure one
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
SOURCES = ("community-health", "elderly-care", "insurance", "hl7v2")


@dataclass(slots=True)
class Spec:
    id: str
    title: str
    source: str
    #: the record must have all of these (CSV header columns, JSON keys, HL7 message types …)
    match: frozenset[str]
    resources: list[dict[str, Any]]
    #: fields deliberately not mapped (so they are not reported as unused)
    ignore: frozenset[str] = field(default_factory=frozenset)
    version: str = "1"
    file: str = ""

    def matches(self, shape: frozenset[str]) -> bool:
        return self.match <= shape


def load(folder: Path = FOLDER) -> list[Spec]:
    specs = []
    for path in sorted(folder.glob("*/*.yaml")):
        with path.open(encoding="utf-8") as handle:
            data = yaml.load(handle, Loader=_LOADER)
        specs.append(
            Spec(
                id=data["id"],
                title=data.get("title", data["id"]),
                source=data["source"],
                match=frozenset(data.get("match", [])),
                resources=data["resources"],
                ignore=frozenset(data.get("ignore", [])),
                version=str(data.get("version", "1")),
                file=str(path.relative_to(folder)),
            )
        )
    # the most specific spec wins when several match the same record
    return sorted(specs, key=lambda s: -len(s.match))

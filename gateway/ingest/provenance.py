"""Provenance for every mapped record: which system, file and row, and where each element came from."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from mappings.engine import Mapped, record_id

SOURCE_SYSTEMS = {
    "community-health": "基层/社区卫生服务系统",
    "elderly-care": "养老服务平台",
    "insurance": "医保信息平台",
    "hl7v2": "医院信息系统 (HL7 v2)",
}


def provenance(
    mapped: Mapped,
    resources: list[dict[str, Any]],
    recorded: str,
    base: str,
    arrived: Mapping[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """``arrived``: the record's resources as mapped, before any was merged into the archive's
    (its person, a keyed stay), whose positions the lineage names."""
    record = mapped.record
    targets = {id(resource) for resource in resources}
    named = {name for name, resource in mapped.resources.items() if id(resource) in targets}
    lineage = []
    for (name, path), ref in sorted(mapped.lineage.items(), key=lambda item: item[0]):
        landed = mapped.resources.get(name)
        if name not in named or landed is None:
            continue
        before = (arrived or {}).get(name, landed)
        where = path if before is landed else relocated(path, before, landed)
        if where is not None:
            lineage.append({"url": f"{base}/StructureDefinition/yy-ext-lineage", "valueString": f"{where} ← {ref}"})
    entity: dict[str, Any] = {
        "role": "source",
        "what": {
            "identifier": {
                "system": f"{base}/sid/legacy-record",
                "value": f"{record.source}|{record.file}|{record.location}",
            },
            "display": f"{SOURCE_SYSTEMS.get(record.source, record.source)}：{record.file} {record.location}",
        },
    }
    if lineage:
        entity["extension"] = lineage
    return {
        "resourceType": "Provenance",
        "id": record_id(mapped, "provenance"),
        "target": [{"reference": f"{r['resourceType']}/{r['id']}"} for r in resources],
        "recorded": recorded,
        "activity": {
            "coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-DataOperation", "code": "CREATE"}],
            "text": f"按映射规则 {mapped.spec.id} v{mapped.spec.version} 转换",
        },
        "agent": [
            {
                "type": {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/provenance-participant-type",
                            "code": "assembler",
                        }
                    ]
                },
                "who": {"display": "医养互联网关 Yiyang Gateway"},
            }
        ],
        "entity": [entity],
    }


_STEP = re.compile(r"(\w+)(?:\[(\d+)\])?")


def relocated(path: str, arrived: dict[str, Any], landed: dict[str, Any]) -> str | None:
    """Where an element of the record as mapped (``path`` in ``arrived``) sits in what landed
    (``landed``: the archive's person or stay, merged with it), or None where the archive kept
    a value of its own, which the record did not give.

    A merge appends the record's identifiers, names and addresses after the archive's, so
    ``Patient.identifier[0] ← 身份证号`` named the archive's first identifier, another
    source's; each repeating element is found again by its content."""
    kind, _, rest = path.partition(".")
    steps = [_STEP.fullmatch(step) for step in rest.split(".")] if rest else []
    if not all(steps):
        return None
    found = _relocated([(m.group(1), m.group(2)) for m in steps if m], arrived, landed)
    return ".".join([kind, *found]) if found is not None else None


def _relocated(steps: list[tuple[str, str | None]], arrived: Any, landed: Any) -> list[str] | None:
    if arrived == landed:
        return [f"{name}[{index}]" if index is not None else name for name, index in steps]
    if not steps or not isinstance(arrived, dict) or not isinstance(landed, dict):
        return None
    (name, index), rest = steps[0], steps[1:]
    mine, theirs = _elements(arrived, name), _elements(landed, name)
    position = 0 if index is None else int(index)
    if position >= len(mine):
        return None
    element = mine[position]
    if index is None:
        candidates = list(enumerate(theirs[:1]))  # a single element stays where it is
    else:  # a repeating one is found by its content, else by what the path goes on to name
        candidates = sorted(enumerate(theirs), key=lambda pair: pair[1] != element)
    for found, candidate in candidates:
        if not rest:
            below = [] if candidate == element else None
        else:  # a primitive's extension and id live beside it, in _name (gender.extension[0])
            below = _relocated(
                rest, *(pair[0] if isinstance(pair[0], dict) else pair[1] for pair in (element, candidate))
            )
        if below is not None:
            return [f"{name}[{found}]" if index is not None else name, *below]
    return None


def _elements(node: dict[str, Any], name: str) -> list[tuple[Any, Any]]:
    """The element ``name`` of a JSON object, each repetition with its ``_name`` shadow."""
    values, shadows = node.get(name), node.get(f"_{name}")
    if not isinstance(values, list) and not isinstance(shadows, list):
        return [(values, shadows)] if values is not None or shadows is not None else []
    values = values if isinstance(values, list) else [None] * len(shadows or [])
    shadows = shadows if isinstance(shadows, list) else [None] * len(values)
    return list(zip(values, shadows, strict=False))

"""Provenance for every mapped record: which system, file and row, and where each element came from."""

from __future__ import annotations

from typing import Any

from mappings.engine import Mapped, record_id

SOURCE_SYSTEMS = {
    "community-health": "基层/社区卫生服务系统",
    "elderly-care": "养老服务平台",
    "insurance": "医保信息平台",
    "hl7v2": "医院信息系统 (HL7 v2)",
}


def provenance(mapped: Mapped, resources: list[dict[str, Any]], recorded: str, base: str) -> dict[str, Any]:
    record = mapped.record
    targets = {id(resource) for resource in resources}
    named = {name for name, resource in mapped.resources.items() if id(resource) in targets}
    lineage = [
        {"url": f"{base}/StructureDefinition/yy-ext-lineage", "valueString": f"{path} ← {ref}"}
        for (name, path), ref in sorted(mapped.lineage.items(), key=lambda item: item[0])
        if name in named
    ]
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

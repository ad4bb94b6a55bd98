"""Expected FHIR that several sources' tests share: 张秀英's coded demographics and her 职工医保
Coverage, which the 医保 1101 reply and the HIS's IN1 both yield."""

from __future__ import annotations

from typing import Any

from tests.ingest_output import coding

BASE = "http://fhir.yiyang.cn"


def gb_sex(code: str, display: str) -> dict[str, Any]:
    """A Patient's ``_gender``: the GB/T 2261.1 code beside the FHIR gender."""
    return {
        "extension": [
            {
                "url": f"{BASE}/StructureDefinition/yy-ext-gender-gb",
                "valueCoding": coding("urn:oid:2.16.156.10011.2.3.3.4", code, display),
            }
        ]
    }


def ethnicity(code: str, display: str) -> list[dict[str, Any]]:
    """A Patient's ``extension`` carrying only its GB 3304 民族."""
    return [
        {
            "url": f"{BASE}/StructureDefinition/yy-ext-ethnicity",
            "valueCoding": coding("urn:oid:2.16.156.10011.2.3.3.3", code, display),
        }
    ]


def zhang_employee_coverage(coverage_id: str, patient_id: str, payor: str) -> dict[str, Any]:
    """Her 职工基本医疗保险 in 郑州 (insutype 310, psn_type 1201); sources name the payor differently."""
    return {
        "resourceType": "Coverage",
        "id": coverage_id,
        "meta": {"profile": [f"{BASE}/StructureDefinition/yy-coverage"]},
        "extension": [
            {
                "url": f"{BASE}/StructureDefinition/yy-ext-insurance-status",
                "valueCoding": coding(f"{BASE}/CodeSystem/nhsa-psn-insu-stas", "1", "正常参保"),
            },
            {
                "url": f"{BASE}/StructureDefinition/yy-ext-insured-region",
                "valueCoding": coding(f"{BASE}/CodeSystem/gb-t-2260", "410100"),
            },
        ],
        "status": "active",
        "type": {"coding": [coding(f"{BASE}/CodeSystem/nhsa-insutype", "310", "职工基本医疗保险")]},
        "policyHolder": {"display": "郑州市第二棉纺织厂"},
        "subscriberId": "41000000000000012345",
        "beneficiary": {"reference": f"Patient/{patient_id}"},
        "period": {"start": "2004-07-01"},
        "payor": [
            {
                "type": "Organization",
                "identifier": {"system": f"{BASE}/sid/nhsa-admdvs", "value": "410100"},
                "display": payor,
            }
        ],
        "class": [
            {
                "type": {"coding": [coding("http://terminology.hl7.org/CodeSystem/coverage-class", "class")]},
                "value": "1201",
            }
        ],
    }

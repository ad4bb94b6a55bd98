"""Issue 13: yy-observation-health-check-item's 健康指导 item takes a health-guidance code, one tick per
Observation (yy-hci-2), and health-guidance codes answer no other item (yy-hci-4)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from conformance.validator import Validator
from profiles.registry import Registry
from tests.conftest import load_example

BASE = "http://fhir.yiyang.cn"
GUIDANCE = f"{BASE}/CodeSystem/health-guidance"


def _guidance(code: str, display: str, text: str | None = None) -> dict[str, Any]:
    resource = copy.deepcopy(load_example("yy-observation-health-check-item/valid-health-guidance-coded.json"))
    concept: dict[str, Any] = {"coding": [{"system": GUIDANCE, "code": code, "display": display}]}
    if text:
        concept["text"] = text
    resource["valueCodeableConcept"] = concept
    return resource


def _errors(validator: Validator, resource: dict[str, Any]) -> set[tuple[str, str, str]]:
    return {
        (i.message_id, i.expression, str(i.params.get("key", ""))) for i in validator.validate(resource) if i.is_error
    }


def test_health_guidance_code_system_is_marked_unconfirmed_and_counts_its_concepts() -> None:
    registry = Registry()
    for kind in ("CodeSystem", "ValueSet"):
        resource = registry.get(f"{BASE}/{kind}/health-guidance")
        assert (resource["status"], resource["experimental"], resource["purpose"][:4]) == ("draft", True, "未经确认")
        assert "国家基本公共卫生服务规范（第三版）" in resource["description"]
    system = registry.get(GUIDANCE)
    assert system["count"] == len(system["concept"]) == 11


@pytest.mark.parametrize(
    ("code", "display", "text"),
    [
        ("chronic-disease-management", "纳入慢性病患者健康管理", None),
        ("regular-follow-up", "定期随访", "定期随访"),
        ("weight-loss", "减体重", "减体重（目标5kg）"),
    ],
)
def test_a_health_guidance_code_is_a_valid_value(validator: Validator, code: str, display: str, text: str) -> None:
    assert _errors(validator, _guidance(code, display, text)) == set()


def test_a_code_not_in_health_guidance_is_an_error(validator: Validator) -> None:
    assert _errors(validator, _guidance("monthly-follow-up", "每月随访")) == {
        ("code.unknown-in-system", "Observation.valueCodeableConcept.coding[0]", "")
    }


def test_free_text_health_guidance_is_no_longer_valid(validator: Validator) -> None:
    resource = _guidance("recheck", "建议复查")
    del resource["valueCodeableConcept"]
    resource["valueString"] = "建议复查"
    assert _errors(validator, resource) == {("invariant.failed", "Observation", "yy-hci-2")}


def test_an_answer_of_another_item_is_not_health_guidance(validator: Validator) -> None:
    resource = _guidance("recheck", "建议复查")
    resource["valueCodeableConcept"]["coding"] = [
        {"system": f"{BASE}/CodeSystem/health-check-answer", "code": "health-evaluation-1", "display": "体检无异常"}
    ]
    assert _errors(validator, resource) == {
        ("invariant.failed", "Observation", "yy-hci-1"),
        ("invariant.failed", "Observation", "yy-hci-2"),
    }


def test_a_health_guidance_code_on_another_item_is_an_error(validator: Validator) -> None:
    resource = copy.deepcopy(load_example("yy-observation-health-check-item/valid-self-rated-health.json"))
    resource["valueCodeableConcept"]["coding"].append({"system": GUIDANCE, "code": "recheck", "display": "建议复查"})
    assert _errors(validator, resource) == {("invariant.failed", "Observation", "yy-hci-4")}

"""家庭医生签约: coded population groups and 首签/续签 on yy-careplan, the fee as
yy-chargeitem-contract-fee with each payer's share in yy-ext-fee-share."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from conformance.validator import Validator
from profiles.registry import Registry
from tests.conftest import load_example

BASE = "http://fhir.yiyang.cn"
FEE_SHARE = f"{BASE}/StructureDefinition/yy-ext-fee-share"


def errors(validator: Validator, resource: dict[str, Any]) -> set[tuple[str, str]]:
    return {(i.message_id, i.expression) for i in validator.validate(resource) if i.is_error}


def failed_invariants(validator: Validator, resource: dict[str, Any]) -> set[str]:
    return {str(i.params.get("key")) for i in validator.validate(resource) if i.message_id == "invariant.failed"}


# -- code systems ------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["family-doctor-population", "contract-sign-type", "fee-payer"])
def test_new_code_systems_are_marked_unconfirmed(name: str) -> None:
    registry = Registry()
    for kind in ("CodeSystem", "ValueSet"):
        resource = registry.get(f"{BASE}/{kind}/{name}")
        assert (resource["status"], resource["experimental"], resource["purpose"][:4]) == ("draft", True, "未经确认")
    system = registry.get(f"{BASE}/CodeSystem/{name}")
    assert system["count"] == len(system["concept"])


def test_population_groups_cover_the_programme_priority_groups() -> None:
    displays = {c["display"] for c in Registry().get(f"{BASE}/CodeSystem/family-doctor-population")["concept"]}
    assert {
        "65岁及以上老年人",
        "高血压患者",
        "2型糖尿病患者",
        "失能老人",
        "高龄老人",
        "残疾人",
        "孕产妇",
        "0-6岁儿童",
        "严重精神障碍患者",
        "肺结核患者",
        "计划生育特殊家庭",
        "脱贫人口",
        "一般人群",
    } <= displays


# -- yy-careplan category slices --------------------------------------------------------------
def category(system: str, code: str) -> dict[str, Any]:
    return {"coding": [{"system": f"{BASE}/CodeSystem/{system}", "code": code}]}


def test_a_plan_without_groups_or_sign_type_stays_valid(validator: Validator) -> None:
    assert errors(validator, load_example("yy-careplan/valid-family-doctor-package.json")) == set()


def test_several_groups_and_one_sign_type_are_valid(validator: Validator) -> None:
    plan = load_example("yy-careplan/valid-family-doctor-package.json")
    plan["category"] += [
        category("family-doctor-population", c) for c in ("elderly-65", "oldest-old", "disabled-elderly")
    ]
    plan["category"].append(category("contract-sign-type", "first"))
    assert errors(validator, plan) == set()


def test_two_sign_types_are_refused(validator: Validator) -> None:
    plan = load_example("yy-careplan/valid-contract-population-groups.json")
    plan["category"].append(category("contract-sign-type", "first"))
    assert ("profile.slice-cardinality-max", "CarePlan.category") in errors(validator, plan)


def test_a_group_outside_the_code_system_is_refused(validator: Validator) -> None:
    plan = load_example("yy-careplan/valid-contract-population-groups.json")
    plan["category"][1] = category("family-doctor-population", "chronic-disease")
    assert ("binding.not-in-valueset", "CarePlan.category[1]") in errors(validator, plan)


# -- yy-chargeitem-contract-fee ---------------------------------------------------------------
def fee() -> dict[str, Any]:
    return load_example("yy-chargeitem-contract-fee/valid-contract-fee.json")


def test_the_fee_example_is_valid(validator: Validator) -> None:
    assert errors(validator, fee()) == set()


def test_shares_that_do_not_add_up_to_the_fee_are_refused(validator: Validator) -> None:
    charge = fee()
    charge["extension"][2]["extension"][1]["valueMoney"]["value"] = 30
    assert failed_invariants(validator, charge) == {"yy-ci-cf-1"}


def test_a_payer_named_twice_is_refused(validator: Validator) -> None:
    charge = fee()
    charge["extension"][1] = copy.deepcopy(charge["extension"][0])
    assert failed_invariants(validator, charge) == {"yy-ci-cf-2"}


def test_a_fee_without_shares_is_valid(validator: Validator) -> None:
    charge = fee()
    del charge["extension"]
    assert errors(validator, charge) == set()


def test_a_share_needs_payer_and_amount(validator: Validator) -> None:
    charge = fee()
    charge["extension"][0]["extension"] = charge["extension"][0]["extension"][:1]
    found = errors(validator, charge)
    assert found and all(expression.startswith("ChargeItem") for _, expression in found)


def test_the_contract_is_supporting_information_not_context(validator: Validator) -> None:
    """R4 ChargeItem.context is Reference(Encounter | EpisodeOfCare): a CarePlan there is refused."""
    charge = fee()
    charge["context"] = charge.pop("supportingInformation")[0]
    found = errors(validator, charge)
    assert ("profile.cardinality-min", "ChargeItem.supportingInformation") in found
    assert any(expression == "ChargeItem.context" for _, expression in found)


def test_the_fee_profile_references_its_extension() -> None:
    profile = Registry().get(f"{BASE}/StructureDefinition/yy-chargeitem-contract-fee")
    [share] = [e for e in profile["differential"]["element"] if e["id"] == "ChargeItem.extension:feeShare"]
    assert share["type"][0]["profile"] == [FEE_SHARE]

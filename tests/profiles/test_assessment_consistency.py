"""Assessments that contradict themselves are refused by the profiles' invariants.

生活自理能力 (yy-sc-3, yy-sc-4: DOMAIN §4a), GB/T 42195 老年人能力评估 (yy-ab-2 … yy-ab-4: §4b) and
the 长护险 indicator scores (yy-ltc-dl-1, yy-ltc-dl-5: §5), 中医体质辨识 (yy-tcm-1: §7).  The arithmetic rules are checked over generated
scores; the manifests pin each example's FHIRPath.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from conformance.issues import Issue
from conformance.validator import Validator
from tests.conftest import load_example

#: the points each 生活自理能力 item allows (可自理, 轻度依赖, 中度依赖, 不能自理)
SELFCARE_POINTS = {
    "meal": (0, 3, 5),
    "grooming": (0, 1, 3, 7),
    "dressing": (0, 3, 5),
    "toileting": (0, 1, 5, 10),
    "activity": (0, 1, 5, 10),
}
#: GB/T 42195 dimension maxima
ABILITY_MAXIMA = {"self-care": 32, "basic-motor": 15, "mental": 28, "perception-social": 15}
LTC_MAXIMA = {"adl": 100, "cognition": 16, "perception-communication": 12}
BASE = "http://fhir.yiyang.cn/CodeSystem"


def failed_keys(issues: list[Issue]) -> set[str]:
    return {i.params["key"] for i in issues if i.message_id == "invariant.failed"}


def with_components(relative: str, scores: dict[str, int], **changes: Any) -> dict[str, Any]:
    resource = copy.deepcopy(load_example(relative))
    for component in resource["component"]:
        component["valueInteger"] = scores[component["code"]["coding"][0]["code"]]
    return {**resource, **changes}


def selfcare_band(total: int) -> str:
    return "0" if total <= 3 else "1" if total <= 8 else "2" if total <= 18 else "3"


def selfcare(items: dict[str, int], total: int) -> dict[str, Any]:
    band = {"coding": [{"system": f"{BASE}/selfcare-level", "code": selfcare_band(total)}]}
    return with_components(
        "yy-observation-selfcare/valid-selfcare-independent.json", items, valueInteger=total, interpretation=[band]
    )


def preliminary_level(total: int) -> int:
    return 0 if total == 90 else 1 if total >= 66 else 2 if total >= 46 else 3 if total >= 30 else 4


def ability(dimensions: dict[str, int], total: int, level: int) -> dict[str, Any]:
    coded = {"coding": [{"system": f"{BASE}/ability-level", "code": str(level)}]}
    return with_components(
        "yy-observation-ability/valid-mild-impairment.json", dimensions, valueInteger=total, interpretation=[coded]
    )


allowed_items = st.fixed_dictionaries({item: st.sampled_from(points) for item, points in SELFCARE_POINTS.items()})
dimension_scores = st.fixed_dictionaries({name: st.integers(0, top) for name, top in ABILITY_MAXIMA.items()})


# -- 生活自理能力 ------------------------------------------------------------------------------
@settings(max_examples=60, deadline=None)
@given(items=allowed_items)
def test_a_selfcare_total_that_is_the_sum_of_allowed_item_scores_passes(
    validator: Validator, items: dict[str, int]
) -> None:
    assert failed_keys(validator.validate(selfcare(items, sum(items.values())))) == set()


@settings(max_examples=60, deadline=None)
@given(items=allowed_items, off_by=st.integers(-37, 37).filter(bool))
def test_a_selfcare_total_other_than_the_item_sum_fails_yy_sc_4(
    validator: Validator, items: dict[str, int], off_by: int
) -> None:
    total = min(37, max(0, sum(items.values()) + off_by))
    issues = validator.validate(selfcare(items, total))
    assert ("yy-sc-4" in failed_keys(issues)) == (total != sum(items.values()))


@settings(max_examples=60, deadline=None)
@given(items=allowed_items, item=st.sampled_from(sorted(SELFCARE_POINTS)), score=st.integers(0, 10))
def test_an_item_score_its_item_does_not_allow_fails_yy_sc_3(
    validator: Validator, items: dict[str, int], item: str, score: int
) -> None:
    scored = {**items, item: score}
    issues = validator.validate(selfcare(scored, sum(scored.values())))
    assert ("yy-sc-3" in failed_keys(issues)) == (score not in SELFCARE_POINTS[item])


def test_the_item_score_fault_is_located_at_its_component(validator: Validator) -> None:
    items = {"meal": 4, "grooming": 0, "dressing": 0, "toileting": 0, "activity": 0}
    located = [i.expression for i in validator.validate(selfcare(items, 4)) if i.params.get("key") == "yy-sc-3"]
    assert located == ["Observation.component[0]"]


# -- GB/T 42195 老年人能力评估 ------------------------------------------------------------------
@settings(max_examples=60, deadline=None)
@given(dimensions=dimension_scores, raised_by=st.integers(0, 4))
def test_an_ability_level_at_or_above_the_totals_preliminary_level_passes(
    validator: Validator, dimensions: dict[str, int], raised_by: int
) -> None:
    total = sum(dimensions.values())
    level = min(4, preliminary_level(total) + raised_by)
    assert failed_keys(validator.validate(ability(dimensions, total, level))) == set()


@settings(max_examples=60, deadline=None)
@given(dimensions=dimension_scores, level=st.integers(0, 4))
def test_an_ability_level_better_than_the_totals_fails_yy_ab_4(
    validator: Validator, dimensions: dict[str, int], level: int
) -> None:
    total = sum(dimensions.values())
    issues = validator.validate(ability(dimensions, total, level))
    assert ("yy-ab-4" in failed_keys(issues)) == (level < preliminary_level(total))


@settings(max_examples=60, deadline=None)
@given(dimensions=dimension_scores, total=st.integers(0, 90))
def test_an_ability_total_other_than_the_dimension_sum_fails_yy_ab_3(
    validator: Validator, dimensions: dict[str, int], total: int
) -> None:
    issues = validator.validate(ability(dimensions, total, 4))
    assert ("yy-ab-3" in failed_keys(issues)) == (total != sum(dimensions.values()))


@settings(max_examples=60, deadline=None)
@given(dimensions=dimension_scores, name=st.sampled_from(sorted(ABILITY_MAXIMA)), score=st.integers(-5, 40))
def test_a_dimension_score_outside_zero_to_its_maximum_fails_yy_ab_2(
    validator: Validator, dimensions: dict[str, int], name: str, score: int
) -> None:
    scored = {**dimensions, name: score}
    issues = validator.validate(ability(scored, sum(scored.values()), 4))
    assert ("yy-ab-2" in failed_keys(issues)) == (not 0 <= score <= ABILITY_MAXIMA[name])


# -- 长护险 失能等级评估 --------------------------------------------------------------------------
@settings(max_examples=60, deadline=None)
@given(name=st.sampled_from(sorted(LTC_MAXIMA)), score=st.integers(-10, 160))
def test_an_ltc_indicator_score_outside_zero_to_its_maximum_fails_yy_ltc_dl_1(
    validator: Validator, name: str, score: int
) -> None:
    scores = {"adl": 35, "cognition": 9, "perception-communication": 6, name: score}
    issues = validator.validate(with_components("yy-observation-ltc-disability/valid-severe-1.json", scores))
    assert ("yy-ltc-dl-1" in failed_keys(issues)) == (not 0 <= score <= LTC_MAXIMA[name])


@settings(max_examples=60, deadline=None)
@given(adl=st.integers(0, 100))
def test_an_ltc_adl_score_that_is_no_multiple_of_5_fails_yy_ltc_dl_5(validator: Validator, adl: int) -> None:
    """DOMAIN §5: every 日常生活活动能力 item scores 0, 5, 10 or 15 (Barthel), and MZ/T 039's ADL grades
    (100 / 65–95 / 45–60 / ≤40, §4c) step by 5 too: a total such as 37 cannot be summed from them."""
    scores = {"adl": adl, "cognition": 9, "perception-communication": 6}
    issues = validator.validate(with_components("yy-observation-ltc-disability/valid-severe-1.json", scores))
    assert ("yy-ltc-dl-5" in failed_keys(issues)) == (adl % 5 != 0)


#: the 长护险 失能等级 codes, 0 基本正常 … 5 重度失能Ⅲ级
LTC_LEVELS = [str(level) for level in range(6)]


def ltc(scores: dict[str, int], level: str) -> dict[str, Any]:
    resource = with_components("yy-observation-ltc-disability/valid-severe-1.json", scores)
    resource["valueCodeableConcept"] = {"coding": [{"system": f"{BASE}/ltc-disability-level", "code": level}]}
    return resource


@pytest.mark.parametrize("level", LTC_LEVELS)
def test_full_marks_on_every_ltc_indicator_allow_only_level_0_yy_ltc_dl_3(validator: Validator, level: str) -> None:
    """DOMAIN §5: each indicator's sum gives its grade and the grades combine into the level, so
    the best score on all three can only be the best level, whatever the unconfirmed cut-offs."""
    assert ("yy-ltc-dl-3" in failed_keys(validator.validate(ltc(LTC_MAXIMA, level)))) == (level != "0")


@pytest.mark.parametrize("level", LTC_LEVELS)
def test_zero_on_every_ltc_indicator_allows_only_level_5_yy_ltc_dl_4(validator: Validator, level: str) -> None:
    zero = dict.fromkeys(LTC_MAXIMA, 0)
    assert ("yy-ltc-dl-4" in failed_keys(validator.validate(ltc(zero, level)))) == (level != "5")


@settings(max_examples=60, deadline=None)
@given(
    adl=st.integers(0, 100),
    cognition=st.integers(0, 16),
    perception=st.integers(0, 12),
    level=st.sampled_from(LTC_LEVELS),
)
def test_an_ltc_level_between_the_extremes_is_not_judged_against_the_scores(
    validator: Validator, adl: int, cognition: int, perception: int, level: str
) -> None:
    """The per-indicator cut-offs and the combination table of 医保办发〔2021〕37号 were not found
    (DOMAIN §5, U): between full marks and zero no level is refused (docs/profiles.md says so)."""
    scores = {"adl": adl, "cognition": cognition, "perception-communication": perception}
    assume(scores != LTC_MAXIMA and set(scores.values()) != {0})
    assert failed_keys(validator.validate(ltc(scores, level))) & {"yy-ltc-dl-3", "yy-ltc-dl-4"} == set()


# -- 中医体质辨识 ----------------------------------------------------------------------------------
#: the result codes of tcm-constitution-result: 1 是, 2 倾向是, 3 基本是, 4 否
TCM_TYPES = ["pinghe", "qixu", "yangxu", "yinxu", "tanshi", "shire", "xueyu", "qiyu", "tebing"]


@pytest.mark.parametrize("constitution", TCM_TYPES)
@pytest.mark.parametrize("result", ["1", "2", "3", "4"])
def test_a_tcm_result_the_form_does_not_offer_for_its_type_fails_yy_tcm_1(
    validator: Validator, constitution: str, result: str
) -> None:
    """DOMAIN §7: 平和质 is judged 是 / 基本是 / 否, a biased type 是 / 倾向是 / 否."""
    resource = copy.deepcopy(load_example("yy-observation-tcm-constitution/valid-qixu.json"))
    resource["code"]["coding"][0]["code"] = constitution
    resource["valueCodeableConcept"]["coding"][0]["code"] = result
    offered = {"1", "3", "4"} if constitution == "pinghe" else {"1", "2", "4"}
    assert ("yy-tcm-1" in failed_keys(validator.validate(resource))) == (result not in offered)


def tcm(constitution: str, score: int, result: str) -> dict[str, Any]:
    resource = copy.deepcopy(load_example("yy-observation-tcm-constitution/valid-qixu.json"))
    resource["code"]["coding"][0]["code"] = constitution
    resource["valueCodeableConcept"]["coding"][0]["code"] = result
    score_code = {"coding": [{"system": f"{BASE}/tcm-constitution-score", "code": "raw-score"}]}
    resource["component"] = [{"code": score_code, "valueInteger": score}]
    return resource


def tcm_result_allowed(constitution: str, score: int, result: str) -> bool:
    """DOMAIN §7: a biased type (4 items, 4–20) is 是 from 11, 倾向是 at 9–10, 否 to 8; 平和质 (5 items,
    5–25) is 是 or 基本是 only from 17 (and then only by the other types, not checked here)."""
    if constitution == "pinghe":
        return 5 <= score <= 25 and (score >= 17 or result == "4")
    band = "1" if score >= 11 else "2" if score >= 9 else "4"
    return 4 <= score <= 20 and result == band


@settings(max_examples=120, deadline=None)
@given(constitution=st.sampled_from(TCM_TYPES), score=st.integers(0, 30), result=st.sampled_from(["1", "2", "3", "4"]))
def test_a_tcm_result_its_score_does_not_give_fails_yy_tcm_2(
    validator: Validator, constitution: str, score: int, result: str
) -> None:
    issues = validator.validate(tcm(constitution, score, result))
    assert ("yy-tcm-2" in failed_keys(issues)) == (not tcm_result_allowed(constitution, score, result))

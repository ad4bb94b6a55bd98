"""A birth date, a 建档日期 or an assessment dated after the day of validation is refused
(yy-pat-3, yy-hr-ext-2; yy-ab-5, yy-sc-5, yy-ltc-dl-2).

The day is Beijing's and is pinned here (conformance.clock), so the verdicts do not depend on
when the suite runs.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest

from conformance.clock import CHINA, pinned_moment
from conformance.issues import Issue
from conformance.validator import Validator
from tests.conftest import load_example

#: 2026-12-05 19:30 in Beijing
EVENING = datetime(2026, 12, 5, 19, 30, tzinfo=CHINA)


def keyed(issues: list[Issue], key: str) -> list[str]:
    """The FHIRPath of every failure of invariant ``key``."""
    return [i.expression for i in issues if i.message_id == "invariant.failed" and i.params["key"] == key]


def born(day: str) -> dict[str, Any]:
    """李建国 born on ``day``: his 身份证号 then disagrees, which the business rules report, not
    yy-pat-3."""
    return {**copy.deepcopy(load_example("yy-patient/valid-li-jianguo-minimal.json")), "birthDate": day}


def filed_on(day: str) -> dict[str, Any]:
    patient = copy.deepcopy(load_example("yy-patient/valid-zhang-xiuying.json"))
    record = next(e for e in patient["extension"] if e["url"].endswith("/yy-ext-health-record"))
    next(part for part in record["extension"] if part["url"] == "filed")["valueDate"] = day
    return patient


def validated_at(validator: Validator, resource: dict[str, Any], moment: datetime = EVENING) -> list[Issue]:
    with pinned_moment(moment):
        return validator.validate(resource)


@pytest.mark.parametrize("day", ["2026-12-05", "2026-12", "2026", "1938-01-01"])
def test_a_birth_date_not_after_today_passes(validator: Validator, day: str) -> None:
    assert keyed(validated_at(validator, born(day)), "yy-pat-3") == []


@pytest.mark.parametrize("day", ["2026-12-06", "2027-01", "2027"])
def test_a_birth_date_after_today_fails_at_birthdate(validator: Validator, day: str) -> None:
    assert keyed(validated_at(validator, born(day)), "yy-pat-3") == ["Patient.birthDate"]


def test_today_is_the_beijing_day_even_while_utc_is_still_on_the_day_before(validator: Validator) -> None:
    early_morning_in_beijing = datetime(2026, 12, 5, 23, 30, tzinfo=UTC)  # 2026-12-06 07:30 CST
    assert keyed(validated_at(validator, born("2026-12-06"), early_morning_in_beijing), "yy-pat-3") == []


def test_the_same_birth_date_is_judged_afresh_each_day(validator: Validator) -> None:
    """A verdict that depends on the day is never answered from the invariant's memo."""
    before = keyed(validated_at(validator, born("2026-12-06")), "yy-pat-3")
    after = keyed(validated_at(validator, born("2026-12-06"), datetime(2026, 12, 6, 8, tzinfo=CHINA)), "yy-pat-3")
    assert (before, after) == (["Patient.birthDate"], [])


def test_an_impossible_birth_date_is_left_to_the_primitive_check(validator: Validator) -> None:
    """Compared as text, 1938-02-30 is not after today: no yy-pat-3 issue, not even "not evaluable"."""
    issues = validated_at(validator, born("1938-02-30"))
    assert [i.message_id for i in issues if i.params.get("key") == "yy-pat-3"] == []


def test_a_filing_date_after_today_fails_at_the_filed_value(validator: Validator) -> None:
    assert keyed(validated_at(validator, filed_on("2026-12-06")), "yy-hr-ext-2") == [
        "Patient.extension[2].extension[1].valueDate"
    ]


def test_a_filing_date_of_today_passes(validator: Validator) -> None:
    assert keyed(validated_at(validator, filed_on("2026-12-05")), "yy-hr-ext-2") == []


#: an example of each assessment profile, and the invariant holding its date to today
ASSESSMENTS = {
    "yy-observation-ability/valid-mild-impairment.json": "yy-ab-5",
    "yy-observation-selfcare/valid-selfcare-independent.json": "yy-sc-5",
    "yy-observation-ltc-disability/valid-severe-1.json": "yy-ltc-dl-2",
}


def assessed_at(example: str, moment: str) -> dict[str, Any]:
    return {**copy.deepcopy(load_example(example)), "effectiveDateTime": moment}


@pytest.mark.parametrize("example", sorted(ASSESSMENTS))
def test_an_assessment_dated_after_today_fails_at_its_date(validator: Validator, example: str) -> None:
    issues = validated_at(validator, assessed_at(example, "2026-12-06T09:00:00+08:00"))
    assert keyed(issues, ASSESSMENTS[example]) == ["Observation.effectiveDateTime"]


@pytest.mark.parametrize("example", sorted(ASSESSMENTS))
def test_an_assessment_made_earlier_today_passes(validator: Validator, example: str) -> None:
    issues = validated_at(validator, assessed_at(example, "2026-12-05T09:00:00+08:00"))
    assert keyed(issues, ASSESSMENTS[example]) == []

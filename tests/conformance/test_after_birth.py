"""Nothing happens to a person before they are born (conformance/after_birth.py): the rule
itself, and that it reaches every dated resource the shipped specs map from a legacy record."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from conformance.after_birth import AfterBirth, born_later
from conformance.issues import IssueList
from conformance.validator import Validator
from profiles.registry import Registry
from tests.conftest import errors
from tests.samples import mapped_samples

PERSON = {"reference": "Patient/p1"}
#: the rule as the provincial package states it
RULE = AfterBirth(Registry())


def judged(resource: dict[str, Any], birth_date: str) -> list[tuple[str, str, str]]:
    issues = IssueList()
    RULE.check(resource, resource["resourceType"], birth_date, issues)
    return [(issue.severity, issue.message_id, issue.expression) for issue in issues]


def visit(start: str) -> dict[str, Any]:
    return {"resourceType": "Encounter", "status": "finished", "subject": PERSON, "period": {"start": start}}


def test_a_visit_the_day_before_the_birth_is_an_error_at_its_start() -> None:
    assert judged(visit("1949-12-30"), "1949-12-31") == [("error", "rule.before-birth", "Encounter.period.start")]


def test_a_visit_on_the_day_of_birth_passes() -> None:
    assert judged(visit("1949-12-31T23:00:00+08:00"), "1949-12-31") == []


def test_a_visit_of_the_birth_month_beside_a_full_birth_date_is_not_judged() -> None:
    """1949-12 may be any day of December: it cannot be shown to precede the 31st."""
    assert judged(visit("1949-12"), "1949-12-31") == []


def test_a_moment_in_utc_counts_on_its_beijing_day() -> None:
    """16:30 UTC on the 30th is 00:30 on the 31st in Beijing: the day of birth, not before it."""
    assert judged(visit("1949-12-30T16:30:00Z"), "1949-12-31") == []


def test_an_assessment_before_a_birth_year_is_an_error_at_its_effective_time() -> None:
    assessment = {"resourceType": "Observation", "subject": PERSON, "effectiveDateTime": "1948-06-16T14:30:00+08:00"}
    assert judged(assessment, "1949") == [("error", "rule.before-birth", "Observation.effectiveDateTime")]


def test_a_contract_created_before_the_birth_is_an_error_at_created() -> None:
    contract = {
        "resourceType": "CarePlan",
        "subject": PERSON,
        "created": "1930-01-05",
        "period": {"start": "2026-01-05"},
    }
    assert judged(contract, "1938-05-20") == [("error", "rule.before-birth", "CarePlan.created")]


def test_a_condition_whose_onset_precedes_the_birth_is_a_warning() -> None:
    """A congenital condition may be found by prenatal screening."""
    condition = {"resourceType": "Condition", "subject": PERSON, "onsetDateTime": "2020-03-01"}
    assert judged(condition, "2020-05-02") == [("warning", "rule.before-birth-possible", "Condition.onsetDateTime")]


def test_a_dependants_cover_starting_before_the_birth_is_a_warning() -> None:
    """The period of a policy held by another person (the subscriber) is the policy's."""
    cover = {
        "resourceType": "Coverage",
        "beneficiary": PERSON,
        "subscriber": {"reference": "Patient/mother"},
        "period": {"start": "2015-01-01"},
    }
    assert judged(cover, "2020-05-02") == [("warning", "rule.before-birth-possible", "Coverage.period.start")]


def test_an_own_cover_starting_before_the_birth_is_an_error() -> None:
    cover = {"resourceType": "Coverage", "beneficiary": PERSON, "subscriber": PERSON, "period": {"start": "2015-01-01"}}
    assert judged(cover, "2020-05-02") == [("error", "rule.before-birth", "Coverage.period.start")]


def test_every_dated_resource_a_shipped_spec_maps_about_a_person_is_judged() -> None:
    """Each resource type the four adapters map with a Patient reference has its dates listed."""
    unlisted = {
        resource["resourceType"]
        for mapped in mapped_samples()
        for resource in mapped.resources.values()
        if any(isinstance(resource.get(key), dict) for key in ("subject", "patient", "beneficiary"))
        and RULE.dated.get(resource["resourceType"]) is None
    }
    assert unlisted == set()


def born_after_everything(resources: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The record with its Patient born in 2099, after every date the record holds."""
    changed = copy.deepcopy(resources)
    for resource in changed.values():
        if resource["resourceType"] == "Patient":
            resource["birthDate"] = "2099-01-01"
    return changed


def test_every_shipped_record_with_its_person_born_later_fails_on_each_dated_resource() -> None:
    """From all four sources (community health, elderly care, insurance, HIS HL7 v2): every
    resource about the record's person that carries a date of its own is refused."""
    missed = []
    for mapped in mapped_samples():
        found = RULE.check_record(born_after_everything(mapped.resources))
        for name, resource in mapped.resources.items():
            rule = RULE.dated.get(resource["resourceType"])
            dated = rule is not None and any(key.startswith(element) for element in rule.events for key in resource)
            if RULE.person_reference(resource) and dated and name not in found:
                missed.append((mapped.spec.id, name))
    assert missed == []


def refused_before_birth(validator: Validator, resource: dict[str, Any]) -> list[str]:
    """Where the validator finds ``rule.before-birth`` in a resource validated on its own."""
    return [i.expression for i in validator.validate(resource) if i.message_id == "rule.before-birth"]


def test_a_bundle_validated_whole_refuses_an_entry_dated_before_its_patients_birth(validator: Validator) -> None:
    """A collection handed to ``yiyang validate`` or ``$validate``: the Patient is another entry."""
    person = "urn:uuid:2f0d6c62-8a8e-4a51-9d35-3c1f7d1b6a01"
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {"fullUrl": person, "resource": {"resourceType": "Patient", "birthDate": "1949-12-31"}},
            {
                "fullUrl": "urn:uuid:2f0d6c62-8a8e-4a51-9d35-3c1f7d1b6a02",
                "resource": {**visit("1948-11-01"), "subject": {"reference": person}},
            },
        ],
    }
    assert refused_before_birth(validator, bundle) == ["Bundle.entry[1].resource.period.start"]


def test_a_death_before_the_birth_is_an_error_at_the_death(validator: Validator) -> None:
    person = {"resourceType": "Patient", "birthDate": "1949-12-31", "deceasedDateTime": "1948-03-01"}
    assert refused_before_birth(validator, person) == ["Patient.deceasedDateTime"]


def test_a_long_term_care_claim_for_a_month_before_the_birth_is_an_error() -> None:
    """A 长护险 月度结算 (yy-ltc-claim) bills care given in its billablePeriod."""
    claim = {"resourceType": "Claim", "patient": PERSON, "billablePeriod": {"start": "1948-06-01", "end": "1948-06-30"}}
    assert judged(claim, "1949-12-31") == [("error", "rule.before-birth", "Claim.billablePeriod.start")]


# -- a birth date moved later, against the stored events ------------------------------------------
def stored_events_judged(events: list[dict[str, Any]], birth_date: str) -> list[tuple[str, str, dict[str, Any]]]:
    issues = IssueList()
    RULE.check_stored_events({"resourceType": "Patient", "birthDate": birth_date}, "Patient", events, issues)
    return [(issue.expression, issue.message_id, issue.params) for issue in issues]


def test_a_moved_birth_date_counts_every_contradicting_event_and_names_the_first_ten() -> None:
    events = [{**visit("1960-01-01"), "id": f"v{n}"} for n in range(12)]
    [(expression, _, params)] = stored_events_judged(events, "1965-01-01")
    assert (expression, params["count"], params["resources"].count("Encounter/")) == ("Patient.birthDate", 12, 10)


def test_a_moved_birth_date_passes_over_a_congenital_condition_found_before_it() -> None:
    """A Condition's onset before birth is only a warning when written: no contradiction."""
    condition = {"resourceType": "Condition", "id": "c1", "subject": PERSON, "onsetDateTime": "1960-01-01"}
    assert stored_events_judged([condition], "1965-01-01") == []


@pytest.mark.parametrize(
    ("before", "after", "later"),
    [
        ("1949-12-31", "1965-01-01", True),
        ("1965-01-01", "1949-12-31", False),
        (None, "1949", True),
        ("1949", "1949-01-01", False),
    ],
)
def test_a_birth_date_is_moved_later_when_its_first_possible_day_is(
    before: str | None, after: str, later: bool
) -> None:
    assert born_later(before, after) is later


def test_a_bundle_entry_whose_resource_type_is_not_a_string_is_left_to_the_structure_checks(
    validator: Validator,
) -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"resource": {"resourceType": ["Encounter"], "subject": PERSON}}],
    }
    assert errors(validator.validate(bundle)) == [("structure.missing-resource-type", "Bundle.entry[0].resource")]

"""National identity documents besides the 身份证 (issue 13): the 港澳台居民居住证 and the
外国人永久居留身份证 are identities of their own, each checked by its own rules, and yy-patient
accepts a Patient that has one of them instead of the 身份证 (invariant yy-pat-1)."""

from __future__ import annotations

import copy
import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conformance import id_card
from conformance.issues import Issue
from conformance.validator import Validator
from profiles.registry import examples_dir

ROOT = Path(__file__).resolve().parents[2]
BASE = "http://fhir.yiyang.cn"
ID_CARD = "urn:oid:2.16.156.10011.1.3"
RESIDENCE_PERMIT = f"{BASE}/sid/hmt-residence-permit"
FOREIGN_PR = f"{BASE}/sid/foreign-permanent-residence"

birth_dates = st.dates(min_value=date(1900, 1, 1), max_value=date(2026, 12, 31))


@st.composite
def residence_permits(draw: st.DrawFn) -> str:
    region = draw(st.sampled_from(sorted(id_card.RESIDENCE_PERMIT_REGIONS)))
    born = draw(birth_dates).strftime("%Y%m%d")
    body = region + born + draw(st.from_regex(r"[0-9]{3}", fullmatch=True))
    return body + id_card.check_char(body)


@st.composite
def foreign_pr_numbers(draw: st.DrawFn) -> str:
    province = draw(st.sampled_from(["11", "31", "41", "44"]))
    nationality = draw(st.from_regex(r"[0-9]{3}", fullmatch=True))
    body = (
        "9"
        + province
        + nationality
        + draw(birth_dates).strftime("%Y%m%d")
        + draw(st.from_regex(r"[0-9]{3}", fullmatch=True))
    )
    return body + id_card.check_char(body)


def _one_digit_changed(number: str, position: int, delta: int) -> str:
    """Character ``position`` (0–16) changed to another digit: MOD 11-2 catches every such change,
    because each weight is prime to 11."""
    digit = (int(number[position]) + delta) % 10
    return number[:position] + str(digit) + number[position + 1 :]


# -- the arithmetic ------------------------------------------------------------------------------
@given(residence_permits())
def test_a_generated_residence_permit_number_passes(number: str) -> None:
    assert id_card.residence_permit_problems(number) == []


@given(residence_permits(), st.integers(6, 16), st.integers(1, 9))
def test_a_residence_permit_number_with_one_digit_changed_fails_its_checksum(
    number: str, position: int, delta: int
) -> None:
    changed = _one_digit_changed(number, position, delta)
    assert "rule.residence-permit-checksum" in {p[0] for p in id_card.residence_permit_problems(changed)}


@given(residence_permits(), st.sampled_from("0123456789X"))
def test_a_residence_permit_number_with_another_check_character_fails(number: str, check: str) -> None:
    changed = number[:17] + check
    failed = "rule.residence-permit-checksum" in {p[0] for p in id_card.residence_permit_problems(changed)}
    assert failed == (check != number[17])


@given(foreign_pr_numbers())
def test_a_generated_foreign_permanent_residence_number_passes(number: str) -> None:
    assert id_card.foreign_pr_problems(number) == []


@given(foreign_pr_numbers(), st.integers(1, 16), st.integers(1, 9))
def test_a_foreign_permanent_residence_number_with_one_digit_changed_fails(
    number: str, position: int, delta: int
) -> None:
    changed = _one_digit_changed(number, position, delta)
    assert ("error", "rule.foreign-pr-checksum") in {p[:2] for p in id_card.foreign_pr_problems(changed)}


@given(st.text(max_size=30))
def test_the_new_checks_never_raise_on_arbitrary_text(text: str) -> None:
    assert isinstance(id_card.residence_permit_problems(text), list)
    assert isinstance(id_card.foreign_pr_problems(text), list)
    id_card.residence_permit_facts(text), id_card.foreign_pr_facts(text), id_card.looks_like(text)


def test_a_residence_permit_outside_hong_kong_macao_and_taiwan_is_refused() -> None:
    body = "41010519500315013"
    assert [p[0] for p in id_card.residence_permit_problems(body + id_card.check_char(body))] == [
        "rule.residence-permit-region"
    ]


def test_an_old_foreign_permanent_residence_number_is_only_a_warning() -> None:
    assert id_card.foreign_pr_problems("usa410048062012") == [
        ("warning", "rule.foreign-pr-old-format", {"value": "usa410048062012"})
    ]


def test_a_foreign_permanent_residence_number_not_beginning_with_9_is_malformed() -> None:
    assert [p[:2] for p in id_card.foreign_pr_problems("410105194912310020")] == [("error", "rule.foreign-pr-format")]


# -- in a Patient ------------------------------------------------------------------------------------
def _example(name: str) -> dict[str, Any]:
    resource: dict[str, Any] = json.loads((examples_dir() / "yy-patient" / name).read_text(encoding="utf-8"))
    return resource


@pytest.fixture
def hong_kong() -> dict[str, Any]:
    return _example("valid-hong-kong-residence-permit.json")


@pytest.fixture
def foreigner() -> dict[str, Any]:
    return _example("valid-foreign-permanent-residence.json")


def _ids(issues: list[Issue], severity: str | None = None) -> set[tuple[str, str]]:
    return {(i.message_id, i.expression) for i in issues if severity is None or i.severity == severity}


def _errors(issues: list[Issue]) -> set[tuple[str, str]]:
    return {(i.message_id, i.expression) for i in issues if i.is_error}


def test_a_patient_with_only_a_residence_permit_is_valid(validator: Validator, hong_kong: dict[str, Any]) -> None:
    assert _errors(validator.validate(hong_kong)) == set()


def test_a_patient_with_only_a_foreign_permanent_residence_card_is_valid(
    validator: Validator, foreigner: dict[str, Any]
) -> None:
    assert _errors(validator.validate(foreigner)) == set()


def test_a_patient_without_any_national_identity_document_fails_yy_pat_1(
    validator: Validator, hong_kong: dict[str, Any]
) -> None:
    hong_kong["identifier"] = [{"system": f"{BASE}/sid/nhsa-psn-no", "value": "41000000000000012345"}]
    assert _errors(validator.validate(hong_kong)) == {("invariant.failed", "Patient")}


def test_a_residence_permit_disagreeing_with_the_record_is_an_error(
    validator: Validator, hong_kong: dict[str, Any]
) -> None:
    hong_kong["birthDate"] = "1950-03-16"
    hong_kong["gender"] = "female"
    hong_kong["_gender"]["extension"][0]["valueCoding"]["code"] = "2"
    assert _errors(validator.validate(hong_kong)) == {
        ("rule.residence-permit-birthdate-mismatch", "Patient.birthDate"),
        ("rule.residence-permit-gender-mismatch", "Patient.gender"),
    }


def test_what_the_unconfirmed_inner_digits_say_is_only_a_warning(
    validator: Validator, foreigner: dict[str, Any]
) -> None:
    foreigner["birthDate"] = "1948-06-21"
    issues = validator.validate(foreigner)
    assert _errors(issues) == set()
    assert ("rule.foreign-pr-birthdate-mismatch", "Patient.birthDate") in _ids(issues, "warning")


def test_an_old_foreign_permanent_residence_card_is_accepted_with_a_warning(
    validator: Validator, foreigner: dict[str, Any]
) -> None:
    foreigner["identifier"][0]["value"] = "USA410048062012"
    issues = validator.validate(foreigner)
    assert _errors(issues) == set()
    assert ("rule.foreign-pr-old-format", "Patient.identifier[0].value") in _ids(issues, "warning")


def test_a_residence_permit_filed_as_a_id_card_is_a_warning_naming_its_system(
    validator: Validator, hong_kong: dict[str, Any]
) -> None:
    hong_kong["identifier"][0]["system"] = ID_CARD
    issues = validator.validate(hong_kong)
    assert _errors(issues) == set()
    warning = next(i for i in issues if i.message_id == "rule.id-card-other-document")
    assert RESIDENCE_PERMIT in warning.text("en")


def test_a_bad_residence_permit_number_is_an_error_naming_the_document(
    validator: Validator, hong_kong: dict[str, Any]
) -> None:
    bad = copy.deepcopy(hong_kong)
    bad["identifier"][0]["value"] = _one_digit_changed(hong_kong["identifier"][0]["value"], 10, 1)
    assert ("rule.residence-permit-checksum", "Patient.identifier[0].value") in _errors(validator.validate(bad))


def test_every_new_message_has_both_languages() -> None:
    catalog = json.loads((ROOT / "conformance/messages.json").read_text(encoding="utf-8"))
    new = [key for key in catalog if key.startswith(("rule.residence-permit", "rule.foreign-pr", "rule.id-card-other"))]
    assert len(new) == 14
    assert all(catalog[key]["zh-CN"] and catalog[key]["en"] for key in new)

"""身份证 arithmetic and agreement, GB/T 2260 divisions, GB sex codes and Bundle references."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from conformance import id_card
from conformance.validator import Validator
from profiles.registry import PACKAGE_DIR, Registry
from tests.conftest import errors, found, load_example


# -- the arithmetic ------------------------------------------------------------------------
def test_known_valid_number_has_no_problems() -> None:
    assert id_card.problems("11010519491231002X") == []


def test_lower_case_x_is_accepted() -> None:
    assert id_card.problems("11010519491231002x") == []


def test_a_lower_case_x_in_a_patients_number_is_a_warning_naming_the_upper_case(validator: Validator) -> None:
    """Valid (the checksum holds either way), but GB 11643 writes X: the record is told so."""
    patient = load_example("yy-patient/valid-zhang-xiuying.json")
    patient["identifier"][0]["value"] = "11010519491231002x"
    warned = [
        (i.severity, i.message_id, i.params.get("written"))
        for i in validator.validate(patient)
        if i.severity != "information"
    ]
    assert warned == [("warning", "rule.id-card-lowercase-x", "11010519491231002X")]


def test_15_digit_number_is_reported_with_its_18_digit_form() -> None:
    assert id_card.problems("440524800101001") == [
        ("rule.id-card-15-digit", {"value": "440524800101001", "converted": "440524198001010013"})
    ]


def test_15_digit_number_with_an_impossible_date_is_reported_as_written() -> None:
    """Its 18-digit form would be as impossible: the date is the fault, named in the number the
    record holds."""
    assert id_card.problems("410105491331002") == [
        ("rule.id-card-date", {"value": "410105491331002", "date": "19491331"})
    ]


def test_wrong_check_character_names_the_right_one() -> None:
    assert id_card.problems("110105194912310021")[0] == (
        "rule.id-card-checksum",
        {"value": "110105194912310021", "expected": "X"},
    )


def test_impossible_birth_date_in_number_is_reported() -> None:
    body = "11010519490230002"
    assert "rule.id-card-date" in {p[0] for p in id_card.problems(body + id_card.check_char(body))}


def test_excel_mangled_number_is_malformed() -> None:
    assert id_card.problems("1.10105E+17")[0][0] == "rule.id-card-format"


digits17 = st.from_regex(r"[1-9][0-9]{16}", fullmatch=True)


@given(digits17)
def test_appending_the_computed_check_character_always_satisfies_the_checksum(body: str) -> None:
    assert not any(p[0] == "rule.id-card-checksum" for p in id_card.problems(body + id_card.check_char(body)))


@given(digits17, st.sampled_from("0123456789X"))
def test_any_other_check_character_is_rejected(body: str, last: str) -> None:
    wrong = last != id_card.check_char(body)
    assert any(p[0] == "rule.id-card-checksum" for p in id_card.problems(body + last)) == wrong


@given(st.text(alphabet="0123456789０１２３４５６７８９", min_size=17, max_size=17))
def test_the_check_character_is_iso_7064_mod_11_2_of_each_digit_read_alone(body: str) -> None:
    """GB 11643's weighted sum, written out digit by digit, ASCII or full-width alike."""
    weighted = sum(int(digit) * weight for digit, weight in zip(body, id_card.WEIGHTS, strict=True))
    assert id_card.check_char(body) == "10X98765432"[weighted % 11]


@given(st.text(max_size=30))
def test_problems_never_raises_on_arbitrary_text(text: str) -> None:
    assert isinstance(id_card.problems(text), list)


# -- agreement with the record -------------------------------------------------------------
def test_birth_date_disagreeing_with_id_number_is_an_error(validator: Validator, patient: dict[str, Any]) -> None:
    patient["birthDate"] = "1950-01-01"
    assert found(validator.validate(patient), "rule.id-card-birthdate-mismatch", "Patient.birthDate")


def test_a_partial_birth_date_disagreeing_with_id_number_is_an_error(
    validator: Validator, patient: dict[str, Any]
) -> None:
    """A year alone is a date at a lower precision, not an unchecked one: 1950 is not 1949-12-31."""
    patient["birthDate"] = "1950"
    assert found(validator.validate(patient), "rule.id-card-birthdate-mismatch", "Patient.birthDate")


def test_a_partial_birth_date_agreeing_with_id_number_passes(validator: Validator, patient: dict[str, Any]) -> None:
    patient["birthDate"] = "1949-12"
    assert not found(validator.validate(patient), "rule.id-card-birthdate-mismatch")


def test_gender_disagreeing_with_id_number_is_an_error(validator: Validator, patient: dict[str, Any]) -> None:
    patient["gender"] = "male"
    assert found(validator.validate(patient), "rule.id-card-gender-mismatch", "Patient.gender")


def test_the_gender_mismatch_is_worded_in_chinese_for_chinese_readers(
    validator: Validator, patient: dict[str, Any]
) -> None:
    """Staff read GB/T 2261.1's 男性 and 女性 (the code system's displays), not the FHIR codes
    male and female."""
    patient["gender"] = "male"
    issue = next(i for i in validator.validate(patient) if i.message_id == "rule.id-card-gender-mismatch")
    assert issue.text("zh-CN").startswith("性别“男性”（male）与身份证号第 17 位所示性别“女性”不一致")


def test_gb_sex_code_disagreeing_with_gender_is_an_error(validator: Validator, patient: dict[str, Any]) -> None:
    patient["_gender"]["extension"][0]["valueCoding"]["code"] = "1"
    assert found(validator.validate(patient), "rule.gender-code-mismatch", "Patient.gender.extension[0].value")


def test_the_gb_sex_code_mismatch_names_the_genders_the_code_may_accompany(
    validator: Validator, patient: dict[str, Any]
) -> None:
    patient["_gender"]["extension"][0]["valueCoding"]["code"] = "9"
    issue = next(i for i in validator.validate(patient) if i.message_id == "rule.gender-code-mismatch")
    assert issue.params["allowed"] == "other, unknown"


def validator_with_sex_map(folder: Path, change: Callable[[dict[str, Any]], None]) -> Validator:
    """A validator on the package whose GB/T 2261.1 → Patient.gender ConceptMap ``change`` edits."""
    for file in PACKAGE_DIR.glob("*.json"):
        shutil.copy(file, folder)
    path = folder / "ConceptMap-gb-t-2261-1-to-administrative-gender.json"
    concept_map = json.loads(path.read_text(encoding="utf-8"))
    change(concept_map)
    path.write_text(json.dumps(concept_map, ensure_ascii=False), encoding="utf-8")
    registry = Registry(builtin=False)
    registry.add_path(folder)
    return Validator(registry)


def test_the_gb_sex_code_rule_follows_the_concept_map(
    validator: Validator, patient: dict[str, Any], tmp_path: Path
) -> None:
    """Which genders a code may accompany is the ConceptMap's data: a map that lets 9 (未说明的
    性别) stand for unknown alone refuses it beside other."""

    def unstated_is_unknown_only(concept_map: dict[str, Any]) -> None:
        unstated = next(e for e in concept_map["group"][0]["element"] if e["code"] == "9")
        unstated["target"] = [t for t in unstated["target"] if t["code"] == "unknown"]

    patient["gender"] = "other"
    patient["_gender"]["extension"][0]["valueCoding"]["code"] = "9"
    variant = validator_with_sex_map(tmp_path, unstated_is_unknown_only)
    verdicts = [found(v.validate(patient), "rule.gender-code-mismatch") for v in (validator, variant)]
    assert verdicts == [False, True]


def test_id_card_under_hl7_china_oid_is_checked_too(validator: Validator) -> None:
    resource = {
        "resourceType": "Practitioner",
        "identifier": [{"system": "urn:oid:2.16.840.1.113883.2.23.1.19.1", "value": "110105194912310021"}],
    }
    assert found(validator.validate(resource), "rule.id-card-checksum", "Practitioner.identifier[0].value")


def test_unknown_province_prefix_is_reported(validator: Validator) -> None:
    body = "99010519491231002"
    resource = {
        "resourceType": "Patient",
        "identifier": [{"system": "urn:oid:2.16.156.10011.1.3", "value": body + id_card.check_char(body)}],
    }
    assert found(validator.validate(resource), "rule.id-card-region")


# -- administrative divisions --------------------------------------------------------------
def test_township_outside_its_county_is_an_error(validator: Validator, patient: dict[str, Any]) -> None:
    patient["address"][0]["extension"][1]["valueCoding"]["code"] = "410102001"
    assert found(validator.validate(patient), "rule.division-hierarchy", "Patient.address[0].extension[1].value")


def test_unknown_county_code_is_an_error(validator: Validator, patient: dict[str, Any]) -> None:
    patient["address"][0]["extension"] = patient["address"][0]["extension"][:1]
    patient["address"][0]["extension"][0]["valueCoding"]["code"] = "419999"
    assert found(validator.validate(patient), "rule.division-unknown", "Patient.address[0].extension[0].value")


def test_consistent_divisions_pass(validator: Validator, patient: dict[str, Any]) -> None:
    issues = validator.validate(patient)
    assert not found(issues, "rule.division-hierarchy") and not found(issues, "rule.division-unknown")


# -- bundles -------------------------------------------------------------------------------
def test_transaction_with_resolvable_references_passes(validator: Validator) -> None:
    assert errors(validator.validate(load_example("bundle/valid-transaction-home-visit.json"))) == []


def test_unresolved_urn_uuid_reference_is_an_error(validator: Validator) -> None:
    bundle = load_example("bundle/valid-transaction-home-visit.json")
    bundle["entry"][2]["resource"]["subject"]["reference"] = "urn:uuid:00000000-0000-0000-0000-000000000000"
    assert found(validator.validate(bundle), "rule.reference-unresolved", "Bundle.entry[2].resource.subject.reference")


def test_ambiguous_conditional_reference_is_an_error(validator: Validator) -> None:
    bundle = load_example("bundle/invalid-unresolved-and-ambiguous.json")
    issues = validator.validate(bundle)
    assert found(issues, "rule.conditional-reference-ambiguous", "Bundle.entry[2].resource.serviceProvider.reference")


def test_malformed_conditional_reference_is_an_error(validator: Validator) -> None:
    bundle = load_example("bundle/valid-transaction-home-visit.json")
    bundle["entry"][2]["resource"]["serviceProvider"]["reference"] = "Organization?"
    assert found(validator.validate(bundle), "rule.conditional-reference-malformed")


def test_relative_reference_outside_transaction_is_information(validator: Validator) -> None:
    bundle = load_example("bundle/valid-transaction-home-visit.json")
    bundle["entry"][2]["resource"]["subject"]["reference"] = "Patient/on-the-server"
    issues = validator.validate(bundle)
    assert [i.severity for i in issues if i.message_id == "rule.reference-external"][:1] == ["information"]


def test_entry_resources_are_validated_against_their_profiles(validator: Validator) -> None:
    bundle = load_example("bundle/valid-transaction-home-visit.json")
    del bundle["entry"][0]["resource"]["birthDate"]
    assert found(validator.validate(bundle), "profile.cardinality-min", "Bundle.entry[0].resource.birthDate")


@given(st.sets(st.integers(min_value=1, max_value=16), min_size=1))
def test_a_number_with_full_width_digits_is_malformed(positions: set[int]) -> None:
    """int() reads ４ as 4, so a 身份证 number with full-width digits inside passed its check
    character; it is no GB 11643 number (nor one a search by identifier would find)."""
    number = "".join(chr(ord(c) + 0xFEE0) if i in positions else c for i, c in enumerate("11010519491231002X"))
    assert id_card.problems(number) == [("rule.id-card-format", {"value": number})]

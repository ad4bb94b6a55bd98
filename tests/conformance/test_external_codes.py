"""External code systems under R4's required bindings (errors, as the reference validator's):
media types (BCP-13) by their grammar for Attachment.contentType and Binary.contentType, ISO
4217 currencies for Money.currency, UCUM expressions by UCUM's grammar for ucum-units."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from conformance.external_codes import is_media_type
from conformance.ucum import is_code
from conformance.validator import Validator
from tests.conftest import errors


def binary(content_type: str) -> dict[str, str]:
    return {"resourceType": "Binary", "contentType": content_type}


def test_a_registered_media_type_with_a_charset_passes(validator: Validator) -> None:
    assert errors(validator.validate(binary("text/plain; charset=UTF-8"))) == []


def test_a_vendor_media_type_passes(validator: Validator) -> None:
    assert errors(validator.validate(binary("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"))) == []


def test_an_unregistered_top_level_type_is_an_error(validator: Validator) -> None:
    assert ("binding.not-in-valueset", "Binary.contentType") in errors(validator.validate(binary("imag/png")))


def test_a_file_extension_is_not_a_media_type(validator: Validator) -> None:
    photo = {"resourceType": "Patient", "photo": [{"contentType": "jpg"}]}
    assert ("binding.not-in-valueset", "Patient.photo[0].contentType") in errors(validator.validate(photo))


@given(st.text(max_size=40))
def test_the_grammar_decides_every_string_without_raising(code: str) -> None:
    assert is_media_type(code) in (True, False)


def fee(currency: str) -> dict:
    return {
        "resourceType": "ChargeItem",
        "status": "billable",
        "code": {"text": "签约服务费"},
        "subject": {"reference": "Patient/p1"},
        "priceOverride": {"value": 120, "currency": currency},
    }


def test_an_iso_4217_currency_passes(validator: Validator) -> None:
    assert errors(validator.validate(fee("CNY"))) == []


def test_a_currency_outside_iso_4217_is_an_error(validator: Validator) -> None:
    assert ("binding.not-in-valueset", "ChargeItem.priceOverride.currency") in errors(validator.validate(fee("RMB")))


def element_definition(unit: str) -> dict:
    characteristic = {
        "definitionCodeableConcept": {"text": "年龄"},
        "unitOfMeasure": {"coding": [{"system": "http://unitsofmeasure.org", "code": unit}]},
    }
    return {
        "resourceType": "ResearchElementDefinition",
        "status": "draft",
        "type": "population",
        "characteristic": [characteristic],
    }


def test_a_ucum_expression_meets_ucum_units(validator: Validator) -> None:
    assert errors(validator.validate(element_definition("mm[Hg]/{beat}"))) == []


def test_a_unit_written_out_is_not_in_ucum_units(validator: Validator) -> None:
    found = errors(validator.validate(element_definition("years")))
    assert ("binding.not-in-valueset", "ResearchElementDefinition.characteristic[0].unitOfMeasure") in found


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=20))
def test_the_ucum_grammar_decides_every_string_without_raising(code: str) -> None:
    assert is_code(code) in (True, False)


def quantity(code: str) -> dict:
    value = {"value": 142, "system": "http://unitsofmeasure.org", "code": code}
    return {"resourceType": "Observation", "status": "final", "code": {"text": "收缩压"}, "valueQuantity": value}


def test_a_quantity_claiming_ucum_needs_a_ucum_code_whatever_binds_it(validator: Validator) -> None:
    assert ("code.invalid-ucum", "Observation.valueQuantity.code") in errors(validator.validate(quantity("mmHgX")))


def test_a_quantity_with_a_ucum_code_passes(validator: Validator) -> None:
    assert errors(validator.validate(quantity("mm[Hg]"))) == []

"""Datatype rules of the R4 base the reference validator enforces natively: Resource.id takes
no extensions, Attachment.size / Attachment.hash agree with Attachment.data (both errors
in the reference: TYPE_SPECIFIC_CHECKS_DT_ATT_SIZE_CORRECT, …_HASH_MISMATCH), and no string
exceeds 1 MB (error: TYPE_SPECIFIC_CHECKS_DT_STRING_LENGTH)."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

from conformance.validator import Validator

DATA = "测试报告".encode()
SHA1 = base64.b64encode(hashlib.sha1(DATA).digest()).decode()  # noqa: S324 - FHIR's hash is SHA-1


def errors_of(validator: Validator, resource: dict[str, Any]) -> list[tuple[str, str]]:
    return [(i.message_id, i.expression) for i in validator.validate(resource) if i.is_error]


def test_a_resource_id_without_extensions_passes(validator: Validator) -> None:
    assert errors_of(validator, {"resourceType": "Patient", "id": "p1"}) == []


def test_an_extension_on_resource_id_is_an_error(validator: Validator) -> None:
    patient = {
        "resourceType": "Patient",
        "id": "p1",
        "_id": {"extension": [{"url": "http://e.org/x", "valueString": "a"}]},
    }
    assert errors_of(validator, patient) == [("structure.resource-id-extension", "Patient.id")]


def photo(**attachment: Any) -> dict[str, Any]:
    data = {"contentType": "text/plain", "data": base64.b64encode(DATA).decode(), **attachment}
    return {"resourceType": "Patient", "photo": [data]}


def test_an_attachment_size_and_hash_matching_the_data_pass(validator: Validator) -> None:
    assert errors_of(validator, photo(size=len(DATA), hash=SHA1)) == []


def test_an_attachment_size_not_matching_the_data_is_an_error(validator: Validator) -> None:
    assert errors_of(validator, photo(size=len(DATA) + 1)) == [("attachment.size-mismatch", "Patient.photo[0].size")]


def test_an_attachment_hash_not_matching_the_data_is_an_error(validator: Validator) -> None:
    wrong = base64.b64encode(hashlib.sha1(b"other").digest()).decode()  # noqa: S324
    assert errors_of(validator, photo(hash=wrong)) == [("attachment.hash-mismatch", "Patient.photo[0].hash")]


def test_a_string_of_exactly_one_megabyte_passes(validator: Validator) -> None:
    note = {"resourceType": "Basic", "code": {"text": "x" * (1024 * 1024)}}
    assert errors_of(validator, note) == []


def test_a_string_over_one_megabyte_is_an_error(validator: Validator) -> None:
    note = {"resourceType": "Basic", "code": {"text": "x" * (1024 * 1024 + 1)}}
    assert errors_of(validator, note) == [("primitive.too-long", "Basic.code.text")]


def test_base64_data_over_one_megabyte_is_not_a_string_too_long(validator: Validator) -> None:
    data = base64.b64encode(b"\0" * (900 * 1024)).decode()  # 1.2 MB of base64
    patient = {"resourceType": "Patient", "photo": [{"contentType": "image/png", "data": data}]}
    assert "primitive.too-long" not in {message for message, _ in errors_of(validator, patient)}

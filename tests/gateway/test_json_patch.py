"""JSON Patch refusals: each names the operation that failed, in words of ours, and never
quotes the stored resource (its words reach the client, the exchange records and the audit
trail)."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.fhir.errors import FhirError
from gateway.fhir.json_patch import patched_resource
from gateway.storage.store import Stored

ID_HOLDER = Stored(
    "Patient",
    "p1",
    1,
    "2026-12-05T00:00:00Z",
    False,
    {"resourceType": "Patient", "id": "p1", "identifier": [{"system": "urn:x", "value": "410105194912310020"}]},
)


def refusal_of(operations: list[dict[str, Any]]) -> FhirError:
    with pytest.raises(FhirError) as refused:
        patched_resource(ID_HOLDER, operations)
    return refused.value


def test_a_failed_patch_test_names_its_operation_not_the_stored_value() -> None:
    refusal = refusal_of(
        [{"op": "add", "path": "/active", "value": True}, {"op": "test", "path": "/identifier/0/value", "value": "1"}]
    )
    worded = str(refusal.outcome("en"))
    assert (refusal.message_id, refusal.params["number"], "410105" in worded) == ("http.patch-test-failed", 2, False)


def test_a_patch_at_a_path_the_resource_lacks_does_not_quote_the_resource() -> None:
    refusal = refusal_of([{"op": "replace", "path": "/nonexistent/x", "value": 1}])
    assert (refusal.message_id, "410105" in str(refusal.outcome("zh-CN"))) == ("http.patch-not-applicable", False)


def test_a_malformed_patch_operation_is_named_by_its_number() -> None:
    refusal = refusal_of([{"op": "add", "path": "/active", "value": True}, {"op": "replace", "path": "/active"}])
    assert (refusal.message_id, refusal.params["number"]) == ("http.bad-patch-operation", 2)

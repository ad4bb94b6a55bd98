"""The rule of records naming records is data (gateway/security/naming_records.json), checked
against the search parameter definitions when it is built: a misspelt entry would otherwise
protect nothing, silently."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.security.naming_records import NamingRecordsError, naming_records
from profiles.registry import Registry


@pytest.fixture(scope="module")
def registry() -> Registry:
    return Registry()


def test_the_shipped_rule_is_built_from_its_file(registry: Registry) -> None:
    rule = naming_records(registry)
    assert rule.through["Provenance"] == ("target", "entity")
    assert "derived-from" in rule.through["Observation"]
    assert rule.placing == {"Provenance": ("target",)}


@pytest.mark.parametrize(
    ("document", "message_id", "params"),
    [
        ({"types": {"Observaton": {"derived-from": ""}}}, "access.naming-records-unknown-type", {"type": "Observaton"}),
        ({"types": {"Address": {}}}, "access.naming-records-unknown-type", {"type": "Address"}),
        (
            {"types": {"Observation": {"derived-from": "", "derivedFrom": ""}}},
            "access.naming-records-unknown-parameter",
            {"type": "Observation", "parameter": "derivedFrom"},
        ),
        (
            {"types": {"Observation": {"code": ""}}},
            "access.naming-records-not-reference",
            {"type": "Observation", "parameter": "code", "kind": "token"},
        ),
        # placed by the records it names, a Provenance naming a stranger's record alone would
        # be shown if they were not judged
        (
            {"types": {"Provenance": {"entity": ""}}, "placing": {"Provenance": {"target": ""}}},
            "access.naming-records-placing-unjudged",
            {"type": "Provenance", "parameter": "target"},
        ),
        (
            {"types": {}, "placing": {"Observaton": {"derived-from": ""}}},
            "access.naming-records-placing-unjudged",
            {"type": "Observaton", "parameter": "derived-from"},
        ),
        # placing is an alternative to the Patient compartment, which no Organization is in:
        # it would place nothing
        (
            {"types": {"Organization": {"partof": ""}}, "placing": {"Organization": {"partof": ""}}},
            "access.naming-records-placing-no-compartment",
            {"type": "Organization"},
        ),
    ],
)
def test_an_entry_the_definitions_do_not_support_is_refused_naming_it(
    registry: Registry, document: dict[str, Any], message_id: str, params: dict[str, str]
) -> None:
    with pytest.raises(NamingRecordsError) as refused:
        naming_records(registry, document)
    assert refused.value.message_id == message_id
    assert refused.value.params == {"file": "naming_records.json", **params}
    assert "naming_records.json" in refused.value.text("zh-CN")

"""The after-birth rule as data (conformance/dated_resources.py): read from the guides the
registry holds, the first guide stating a type answering, a malformed statement skipped and
an element its type lacks reported where it is written."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from conformance.after_birth import AfterBirth
from conformance.dated_resources import EXTENSION, DatedResource, DatedResources
from conformance.issues import IssueList
from conformance.validator import Validator
from profiles.registry import Registry

BASE = "http://fhir.yiyang.cn"
RULE_URL = f"{BASE}/StructureDefinition/{EXTENSION}"


def guide(*rules: list[Any]) -> dict[str, Any]:
    """An ``--ig`` package's guide stating ``rules``, each the parts of one extension."""
    return {
        "resourceType": "ImplementationGuide",
        "url": "http://example.org/ImplementationGuide/province",
        "extension": [{"url": RULE_URL, "extension": parts} for parts in rules],
    }


def rule(kind: str, person: str, *events: str) -> list[Any]:
    return [
        {"url": "type", "valueCode": kind},
        {"url": "person", "valueString": person},
        *({"url": "event", "valueString": event} for event in events),
    ]


def registry_with(*rules: list[Any]) -> Registry:
    registry = Registry()
    registry.add_resource(guide(*rules), "province")
    return registry


def test_the_package_states_the_encounter_dated_by_its_period_about_its_subject() -> None:
    assert DatedResources(Registry()).get("Encounter") == DatedResource("subject", ("period",), ())


def test_a_type_an_added_guide_states_is_judged() -> None:
    """A province dating its communications: the rule is read from its guide, not the code."""
    sent = {"resourceType": "Communication", "subject": {"reference": "Patient/p1"}, "sent": "1948-01-01"}
    issues = IssueList()
    AfterBirth(registry_with(rule("Communication", "subject", "sent"))).check(sent, "Communication", "1949", issues)
    assert [issue.expression for issue in issues] == ["Communication.sent"]


def test_the_package_answers_for_a_type_an_added_guide_restates() -> None:
    """The first guide in the registry's order answers, as a definition's URL does."""
    assert DatedResources(registry_with(rule("Encounter", "subject", "length"))).get("Encounter").events == ("period",)


def test_the_package_states_a_coverage_held_by_its_subscriber() -> None:
    assert DatedResources(Registry()).get("Coverage").held_by == "subscriber"


def test_an_event_held_by_another_by_an_added_guide_is_a_warning() -> None:
    """A province dating invoices, some billed to a parent's account: the holder is data."""
    parts = [*rule("Invoice", "subject", "date"), {"url": "heldBy", "valueString": "recipient"}]
    billed = {
        "resourceType": "Invoice",
        "subject": {"reference": "Patient/p1"},
        "recipient": {"reference": "Patient/mother"},
        "date": "1948-01-01",
    }
    issues = IssueList()
    AfterBirth(registry_with(parts)).check(billed, "Invoice", "1949", issues)
    assert [issue.severity for issue in issues] == ["warning"]


def test_a_statement_naming_no_person_is_skipped() -> None:
    assert DatedResources(registry_with(rule("Communication", "", "sent"))).get("Communication") is None


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.none(),
            st.text(max_size=5),
            st.fixed_dictionaries(
                {"url": st.sampled_from(["type", "person", "heldBy", "event", "prenatal", "other"])},
                optional={
                    "valueCode": st.one_of(st.text(max_size=8), st.integers()),
                    "valueString": st.text(max_size=8),
                },
            ),
        ),
        max_size=6,
    )
)
def test_any_statement_compiles_to_well_formed_rules_or_none(parts: list[Any]) -> None:
    compiled = DatedResources(registry_with(parts)).by_type()
    assert all(
        isinstance(dated.person, str) and all(isinstance(e, str) for e in dated.events + dated.prenatal)
        for dated in compiled.values()
    )


def definition_findings(validator: Validator, definition: dict[str, Any]) -> list[tuple[str, str]]:
    """(message id, FHIRPath) of what the validator finds wrong with a definition as one."""
    issues = validator.validate(definition)
    return [(issue.message_id, issue.expression) for issue in issues if issue.message_id.startswith("definition.")]


def test_an_element_the_type_lacks_is_reported_where_the_guide_names_it(validator: Validator) -> None:
    """A misspelt element is a date never judged: the guide is told when it is validated."""
    found = definition_findings(validator, guide(rule("Encounter", "subject", "perid")))
    assert found == [("definition.unknown-path", "ImplementationGuide.extension[0].extension[2].value")]


def test_a_holder_element_the_type_lacks_is_reported_where_the_guide_names_it(validator: Validator) -> None:
    parts = [*rule("Coverage", "beneficiary", "period"), {"url": "heldBy", "valueString": "subscribr"}]
    found = definition_findings(validator, guide(parts))
    assert found == [("definition.unknown-path", "ImplementationGuide.extension[0].extension[3].value")]


def test_a_type_that_is_no_r4_resource_is_reported_once_where_the_guide_names_it(validator: Validator) -> None:
    """The ``type`` part is bound to R4's resource-types: the type finding supersedes the
    binding's on the same value, one fault, one reason."""
    issues = validator.validate(guide(rule("Visit", "subject", "period")))
    found = [(i.message_id, i.expression) for i in issues if i.message_id.startswith(("definition.", "binding."))]
    assert found == [("definition.unknown-type", "ImplementationGuide.extension[0].extension[0].value")]


def test_the_type_part_is_bound_to_r4_resource_types(validator: Validator) -> None:
    """Where the rule's extension is validated by its definition, a non-type is outside the
    value set (the package's definition binds it; R4's resource-types resolves)."""
    part = {"url": "type", "valueCode": "Visit"}
    extension = {"url": RULE_URL, "extension": [part, {"url": "person", "valueString": "subject"}]}
    basic = {"resourceType": "Basic", "code": {"text": "x"}, "extension": [extension]}
    issues = validator.validate(basic)
    assert found_binding(issues) == [("binding.not-in-valueset", "Basic.extension[0].extension[0].valueCode")]


def found_binding(issues: list[Any]) -> list[tuple[str, str]]:
    return [(i.message_id, i.expression) for i in issues if i.message_id.startswith("binding.")]

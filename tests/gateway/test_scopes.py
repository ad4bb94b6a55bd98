"""SMART v2 system scopes: parsing (v1 translated), the grant at the token endpoint, and the
interaction → permission table."""

from __future__ import annotations

import pytest

from gateway.security.scopes import (
    Grants,
    Scope,
    ScopeError,
    bundle_entry_needs,
    grant,
    needs,
    parse_scope,
    parse_scopes,
    search_needs,
    stored_scopes,
    within_role,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("system/Patient.rs", Scope("Patient", "rs")),
        ("system/*.cruds", Scope("*", "cruds")),
        ("system/Encounter.cu", Scope("Encounter", "cu")),
        ("system/Patient.read", Scope("Patient", "rs")),
        ("system/Patient.write", Scope("Patient", "cud")),
        ("system/*.*", Scope("*", "cruds")),
    ],
)
def test_a_scope_parses_to_its_v2_form(text: str, expected: Scope) -> None:
    assert parse_scope(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "patient/Patient.rs",
        "system/Patient.sr",
        "system/Patient.x",
        "system/patient.rs",
        "system/Observation.rs?category=x",
        "system/Foo.rs",
        "system/Resource.rs",
        "launch",
    ],
)
def test_a_scope_the_gateway_cannot_honour_is_refused(text: str) -> None:
    with pytest.raises(ScopeError):
        parse_scope(text)


def test_a_stored_scope_this_gateway_refuses_is_left_out_not_fatal() -> None:
    """A registration an older gateway accepted (system/Foo.rs) must not fail every request."""
    assert [str(s) for s in stored_scopes("system/Foo.rs system/Patient.rs")] == ["system/Patient.rs"]


def test_a_request_for_more_than_registered_gets_only_what_is_registered() -> None:
    granted = grant(parse_scopes("system/*.cruds"), parse_scopes("system/Patient.rs system/Encounter.cu"))
    assert [str(s) for s in granted] == ["system/Patient.rs", "system/Encounter.cu"]


def test_a_narrower_request_is_granted_as_asked() -> None:
    assert [str(s) for s in grant(parse_scopes("system/Patient.r"), parse_scopes("system/*.cruds"))] == [
        "system/Patient.r"
    ]


def test_nothing_in_common_grants_nothing() -> None:
    assert grant(parse_scopes("system/Observation.rs"), parse_scopes("system/Patient.cruds")) == []


def test_grants_name_the_missing_scope() -> None:
    grants = Grants(["system/Patient.rs"])
    assert (grants.missing([("Patient", "r")]), grants.missing([("Patient", "cu")])) == (None, "system/Patient.cu")


@pytest.mark.parametrize(
    ("endpoint", "view_args", "conditional", "types", "expected"),
    [
        ("fhir.read", {"kind": "Patient"}, False, [], [("Patient", "r")]),
        ("fhir.create", {"kind": "Patient"}, True, [], [("Patient", "cs")]),
        ("fhir.conditional_delete", {"kind": "Patient"}, False, [], [("Patient", "ds")]),
        ("fhir.validate_type", {"kind": "Patient"}, False, [], []),
        ("fhir.ingest", {}, False, [], [("*", "cu")]),
        ("bulk.export_system", {}, False, [], [("*", "rs")]),
        ("bulk.export_system", {}, False, ["Patient"], [("Patient", "rs")]),
        ("bulk.export_patients", {}, False, ["Observation"], [("Patient", "rs"), ("Observation", "rs")]),
        ("something.new", {}, False, [], [("*", "cruds")]),
    ],
)
def test_each_interaction_needs_its_permissions(
    endpoint: str, view_args: dict[str, str], conditional: bool, types: list[str], expected: list[tuple[str, str]]
) -> None:
    assert needs(endpoint, view_args, conditional, types) == expected


def test_includes_need_search_on_the_types_they_add() -> None:
    pairs = [
        ("_revinclude", "Observation:subject"),
        ("_include", "Encounter:subject:Patient"),
        ("_include", "Encounter:x"),
    ]
    assert search_needs("Encounter", pairs) == [("Encounter", "s"), ("Observation", "s"), ("Patient", "s"), ("*", "s")]


def test_a_reverse_chain_needs_search_on_the_type_it_looks_into() -> None:
    assert search_needs("Patient", [("_has:CarePlan:subject:status", "active")]) == [
        ("Patient", "s"),
        ("CarePlan", "s"),
    ]


def test_a_bundle_entry_needs_what_its_interaction_would() -> None:
    assert [
        bundle_entry_needs("POST", "Patient", None, [("identifier", "x")]),
        bundle_entry_needs("GET", "Patient", "p1", None),
        bundle_entry_needs("GET", "Patient", None, [("name", "x")]),
        bundle_entry_needs("DELETE", "Patient", "p1", None),
    ] == [[("Patient", "cs")], [("Patient", "r")], [("Patient", "s")], [("Patient", "d")]]


def test_a_patch_needs_read_as_well_as_update() -> None:
    """A patch's answer, refusals and test operations show the content it works on."""
    assert [
        needs("fhir.patch", {"kind": "Patient"}),
        needs("fhir.conditional_patch", {"kind": "Patient"}),
        bundle_entry_needs("PATCH", "Patient", "p1", None),
    ] == [[("Patient", "ru")], [("Patient", "rus")], [("Patient", "ru")]]


def test_a_bundle_entry_paging_an_instances_history_needs_read_only() -> None:
    assert bundle_entry_needs("GET", "Patient", "p1", [("_count", "1")]) == [("Patient", "r")]


def test_a_bundle_search_entry_needs_its_includes_too() -> None:
    assert bundle_entry_needs("GET", "Encounter", None, [("_include", "Encounter:subject:Patient")]) == [
        ("Encounter", "s"),
        ("Patient", "s"),
    ]


def test_a_chain_needs_search_on_the_types_it_searches() -> None:
    targets = {("Encounter", "subject"): ("Group", "Patient")}
    found = search_needs(
        "Encounter", [("subject.identifier", "x"), ("patient:Patient.name", "y")], lambda k, c: targets.get((k, c), ())
    )
    assert found == [("Encounter", "s"), ("Group", "s"), ("Patient", "s"), ("Patient", "s")]


@pytest.mark.parametrize(
    ("role", "registered", "usable"),
    [
        ("auditor", "system/*.cruds", [Scope("*", "rs")]),
        ("auditor", "system/Patient.cud system/AuditEvent.rs", [Scope("AuditEvent", "rs")]),
        ("hospital", "system/*.cruds", [Scope("*", "cruds")]),
    ],
)
def test_a_read_only_role_keeps_only_read_and_search(role: str, registered: str, usable: list[Scope]) -> None:
    """An auditor registered with system/*.cruds created Encounters and ran $ingest."""
    assert within_role(role, parse_scopes(registered)) == usable

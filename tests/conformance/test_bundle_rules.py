"""Bundle rules the reference HL7 validator enforces beyond the R4 invariants (its
BundleValidator): absolute fullUrls consistent with the resource id, link relations at most once
and paging only in searchsets, ids on search results, OperationOutcomes where the Bundle says
so — plus bdl-7 (unique fullUrls), a core invariant.  All are errors in the reference, except a
search result without id in a Bundle that gives no search mode (a warning)."""

from __future__ import annotations

from typing import Any

import pytest

from conformance.validator import Validator

BASE = "http://example.org/fhir"


def basic(id_: str | None = "b1") -> dict[str, Any]:
    resource: dict[str, Any] = {"resourceType": "Basic", "code": {"text": "随访"}}
    if id_:
        resource["id"] = id_
    return resource


def bundle(kind: str = "collection", **extra: Any) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": kind, **extra}


def found(validator: Validator, document: dict[str, Any], prefix: str = "bundle.") -> list[tuple[str, str, str]]:
    return [
        (i.severity, i.message_id, i.expression)
        for i in validator.validate(document)
        if i.message_id.startswith(prefix)
    ]


# -- fullUrl -----------------------------------------------------------------------------------
@pytest.mark.parametrize("full_url", [f"{BASE}/Basic/b1", "urn:uuid:8f2a5c1e-3b4d-4e6f-9a0b-1c2d3e4f5a6b"])
def test_an_absolute_full_url_matching_the_resource_passes(validator: Validator, full_url: str) -> None:
    assert found(validator, bundle(entry=[{"fullUrl": full_url, "resource": basic()}])) == []


def test_a_relative_full_url_is_an_error(validator: Validator) -> None:
    issues = found(validator, bundle(entry=[{"fullUrl": "Basic/b1", "resource": basic()}]))
    assert issues == [("error", "bundle.fullurl-not-absolute", "Bundle.entry[0].fullUrl")]


def test_a_restful_full_url_naming_another_id_is_an_error(validator: Validator) -> None:
    issues = found(validator, bundle(entry=[{"fullUrl": f"{BASE}/Basic/b2", "resource": basic()}]))
    assert issues == [("error", "bundle.fullurl-id-mismatch", "Bundle.entry[0].fullUrl")]


def test_a_restful_full_url_on_a_resource_without_id_is_an_error(validator: Validator) -> None:
    issues = found(validator, bundle(entry=[{"fullUrl": f"{BASE}/Basic/b1", "resource": basic(None)}]))
    assert issues == [("error", "bundle.fullurl-resource-without-id", "Bundle.entry[0].fullUrl")]


def test_full_urls_repeated_in_a_collection_fail_bdl_7(validator: Validator) -> None:
    entry = {"fullUrl": f"{BASE}/Basic/b1", "resource": basic()}
    issues = validator.validate(bundle(entry=[entry, dict(entry)]))
    assert [i.severity for i in issues if i.params.get("key") == "bdl-7"] == ["error"]


def test_distinct_full_urls_pass_bdl_7(validator: Validator) -> None:
    entries = [{"fullUrl": f"{BASE}/Basic/b{i}", "resource": basic(f"b{i}")} for i in (1, 2)]
    assert [i for i in validator.validate(bundle(entry=entries)) if i.params.get("key") == "bdl-7"] == []


# -- links -------------------------------------------------------------------------------------
def links(*relations: str) -> list[dict[str, str]]:
    return [{"relation": r, "url": f"{BASE}/Basic?page={i}"} for i, r in enumerate(relations)]


def test_distinct_paging_links_in_a_searchset_pass(validator: Validator) -> None:
    assert found(validator, bundle("searchset", link=links("self", "next", "last"))) == []


def test_a_link_relation_given_twice_is_an_error(validator: Validator) -> None:
    issues = found(validator, bundle("searchset", link=links("self", "next", "next")))
    assert issues == [("error", "bundle.link-duplicate", "Bundle.link[2].relation")]


def test_a_paging_link_outside_a_search_is_an_error(validator: Validator) -> None:
    issues = found(validator, bundle("collection", link=links("self", "next")))
    assert issues == [("error", "bundle.link-paging-outside-search", "Bundle.link[1].relation")]


# -- search results ----------------------------------------------------------------------------
def searchset(resource: dict[str, Any], mode: str | None) -> dict[str, Any]:
    entry: dict[str, Any] = {"fullUrl": "urn:uuid:8f2a5c1e-3b4d-4e6f-9a0b-1c2d3e4f5a6b", "resource": resource}
    if mode:
        entry["search"] = {"mode": mode}
    return bundle("searchset", entry=[entry])


def test_a_search_match_with_an_id_passes(validator: Validator) -> None:
    assert found(validator, searchset(basic(), "match")) == []


def test_a_search_match_without_id_is_an_error(validator: Validator) -> None:
    issues = found(validator, searchset(basic(None), "match"))
    assert issues == [("error", "bundle.search-entry-without-id", "Bundle.entry[0].resource")]


def test_a_search_result_without_id_or_mode_is_a_warning(validator: Validator) -> None:
    issues = found(validator, searchset(basic(None), None))
    assert issues == [("warning", "bundle.search-entry-without-id", "Bundle.entry[0].resource")]


def test_a_search_outcome_entry_must_be_an_operation_outcome(validator: Validator) -> None:
    issues = found(validator, searchset(basic(), "outcome"))
    assert issues == [("error", "bundle.search-outcome-not-operation-outcome", "Bundle.entry[0].resource")]


# -- entry.response.outcome --------------------------------------------------------------------
def response(outcome: dict[str, Any]) -> dict[str, Any]:
    return bundle("transaction-response", entry=[{"response": {"status": "201 Created", "outcome": outcome}}])


def test_a_response_outcome_operation_outcome_passes(validator: Validator) -> None:
    outcome = {"resourceType": "OperationOutcome", "issue": [{"severity": "information", "code": "informational"}]}
    assert found(validator, response(outcome)) == []


def test_a_response_outcome_of_another_type_is_an_error(validator: Validator) -> None:
    issues = found(validator, response(basic()))
    assert issues == [("error", "bundle.outcome-not-operation-outcome", "Bundle.entry[0].response.outcome")]


# -- request -----------------------------------------------------------------------------------
def put(url: str, resource: dict[str, Any], kind: str = "transaction") -> dict[str, Any]:
    uuid = "urn:uuid:8f2a5c1e-3b4d-4e6f-9a0b-1c2d3e4f5a6b"
    return bundle(kind, entry=[{"fullUrl": uuid, "resource": resource, "request": {"method": "PUT", "url": url}}])


@pytest.mark.parametrize("url", ["Basic/b1", f"{BASE}/Basic/b1", "Basic?identifier=urn:audit|1"])
def test_a_put_entry_whose_body_names_its_url_id_passes(validator: Validator, url: str) -> None:
    assert found(validator, put(url, basic())) == []


@pytest.mark.parametrize("kind", ["transaction", "batch"])
def test_a_put_entry_whose_body_names_another_id_is_an_error(validator: Validator, kind: str) -> None:
    """PUT Basic/a with a body of id b: the server refuses it (http.id-mismatch), so does the
    reference validator; validation passed it."""
    assert found(validator, put("Basic/a", basic("b"), kind)) == [
        ("error", "bundle.request-id-mismatch", "Bundle.entry[0].resource.id")
    ]


def test_a_put_entry_whose_body_names_no_id_is_an_error(validator: Validator) -> None:
    """An update's body SHALL carry the id of its URL (http.html#update); the server refuses one
    without it (http.id-missing)."""
    assert found(validator, put("Basic/a", basic(None))) == [
        ("error", "bundle.request-id-missing", "Bundle.entry[0].resource.id")
    ]


@pytest.mark.parametrize(("method", "url"), [("PUT", "Patient/b1"), ("POST", "Patient"), ("PUT", "Patient?name=x")])
def test_a_request_for_another_type_than_its_resource_is_an_error(validator: Validator, method: str, url: str) -> None:
    """A Basic sent to Patient: the server refuses it (http.wrong-type); validation passed it."""
    document = put(url, basic())
    document["entry"][0]["request"]["method"] = method
    assert found(validator, document) == [
        ("error", "bundle.request-type-mismatch", "Bundle.entry[0].resource.resourceType")
    ]


def test_a_request_method_of_another_json_type_is_judged_without_failing(validator: Validator) -> None:
    document = put("Basic/b1", basic())
    document["entry"][0]["request"]["method"] = ["PUT"]
    assert found(validator, document) == []

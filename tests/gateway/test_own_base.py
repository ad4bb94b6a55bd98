"""References on the server's own base, however spelt, stand for the relative ones
(gateway/search/values.py ``local_reference``, gateway/fhir/archive_references.py ``localise``)."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.fhir.archive_references import localise
from gateway.search.values import local_reference

BASE = "http://127.0.0.1:8080/fhir"


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/fhir/Patient/p1",
        "HTTP://127.0.0.1:8080/fhir/Patient/p1",
        "http://127.0.0.1:8080/fhir//Patient/p1",
        "http://127.0.0.1:8080/fhir/./Patient/p1",
        "http://127.0.0.1:8080/other/../fhir/Patient/p1",
        "http://127.0.0.1:8080/fhir/Patient/%70%31",
        "http://127.0.0.1.:8080/fhir/Patient/p1",
        "http://127.0.0.%31:8080/fhir/Patient/p1",
    ],
)
def test_each_spelling_of_the_own_base_is_the_relative_reference(url: str) -> None:
    assert local_reference(url, BASE) == "Patient/p1"


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9090/fhir/Patient/p1",
        "https://127.0.0.1:8080/fhir/Patient/p1",
        "http://127.0.0.1:8080/FHIR/Patient/p1",
        "http://127.0.0.1:8080/fhir/Patient/p1?x=1",
        "http://127.0.0.1:8080/fhir/Patient",
        "urn:uuid:7d0f3a52-1111-4c3b-9a55-0c6f1e2d3b4a",
        "http://127.0.0.1:8080/fhir/Pat\tient/p1",
        " http://127.0.0.1:8080/fhir/Patient/p1",
        "http://evil\\@127.0.0.1:8080/fhir/Patient/p1",
        "http://127.0.0.1:0/fhir/Patient/p1",
        "http://127.0.0.1:8080/other%2F..%2Ffhir/Patient/p1",
        "http://127.0.0.1:8080/fhir/Patient/p1/",
    ],
)
def test_another_servers_url_or_no_url_is_none(url: str) -> None:
    assert local_reference(url, BASE) is None


@pytest.mark.parametrize(
    ("url", "base"),
    [
        ("http://[0:0:0:0:0:0:0:1]:8080/fhir/Patient/p1", "http://[::1]:8080/fhir"),
        ("http://bücher.example/fhir/Patient/p1", "http://xn--bcher-kva.example/fhir"),
    ],
)
def test_a_host_is_compared_in_one_form(url: str, base: str) -> None:
    assert local_reference(url, base) == "Patient/p1"


def test_a_reference_with_extensions_on_its_elements_is_rewritten() -> None:
    actor = {"reference": f"{BASE}/Organization/o1", "display": "x", "_display": {"extension": []}}
    localise(actor, BASE)
    assert actor["reference"] == "Organization/o1"


def test_the_default_port_may_be_left_out() -> None:
    assert local_reference("http://gateway.example/fhir/Patient/p1", "http://gateway.example:80/fhir") == "Patient/p1"


def test_a_uri_element_named_reference_is_not_rewritten() -> None:
    """DetectedIssue.reference is a uri of its own, not a Reference."""
    issue: dict[str, Any] = {"resourceType": "DetectedIssue", "status": "final", "reference": f"{BASE}/Patient/p1"}
    localise(issue, BASE)
    assert issue["reference"] == f"{BASE}/Patient/p1"


def test_a_reference_on_the_own_base_is_rewritten_wherever_it_sits() -> None:
    bundle: dict[str, Any] = {"entry": [{"resource": {"subject": {"reference": f"{BASE}/Patient/p1", "display": "x"}}}]}
    localise(bundle, BASE)
    assert bundle["entry"][0]["resource"]["subject"]["reference"] == "Patient/p1"


@pytest.mark.parametrize(
    ("url", "relative"),
    [
        (f"{BASE}/Patient?identifier=urn:oid:2.16.156.10011.1.3|110101194001010015", "Patient?identifier="),
        ("HTTP://127.0.0.1:8080/fhir/./Organization?name=x", "Organization?name=x"),
        (f"{BASE}/Patient/p1?x=1", None),
        (f"{BASE}/Patient?", None),
        ("http://127.0.0.1:9090/fhir/Patient?name=x", None),
    ],
)
def test_a_conditional_reference_on_the_own_base_is_the_relative_one(url: str, relative: str | None) -> None:
    """Left absolute, it was stored as a link to another server: a transaction did not resolve
    it, and a single write did not refuse it as unresolved (reference.conditional-not-resolved)."""
    subject = {"reference": url}
    localise(subject, BASE)
    assert subject["reference"].startswith(relative) if relative else subject["reference"] == url

"""FHIR queries and forms are UTF-8 text: bytes that are no UTF-8, raw or percent-encoded, in
a query, a search form or a condition are a 400 naming the parameter.  werkzeug read a form
with one such byte as no form at all (a search for one person answered with everyone), a
raw one in a query failed the error handler itself (gunicorn's HTML 500), and ``%FF`` stayed
the text "%FF" (a conditional create matched nothing and made a duplicate)."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from flask import request
from flask.testing import FlaskClient
from hypothesis import given
from hypothesis import strategies as st

from gateway import create_app
from gateway.config import Config
from gateway.fhir.errors import FhirError
from gateway.fhir.parameters import query_pairs

FORM = "application/x-www-form-urlencoded"
TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",)))


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> FlaskClient:
    store = tmp_path_factory.mktemp("utf8") / "archive.sqlite"
    return create_app(Config(database_url=f"sqlite:///{store}"), secure=False).test_client()


def refusal(answer: Any) -> tuple[int, str, list[str]]:
    issue = answer.get_json()["issue"][0]
    return answer.status_code, issue["details"]["coding"][0]["code"], issue.get("expression", [])


@given(st.lists(st.tuples(TEXT, TEXT)))
def test_pairs_read_back_what_was_encoded(pairs: list[tuple[str, str]]) -> None:
    assert query_pairs(urlencode(pairs)) == pairs


@pytest.mark.parametrize("raw", [b"name=%FF", b"name=%E5%BC", "name=\u00ff".encode("latin-1")])
def test_bytes_that_are_no_utf8_are_refused_naming_their_parameter(raw: bytes) -> None:
    with pytest.raises(FhirError) as refused:
        query_pairs(raw)
    assert (refused.value.status, refused.value.expression) == (400, "name")


def test_a_search_form_with_a_stray_byte_is_refused_not_read_as_no_criteria(client: FlaskClient) -> None:
    body = b"identifier=urn:oid:2.16.156.10011.1.3|410105194912310020&\xff"
    answer = client.post("/fhir/Patient/_search", data=body, content_type=FORM)
    assert refusal(answer) == (400, "http.not-utf8", ["\ufffd"])


def test_a_search_form_read_first_by_another_hook_is_still_refused(tmp_path: Path) -> None:
    """With security on, authentication reads the search form (the scopes its criteria need)
    before the refusal looks at its bytes: they were gone, and the search answered everyone."""
    app = create_app(Config(database_url=f"sqlite:///{tmp_path / 'archive.sqlite'}"), secure=False)
    app.before_request_funcs.setdefault(None, []).insert(0, lambda: None if request.form else None)
    body = b"identifier=urn:oid:2.16.156.10011.1.3|410105194912310020&\xff"
    answer = app.test_client().post("/fhir/Patient/_search", data=body, content_type=FORM)
    assert refusal(answer) == (400, "http.not-utf8", ["\ufffd"])


def test_a_raw_byte_in_a_query_is_a_400_outcome(client: FlaskClient) -> None:
    answer = client.get("/fhir/Patient", environ_overrides={"QUERY_STRING": "name=\u00ff"})
    assert refusal(answer) == (400, "http.not-utf8", ["name"])


def test_a_condition_with_a_percent_encoded_stray_byte_is_refused(client: FlaskClient) -> None:
    answer = client.post("/fhir/Patient", json={"resourceType": "Patient"}, headers={"If-None-Exist": "identifier=%FF"})
    assert refusal(answer) == (400, "http.not-utf8", ["identifier"])

"""Authentication and scopes against a real running server (both databases): SMART Backend
Services tokens, refused assertions, revoked clients, scopes, rate limits and headers."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from gateway.cli import main
from gateway.config import Config
from gateway.messages import text
from gateway.security import tokens
from gateway.security.clients import RegistrationError, check_jwks
from gateway.security.tokens import ACCESS_ALGORITHM, Authority, OAuthError, Unauthenticated
from gateway.storage import open_store
from gateway.storage.store import Store
from tests.conftest import (
    ALL_SCOPES,
    ASSERTION_TYPE,
    TEST_ORGANIZATION,
    Api,
    Served,
    add_client,
    assertion,
    jwks_of,
    request_token,
    running_server,
)

FHIR_JSON = {"Content-Type": "application/fhir+json"}
ENGLISH = {"Accept-Language": "en"}
PATIENT = {"resourceType": "Patient", "active": True}


def message_id(answer: requests.Response) -> str:
    return answer.json()["issue"][0]["details"]["coding"][0]["code"]


def bearer(answer: requests.Response) -> dict[str, str]:
    assert answer.status_code == 200, answer.text
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


# -- public and refused ----------------------------------------------------------------------
def test_the_smart_configuration_is_public(server: str) -> None:
    document = requests.get(f"{server}/.well-known/smart-configuration", timeout=30).json()
    assert (
        document["token_endpoint"],
        document["token_endpoint_auth_methods_supported"],
        document["token_endpoint_auth_signing_alg_values_supported"],
        document["grant_types_supported"],
    ) == (f"{server}/token", ["private_key_jwt"], ["RS384", "ES384"], ["client_credentials"])


def test_the_capability_statement_is_public(server: str) -> None:
    assert requests.get(f"{server}/metadata", timeout=30).status_code == 200


def test_no_token_is_401_with_an_operation_outcome(server: str) -> None:
    answer = requests.get(f"{server}/Patient", headers={"Accept-Language": "en"}, timeout=30)
    assert (answer.status_code, message_id(answer), answer.headers["WWW-Authenticate"].split()[0]) == (
        401,
        "http.unauthorized",
        "Bearer",
    )


def test_a_forged_token_is_401(server: str) -> None:
    forged = jwt.encode(
        {"sub": "test-admin", "exp": int(time.time()) + 60},
        "not-the-server-key-but-long-enough-for-hs256",
        algorithm="HS256",
    )
    answer = requests.get(f"{server}/Patient", headers={"Authorization": f"Bearer {forged}"}, timeout=30)
    assert (answer.status_code, message_id(answer), answer.headers["WWW-Authenticate"]) == (
        401,
        "http.token-invalid",
        'Bearer realm="yiyang", error="invalid_token"',
    )


@pytest.mark.parametrize("authorization", [None, "Basic dGVzdC1hZG1pbjpzZWNyZXQ="])
def test_a_request_without_a_bearer_token_is_challenged_without_an_error_code(
    server: str, authorization: str | None
) -> None:
    """RFC 6750 §3.1: a request that sent no bearer token is not told its token is invalid."""
    headers = {"Authorization": authorization} if authorization else {}
    answer = requests.get(f"{server}/Patient", headers=headers, timeout=30)
    assert (answer.status_code, answer.headers["WWW-Authenticate"]) == (401, 'Bearer realm="yiyang"')


# -- the token endpoint ----------------------------------------------------------------------
def test_a_token_carries_the_granted_scope(served: Served, client_key: Any) -> None:
    answer = request_token(served.base, "test-admin", client_key, "system/Patient.rs")
    assert {k: v for k, v in answer.json().items() if k != "access_token"} == {
        "token_type": "bearer",
        "expires_in": 300,
        "scope": "system/Patient.rs",
    }


def test_more_than_registered_gets_only_what_is_registered(served: Served, client_key: Any) -> None:
    add_client(served.database_url, "narrow", key=client_key, scope="system/Patient.rs")
    assert request_token(served.base, "narrow", client_key, ALL_SCOPES).json()["scope"] == "system/Patient.rs"


def test_a_scope_outside_the_registration_is_invalid_scope(served: Served, client_key: Any) -> None:
    add_client(served.database_url, "patients-only", key=client_key, scope="system/Patient.rs")
    answer = request_token(served.base, "patients-only", client_key, "system/Observation.rs")
    assert (answer.status_code, answer.json()["error"]) == (400, "invalid_scope")


def test_a_malformed_scope_is_refused_in_chinese_throughout(served: Served, client_key: Any) -> None:
    """The scope parser's reason is worded in the answer's language, not English inside Chinese."""
    answer = request_token(served.base, "test-admin", client_key, "patient/*.rs")
    assert (
        answer.json()["error_description"]
        == "权限范围无效：“patient/*.rs”不是 SMART 系统权限范围（应形如 system/Patient.rs）"
    )


def test_an_assertion_signed_with_another_key_is_invalid_client(server: str) -> None:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    answer = request_token(server, "test-admin", other)
    assert (answer.status_code, answer.json()["error"]) == (400, "invalid_client")


def test_an_expired_assertion_is_refused(server: str, client_key: Any) -> None:
    answer = request_token(server, "test-admin", client_key, exp=int(time.time()) - 120)
    assert (answer.status_code, answer.json()["error"]) == (400, "invalid_client")


def test_an_assertion_valid_longer_than_five_minutes_is_refused(server: str, client_key: Any) -> None:
    answer = request_token(server, "test-admin", client_key, exp=int(time.time()) + 3600)
    assert (answer.status_code, answer.json()["error"]) == (400, "invalid_client")


def test_an_assertion_whose_exp_is_a_string_is_refused(server: str, client_key: Any) -> None:
    """A NumericDate is a JSON number; pyjwt reads "1767000000" too, and the check after it failed."""
    answer = request_token(server, "test-admin", client_key, exp=str(int(time.time()) + 200))
    assert (answer.status_code, answer.json()["error"]) == (400, "invalid_client")


def token_form(signed: str) -> dict[str, str]:
    """A token request carrying the assertion ``signed``, to send more than once."""
    return {
        "grant_type": "client_credentials",
        "scope": ALL_SCOPES,
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": signed,
    }


def test_a_replayed_assertion_is_refused(server: str, client_key: Any) -> None:
    form = token_form(assertion(server, "test-admin", client_key))
    first = requests.post(f"{server}/token", data=form, timeout=30)
    second = requests.post(f"{server}/token", data=form, timeout=30, headers={"Accept-Language": "en"})
    assert (first.status_code, second.status_code, second.json()["error"]) == (200, 400, "invalid_client")
    assert "already used" in second.json()["error_description"]


def test_an_assertion_just_past_its_exp_cannot_be_replayed(server: str, client_key: Any) -> None:
    """Within the clock-skew leeway an assertion past its exp is still accepted, so its jti
    must be remembered until the leeway is over too."""
    form = token_form(assertion(server, "test-admin", client_key, exp=int(time.time()) - 5))
    first = requests.post(f"{server}/token", data=form, timeout=30)
    second = requests.post(f"{server}/token", data=form, timeout=30)
    assert (first.status_code, second.status_code) == (200, 400)


@pytest.mark.parametrize("header", [{"kid": None}, {"typ": "at+jwt"}])
def test_an_assertion_without_a_kid_or_of_another_typ_is_refused(
    server: str, client_key: Any, header: dict[str, Any]
) -> None:
    form = token_form(assertion(server, "test-admin", client_key, header=header))
    answer = requests.post(f"{server}/token", data=form, timeout=30)
    assert (answer.status_code, answer.json()["error"]) == (400, "invalid_client")


def test_an_unknown_client_is_told_as_a_wrong_signature_is(server: str, client_key: Any) -> None:
    """Otherwise anyone could learn which client ids are registered."""
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    unknown = request_token(server, "no-such-client", client_key).json()
    forged = request_token(server, "test-admin", other).json()
    assert unknown == forged


def test_a_token_parameter_given_twice_is_an_invalid_request(server: str, client_key: Any) -> None:
    form = list(token_form(assertion(server, "test-admin", client_key)).items()) + [("grant_type", "password")]
    answer = requests.post(f"{server}/token", data=form, timeout=30)
    assert (answer.status_code, answer.json()["error"]) == (400, "invalid_request")


def test_a_token_request_larger_than_any_assertion_is_refused_unread(server: str, client_key: Any) -> None:
    """Anyone may ask for a token: an assertion padded to megabytes was decoded, parsed and
    hashed before its signature failed (a 40 MB one held a worker 14 s), so the body is
    capped far below the FHIR body limit."""
    padded = assertion(server, "test-admin", client_key, padding="x" * 100_000)
    answer = requests.post(f"{server}/token", data=token_form(padded), timeout=60)
    assert (answer.status_code, answer.json().get("error")) == (413, "invalid_request")


def test_a_token_request_with_bytes_that_are_no_utf8_is_refused_in_oauth_json(server: str) -> None:
    """OAuth clients read an ``error``, not an OperationOutcome: the refusal of a form byte
    that is no UTF-8, made before any route runs, answered the token request as FHIR."""
    answer = requests.post(
        f"{server}/token",
        data=b"grant_type=client_credentials&scope=system/%FF",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        timeout=30,
    )
    assert (answer.status_code, answer.json().get("error")) == (400, "invalid_request")


@pytest.mark.parametrize("method", ["GET", "PUT"])
def test_the_token_endpoint_answers_other_methods_in_oauth_json(server: str, method: str) -> None:
    answer = requests.request(method, f"{server}/token", timeout=30)
    assert (answer.status_code, answer.json()["error"], answer.headers["Allow"]) == (405, "invalid_request", "POST")


def test_an_hs256_assertion_is_refused(server: str) -> None:
    answer = request_token(server, "test-admin", "a-shared-secret-is-no-key-even-when-it-is-long", algorithm="HS256")
    assert (answer.status_code, answer.json()["error"]) == (400, "invalid_client")


def test_a_refused_assertion_is_a_400_without_a_challenge(server: str) -> None:
    """RFC 6749 §5.2: 401 and its challenge are for a client that used the Authorization
    header; an assertion is no HTTP authentication scheme, least of all Bearer."""
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    answer = request_token(server, "test-admin", other)
    assert (answer.status_code, answer.json()["error"], answer.headers.get("WWW-Authenticate")) == (
        400,
        "invalid_client",
        None,
    )


@pytest.mark.parametrize("authorization", ["Basic !!!", f"Basic {base64.b64encode(b'nobody:wrong').decode()}"])
def test_a_failed_basic_authentication_is_challenged_with_basic(server: str, authorization: str) -> None:
    """RFC 6749 §5.2: the 401 names the scheme the client tried, malformed or wrong."""
    form = {"grant_type": "client_credentials", "scope": ALL_SCOPES}
    answer = requests.post(f"{server}/token", data=form, headers={"Authorization": authorization}, timeout=30)
    assert (answer.status_code, answer.json()["error"], answer.headers["WWW-Authenticate"]) == (
        401,
        "invalid_client",
        'Basic realm="yiyang"',
    )


def test_a_client_id_naming_another_client_than_the_assertion_is_refused(server: str, client_key: Any) -> None:
    """RFC 7521 §4.2: a client_id beside the assertion must name the client it authenticates."""
    same, other = (
        requests.post(
            f"{server}/token",
            data={**token_form(assertion(server, "test-admin", client_key)), "client_id": named},
            headers=ENGLISH,
            timeout=30,
        )
        for named in ("test-admin", "someone-else")
    )
    assert (same.status_code, other.status_code, other.json()["error"]) == (200, 400, "invalid_client")
    assert "someone-else" in other.json()["error_description"]


@pytest.mark.parametrize("name", ["jku", "x5u", "x5c", "jwk"])
def test_an_assertion_naming_a_key_elsewhere_is_refused(server: str, client_key: Any, name: str) -> None:
    """Keys are the registered JWKS; an assertion pointing elsewhere (even at the registered
    key itself) is refused rather than the pointer ignored."""
    pointers = {
        "jku": "https://keys.example.org/jwks.json",
        "x5u": "https://keys.example.org/cert.pem",
        "x5c": ["MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA"],
        "jwk": jwks_of(client_key)["keys"][0],
    }
    signed = assertion(server, "test-admin", client_key, header={name: pointers[name]})
    answer = requests.post(f"{server}/token", data=token_form(signed), timeout=30)
    assert (answer.status_code, answer.json()["error"]) == (400, "invalid_client")
    assert name in answer.json()["error_description"]


def test_an_es384_assertion_is_accepted(served: Served) -> None:
    key = ec.generate_private_key(ec.SECP384R1())
    add_client(served.database_url, "ec-client", key=key, scope="system/Patient.rs")
    assert request_token(served.base, "ec-client", key, "system/Patient.rs", algorithm="ES384").status_code == 200


def test_another_grant_type_is_unsupported(server: str) -> None:
    answer = requests.post(f"{server}/token", data={"grant_type": "password"}, timeout=30)
    assert (answer.status_code, answer.json()["error"]) == (400, "unsupported_grant_type")


def test_client_secret_basic_is_refused_unless_enabled(served: Served, tmp_path: Path) -> None:
    add_client(served.database_url, "secret-client", secret="s" * 32)
    form = {"grant_type": "client_credentials", "scope": ALL_SCOPES}
    answer = requests.post(f"{served.base}/token", data=form, auth=("secret-client", "s" * 32), timeout=30)
    assert (answer.status_code, answer.json()["error"]) == (401, "invalid_client")


# -- scopes and revocation -------------------------------------------------------------------
def test_a_token_without_the_scope_is_403_naming_it(served: Served, client_key: Any) -> None:
    add_client(served.database_url, "reader", key=client_key, scope="system/Patient.rs")
    headers = {**bearer(request_token(served.base, "reader", client_key, "system/Patient.rs")), **FHIR_JSON}
    searched = requests.get(f"{served.base}/Patient", headers=headers, timeout=30)
    created = requests.post(f"{served.base}/Patient", json=PATIENT, headers=headers, timeout=30)
    assert (searched.status_code, created.status_code, message_id(created)) == (200, 403, "http.forbidden-scope")
    assert "system/Patient.c" in created.json()["issue"][0]["details"]["text"]


def test_an_unknown_type_is_a_404_whatever_the_scopes(served: Served, client_key: Any) -> None:
    """A reader's token on /fhir/Foo was refused 403 for lacking system/Foo.s, a scope no client can hold."""
    add_client(served.database_url, "typo-reader", key=client_key, scope="system/Patient.rs")
    headers = {**bearer(request_token(served.base, "typo-reader", client_key, "system/Patient.rs")), **FHIR_JSON}
    answer = requests.get(f"{served.base}/Foo", headers=headers, timeout=30)
    assert (answer.status_code, message_id(answer)) == (404, "http.unknown-type")


def test_a_client_that_may_only_update_may_not_patch(served: Served, client_key: Any) -> None:
    """A patch of an empty list would answer with the whole stored record."""
    add_client(served.database_url, "updater", key=client_key, scope="system/Patient.u")
    headers = {**bearer(request_token(served.base, "updater", client_key, "system/Patient.u"))}
    headers["Content-Type"] = "application/json-patch+json"
    patched = requests.patch(f"{served.base}/Patient/anyone", data="[]", headers=headers, timeout=30)
    assert (patched.status_code, message_id(patched)) == (403, "http.forbidden-scope")


def test_a_missing_scope_is_challenged_as_insufficient_scope(served: Served, client_key: Any) -> None:
    """RFC 6750 §3.1: the 403 names the scope in the bearer challenge too."""
    add_client(served.database_url, "challenged-reader", key=client_key, scope="system/Patient.rs")
    headers = {**bearer(request_token(served.base, "challenged-reader", client_key, "system/Patient.rs")), **FHIR_JSON}
    created = requests.post(f"{served.base}/Patient", json=PATIENT, headers=headers, timeout=30)
    assert (created.status_code, created.headers["WWW-Authenticate"]) == (
        403,
        'Bearer realm="yiyang", error="insufficient_scope", scope="system/Patient.c"',
    )


@pytest.mark.parametrize(("client_id", "named"), [("quoting-searcher", "Obs%22erv"), ("breaking-searcher", "Obs%0AX")])
def test_a_scope_made_of_what_the_request_named_stays_out_of_the_challenge(
    served: Served, client_key: Any, client_id: str, named: str
) -> None:
    """A quote or a line break in a _has type would break the header (a line break made it a 500)."""
    add_client(served.database_url, client_id, key=client_key, scope="system/Patient.rs")
    headers = bearer(request_token(served.base, client_id, client_key, "system/Patient.rs"))
    answer = requests.get(f"{served.base}/Patient?_has:{named}:subject:code=1", headers=headers, timeout=30)
    assert (answer.status_code, answer.headers["WWW-Authenticate"]) == (
        403,
        'Bearer realm="yiyang", error="insufficient_scope"',
    )


def test_a_transaction_entry_without_the_scope_refuses_the_transaction(served: Served, client_key: Any) -> None:
    add_client(served.database_url, "patient-writer", key=client_key, scope="system/Patient.cruds")
    headers = {**bearer(request_token(served.base, "patient-writer", client_key, "system/Patient.cruds")), **FHIR_JSON}
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [{"request": {"method": "DELETE", "url": "Observation/x"}}],
    }
    answer = requests.post(served.base, json=bundle, headers=headers, timeout=30)
    assert (answer.status_code, message_id(answer)) == (403, "http.forbidden-scope")


def test_an_export_type_filter_needs_the_scope_of_the_types_it_searches(served: Served, client_key: Any) -> None:
    """A ``_typeFilter`` is a search: ``Patient?_has:Observation:…`` tells which residents have
    a reading of that code, which a search would need ``system/Observation.s`` to ask."""
    add_client(served.database_url, "patient-exporter", key=client_key, scope="system/Patient.rs")
    headers = {**bearer(request_token(served.base, "patient-exporter", client_key, "system/Patient.rs"))}
    query = {"_type": "Patient", "_typeFilter": "Patient?_has:Observation:subject:code=8480-6"}
    answer = requests.get(
        f"{served.base}/Patient/$export", params=query, headers={**headers, "Prefer": "respond-async"}, timeout=30
    )
    assert (answer.status_code, answer.headers.get("WWW-Authenticate", "")) == (
        403,
        'Bearer realm="yiyang", error="insufficient_scope", scope="system/Observation.s"',
    )


def test_an_export_type_list_spaced_after_its_commas_needs_the_listed_types_alone(
    served: Served, client_key: Any
) -> None:
    """The job trims each type of ``_type``; the scopes hook did not, and refused
    ``_type=Observation, Patient`` to a client holding both scopes (``system/ Patient.rs``)."""
    scope = "system/Patient.rs system/Observation.rs"
    add_client(served.database_url, "spaced-exporter", key=client_key, scope=scope)
    headers = {**bearer(request_token(served.base, "spaced-exporter", client_key, scope)), "Prefer": "respond-async"}
    answer = requests.get(
        f"{served.base}/Patient/$export", params={"_type": "Observation, Patient"}, headers=headers, timeout=30
    )
    assert answer.status_code == 202, answer.text
    requests.delete(answer.headers["Content-Location"], headers=headers, timeout=30)


#: a ``_has`` whose type holds a byte that is no UTF-8: the scopes hook read it as
#: ``Observation\ufffd`` and refused a scope no one holds, where the search itself is a 400
NOT_UTF8_HAS = "_has:Observation%FF:subject:code=8480-6"


def patient_client(served: Served, client_key: Any, client_id: str, scope: str) -> dict[str, str]:
    add_client(served.database_url, client_id, key=client_key, scope=scope)
    return {**bearer(request_token(served.base, client_id, client_key, scope)), **FHIR_JSON}


def test_a_type_filter_holding_no_utf8_is_refused_as_the_job_reads_it(served: Served, client_key: Any) -> None:
    headers = patient_client(served, client_key, "undecodable-exporter", "system/Patient.rs")
    query = {"_type": "Patient", "_typeFilter": f"Patient?{NOT_UTF8_HAS}"}
    answer = requests.get(
        f"{served.base}/Patient/$export", params=query, headers={**headers, "Prefer": "respond-async"}, timeout=30
    )
    assert (answer.status_code, message_id(answer)) == (400, "http.not-utf8")


def test_a_condition_holding_no_utf8_is_refused_as_its_search_reads_it(served: Served, client_key: Any) -> None:
    headers = patient_client(served, client_key, "undecodable-creator", "system/Patient.cs")
    answer = requests.post(
        f"{served.base}/Patient", json=PATIENT, headers={**headers, "If-None-Exist": NOT_UTF8_HAS}, timeout=30
    )
    assert (answer.status_code, message_id(answer)) == (400, "http.not-utf8")


def test_a_batch_search_holding_no_utf8_is_refused_as_its_search_reads_it(served: Served, client_key: Any) -> None:
    headers = patient_client(served, client_key, "undecodable-batcher", "system/Patient.rs")
    entry = {"request": {"method": "GET", "url": f"Patient?{NOT_UTF8_HAS}"}}
    bundle = {"resourceType": "Bundle", "type": "batch", "entry": [entry]}
    answer = requests.post(served.base, json=bundle, headers=headers, timeout=30)
    assert answer.json()["entry"][0]["response"]["status"] == "400"


def posted_export(
    served: Served, client_key: Any, client_id: str, scope: str, *parts: dict[str, str]
) -> requests.Response:
    """A system export kicked off by POST, its parameters in a Parameters body, by a client
    holding ``scope`` alone."""
    add_client(served.database_url, client_id, key=client_key, scope=scope)
    headers = {**bearer(request_token(served.base, client_id, client_key, scope)), **FHIR_JSON}
    body = {"resourceType": "Parameters", "parameter": list(parts)}
    return requests.post(
        f"{served.base}/$export", json=body, headers={**headers, "Prefer": "respond-async"}, timeout=30
    )


def test_an_export_posted_with_a_type_needs_that_types_scope_alone(served: Served, client_key: Any) -> None:
    """By POST ``_type`` sits in the body: read from the query string alone, the kick-off
    needed ``system/*.rs`` of a client holding ``system/Observation.rs`` (by GET it did not)."""
    part = {"name": "_type", "valueString": "Observation"}
    answer = posted_export(served, client_key, "observation-exporter", "system/Observation.rs", part)
    assert answer.status_code == 202, answer.text
    requests.delete(answer.headers["Content-Location"], headers=answer.request.headers, timeout=30)


def test_an_export_posted_with_a_type_filter_needs_the_scope_of_the_types_it_searches(
    served: Served, client_key: Any
) -> None:
    parts = [
        {"name": "_type", "valueString": "Patient"},
        {"name": "_typeFilter", "valueString": "Patient?_has:Observation:subject:code=8480-6"},
    ]
    answer = posted_export(served, client_key, "patient-poster", "system/Patient.rs", *parts)
    assert (answer.status_code, answer.headers.get("WWW-Authenticate", "")) == (
        403,
        'Bearer realm="yiyang", error="insufficient_scope", scope="system/Observation.s"',
    )


def test_the_head_of_a_patient_export_naming_a_patient_is_refused_as_any_head(api: Api) -> None:
    """HEAD starts no export (405, as without ``patient``): the scopes hook read the kick-off's
    parameters first, and refused its ``patient`` as a GET's with a 400 the client cannot read."""
    answer = api.head(f"{api.base}/Patient/$export?patient=Patient/x", headers={"Prefer": "respond-async"}, timeout=30)
    assert (answer.status_code, answer.headers.get("Allow")) == (405, "GET, POST")


def test_a_revoked_clients_token_stops_working_within_a_second(served: Served, client_key: Any) -> None:
    add_client(served.database_url, "to-revoke", key=client_key)
    headers = bearer(request_token(served.base, "to-revoke", client_key))
    before = requests.get(f"{served.base}/Patient?_summary=count", headers=headers, timeout=30).status_code
    assert main(["client", "revoke", "--id", "to-revoke", "--database", served.database_url]) == 0
    time.sleep(1.0)  # client_status_ms: how long a worker trusts an active status
    after = requests.get(f"{served.base}/Patient?_summary=count", headers=headers, timeout=30)
    assert (before, after.status_code, message_id(after)) == (200, 401, "http.client-revoked")


def test_a_rotated_client_authenticates_with_its_new_key_only(served: Served, client_key: Any, tmp_path: Path) -> None:
    add_client(served.database_url, "to-rotate", key=client_key, scope="system/Patient.rs")
    new_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwks = tmp_path / "new-key.jwks.json"
    jwks.write_text(json.dumps(jwks_of(new_key)), encoding="utf-8")
    assert main(["client", "rotate", "--id", "to-rotate", "--jwks", str(jwks), "--database", served.database_url]) == 0
    time.sleep(1.0)  # client_status_ms: how long a worker trusts what it read of a client
    old = request_token(served.base, "to-rotate", client_key, "system/Patient.rs").status_code
    new = request_token(served.base, "to-rotate", new_key, "system/Patient.rs").status_code
    assert (old, new) == (400, 200)


def register_jwks(database_url: str, client_id: str, document: dict[str, Any], folder: Path) -> int:
    """The exit code of `yiyang client add` registering the JWKS ``document``."""
    jwks = folder / f"{client_id}.jwks.json"
    jwks.write_text(json.dumps(document), encoding="utf-8")
    command = ["client", "add", "--id", client_id, "--org", "o", "--role", "hospital", "--jwks", str(jwks)]
    command += ["--scope", "system/Patient.rs"]
    return main([*command, "--database", database_url])


def test_a_key_without_a_kid_cannot_be_registered(served: Served, tmp_path: Path) -> None:
    """An assertion names the key it is signed with; a key no kid names would never match."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    document = jwks_of(key)
    del document["keys"][0]["kid"]
    assert register_jwks(served.database_url, "no-kid", document, tmp_path) == 2


def unfit_key_answers(
    served: Served, client_id: str, key: Any, members: dict[str, Any], folder: Path
) -> tuple[int, int]:
    """(exit code of registering ``key`` with ``members`` added to its JWK, status of a token
    request signed with it once that JWK is in the store all the same, as a store written
    before the registration checked it would hold it)."""
    document = jwks_of(key)
    document["keys"][0].update(members)
    registered = register_jwks(served.database_url, client_id, document, folder)
    store = open_store(served.database_url)
    try:
        with store.transaction() as tx:
            tx.security.put_client(client_id, TEST_ORGANIZATION, "hospital", "system/Patient.rs", document, None)
    finally:
        store.close()
    algorithm = "RS384" if isinstance(key, rsa.RSAPrivateKey) else "ES384"
    return registered, request_token(served.base, client_id, key, "system/Patient.rs", algorithm=algorithm).status_code


@pytest.mark.filterwarnings("ignore:The RSA key is 1024 bits")  # pyjwt's, when the test signs with it
def test_an_rsa_key_under_2048_bits_is_refused_at_registration_and_verification(served: Served, tmp_path: Path) -> None:
    """RFC 7518 §3.3: a key of 2048 bits or larger MUST be used with RS384."""
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    assert unfit_key_answers(served, "weak-rsa", weak, {}, tmp_path) == (2, 400)


@pytest.mark.parametrize("members", [{"use": "enc"}, {"alg": "ES384"}], ids=["use-enc", "rsa-alg-es384"])
def test_a_key_signs_only_as_its_use_and_alg_allow(
    served: Served, client_key: Any, tmp_path: Path, members: dict[str, Any]
) -> None:
    """RFC 7517 §4.2/§4.4: an encryption key, or an RSA key declaring ES384, verifies no RS384
    assertion; registration refuses either."""
    client_id = "unfit-" + "-".join(f"{k}-{v}" for k, v in members.items()).lower()
    assert unfit_key_answers(served, client_id, client_key, members, tmp_path) == (2, 400)


def test_a_refused_key_is_worded_in_either_language(client_key: Any) -> None:
    """Why a key verifies nothing is worded in the operator's language, inside the registration's
    own message (``str()`` stays the English, for logs)."""
    document = jwks_of(client_key)
    document["keys"][0]["use"] = "enc"
    with pytest.raises(RegistrationError) as refused:
        check_jwks(document)
    assert (refused.value.message_id, str(refused.value), refused.value.text("zh-CN")) == (
        "registration.key-refused",
        "key 0 has use 'enc': only a signing key (use sig) verifies assertions",
        "密钥 0 不可用：其用途（use）为“enc”，只有签名密钥（use sig）才能验证断言",
    )


def test_client_list_shows_each_client_with_its_role_and_status(
    served: Served, client_key: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    add_client(served.database_url, "listed-platform", key=client_key, role="elderly-care", organization="home-a")
    capsys.readouterr()
    assert main(["client", "list", "--database", served.database_url]) == 0
    rows = [line.split("\t") for line in capsys.readouterr().out.splitlines()]
    listed = next(row for row in rows if row[0] == "listed-platform")
    assert listed[1:5] == ["home-a", "elderly-care", "active", "private_key_jwt"]


def test_every_answer_carries_the_security_headers(api: Api) -> None:
    headers = api.get(f"{api.base}/Patient?_summary=count", timeout=30).headers
    assert (
        headers["X-Content-Type-Options"],
        headers["Cache-Control"],
        headers["Content-Security-Policy"].split(";")[0],
        headers["Referrer-Policy"],
    ) == ("nosniff", "no-store", "default-src 'none'", "no-referrer")


# -- a server with a low rate limit and the development secret flow ----------------------------
@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory, client_key: Any) -> Iterator[str]:
    url = f"sqlite:///{tmp_path_factory.mktemp('limited') / 'archive.sqlite'}"
    add_client(url, "test-admin", key=client_key)
    add_client(url, "secret-client", secret="s" * 32)
    env = {
        "YIYANG_RATE_LIMIT_PER_SECOND": "5",
        "YIYANG_TOKEN_RATE_LIMIT_PER_SECOND": "4",
        "YIYANG_ALLOW_CLIENT_SECRET": "true",
    }
    with running_server(url, workers=1, env=env) as base:
        yield base


def test_too_many_requests_are_429_with_retry_after(limited: str, client_key: Any) -> None:
    headers = bearer(request_token(limited, "test-admin", client_key))
    answers = [requests.get(f"{limited}/Patient?_summary=count", headers=headers, timeout=30) for _ in range(30)]
    refused = [a for a in answers if a.status_code == 429]
    assert refused and message_id(refused[0]) == "http.rate-limited" and int(refused[0].headers["Retry-After"]) >= 1


def test_client_secret_basic_works_when_enabled(limited: str) -> None:
    form = {"grant_type": "client_credentials", "scope": "system/Patient.rs"}
    answer = requests.post(f"{limited}/token", data=form, auth=("secret-client", "s" * 32), timeout=30)
    wrong = requests.post(f"{limited}/token", data=form, auth=("secret-client", "t" * 32), timeout=30)
    assert (answer.status_code, wrong.status_code) == (200, 401)
    assert "client_secret_basic" in requests.get(f"{limited}/.well-known/smart-configuration", timeout=30).text


def test_the_capabilities_say_v1_scopes_and_the_secret_flow_when_it_is_on(server: str, limited: str) -> None:
    """v1 scopes are accepted (translated), and a secret authenticates where the flow is on."""

    def capabilities(base: str) -> list[str]:
        return requests.get(f"{base}/.well-known/smart-configuration", timeout=30).json()["capabilities"]

    assert (sorted(capabilities(server)), sorted(set(capabilities(limited)) - set(capabilities(server)))) == (
        ["client-confidential-asymmetric", "permission-v1", "permission-v2"],
        ["client-confidential-symmetric"],
    )


def test_too_many_token_requests_from_one_address_are_429_with_retry_after(limited: str) -> None:
    """The token endpoint is open to anyone, and each request could cost a credential's check:
    the asking address spends its bucket before anything is read.  Sent as JSON, not a form,
    the requests are refused at once after the bucket (a form's secret is an scrypt check,
    ~50 ms, slow enough under load for the bucket to refill between them)."""
    form = {"grant_type": "client_credentials", "scope": "system/Patient.rs"}
    answers = [requests.post(f"{limited}/token", json=form, auth=("nobody", "x" * 32), timeout=30) for _ in range(12)]
    refused = [a for a in answers if a.status_code == 429]
    time.sleep(1.0)  # the bucket refills before anything else asks this server for a token
    first = refused[0] if refused else None
    assert first is not None and (first.json()["error"], int(first.headers["Retry-After"]) >= 1) == (
        "temporarily_unavailable",
        True,
    )


def test_a_client_id_naming_another_client_than_the_basic_credentials_is_refused(limited: str) -> None:
    form = {"grant_type": "client_credentials", "scope": "system/Patient.rs", "client_id": "test-admin"}
    answer = requests.post(f"{limited}/token", data=form, auth=("secret-client", "s" * 32), timeout=30)
    assert (answer.status_code, answer.json()["error"]) == (401, "invalid_client")


def test_an_assertion_lacking_a_claim_is_refused_in_the_readers_language(store: Store, client_key: Any) -> None:
    """PyJWT's English ('Token is missing the "jti" claim') went whole into the Chinese text."""
    from gateway.security import clients

    config = Config()
    clients.register(store, "claimless", "org", "operator", "system/*.rs", jwks_of(client_key), None)
    signed = assertion(config.base_url, "claimless", client_key, jti=None)
    form = {"grant_type": "client_credentials", "scope": "system/*.rs", "client_assertion_type": ASSERTION_TYPE}
    with pytest.raises(OAuthError) as refused:
        Authority(store, config).token({**form, "client_assertion": signed}, None)
    assert text(refused.value.message_id, "zh-CN", refused.value.params) == "客户端断言（JWT）无效：缺少声明 jti"


# -- the verified-token memory of a worker -----------------------------------------------------
def remembered(store: Store) -> tuple[Authority, str]:
    """An authority that has verified one token of an active client (so it remembers it)."""
    from gateway.security import clients

    config = Config()
    clients.register(store, "remembered", "org", "operator", "system/*.rs", None, "a-secret-long-enough")
    authority = Authority(store, config)
    claims = {"sub": "remembered", "org": "org", "role": "operator", "scope": "system/*.rs"}
    claims |= {"aud": config.base_url, "iss": config.token_url, "exp": int(time.time()) + 60}
    token = jwt.encode(claims, authority.key(), algorithm=ACCESS_ALGORITHM)
    authority.principal(token)
    return authority, token


def test_a_remembered_token_still_expires_on_time(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    authority, token = remembered(store)
    later = time.time() + 61
    monkeypatch.setattr(tokens.time, "time", lambda: later)
    with pytest.raises(Unauthenticated, match="http.token-expired"):
        authority.principal(token)


def test_a_revoked_client_is_refused_once_its_status_is_due_again(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    authority, token = remembered(store)
    with store.transaction() as tx:
        tx.security.revoke("remembered")
    due = time.monotonic() + Config().client_status_ms / 1000
    monkeypatch.setattr(tokens.time, "monotonic", lambda: due)
    with pytest.raises(Unauthenticated, match="http.client-revoked"):
        authority.principal(token)


def test_a_store_failure_at_the_token_endpoint_is_an_oauth_error(tmp_path: Path, client_key: Any) -> None:
    """A failure while the client was looked up was answered with an OperationOutcome, which
    an OAuth client does not read."""
    import sqlite3

    from gateway import create_app

    database = tmp_path / "archive.sqlite"
    app = create_app(Config(database_url=f"sqlite:///{database}"))
    assert app.config["SERVICES"].store.schema_version() > 0  # made
    with sqlite3.connect(database) as connection:  # the store can no longer answer who the client is
        connection.execute("DROP TABLE client")
    form = {
        "grant_type": "client_credentials",
        "scope": ALL_SCOPES,
        "client_assertion_type": tokens.ASSERTION_TYPE,
        "client_assertion": assertion("http://localhost/fhir", "ec1", client_key),
    }
    answer = app.test_client().post("/fhir/token", data=form)
    assert (answer.status_code, answer.get_json()["error"]) == (503, "temporarily_unavailable")


@pytest.mark.parametrize("credentials", [b"\xff\xfe:secret", b"%FF:secret", b"his:%ff"])
def test_basic_credentials_that_are_no_utf8_are_refused_saying_so(tmp_path: Path, credentials: bytes) -> None:
    """They were refused as if no client authentication had been sent ("send a client_assertion")."""
    from gateway import create_app

    app = create_app(Config(database_url=f"sqlite:///{tmp_path / 'archive.sqlite'}"))
    headers = {"Authorization": f"Basic {base64.b64encode(credentials).decode()}", "Accept-Language": "en"}
    answer = app.test_client().post("/fhir/token", data={"grant_type": "client_credentials"}, headers=headers)
    assert (answer.status_code, answer.get_json()) == (
        401,
        {"error": "invalid_client", "error_description": text("auth.basic-not-utf8", "en")},
    )


def test_basic_credentials_without_a_colon_are_refused_as_malformed(tmp_path: Path) -> None:
    """RFC 7617: base64 of ``id:secret``; without the colon there is no secret to check."""
    from gateway import create_app

    app = create_app(Config(database_url=f"sqlite:///{tmp_path / 'archive.sqlite'}"))
    headers = {"Authorization": f"Basic {base64.b64encode(b'his').decode()}", "Accept-Language": "en"}
    answer = app.test_client().post("/fhir/token", data={"grant_type": "client_credentials"}, headers=headers)
    assert answer.get_json()["error_description"] == text("auth.basic-malformed", "en")

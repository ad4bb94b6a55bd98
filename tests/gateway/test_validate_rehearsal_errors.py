"""``$validate`` in create mode rehearses the write whenever that write would get past
validation: under ``YIYANG_VALIDATION=warn`` (which stores a resource with errors), and when
the only errors come from a requested ``profile`` (which the write does not apply).  Either
way the write could still be refused (409 for a copy of a person), and ``$validate`` says so."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from flask.testing import FlaskClient

from tests.conftest import MakeServices, load_example
from tests.gateway.conftest import open_client

FHIR_JSON = {"Content-Type": "application/fhir+json"}
PRACTITIONER = "http://fhir.yiyang.cn/StructureDefinition/yy-practitioner"


@pytest.fixture
def client(make_services: MakeServices) -> Iterator[FlaskClient]:
    """A gateway holding 张秀英."""
    yield from open_client(make_services, "reject", load_example("yy-patient/valid-zhang-xiuying.json"))


@pytest.fixture
def lenient_client(make_services: MakeServices) -> Iterator[FlaskClient]:
    """A gateway that stores what it warns of, holding 张秀英."""
    yield from open_client(make_services, "warn", load_example("yy-patient/valid-zhang-xiuying.json"))


def copy_of_zhang() -> dict[str, Any]:
    person = load_example("yy-patient/valid-zhang-xiuying.json")
    del person["id"]
    return person


def told(client: FlaskClient, path: str, resource: dict[str, Any]) -> list[str]:
    """The message ids of the errors ``$validate`` answers."""
    issues = client.post(path, json=resource, headers=FHIR_JSON).get_json()["issue"]
    return [i["details"]["coding"][0]["code"] for i in issues if i["severity"] in ("error", "fatal")]


def test_under_warn_an_invalid_copy_of_a_person_is_told_the_writes_refusal(lenient_client: FlaskClient) -> None:
    invalid = {**copy_of_zhang(), "gender": "neither"}
    assert "http.duplicate-person" in told(lenient_client, "/fhir/Patient/$validate?mode=create", invalid)


def test_errors_of_a_requested_profile_alone_do_not_skip_the_rehearsal(client: FlaskClient) -> None:
    path = f"/fhir/Patient/$validate?mode=create&profile={PRACTITIONER}"
    assert "http.duplicate-person" in told(client, path, copy_of_zhang())


def test_errors_the_write_refuses_still_skip_the_rehearsal(client: FlaskClient) -> None:
    invalid = {**copy_of_zhang(), "gender": "neither"}
    assert "http.duplicate-person" not in told(client, "/fhir/Patient/$validate?mode=create", invalid)

"""Helpers the gateway's test modules share (the fixtures of every layer are in tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from flask.testing import FlaskClient

from gateway.api import build_app
from tests.conftest import MakeServices


def open_client(make_services: MakeServices, validation: str, person: dict[str, Any]) -> Iterator[FlaskClient]:
    """A test client of the gateway without authentication, under ``validation`` ("reject" or
    "warn"), on a fresh store holding ``person`` (a Patient, at its id); its exchange records
    written when the test ends, while its store is there to take them."""
    app = build_app(make_services(validation), secure=False)
    client = app.test_client()
    answer = client.put(f"/fhir/Patient/{person['id']}", json=person, headers={"Content-Type": "application/fhir+json"})
    assert answer.status_code == 201, answer.get_data(as_text=True)
    yield client
    app.extensions["yiyang.exchanges"].flush()

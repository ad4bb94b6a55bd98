"""Requests racing each other on a real server with two workers, on both databases: what one
client would get alone, each gets together (no duplicate person, no spurious 412 or 503).

On PostgreSQL the workers write side by side; on SQLite they take turns on the write lock."""

from __future__ import annotations

import itertools
import random
import threading
from collections.abc import Callable
from typing import Any

import requests

from bench.synthetic import patient as synthetic_patient
from tests.conftest import TEST_CLIENT, Api, Served

ID_CARD = "urn:oid:2.16.156.10011.1.3"
RACERS = 8
_people = itertools.count(5000)


def person() -> dict[str, Any]:
    number = next(_people)
    resource = synthetic_patient(random.Random(number * 104729), number)
    del resource["id"]
    return resource


def id_card(resource: dict[str, Any]) -> str:
    return next(i["value"] for i in resource["identifier"] if i["system"] == ID_CARD)


def race(served: Served, client_key: Any, request: Callable[[Api, int], requests.Response]) -> list[int]:
    """``request`` sent by RACERS sessions at once; their statuses, sorted."""
    sessions = [Api(served.base, TEST_CLIENT, client_key) for _ in range(RACERS)]
    for session in sessions:
        session.get(f"{served.base}/metadata", timeout=60)  # each fetches its token beforehand
    start, statuses = threading.Barrier(RACERS), []

    def run(session: Api, index: int) -> None:
        start.wait(30)
        statuses.append(request(session, index).status_code)

    threads = [threading.Thread(target=run, args=(session, i)) for i, session in enumerate(sessions)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    for session in sessions:
        session.close()
    assert len(statuses) == RACERS, "a racer did not finish"
    return sorted(statuses)


def holders(api: Api, resource: dict[str, Any]) -> int:
    found = api.get(f"{api.base}/Patient?identifier={ID_CARD}|{id_card(resource)}&_summary=count", timeout=60)
    return int(found.json()["total"])


def test_transactions_creating_one_person_conditionally_make_one(served: Served, api: Api, client_key: Any) -> None:
    resource = person()
    entry = {
        "resource": resource,
        "request": {"method": "POST", "url": "Patient", "ifNoneExist": f"identifier={ID_CARD}|{id_card(resource)}"},
    }
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [entry]}
    statuses = race(served, client_key, lambda session, _: session.post(served.base, json=bundle, timeout=120))
    assert (statuses, holders(api, resource)) == ([200] * RACERS, 1)


def test_conditional_creates_of_one_person_spelt_differently_make_one(
    served: Served, api: Api, client_key: Any
) -> None:
    """The lock was the criteria's text: two spellings each found nothing and each created."""
    resource = person()
    number = id_card(resource)
    spellings = [
        f"identifier={ID_CARD}|{number}",
        f"identifier={ID_CARD}%7C{number}",
        f"identifier={number}",
        f"identifier={ID_CARD}|{number}&gender={resource['gender']}",
        f"gender={resource['gender']}&identifier={ID_CARD}|{number}",
        f"identifier={ID_CARD}|{number}&birthdate={resource['birthDate']}",
        f"identifier={ID_CARD}|{number}&_id:missing=false",
        f"identifier=%75rn:oid:2.16.156.10011.1.3|{number}",
    ]

    def create(session: Api, index: int) -> requests.Response:
        headers = {"If-None-Exist": spellings[index]}
        return session.post(f"{served.base}/Patient", json=resource, headers=headers, timeout=120)

    statuses = race(served, client_key, create)
    assert (statuses, holders(api, resource)) == ([200] * (RACERS - 1) + [201], 1)


def test_puts_creating_one_new_id_each_succeed(served: Served, client_key: Any) -> None:
    resource = {**person(), "id": f"raced-{next(_people)}"}
    address = f"{served.base}/Patient/{resource['id']}"
    statuses = race(served, client_key, lambda session, _: session.put(address, json=resource, timeout=120))
    assert statuses == [200] * (RACERS - 1) + [201]


def test_patches_without_if_match_each_apply(served: Served, api: Api, client_key: Any) -> None:
    """The version read was the patch's implicit If-Match: a racing patch got a 412 it never asked for."""
    created = api.post(f"{served.base}/Patient", json=person(), timeout=60).json()
    address = f"{served.base}/Patient/{created['id']}"
    headers = {"Content-Type": "application/json-patch+json"}

    def patch(session: Api, index: int) -> requests.Response:
        operation = [{"op": "add", "path": "/telecom/-", "value": {"system": "phone", "value": f"1380000{index:04d}"}}]
        return session.patch(address, json=operation, headers=headers, timeout=120)

    statuses = race(served, client_key, patch)
    telecoms = len(api.get(address, timeout=60).json()["telecom"])
    assert (statuses, telecoms) == ([200] * RACERS, len(created["telecom"]) + RACERS)


def test_transactions_changing_two_people_in_opposite_orders_each_succeed(
    served: Served, api: Api, client_key: Any
) -> None:
    """Listed A, B and B, A, each took one row lock and waited for the other: PostgreSQL broke
    the deadlock by failing one (a 503)."""
    pair = [api.post(f"{served.base}/Patient", json=person(), timeout=60).json() for _ in range(2)]

    def update_both(session: Api, index: int) -> requests.Response:
        ordered = pair if index % 2 else pair[::-1]
        entries = [
            {"resource": {**p, "active": bool(index % 3)}, "request": {"method": "PUT", "url": f"Patient/{p['id']}"}}
            for p in ordered
        ]
        return session.post(served.base, json={"resourceType": "Bundle", "type": "transaction", "entry": entries})

    assert race(served, client_key, update_both) == [200] * RACERS


def test_rehearsals_racing_creates_of_one_person_leave_one_record(served: Served, api: Api, client_key: Any) -> None:
    """$validate?mode=create makes the create in a transaction it rolls back: beside real
    creates it takes the same locks, fails none of them and keeps no claim on the person."""
    resource = person()

    def request(session: Api, index: int) -> requests.Response:
        path = "Patient/$validate?mode=create" if index % 2 else "Patient"
        return session.post(f"{served.base}/{path}", json=resource, timeout=120)

    statuses = race(served, client_key, request)
    half = RACERS // 2
    assert (statuses, holders(api, resource)) == ([200] * half + [201] + [409] * (half - 1), 1)

"""What an elderly-care client's queries cost against the same queries of an operator.

``python -m bench.restricted [--people 5000] [--database sqlite|postgresql] [--postgres URL]``

An elderly-care platform sees only the people its organisation serves (docs/security.md): every
search, include, chain and ``$everything`` it sends is narrowed to them in SQL
(``gateway/storage/access_sql.py``).  This loads ``--people`` people (a Patient, an Encounter, a
Coverage and a 签约 CarePlan each; every fifth one with an open stay at the home), then sends the
queries such a platform sends through the secured app, in process (Flask's test client: no HTTP,
no gunicorn), as the home's client and as an operator, the two taking turns person by person.
It prints the median per query and the ratio restricted / operator: what being narrowed costs.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import io
import os
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

from bench import server_data
from profiles.canonical import DEFAULT_BASE, ID_CARD_SYSTEM

HOME = "jinshui-yiyang-center"
SECRET = "bench-restricted-secret-0123456789"
#: every n-th person has an open stay at the home (is served by it)
SERVED_EVERY = 5
CATEGORY = f"{DEFAULT_BASE}/CodeSystem/careplan-category|family-doctor-package"
QUERIES: dict[str, Callable[[dict[str, Any], dict[str, Any]], str]] = {
    "Patient?identifier=…": lambda served, _: f"/fhir/Patient?identifier={_number(served)}",
    "Coverage?beneficiary=Patient/x": lambda served, _: f"/fhir/Coverage?beneficiary=Patient/{served['id']}",
    "CarePlan?subject=Patient/x&category=…": lambda served, _: (
        f"/fhir/CarePlan?subject=Patient/{served['id']}&category={quote(CATEGORY, safe='')}"
    ),
    "Patient?_id=x&_revinclude=Encounter:patient": lambda served, _: (
        f"/fhir/Patient?_id={served['id']}&_revinclude=Encounter:patient"
    ),
    "Patient/x/$everything": lambda served, _: f"/fhir/Patient/{served['id']}/$everything",
    "Encounter?patient.identifier=… (chained)": lambda served, _: (
        f"/fhir/Encounter?patient.identifier={_number(served)}"
    ),
    "the same chain to someone not served": lambda _, other: f"/fhir/Encounter?patient.identifier={_number(other)}",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--people", type=int, default=5_000)
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/test", help="admin URL")
    parser.add_argument("--rounds", type=int, default=200, help="people asked about, each by both clients")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="yiyang-restricted-") as folder:
        url = f"sqlite:///{Path(folder) / 'archive.sqlite'}" if args.database == "sqlite" else _fresh(args.postgres)
        try:
            started = time.perf_counter()
            people = _load(url, args.people)
            print(f"{args.database}: {args.people:,} people loaded in {time.perf_counter() - started:.0f} s")
            _measure(url, people, args.rounds)
        finally:
            if args.database == "postgresql":
                _drop(args.postgres)


DATABASE = "yiyang_bench_restricted"


def _fresh(admin: str) -> str:
    import psycopg

    _drop(admin)
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f"CREATE DATABASE {DATABASE}")
    return admin.rsplit("/", 1)[0] + f"/{DATABASE}"


def _drop(admin: str) -> None:
    import psycopg

    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")


def _load(url: str, count: int) -> list[dict[str, Any]]:
    """The people (their Patients), written straight into the store as ``bench.server`` loads
    its own, with a 签约 CarePlan each and an open stay at the home for every fifth."""
    from gateway.config import Config
    from gateway.services import Services

    services = Services(Config.load(database_url=url))
    patients = []
    try:
        batch: list[dict[str, Any]] = []
        for index, trio in enumerate(server_data.people(count)):
            patients.append(trio[0])
            batch += [*trio, _care_plan(trio[0]["id"], index)]
            if index % SERVED_EVERY == 0:
                batch.append(_stay(trio[0]["id"], index))
            if len(batch) >= server_data.BATCH:
                _write(services.store, batch)
                batch = []
        _write(services.store, batch)
        services.store.analyze()
    finally:
        services.close()
    return patients


def _write(store: Any, batch: list[dict[str, Any]]) -> None:
    with store.transaction() as tx:
        for resource in batch:
            tx.resources.write(resource, method="POST")


def _stay(patient_id: str, index: int) -> dict[str, Any]:
    return {
        "resourceType": "Encounter",
        "id": f"stay{index}",
        "status": "in-progress",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "HH"},
        "subject": {"reference": f"Patient/{patient_id}"},
        "period": {"start": "2026-01-05T09:00:00+08:00"},
        "serviceProvider": {"reference": f"Organization/{HOME}"},
    }


def _care_plan(patient_id: str, index: int) -> dict[str, Any]:
    system, code = CATEGORY.split("|")
    return {
        "resourceType": "CarePlan",
        "id": f"cp{index}",
        "status": "active",
        "intent": "plan",
        "category": [{"coding": [{"system": system, "code": code}]}],
        "subject": {"reference": f"Patient/{patient_id}"},
        "period": {"start": "2026-01-01"},
    }


def _number(person: dict[str, Any]) -> str:
    number = next(i["value"] for i in person["identifier"] if i.get("system") == ID_CARD_SYSTEM)
    return quote(f"{ID_CARD_SYSTEM}|{number}", safe="")


def _measure(url: str, people: list[dict[str, Any]], rounds: int) -> None:
    from gateway import create_app
    from gateway.cli import main as cli
    from gateway.config import Config

    os.environ.update(YIYANG_ALLOW_CLIENT_SECRET="true", YIYANG_RATE_LIMIT_PER_SECOND="1000000")
    with tempfile.TemporaryDirectory() as folder:
        secret = Path(folder) / "secret"
        secret.write_text(SECRET, encoding="utf-8")
        for client, organization, role in (("home", HOME, "elderly-care"), ("operator", "bench", "operator")):
            argv = ["client", "add", "--id", client, "--org", organization, "--role", role, "--scope", "system/*.rs"]
            with contextlib.redirect_stdout(io.StringIO()):  # its "registered" line
                cli([*argv, "--secret-file", str(secret), "--database", url])
    app = create_app(Config.load(database_url=url))
    test_client = app.test_client()
    headers = {name: _session(test_client, name) for name in ("home", "operator")}
    rng = random.Random(7)
    served = [p for i, p in enumerate(people) if i % SERVED_EVERY == 0]
    others = [p for i, p in enumerate(people) if i % SERVED_EVERY]
    times: dict[tuple[str, str], list[float]] = {}
    for turn in range(rounds):
        pair = rng.choice(served), rng.choice(others)
        order = ("home", "operator") if turn % 2 else ("operator", "home")
        for name, query in QUERIES.items():
            path = query(*pair)
            for client in order:
                started = time.perf_counter()
                answer = test_client.get(path, headers=headers[client])
                times.setdefault((name, client), []).append(time.perf_counter() - started)
                assert answer.status_code == 200, (path, answer.get_data(as_text=True)[:300])
    for writer in ("yiyang.exchanges", "yiyang.audit"):  # before the store's folder goes
        app.extensions[writer].flush()
    app.config["SERVICES"].close()
    print(f"  {'query':45} {'home (ms)':>10} {'operator':>10} {'ratio':>6}")
    for name in QUERIES:
        home, operator = (statistics.median(times[(name, c)]) * 1000 for c in ("home", "operator"))
        print(f"  {name:45} {home:10.2f} {operator:10.2f} {home / operator:5.1f}x")


def _session(test_client: Any, client: str) -> dict[str, str]:
    """The Authorization header of a token for ``client`` (client_secret_basic, as the
    benchmark server allows)."""
    credentials = base64.b64encode(f"{client}:{SECRET}".encode()).decode()
    answer = test_client.post(
        "/fhir/token",
        data={"grant_type": "client_credentials", "scope": "system/*.rs"},
        headers={"Authorization": f"Basic {credentials}"},
    )
    return {"Authorization": f"Bearer {answer.get_json()['access_token']}", "Accept": "application/fhir+json"}


if __name__ == "__main__":
    main()

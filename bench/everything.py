"""What paging through one long record costs against reading it once.

    python -m bench.everything [--members 5000] [--count 100] [--database sqlite|postgresql|both]

One elder with ``--members`` resources in her compartment (follow-ups, home-bed visits,
conditions; a few naming other people too, a few deleted), 200 other people, a care home
serving half of them, written through the store's own ``Resources.write`` into a fresh store.
``Patient/$everything`` is then read in process (``gateway.fhir.operations.everything``), as
the operator and as the care home (a restricted principal): the baseline is one unpaged
answer, the measured figure following every ``next`` link at ``_count=--count``.  The ratio
is paged ÷ unpaged: about 1 when a page reads its own members alone, about the number of
pages when each page reads the whole record again.
"""

from __future__ import annotations

import argparse
import os
import random
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

from gateway.config import Config
from gateway.fhir import operations
from gateway.security.principal import Principal, acting
from gateway.services import Services
from gateway.storage import sqlite_url

HOME = "care-home"
OTHERS = 200
DATABASE = "yiyang_bench_everything"


def _observation(rng: random.Random, person: str, key: str) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": f"o-{person}-{key}",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": rng.choice(["8867-4", "8480-6", "29463-7"])}]},
        "subject": {"reference": f"Patient/{person}"},
        "effectiveDateTime": f"20{rng.randrange(15, 26)}-0{rng.randrange(1, 10)}-1{rng.randrange(0, 10)}",
        "valueQuantity": {"value": rng.randrange(50, 180), "system": "http://unitsofmeasure.org", "code": "/min"},
        "note": [{"text": "随访记录 " * rng.randrange(5, 40)}],
    }


def _stay(person: str, key: str, provider: str, status: str = "finished") -> dict[str, Any]:
    return {
        "resourceType": "Encounter",
        "id": f"e-{person}-{key}",
        "status": status,
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "HH"},
        "subject": {"reference": f"Patient/{person}"},
        "serviceProvider": {"reference": f"Organization/{provider}"},
    }


def archive(members: int) -> Iterator[dict[str, Any]]:
    """The elder ``elder`` and her record, and the other people (the home serves those of an
    in-progress stay with it, the elder among them)."""
    rng = random.Random(7)
    yield from ({"resourceType": "Organization", "id": o, "name": o} for o in (HOME, "hospital"))
    for person in ("elder", *(f"other{n}" for n in range(OTHERS))):
        yield {"resourceType": "Patient", "id": person, "name": [{"family": "张", "given": ["秀英"]}]}
        served = person == "elder" or int(person.removeprefix("other")) % 2 == 0
        yield _stay(person, "home", HOME if served else "hospital", "in-progress")
    for index in range(1, members):
        if index % 10 < 6:
            yield _observation(rng, "elder", str(index))
        elif index % 10 < 9:
            yield _stay("elder", str(index), rng.choice([HOME, "hospital"]))
        else:
            yield {"resourceType": "Condition", "id": f"c-elder-{index}", "subject": {"reference": "Patient/elder"}}
    for index in range(30):  # performed by another resident: judged by content for the home
        for other in ("other0", "other1"):
            naming = _observation(rng, "elder", f"{other}-{index}")
            yield {**naming, "performer": [{"reference": f"Patient/{other}"}]}


def load(services: Services, members: int) -> None:
    batch: list[dict[str, Any]] = []
    for resource in [*archive(members), None]:
        if resource is not None:
            batch.append(resource)
        if batch and (resource is None or len(batch) == 2_000):
            with services.store.transaction() as tx:
                for pending in batch:
                    tx.resources.write(pending, method="POST")
            batch = []
    with services.store.transaction() as tx:
        for index in range(1, 60, 10):
            tx.resources.delete("Observation", f"o-elder-{index}")
    services.store.analyze()


def read_all(services: Services, count: int | None) -> tuple[float, int]:
    """Seconds to read the elder's $everything, every page of it when ``count``; the matches read."""
    compartment, offset, matched = services.registry.patient_compartment, 0, 0
    started = time.perf_counter()
    while True:
        page = operations.Page(count, offset, [("_count", str(count))]) if count else None
        bundle = operations.everything(services.repository, compartment, "elder", None, set(), "http://x/fhir", page)
        matched += sum(1 for entry in bundle.get("entry", []) if entry["search"]["mode"] == "match")
        following = [link["url"] for link in bundle.get("link", []) if link["relation"] == "next"]
        if not following:
            return time.perf_counter() - started, matched
        offset = int(parse_qs(urlparse(following[0]).query)["_offset"][0])


def measure(label: str, url: str, members: int, count: int) -> None:
    services = Services(Config.load(database_url=url))
    try:
        load(services, members)
        home = Principal("bench-home", HOME, frozenset({"system/*.rs"}), "elderly-care")
        for who, principal in (("operator", None), ("care home", home)):
            token = acting.set(principal)
            try:
                whole, matched = read_all(services, None)
                paged, matched_paged = read_all(services, count)
            finally:
                acting.reset(token)
            assert matched == matched_paged, (matched, matched_paged)
            pages = -(-matched // count)
            print(
                f"{label:<10} {who:<9} {matched:>6,} matches: unpaged {whole:6.3f} s, "
                f"{pages} pages {paged:6.3f} s = {paged / whole:5.2f}x the unpaged answer",
                flush=True,
            )
    finally:
        services.close()


@contextmanager
def database(kind: str, admin: str) -> Iterator[str]:
    """A fresh store of ``kind``, dropped afterwards."""
    if kind == "sqlite":
        with tempfile.TemporaryDirectory() as folder:
            yield sqlite_url(Path(folder) / "everything.sqlite")
        return
    import psycopg

    server = admin.rsplit("/", 1)[0]
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f"DROP DATABASE IF EXISTS {DATABASE}")
        connection.execute(f"CREATE DATABASE {DATABASE}")
    try:
        yield f"{server}/{DATABASE}"
    finally:
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--members", type=int, default=5_000)
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--database", choices=("sqlite", "postgresql", "both"), default="both")
    default_admin = os.environ.get("YIYANG_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--postgres", default=default_admin, help="admin URL")
    args = parser.parse_args()
    for kind in ("sqlite", "postgresql") if args.database == "both" else (args.database,):
        with database(kind, args.postgres) as url:
            measure(kind, url, args.members, args.count)


if __name__ == "__main__":
    main()

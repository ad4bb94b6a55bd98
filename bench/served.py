"""What an elderly-care client's visibility costs on an archive of many Consents.

``python -m bench.served [--consents 50000] [--database sqlite|postgresql] [--postgres URL]``

Every request of an elderly-care client asks which people its organisation serves (stays,
签约, family-doctor contracts, Consents permitting it and none refusing it; see
``gateway/storage/access_sql.py``).  A province holds a Consent for most of its older people,
so that question must not grow with the archive's Consents.  This loads an archive of
``--consents`` Consents of 1,000 people (a seventh of them refusals, a third with a period),
with ten people in the organisation's care, and times, in process and against a read by id on
the same store in the same run: whom the organisation serves, and one visibility check of a
Patient and of an Observation (the Observation's asks the question twice).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gateway.search.indexer import SearchIndexer
from gateway.security.access import Access, PersonalData
from gateway.security.principal import Principal
from gateway.storage import open_store, sqlite_url
from gateway.storage.store import Store
from profiles.registry import Registry

HOME = "home"
ROUNDS = 20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--consents", type=int, default=50_000)
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/test", help="admin URL")
    args = parser.parse_args()
    registry = Registry()
    indexer = SearchIndexer(registry)
    with tempfile.TemporaryDirectory(prefix="yiyang-served-") as folder:
        url = (
            sqlite_url(Path(folder) / "archive.sqlite") if args.database == "sqlite" else _fresh_database(args.postgres)
        )
        store = open_store(url, indexer.rows)
        try:
            started = time.perf_counter()
            _load(store, args.consents)
            print(f"{args.database}: {args.consents:,} Consents loaded in {time.perf_counter() - started:.0f} s")
            _measure(store, Access(Principal("bench", HOME, frozenset(), "elderly-care"), PersonalData(registry)))
        finally:
            store.close()


def _fresh_database(admin: str) -> str:
    import psycopg

    name = "yiyang_bench_served"
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f"DROP DATABASE IF EXISTS {name}")
        connection.execute(f"CREATE DATABASE {name}")
    return admin.rsplit("/", 1)[0] + f"/{name}"


def _load(store: Store, consents: int) -> None:
    with store.transaction() as tx:
        for person in range(1000):
            tx.resources.write({"resourceType": "Patient", "id": f"p{person}"})
        for person in range(10):  # the organisation's residents: an open stay each
            subject = {"reference": f"Patient/p{person}"}
            stay = {"resourceType": "Encounter", "id": f"stay{person}", "status": "in-progress"}
            stay |= {
                "class": {"code": "HH"},
                "subject": subject,
                "serviceProvider": {"reference": f"Organization/{HOME}"},
            }
            tx.resources.write(stay)
            tx.resources.write(
                {"resourceType": "Observation", "id": f"o{person}", "status": "final", "code": {}}
                | {"subject": subject}
            )
    for start in range(0, consents, 1000):
        with store.transaction() as tx:
            for number in range(start, min(start + 1000, consents)):
                tx.resources.write(_consent(number))
    store.analyze()


def _consent(number: int) -> dict[str, Any]:
    provision: dict[str, Any] = {"type": "deny" if number % 7 == 0 else "permit"}
    provision["actor"] = [{"reference": {"reference": f"Organization/org{number % 300}"}}]
    if number % 3 == 0:
        provision["period"] = {"start": "2020-01-01"}
    patient = {"reference": f"Patient/p{number % 1000}"}
    return {
        "resourceType": "Consent",
        "id": f"c{number}",
        "status": "active",
        "patient": patient,
        "provision": provision,
    }


def _measure(store: Store, rules: Access) -> None:
    with store.reading() as tx:
        patient, observation = tx.resources.read("Patient", "p1"), tx.resources.read("Observation", "o1")
        timings = {
            "read by id (baseline)": _timed(lambda: tx.resources.read("Patient", "p1")),
            "whom it serves": _timed(lambda: rules.served_people(tx)),
            "a Patient's visibility": _timed(lambda: rules.visible(tx, patient)),
            "an Observation's visibility": _timed(lambda: rules.visible(tx, observation)),
        }
        assert len(rules.served_people(tx)) == 10
    baseline = timings["read by id (baseline)"]
    for name, seconds in timings.items():
        print(f"  {name:30} {seconds * 1000:8.2f} ms  ({seconds / baseline:,.0f}x the read)")


def _timed(work: Callable[[], object]) -> float:
    work()
    started = time.perf_counter()
    for _ in range(ROUNDS):
        work()
    return (time.perf_counter() - started) / ROUNDS


if __name__ == "__main__":
    main()

"""How long evaluating every package Measure takes over a large archive.

    python -m bench.measures [--people 1000000] [--database sqlite|postgresql] [--postgres URL]

The archive is synthetic and deterministic: each person a valid Patient (born 1930–1965, in
one of bench.synthetic's counties) and, by chance, a 2026 体检 Encounter (60 %), a self-care
assessment (42 %), a TCM constitution Observation (45 %), a family-doctor contract (70 %), a
长护险 disability grade (12 %), a 长护险 Coverage (20 %), a hospice (1.5 %) or home-bed (2 %)
episode; plus 2,000 institutions and 1,000 医养签约.  It is written once through the store's own
``Resources.write`` (the same rows and index rows the server writes) and cached
(``~/.cache/yiyang-bench``; PostgreSQL database ``yiyang_measures_<people>``).

Baseline, measured in the same run: one pass fetching and parsing every resource (what any
evaluator that computed the indicators in Python would do at the least, before computing
anything).  The ratio is evaluating all measures ÷ that pass: below 1, the database's
counting beats even reading the archive into the process.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from bench.server_data import valid_patient
from bench.synthetic import COUNTIES
from gateway.storage import SQLITE_PREFIX, sqlite_path, sqlite_url
from profiles.canonical import DEFAULT_BASE

CS = f"{DEFAULT_BASE}/CodeSystem"
SD = f"{DEFAULT_BASE}/StructureDefinition"
#: bump when the generated archive changes, so no stale cache is reused
VERSION = 1
BATCH = 20_000
INSTITUTIONS, CONTRACTS = 2_000, 1_000


def _day(rng: random.Random, year: int = 2026) -> str:
    return (date(year, 1, 1) + timedelta(days=rng.randrange(0, 365))).isoformat()


def person(rng: random.Random, index: int) -> Iterator[dict[str, Any]]:
    """One person's Patient and whatever services chance gives them."""
    patient = valid_patient(rng, index)
    pid = patient["id"]
    yield patient
    subject = {"reference": f"Patient/{pid}"}
    if rng.random() < 0.60:
        day = _day(rng)
        yield {
            "resourceType": "Encounter",
            "id": f"{pid}-check",
            "status": "finished",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
            "type": [{"coding": [{"system": f"{CS}/encounter-type", "code": "health-check"}]}],
            "subject": subject,
            "period": {"start": day, "end": day},
        }
        if rng.random() < 0.70:
            yield _observation(
                f"{pid}-selfcare", subject, day, "selfcare-item", "total", {"valueInteger": rng.randrange(0, 30)}
            )
    if rng.random() < 0.45:
        yield _observation(
            f"{pid}-tcm", subject, _day(rng), "tcm-constitution", rng.choice(["pinghe", "qixu", "yangxu"])
        )
    if rng.random() < 0.70:
        start = date(2025, 1, 1) + timedelta(days=rng.randrange(0, 700))
        yield {
            "resourceType": "CarePlan",
            "id": f"{pid}-contract",
            "status": "active",
            "intent": "plan",
            "category": [{"coding": [{"system": f"{CS}/careplan-category", "code": "family-doctor-package"}]}],
            "subject": subject,
            "period": {"start": start.isoformat(), "end": (start + timedelta(days=364)).isoformat()},
        }
    if rng.random() < 0.12:
        grade = {
            "valueCodeableConcept": {
                "coding": [{"system": f"{CS}/ltc-disability-level", "code": str(rng.randrange(0, 6))}]
            }
        }
        yield _observation(f"{pid}-ltc", subject, _day(rng), "ltc-indicator", "disability-level", grade)
    if rng.random() < 0.20:
        yield {
            "resourceType": "Coverage",
            "id": f"{pid}-ltc-insurance",
            "status": "active",
            "type": {"coding": [{"system": f"{CS}/nhsa-insutype", "code": "410"}]},
            "beneficiary": subject,
            "payor": [{"reference": "Organization/nhsa"}],
        }
    for kind, share in (("hospice", 0.015), ("home-bed", 0.02)):
        if rng.random() < share:
            start = date(2026, 1, 1) + timedelta(days=rng.randrange(-30, 360))
            end = start + timedelta(days=rng.randrange(0, 90))
            yield {
                "resourceType": "EpisodeOfCare",
                "id": f"{pid}-{kind}",
                "status": "finished" if end < date(2026, 12, 31) else "active",
                "type": [{"coding": [{"system": f"{CS}/episode-type", "code": kind}]}],
                "patient": subject,
                "period": {
                    "start": start.isoformat(),
                    **({"end": end.isoformat()} if end < date(2026, 12, 31) else {}),
                },
            }


def _observation(
    oid: str, subject: dict[str, str], day: str, system: str, code: str, value: dict[str, Any] | None = None
) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": oid,
        "status": "final",
        "code": {"coding": [{"system": f"{CS}/{system}", "code": code}]},
        "subject": subject,
        "effectiveDateTime": day,
        **(value or {}),
    }


def institutions(rng: random.Random) -> Iterator[dict[str, Any]]:
    medical = ["community-health-center", "township-health-center", "village-clinic", "medical-institution"]
    for index in range(INSTITUTIONS):
        types = [rng.choice(medical)] if rng.random() < 0.7 else []
        if not types or rng.random() < 0.2:
            types.append("elderly-care-institution")
        county = rng.choice(COUNTIES)[0]
        yield {
            "resourceType": "Organization",
            "id": f"org{index}",
            "type": [{"coding": [{"system": f"{CS}/organization-type", "code": t}]} for t in types],
            "extension": [
                {
                    "url": f"{SD}/yy-ext-designation",
                    "extension": [
                        {
                            "url": "code",
                            "valueCoding": {"system": f"{CS}/organization-designation", "code": "elder-friendly"},
                        }
                    ],
                }
            ]
            if rng.random() < 0.5
            else [],
            "address": [
                {
                    "extension": [
                        {
                            "url": f"{SD}/yy-ext-admin-division",
                            "valueCoding": {"system": f"{CS}/gb-t-2260", "code": county},
                        }
                    ]
                }
            ],
        }
    for index in range(CONTRACTS):
        start = date(2024, 1, 1) + timedelta(days=rng.randrange(0, 1000))
        yield {
            "resourceType": "OrganizationAffiliation",
            "id": f"aff{index}",
            "active": True,
            "period": {"start": start.isoformat(), "end": (start + timedelta(days=730)).isoformat()},
            "organization": {"reference": f"Organization/org{rng.randrange(INSTITUTIONS)}"},
            "participatingOrganization": {"reference": f"Organization/org{rng.randrange(INSTITUTIONS)}"},
            "code": [{"coding": [{"system": f"{CS}/affiliation-role", "code": "yiyang-contract"}]}],
        }


def archive(people: int, seed: int = 20261202) -> Iterator[dict[str, Any]]:
    rng = random.Random(seed)
    yield from institutions(rng)
    for index in range(people):
        yield from person(rng, index)


def population_file(path: Path) -> Path:
    """A resident population per county, sex and band: every county ten times its archive share."""
    rows = ["区划代码,性别,年龄段,常住人口"]
    for county, *_ in COUNTIES:
        for sex in ("1", "2"):
            for band, size in (
                ("65-69", 90_000),
                ("70-74", 70_000),
                ("75-79", 50_000),
                ("80-84", 30_000),
                ("85+", 20_000),
            ):
                rows.append(f"{county},{sex},{band},{size}")
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def build(url: str, people: int) -> float:
    """Write the archive into the store at ``url``; returns the seconds it took.  SQLite's
    page cache is raised to 4 GiB for the load: millions of index rows inserted in random
    order otherwise read the disk for every B-tree page they touch."""
    import gateway.storage.sqlite as sqlite_store
    from gateway.config import Config
    from gateway.services import Services

    sqlite_store.CACHE_KIB = sqlite_store.WRITER_CACHE_KIB = 4 * 1024 * 1024

    services = Services(Config.load(database_url=url))
    started = time.perf_counter()
    try:
        services.store.upgrade()
        batch: list[dict[str, Any]] = []
        written = 0
        for resource in archive(people):
            batch.append(resource)
            if len(batch) >= BATCH:
                written += _write(services.store, batch)
                batch = []
                if written % 200_000 < BATCH:
                    print(
                        f"    loaded {written:,} resources ({written / (time.perf_counter() - started):,.0f}/s)",
                        file=sys.stderr,
                    )
        _write(services.store, batch)
        services.store.analyze()
    finally:
        services.close()
    return time.perf_counter() - started


def _write(store: Any, batch: list[dict[str, Any]]) -> int:
    with store.transaction() as tx:
        for resource in batch:
            tx.resources.write(resource, method="POST", current=None)
    return len(batch)


def cached(database: str, people: int, cache: Path, admin: str) -> str:
    """The archive's URL, built on first use."""
    if database == "sqlite":
        path = cache / f"measures-v{VERSION}-{people}.sqlite"
        url = sqlite_url(path)
        if not path.exists():
            cache.mkdir(parents=True, exist_ok=True)
            partial = path.with_suffix(".partial")
            partial.unlink(missing_ok=True)
            print(f"building {people:,} people in {path} (once)", file=sys.stderr)
            build(sqlite_url(partial), people)
            partial.rename(path)
        return url
    import psycopg

    name = f"yiyang_measures_v{VERSION}_{people}"
    base = admin.rsplit("/", 1)[0]
    with psycopg.connect(admin, autocommit=True) as connection:
        exists = connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            connection.execute(f"CREATE DATABASE {name}")
            print(f"building {people:,} people in PostgreSQL {name} (once)", file=sys.stderr)
            try:
                build(f"{base}/{name}", people)
            except BaseException:
                connection.execute(f"DROP DATABASE {name}")
                raise
    return f"{base}/{name}"


def measure(url: str, population: Path) -> None:
    from gateway.config import Config
    from gateway.measures.evaluate import Period
    from gateway.measures.population import read_population
    from gateway.services import Services

    services = Services(Config.load(database_url=url))
    try:
        with services.store.reading() as tx:
            counts = tx.resources.counts()
        baseline = read_everything(url)
        table = read_population(population)
        period = Period.parse("2026")
        started = time.perf_counter()
        results = services.measures.evaluate_all(list(services.measure_definitions), period, population=table)
        total = time.perf_counter() - started
    finally:
        services.close()
    print(f"archive: {counts.get('Patient', 0):,} people, {sum(counts.values()):,} resources")
    for result in results:
        print(f"  {result.measure.id:<42} score {result.score}")
    print(f"baseline (read every resource once): {baseline:.1f} s")
    print(f"all {len(results)} measures: {total:.1f} s  = {total / baseline:.2f}× the baseline")


def read_everything(url: str) -> float:
    """Seconds to fetch and parse every current resource once, streamed in pages."""
    import orjson

    started = time.perf_counter()
    if url.startswith(SQLITE_PREFIX):
        import sqlite3

        connection = sqlite3.connect(sqlite_path(url))
        cursor = connection.execute("SELECT content FROM resource WHERE NOT deleted")
    else:
        import psycopg

        connection = psycopg.connect(url)
        cursor = connection.cursor(name="everything")  # server-side: streamed, not buffered
        cursor.execute("SELECT content::text FROM resource WHERE NOT deleted")
    while rows := cursor.fetchmany(10_000):
        for (content,) in rows:
            orjson.loads(content)
    connection.close()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--people", type=int, default=1_000_000)
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument(
        "--postgres", default=os.environ.get("YIYANG_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
    )
    parser.add_argument("--cache", type=Path, default=Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")))
    args = parser.parse_args()
    cache = args.cache / "yiyang-bench"
    url = cached(args.database, args.people, cache, args.postgres)
    measure(url, population_file(cache / "measures-population.csv"))


if __name__ == "__main__":
    main()

"""The data set of ``python -m bench.server``: valid Patients, their Encounters and Coverages,
bulk-loaded straight into a store, and the request lists the wrk scripts replay.

Loading goes through the gateway's own ``Resources.write`` (versions and search index rows
exactly as the server writes them) but not through HTTP: 300,000 resources over REST would
measure the benchmark's own set-up.  Everything is deterministic from the seed, so the
request lists made in a later run still name resources a cached store holds.
"""

from __future__ import annotations

import random
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any
from urllib.parse import quote

from bench.synthetic import SD, patient
from profiles.canonical import DEFAULT_BASE, ID_CARD_SYSTEM

SEED = 20261202
#: resources written per store transaction while loading (one commit per batch)
BATCH = 3_000
ENCOUNTER_TYPES = [("home-visit", "上门巡诊"), ("home-bed", "家庭病床"), ("follow-up", "随访"), ("outpatient", "门诊")]
INSURANCE = [("310", "职工基本医疗保险"), ("390", "城乡居民基本医疗保险"), ("410", "长期照护保险")]
PRACTITIONERS = ["wang-fang", "li-jun", "zhao-min", "chen-hong"]
ORGANIZATIONS = ["jinshui-yiyang-center", "zhongyuan-yiyang-center"]
NHSA_ORGANIZATION = "zhengzhou-nhsa"


def valid_patient(rng: random.Random, index: int) -> dict[str, Any]:
    """A valid yy-patient (bench.synthetic without its deliberate defects)."""
    return patient(rng, index, None)


def encounter(rng: random.Random, patient_id: str, index: int) -> dict[str, Any]:
    """A finished yy-encounter of the patient (the shape of the package's home-visit example)."""
    code, display = rng.choice(ENCOUNTER_TYPES)
    start = date(2024, 1, 1) + timedelta(days=rng.randrange(0, 700))
    hour = rng.randrange(8, 17)
    return {
        "resourceType": "Encounter",
        "id": f"e{index}",
        "meta": {"profile": [SD + "yy-encounter"]},
        "status": "finished",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "HH", "display": "home health"},
        "type": [
            {"coding": [{"system": f"{DEFAULT_BASE}/CodeSystem/encounter-type", "code": code, "display": display}]}
        ],
        "subject": {"reference": f"Patient/{patient_id}"},
        "participant": [{"individual": {"reference": f"Practitioner/{rng.choice(PRACTITIONERS)}"}}],
        "period": {"start": f"{start}T{hour:02d}:00:00+08:00", "end": f"{start}T{hour:02d}:40:00+08:00"},
        "serviceProvider": {"reference": f"Organization/{rng.choice(ORGANIZATIONS)}"},
    }


def coverage(rng: random.Random, patient_id: str, index: int) -> dict[str, Any]:
    """An active yy-coverage of the patient (the shape of the package's insurance examples)."""
    code, display = rng.choice(INSURANCE)
    return {
        "resourceType": "Coverage",
        "id": f"c{index}",
        "meta": {"profile": [SD + "yy-coverage"]},
        "extension": [
            {
                "url": SD + "yy-ext-insurance-status",
                "valueCoding": {"system": f"{DEFAULT_BASE}/CodeSystem/nhsa-psn-insu-stas", "code": "1"},
            },
            {
                "url": SD + "yy-ext-insured-region",
                "valueCoding": {"system": f"{DEFAULT_BASE}/CodeSystem/gb-t-2260", "code": "410100"},
            },
        ],
        "status": "active",
        "type": {"coding": [{"system": f"{DEFAULT_BASE}/CodeSystem/nhsa-insutype", "code": code, "display": display}]},
        "subscriberId": f"4100{rng.randrange(10**15):016d}",
        "beneficiary": {"reference": f"Patient/{patient_id}"},
        "period": {"start": f"{rng.randrange(1998, 2024)}-07-01"},
        "payor": [{"reference": f"Organization/{NHSA_ORGANIZATION}"}],
    }


def people(count: int, seed: int = SEED) -> Iterator[tuple[dict[str, Any], dict[str, Any], dict[str, Any]]]:
    """Each person's Patient, one Encounter and one Coverage (ids p<i>, e<i>, c<i>)."""
    rng = random.Random(seed)
    for index in range(count):
        person = valid_patient(rng, index)
        yield person, encounter(rng, person["id"], index), coverage(rng, person["id"], index)


def load(database_url: str, count: int) -> int:
    """Write ``count`` people into the store at ``database_url`` (schema created if needed),
    printing progress; returns how many resources were written."""
    from gateway.config import Config
    from gateway.services import Services

    services = Services(Config.load(database_url=database_url))
    try:
        store = services.store
        written, started, batch = 0, time.perf_counter(), []
        for trio in people(count):
            batch.extend(trio)
            if len(batch) >= BATCH:
                written += _write(store, batch)
                batch = []
                if written % 30_000 < BATCH:
                    rate = written / (time.perf_counter() - started)
                    print(f"    loaded {written:>9,} of {3 * count:,} resources ({rate:,.0f}/s)", file=sys.stderr)
        written += _write(store, batch)
        store.analyze()
        return written
    finally:
        services.close()


def _write(store: Any, batch: list[dict[str, Any]]) -> int:
    with store.transaction() as tx:
        for resource in batch:
            tx.resources.write(resource, method="POST")
    return len(batch)


# -- what the wrk scripts replay -----------------------------------------------------------
def read_paths(count: int, wanted: int, seed: int = 1) -> list[str]:
    """GET by id, ids spread over the whole data set."""
    rng = random.Random(seed)
    return [f"/fhir/Patient/p{rng.randrange(count)}" for _ in range(wanted)]


def sample_people(count: int, wanted: int, seed: int = 2) -> list[dict[str, Any]]:
    """Patients of the loaded set, picked evenly at random (regenerated, not read back)."""
    chosen = set(random.Random(seed).sample(range(count), min(wanted, count)))
    return [p for p, _, _ in people(max(chosen) + 1) if int(p["id"][1:]) in chosen]


def identifier_paths(chosen: list[dict[str, Any]]) -> list[str]:
    return [f"/fhir/Patient?identifier={quote(ID_CARD_SYSTEM + '|' + p['identifier'][0]['value'])}" for p in chosen]


def name_birthdate_paths(chosen: list[dict[str, Any]]) -> list[str]:
    return [f"/fhir/Patient?name={quote(p['name'][0]['family'])}&birthdate={p['birthDate']}" for p in chosen]


class NewPeople:
    """Valid new Patients, without ids (the server assigns them), of distinct 身份证号, handed
    out in turn: the gateway refuses a second Patient of one number (409), so no two requests
    of a benchmark run, whichever scenario or wrk run sends them, may send one person.  (A
    number one of the loaded people has too is no refusal: they are written straight into
    the store, outside the identity index.)"""

    def __init__(self, seed: int = 99) -> None:
        self._rng = random.Random(seed)
        self._seen: set[str] = set()
        self._index = 0

    def take(self, wanted: int) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        while len(found) < wanted:
            person = valid_patient(self._rng, self._index)
            self._index += 1
            number = str(person["identifier"][0]["value"])
            if number not in self._seen:
                self._seen.add(number)
                del person["id"]
                found.append(person)
        return found


def transaction_bundles(wanted: int, seed: int = 77, people: NewPeople | None = None) -> list[dict[str, Any]]:
    """Transaction Bundles of 10 creates each: a new Patient, five Encounters and four
    Coverages referring to it by its urn:uuid fullUrl (what an ingesting client sends)."""
    rng = random.Random(seed)
    bundles = []
    for index, person in enumerate((people or NewPeople(seed)).take(wanted)):
        full_url = f"urn:uuid:{uuid.UUID(int=rng.getrandbits(128), version=4)}"
        members = [encounter(rng, "x", index * 10 + k) for k in range(5)]
        members += [coverage(rng, "x", index * 10 + k) for k in range(4)]
        entries = [_entry(person, full_url)]
        for member in members:
            del member["id"]
            field = "subject" if member["resourceType"] == "Encounter" else "beneficiary"
            member[field] = {"reference": full_url}
            entries.append(_entry(member, f"urn:uuid:{uuid.UUID(int=rng.getrandbits(128), version=4)}"))
        bundles.append({"resourceType": "Bundle", "type": "transaction", "entry": entries})
    return bundles


def _entry(resource: dict[str, Any], full_url: str) -> dict[str, Any]:
    kind = resource["resourceType"]
    return {"fullUrl": full_url, "resource": resource, "request": {"method": "POST", "url": kind}}

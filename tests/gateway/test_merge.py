"""One person, one Patient: the elder every sample source carries (张秀英, 410105194912310020)
arrives from community health, elderly care, insurance and the hospital, and the archive holds
exactly one Patient for her, with every identifier once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gateway.export import RESOLVED_FILE
from gateway.ingest import commands
from mappings.readers import READERS
from mappings.specs import SOURCES
from profiles.registry import Registry
from tests.ingest_output import ndjson

SAMPLES = Path(__file__).resolve().parents[2] / "mappings" / "samples"
ID_CARD = "410105194912310020"


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[commands.Counts]]:
    out = tmp_path_factory.mktemp("archive")
    counts = []
    for source in SOURCES:
        files = sorted(p for p in (SAMPLES / source).glob("*") if p.suffix.lower() in READERS)
        counts.append(commands.ingest(source, files, out, Registry(), bundle=False))
    return out, counts


@pytest.fixture(scope="module")
def archive(runs: tuple[Path, list[commands.Counts]]) -> Path:
    return runs[0]


def her(archive: Path) -> list[dict[str, Any]]:
    return [p for p in ndjson(archive / "Patient.ndjson") if any(i.get("value") == ID_CARD for i in p["identifier"])]


def test_every_source_has_samples_carrying_the_shared_elder() -> None:
    carrying = {
        s
        for s in SOURCES
        for f in (SAMPLES / s).glob("*")
        if f.is_file() and ID_CARD in f.read_bytes().decode("utf-8", "ignore")
    }
    assert carrying == set(SOURCES)


def test_the_elder_is_one_patient(archive: Path) -> None:
    assert len(her(archive)) == 1


def test_her_patient_holds_id_card_health_record_and_insurance_numbers(archive: Path) -> None:
    systems = {i["system"] for i in her(archive)[0]["identifier"]}
    assert {
        "urn:oid:2.16.156.10011.1.3",
        "urn:oid:2.16.156.10011.1.2",
        "http://fhir.yiyang.cn/sid/nhsa-psn-no",
    } <= systems


def test_no_identifier_is_duplicated(archive: Path) -> None:
    pairs = [(i["system"], i["value"]) for i in her(archive)[0]["identifier"]]
    assert len(pairs) == len(set(pairs))


def test_records_from_every_source_point_at_her(archive: Path) -> None:
    reference = f"Patient/{her(archive)[0]['id']}"
    sources = {
        p["entity"][0]["what"]["identifier"]["value"].split("|")[0]
        for p in ndjson(archive / "Provenance.ndjson")
        if {"reference": reference} in p["target"]
    }
    assert sources == set(SOURCES)


def test_the_quarantine_holds_one_line_per_record_every_run_quarantined(
    runs: tuple[Path, list[commands.Counts]],
) -> None:
    """Open, or resolved by a later record of its source key (kept apart, for the audit)."""
    out, counts = runs
    held = len(ndjson(out / "quarantine.ndjson")) + len(ndjson(out / RESOLVED_FILE))
    assert held == sum(c.quarantined for c in counts)


def test_the_lineage_of_each_record_names_her_identifiers_it_brought(archive: Path) -> None:
    """A merge appends a record's numbers after the archive's: 老人档案's 医保号, first of its own
    identifiers, is her third, and its Provenance must name that one, a number its file holds
    (it named her first, the 身份证号 of another source's record)."""
    patient = her(archive)[0]
    misnamed = []
    for provenance in ndjson(archive / "Provenance.ndjson"):
        if {"reference": f"Patient/{patient['id']}"} not in provenance["target"]:
            continue
        source, file, _ = provenance["entity"][0]["what"]["identifier"]["value"].split("|", 2)
        if file.endswith(".xlsx"):  # zipped: its CSV twin holds the same rows
            file = file.removesuffix(".xlsx") + ".csv"
        held = (SAMPLES / source / file).read_bytes().decode("utf-8", "ignore")
        for line in provenance["entity"][0].get("extension", []):
            path = line["valueString"].split(" ← ")[0]
            if path.startswith("Patient.identifier[") and path.endswith("].value"):
                value = patient["identifier"][int(path[len("Patient.identifier[") : -len("].value")])]["value"]
                if value not in held:
                    misnamed.append((file, path, value))
    assert misnamed == []

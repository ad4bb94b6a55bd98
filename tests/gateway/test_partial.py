"""A record is no longer all-or-nothing: when only an independent part fails (an ADT message
whose second IN1 lacks its 医保 fields), the Patient, the Encounter and the good Coverage land,
the failing part is quarantined with its reasons and the message's bytes, and the record is
counted as partially accepted."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from gateway.ingest import commands
from gateway.ingest.pipeline import Counts
from gateway.storage import open_store
from profiles.registry import Registry
from tests.ingest_output import ndjson

ROOT = Path(__file__).resolve().parents[2]


def first_admission() -> bytes:
    data = (ROOT / "mappings/samples/hl7v2/adt.hl7").read_bytes()
    return b"MSH" + data.split(b"MSH")[1]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Counts]:
    folder = tmp_path_factory.mktemp("partial")
    # the long-term-care IN1 loses its 险种类型 (IN1-2)
    message = first_admission().replace("IN1|2|410^长期照护保险^NHSA_INSUTYPE|".encode(), b"IN1|2||")
    path = folder / "adt-in1.hl7"
    path.write_bytes(message)
    out = folder / "out"
    return out, commands.ingest("hl7v2", [path], out, Registry())


def test_the_record_counts_as_mapped_and_partially_accepted(run: tuple[Path, Counts]) -> None:
    counts = run[1]
    assert (counts.read, counts.mapped, counts.quarantined, counts.partial) == (1, 1, 0, 1)


def test_the_patient_the_stay_and_the_good_coverage_land(run: tuple[Path, Counts]) -> None:
    out = run[0]
    assert [len(ndjson(out / f"{kind}.ndjson")) for kind in ("Patient", "Encounter", "Coverage")] == [1, 1, 1]


def test_the_failed_part_is_quarantined_naming_its_in1_field(run: tuple[Path, Counts]) -> None:
    [entry] = ndjson(run[0] / "quarantine.ndjson")
    assert (entry["partial"], any("IN1" in (r.get("source") or "") for r in entry["reasons"])) == (True, True)


def test_the_quarantine_entry_says_what_of_the_record_landed(run: tuple[Path, Counts]) -> None:
    [entry] = ndjson(run[0] / "quarantine.ndjson")
    assert sorted(reference.split("/")[0] for reference in entry["landed"]) == [
        "Coverage",
        "Encounter",
        "Patient",
        "Provenance",
    ]


def in1_without_its_insurance_type(folder: Path) -> Path:
    path = folder / "adt-in1.hl7"
    path.write_bytes(first_admission().replace("IN1|2|410^长期照护保险^NHSA_INSUTYPE|".encode(), b"IN1|2||"))
    return path


def versions(out: Path) -> int:
    """How many resource versions the folder's archive holds."""
    store = open_store(f"sqlite:///{out / 'archive.sqlite'}")
    with store.reading() as tx:
        total = tx.resources.history(None, None, None, 1)[1]
    store.close()
    return total


@pytest.fixture(scope="module")
def twice(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int, Counts]:
    """The same partly accepted message ingested twice: the folder, the versions after the
    first run, and the second run's counts."""
    folder = tmp_path_factory.mktemp("partial-twice")
    path, out = in1_without_its_insurance_type(folder), folder / "out"
    commands.ingest("hl7v2", [path], out, Registry())
    first = versions(out)
    return out, first, commands.ingest("hl7v2", [path], out, Registry())


def test_the_same_partly_accepted_message_again_is_unchanged(twice: tuple[Path, int, Counts]) -> None:
    counts = twice[2]
    assert (counts.unchanged, counts.partial) == (1, 0)


def test_the_same_partly_accepted_message_again_writes_nothing(twice: tuple[Path, int, Counts]) -> None:
    out, first, _ = twice
    assert versions(out) == first


def test_replay_says_a_part_still_failing_is_still_quarantined(tmp_path: Path) -> None:
    out = tmp_path / "out"
    commands.ingest("hl7v2", [in1_without_its_insurance_type(tmp_path)], out, Registry())
    said = io.StringIO()
    commands.replay(out, Registry(), said, "en")
    assert said.getvalue() == "partly still quarantined (the rest landed): adt-in1.hl7 message 1\n"

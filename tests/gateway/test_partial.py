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
from gateway.search.indexer import SearchIndexer
from gateway.security.principal import Principal, acting
from gateway.storage import open_store
from gateway.storage.store import Store
from profiles.registry import Registry
from tests.ingest_output import ndjson

ROOT = Path(__file__).resolve().parents[2]
NHSA = "http://fhir.yiyang.cn/sid/nhsa-admdvs"


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


@pytest.fixture(scope="module")
def pushed_by_a_hospital(tmp_path_factory: pytest.TempPathFactory) -> tuple[Store, Counts]:
    """The first admission, with both its IN1s, pushed by a hospital's interface engine into an
    archive that knows 郑州市医疗保障局, the payer the IN1s name (IN1-3 410100)."""
    folder = tmp_path_factory.mktemp("hospital")
    registry = Registry()
    store = open_store(f"sqlite:///{folder / 'archive.sqlite'}", SearchIndexer(registry).rows)
    fund = {"resourceType": "Organization", "id": "zhengzhou-nhsa", "identifier": [{"system": NHSA, "value": "410100"}]}
    with store.transaction() as tx:
        tx.resources.write(fund)
    path = folder / "adt.hl7"
    path.write_bytes(first_admission())
    token = acting.set(Principal("his", "first-hospital", frozenset({"system/*.cruds"}), "hospital"))
    try:
        return store, commands.ingest("hl7v2", [path], None, registry, store=store)
    finally:
        acting.reset(token)


def test_a_hospitals_coverages_naming_the_fund_are_left_out_and_the_stay_lands(
    pushed_by_a_hospital: tuple[Store, Counts],
) -> None:
    """The hospital does not act for the fund that owns a Coverage (its payor): the whole
    message was refused (AE over MLLP) for its IN1s, though the patient and the stay are its own."""
    store, counts = pushed_by_a_hospital
    with store.reading() as tx:
        landed = tx.resources.counts()
    assert (counts.partial, landed.get("Encounter"), landed.get("Coverage")) == (1, 1, None)


def test_a_coverage_left_out_for_its_payer_is_quarantined_at_the_payor(
    pushed_by_a_hospital: tuple[Store, Counts],
) -> None:
    store = pushed_by_a_hospital[0]
    with store.reading() as tx:
        [entry] = list(tx.quarantine.entries())
    found = {(reason["id"], reason.get("fhirpath"), reason.get("source")) for reason in entry["reasons"]}
    where = ("ingest.forbidden-organization", "Coverage.payor[0].identifier")
    assert found == {(*where, f"adt.hl7 message 1, field IN1[{n}].IN1-3.1") for n in (0, 1)}

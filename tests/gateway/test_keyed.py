"""Keyed resources in the archive: one stay, one institution, however many records name them —
merged across records and across runs, and never merged into something invalid."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from conformance.validator import Validator
from gateway.export import export_folder
from gateway.ingest import commands
from gateway.ingest.pipeline import Ingest
from gateway.search.indexer import SearchIndexer
from gateway.storage import open_store
from mappings.conceptmaps import ConceptMaps
from mappings.engine import MappingEngine
from mappings.records import SourceRecord
from mappings.specs import Spec, load
from profiles.registry import Registry
from tests.ingest_output import keyed_id, ndjson, reasons
from tests.samples import mapped_samples

ROOT = Path(__file__).resolve().parents[2]
ADT = ROOT / "mappings/samples/hl7v2/adt.hl7"
STAYS = ROOT / "mappings/samples/elderly-care/入住登记.json"
VISITS = ROOT / "mappings/samples/community-health/随访巡诊家床记录.csv"
ZHANG_STAY = keyed_id(
    "Encounter", "H41010500012", "urn:oid:2.16.156.10011.1.12", "ZY20261102003", "2026-11-02T09:15:00+08:00"
)


def _messages(path: Path) -> list[bytes]:
    """The sample's messages, each starting at its MSH segment."""
    lines = path.read_bytes().replace(b"\r\n", b"\r").replace(b"\n", b"\r").split(b"\r")
    messages: list[bytes] = []
    for line in lines:
        if line.startswith(b"MSH"):
            messages.append(b"")
        if messages and line:
            messages[-1] += line + b"\r"
    return messages


def test_a_discharge_ingested_in_a_later_run_finishes_the_stay_the_first_run_wrote(tmp_path: Path) -> None:
    messages = _messages(ADT)
    (tmp_path / "a01.hl7").write_bytes(messages[0])
    (tmp_path / "a03.hl7").write_bytes(messages[3])
    out = tmp_path / "out"
    commands.ingest("hl7v2", [tmp_path / "a01.hl7"], out, Registry(), bundle=False)
    commands.ingest("hl7v2", [tmp_path / "a03.hl7"], out, Registry(), bundle=False)
    stays = [(e["id"], e["status"]) for e in ndjson(out / "Encounter.ndjson")]
    assert stays == [(ZHANG_STAY, "finished")]


def test_a_discharge_that_overtakes_its_admission_still_leaves_the_stay_finished(tmp_path: Path) -> None:
    """The A01 arrives last but happened first (EVN-2): it only fills in what the A03 did not say."""
    messages = _messages(ADT)
    (tmp_path / "adt.hl7").write_bytes(messages[3] + messages[0])
    commands.ingest("hl7v2", [tmp_path / "adt.hl7"], tmp_path / "out", Registry(), bundle=False)
    [stay] = ndjson(tmp_path / "out/Encounter.ndjson")
    assert (stay["status"], stay["period"]) == (
        "finished",
        {"start": "2026-11-02T09:15:00+08:00", "end": "2026-11-12T10:30:00+08:00"},
    )


@pytest.mark.parametrize("later", [True, False], ids=["a later admission", "an earlier admission"])
def test_a_stay_the_archive_holds_for_one_person_is_not_merged_into_another_persons(
    tmp_path: Path, later: bool
) -> None:
    """Another patient's A01 with the same hospital, visit number and admission time moved
    张秀英's stay to that patient (later event time) or merged into it silently (earlier), and
    was counted as landed; it is quarantined instead, naming both people."""
    messages = _messages(ADT)
    other = messages[0].replace(b"0000123^^^", b"0000999^^^").replace(b"410105194912310020", b"410105194001010027")
    other = other.replace(b"\xe5\xbc\xa0\xe7\xa7\x80\xe8\x8b\xb1", "李四".encode()).replace(
        b"|19491231|", b"|19400101|"
    )
    other = other.replace(b"HIS20261102091502", b"HIS20261102091599").split(b"\rIN1|", 1)[0] + b"\r"
    other = other.replace(b"EVN|A01|20261102091500", b"EVN|A01|20261102" + (b"235900" if later else b"000100"))
    (tmp_path / "a.hl7").write_bytes(messages[0])
    (tmp_path / "b.hl7").write_bytes(other)
    out = tmp_path / "out"
    commands.ingest("hl7v2", [tmp_path / "a.hl7"], out, Registry(), bundle=False)
    commands.ingest("hl7v2", [tmp_path / "b.hl7"], out, Registry(), bundle=False)
    zhang = next(p["id"] for p in ndjson(out / "Patient.ndjson") if p["name"][0]["text"] == "张秀英")
    stays = [(e["id"], e["subject"]["reference"]) for e in ndjson(out / "Encounter.ndjson")]
    assert stays == [(ZHANG_STAY, f"Patient/{zhang}")]
    assert [r[0] for r in reasons(out, "b.hl7", "message 1")] == ["ingest.keyed-other-person"]


def test_an_institution_named_by_several_stays_is_written_once(tmp_path: Path) -> None:
    commands.ingest("elderly-care", [STAYS], tmp_path, Registry(), bundle=False)
    # eight stays in the sample, at two institutions
    usccs = sorted(o["identifier"][0]["value"] for o in ndjson(tmp_path / "Organization.ndjson"))
    assert usccs == ["52410102MJ00123454", "52410105MJY123456L"]


def test_resources_without_a_key_survive_the_rewrite_of_their_type(tmp_path: Path) -> None:
    commands.ingest("community-health", [VISITS], tmp_path, Registry(), bundle=False)
    visits = {e["id"] for e in ndjson(tmp_path / "Encounter.ndjson")}
    (tmp_path / "a01.hl7").write_bytes(_messages(ADT)[0])
    commands.ingest("hl7v2", [tmp_path / "a01.hl7"], tmp_path, Registry(), bundle=False)
    assert {e["id"] for e in ndjson(tmp_path / "Encounter.ndjson")} == visits | {ZHANG_STAY}


# -- merging statements: their order, and a merge that would break the resource ------------------------------------------------------
RESULT = Spec(
    "test/result",
    "检验结果",
    "test",
    frozenset({"检验号"}),
    [
        {
            "name": "result",
            "type": "Observation",
            "key": ["identifier.first().value"],
            "as_of": {"from": "报告时间", "transform": ["datetime"]},
            "rules": [
                {"path": "identifier[+]", "value": {"value": {"from": "检验号"}}},
                {"path": "status", "value": "final"},
                {"path": "code.text", "value": "尿常规"},
                {"path": "valueString", "value": {"from": "结果"}},
                {"path": "dataAbsentReason.text", "value": {"from": "缺失原因"}},
            ],
        }
    ],
)


def _record(location: str, **fields: str) -> SourceRecord:
    fields = {"检验号": "JY001", **fields}
    return SourceRecord("test", "检验.csv", location, fields, b"raw", "column", frozenset(fields))


@pytest.fixture
def pipeline(tmp_path: Path, indexer: SearchIndexer, validator: Validator) -> Iterator[Ingest]:
    registry = Registry()
    engine = MappingEngine([RESULT], ConceptMaps([], registry.canonical_base), registry.canonical_base)
    store = open_store(f"sqlite:///{tmp_path / 'archive.sqlite'}", indexer.rows)
    yield Ingest(store, validator, engine)
    store.close()


def _finish(pipeline: Ingest, out: Path) -> None:
    pipeline.finish()
    export_folder(pipeline.store, out)


def test_a_record_whose_merge_would_break_the_keyed_resource_is_quarantined_with_the_merged_issues(
    pipeline: Ingest, tmp_path: Path
) -> None:
    pipeline.process(_record("row 2", 结果="阴性"))
    pipeline.process(_record("row 3", 缺失原因="标本溶血"))
    _finish(pipeline, tmp_path)
    # the stored result has a value; adding a data-absent reason to it breaks obs-6
    assert [(r[0], r[1]) for r in reasons(tmp_path, "row 3")] == [
        ("ingest.merge-invalid", None),
        ("invariant.failed", "Observation"),
    ]


def test_the_keyed_resource_a_refused_merge_would_have_broken_stays_as_it_was(pipeline: Ingest, tmp_path: Path) -> None:
    pipeline.process(_record("row 2", 结果="阴性"))
    pipeline.process(_record("row 3", 缺失原因="标本溶血"))
    _finish(pipeline, tmp_path)
    [result] = ndjson(tmp_path / "Observation.ndjson")
    assert (result["valueString"], "dataAbsentReason" in result) == ("阴性", False)


@pytest.mark.parametrize(
    ("stored_at", "arriving_at", "kept"),
    [
        pytest.param("2026-11-02 10:00", "2026-11-02 09:00", "阳性", id="an older statement only fills in"),
        pytest.param("2026-11-02 09:00", "2026-11-02 10:00", "阴性", id="a newer statement wins"),
        pytest.param("2026-11-02 10:00", "", "阴性", id="without a time, arrival order"),
    ],
)
def test_statements_merge_in_the_order_they_happened(
    pipeline: Ingest, tmp_path: Path, stored_at: str, arriving_at: str, kept: str
) -> None:
    pipeline.process(_record("row 2", 结果="阳性", 报告时间=stored_at))
    pipeline.process(_record("row 3", 结果="阴性", 报告时间=arriving_at))
    _finish(pipeline, tmp_path)
    [result] = ndjson(tmp_path / "Observation.ndjson")
    assert result["valueString"] == kept


def test_every_key_in_the_shipped_specs_keys_a_resource_of_the_samples() -> None:
    """fhirpathpy forgives a misspelt expression by returning nothing, which would leave the
    resource silently unkeyed: every shipped key must work on the shipped samples."""
    declared = {(s.id, d["name"]) for s in load() for d in s.resources if "key" in d}
    keyed = {(mapped.spec.id, name.split("[")[0]) for mapped in mapped_samples() for name in mapped.keyed}
    assert declared - keyed == set()


def test_every_keyed_resource_of_the_samples_about_a_patient_has_its_person_element_stated() -> None:
    """The person a keyed resource is about is read from the element the package's after-birth
    rule names for its type (yy-ext-after-birth): a keyed type it does not state would merge a
    stay into another person's unchecked."""
    dated = Validator(Registry()).after_birth.dated
    unstated = {
        mapped.resources[name]["resourceType"]
        for mapped in mapped_samples()
        for name in mapped.keyed
        if any(isinstance(mapped.resources[name].get(key), dict) for key in ("subject", "patient", "beneficiary"))
        and dated.get(mapped.resources[name]["resourceType"]) is None
    }
    assert unstated == set()

"""`yiyang ingest` on the community-health 个人基本信息表 sample: exact output, exact
quarantine reasons, reconciled counts, replay after a fix, explain, and the CLI options."""

from __future__ import annotations

import io
import json
import shutil
import threading
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import Any

import psycopg
import pytest

from conformance.validator import Validator
from gateway.cli import main
from gateway.config import Config
from gateway.export import RESOLVED_FILE as RESOLVED
from gateway.ingest import commands
from gateway.ingest.ledger import Ledger
from gateway.ingest.pipeline import Counts, Ingest, Outcome
from gateway.limits import reader_limits
from gateway.storage import open_store
from gateway.storage.store import StoreError, Transaction
from mappings import conceptmaps
from mappings.engine import MappingEngine
from mappings.readers import hl7v2, read
from mappings.records import SourceRecord
from profiles.registry import Registry
from tests.conftest import fresh_database_url, second_behind_first
from tests.ingest_output import ndjson, personal_info_file, reasons
from tests.samples import mapped_samples

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "mappings/samples/community-health/个人基本信息表.csv"
SAMPLE_HL7 = ROOT / "mappings/samples/hl7v2/adt.hl7"
GOLDEN = Path(__file__).parent / "golden"


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, commands.Counts]:
    out = tmp_path_factory.mktemp("ingest")
    counts = commands.ingest("community-health", [SAMPLE], out, Registry(), bundle=True)
    return out, counts


def test_counts_reconcile(run: tuple[Path, commands.Counts]) -> None:
    counts = run[1]
    assert (counts.read, counts.mapped, counts.quarantined) == (18, 12, 6)


def test_good_row_becomes_exactly_the_expected_patient(run: tuple[Path, commands.Counts]) -> None:
    expected = json.loads((GOLDEN / "community-health-zhang-xiuying.Patient.json").read_text(encoding="utf-8"))
    assert next(p for p in ndjson(run[0] / "Patient.ndjson") if p["name"][0]["text"] == "张秀英") == expected


def test_fifteen_digit_full_width_id_is_normalised_to_eighteen(run: tuple[Path, commands.Counts]) -> None:
    patient = next(p for p in ndjson(run[0] / "Patient.ndjson") if p["name"][0]["text"] == "李建国")
    assert (patient["identifier"][0]["value"], patient["birthDate"]) == ("440524198001010013", "1980-01-01")


def test_a_fifteen_digit_id_with_an_impossible_date_is_quarantined_naming_it_as_written(tmp_path: Path) -> None:
    """The clerk looks the number up in the export: the reason quotes it as the export wrote
    it, not only the 18-digit form the ingest would have made of it."""
    path = personal_info_file(tmp_path, "身份证号", "410105491331002")
    commands.ingest("community-health", [path], tmp_path / "out", Registry(), bundle=False)
    (entry,) = ndjson(tmp_path / "out/quarantine.ndjson")
    about_the_number = [r for r in entry["reasons"] if r.get("source", "").endswith("column 身份证号")]
    assert [("410105491331002" in r["zh-CN"], "410105491331002" in r["en"]) for r in about_the_number] == [(True, True)]


def test_multi_valued_past_history_becomes_one_condition_each(run: tuple[Path, commands.Counts]) -> None:
    zhang = next(p for p in ndjson(run[0] / "Patient.ndjson") if p["name"][0]["text"] == "张秀英")
    codes = sorted(
        c["code"]["coding"][0]["code"]
        for c in ndjson(run[0] / "Condition.ndjson")
        if c["subject"]["reference"] == f"Patient/{zhang['id']}"
    )
    assert codes == ["E14", "I10"]


def test_every_written_record_has_provenance_with_field_lineage(run: tuple[Path, commands.Counts]) -> None:
    provenance = next(
        p
        for p in ndjson(run[0] / "Provenance.ndjson")
        if p["entity"][0]["what"]["identifier"]["value"].endswith("row 12")
    )
    lineage = [e["valueString"] for e in provenance["entity"][0]["extension"]]
    assert "Patient.identifier[0].value ← 个人基本信息表.csv row 12, column 身份证号" in lineage


def test_excel_mangled_id_is_quarantined_with_its_column(run: tuple[Path, commands.Counts]) -> None:
    assert reasons(run[0], "row 13")[0] == (
        "mapping.excel-mangled-number",
        "Patient.identifier.value",
        "个人基本信息表.csv row 13, column 身份证号",
    )


def test_bad_checksum_is_quarantined_with_fhirpath_and_column(run: tuple[Path, commands.Counts]) -> None:
    assert reasons(run[0], "row 14") == [
        ("rule.id-card-checksum", "Patient.identifier[0].value", "个人基本信息表.csv row 14, column 身份证号")
    ]


def test_impossible_date_is_quarantined_naming_the_column_of_the_missing_element(
    run: tuple[Path, commands.Counts],
) -> None:
    assert reasons(run[0], "row 15") == [
        ("mapping.impossible-date", "Patient.birthDate", "个人基本信息表.csv row 15, column 出生日期"),
        ("profile.cardinality-min", "Patient.birthDate", "个人基本信息表.csv row 15, column 出生日期"),
    ]


def test_mojibake_is_quarantined(run: tuple[Path, commands.Counts]) -> None:
    assert reasons(run[0], "row 16")[0] == (
        "mapping.mojibake",
        "Patient.name.text",
        "个人基本信息表.csv row 16, column 姓名",
    )


def test_unknown_code_is_quarantined(run: tuple[Path, commands.Counts]) -> None:
    assert reasons(run[0], "row 17") == [
        ("mapping.unknown-code", "Patient.extension.valueCoding", "个人基本信息表.csv row 17, column 民族")
    ]


def test_duplicate_row_is_quarantined_naming_the_first(run: tuple[Path, commands.Counts]) -> None:
    entry = next(e for e in ndjson(run[0] / "quarantine.ndjson") if e["reasons"][0]["id"] == "ingest.duplicate-row")
    assert entry["reasons"][0]["en"] == "Duplicate of row 7"


def test_a_quarantined_row_twice_keeps_both_entries(tmp_path: Path) -> None:
    """The copy's entry (a duplicate) replaced the original's (an impossible date) under one
    key: quarantined 2, one line, and the real reason gone."""
    header, *rows = SAMPLE.read_text(encoding="utf-8-sig").splitlines()
    bad = next(row for row in rows if "1945-02-30" in row)
    export = tmp_path / "个人基本信息表.csv"
    export.write_text("\n".join([header, bad, bad]) + "\n", encoding="utf-8-sig")
    commands.ingest("community-health", [export], tmp_path / "out", Registry())
    entries = ndjson(tmp_path / "out/quarantine.ndjson")
    assert [(e["location"], e["reasons"][0]["id"]) for e in entries] == [
        ("row 2", "mapping.impossible-date"),
        ("row 3", "ingest.duplicate-row"),
    ]


def test_quarantine_keeps_the_original_bytes(run: tuple[Path, commands.Counts]) -> None:
    import base64

    entry = next(e for e in ndjson(run[0] / "quarantine.ndjson") if e["location"] == "row 17")
    assert "火星族".encode() in base64.b64decode(entry["raw"])


def test_bundle_option_writes_a_transaction_of_everything(run: tuple[Path, commands.Counts]) -> None:
    bundle = json.loads((run[0] / "bundle.json").read_text(encoding="utf-8"))
    # 12 Patients, 15 Conditions, 5 AllergyIntolerances, 11 ABO blood groups (刘梅's 5 不详 writes
    # none; the sample has no RH column), 12 Provenances
    assert (bundle["type"], len(bundle["entry"])) == ("transaction", 12 + 15 + 5 + 11 + 12)


def test_written_resources_pass_validation(run: tuple[Path, commands.Counts]) -> None:
    from conformance.validator import Validator

    validator = Validator()
    bundle = json.loads((run[0] / "bundle.json").read_text(encoding="utf-8"))
    assert [i for i in validator.validate(bundle) if i.is_error] == []


def test_ingesting_the_same_file_again_merges_into_the_same_people(tmp_path: Path) -> None:
    commands.ingest("community-health", [SAMPLE], tmp_path, Registry(), bundle=False)
    commands.ingest("community-health", [SAMPLE], tmp_path, Registry(), bundle=False)
    assert len(ndjson(tmp_path / "Patient.ndjson")) == 12


def test_ingesting_the_same_file_again_writes_no_resource_twice(tmp_path: Path) -> None:
    commands.ingest("community-health", [SAMPLE], tmp_path, Registry(), bundle=False)
    commands.ingest("community-health", [SAMPLE], tmp_path, Registry(), bundle=False)
    ids = [(r["resourceType"], r["id"]) for path in sorted(tmp_path.glob("[A-Z]*.ndjson")) for r in ndjson(path)]
    assert len(ids) == len(set(ids))


def test_a_second_ingest_of_the_same_file_counts_its_rows_as_unchanged(tmp_path: Path) -> None:
    commands.ingest("community-health", [SAMPLE], tmp_path, Registry(), bundle=False)
    again = commands.ingest("community-health", [SAMPLE], tmp_path, Registry(), bundle=False)
    assert (again.read, again.mapped, again.unchanged, again.quarantined) == (18, 12, 12, 6)


def test_the_summary_counts_each_resource_once_when_an_export_comes_twice(tmp_path: Path) -> None:
    """The same export under two names (a 1月 and a 2月 copy) writes each resource under the same
    id twice: the summary counted 10 AllergyIntolerance where the archive holds 5."""
    copies = [tmp_path / "个人基本信息表-1月.csv", tmp_path / "个人基本信息表-2月.csv"]
    for copy in copies:
        shutil.copy(SAMPLE, copy)
    out = tmp_path / "out"
    counts = commands.ingest("community-health", copies, out, Registry(), bundle=False)
    exported = {path.stem: len(ndjson(path)) for path in out.glob("[A-Z]*.ndjson")}
    assert dict(counts.resources) == exported


def test_a_lone_surrogate_in_a_json_export_quarantines_its_record_and_the_run_goes_on(tmp_path: Path) -> None:
    """A ``\\ud800`` escape alone in a string decodes to no text: the record's fields could be
    neither digested nor kept in the quarantine, and the whole run stopped on an internal error."""
    lines = (ROOT / "mappings/samples/elderly-care/能力评估.ndjson").read_text(encoding="utf-8").splitlines()[:2]
    lines[0] = lines[0].replace('"levelChangeBasis": "', '"levelChangeBasis": "\\ud800', 1)
    export = tmp_path / "能力评估.ndjson"
    export.write_text("\n".join(lines) + "\n", encoding="utf-8")
    counts = commands.ingest("elderly-care", [export], tmp_path / "out", Registry(), bundle=False)
    assert (counts.read, counts.mapped, counts.quarantined) == (2, 1, 1)


def test_a_message_whose_reason_quotes_a_nul_is_quarantined_on_either_database(
    database_url: str, tmp_path: Path
) -> None:
    """The reason of an unknown escape quotes it, NUL and all (``\\Z<NUL>\\``); PostgreSQL's
    JSON refuses a NUL, so the quarantine entry failed the batch and the run (over MLLP, the
    message was answered "store busy" however often it came)."""
    export = tmp_path / "adt.hl7"
    export.write_bytes(
        b"MSH|^~\\&|HIS|H41010500012|YY|GW|20261102091500||ADT^A08|NUL1|P|2.5\r"
        b"EVN|A08|20261102091500\rPID|1||X^^^^ID||\\Z\x00\\\r"
    )
    store = open_store(database_url)
    try:
        counts = commands.ingest("hl7v2", [export], None, Registry(), store=store)
    finally:
        store.close()
    assert (counts.read, counts.quarantined) == (1, 1)


def test_two_ingests_of_one_export_at_once_write_it_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A cron run overlapping the last, or a ``$ingest`` sent again while the first still ran:
    the second asked the ledger before the first had committed, mapped every record again and
    wrote it (a Provenance had two versions), and its row 2 "replaced" the quarantine entry of
    row 12, a later record of the same 个人档案编号, which left the quarantine unreviewed.
    Here the first pauses before its commit until the second waits for it."""
    registry, original, paused, resume = Registry(), Ingest.commit, threading.Event(), threading.Event()

    def pausing(self: Ingest) -> None:
        if threading.current_thread().name == "first" and not paused.is_set():
            paused.set()
            resume.wait(timeout=60)
        original(self)

    def ingest(url: str) -> None:
        store = open_store(url)
        try:
            commands.ingest("community-health", [SAMPLE], None, registry, store=store)
        finally:
            store.close()

    monkeypatch.setattr(Ingest, "commit", pausing)
    found = both_at_once(tmp_path, ingest, paused, resume, REWRITTEN, "quarantine WHERE resolved IS NOT NULL")
    assert found == [0, 0]


def test_two_ingests_of_one_export_in_batches_of_other_sizes_both_finish(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, validator: Validator
) -> None:
    """Each run waited for a record the other held, holding one the other waited for: the
    sample repeats row 7 as row 18 (one ledger lock), and the first, in batches of 10, held
    rows 12-17 when it reached row 18, while the second, in one batch, held row 7 when it
    reached row 12.  PostgreSQL failed one as a deadlock, three times, and that run stopped."""
    engine, original = commands.build_engine(Registry()), Ledger.arrive
    paused, resume, failed = threading.Event(), threading.Event(), list[StoreError]()

    def pausing(self: Ledger, tx: Transaction, scope: str, digest: str, location: str, identity: str) -> Any:
        if threading.current_thread().name == "first" and location == "row 18" and not paused.is_set():
            paused.set()  # rows 12-17 of its second batch held: the second may run up to them
            resume.wait(timeout=60)
        return original(self, tx, scope, digest, location, identity)

    def ingest(url: str) -> None:
        size = 10 if threading.current_thread().name == "first" else 200
        failed.extend(failure_of_a_run(url, validator, engine, SAMPLE, "community-health", size))

    monkeypatch.setattr(Ledger, "arrive", pausing)
    (rewritten,) = both_at_once(tmp_path, ingest, paused, resume, REWRITTEN)
    assert (failed, rewritten) == ([], 0)


#: the resources written more than once
REWRITTEN = "resource WHERE version > 1"


def failure_of_a_run(
    url: str, validator: Validator, engine: MappingEngine, path: Path, source: str, batch_size: int = 200
) -> list[StoreError]:
    """The store's failure that stopped one run of ``path`` into the store at ``url``, if any."""
    with closing(open_store(url)) as store:
        pipeline = Ingest(store, validator, engine, batch_size=batch_size)
        try:
            pipeline.run(read(path, source, reader_limits(Config())))
            pipeline.finish()
        except StoreError as error:
            return [error]
    return []


def both_at_once(
    tmp_path: Path, ingest: Callable[[str], None], paused: threading.Event, resume: threading.Event, *rows: str
) -> list[int]:
    """``ingest`` run twice at once into a fresh PostgreSQL archive (:func:`second_behind_first`),
    then how many ``rows`` (``table WHERE …``) each count finds there."""
    with fresh_database_url("postgresql", tmp_path) as url:
        open_store(url).close()  # the schema, before either
        second_behind_first(url, ingest, paused, resume)
        with psycopg.connect(url, autocommit=True) as reader:
            return [reader.execute(f"SELECT COUNT(*) FROM {where}").fetchone()[0] for where in rows]


def teach_the_code_table(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The fix a replay is for: the ethnicity ConceptMap learns the sample's unknown 火星族."""
    fixed = tmp_path / "conceptmaps"
    shutil.copytree(conceptmaps.FOLDER, fixed)
    table = json.loads((fixed / "ConceptMap-ethnicity-to-gb-3304.json").read_text(encoding="utf-8"))
    table["group"][0]["element"].append({"code": "火星族", "target": [{"code": "01", "equivalence": "equivalent"}]})
    (fixed / "ConceptMap-ethnicity-to-gb-3304.json").write_text(json.dumps(table, ensure_ascii=False), encoding="utf-8")
    monkeypatch.setattr(conceptmaps, "FOLDER", fixed)


def test_replay_after_a_code_table_fix_releases_the_record(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "out"
    commands.ingest("community-health", [SAMPLE], out, Registry(), bundle=False)
    teach_the_code_table(tmp_path, monkeypatch)
    lines: list[str] = []

    class Sink:
        def write(self, text: str) -> None:
            lines.append(text)

    commands.replay(out, Registry(), Sink(), "en")
    assert "now passes: 个人基本信息表.csv row 17\n" in lines


def test_replay_reads_again_a_message_whose_character_set_the_reader_has_learnt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rebuilt from its reason alone, a message refused for its MSH-18 stayed quarantined for good."""
    sample = (ROOT / "mappings/samples/hl7v2/adt.hl7").read_text(encoding="utf-8").split("\nMSH")[0]
    path = tmp_path / "adt.hl7"
    path.write_text(sample.replace("|UNICODE UTF-8", "|X-UTF-8") + "\n", encoding="utf-8")
    out = tmp_path / "out"
    commands.ingest("hl7v2", [path], out, Registry(), bundle=False)
    monkeypatch.setitem(hl7v2.CHARSET_ALIASES, "X-UTF-8", "UNICODE UTF-8")  # the reader learns it
    counts = commands.replay(out, Registry(), io.StringIO(), "en")
    assert (counts.mapped, counts.quarantined) == (1, 0)


def test_a_replay_says_nothing_of_columns_its_records_left_unread(tmp_path: Path) -> None:
    """Rebuilt from the quarantine, an HL7 message lacks its file's other messages and the
    names its reader gave fields: the replay listed columns the ingest had read."""
    out = tmp_path / "out"
    commands.ingest("hl7v2", [ROOT / "mappings/samples/hl7v2/adt.hl7"], out, Registry(), bundle=False)
    counts = commands.replay(out, Registry(), io.StringIO(), "en")
    assert (counts.quarantined > 0, counts.unread) == (True, {})


def old_and_corrected(tmp_path: Path) -> tuple[Path, Path]:
    """刘梅's record with an unknown 民族 and 糖尿病 (January's export), and the clinic's corrected
    export of the same 个人档案编号 (February's: 汉族, 高血压)."""
    header, *rows = SAMPLE.read_text(encoding="utf-8-sig").splitlines()
    old = next(row for row in rows if "火星族" in row).replace(",无,无,", ",无,糖尿病,")
    corrected = old.replace("火星族", "汉族").replace("糖尿病", "高血压")
    files = []
    for name, row in [("个人基本信息表-1月.csv", old), ("个人基本信息表-2月.csv", corrected)]:
        (tmp_path / name).write_text(header + "\n" + row + "\n", encoding="utf-8")
        files.append(tmp_path / name)
    return files[0], files[1]


def ingested_in_turn(out: Path, *paths: Path) -> Path:
    """The archive at ``out`` after each file was ingested into it, in the order given."""
    for path in paths:
        commands.ingest("community-health", [path], out, Registry(), bundle=False)
    return out


def late_copy_replayed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The correction lands first, then January's old copy is quarantined (an old export sent
    late); then the code table learns the unknown value, and the quarantine is replayed."""
    old, corrected = old_and_corrected(tmp_path)
    out = ingested_in_turn(tmp_path / "out", corrected, old)
    teach_the_code_table(tmp_path, monkeypatch)
    commands.replay(out, Registry(), io.StringIO(), "en")
    return out


def test_replay_never_overwrites_a_correction_that_landed_meanwhile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Replaying the old copy would turn her 高血压 back into 糖尿病: it does not land, and the
    correction stands."""
    out = late_copy_replayed(tmp_path, monkeypatch)
    conditions = [c["code"]["coding"][0]["code"] for c in ndjson(out / "Condition.ndjson")]
    assert conditions == ["I10"]


def test_a_replayed_copy_superseded_by_a_landed_correction_is_resolved_by_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """It stayed open, and every replay said ``ingest.superseded`` again: nothing will ever make
    it land, so the correction that superseded it resolves it, and the entry says why."""
    out = late_copy_replayed(tmp_path, monkeypatch)
    resolved = [
        (e["file"], [r["id"] for r in e["reasons"]], e["resolved"]["file"], e["resolved"]["location"])
        for e in ndjson(out / RESOLVED)
    ]
    assert (ndjson(out / "quarantine.ndjson"), resolved) == (
        [],
        [("个人基本信息表-1月.csv", ["ingest.superseded"], "个人基本信息表-2月.csv", "row 2")],
    )


def test_a_correction_landing_resolves_the_quarantined_record_it_replaces(tmp_path: Path) -> None:
    """January's copy waits in the quarantine and February's correction of the same 个人档案编号
    lands: the old entry was left open, and every replay said ``ingest.superseded`` again.  It
    is resolved by the correction instead, kept for the audit in quarantine-resolved.ndjson."""
    old, corrected = old_and_corrected(tmp_path)
    out = ingested_in_turn(tmp_path / "out", old, corrected)
    resolved = [(e["file"], e["resolved"]["file"], e["resolved"]["location"]) for e in ndjson(out / RESOLVED)]
    assert (ndjson(out / "quarantine.ndjson"), resolved) == (
        [],
        [("个人基本信息表-1月.csv", "个人基本信息表-2月.csv", "row 2")],
    )


def test_a_replay_leaves_a_resolved_record_alone(tmp_path: Path) -> None:
    """Resolved by the correction, the old copy is no longer replayed: the replay is quiet."""
    old, corrected = old_and_corrected(tmp_path)
    out = ingested_in_turn(tmp_path / "out", old, corrected)
    said = io.StringIO()
    counts = commands.replay(out, Registry(), said, "en")
    assert (counts.read, said.getvalue()) == (0, "")


def both_copies_waiting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """January's copy (糖尿病) and February's (高血压) both wait for the unknown 民族, which the
    code table then learns; the archive's folder, before the replay."""
    old, corrected = old_and_corrected(tmp_path)
    corrected.write_text(corrected.read_text(encoding="utf-8").replace("汉族", "火星族"), encoding="utf-8")
    out = ingested_in_turn(tmp_path / "out", old, corrected)
    teach_the_code_table(tmp_path, monkeypatch)
    return out


def test_of_two_quarantined_copies_of_one_key_a_replay_lands_the_newer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After the fix the replay landed January's, the older, and refused February's as a
    duplicate key."""
    out = both_copies_waiting(tmp_path, monkeypatch)
    commands.replay(out, Registry(), io.StringIO(), "en")
    assert [c["code"]["coding"][0]["code"] for c in ndjson(out / "Condition.ndjson")] == ["I10"]


def test_a_replay_says_which_older_copy_the_newer_one_resolved(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = both_copies_waiting(tmp_path, monkeypatch)
    said = io.StringIO()
    commands.replay(out, Registry(), said, "en")
    assert said.getvalue().splitlines() == [
        "now passes: 个人基本信息表-2月.csv row 2",
        "resolved, replaced by a newer record of its source key: 个人基本信息表-1月.csv row 2",
    ]


def test_the_old_export_ingested_again_leaves_its_entry_resolved(tmp_path: Path) -> None:
    """It fails as it did; the correction that replaced it still stands."""
    old, corrected = old_and_corrected(tmp_path)
    out = ingested_in_turn(tmp_path / "out", old, corrected, old)
    assert (len(ndjson(out / "quarantine.ndjson")), len(ndjson(out / RESOLVED))) == (0, 1)


def test_the_summary_says_how_many_quarantined_records_a_correction_resolved(tmp_path: Path) -> None:
    out = tmp_path / "out"
    old, corrected = old_and_corrected(tmp_path)
    commands.ingest("community-health", [old], out, Registry(), bundle=False)
    counts = commands.ingest("community-health", [corrected], out, Registry(), bundle=False)
    assert "marked resolved (kept for the audit, no longer replayed): 1" in commands.summary(counts, "en")


def test_a_record_run_again_counts_the_entries_it_resolved_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A record the database gives up after it landed (a deadlock at its savepoint's last
    statements) is judged and landed again (``Ingest._attempt``): the quarantined entry its
    landing resolved is counted for the attempt that stands, not for both."""
    out = tmp_path / "out"
    old, corrected = old_and_corrected(tmp_path)
    commands.ingest("community-health", [old], out, Registry(), bundle=False)
    land, given_up = Ingest._land, []

    def land_then_given_up(self: Ingest, tx: Any, outcome: Outcome) -> None:
        land(self, tx, outcome)
        if not given_up:
            given_up.append(outcome)
            raise StoreError("postgresql: deadlock detected", retryable=True)

    monkeypatch.setattr(Ingest, "_land", land_then_given_up)
    counts = commands.ingest("community-health", [corrected], out, Registry(), bundle=False)
    assert (len(given_up), counts.resolved) == (1, 1)


def test_cli_ingest_prints_the_reconciliation(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    main(["ingest", "--source", "community-health", "--out", str(tmp_path), "--lang", "en", str(SAMPLE)])
    assert "read 18 = mapped 12 + quarantined 6 ✓" in capsys.readouterr().out


def titled_sample(path: Path) -> Path:
    """The sample 个人基本信息表.xlsx as 公卫 systems export it: a title merged across the sheet
    in row 1 and the export date in row 2 above the header."""
    from openpyxl import load_workbook

    book = load_workbook(ROOT / "mappings/samples/community-health/个人基本信息表.xlsx")
    sheet = book.active
    sheet.insert_rows(1, 2)
    sheet["A1"], sheet["A2"] = "金水区2026年个人基本信息表", "导出时间：2026-11-30"
    sheet.merge_cells(start_row=1, start_column=1, end_row=1, end_column=sheet.max_column)
    book.save(path)
    return path


def test_cli_ingest_reads_an_xlsx_under_its_title_lines(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Every row was quarantined, "20 cells under a header of 1"."""
    path = titled_sample(tmp_path / "个人基本信息表.xlsx")
    main(["ingest", "--source", "community-health", "--out", str(tmp_path / "out"), "--lang", "en", str(path)])
    assert "read 26 = mapped 20 + quarantined 6 ✓" in capsys.readouterr().out
    # the rows are where the clerk finds them in the sheet: the sample's own, two further down
    # (the sample's broken rows are each corrected further down: resolved, not open)
    located = [entry["location"] for entry in ndjson(tmp_path / "out" / RESOLVED)]
    assert located[0] == "sheet 个人基本信息表 row 5"


def test_the_summary_names_the_title_lines_it_skipped(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = titled_sample(tmp_path / "个人基本信息表.xlsx")
    said = []
    for lang in ("zh-CN", "en"):
        main(["ingest", "--source", "community-health", "--out", str(tmp_path / lang), "--lang", lang, str(path)])
        said.append(capsys.readouterr().out.splitlines()[-1])
    assert said == [
        "个人基本信息表.xlsx 表头之上的标题行未作数据读取：工作表“个人基本信息表”第 1 行“金水区2026年个人基本信息表”、"
        "工作表“个人基本信息表”第 2 行“导出时间：2026-11-30”",
        "个人基本信息表.xlsx: title lines above the header, not read as data: sheet 个人基本信息表 row 1 "
        "'金水区2026年个人基本信息表', sheet 个人基本信息表 row 2 '导出时间：2026-11-30'",
    ]


def test_the_summary_names_the_hidden_sheets_it_did_not_read(tmp_path: Path) -> None:
    """A hidden code-list sheet behind the register quarantined all its rows, unexplained."""
    from openpyxl import load_workbook

    path = tmp_path / "个人基本信息表.xlsx"
    book = load_workbook(ROOT / "mappings/samples/community-health/个人基本信息表.xlsx")
    codes = book.create_sheet("民族代码")
    for line in [["代码", "名称"], ["01", "汉族"], ["02", "蒙古族"]]:
        codes.append(line)
    codes.sheet_state = "hidden"
    book.save(path)
    counts = commands.ingest("community-health", [path], tmp_path / "out", Registry(), bundle=False)
    told = commands.summary(counts, "zh-CN").splitlines()
    assert (
        "个人基本信息表.xlsx 中的隐藏工作表未读取（通常是代码表等辅助数据；如确需导入，请在 Excel 中取消隐藏后另存）：工作表“民族代码”（已隐藏）"
        in told
    )


def unicode_text(sample: Path) -> bytes:
    """The CSV sample as Excel's "Unicode Text" export writes it: UTF-16 with its byte order
    mark, tab-separated, CRLF."""
    import csv

    rows = list(csv.reader(io.StringIO(sample.read_text(encoding="utf-8-sig"), newline="")))
    text = io.StringIO()
    csv.writer(text, dialect="excel-tab").writerows(rows)
    return text.getvalue().encode("utf-16")


def test_cli_ingest_reads_a_unicode_text_export_named_csv(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """It was refused as UTF-16 (and a tab-separated UTF-8 one was one long column)."""
    path = tmp_path / "个人基本信息表.csv"
    path.write_bytes(unicode_text(SAMPLE))
    main(["ingest", "--source", "community-health", "--out", str(tmp_path / "out"), "--lang", "en", str(path)])
    assert "read 18 = mapped 12 + quarantined 6 ✓" in capsys.readouterr().out


def test_the_english_summary_reads_right_for_one() -> None:
    """'1 of them were ingested before' and '1 demographic disagreements' were English for
    none: the counted lines put the count after a label, as the zh-CN ones read for any count."""
    counts = Counts(read=1, mapped=1, unchanged=1, conflicts=1)
    assert commands.summary(counts, "en").splitlines()[2:] == [
        "ingested before, unchanged, and not written again: 1",
        "demographic disagreements: 1 (the archive kept its values, see identity-conflicts.ndjson)",
    ]


def test_the_english_export_line_reads_right_for_one_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """'Exported 12 lines in 1 files' said of an export of one type."""
    commands.ingest("community-health", [SAMPLE], tmp_path, Registry(), bundle=False)
    database = f"sqlite:///{tmp_path / commands.ARCHIVE_FILE}"
    capsys.readouterr()
    main(["export", "--database", database, "--out", str(tmp_path / "export"), "--type", "Patient", "--lang", "en"])
    assert capsys.readouterr().out.splitlines()[1] == (
        "Export done: files 1, lines 12 (other files of an earlier export in the folder were removed)"
    )


def test_cli_strict_exits_one_when_anything_was_quarantined(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ingest", "--source", "community-health", "--strict", "--out", str(tmp_path), str(SAMPLE)]) == 1


def test_cli_without_strict_exits_zero_although_records_were_quarantined(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["ingest", "--source", "community-health", "--out", str(tmp_path), str(SAMPLE)]) == 0


def test_the_bundle_leaves_out_the_conflict_report_beside_the_resources(tmp_path: Path) -> None:
    (tmp_path / "identity-conflicts.ndjson").write_text('{"person": "Patient/x"}\n', encoding="utf-8")
    commands.ingest("community-health", [SAMPLE], tmp_path, Registry(), bundle=True)
    bundle = json.loads((tmp_path / "bundle.json").read_text(encoding="utf-8"))
    assert all("resourceType" in entry["resource"] for entry in bundle["entry"])


def test_a_record_the_gateway_fails_on_is_quarantined_and_the_run_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = Ingest.evaluate

    def failing_on_row_3(self: Ingest, record: SourceRecord) -> Outcome:
        if record.location == "row 3":
            raise RuntimeError("boom")
        return real(self, record)

    monkeypatch.setattr(Ingest, "evaluate", failing_on_row_3)
    counts = commands.ingest("community-health", [SAMPLE], tmp_path, Registry(), bundle=False)
    assert (reasons(tmp_path, "row 3"), counts.read, counts.mapped + counts.quarantined) == (
        [("ingest.internal-error", None, None)],
        18,
        18,
    )


def test_explain_of_a_file_no_reader_takes_says_so(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    (tmp_path / "notes.doc").write_text("x", encoding="utf-8")
    code = main(["mappings", "explain", "community-health", str(tmp_path / "notes.doc")])
    chinese = capsys.readouterr().out
    main(["mappings", "explain", "community-health", str(tmp_path / "notes.doc"), "--lang", "en"])
    english = capsys.readouterr().out
    assert (code, chinese.startswith("notes.doc：不支持 .doc 格式的文件"), "no reader for .doc" in english) == (
        1,
        True,
        True,
    )


def test_cli_ingest_reads_a_unicode_text_export_named_txt(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Excel's "Unicode Text" export, as Excel names it: refused, no reader for .txt."""
    path = tmp_path / "个人基本信息表.txt"
    path.write_bytes(unicode_text(SAMPLE))
    main(["ingest", "--source", "community-health", "--out", str(tmp_path / "out"), "--lang", "en", str(path)])
    assert "read 18 = mapped 12 + quarantined 6 ✓" in capsys.readouterr().out


def test_cli_ingest_refuses_a_txt_file_that_is_no_table_saying_to_rename_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "adt.txt"
    path.write_bytes((ROOT / "mappings/samples/hl7v2/adt.hl7").read_bytes())
    code = main(["ingest", "--source", "hl7v2", "--out", str(tmp_path / "out"), "--lang", "en", str(path)])
    said = capsys.readouterr().out
    assert (code, "rename it to the suffix of its format (.csv, .hl7, .json, .xml …)" in said) == (1, True)


def test_explain_shows_field_rule_and_element(capsys: pytest.CaptureFixture[str]) -> None:
    main(["mappings", "explain", "community-health", str(SAMPLE), "--record", "row 14", "--lang", "en"])
    out = capsys.readouterr().out
    assert "Patient.identifier[0].value ← 个人基本信息表.csv row 14, column 身份证号" in out


def test_explain_lists_each_field_with_its_transform(capsys: pytest.CaptureFixture[str]) -> None:
    main(["mappings", "explain", "community-health", str(SAMPLE)])
    assert "出生日期 = '1956-08-01'\n      date\n      → Patient.birthDate = \"1956-08-01\"" in capsys.readouterr().out


def test_every_value_of_the_samples_is_mapped_or_deliberately_ignored() -> None:
    """What explain reports as unused is data the archive loses: a sample value no rule reads
    must be named in its spec's (or rule set's) ignore list, with the reason beside it."""
    unused = {(m.record.file, m.record.location): m.unused_fields for m in mapped_samples() if m.unused_fields}
    assert unused == {}


# -- what the readers refuse, worded for the user -----------------------------------------------
CUT_ROW = "姓名,住址\n张三,金水区,文化路\n"
CUT_ROW_REASON = {
    "zh-CN": "无法读取此记录：第 2 行：有 3 个单元格，而表头有 2 列，对不上（可能是地址等内容中有未加引号的逗号或换行），整行无法采信",
    "en": "This record cannot be read: row 2: 3 cells under a header of 2",
}
CUT_ROW_CELLS = {"id": "reader.csv-cells", "params": {"cells": 3, "columns": 2}}


def test_the_summary_words_a_file_error_in_the_users_language(tmp_path: Path) -> None:
    (tmp_path / "表.csv").write_text("姓名,姓名\n张三,李四\n", encoding="utf-8")
    counts = commands.ingest("community-health", [tmp_path / "表.csv"], tmp_path / "out", Registry())
    chinese, english = commands.summary(counts, "zh-CN"), commands.summary(counts, "en")
    assert (
        "\n文件错误：表.csv：表头中“姓名”列出现了两次（第 1 列和第 2 列）；请将其中一列改名后重新导出" in chinese,
        "\nfile error: 表.csv: the header names the column '姓名' twice (columns 1 and 2); rename one" in english,
    ) == (True, True)


def quarantine_entries(out: Path) -> list[dict[str, Any]]:
    store = open_store(f"sqlite:///{out / commands.ARCHIVE_FILE}")
    try:
        with store.reading() as tx:
            return list(tx.quarantine.entries())
    finally:
        store.close()


def test_an_unreadable_row_is_quarantined_worded_in_both_languages_and_replays_unchanged(tmp_path: Path) -> None:
    (tmp_path / "表.csv").write_text(CUT_ROW, encoding="utf-8")
    commands.ingest("community-health", [tmp_path / "表.csv"], tmp_path / "out", Registry())
    before = quarantine_entries(tmp_path / "out")
    said = io.StringIO()
    commands.replay(tmp_path / "out", Registry(), said, "zh-CN")
    [after] = quarantine_entries(tmp_path / "out")
    reason = {k: after["reasons"][0][k] for k in ("zh-CN", "en")}
    assert (before, said.getvalue(), reason, after["fields"]) == (
        [after],
        "仍隔离：表.csv row 2\n",
        CUT_ROW_REASON,
        {"UNPARSEABLE": {"id": "reader.at-row", "params": {"row": 2, "problem": CUT_ROW_CELLS}}},
    )


def test_an_entry_quarantined_with_a_plain_text_reason_still_replays_and_shows_it(tmp_path: Path) -> None:
    """Entries written before reader reasons were catalogued hold the English text itself."""
    (tmp_path / "表.csv").write_text(CUT_ROW, encoding="utf-8")
    out = tmp_path / "out"
    commands.ingest("community-health", [tmp_path / "表.csv"], out, Registry())
    [entry] = quarantine_entries(out)
    old = {**entry, "fields": {"UNPARSEABLE": "row 2: 3 cells under a header of 2"}}
    store = open_store(f"sqlite:///{out / commands.ARCHIVE_FILE}")
    try:
        with store.transaction() as tx:
            tx.quarantine.release(entry["source"], entry["identity"], entry["digest"])
            tx.quarantine.put(old)
    finally:
        store.close()
    commands.replay(out, Registry(), io.StringIO(), "zh-CN")
    [after] = quarantine_entries(out)
    assert [after["reasons"][0][lang] for lang in ("zh-CN", "en")] == [
        "无法读取此记录：row 2: 3 cells under a header of 2",
        "This record cannot be read: row 2: 3 cells under a header of 2",
    ]


@pytest.mark.parametrize("content", [b"", b"\r\n \n"], ids=["empty", "blank"])
def test_an_empty_file_is_a_file_error_not_a_quiet_run(tmp_path: Path, content: bytes) -> None:
    """Exit 1 and a file error, as $ingest answers 400: no export is zero bytes."""
    path = tmp_path / "个人基本信息表.csv"
    path.write_bytes(content)
    assert main(["ingest", "--source", "community-health", str(path), "--out", str(tmp_path / "out")]) == 1


def test_a_readers_message_inside_a_gateway_message_is_worded_in_each_language() -> None:
    """An \\$ingest refusal is recorded in both languages (the exchange record): its reason
    is the reader's message, not the request's language frozen into a string."""
    from gateway.messages import worded
    from mappings.records import Message

    both = worded(
        "http.ingest-unreadable", {"source": "insurance", "reason": Message("reader.empty", {"file": "a.json"})}
    )
    assert ("文件是空的" in both["zh-CN"], "the file is empty" in both["en"]) == (True, True)


def test_an_empty_ndjson_export_is_a_day_without_records(tmp_path: Path) -> None:
    """NDJSON is a stream: no lines is no records (a quiet day's 1101 replies), not an error."""
    path = tmp_path / "1101-replies.ndjson"
    path.write_bytes(b"")
    assert main(["ingest", "--source", "insurance", str(path), "--out", str(tmp_path / "out")]) == 0


def test_a_folder_given_as_a_file_is_named_as_a_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Not "文件不存在": it exists, and the files to give are in it."""
    status = main(["ingest", "--source", "community-health", str(tmp_path)])
    assert (status, "是文件夹，不是文件" in capsys.readouterr().err) == (2, True)


def test_the_fields_of_a_record_no_spec_takes_are_listed_as_each_language_lists(tmp_path: Path) -> None:
    """Joined once beforehand, the English reason listed its columns with 、."""
    export = tmp_path / "unknown.csv"
    export.write_text("甲列,乙列\n1,2\n", encoding="utf-8")
    commands.ingest("community-health", [export], tmp_path / "out", Registry())
    reason = ndjson(tmp_path / "out/quarantine.ndjson")[0]["reasons"][0]
    assert ("甲列, 乙列" in reason["en"], "甲列、乙列" in reason["zh-CN"]) == (True, True)


def test_two_ingests_quarantining_one_message_in_other_orders_both_finish(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, validator: Validator
) -> None:
    """A message no spec takes holds no ledger record, and its quarantine entry was written
    taking no lock: the first run, holding the identity lock since its first message, waited
    to write the entry the second had written uncommitted, while the second waited for the
    identity lock at its next message.  PostgreSQL failed one as a deadlock, at each retry."""
    admitted, other = (b"MSH|" + message for message in SAMPLE_HL7.read_bytes().split(b"MSH|")[1:3])
    unknown = b"MSH|^~\\&|LIS|H41010500012|YIYANG-GW|YYPT|20261102100000||ORU^R01^ORU_R01|LIS1|P|2.5\rPID|1||X\r"
    files = {"first": (tmp_path / "a.hl7", admitted + unknown), "second": (tmp_path / "b.hl7", unknown + other)}
    for path, data in files.values():
        path.write_bytes(data)
    engine, original = commands.build_engine(Registry()), Ingest.process
    paused, resume, failed = threading.Event(), threading.Event(), list[StoreError]()

    def pausing(self: Ingest, record: SourceRecord, *args: Any) -> Outcome:
        if threading.current_thread().name == "first" and record.fields.get("MSH-10") == "LIS1" and not paused.is_set():
            paused.set()  # the identity lock held: the second may quarantine the message first
            resume.wait(timeout=60)
        return original(self, record, *args)

    def ingest(url: str) -> None:
        path, _ = files[threading.current_thread().name]
        failed.extend(failure_of_a_run(url, validator, engine, path, "hl7v2"))

    monkeypatch.setattr(Ingest, "process", pausing)
    both_at_once(tmp_path, ingest, paused, resume)
    assert failed == []

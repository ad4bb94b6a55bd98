"""Copies of one quarantined record in several files of one run (a week's daily full exports
ingested at once): each copy keeps an entry of its own, naming its file and row."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from gateway.ingest import commands
from gateway.storage import open_store
from gateway.storage.migrations import apply
from gateway.storage.store import Executor
from profiles.registry import Registry
from tests.gateway.test_ingest import teach_the_code_table
from tests.ingest_output import SAMPLES, personal_info_file

#: a 身份证号 whose check digit is wrong (the right one ends in 0), so the row is quarantined
WRONG_CHECK_DIGIT = "410105194912310021"
#: the 身份证号 the sample's first row holds: that row as exported lands
ITS_OWN_NUMBER = "410102195608016041"


def test_each_files_copy_of_a_quarantined_row_keeps_its_own_entry(database_url: str, tmp_path: Path) -> None:
    """The third copy's entry replaced the second's: both were kept under the record's identity
    and row alone, so Tuesday's file was named by no entry although the run counted it
    quarantined."""
    files = []
    for day in ("mon", "tue", "wed"):
        folder = tmp_path / day
        folder.mkdir()
        export = personal_info_file(folder, "身份证号", WRONG_CHECK_DIGIT)
        files.append(export.rename(folder / f"{day}.csv"))
    store = open_store(database_url)
    try:
        commands.ingest("community-health", files, None, Registry(), store=store)
        with store.reading() as tx:
            named = sorted(entry["file"] for entry in tx.quarantine.entries())
    finally:
        store.close()
    assert named == ["mon.csv", "tue.csv", "wed.csv"]


def store_with_a_duplicate_rows_entry_of_0021(url: str, sample: Path) -> None:
    """A store at schema version 21 holding the entries of the community-health sample as a
    gateway of then kept them: the duplicate row's (row 18 repeats row 7) under the record's
    identity and row alone, in its key and its entry."""
    store = open_store(url, upgrade=False)
    try:
        with store._connection() as connection:  # noqa: SLF001 - the test builds an old store by hand
            apply(Executor(connection, store.dialect, store.errors), target=21)
        commands.ingest("community-health", [sample], None, Registry(), store=store)
        with store.transaction() as tx:
            for seq, identity, entry in tx.sql.all("SELECT seq, identity, entry FROM quarantine"):
                old = identity.replace(f"|{sample.name}|", "|")
                document = tx.sql.dialect.json_out(entry) | {"identity": old}
                tx.sql.execute(
                    "UPDATE quarantine SET identity = ?, entry = ? WHERE seq = ?",
                    (old, tx.sql.dialect.json_in(document), seq),
                )
    finally:
        store.close()


@pytest.fixture
def sample(tmp_path: Path) -> Path:
    copied = tmp_path / "个人基本信息表.csv"
    copied.write_bytes((SAMPLES / "community-health/个人基本信息表.csv").read_bytes())
    return copied


def test_a_duplicate_rows_entry_an_earlier_version_kept_is_replaced_by_a_run_after_the_upgrade(
    database_url: str, sample: Path
) -> None:
    """Migration 0022 renames the entry once, where each run renamed it again: run after the
    upgrade, the duplicate row has the entry it had, not a second beside it."""
    store_with_a_duplicate_rows_entry_of_0021(database_url, sample)
    store = open_store(database_url)
    try:
        commands.ingest("community-health", [sample], None, Registry(), store=store)
        with store.reading() as tx:
            row_18 = [entry for entry in tx.quarantine.entries() if entry["location"] == "row 18"]
    finally:
        store.close()
    assert len(row_18) == 1


def test_the_upgrade_renames_an_old_entry_in_its_key_and_its_document_alike(database_url: str, sample: Path) -> None:
    """A replay groups entries by the identity their document names: renamed in the key
    alone, the document would name the old one."""
    store_with_a_duplicate_rows_entry_of_0021(database_url, sample)
    store = open_store(database_url)
    try:
        with store.reading() as tx:
            query = "SELECT identity, entry FROM quarantine WHERE location = 'row 18'"
            found = [(key, tx.sql.dialect.json_out(entry)["identity"]) for key, entry in tx.sql.all(query)]
    finally:
        store.close()
    assert [(key.endswith("|个人基本信息表.csv|row 18"), key == named) for key, named in found] == [(True, True)]


def ingested(url: str, *files: Path) -> None:
    """Each of ``files`` ingested in turn into the store at ``url``, as one run each."""
    store = open_store(url)
    try:
        for file in files:
            commands.ingest("community-health", [file], None, Registry(), store=store)
    finally:
        store.close()


def day_file(folder: Path, day: str, number: str) -> Path:
    """The first sample row, its 身份证号 ``number``, as ``{day}.csv``."""
    (folder / day).mkdir()
    return personal_info_file(folder / day, "身份证号", number).rename(folder / day / f"{day}.csv")


def test_a_correction_that_lands_resolves_the_entries_of_every_files_copy(database_url: str, tmp_path: Path) -> None:
    """The row refused in each of three days' exports, then corrected on the fourth: the
    correction resolved Monday's entry alone, and Tuesday's and Wednesday's copies stayed open
    until a replay."""
    days = [day_file(tmp_path, day, WRONG_CHECK_DIGIT) for day in ("mon", "tue", "wed")]
    store = open_store(database_url)
    try:
        commands.ingest("community-health", days, None, Registry(), store=store)
        commands.ingest("community-health", [day_file(tmp_path, "thu", ITS_OWN_NUMBER)], None, Registry(), store=store)
        with store.reading() as tx:
            resolved = sorted(entry["file"] for entry in tx.quarantine.resolved_entries())
    finally:
        store.close()
    assert resolved == ["mon.csv", "tue.csv", "wed.csv"]


def a_row_twice_waiting_for_the_code_table(folder: Path) -> Path:
    """The sample's row of the unknown 民族 火星族, twice in one file: the first quarantined
    for it, the second as its duplicate."""
    header, *rows = (SAMPLES / "community-health/个人基本信息表.csv").read_text(encoding="utf-8-sig").splitlines()
    twice = folder / "twice.csv"
    waiting = next(row for row in rows if "火星族" in row)
    twice.write_text(f"{header}\n{waiting}\n{waiting}\n", encoding="utf-8")
    return twice


def replayed_after_the_fix(url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The row twice ingested, the code table taught, the quarantine replayed: what the
    replay said."""
    ingested(url, a_row_twice_waiting_for_the_code_table(tmp_path))
    teach_the_code_table(tmp_path, monkeypatch)
    said = io.StringIO()
    store = open_store(url)
    try:
        commands.replay(None, Registry(), said, "en", store=store)
    finally:
        store.close()
    return said.getvalue().splitlines()


def test_a_replay_that_lands_a_row_says_its_duplicate_is_resolved(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """It said the duplicate was still quarantined, and left it so for good."""
    said = replayed_after_the_fix(database_url, tmp_path, monkeypatch)
    assert said == [
        "now passes: twice.csv row 2",
        "resolved, the record it repeats has landed: twice.csv row 3",
    ]


def test_a_replay_that_lands_a_row_leaves_no_entry_of_its_duplicate_open(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    replayed_after_the_fix(database_url, tmp_path, monkeypatch)
    store = open_store(database_url)
    try:
        with store.reading() as tx:
            still = [entry["location"] for entry in tx.quarantine.entries()]
    finally:
        store.close()
    assert still == []

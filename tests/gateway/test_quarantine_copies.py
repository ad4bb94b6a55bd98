"""Copies of one quarantined record in several files of one run (a week's daily full exports
ingested at once): each copy keeps an entry of its own, naming its file and row."""

from __future__ import annotations

from pathlib import Path

from gateway.ingest import commands
from gateway.storage import open_store
from profiles.registry import Registry
from tests.ingest_output import SAMPLES, personal_info_file

#: a 身份证号 whose check digit is wrong (the right one ends in 0), so the row is quarantined
WRONG_CHECK_DIGIT = "410105194912310021"


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


def test_a_duplicate_rows_entry_kept_under_its_row_alone_is_replaced_by_a_run_again(
    database_url: str, tmp_path: Path
) -> None:
    """An earlier version kept a duplicate row's entry under the record's identity and row;
    the sample's row 18 repeats row 7.  Run again, its entry is the one it had, not a second."""
    sample = tmp_path / "个人基本信息表.csv"
    sample.write_bytes((SAMPLES / "community-health/个人基本信息表.csv").read_bytes())
    store = open_store(database_url)
    try:
        commands.ingest("community-health", [sample], None, Registry(), store=store)
        with store.transaction() as tx:  # as the earlier version kept it
            tx.sql.execute("UPDATE quarantine SET identity = replace(identity, '|个人基本信息表.csv|', '|')")
        commands.ingest("community-health", [sample], None, Registry(), store=store)
        with store.reading() as tx:
            row_18 = [entry for entry in tx.quarantine.entries() if entry["location"] == "row 18"]
    finally:
        store.close()
    assert len(row_18) == 1
